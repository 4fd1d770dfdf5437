//! `skywire cli skynet ...` (apps.md 4): `srv start|stop|status` runs the forwarding server
//! (exposed `--ports`, `--wl` client keys) and `start|status|stop` run clients named
//! `skynet-client-<local port>`. Without `--rpc` (the visor path lives in `visor.rs`) each instance is a detached
//! `skywire` process (re-executed with `--foreground`, its own process group, output in
//! `<state dir>/<name>.log`) that records `{name, pid, addresses}` in `<state dir>/<name>.json`;
//! `stop` sends SIGTERM, waits (SIGKILL after 10 s) and removes the file. This file also owns
//! those instance helpers, which `cli resolver` reuses.
//!
//! Carriers: `--dmsg` uses dmsg streams to the forwarding port (57, or 47 with `--handshake
//! 2025`); `--skynet` is the direct noise-XK TCP path with a `--peer <pk>@<ip>:<port>` address
//! book, because the visor's transports and router do not exist yet. Without either flag a
//! key with a `--peer` entry goes direct and any other over dmsg.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use skywire_cipher::PubKey;
use skywire_proxy::handshake::Variant;
use skywire_proxy::net::parse_peer;
use skywire_proxy::{Dialer, ForwardServer, ForwardServerConfig, Network};

use crate::skysocks::DmsgOpts;
use crate::util::{listen_addr, shutdown_signal};

/// Bound on a detached instance becoming ready.
const START_BOUND: Duration = Duration::from_secs(60);
/// Wait after SIGTERM before SIGKILL.
const STOP_BOUND: Duration = Duration::from_secs(10);
/// Name of the forwarding server instance.
pub const SERVER_NAME: &str = "skynet-srv";

// ---------------------------------------------------------------- instances

/// Where instance state files live.
#[derive(Debug, Clone, Args)]
pub struct StateOpts {
    /// Directory of the instance state files (default `$XDG_RUNTIME_DIR/skywire`, else
    /// `/tmp/skywire-<uid>`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateOpts {
    /// The directory (created).
    pub fn dir(&self) -> Result<PathBuf> {
        let dir = match &self.state_dir {
            Some(d) => d.clone(),
            None => match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(r) if !r.is_empty() => PathBuf::from(r).join("skywire"),
                _ => {
                    use std::os::unix::fs::MetadataExt;
                    let uid = std::fs::metadata("/proc/self")
                        .map(|m| m.uid())
                        .unwrap_or(0);
                    std::env::temp_dir().join(format!("skywire-{uid}"))
                }
            },
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating state directory {}", dir.display()))?;
        Ok(dir)
    }
}

/// One running instance, as recorded in its state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Instance {
    /// `skynet-client-<port>`, `skynet-srv`, `resolver`.
    pub name: String,
    /// Process id.
    pub pid: u32,
    /// Our public key.
    pub pk: PubKey,
    /// Named addresses (`local`, `tcp`, `dmsg`, `skynet`, ...).
    pub addrs: BTreeMap<String, String>,
    /// One line for `status`.
    pub detail: String,
}

