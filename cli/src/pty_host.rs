//! The standalone pty hosts (pty.md 4.3, 5, 9): `skywire dmsg pty host` (≡ `skywire app pty
//! dmsg`; G1 `dmsgpty-host`) with its `confgen`, `skywire app pty tcp --addr` (the same host,
//! TCP only) and `skywire cli pty host` (the sshd-shaped TCP-only host with an in-memory
//! whitelist). This file owns the flags, the config loading order (defaults → JSON from stdin
//! and/or `-c` → `DMSGPTY_*` environment → flags) and the glue to [`skywire_pty::PtyHost`]'s
//! listeners: the unix control socket, the dmsg port, the noise-XK TCP listener, and one
//! inherited connection for socket activation (`--listen-fd N`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use skywire_cipher::{PubKey, SecKey};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Client, ClientConfig};
use skywire_pty::config::{DEFAULT_ENV_PREFIX, DEFAULT_TCP_PORT};
use skywire_pty::{Carrier, HostConfig, HostHandle, PtyHost, PtyHostConfig, WhitelistStore};

use crate::util::{dialable, listen_addr};

/// Default config file of `dmsg pty host` (reference `-c/--confpath`).
pub const DEFAULT_CONF_PATH: &str = "./config.json";
/// Visor config read by `cli pty host` when neither `--sk-from-visor` nor `-c` gives a key.
pub const DEFAULT_VISOR_CONFIG: &str = "/opt/skywire/skywire.json";
/// Bound on stopping the listeners at shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// `skywire dmsg pty host` / `skywire app pty dmsg`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HostArgs {
    #[command(subcommand)]
    pub command: Option<HostCommand>,
    #[command(flatten)]
    pub opts: HostOpts,
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Print a new host config (new key pair, reference defaults), or write it to a file.
    Confgen(ConfgenArgs),
}

#[derive(Debug, Args)]
pub struct ConfgenArgs {
    /// Write the config to this file (mode 0644) instead of stdout.
    #[arg(value_name = "PATH", conflicts_with = "output")]
    pub path: Option<PathBuf>,
    /// Write the config to this file (same as PATH).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite the file if it exists.
    #[arg(long = "unsafe")]
    pub unsafe_overwrite: bool,
}

/// The host flags (reference names; `DMSGPTY_*` environment variables where the reference has
/// them).
#[derive(Debug, Clone, Args)]
pub struct HostOpts {
    /// Host config JSON (`sk`, `wl`, `dmsgdisc`, ...; see `confgen`); its `wl` is the whitelist
    /// and whitelist changes are written back to it. Default ./config.json (not read with
    /// --confstdin unless given).
    #[arg(
        short = 'c',
        long = "confpath",
        visible_alias = "config",
        value_name = "FILE"
    )]
    pub confpath: Option<PathBuf>,
    /// Read the config JSON from stdin (then the -c file, if given, on top).
    #[arg(long)]
    pub confstdin: bool,
    /// Prefix of the environment overrides (`<PREFIX>_DMSGDISC`, `_DMSGSESSIONS`, `_DMSGPORT`,
    /// `_CLINET`, `_CLIADDR`).
    #[arg(long, default_value = DEFAULT_ENV_PREFIX, value_name = "PREFIX")]
    pub envprefix: String,
    /// dmsg discovery URL (config `dmsgdisc`).
    #[arg(long, value_name = "URL")]
    pub dmsgdisc: Option<String>,
    /// Minimum number of dmsg server sessions (config `dmsgsessions`, 1).
    #[arg(long, value_name = "N")]
    pub dmsgsessions: Option<i64>,
    /// dmsg port to serve on (config `dmsgport`, 22).
    #[arg(long, value_name = "PORT")]
    pub dmsgport: Option<u16>,
    /// Control-socket network (config `clinet`; only `unix` is supported).
    #[arg(long, value_name = "NET")]
    pub clinet: Option<String>,
    /// Control-socket path (config `cliaddr`, `<tmp>/dmsgpty.sock`).
    #[arg(long, value_name = "PATH")]
    pub cliaddr: Option<String>,
    /// Keys added to the whitelist at start (comma-separated; written to the config's `wl`).
    #[arg(long = "wl", value_name = "PK,...", value_delimiter = ',')]
    pub wl: Vec<PubKey>,
    /// Also serve noise-XK over direct TCP on this address (`:2022`; config `ssh_listen`).
    #[arg(long, visible_alias = "tcp-listen", value_name = "ADDR")]
    pub tcplisten: Option<String>,
    /// No dmsg client or dmsg listener (TCP-only host).
    #[arg(long)]
    pub no_dmsg: bool,
    /// Take the identity from a visor config's `sk` (requires --no-dmsg; a `sk` in the host
    /// config still wins, as in the reference).
    #[arg(long, value_name = "SKYWIRE_CONFIG")]
    pub sk_from_visor: Option<PathBuf>,
    /// Serve exactly one already-accepted connection on this inherited file descriptor
    /// (systemd `Accept=yes` socket activation: 0 with `StandardInput=socket`, or 3), then
    /// exit. No control socket, no listeners.
    #[arg(long, value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    pub listen_fd: i32,
}

