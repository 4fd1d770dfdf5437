//! `skywire visor [-c skywire-config.json]` (the daemon) and the commands that drive a running visor
//! through its control API: `skywire cli visor info|pk|version|app|tp|shutdown`, `skywire cli vpn
//! start|stop|status|list` and `skywire cli proxy start|stop|status`. Output is a table by default and
//! JSON with `--json`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use skywire_cipher::PubKey;
use skywire_visor::apps::AppState;
use skywire_visor::config::AppConfig;
use skywire_visor::control::{AddTransport, ProxyStart, VpnStart};
use skywire_visor::{ControlAddr, ControlClient, Visor, VisorConfig, VisorInfo};

/// Default control address (`cli_addr` of a generated config).
pub const DEFAULT_RPC: &str = "localhost:3435";

/// `skywire visor`.
#[derive(Debug, Args)]
pub struct VisorArgs {
    /// The visor config (`skywire cli config gen` writes one).
    #[arg(
        short = 'c',
        long,
        default_value = "skywire-config.json",
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// Log level (overrides `log_level` of the config): error, warn, info, debug, trace.
    #[arg(long)]
    pub log_level: Option<String>,
}

/// Runs the daemon until Ctrl-C, SIGTERM or `cli visor shutdown`.
pub fn run_daemon(a: VisorArgs, init_tracing: fn(&str)) -> Result<()> {
    let cfg = VisorConfig::load(&a.config)
        .with_context(|| format!("loading the visor config {}", a.config.display()))?;
    let level = a.log_level.clone().unwrap_or_else(|| {
        if cfg.log_level.is_empty() {
            "info".into()
        } else {
            cfg.log_level.clone()
        }
    });
    init_tracing(&level);
    crate::util::block_on(async move {
        let pk = cfg.pk;
        let visor = Visor::start(cfg, Some(a.config.clone()))
            .await
            .context("starting the visor")?;
        let info = visor.info();
        eprintln!("visor {pk} running");
        if let Some(c) = visor.control_addr() {
            eprintln!("control API on {c}");
        }
        if let Some(t) = info.pty_tcp {
            eprintln!("pty direct TCP on {t}");
        }
        if let Some(r) = info.resolver {
            eprintln!("resolving proxy (socks5h) on {r}");
        }
        skywire_visor::visor::sd_notify_ready();
        tokio::select! {
            () = crate::util::shutdown_signal() => {}
            () = visor.wait_shutdown_request() => {}
        }
        eprintln!("visor shutting down");
        visor.shutdown().await;
        Ok(())
    })?
}

