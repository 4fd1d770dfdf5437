//! The apps manager: owns every configured app instance, its desired state (running or not), its
//! run state (status, detailed status, error, restarts) and its supervisor task.
//!
//! Built-in apps (`binary` = `skywire` with args `app <name> ...`, or a bare built-in name with no such
//! file in `bin_path`) run as tasks inside the visor on the visor's own dmsg client and key: skysocks,
//! skysocks-client, vpn-server and vpn-client. Anything else is a custom app: a child process started
//! through [`crate::proc`] with the local app protocol of [`crate::appserver`].
//!
//! A running app that fails or exits on its own is restarted with exponential backoff (1 s doubling to
//! 60 s, reset after it stayed up 30 s); `stop` ends it and keeps it stopped. App states are reported
//! with the reference's numbers (0 stopped, 1 running, 2 errored, 3 starting) and detailed-status texts.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use skywire_cipher::PubKey;
use skywire_dmsg::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::appserver::AppServer;
use crate::config::AppConfig;
use crate::proc::{Proc, ProcSpec};

/// Errors of app management.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No app with that name.
    #[error("no app named {0:?}")]
    NotFound(String),
    /// The name is taken.
    #[error("an app named {0:?} already exists")]
    Exists(String),
    /// Invalid arguments or settings.
    #[error("{0}")]
    Invalid(String),
}

/// Reference status numbers.
pub const STATUS_STOPPED: u8 = 0;
/// Running.
pub const STATUS_RUNNING: u8 = 1;
/// Errored (and being restarted, or given up).
pub const STATUS_ERRORED: u8 = 2;
/// Starting.
pub const STATUS_STARTING: u8 = 3;

/// What the API reports for one app (`AppState` of the reference plus our fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppState {
    /// Instance name.
    pub name: String,
    /// Binary name.
    pub binary: String,
    /// argv after the binary.
    pub args: Vec<String>,
    /// Started at visor start.
    pub auto_start: bool,
    /// Routing port.
    pub port: u16,
    /// 0 stopped, 1 running, 2 errored, 3 starting.
    pub status: u8,
    /// Free text (`Running`, `Connecting`, ...).
    pub detailed_status: String,
    /// `builtin` or `external`.
    pub kind: String,
    /// Last error.
    pub error: Option<String>,
    /// Child pid (external apps).
    pub pid: Option<u32>,
    /// Seconds since the current run started.
    pub uptime_secs: Option<u64>,
    /// Restarts after failures since the last manual start.
    pub restarts: u32,
}

/// Everything an app run needs from the visor.
#[derive(Clone)]
pub struct AppContext {
    /// The visor's dmsg client.
    pub dmsg: Client,
    /// The visor's key.
    pub visor_pk: PubKey,
    /// Directory for app work dirs, logs and journals.
    pub local_path: PathBuf,
    /// Where custom app binaries are found.
    pub bin_path: PathBuf,
    /// The local app server (custom apps).
    pub app_server: Option<Arc<AppServer>>,
    /// Hosts that must stay outside a VPN tunnel (dmsg discovery and relays).
    pub direct_hosts: Arc<Mutex<Vec<Ipv4Addr>>>,
    /// Grace period of a stop.
    pub stop_grace: Duration,
}

impl std::fmt::Debug for AppContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppContext")
            .field("visor_pk", &self.visor_pk)
            .field("local_path", &self.local_path)
            .finish_non_exhaustive()
    }
}

/// The built-in apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// SOCKS5 exit (dmsg port = app port, 3).
    Skysocks,
    /// Local SOCKS5 port through a skysocks server.
    SkysocksClient,
    /// VPN exit (port 44).
    VpnServer,
    /// VPN client.
    VpnClient,
}

impl Builtin {
    /// By app name.
    pub fn from_name(name: &str) -> Option<Builtin> {
        Some(match name {
            "skysocks" => Builtin::Skysocks,
            "skysocks-client" => Builtin::SkysocksClient,
            "vpn-server" => Builtin::VpnServer,
            "vpn-client" => Builtin::VpnClient,
            _ => return None,
        })
    }
}