/// `skywire app pty tcp --addr <addr>`: the host with `--no-dmsg --tcplisten <addr>`.
#[derive(Debug, Args)]
pub struct AppTcpArgs {
    /// TCP listen address (`:2022`, `127.0.0.1:2022`, `[::]:2022`).
    #[arg(long, value_name = "ADDR")]
    pub addr: String,
    #[command(flatten)]
    pub opts: HostOpts,
}

/// `skywire cli pty host`: TCP-only host, in-memory whitelist, the visor's identity.
#[derive(Debug, Args)]
pub struct CliHostArgs {
    /// TCP listen address.
    #[arg(short = 'l', long, default_value = ":2022", value_name = "ADDR")]
    pub listen: String,
    /// Client keys allowed to connect (the authorized_keys equivalent; merged with the -c
    /// config's `wl`).
    #[arg(long, value_name = "PK,...", value_delimiter = ',')]
    pub allow: Vec<PubKey>,
    /// Visor config whose `sk` is the identity (default /opt/skywire/skywire.json when -c has
    /// no `sk`).
    #[arg(long, value_name = "SKYWIRE_CONFIG")]
    pub sk_from_visor: Option<PathBuf>,
    /// Standalone host config: its `sk` wins over the visor key, its `wl` is merged with --allow.
    #[arg(short = 'c', long = "conf", value_name = "FILE")]
    pub conf: Option<PathBuf>,
    /// Also serve the local control socket here (whitelist changes stay in memory).
    #[arg(long, value_name = "PATH")]
    pub cliaddr: Option<PathBuf>,
}

/// Runs `skywire dmsg pty host ...` / `skywire app pty dmsg ...`.
pub fn run(args: HostArgs) -> Result<()> {
    match args.command {
        Some(HostCommand::Confgen(c)) => confgen(&c),
        None => run_opts(args.opts),
    }
}

/// Runs `skywire app pty tcp --addr <addr>`.
pub fn run_app_tcp(args: AppTcpArgs) -> Result<()> {
    let mut opts = args.opts;
    opts.no_dmsg = true;
    opts.tcplisten = Some(args.addr);
    run_opts(opts)
}

fn confgen(args: &ConfgenArgs) -> Result<()> {
    let json = HostConfig::generate(&SecKey::generate()).to_confgen_json();
    let Some(path) = args.output.as_ref().or(args.path.as_ref()) else {
        let mut out = std::io::stdout().lock();
        out.write_all(json.as_bytes())
            .and_then(|()| out.flush())
            .context("writing the config")?;
        return Ok(());
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if args.unsafe_overwrite {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o644);
    }
    let mut f = opts.open(path).with_context(|| {
        if path.exists() && !args.unsafe_overwrite {
            format!("{} exists (use --unsafe to overwrite)", path.display())
        } else {
            format!("creating {}", path.display())
        }
    })?;
    f.write_all(json.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("pty host config written to {}", path.display());
    Ok(())
}

/// The `sk` of a visor config (`skywire-config.json`).
fn visor_sk(path: &Path) -> Result<SecKey> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    let Some(sk) = v.get("sk").and_then(|s| s.as_str()) else {
        bail!("{}: no `sk` string", path.display());
    };
    SecKey::from_hex(sk).with_context(|| format!("{}: invalid `sk`", path.display()))
}

