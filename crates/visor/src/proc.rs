//! The child-process launcher for custom apps: [`Proc`] registers a fresh proc key with the
//! [`AppServer`], starts the app binary in its work directory (own process group, so a terminal
//! Ctrl-C reaches the visor only) with `PROC_CONFIG` and the legacy `APP_KEY`/`APP_SERVER_ADDR`/
//! `VISOR_PK` variables, appends its stdout and stderr line by line to a log file with an RFC 3339
//! timestamp, and stops it with SIGINT, a grace period and SIGKILL. Stopping (or the app exiting)
//! unregisters the key and closes every conn and listener the app still holds.
//!
//! Also the `apps-pid.txt` bookkeeping of the reference (apps.md §1.1 step 5): [`record_pid`]
//! appends `<name> <pid>`, [`kill_leftovers`] SIGKILLs everything listed (children of a visor
//! that crashed) and empties the file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use skywire_app::config::{
    ENV_APP_KEY, ENV_APP_SERVER_ADDR, ENV_PROC_CONFIG, ENV_VISOR_PK, ProcConfig,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::appserver::{AppServer, Registration};

/// Longest log line kept whole; longer output is split into lines of this size.
const MAX_LOG_LINE: u64 = 64 * 1024;
/// How long `wait` lets the log readers drain after the child exited (a grandchild may still
/// hold the pipes).
const LOG_DRAIN: Duration = Duration::from_secs(2);

/// What to launch.
#[derive(Debug, Clone, Default)]
pub struct ProcSpec {
    /// The app's instance name (visor config `name`).
    pub name: String,
    /// The executable.
    pub binary: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory (created 0755 if missing).
    pub work_dir: PathBuf,
    /// The app's nominal routing port (`routing_port` in `PROC_CONFIG`).
    pub port: u16,
    /// Log file; stdout and stderr lines are appended to it.
    pub log_path: PathBuf,
    /// Extra environment variables (on top of the visor's environment).
    pub env: Vec<(String, String)>,
}