/// Where the visor's control API is (`--rpc`, env `SKYWIRE_RPC`).
#[derive(Debug, Args, Clone)]
pub struct RpcArgs {
    /// Control API of the visor: `host:port` or `unix:/path` (the config's `cli_addr`).
    #[arg(long, global = true, env = "SKYWIRE_RPC", default_value = DEFAULT_RPC)]
    pub rpc: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

impl RpcArgs {
    /// The client.
    pub fn client(&self) -> ControlClient {
        ControlClient::new(ControlAddr::parse(&self.rpc))
    }
}

/// `skywire cli visor ...`.
#[derive(Debug, Subcommand)]
pub enum VisorCommand {
    /// Summary of the running visor.
    Info,
    /// The visor's public key.
    Pk,
    /// The visor's version.
    Version,
    /// Apps: `ls`, `start`, `stop`, `log`, `add`, `set`.
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Transports: `ls`, `add`, `rm`, `type`.
    Tp {
        #[command(subcommand)]
        command: TpCommand,
    },
    /// Stop the visor (apps stop and revert their changes first).
    Shutdown,
}

/// `skywire cli visor app ...`.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// List apps with their state.
    Ls,
    /// Start an app.
    Start {
        /// App name.
        name: String,
    },
    /// Stop an app.
    Stop {
        /// App name.
        name: String,
    },
    /// The last lines of an app's log.
    Log {
        /// App name.
        name: String,
        /// How many lines.
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
    },
    /// Add an app to the config (`--binary` in the launcher's bin_path).
    Add {
        /// Instance name.
        name: String,
        /// Binary name (`skywire` for built-in apps).
        #[arg(long)]
        binary: String,
        /// Routing port.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Start with the visor.
        #[arg(long)]
        auto_start: bool,
        /// Arguments after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Set (`--set flag=value`), remove (`--unset flag`) app flags, or auto_start.
    Set {
        /// App name.
        name: String,
        /// `flag=value`, repeatable.
        #[arg(long = "set", value_name = "FLAG=VALUE")]
        set: Vec<String>,
        /// Flag to remove, repeatable.
        #[arg(long = "unset", value_name = "FLAG")]
        unset: Vec<String>,
        /// Start with the visor.
        #[arg(long)]
        auto_start: Option<bool>,
    },
}

/// `skywire cli visor tp ...`.
#[derive(Debug, Subcommand)]
pub enum TpCommand {
    /// List transports.
    Ls,
    /// Transport types this visor can make.
    Type,
    /// Add a transport to a remote visor.
    Add {
        /// The remote visor's key.
        #[arg(short = 'r', long = "rpk", value_name = "PK")]
        remote: Option<PubKey>,
        /// The remote visor's key (positional form).
        #[arg(value_name = "PK", conflicts_with = "remote")]
        pk: Option<PubKey>,
        /// `stcp` (direct noise-TCP via `skywire-tcp.pk_table`) or `dmsg`.
        #[arg(short = 't', long = "type", default_value = "stcp")]
        tp_type: String,
        /// Dial deadline in seconds.
        #[arg(short = 'o', long, default_value_t = 20)]
        timeout: u64,
    },
    /// Remove a transport by ID.
    Rm {
        /// Transport ID (UUID).
        #[arg(short = 'i', long = "id", value_name = "UUID")]
        id: Option<String>,
        /// Transport ID (positional form).
        #[arg(value_name = "UUID", conflicts_with = "id")]
        uuid: Option<String>,
        /// Remove every transport.
        #[arg(short = 'a', long, conflicts_with_all = ["id", "uuid"])]
        all: bool,
    },
}

/// `skywire cli vpn ...`.
#[derive(Debug, Subcommand)]
pub enum VpnCommand {
    /// Route this machine through a VPN server (the visor's vpn-client app).
    Start {
        /// The VPN server's key.
        pk: PubKey,
        /// Server passcode.
        #[arg(long)]
        passcode: Option<String>,
        /// Block traffic outside the tunnel while it is down.
        #[arg(long)]
        killswitch: bool,
        /// DNS servers while connected (comma separated).
        #[arg(long)]
        dns: Option<String>,
        /// Do not wait for the tunnel to come up.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the tunnel.
        #[arg(long, default_value_t = 60)]
        wait_secs: u64,
    },
    /// Disconnect (routes and DNS are restored).
    Stop,
    /// The vpn-client state.
    Status,
    /// VPN servers from the service discovery.
    List,
}

/// `skywire cli proxy ...`.
#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Start a local SOCKS5 proxy through a skysocks server (the visor's skysocks-client app).
    Start {
        /// The skysocks server's key.
        #[arg(long = "pk", short = 'k')]
        pk: PubKey,
        /// Local SOCKS5 address.
        #[arg(long, default_value = "localhost:1080")]
        addr: String,
        /// Server passcode.
        #[arg(long)]
        passcode: Option<String>,
        /// Also an HTTP CONNECT proxy on this address.
        #[arg(long)]
        http: Option<String>,
        /// How long to wait for the connection.
        #[arg(long, default_value_t = 30)]
        wait_secs: u64,
    },
    /// Stop the proxy.
    Stop,
    /// The skysocks-client state.
    Status,
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A plain text table with aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.iter().map(|s| s.to_string()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

fn status_text(s: u8) -> &'static str {
    match s {
        0 => "stopped",
        1 => "running",
        2 => "errored",
        3 => "starting",
        _ => "unknown",
    }
}

fn app_rows(apps: &[AppState]) -> String {
    let rows: Vec<Vec<String>> = apps
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.port.to_string(),
                if a.auto_start { "yes" } else { "no" }.into(),
                status_text(a.status).into(),
                a.detailed_status.clone(),
                a.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &["app", "port", "auto_start", "status", "detail", "error"],
        &rows,
    )
}