/// The merged config and where its whitelist lives (the file, or memory with --confstdin only).
fn load_config(opts: &HostOpts) -> Result<(HostConfig, Option<PathBuf>)> {
    let mut merged = serde_json::Map::new();
    if opts.confstdin {
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .context("reading the config from stdin")?;
        let v: serde_json::Value =
            serde_json::from_slice(&text).context("parsing the config from stdin")?;
        let serde_json::Value::Object(m) = v else {
            bail!("the config on stdin is not a JSON object");
        };
        merged.extend(m);
    }
    let path = match (&opts.confpath, opts.confstdin) {
        (Some(p), _) => Some(p.clone()),
        (None, false) => Some(PathBuf::from(DEFAULT_CONF_PATH)),
        (None, true) => None,
    };
    if let Some(p) = &path {
        let bytes = std::fs::read(p).with_context(|| {
            format!(
                "reading {} (create one with `skywire dmsg pty host confgen -o {}`)",
                p.display(),
                p.display()
            )
        })?;
        // An empty file is a zero config, as the reference's whitelist backend treats it.
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", p.display()))?;
            let serde_json::Value::Object(m) = v else {
                bail!("{} is not a JSON object", p.display());
            };
            merged.extend(m);
        }
    }
    let mut cfg: HostConfig =
        serde_json::from_value(serde_json::Value::Object(merged)).context("invalid host config")?;
    cfg.apply_env(&opts.envprefix, |k| std::env::var(k).ok())?;
    if let Some(v) = &opts.dmsgdisc {
        cfg.dmsg_disc.clone_from(v);
    }
    if let Some(v) = opts.dmsgsessions {
        cfg.dmsg_sessions = v;
    }
    if let Some(v) = opts.dmsgport {
        cfg.dmsg_port = v;
    }
    if let Some(v) = &opts.clinet {
        cfg.cli_net.clone_from(v);
    }
    if let Some(v) = &opts.cliaddr {
        cfg.cli_addr.clone_from(v);
    }
    Ok((cfg, path))
}

fn run_opts(opts: HostOpts) -> Result<()> {
    if opts.sk_from_visor.is_some() && !opts.no_dmsg {
        bail!("--sk-from-visor requires --no-dmsg (a dmsg host cannot share the visor's key)");
    }
    let (cfg, path) = load_config(&opts)?;
    let sk = match (cfg.secret_key()?, &opts.sk_from_visor) {
        (Some(sk), Some(visor)) => {
            eprintln!(
                "warning: the host config has its own `sk`; {} is not used",
                visor.display()
            );
            sk
        }
        (Some(sk), None) => sk,
        (None, Some(visor)) => visor_sk(visor)?,
        (None, None) => bail!(
            "the host config has no `sk` (generate one with `skywire dmsg pty host confgen`, or \
             use --sk-from-visor with --no-dmsg)"
        ),
    };
    let whitelist = match &path {
        Some(p) => WhitelistStore::file(p),
        None => WhitelistStore::memory(cfg.wl.clone().unwrap_or_default()),
    };
    let tcp = opts
        .tcplisten
        .clone()
        .or_else(|| cfg.tcp_listen_addr().map(str::to_owned))
        .filter(|s| !s.is_empty());
    let plan = Plan {
        sk,
        whitelist,
        add: opts.wl.clone(),
        control: Some(control_path(&cfg)?),
        tcp,
        dmsg: (!opts.no_dmsg).then(|| DmsgPlan {
            disc: cfg.dmsg_disc.clone(),
            sessions: cfg.dmsg_sessions,
            port: cfg.dmsg_port,
        }),
    };
    if opts.listen_fd >= 0 {
        return crate::util::block_on(serve_fd(plan, opts.listen_fd))?;
    }
    crate::util::block_on(serve(plan))?
}

fn control_path(cfg: &HostConfig) -> Result<PathBuf> {
    match cfg.cli_net.as_str() {
        "unix" => {}
        "" => bail!("`clinet` is empty (use \"unix\")"),
        other => bail!("control-socket network {other:?} is not supported (use \"unix\")"),
    }
    if cfg.cli_addr.is_empty() {
        bail!("`cliaddr` is empty");
    }
    Ok(PathBuf::from(&cfg.cli_addr))
}