/// How an app config runs: built-in (with its flag arguments) or as a child process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppKind {
    /// In-process; the args after `app <name>`.
    Builtin(Builtin, Vec<String>),
    /// A child process: the resolved binary.
    External(PathBuf),
}

/// Decides how `cfg` runs (module doc).
pub fn classify(cfg: &AppConfig, bin_path: &Path) -> Result<AppKind, AppError> {
    let base = Path::new(&cfg.binary)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if base == "skywire" || base == "skywire-visor" {
        let mut it = cfg.args.iter();
        let (Some(app), Some(name)) = (it.next(), it.next()) else {
            return Err(AppError::Invalid(format!(
                "app {:?}: binary skywire needs args \"app <name> ...\"",
                cfg.name
            )));
        };
        if app != "app" {
            return Err(AppError::Invalid(format!(
                "app {:?}: args must start with \"app <name>\", got {app:?}",
                cfg.name
            )));
        }
        return match Builtin::from_name(name) {
            Some(b) => Ok(AppKind::Builtin(b, it.cloned().collect())),
            None => Err(AppError::Invalid(format!(
                "app {:?}: {name:?} is not built into this visor (built in: skysocks, \
                 skysocks-client, vpn-server, vpn-client)",
                cfg.name
            ))),
        };
    }
    let path = if cfg.binary.contains('/') {
        PathBuf::from(&cfg.binary)
    } else {
        bin_path.join(&cfg.binary)
    };
    if !path.exists()
        && let Some(b) = Builtin::from_name(&base)
    {
        return Ok(AppKind::Builtin(b, cfg.args.clone()));
    }
    if cfg.binary.is_empty() {
        return Err(AppError::Invalid(format!("app {:?}: no binary", cfg.name)));
    }
    Ok(AppKind::External(path))
}

/// Flag arguments of a built-in app: `--name value`, `--name=value`, `-name value`, bare `--flag`.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    map: BTreeMap<String, String>,
}