fn print_app(json: bool, a: &AppState) -> Result<()> {
    if json {
        return print_json(a);
    }
    print!("{}", app_rows(std::slice::from_ref(a)));
    Ok(())
}

/// Runs `skywire cli visor ...`.
pub fn run_visor(cmd: VisorCommand, rpc: RpcArgs) -> Result<()> {
    crate::util::block_on(visor_cmd(cmd, rpc))?
}

async fn visor_cmd(cmd: VisorCommand, rpc: RpcArgs) -> Result<()> {
    let c = rpc.client();
    match cmd {
        VisorCommand::Info => {
            let i: VisorInfo = c.get("/api/visor").await?;
            if rpc.json {
                return print_json(&i);
            }
            let opt =
                |o: Option<std::net::SocketAddr>| o.map_or("-".to_string(), |a| a.to_string());
            let rows = vec![
                vec!["pk".into(), i.pk.to_string()],
                vec!["version".into(), i.version.clone()],
                vec!["uptime".into(), format!("{}s", i.uptime_secs)],
                vec!["dmsg discovery".into(), i.dmsg_discovery.clone()],
                vec![
                    "dmsg servers".into(),
                    i.dmsg_servers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                ],
                vec!["pty dmsg port".into(), i.pty_dmsg_port.to_string()],
                vec!["pty control socket".into(), i.pty_cli_address.clone()],
                vec!["pty tcp".into(), opt(i.pty_tcp)],
                vec!["stcp".into(), opt(i.stcp_addr)],
                vec!["resolver".into(), opt(i.resolver)],
                vec!["app server".into(), opt(i.app_server)],
                vec![
                    "apps".into(),
                    format!("{} ({} running)", i.apps_total, i.apps_running),
                ],
                vec!["transports".into(), i.transports.to_string()],
                vec![
                    "hypervisors".into(),
                    format!(
                        "{} configured, {} connected",
                        i.hypervisors.len(),
                        i.hypervisors_connected.len()
                    ),
                ],
                vec!["hypervisor ui".into(), opt(i.hypervisor_ui)],
            ];
            print!("{}", table(&["field", "value"], &rows));
        }
        VisorCommand::Pk => {
            let i: VisorInfo = c.get("/api/visor").await?;
            if rpc.json {
                return print_json(&json!({ "pk": i.pk }));
            }
            println!("{}", i.pk);
        }
        VisorCommand::Version => {
            let i: VisorInfo = c.get("/api/visor").await?;
            if rpc.json {
                return print_json(&json!({ "version": i.version }));
            }
            println!("{}", i.version);
        }
        VisorCommand::Shutdown => {
            let _: Value = c.post("/api/shutdown", &json!({})).await?;
            if !rpc.json {
                println!("visor shutting down");
            }
        }
        VisorCommand::App { command } => app_cmd(&c, command, rpc.json).await?,
        VisorCommand::Tp { command } => tp_cmd(&c, command, rpc.json).await?,
    }
    Ok(())
}