/// Runs `skywire cli pty host`.
pub fn run_cli_host(args: CliHostArgs) -> Result<()> {
    let conf = args
        .conf
        .as_deref()
        .map(|p| HostConfig::load(p).with_context(|| format!("loading {}", p.display())))
        .transpose()?;
    let conf_sk = conf
        .as_ref()
        .map(HostConfig::secret_key)
        .transpose()?
        .flatten();
    let sk = match conf_sk {
        Some(sk) => sk,
        None => visor_sk(
            args.sk_from_visor
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_VISOR_CONFIG)),
        )?,
    };
    let mut keys: Vec<PubKey> = conf.and_then(|c| c.wl).unwrap_or_default();
    keys.extend(args.allow.iter().copied());
    if keys.is_empty() {
        bail!("empty whitelist: pass --allow <pk,...> or a -c config with `wl` entries");
    }
    let plan = Plan {
        sk,
        whitelist: WhitelistStore::memory(keys),
        add: Vec::new(),
        control: args.cliaddr,
        tcp: Some(args.listen),
        dmsg: None,
    };
    crate::util::block_on(serve(plan))?
}

struct DmsgPlan {
    disc: String,
    sessions: i64,
    port: u16,
}

/// What to serve.
struct Plan {
    sk: SecKey,
    whitelist: WhitelistStore,
    /// Keys added to the whitelist before serving.
    add: Vec<PubKey>,
    control: Option<PathBuf>,
    tcp: Option<String>,
    dmsg: Option<DmsgPlan>,
}

async fn make_host(plan: &Plan) -> Result<PtyHost> {
    let host = PtyHost::new(
        PtyHostConfig::new(plan.sk.clone())
            .with_whitelist(plan.whitelist.clone())
            .with_sftp(crate::pty_fs::host_sftp()),
    );
    if !plan.add.is_empty() {
        let out = plan
            .whitelist
            .add(plan.add.clone())
            .await
            .context("adding the --wl keys to the whitelist")?;
        if let Some(text) = out.error_text() {
            tracing::info!("{text}");
        }
    }
    eprintln!("pty host {}", host.pk());
    Ok(host)
}

async fn serve(plan: Plan) -> Result<()> {
    let host = make_host(&plan).await?;
    let mut handles: Vec<HostHandle> = Vec::new();
    let mut dmsg_client = None;
    let result = start_listeners(&plan, &host, &mut handles, &mut dmsg_client).await;
    if result.is_ok() {
        eprintln!("pty host ready");
        crate::util::shutdown_signal().await;
        tracing::info!("pty host: shutting down");
    }
    // Stops accepting, ends every session (pty children killed and reaped), removes the socket.
    for h in handles {
        if tokio::time::timeout(STOP_TIMEOUT, h.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("a pty host listener did not stop within {STOP_TIMEOUT:?}");
        }
    }
    if let Some(c) = dmsg_client {
        let _ = tokio::time::timeout(STOP_TIMEOUT, c.close()).await;
    }
    result
}