impl Flags {
    /// Parses `args` (module doc); a flag followed by another flag or nothing is boolean `true`.
    pub fn parse(args: &[String]) -> Result<Flags, AppError> {
        let mut map = BTreeMap::new();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            let Some(name) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
                return Err(AppError::Invalid(format!("unexpected argument {a:?}")));
            };
            if let Some((k, v)) = name.split_once('=') {
                map.insert(k.to_string(), v.to_string());
            } else if i + 1 < args.len() && !args[i + 1].starts_with('-') {
                map.insert(name.to_string(), args[i + 1].clone());
                i += 1;
            } else {
                map.insert(name.to_string(), "true".into());
            }
            i += 1;
        }
        Ok(Flags { map })
    }

    /// A string flag.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.map.get(k).map(String::as_str)
    }

    /// A boolean flag (`--x`, `--x=true`).
    pub fn bool(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1" | "yes"))
    }

    /// Fails on flags not in `known`.
    pub fn only(&self, app: &str, known: &[&str]) -> Result<(), AppError> {
        for k in self.map.keys() {
            if !known.contains(&k.as_str()) {
                return Err(AppError::Invalid(format!(
                    "{app}: unknown flag --{k} (known: {})",
                    known
                        .iter()
                        .map(|k| format!("--{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Sets `--name value` in an args list (replacing any existing form of the flag); `None` removes it.
pub fn set_flag(args: &mut Vec<String>, name: &str, value: Option<&str>) {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let bare = a.trim_start_matches('-');
        let is_flag = a.starts_with('-');
        if is_flag && (bare == name || bare.starts_with(&format!("{name}="))) {
            if bare == name && i + 1 < args.len() && !args[i + 1].starts_with('-') {
                i += 1;
            }
            i += 1;
            continue;
        }
        out.push(a.clone());
        i += 1;
    }
    if let Some(v) = value {
        out.push(format!("--{name}"));
        out.push(v.to_string());
    }
    *args = out;
}

/// Parses `:port`, `localhost:port`, `ip:port`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, AppError> {
    let bad = |e: String| AppError::Invalid(format!("listen address {s:?}: {e}"));
    if let Some(p) = s.strip_prefix(':') {
        let port: u16 = p.parse().map_err(|e| bad(format!("{e}")))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Some(p) = s.strip_prefix("localhost:") {
        let port: u16 = p.parse().map_err(|e| bad(format!("{e}")))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse().map_err(|e| bad(format!("{e}")))
}

/// Mutable run state shared with the supervisor.
#[derive(Debug, Default)]
struct RunState {
    status: u8,
    detailed: String,
    error: Option<String>,
    pid: Option<u32>,
    started: Option<Instant>,
    restarts: u32,
}

struct Entry {
    cfg: AppConfig,
    state: Arc<Mutex<RunState>>,
    run: Option<Running>,
}

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The apps manager (module doc).
pub struct AppsManager {
    ctx: AppContext,
    apps: Mutex<BTreeMap<String, Entry>>,
}

impl std::fmt::Debug for AppsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppsManager").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AppsManager {
    /// A manager for `apps` (nothing started yet).
    pub fn new(ctx: AppContext, apps: Vec<AppConfig>) -> Arc<AppsManager> {
        let map = apps
            .into_iter()
            .map(|cfg| {
                (
                    cfg.name.clone(),
                    Entry {
                        cfg,
                        state: Arc::default(),
                        run: None,
                    },
                )
            })
            .collect();
        Arc::new(AppsManager {
            ctx,
            apps: Mutex::new(map),
        })
    }

    /// The per-app log file.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.ctx.local_path.join(format!("{name}.log"))
    }

    /// Starts every `auto_start` app.
    pub fn start_auto(self: &Arc<Self>) {
        let names: Vec<String> = lock(&self.apps)
            .values()
            .filter(|e| e.cfg.auto_start)
            .map(|e| e.cfg.name.clone())
            .collect();
        for n in names {
            if let Err(e) = self.start(&n) {
                tracing::warn!(app = %n, error = %e, "auto-start failed");
            }
        }
    }

    /// States of all apps, by name.
    pub fn list(&self) -> Vec<AppState> {
        let apps = lock(&self.apps);
        apps.values().map(|e| self.state_of(e)).collect()
    }

    /// One app's state.
    pub fn get(&self, name: &str) -> Result<AppState, AppError> {
        let apps = lock(&self.apps);
        let e = apps
            .get(name)
            .ok_or_else(|| AppError::NotFound(name.into()))?;
        Ok(self.state_of(e))
    }

    fn state_of(&self, e: &Entry) -> AppState {
        let s = lock(&e.state);
        let kind = match classify(&e.cfg, &self.ctx.bin_path) {
            Ok(AppKind::Builtin(..)) => "builtin",
            Ok(AppKind::External(_)) => "external",
            Err(_) => "invalid",
        };
        let (detailed, error) = (s.detailed.clone(), s.error.clone());
        AppState {
            name: e.cfg.name.clone(),
            binary: e.cfg.binary.clone(),
            args: e.cfg.args.clone(),
            auto_start: e.cfg.auto_start,
            port: e.cfg.port,
            status: s.status,
            detailed_status: detailed,
            kind: kind.into(),
            error,
            pid: s.pid,
            uptime_secs: s.started.map(|t| t.elapsed().as_secs()),
            restarts: s.restarts,
        }
    }

    /// App configs (for writing back to the config file).
    pub fn configs(&self) -> Vec<AppConfig> {
        lock(&self.apps).values().map(|e| e.cfg.clone()).collect()
    }

    /// Adds an app (not started).
    pub fn add(&self, cfg: AppConfig) -> Result<(), AppError> {
        classify(&cfg, &self.ctx.bin_path)?;
        let mut apps = lock(&self.apps);
        if apps.contains_key(&cfg.name) {
            return Err(AppError::Exists(cfg.name));
        }
        apps.insert(
            cfg.name.clone(),
            Entry {
                cfg,
                state: Arc::default(),
                run: None,
            },
        );
        Ok(())
    }

    /// Changes an app's args and/or auto_start; a running app keeps its old args until restarted.
    pub fn update(
        &self,
        name: &str,
        args: Option<Vec<String>>,
        auto_start: Option<bool>,
    ) -> Result<AppState, AppError> {
        let mut apps = lock(&self.apps);
        let e = apps
            .get_mut(name)
            .ok_or_else(|| AppError::NotFound(name.into()))?;
        let mut cfg = e.cfg.clone();
        if let Some(a) = args {
            cfg.args = a;
        }
        if let Some(b) = auto_start {
            cfg.auto_start = b;
        }
        if let AppKind::Builtin(b, args) = classify(&cfg, &self.ctx.bin_path)? {
            check_builtin_args(b, &args)?;
        }
        e.cfg = cfg;
        Ok(self.state_of(e))
    }

    /// Starts an app (no-op if it is running).
    pub fn start(self: &Arc<Self>, name: &str) -> Result<AppState, AppError> {
        let mut apps = lock(&self.apps);
        let e = apps
            .get_mut(name)
            .ok_or_else(|| AppError::NotFound(name.into()))?;
        if let Some(r) = &e.run
            && !r.task.is_finished()
        {
            return Ok(self.state_of(e));
        }
        let kind = classify(&e.cfg, &self.ctx.bin_path)?;
        if let AppKind::Builtin(b, args) = &kind {
            check_builtin_args(*b, args)?;
        }
        {
            let mut s = lock(&e.state);
            *s = RunState {
                status: STATUS_STARTING,
                detailed: "Starting".into(),
                ..RunState::default()
            };
        }
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(supervise(
            self.ctx.clone(),
            e.cfg.clone(),
            kind,
            e.state.clone(),
            rx,
            self.log_path(name),
        ));
        e.run = Some(Running { stop: tx, task });
        Ok(self.state_of(e))
    }

    /// Stops an app and waits until it has cleaned up.
    pub async fn stop(&self, name: &str) -> Result<AppState, AppError> {
        let run = {
            let mut apps = lock(&self.apps);
            let e = apps
                .get_mut(name)
                .ok_or_else(|| AppError::NotFound(name.into()))?;
            e.run.take()
        };
        if let Some(r) = run {
            let _ = r.stop.send(true);
            let _ = r.task.await;
        }
        self.get(name)
    }

    /// Stops every app (shutdown).
    pub async fn stop_all(&self) {
        let runs: Vec<(String, Running)> = {
            let mut apps = lock(&self.apps);
            apps.iter_mut()
                .filter_map(|(n, e)| e.run.take().map(|r| (n.clone(), r)))
                .collect()
        };
        for (_, r) in &runs {
            let _ = r.stop.send(true);
        }
        for (n, r) in runs {
            if r.task.await.is_err() {
                tracing::warn!(app = %n, "app task panicked during stop");
            }
        }
    }

    /// The last `lines` lines of an app's log.
    pub fn log_tail(&self, name: &str, lines: usize) -> Result<Vec<String>, AppError> {
        self.get(name)?;
        let text = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        Ok(all[from..].iter().map(|s| s.to_string()).collect())
    }
}

/// Rejects unknown flags of a built-in app before it starts.
pub fn check_builtin_args(b: Builtin, args: &[String]) -> Result<(), AppError> {
    let f = Flags::parse(args)?;
    match b {
        Builtin::Skysocks => f.only("skysocks", &["passcode"]),
        Builtin::SkysocksClient => f.only(
            "skysocks-client",
            &["srv", "addr", "http", "passcode", "port"],
        ),
        Builtin::VpnServer => f.only("vpn-server", &["passcode", "secure", "netifc"]),
        Builtin::VpnClient => f.only(
            "vpn-client",
            &[
                "srv",
                "passcode",
                "killswitch",
                "dns",
                "tun",
                "allow-ipv6-leak",
            ],
        ),
    }
}

/// RFC 3339 UTC timestamp of now (seconds precision).
pub fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Appends one timestamped line to an app log.
fn log_line(path: &Path, line: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let res = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| writeln!(f, "{} [visor] {line}", rfc3339_now()));
    if let Err(e) = res {
        tracing::debug!(path = %path.display(), error = %e, "writing app log");
    }
}

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Runs an app until stopped, restarting it with backoff when it fails.
async fn supervise(
    ctx: AppContext,
    cfg: AppConfig,
    kind: AppKind,
    state: Arc<Mutex<RunState>>,
    mut stop: watch::Receiver<bool>,
    log: PathBuf,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        {
            let mut s = lock(&state);
            s.status = STATUS_STARTING;
            s.detailed = "Starting".into();
            s.started = Some(started);
        }
        log_line(&log, &format!("starting {} {:?}", cfg.name, cfg.args));
        let res = match &kind {
            AppKind::Builtin(b, args) => {
                run_builtin(&ctx, *b, args, cfg.port, &state, stop.clone()).await
            }
            AppKind::External(bin) => {
                run_external(&ctx, &cfg, bin, &state, stop.clone(), &log).await
            }
        };
        let stopping = *stop.borrow();
        {
            let mut s = lock(&state);
            s.pid = None;
            s.started = None;
            match &res {
                _ if stopping => {
                    s.status = STATUS_STOPPED;
                    s.detailed = "Stopped".into();
                }
                Ok(()) => {
                    s.status = STATUS_STOPPED;
                    s.detailed = "Stopped".into();
                }
                Err(e) => {
                    s.status = STATUS_ERRORED;
                    s.detailed = "Connection failed, reconnecting".into();
                    s.error = Some(e.clone());
                }
            }
        }
        match &res {
            Ok(()) => log_line(&log, "stopped"),
            Err(e) => log_line(&log, &format!("failed: {e}")),
        }
        if stopping {
            return;
        }
        let Err(e) = res else {
            // A clean exit on its own: the app is done (like the reference, no restart).
            return;
        };
        if started.elapsed() >= STABLE_AFTER {
            backoff = BACKOFF_MIN;
        }
        tracing::warn!(app = %cfg.name, error = %e, retry_in = ?backoff, "app failed; restarting");
        lock(&state).restarts += 1;
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stopped(&mut stop) => {
                let mut s = lock(&state);
                s.status = STATUS_STOPPED;
                s.detailed = "Stopped".into();
                return;
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|v| *v).await;
}

fn set_running(state: &Mutex<RunState>, detailed: &str) {
    let mut s = lock(state);
    s.status = STATUS_RUNNING;
    s.detailed = detailed.into();
}

async fn run_external(
    ctx: &AppContext,
    cfg: &AppConfig,
    bin: &Path,
    state: &Arc<Mutex<RunState>>,
    mut stop: watch::Receiver<bool>,
    log: &Path,
) -> Result<(), String> {
    let server = ctx
        .app_server
        .clone()
        .ok_or("the app server is not running (launcher.server_addr)")?;
    let spec = ProcSpec {
        name: cfg.name.clone(),
        binary: bin.to_path_buf(),
        args: cfg.args.clone(),
        work_dir: ctx.local_path.join(&cfg.name),
        port: cfg.port,
        log_path: log.to_path_buf(),
        env: Vec::new(),
    };
    let mut proc =
        Proc::spawn(&server, spec).map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let pid = proc.pid();
    if let Some(pid) = pid {
        let pid_file = ctx.local_path.join("apps-pid.txt");
        if let Err(e) = crate::proc::record_pid(&pid_file, &cfg.name, pid) {
            tracing::warn!(error = %e, "recording the app pid");
        }
    }
    {
        let mut s = lock(state);
        s.pid = pid;
        s.status = STATUS_RUNNING;
        s.detailed = "Running".into();
    }
    let status = loop {
        tokio::select! {
            r = proc.wait() => break r,
            () = stopped(&mut stop) => {
                lock(state).detailed = "Shutting down".into();
                return proc.stop(ctx.stop_grace).await.map(|_| ()).map_err(|e| e.to_string());
            }
            () = tokio::time::sleep(Duration::from_millis(250)) => {
                let (d, err) = (proc.detailed_status(), proc.app_error());
                let mut s = lock(state);
                if !d.is_empty() {
                    s.detailed = d;
                }
                if err.is_some() {
                    s.error = err;
                }
            }
        }
    };
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("exited with {s}")),
        Err(e) => Err(format!("waiting for the app: {e}")),
    }
}

async fn run_builtin(
    ctx: &AppContext,
    b: Builtin,
    args: &[String],
    port: u16,
    state: &Arc<Mutex<RunState>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let flags = Flags::parse(args).map_err(|e| e.to_string())?;
    let stopped = async move { stopped(&mut stop).await };
    match b {
        Builtin::Skysocks => {
            let port = if port == 0 {
                skywire_proxy::skysocks::SKYSOCKS_PORT
            } else {
                port
            };
            let listener = ctx
                .dmsg
                .listen(port)
                .map_err(|e| format!("listening on dmsg port {port}: {e}"))?;
            let cfg = skywire_proxy::SkysocksConfig {
                passcode: flags
                    .get("passcode")
                    .filter(|p| !p.is_empty())
                    .map(String::from),
                ..Default::default()
            };
            set_running(state, "Running");
            tokio::select! {
                () = skywire_proxy::skysocks::serve_skysocks(listener, cfg) => Err("the skysocks listener closed".into()),
                () = stopped => Ok(()),
            }
        }
        Builtin::SkysocksClient => {
            let srv: PubKey = flags
                .get("srv")
                .ok_or("skysocks-client needs --srv <pk>")?
                .parse()
                .map_err(|e| format!("--srv: {e}"))?;
            let remote_port: u16 = match flags.get("port") {
                Some(p) => p.parse().map_err(|e| format!("--port: {e}"))?,
                None => skywire_proxy::skysocks::SKYSOCKS_PORT,
            };
            let addr =
                parse_listen(flags.get("addr").unwrap_or(":1080")).map_err(|e| e.to_string())?;
            let socks = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("listening on {addr}: {e}"))?;
            let http = match flags.get("http") {
                Some(h) => {
                    let a = parse_listen(h).map_err(|e| e.to_string())?;
                    Some(
                        tokio::net::TcpListener::bind(a)
                            .await
                            .map_err(|e| format!("listening on {a}: {e}"))?,
                    )
                }
                None => None,
            };
            lock(state).detailed = "Connecting".into();
            let run = async {
                let conn = ctx
                    .dmsg
                    .dial(skywire_dmsg::Addr::new(srv, remote_port))
                    .await
                    .map_err(|e| format!("dialling skysocks {srv}:{remote_port}: {e}"))?;
                set_running(state, "Running");
                let session = skywire_proxy::skysocks::client_session(conn);
                let e = skywire_proxy::skysocks::serve_skysocks_client(
                    session,
                    socks,
                    http,
                    flags.get("passcode").map(String::from),
                )
                .await;
                Err::<(), String>(format!("the connection to the skysocks server ended: {e}"))
            };
            tokio::select! {
                r = run => r,
                () = stopped => Ok(()),
            }
        }
        Builtin::VpnServer => {
            let cfg = skywire_vpn::ServerConfig {
                passcode: flags.get("passcode").unwrap_or_default().to_string(),
                secure: flags.get("secure").is_none_or(|v| v != "false"),
                netifc: flags.get("netifc").map(String::from),
                state_dir: ctx.local_path.join("vpn-server"),
                port: if port == 0 {
                    skywire_vpn::proto::SERVER_PORT
                } else {
                    port
                },
                ..Default::default()
            };
            let handle = skywire_vpn::VpnServer::start(ctx.dmsg.clone(), cfg)
                .await
                .map_err(|e| {
                    format!(
                        "starting the VPN server: {}",
                        skywire_vpn::server::error_chain(&e)
                    )
                })?;
            set_running(state, "Running");
            stopped.await;
            lock(state).detailed = "Shutting down".into();
            handle.stop().await;
            Ok(())
        }
        Builtin::VpnClient => {
            let srv: PubKey = flags
                .get("srv")
                .ok_or("vpn-client needs --srv <pk> (cli vpn start <pk>)")?
                .parse()
                .map_err(|e| format!("--srv: {e}"))?;
            let mut cfg = skywire_vpn::ClientConfig::new(srv);
            cfg.passcode = flags.get("passcode").unwrap_or_default().to_string();
            cfg.killswitch = flags.bool("killswitch");
            cfg.block_ipv6 = !flags.bool("allow-ipv6-leak");
            if let Some(d) = flags.get("dns") {
                cfg.dns = d
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.trim().parse().map_err(|e| format!("--dns {s:?}: {e}")))
                    .collect::<Result<_, _>>()?;
            }
            if let Some(t) = flags.get("tun") {
                cfg.tun_name = t.to_string();
            }
            cfg.direct = lock(&ctx.direct_hosts).clone();
            cfg.state_dir = ctx.local_path.join("vpn-client");
            lock(state).detailed = "Connecting".into();
            let mut handle = skywire_vpn::VpnClient::start(ctx.dmsg.clone(), cfg)
                .await
                .map_err(|e| {
                    format!(
                        "starting the VPN client: {}",
                        skywire_vpn::server::error_chain(&e)
                    )
                })?;
            tokio::pin!(stopped);
            let res = loop {
                let st = handle.status();
                let detailed = match st.state.as_str() {
                    "connected" => "Running",
                    "reconnecting" => "Connection failed, reconnecting",
                    "connecting" => "Connecting",
                    _ => "Running",
                };
                {
                    let mut s = lock(state);
                    s.status = STATUS_RUNNING;
                    s.detailed = detailed.into();
                    s.error = st.last_error.clone();
                }
                tokio::select! {
                    r = handle.finished() => break r.map_err(|e| skywire_vpn::server::error_chain(&e)),
                    () = &mut stopped => break Ok(()),
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            };
            lock(state).detailed = "Shutting down".into();
            handle.stop().await;
            res
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn app(binary: &str, args: &[&str]) -> AppConfig {
        AppConfig {
            name: "x".into(),
            binary: binary.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            auto_start: false,
            port: 3,
        }
    }

    #[test]
    fn classifies_builtins_and_custom_apps() {
        let bin = Path::new("/nonexistent");
        assert_eq!(
            classify(
                &app("skywire", &["app", "skysocks", "--passcode", "p"]),
                bin
            )
            .unwrap(),
            AppKind::Builtin(Builtin::Skysocks, vec!["--passcode".into(), "p".into()])
        );
        assert_eq!(
            classify(&app("vpn-client", &["--srv", "k"]), bin).unwrap(),
            AppKind::Builtin(Builtin::VpnClient, vec!["--srv".into(), "k".into()])
        );
        assert_eq!(
            classify(&app("hello", &[]), bin).unwrap(),
            AppKind::External(PathBuf::from("/nonexistent/hello"))
        );
        let e = classify(&app("skywire", &["app", "skychat"]), bin)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not built into"), "{e}");
    }

    #[test]
    fn flags_parse_and_edit() {
        let args: Vec<String> = ["--srv", "abc", "--killswitch", "--dns=1.1.1.1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let f = Flags::parse(&args).unwrap();
        assert_eq!(f.get("srv"), Some("abc"));
        assert!(f.bool("killswitch"));
        assert_eq!(f.get("dns"), Some("1.1.1.1"));
        assert!(f.only("vpn-client", &["srv"]).is_err());
        let mut a = args.clone();
        set_flag(&mut a, "srv", Some("def"));
        set_flag(&mut a, "dns", None);
        assert_eq!(a, ["--killswitch", "--srv", "def"]);
        assert!(check_builtin_args(Builtin::Skysocks, &["--bogus".into()]).is_err());
    }

    #[test]
    fn timestamps_look_right() {
        let t = rfc3339_now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