/// Launcher errors.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The work directory could not be created.
    #[error("app {name}: cannot create work dir {path}")]
    WorkDir {
        /// The app.
        name: String,
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The log file could not be opened.
    #[error("app {name}: cannot open log file {path}")]
    Log {
        /// The app.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The binary could not be started.
    #[error("app {name}: cannot start {binary}")]
    Spawn {
        /// The app.
        name: String,
        /// The binary.
        binary: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A running (or finished) custom app.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    pid: Option<u32>,
    reg: Registration,
    log_tasks: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
    cleaned: bool,
}

impl Proc {
    /// Creates `work_dir`, registers a fresh random proc key with the server, spawns the child
    /// with `PROC_CONFIG` (the reference's keys, §1.1) plus the legacy `APP_KEY`,
    /// `APP_SERVER_ADDR` and `VISOR_PK` variables, and appends its stdout and stderr line by line
    /// (RFC 3339 timestamp prefix) to `log_path`. Must be called inside a tokio runtime.
    pub fn spawn(server: &Arc<AppServer>, spec: ProcSpec) -> Result<Proc, ProcError> {
        let name = spec.name.clone();
        std::fs::create_dir_all(&spec.work_dir).map_err(|source| ProcError::WorkDir {
            name: name.clone(),
            path: spec.work_dir.clone(),
            source,
        })?;
        let work_dir = std::path::absolute(&spec.work_dir).unwrap_or(spec.work_dir.clone());
        let binary = std::path::absolute(&spec.binary).unwrap_or(spec.binary.clone());
        if let Some(parent) = spec.log_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| ProcError::Log {
                name: name.clone(),
                path: spec.log_path.clone(),
                source,
            })?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_path)
            .map_err(|source| ProcError::Log {
                name: name.clone(),
                path: spec.log_path.clone(),
                source,
            })?;
        let log = Arc::new(Mutex::new(log));

        let reg = server.register(&name);
        let server_addr = server.local_addr().to_string();
        let visor_pk = server.visor_pk();
        let log_path = std::path::absolute(&spec.log_path).unwrap_or(spec.log_path.clone());
        let cfg = ProcConfig {
            app_name: name.clone(),
            app_server_addr: server_addr.clone(),
            proc_key: reg.key(),
            proc_args: spec.args.clone(),
            proc_envs: (!spec.env.is_empty())
                .then(|| spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            proc_work_dir: work_dir.display().to_string(),
            visor_pk,
            routing_port: spec.port,
            binary_loc: binary.display().to_string(),
            log_db_loc: String::new(),
            log_store_path: log_path.display().to_string(),
        };

        let mut cmd = Command::new(&binary);
        cmd.args(&spec.args)
            .current_dir(&work_dir)
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env(ENV_PROC_CONFIG, cfg.to_json())
            .env(ENV_APP_KEY, reg.key().to_hex())
            .env(ENV_APP_SERVER_ADDR, &server_addr)
            .env(ENV_VISOR_PK, visor_pk.to_hex())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| ProcError::Spawn {
            name: name.clone(),
            binary: binary.clone(),
            source,
        })?;
        let pid = child.id();
        tracing::info!(app = %name, pid, binary = %binary.display(), "app started");
        let mut log_tasks = Vec::new();
        if let Some(out) = child.stdout.take() {
            log_tasks.push(tokio::spawn(copy_lines(out, log.clone())));
        }
        if let Some(err) = child.stderr.take() {
            log_tasks.push(tokio::spawn(copy_lines(err, log)));
        }
        Ok(Proc {
            name,
            child,
            pid,
            reg,
            log_tasks,
            status: None,
            cleaned: false,
        })
    }

    /// The app's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's process ID.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The last detailed status the app set (`""` if none).
    pub fn detailed_status(&self) -> String {
        self.reg.detailed_status()
    }

    /// The last error the app set.
    pub fn app_error(&self) -> Option<String> {
        self.reg.app_error()
    }

    /// The routing port the app reported, if it did.
    pub fn app_port(&self) -> Option<u16> {
        self.reg.app_port()
    }

    /// Conns of this app open right now.
    pub fn connections(&self) -> usize {
        self.reg.connections()
    }

    /// The exit status, if the app has been waited for.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Waits for the app to exit, then lets its log drain and closes its conns and listeners.
    /// Cancel-safe: it can be raced in `select!` and called again.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = match self.status {
            Some(s) => s,
            None => {
                let s = self.child.wait().await?;
                self.status = Some(s);
                tracing::info!(app = %self.name, status = %s, "app exited");
                s
            }
        };
        if !self.cleaned {
            let drain = async {
                for t in &mut self.log_tasks {
                    let _ = t.await;
                }
            };
            if tokio::time::timeout(LOG_DRAIN, drain).await.is_err() {
                tracing::debug!(app = %self.name, "app output still open after exit");
            }
            self.reg.close().await;
            self.cleaned = true;
        }
        Ok(status)
    }

    /// SIGINT, waits up to `grace`, then SIGKILL; closes every conn and listener the app still
    /// holds.
    pub async fn stop(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        if self.status.is_none() {
            // `id()` is None once reaped, so the pid cannot belong to another process here.
            if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
            }
            match tokio::time::timeout(grace, self.child.wait()).await {
                Ok(r) => {
                    self.status = Some(r?);
                }
                Err(_) => {
                    tracing::warn!(app = %self.name, ?grace, "app ignored SIGINT; killing it");
                    self.child.start_kill()?;
                    self.status = Some(self.child.wait().await?);
                }
            }
        }
        self.wait().await
    }
}

/// Copies lines of `r` to the log with a timestamp prefix until EOF.
async fn copy_lines<R: AsyncRead + Unpin>(r: R, log: Arc<Mutex<std::fs::File>>) {
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut r)
            .take(MAX_LOG_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let mut out = rfc3339_utc(SystemTime::now()).into_bytes();
        out.push(b' ');
        out.extend_from_slice(&line);
        out.push(b'\n');
        let mut f = log.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(e) = f.write_all(&out) {
            tracing::debug!(error = %e, "app log write failed");
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC, milliseconds).
pub fn rfc3339_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Appends `<name> <pid>` to the pid file (created if missing).
pub fn record_pid(pid_file: &Path, name: &str, pid: u32) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(pid_file)?;
    writeln!(f, "{name} {pid}")
}

/// SIGKILLs every process listed in the pid file (apps left over by a visor that did not stop
/// them) and empties the file. Returns how many were killed; a missing file is 0. Lines that do
/// not end in a pid, pids 0 and 1 and our own pid are skipped.
pub fn kill_leftovers(pid_file: &Path) -> io::Result<usize> {
    let text = match std::fs::read_to_string(pid_file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let own = std::process::id();
    let mut killed = 0;
    for line in text.lines() {
        let Some(pid) = line
            .split_whitespace()
            .last()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid <= 1 || pid == own {
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        match kill(Pid::from_raw(raw), Signal::SIGKILL) {
            Ok(()) => {
                tracing::info!(line, "killed a left-over app process");
                killed += 1;
            }
            Err(e) => tracing::debug!(line, error = %e, "left-over app process not killed"),
        }
    }
    std::fs::write(pid_file, b"")?;
    Ok(killed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // 2000-02-29
        assert_eq!(rfc3339_utc(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_346_532); // disc's test vector
        assert_eq!(rfc3339_utc(t), "2026-11-22T11:22:12.000Z");
    }
}