fn state_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// Writes `inst`'s state file atomically.
pub fn write_state(dir: &Path, inst: &Instance) -> Result<()> {
    let path = state_path(dir, &inst.name);
    let tmp = dir.join(format!(".{}.{}.tmp", inst.name, inst.pid));
    std::fs::write(&tmp, serde_json::to_vec_pretty(inst)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
}

/// Removes `name`'s state file if it belongs to `pid`.
pub fn remove_state(dir: &Path, name: &str, pid: u32) {
    let path = state_path(dir, name);
    if read_state(&path).is_some_and(|i| i.pid == pid) {
        let _ = std::fs::remove_file(path);
    }
}

fn read_state(path: &Path) -> Option<Instance> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Instances whose name starts with `prefix` (stale ones are removed and skipped).
pub fn list(dir: &Path, prefix: &str) -> Vec<Instance> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        if let Some(inst) = read_state(&p)
            && inst.name.starts_with(prefix)
        {
            if alive(inst.pid) {
                out.push(inst);
            } else {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether `pid` is a live (non-zombie) process.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// SIGTERM, wait up to 10 s (then SIGKILL), remove the state file.
pub fn stop(dir: &Path, inst: &Instance) -> Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let pid = Pid::from_raw(i32::try_from(inst.pid).context("pid out of range")?);
    if alive(inst.pid) {
        kill(pid, Signal::SIGTERM).with_context(|| format!("signalling {}", inst.name))?;
        let deadline = Instant::now() + STOP_BOUND;
        while alive(inst.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive(inst.pid) {
            let _ = kill(pid, Signal::SIGKILL);
            let deadline = Instant::now() + STOP_BOUND;
            while alive(inst.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if alive(inst.pid) {
            bail!("{} (pid {}) did not exit", inst.name, inst.pid);
        }
    }
    let _ = std::fs::remove_file(state_path(dir, &inst.name));
    Ok(())
}

/// Re-executes this command with `--foreground` as a detached process and waits until it has
/// written its state file (or exited). `log` names the log file in `dir`.
pub fn detach(dir: &Path, log: &str) -> Result<Instance> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("locating the skywire binary")?;
    let log_path = dir.join(format!("{log}.log"));
    let out = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let err = out.try_clone().context("log file")?;
    let mut child = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg("--foreground")
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .context("starting the background process")?;
    let pid = child.id();
    let deadline = Instant::now() + START_BOUND;
    loop {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json")
                    && let Some(inst) = read_state(&p)
                    && inst.pid == pid
                {
                    return Ok(inst);
                }
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "the background process exited ({status}):\n{}",
                text.trim_end()
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the background process was not ready within {START_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `body` in the foreground with `inst` recorded while it runs.
pub async fn foreground<F>(dir: &Path, inst: Instance, body: F) -> Result<()>
where
    F: Future<Output = Result<()>>,
{
    write_state(dir, &inst)?;
    eprintln!("{} running (pid {}): {}", inst.name, inst.pid, inst.detail);
    let r = tokio::select! {
        r = body => r,
        () = shutdown_signal() => Ok(()),
    };
    remove_state(dir, &inst.name, inst.pid);
    r
}

fn print_instances(list: &[Instance]) {
    if list.is_empty() {
        println!("no instances running");
        return;
    }
    println!("{:<24} {:>8}  detail", "name", "pid");
    for i in list {
        println!("{:<24} {:>8}  {}", i.name, i.pid, i.detail);
    }
}

// ---------------------------------------------------------------- commands

/// `skywire cli skynet ...`.
#[derive(Debug, Subcommand)]
pub enum SkynetCommand {
    /// Start a client: map local port `--local` to `--remote` on `--pk`'s machine.
    Start(StartArgs),
    /// Show running clients (`skynet-client-*`), or one by name.
    Status {
        /// Instance name.
        name: Option<String>,
        #[command(flatten)]
        state: StateOpts,
    },
    /// Stop one client by name, or all `skynet-client-*` when no name is given.
    Stop {
        /// Instance name.
        name: Option<String>,
        #[command(flatten)]
        state: StateOpts,
    },
    /// The forwarding server (exposes local ports).
    Srv {
        #[command(subcommand)]
        command: SrvCommand,
    },
}

/// `skywire cli skynet srv ...`.
#[derive(Debug, Subcommand)]
pub enum SrvCommand {
    /// Start the forwarding server for `--ports`.
    Start(SrvStartArgs),
    /// Stop the forwarding server.
    Stop {
        #[command(flatten)]
        state: StateOpts,
    },
    /// Show the forwarding server.
    Status {
        #[command(flatten)]
        state: StateOpts,
    },
}

/// Handshake and carrier settings shared by the server and the clients.
#[derive(Debug, Clone, Args)]
pub struct WireOpts {
    /// Handshake generation: 2026 (ready byte, port 57) or 2024/2025 (no ready byte, port 47).
    #[arg(long, default_value = "2026", value_name = "YEAR")]
    pub handshake: Variant,
    /// dmsg port of the forwarding service (default by --handshake: 57 or 47).
    #[arg(long, value_name = "PORT")]
    pub forward_port: Option<u16>,
}

impl WireOpts {
    fn port(&self) -> u16 {
        self.forward_port
            .unwrap_or_else(|| self.handshake.default_port())
    }
}

/// `skywire cli skynet srv start`.
#[derive(Debug, Args)]
pub struct SrvStartArgs {
    /// Local TCP ports to expose (comma-separated).
    #[arg(
        short = 'p',
        long = "ports",
        visible_alias = "port",
        value_delimiter = ',',
        required = true,
        value_name = "PORT,..."
    )]
    pub ports: Vec<u16>,
    /// Only these client keys may connect (comma-separated; empty = everyone).
    #[arg(
        long = "wl",
        visible_alias = "whitelist",
        value_delimiter = ',',
        value_name = "PK,..."
    )]
    pub wl: Vec<PubKey>,
    /// Do not serve over dmsg.
    #[arg(long)]
    pub no_dmsg: bool,
    /// Also serve the direct noise-XK TCP path on this address (`--skynet` clients).
    #[arg(long, value_name = "ADDR")]
    pub tcp_listen: Option<String>,
    #[command(flatten)]
    pub wire: WireOpts,
    #[command(flatten)]
    pub dmsg: DmsgOpts,
    #[command(flatten)]
    pub state: StateOpts,
    /// Run in this process instead of detaching.
    #[arg(long)]
    pub foreground: bool,
}

/// `skywire cli skynet start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Remote public key (or --pk).
    #[arg(value_name = "PK", conflicts_with = "pk")]
    pub pk_pos: Option<PubKey>,
    /// Remote public key.
    #[arg(short = 'k', long = "pk", value_name = "PK")]
    pub pk: Option<PubKey>,
    /// Remote port.
    #[arg(short = 'r', long, value_name = "PORT")]
    pub remote: u16,
    /// Local port (0 picks one; the name uses the bound port).
    #[arg(short = 'l', long, value_name = "PORT")]
    pub local: u16,
    /// Local address to listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub bind: std::net::IpAddr,
    /// Raw TCP mode (any protocol) instead of HTTP mode.
    #[arg(long)]
    pub raw_tcp: bool,
    /// Instance name (default `skynet-client-<local port>`).
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,
    /// Use dmsg streams.
    #[arg(long, conflicts_with = "skynet")]
    pub dmsg: bool,
    /// Use the direct noise-XK TCP path (needs --peer for the key).
    #[arg(long)]
    pub skynet: bool,
    /// Direct-path address book entry `<pk>@<ip>:<port>` (repeatable).
    #[arg(long = "peer", value_parser = parse_peer, value_name = "PK@IP:PORT")]
    pub peers: Vec<(PubKey, SocketAddr)>,
    #[command(flatten)]
    pub wire: WireOpts,
    #[command(flatten)]
    pub dmsg_opts: DmsgOpts,
    #[command(flatten)]
    pub state: StateOpts,
    /// Run in this process instead of detaching.
    #[arg(long)]
    pub foreground: bool,
}

/// Runs `skywire cli skynet ...`.
pub fn run(cmd: SkynetCommand) -> Result<()> {
    match cmd {
        SkynetCommand::Start(a) => {
            let dir = a.state.dir()?;
            if a.foreground {
                crate::util::block_on(client_fg(a, dir))?
            } else {
                let log = format!("skynet-client-{}", std::process::id());
                let inst = detach(&dir, &log)?;
                println!("{} started (pid {}): {}", inst.name, inst.pid, inst.detail);
                Ok(())
            }
        }
        SkynetCommand::Status { name, state } => {
            let dir = state.dir()?;
            let all = list(&dir, "skynet-client-");
            let shown: Vec<_> = match &name {
                Some(n) => list(&dir, "")
                    .into_iter()
                    .filter(|i| &i.name == n)
                    .collect(),
                None => all,
            };
            if let (Some(n), true) = (&name, shown.is_empty()) {
                bail!("no running instance named {n}");
            }
            print_instances(&shown);
            Ok(())
        }
        SkynetCommand::Stop { name, state } => {
            let dir = state.dir()?;
            let targets: Vec<_> = match &name {
                Some(n) => list(&dir, "")
                    .into_iter()
                    .filter(|i| &i.name == n)
                    .collect(),
                None => list(&dir, "skynet-client-"),
            };
            if let (Some(n), true) = (&name, targets.is_empty()) {
                bail!("no running instance named {n}");
            }
            for i in &targets {
                stop(&dir, i)?;
                println!("stopped {}", i.name);
            }
            Ok(())
        }
        SkynetCommand::Srv { command } => match command {
            SrvCommand::Start(a) => {
                let dir = a.state.dir()?;
                if let Some(i) = list(&dir, SERVER_NAME).first() {
                    bail!("{} is already running (pid {})", i.name, i.pid);
                }
                if a.foreground {
                    crate::util::block_on(server_fg(a, dir))?
                } else {
                    let inst = detach(&dir, SERVER_NAME)?;
                    println!("{} started (pid {}): {}", inst.name, inst.pid, inst.detail);
                    Ok(())
                }
            }
            SrvCommand::Stop { state } => {
                let dir = state.dir()?;
                let Some(i) = list(&dir, SERVER_NAME).into_iter().next() else {
                    bail!("{SERVER_NAME} is not running");
                };
                stop(&dir, &i)?;
                println!("stopped {}", i.name);
                Ok(())
            }
            SrvCommand::Status { state } => {
                print_instances(&list(&state.dir()?, SERVER_NAME));
                Ok(())
            }
        },
    }
}

async fn server_fg(mut a: SrvStartArgs, dir: PathBuf) -> Result<()> {
    if a.no_dmsg && a.tcp_listen.is_none() {
        bail!("--no-dmsg needs --tcp-listen");
    }
    let sk = a.dmsg.secret();
    let server = ForwardServer::new(ForwardServerConfig {
        ports: a.ports.iter().copied().collect::<BTreeSet<_>>(),
        whitelist: a.wl.iter().copied().collect::<HashSet<_>>(),
        variant: a.wire.handshake,
        ..ForwardServerConfig::default()
    });
    let mut addrs = BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let tcp = match &a.tcp_listen {
        Some(t) => {
            let l = tokio::net::TcpListener::bind(listen_addr(t, "--tcp-listen")?)
                .await
                .with_context(|| format!("listening on {t}"))?;
            addrs.insert("tcp".to_owned(), l.local_addr()?.to_string());
            Some(l)
        }
        None => None,
    };
    if let Some(l) = tcp {
        tasks.spawn(server.clone().serve_direct(l, sk.clone()));
    }
    let client = if a.no_dmsg {
        None
    } else {
        let c = a.dmsg.client().await?;
        let port = a.wire.port();
        let l = c
            .listen(port)
            .with_context(|| format!("listening on dmsg port {port}"))?;
        addrs.insert("dmsg".to_owned(), format!("{}:{port}", c.pk()));
        tasks.spawn(server.clone().serve_dmsg(l));
        Some(c)
    };
    let ports: Vec<String> = a.ports.iter().map(u16::to_string).collect();
    let inst = Instance {
        name: SERVER_NAME.to_owned(),
        pid: std::process::id(),
        pk: sk.pub_key(),
        detail: format!(
            "pk {} ports {} {}{}",
            sk.pub_key(),
            ports.join(","),
            addrs
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(" "),
            if a.wl.is_empty() {
                String::new()
            } else {
                format!(" whitelist {}", a.wl.len())
            }
        ),
        addrs,
    };
    let r = foreground(&dir, inst, async {
        tasks.join_next().await;
        bail!("a listener stopped")
    })
    .await;
    if let Some(c) = client {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
    }
    r
}

async fn client_fg(mut a: StartArgs, dir: PathBuf) -> Result<()> {
    let Some(pk) = a.pk.or(a.pk_pos) else {
        bail!("the remote key is required (--pk PK or a positional PK)");
    };
    let book: HashMap<PubKey, SocketAddr> = a.peers.iter().copied().collect();
    if a.skynet && !book.contains_key(&pk) {
        bail!(
            "--skynet needs --peer {pk}@<ip>:<port> (the direct path has no address resolver yet)"
        );
    }
    let local = tokio::net::TcpListener::bind((a.bind, a.local))
        .await
        .with_context(|| format!("listening on {}:{}", a.bind, a.local))?;
    let local_addr = local.local_addr()?;
    let needs_dmsg = a.dmsg || (!a.skynet && !book.contains_key(&pk));
    let client = if needs_dmsg {
        Some(a.dmsg_opts.client().await?)
    } else {
        None
    };
    let network = match (&client, a.dmsg) {
        (Some(c), true) => Network::Dmsg(c.clone()),
        (c, _) => Network::Direct {
            sk: a.dmsg_opts.secret(),
            book,
            fallback: c.clone(),
        },
    };
    let via = match &network {
        Network::Dmsg(_) => "dmsg",
        Network::Direct { book, .. } if book.contains_key(&pk) => "skynet (direct)",
        Network::Direct { .. } => "dmsg",
    };
    let dialer = Arc::new(Dialer {
        variant: a.wire.handshake,
        forward_port: a.wire.port(),
        ..Dialer::new(network)
    });
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("skynet-client-{}", local_addr.port()));
    let mut addrs = BTreeMap::new();
    addrs.insert("local".to_owned(), local_addr.to_string());
    let inst = Instance {
        name,
        pid: std::process::id(),
        pk: a.dmsg_opts.secret().pub_key(),
        detail: format!(
            "{local_addr} -> {pk}:{} ({} over {via})",
            a.remote,
            if a.raw_tcp { "raw tcp" } else { "http" }
        ),
        addrs,
    };
    let r = foreground(&dir, inst, async {
        skywire_proxy::serve_forward_client(local, dialer, pk, a.remote, a.raw_tcp).await;
        bail!("the local listener stopped")
    })
    .await;
    if let Some(c) = client {
        let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
    }
    r
}