async fn app_cmd(c: &ControlClient, cmd: AppCommand, json: bool) -> Result<()> {
    match cmd {
        AppCommand::Ls => {
            let apps: Vec<AppState> = c.get("/api/apps").await?;
            if json {
                return print_json(&apps);
            }
            print!("{}", app_rows(&apps));
        }
        AppCommand::Start { name } => {
            let a: AppState = c
                .post(&format!("/api/apps/{name}/start"), &json!({}))
                .await?;
            print_app(json, &a)?;
        }
        AppCommand::Stop { name } => {
            let a: AppState = c
                .post(&format!("/api/apps/{name}/stop"), &json!({}))
                .await?;
            print_app(json, &a)?;
        }
        AppCommand::Log { name, lines } => {
            let v: Value = c
                .get(&format!("/api/apps/{name}/log?lines={lines}"))
                .await?;
            if json {
                return print_json(&v);
            }
            for l in v["lines"].as_array().into_iter().flatten() {
                println!("{}", l.as_str().unwrap_or_default());
            }
        }
        AppCommand::Add {
            name,
            binary,
            port,
            auto_start,
            args,
        } => {
            let a: AppState = c
                .post(
                    "/api/apps",
                    &AppConfig {
                        name,
                        binary,
                        args,
                        auto_start,
                        port,
                    },
                )
                .await?;
            print_app(json, &a)?;
        }
        AppCommand::Set {
            name,
            set,
            unset,
            auto_start,
        } => {
            let mut settings = serde_json::Map::new();
            for s in set {
                let (k, v) = s
                    .split_once('=')
                    .with_context(|| format!("--set {s:?}: expected FLAG=VALUE"))?;
                settings.insert(k.trim_start_matches('-').into(), Value::String(v.into()));
            }
            for k in unset {
                settings.insert(k.trim_start_matches('-').into(), Value::Null);
            }
            let mut body = json!({ "settings": settings });
            if let Some(b) = auto_start {
                body["auto_start"] = Value::Bool(b);
            }
            let a: AppState = c.put(&format!("/api/apps/{name}"), &body).await?;
            print_app(json, &a)?;
        }
    }
    Ok(())
}

async fn tp_cmd(c: &ControlClient, cmd: TpCommand, json: bool) -> Result<()> {
    match cmd {
        TpCommand::Ls => {
            let tps: Vec<Value> = c.get("/api/transports").await?;
            if json {
                return print_json(&tps);
            }
            let s = |v: &Value, k: &str| match &v[k] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let rows: Vec<Vec<String>> = tps
                .iter()
                .map(|t| {
                    vec![
                        s(t, "type"),
                        s(t, "id"),
                        s(t, "remote_pk"),
                        s(t, "label"),
                        s(t, "is_up"),
                    ]
                })
                .collect();
            print!("{}", table(&["type", "id", "remote", "label", "up"], &rows));
        }
        TpCommand::Type => {
            let t: Vec<String> = c.get("/api/transport-types").await?;
            if json {
                return print_json(&t);
            }
            for x in t {
                println!("{x}");
            }
        }
        TpCommand::Add {
            remote,
            pk,
            tp_type,
            timeout,
        } => {
            let Some(remote_pk) = remote.or(pk) else {
                bail!("give the remote visor's key (-r <pk> or positional)");
            };
            let t: Value = c
                .with_timeout_secs(timeout + 10)
                .post(
                    "/api/transports",
                    &AddTransport {
                        remote_pk,
                        tp_type,
                        timeout_secs: Some(timeout),
                    },
                )
                .await?;
            if json {
                return print_json(&t);
            }
            println!(
                "transport {} ({}) to {} is up",
                t["id"].as_str().unwrap_or("?"),
                t["type"].as_str().unwrap_or("?"),
                remote_pk
            );
        }
        TpCommand::Rm { id, uuid, all } => {
            let ids: Vec<String> = if all {
                let tps: Vec<Value> = c.get("/api/transports").await?;
                tps.iter()
                    .filter_map(|t| t["id"].as_str().map(String::from))
                    .collect()
            } else {
                vec![
                    id.or(uuid)
                        .context("give a transport ID (-i <uuid>) or --all")?,
                ]
            };
            for id in ids {
                let _: Value = c.delete(&format!("/api/transports/{id}")).await?;
                if !json {
                    println!("transport {id} removed");
                }
            }
        }
    }
    Ok(())
}

trait WithTimeoutSecs {
    fn with_timeout_secs(&self, secs: u64) -> ControlClient;
}

