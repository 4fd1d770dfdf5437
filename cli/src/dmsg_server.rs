//! `skywire dmsg server`: runs a dmsg relay server from a reference `dmsg-server` JSON config
//! (`public_key`, `secret_key`, `discovery`, `public_address`, `local_address`,
//! `health_endpoint_address`, `log_level`, `update_interval`, `max_sessions`), with its
//! `/health` + `/metrics` endpoint, until Ctrl-C / SIGTERM (then it deregisters from
//! discovery). `skywire dmsg server config gen` writes such a config with a new identity. This
//! file owns the config file format and the glue to [`skywire_dmsg::ServerHandle`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use skywire_cipher::{PubKey, SecKey};
use skywire_dmsg::disc::{BuildInfo, DiscClient};
use skywire_dmsg::{HealthInfo, ServerConfig, ServerHandle};

use crate::util::{DEFAULT_DISCOVERY, TEST_DISCOVERY, dialable, listen_addr};

/// Reference defaults (`pkg/dmsgserver/config.go`).
pub const DEFAULT_LOCAL_ADDRESS: &str = ":8081";
/// Advertised address written by `config gen`.
pub const DEFAULT_PUBLIC_ADDRESS: &str = "127.0.0.1:8081";
/// Health endpoint written by `config gen`.
pub const DEFAULT_HEALTH_ADDRESS: &str = ":8082";
/// `max_sessions` written by `config gen`.
pub const DEFAULT_MAX_SESSIONS: i64 = 2048;
/// What the library uses when the file says 0 (reference `DefaultMaxSessions`).
const LIBRARY_MAX_SESSIONS: usize = 100;
/// What the library uses when `update_interval` is 0 (reference `DefaultUpdateInterval`).
const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_secs(60);

/// Run a dmsg relay server (`skywire dmsg server -c config.json`), or manage its config.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub command: Option<ServerCommand>,

    /// Config file in the reference dmsg-server format (see `skywire dmsg server config gen`).
    #[arg(
        short = 'c',
        long = "config",
        default_value = "config.json",
        value_name = "FILE"
    )]
    pub config: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Generate or inspect dmsg server config files.
    Config {
        #[command(subcommand)]
        command: ServerConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServerConfigCommand {
    /// Write a new config (new identity, reference defaults) to stdout or `-o FILE`.
    Gen(GenArgs),
}

#[derive(Debug, Args)]
pub struct GenArgs {
    /// Write the config to this file (mode 0600) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite the output file if it exists.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Use the test deployment's discovery (http://dmsgd.skywire.dev).
    #[arg(short = 't', long = "testenv")]
    pub testenv: bool,
    /// Discovery URL (overrides --testenv).
    #[arg(long, value_name = "URL")]
    pub discovery: Option<String>,
    /// Use this secret key (64 hex characters) instead of a new one.
    #[arg(long, value_name = "HEX")]
    pub sk: Option<SecKey>,
    /// `local_address`: where the server listens.
    #[arg(long, default_value = DEFAULT_LOCAL_ADDRESS, value_name = "ADDR")]
    pub local_address: String,
    /// `public_address`: what clients dial, advertised in discovery (empty: the bound address).
    #[arg(long, default_value = DEFAULT_PUBLIC_ADDRESS, value_name = "ADDR")]
    pub public_address: String,
    /// `health_endpoint_address`: where `/health` and `/metrics` are served.
    #[arg(long, default_value = DEFAULT_HEALTH_ADDRESS, value_name = "ADDR")]
    pub health_address: String,
}

/// The reference `dmsgserver.Config` JSON. Unknown keys are ignored; missing ones take the
/// values the reference falls back to at run time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerConfigFile {
    pub public_key: PubKey,
    pub secret_key: SecKey,
    #[serde(default)]
    pub discovery: String,
    #[serde(default)]
    pub public_address: String,
    #[serde(default)]
    pub local_address: String,
    #[serde(default)]
    pub health_endpoint_address: String,
    #[serde(default)]
    pub log_level: String,
    /// Go `time.Duration`: integer nanoseconds (a duration string such as `"1m"` is accepted).
    #[serde(default, with = "go_duration")]
    pub update_interval: Duration,
    #[serde(default)]
    pub max_sessions: i64,
    /// Server-to-server mesh peers of newer references: accepted, not used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<serde_json::Value>,
}