async fn start_listeners(
    plan: &Plan,
    host: &PtyHost,
    handles: &mut Vec<HostHandle>,
    dmsg_client: &mut Option<Client>,
) -> Result<()> {
    if let Some(path) = &plan.control {
        let h = host
            .serve_unix(path)
            .with_context(|| format!("serving the control socket {}", path.display()))?;
        eprintln!("pty host control socket unix://{}", path.display());
        handles.push(h);
    }
    if let Some(text) = &plan.tcp {
        let addr = listen_addr(text, "TCP listen address")?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {text}"))?;
        let h = host.serve_tcp(listener);
        let bound = h.local_addr().unwrap_or(addr);
        eprintln!(
            "pty host listening on tcp {bound} (clients: tcp://{}@{}:{})",
            host.pk(),
            dialable(bound).ip(),
            bound.port()
        );
        if bound.port() != DEFAULT_TCP_PORT {
            tracing::debug!("clients must name the port: the default is {DEFAULT_TCP_PORT}");
        }
        handles.push(h);
    }
    if let Some(d) = &plan.dmsg {
        if d.disc.starts_with("dmsg://") {
            bail!(
                "dmsg discovery {:?}: discovery over dmsg is not supported, use an http(s) URL \
                 (--dmsgdisc)",
                d.disc
            );
        }
        if d.port == 0 {
            bail!("`dmsgport` is 0");
        }
        let disc = DiscClient::new(&d.disc)
            .with_context(|| format!("invalid dmsg discovery URL {:?}", d.disc))?;
        let mut cfg = ClientConfig::new(plan.sk.clone(), disc);
        cfg.min_sessions = usize::try_from(d.sessions).unwrap_or(0).max(1);
        let client = Client::start(cfg);
        // The control socket's `dmsgpty/proxy` dials other hosts with this client (pty.md 2.3).
        host.set_dmsg_client(client.clone());
        let listener = client
            .listen(d.port)
            .with_context(|| format!("listening on dmsg port {}", d.port))?;
        handles.push(host.serve_dmsg(listener));
        // Tell the operator once the host is reachable (it keeps trying in the background).
        let waiter = client.clone();
        let disc_text = d.disc.clone();
        tokio::spawn(async move {
            match waiter.ready(Duration::from_secs(24 * 3600)).await {
                Ok(()) => eprintln!("pty host registered in dmsg discovery {disc_text}"),
                Err(e) => tracing::warn!("pty host: dmsg registration: {e}"),
            }
        });
        *dmsg_client = Some(client);
        eprintln!(
            "pty host listening on dmsg://{}:{} (discovery {})",
            host.pk(),
            d.port,
            d.disc
        );
    }
    Ok(())
}

/// Serves the one connection on inherited descriptor `fd` (noise-XK responder, whitelist gate,
/// one session), then returns.
async fn serve_fd(plan: Plan, fd: i32) -> Result<()> {
    let host = make_host(&plan).await?;
    if plan.dmsg.is_some() {
        tracing::info!("--listen-fd: serving the inherited connection only (no dmsg listener)");
    }
    let stream = inherited_stream(fd)?;
    let ns = skywire_noise::NoiseStream::xk_responder(
        stream,
        &plan.sk,
        skywire_pty::host::TCP_HANDSHAKE_TIMEOUT,
    )
    .await
    .context("noise handshake on the inherited connection")?;
    let remote = *ns.remote_pk();
    tokio::select! {
        res = host.serve_stream(ns, Some(remote), Carrier::Tcp) => {
            res.with_context(|| format!("serving {remote}"))
        }
        () = crate::util::shutdown_signal() => Ok(()),
    }
}

/// The connected socket on descriptor `fd`: 0-2 are the standard streams (inetd style), 3 and
/// up come from systemd (`LISTEN_FDS`, `LISTEN_FDS_FIRST_FD`).
fn inherited_stream(fd: i32) -> Result<tokio::net::TcpStream> {
    use std::os::fd::{AsFd, OwnedFd};
    let taken = |r: std::io::Result<OwnedFd>| r.with_context(|| format!("taking descriptor {fd}"));
    let owned: OwnedFd = match fd {
        0 => taken(std::io::stdin().as_fd().try_clone_to_owned())?,
        1 => taken(std::io::stdout().as_fd().try_clone_to_owned())?,
        2 => taken(std::io::stderr().as_fd().try_clone_to_owned())?,
        _ => {
            let first: i32 = std::env::var("LISTEN_FDS_FIRST_FD")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(3);
            let idx = usize::try_from(fd - first)
                .with_context(|| format!("--listen-fd {fd}: below the first passed fd {first}"))?;
            let mut fds = listenfd::ListenFd::from_env();
            let owned = match fds.take_tcp_listener(idx) {
                Ok(Some(s)) => Some(OwnedFd::from(s)),
                Ok(None) => None,
                Err(_) => fds.take_unix_listener(idx)?.map(OwnedFd::from),
            };
            owned.with_context(|| {
                format!("--listen-fd {fd}: not passed by the service manager (LISTEN_FDS)")
            })?
        }
    };
    let std_stream = std::net::TcpStream::from(owned);
    std_stream
        .set_nonblocking(true)
        .with_context(|| format!("descriptor {fd} is not a socket"))?;
    tokio::net::TcpStream::from_std(std_stream)
        .with_context(|| format!("descriptor {fd} is not a usable socket"))
}