impl WithTimeoutSecs for ControlClient {
    fn with_timeout_secs(&self, secs: u64) -> ControlClient {
        self.clone().with_timeout(Duration::from_secs(secs))
    }
}

/// Polls an app until `done` says so or the deadline passes; returns the last state.
async fn wait_app(
    c: &ControlClient,
    name: &str,
    secs: u64,
    done: impl Fn(&AppState) -> bool,
) -> Result<AppState> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let a: AppState = c.get(&format!("/api/apps/{name}")).await?;
        if done(&a) || Instant::now() >= deadline {
            return Ok(a);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `skywire cli vpn ...`.
pub fn run_vpn(cmd: VpnCommand, rpc: RpcArgs) -> Result<()> {
    crate::util::block_on(vpn_cmd(cmd, rpc))?
}

async fn vpn_cmd(cmd: VpnCommand, rpc: RpcArgs) -> Result<()> {
    let c = rpc.client();
    match cmd {
        VpnCommand::Start {
            pk,
            passcode,
            killswitch,
            dns,
            no_wait,
            wait_secs,
        } => {
            let a: AppState = c
                .post(
                    "/api/vpn/start",
                    &VpnStart {
                        pk,
                        passcode,
                        killswitch,
                        dns,
                    },
                )
                .await?;
            let a = if no_wait {
                a
            } else {
                let a = wait_app(&c, "vpn-client", wait_secs, |a| {
                    (a.status == 1 && a.detailed_status == "Running") || a.status == 2
                })
                .await?;
                if a.status != 1 || a.detailed_status != "Running" {
                    bail!(
                        "the VPN did not come up: {} {}",
                        a.detailed_status,
                        a.error.clone().unwrap_or_default()
                    );
                }
                a
            };
            if rpc.json {
                return print_json(&a);
            }
            println!("vpn connected through {pk}");
        }
        VpnCommand::Stop => {
            let a: AppState = c.post("/api/vpn/stop", &json!({})).await?;
            if rpc.json {
                return print_json(&a);
            }
            println!("vpn stopped");
        }
        VpnCommand::Status => {
            let a: AppState = c.get("/api/vpn/status").await?;
            print_app(rpc.json, &a)?;
        }
        VpnCommand::List => {
            let v: Value = c.get("/api/vpn/list").await?;
            print_json(&v)?;
        }
    }
    Ok(())
}

/// Runs `skywire cli proxy ...`.
pub fn run_proxy(cmd: ProxyCommand, rpc: RpcArgs) -> Result<()> {
    crate::util::block_on(proxy_cmd(cmd, rpc))?
}

async fn proxy_cmd(cmd: ProxyCommand, rpc: RpcArgs) -> Result<()> {
    let c = rpc.client();
    match cmd {
        ProxyCommand::Start {
            pk,
            addr,
            passcode,
            http,
            wait_secs,
        } => {
            let _: AppState = c
                .post(
                    "/api/proxy/start",
                    &ProxyStart {
                        pk,
                        addr: Some(addr.clone()),
                        passcode,
                        http,
                    },
                )
                .await?;
            let a = wait_app(&c, "skysocks-client", wait_secs, |a| {
                (a.status == 1 && a.detailed_status == "Running") || a.status == 2
            })
            .await?;
            if a.status != 1 || a.detailed_status != "Running" {
                bail!(
                    "the proxy did not come up: {} {}",
                    a.detailed_status,
                    a.error.clone().unwrap_or_default()
                );
            }
            if rpc.json {
                return print_json(&a);
            }
            println!("socks5 proxy on {addr} through {pk}");
        }
        ProxyCommand::Stop => {
            let a: AppState = c.post("/api/proxy/stop", &json!({})).await?;
            if rpc.json {
                return print_json(&a);
            }
            println!("proxy stopped");
        }
        ProxyCommand::Status => {
            let a: AppState = c.get("/api/proxy/status").await?;
            print_app(rpc.json, &a)?;
        }
    }
    Ok(())
}

/// `skywire cli skynet ... --rpc ADDR`: the visor's built-in forwarding (apps.md 4.3) instead of
/// standalone processes; flags that only make sense for those (carriers, keys, state dir) are ignored.
pub fn run_skynet(cmd: crate::skynet::SkynetCommand, rpc: &str) -> Result<()> {
    crate::util::block_on(skynet_cmd(cmd, rpc))?
}

async fn skynet_cmd(cmd: crate::skynet::SkynetCommand, rpc: &str) -> Result<()> {
    use crate::skynet::{SkynetCommand as S, SrvCommand};
    use skywire_visor::skynet::{ClientInfo, ClientSpec, ServerSettings, SkynetStatus};
    let c = ControlClient::new(ControlAddr::parse(rpc));
    let print_clients = |clients: &[ClientInfo]| {
        let rows: Vec<Vec<String>> = clients
            .iter()
            .map(|i| {
                vec![
                    i.name.clone(),
                    i.local.to_string(),
                    format!("{}:{}", i.pk, i.remote),
                    if i.raw_tcp { "raw" } else { "http" }.into(),
                ]
            })
            .collect();
        print!("{}", table(&["name", "local", "remote", "mode"], &rows));
    };
    match cmd {
        S::Start(a) => {
            let pk =
                a.pk.or(a.pk_pos)
                    .context("give the remote visor's key (PK or --pk)")?;
            let info: ClientInfo = c
                .post(
                    "/api/skynet/clients",
                    &ClientSpec {
                        name: a.name.clone(),
                        pk,
                        remote: a.remote,
                        local: a.local,
                        bind: Some(a.bind.to_string()),
                        raw_tcp: a.raw_tcp,
                    },
                )
                .await?;
            println!(
                "{} started: {} -> {}:{}",
                info.name, info.local, info.pk, info.remote
            );
        }
        S::Status { name, .. } => {
            let st: SkynetStatus = c.get("/api/skynet").await?;
            let shown: Vec<ClientInfo> = st
                .clients
                .into_iter()
                .filter(|i| name.as_ref().is_none_or(|n| &i.name == n))
                .collect();
            if let (Some(n), true) = (&name, shown.is_empty()) {
                bail!("no skynet client named {n}");
            }
            print_clients(&shown);
        }
        S::Stop { name, .. } => {
            let names: Vec<String> = match name {
                Some(n) => vec![n],
                None => {
                    let st: SkynetStatus = c.get("/api/skynet").await?;
                    st.clients.into_iter().map(|i| i.name).collect()
                }
            };
            for n in names {
                let _: ClientInfo = c.delete(&format!("/api/skynet/clients/{n}")).await?;
                println!("{n} stopped");
            }
        }
        S::Srv { command } => match command {
            SrvCommand::Start(a) => {
                let s: ServerSettings = c
                    .put(
                        "/api/skynet/srv",
                        &ServerSettings {
                            ports: a.ports.iter().copied().collect(),
                            whitelist: a.wl.iter().copied().collect(),
                        },
                    )
                    .await?;
                println!(
                    "skynet forwarding exposes ports {:?} on dmsg port {}",
                    s.ports,
                    skywire_visor::skynet::FORWARD_PORT
                );
            }
            SrvCommand::Stop { .. } => {
                let _: ServerSettings =
                    c.put("/api/skynet/srv", &ServerSettings::default()).await?;
                println!("skynet forwarding exposes no ports");
            }
            SrvCommand::Status { .. } => {
                let st: SkynetStatus = c.get("/api/skynet").await?;
                println!(
                    "ports {:?}, whitelist {}, dmsg port {}",
                    st.server.ports,
                    if st.server.whitelist.is_empty() {
                        "every key".to_string()
                    } else {
                        st.server
                            .whitelist
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    },
                    st.forward_port
                );
            }
        },
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn tables_align() {
        let t = table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "a    bb\nxxx  y\n");
    }
}