impl ServerConfigFile {
    /// A new config with the reference defaults.
    pub fn generate(args: &GenArgs) -> ServerConfigFile {
        let sk = args.sk.clone().unwrap_or_else(SecKey::generate);
        let discovery = match (&args.discovery, args.testenv) {
            (Some(d), _) => d.clone(),
            (None, true) => TEST_DISCOVERY.to_owned(),
            (None, false) => DEFAULT_DISCOVERY.to_owned(),
        };
        ServerConfigFile {
            public_key: sk.pub_key(),
            secret_key: sk,
            discovery,
            public_address: args.public_address.clone(),
            local_address: args.local_address.clone(),
            health_endpoint_address: args.health_address.clone(),
            log_level: "info".to_owned(),
            update_interval: Duration::ZERO,
            max_sessions: DEFAULT_MAX_SESSIONS,
            peers: Vec::new(),
        }
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<ServerConfigFile> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let cfg: ServerConfigFile = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        if cfg.secret_key.pub_key() != cfg.public_key {
            bail!(
                "{}: public_key does not belong to secret_key",
                path.display()
            );
        }
        Ok(cfg)
    }

    /// Go `json.MarshalIndent(c, "", "\t")` layout.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        self.serialize(&mut ser).context("encoding the config")?;
        out.push(b'\n');
        Ok(out)
    }

    /// `health_endpoint_address`, or the reference fallback `:<local port + 1>`.
    fn health_address(&self, local: &str) -> Result<String> {
        if !self.health_endpoint_address.is_empty() {
            return Ok(self.health_endpoint_address.clone());
        }
        let port = listen_addr(local, "local_address")?.port();
        Ok(format!(
            ":{}",
            if port == 0 { 0 } else { port.saturating_add(1) }
        ))
    }
}

mod go_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Nanos(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Nanos(n) => Ok(Duration::from_nanos(u64::try_from(n).unwrap_or(0))),
            Raw::Text(t) => {
                crate::dmsg_disc::parse_go_duration(&t).map_err(serde::de::Error::custom)
            }
        }
    }
}

/// Runs `skywire dmsg server ...`. `init_tracing` is called with the config's log level before
/// the server starts (the other commands get the default level from `main`).
pub fn run(args: ServerArgs, init_tracing: fn(&str)) -> Result<()> {
    match args.command {
        Some(ServerCommand::Config {
            command: ServerConfigCommand::Gen(gen_args),
        }) => {
            init_tracing("warn");
            generate(&gen_args)
        }
        None => {
            let cfg = ServerConfigFile::load(&args.config)?;
            init_tracing(go_log_level(&cfg.log_level));
            crate::util::block_on(serve(cfg))?
        }
    }
}

fn generate(args: &GenArgs) -> Result<()> {
    let json = ServerConfigFile::generate(args).to_json()?;
    let Some(path) = &args.output else {
        let mut out = std::io::stdout().lock();
        out.write_all(&json).context("writing the config")?;
        return out.flush().context("writing the config");
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if args.force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| {
        if path.exists() && !args.force {
            format!("{} exists (use --force to overwrite)", path.display())
        } else {
            format!("creating {}", path.display())
        }
    })?;
    f.write_all(&json)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("dmsg server config written to {}", path.display());
    Ok(())
}

/// Maps the reference's logrus levels to a tracing filter.
fn go_log_level(level: &str) -> &'static str {
    match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => "info",
    }
}

