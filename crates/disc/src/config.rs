//! [`DiscConfig`]: everything the discovery service needs, as plain data with reference
//! defaults. Reading flags, files and the environment is the binary's job.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use skywire_cipher::PubKey;
pub use skywire_dmsg::disc::BuildInfo;

/// Reference listen address `:9090`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9090);
/// Default file of the embedded store.
pub const DEFAULT_REDB_PATH: &str = "dmsg-discovery.redb";
/// Reference Redis URL.
pub const DEFAULT_REDIS_URL: &str = "redis://localhost:6379";
/// Server entries expire after `2 × UpdateInterval`.
pub const DEFAULT_SERVER_ENTRY_TTL: Duration = Duration::from_secs(120);
/// TTL of client entries posted with `?timeout=true` (reference `store.DefaultTimeout`).
pub const DEFAULT_CLIENT_ENTRY_TIMEOUT: Duration = Duration::from_secs(180);
/// How often expired members are removed from the `servers` set.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Most entries `available_servers` returns.
pub const MAX_AVAILABLE_SERVERS: usize = 512;

/// Where entries live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In this process only; lost on exit.
    Memory,
    /// Embedded redb database file (the default). One process at a time.
    Redb(PathBuf),
    /// Redis, with the reference's keys, so several discovery instances share state.
    Redis {
        /// `redis://[user:pass@]host:port[/db]`.
        url: String,
        /// Overrides the URL's password (the reference reads `REDIS_PASSWORD`).
        password: Option<String>,
    },
}

impl Default for StoreConfig {
    fn default() -> StoreConfig {
        StoreConfig::Redb(PathBuf::from(DEFAULT_REDB_PATH))
    }
}

/// Configuration of the discovery service.
#[derive(Debug, Clone)]
pub struct DiscConfig {
    /// TCP address to listen on (`0.0.0.0:9090`; tests use `127.0.0.1:0`).
    pub listen: SocketAddr,
    /// Store backend.
    pub store: StoreConfig,
    /// Accept server entries with loopback or host-less addresses (`--test-mode`).
    pub test_mode: bool,
    /// Skip timestamp, signature and sequence checks (`--enable-load-testing`). Never in
    /// production.
    pub enable_load_testing: bool,
    /// Network-monitor keys allowed to call `DELETE /dmsg-discovery/deregister`.
    pub whitelist_keys: Vec<PubKey>,
    /// TTL of server entries.
    pub server_entry_ttl: Duration,
    /// TTL of client entries posted with `?timeout=true` (others never expire).
    pub client_entry_timeout: Duration,
    /// Interval of the expired-server sweep.
    pub sweep_interval: Duration,
    /// Cap of the `available_servers` answer.
    pub max_available_servers: usize,
    /// Timeout of each store operation (Redis response timeout).
    pub store_timeout: Duration,
    /// `build_info` of `/health`.
    pub build_info: BuildInfo,
    /// `dmsg_address` of `/health`, when the API is also served over dmsg.
    pub dmsg_address: Option<String>,
}

impl Default for DiscConfig {
    fn default() -> DiscConfig {
        DiscConfig {
            listen: DEFAULT_LISTEN,
            store: StoreConfig::default(),
            test_mode: false,
            enable_load_testing: false,
            whitelist_keys: Vec::new(),
            server_entry_ttl: DEFAULT_SERVER_ENTRY_TTL,
            client_entry_timeout: DEFAULT_CLIENT_ENTRY_TIMEOUT,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            max_available_servers: MAX_AVAILABLE_SERVERS,
            store_timeout: Duration::from_secs(10),
            build_info: BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..BuildInfo::default()
            },
            dmsg_address: None,
        }
    }
}

/// Parses a Go-style listen address: `:9090` (all IPv4 interfaces), `host:port`,
/// `[v6]:port`. Host names are resolved; the first result is used.
pub fn parse_listen_addr(s: &str) -> Option<SocketAddr> {
    if let Some(port) = s.strip_prefix(':') {
        return port
            .parse::<u16>()
            .ok()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    s.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addrs() {
        assert_eq!(parse_listen_addr(":9090"), Some(DEFAULT_LISTEN));
        assert_eq!(
            parse_listen_addr("127.0.0.1:0").map(|a| a.to_string()),
            Some("127.0.0.1:0".to_owned())
        );
        assert_eq!(
            parse_listen_addr("[::1]:80").map(|a| a.to_string()),
            Some("[::1]:80".to_owned())
        );
        assert_eq!(parse_listen_addr(":x"), None);
        assert_eq!(parse_listen_addr("nohostport"), None);
    }
}
