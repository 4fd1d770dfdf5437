//! `skywire dmsg disc`: runs the dmsg discovery service (`skywire-disc`). Flags mirror the
//! reference `dmsg-discovery` (`--addr/-a :9090`, `--redis`, `REDIS_PASSWORD`, `--test-mode/-t`,
//! `--entry-timeout`, `--enable-load-testing`, `--whitelist-keys`), plus `--store` for the
//! embedded default (a redb file) or `memory`. This file only turns flags into a
//! [`skywire_disc::DiscConfig`] and waits for Ctrl-C / SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use skywire_cipher::PubKey;
use skywire_disc::{DiscConfig, StoreConfig};

/// Run a dmsg discovery (entries of dmsg clients and servers, HTTP API on `--addr`).
#[derive(Debug, Clone, Args)]
pub struct DiscArgs {
    /// Address to listen on (Go form: `:9090` means all interfaces).
    #[arg(
        short = 'a',
        long = "addr",
        default_value = ":9090",
        value_name = "ADDR"
    )]
    pub addr: String,

    /// Embedded store: `memory`, or the path of a redb database file (created if missing).
    /// Ignored when `--redis` is given.
    #[arg(
        long,
        default_value = "./dmsg-discovery.redb",
        value_name = "memory|PATH"
    )]
    pub store: String,

    /// Use Redis instead of the embedded store (shared by several discovery instances). The
    /// password is taken from the REDIS_PASSWORD environment variable when set.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,

    /// Testing mode: accept server entries with loopback or host-less addresses.
    #[arg(short = 't', long)]
    pub test_mode: bool,

    /// Disable timestamp, signature and sequence checks (load tests only; never in production).
    #[arg(long)]
    pub enable_load_testing: bool,

    /// Network-monitor public keys allowed to call /dmsg-discovery/deregister (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "PK,...")]
    pub whitelist_keys: Vec<PubKey>,

    /// Lifetime of client entries posted with `?timeout=true` (Go duration, e.g. `3m`).
    #[arg(long, default_value = "3m", value_parser = parse_go_duration, value_name = "DURATION")]
    pub entry_timeout: Duration,
}

impl DiscArgs {
    /// The library configuration these flags describe. `redis_password` is REDIS_PASSWORD.
    pub fn to_config(&self, redis_password: Option<String>) -> anyhow::Result<DiscConfig> {
        let listen = skywire_disc::parse_listen_addr(&self.addr)
            .with_context(|| format!("invalid --addr {:?}", self.addr))?;
        let store = match &self.redis {
            Some(url) => StoreConfig::Redis {
                url: url.clone(),
                password: redis_password.filter(|p| !p.is_empty()),
            },
            None if self.store == "memory" => StoreConfig::Memory,
            None if self.store.is_empty() => bail!("--store needs `memory` or a file path"),
            None => StoreConfig::Redb(PathBuf::from(&self.store)),
        };
        Ok(DiscConfig {
            listen,
            store,
            test_mode: self.test_mode,
            enable_load_testing: self.enable_load_testing,
            whitelist_keys: self.whitelist_keys.clone(),
            client_entry_timeout: self.entry_timeout,
            build_info: skywire_disc::BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..skywire_disc::BuildInfo::default()
            },
            ..DiscConfig::default()
        })
    }
}

/// Runs the discovery until Ctrl-C or SIGTERM, on a new multi-threaded tokio runtime.
pub fn run(args: DiscArgs) -> anyhow::Result<()> {
    crate::util::block_on(run_async(args))?
}

/// [`run`] inside an existing tokio runtime.
pub async fn run_async(args: DiscArgs) -> anyhow::Result<()> {
    let config = args.to_config(std::env::var("REDIS_PASSWORD").ok())?;
    if config.enable_load_testing {
        tracing::warn!("load-testing mode: timestamps, signatures and sequences are NOT checked");
    }
    let store_text = match &config.store {
        StoreConfig::Memory => "memory".to_owned(),
        StoreConfig::Redb(p) => p.display().to_string(),
        StoreConfig::Redis { .. } => "redis".to_owned(),
    };
    let handle = skywire_disc::serve(config)
        .await
        .context("starting the dmsg discovery")?;
    eprintln!(
        "dmsg discovery listening on {} (store: {store_text})",
        handle.local_addr()
    );
    handle
        .run_until(shutdown_signal())
        .await
        .context("dmsg discovery failed")
}

async fn shutdown_signal() {
    crate::util::shutdown_signal().await;
    tracing::info!("shutting down the dmsg discovery");
}

/// Parses a Go `time.Duration` string: `300ms`, `1.5h`, `2h45m`, `3m0s`, `0`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {s:?} (examples: 3m, 180s, 1h30m, 500ms)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(err());
    }
    let s_plus = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    let mut rest = s_plus;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        disc: DiscArgs,
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_go_duration("3m0s"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("3").is_err());
        assert!(parse_go_duration("m").is_err());
        assert!(parse_go_duration("-1s").is_err());
    }

    #[test]
    fn defaults_and_flags() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from(["x"])?;
        let cfg = cli.disc.to_config(None)?;
        assert_eq!(cfg.listen, skywire_disc::config::DEFAULT_LISTEN);
        assert_eq!(
            cfg.store,
            StoreConfig::Redb(PathBuf::from("./dmsg-discovery.redb"))
        );
        assert_eq!(cfg.client_entry_timeout, Duration::from_secs(180));
        assert!(!cfg.test_mode);

        let pk = skywire_cipher::SecKey::generate().pub_key();
        let cli = Cli::try_parse_from([
            "x",
            "-a",
            "127.0.0.1:0",
            "-t",
            "--redis",
            "redis://127.0.0.1:6379",
            "--whitelist-keys",
            &format!("{pk},{pk}"),
            "--entry-timeout",
            "10s",
        ])?;
        let cfg = cli.disc.to_config(Some("pw".into()))?;
        assert!(cfg.test_mode);
        assert_eq!(cfg.whitelist_keys, vec![pk, pk]);
        assert_eq!(
            cfg.store,
            StoreConfig::Redis {
                url: "redis://127.0.0.1:6379".into(),
                password: Some("pw".into())
            }
        );
        let cli = Cli::try_parse_from(["x", "--store", "memory"])?;
        assert_eq!(cli.disc.to_config(None)?.store, StoreConfig::Memory);
        assert!(Cli::try_parse_from(["x", "--whitelist-keys", "zz"]).is_err());
        Ok(())
    }
}