async fn serve(file: ServerConfigFile) -> Result<()> {
    let local_text = if file.local_address.is_empty() {
        DEFAULT_LOCAL_ADDRESS.to_owned()
    } else {
        file.local_address.clone()
    };
    let local = listen_addr(&local_text, "local_address")?;
    let health_text = file.health_address(&local_text)?;
    let health_addr = listen_addr(&health_text, "health_endpoint_address")?;
    let discovery = if file.discovery.is_empty() {
        DEFAULT_DISCOVERY
    } else {
        file.discovery.as_str()
    };
    let disc = DiscClient::new(discovery)
        .with_context(|| format!("invalid discovery URL {discovery:?}"))?;
    if !file.peers.is_empty() {
        tracing::warn!("`peers` (server-to-server mesh) is not supported and is ignored");
    }
    let max_sessions = usize::try_from(file.max_sessions)
        .ok()
        .filter(|&m| m > 0)
        .unwrap_or(LIBRARY_MAX_SESSIONS);

    // Bind the health endpoint first: a busy port fails before anything is registered.
    let health = tokio::net::TcpListener::bind(health_addr)
        .await
        .with_context(|| format!("binding the health endpoint on {health_text}"))?;
    let health_bound = health
        .local_addr()
        .context("reading the health endpoint address")?;

    let mut cfg = ServerConfig::new(file.secret_key.clone());
    cfg.local_addr = local;
    cfg.discovery = Some(disc);
    cfg.max_sessions = max_sessions;
    cfg.update_interval = if file.update_interval.is_zero() {
        DEFAULT_UPDATE_INTERVAL
    } else {
        file.update_interval
    };
    cfg.public_addr = match file.public_address.as_str() {
        "" if local.port() == 0 => None,
        "" => Some(dialable(local).to_string()),
        p => Some(p.to_owned()),
    };
    let handle = ServerHandle::start(cfg)
        .await
        .with_context(|| format!("starting the dmsg server on {local_text}"))?;
    let public = if file.public_address.is_empty() {
        dialable(handle.local_addr()).to_string()
    } else {
        file.public_address.clone()
    };
    eprintln!(
        "dmsg server {} listening on {} (public address {public}, discovery {discovery})",
        handle.pk(),
        handle.local_addr()
    );
    eprintln!("dmsg server health endpoint on http://{health_bound}/health");

    let info = HealthInfo {
        build_info: BuildInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..BuildInfo::default()
        },
        started_at: skywire_disc::timefmt::rfc3339_nano_utc(SystemTime::now()),
        max_sessions,
    };
    skywire_dmsg::serve_health(health, &handle, &info, crate::util::shutdown_signal()).await;
    tracing::info!("shutting down the dmsg server");
    // Closes every session and deletes the discovery entry.
    if tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("the dmsg server did not stop within 10 s");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        gen_args: GenArgs,
    }

    #[test]
    fn generated_config_has_reference_keys_and_defaults() -> Result<()> {
        let cli = Cli::try_parse_from(["x"])?;
        let cfg = ServerConfigFile::generate(&cli.gen_args);
        let text = String::from_utf8(cfg.to_json()?)?;
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("\t\""))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert_eq!(
            keys,
            [
                "public_key",
                "secret_key",
                "discovery",
                "public_address",
                "local_address",
                "health_endpoint_address",
                "log_level",
                "update_interval",
                "max_sessions"
            ]
        );
        let v: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(v["discovery"], DEFAULT_DISCOVERY);
        assert_eq!(v["local_address"], ":8081");
        assert_eq!(v["public_address"], "127.0.0.1:8081");
        assert_eq!(v["health_endpoint_address"], ":8082");
        assert_eq!(v["max_sessions"], 2048);
        assert_eq!(v["update_interval"], 0);
        assert_eq!(v["log_level"], "info");

        let cli = Cli::try_parse_from(["x", "-t"])?;
        assert_eq!(
            ServerConfigFile::generate(&cli.gen_args).discovery,
            TEST_DISCOVERY
        );
        Ok(())
    }

    #[test]
    fn loads_go_written_configs() -> Result<()> {
        let sk = SecKey::generate();
        let text = format!(
            r#"{{"public_key":"{}","secret_key":"{}","discovery":"http://d",
               "update_interval":60000000000,"max_sessions":5,"peers":[{{"x":1}}],"extra":true}}"#,
            sk.pub_key(),
            sk.to_hex()
        );
        let cfg: ServerConfigFile = serde_json::from_str(&text)?;
        assert_eq!(cfg.update_interval, Duration::from_secs(60));
        assert_eq!(cfg.local_address, "");
        assert_eq!(cfg.health_address(":9000")?, ":9001");
        let text = text.replace("60000000000", "\"90s\"");
        let cfg: ServerConfigFile = serde_json::from_str(&text)?;
        assert_eq!(cfg.update_interval, Duration::from_secs(90));
        assert_eq!(go_log_level("fatal"), "error");
        Ok(())
    }
}
