//! Configuration of the pty host (pty.md 4.3, 4.4): the standalone host's JSON config file
//! ([`HostConfig`], key names, defaults, `confgen` output, environment overrides) and the visor
//! config's `pty` section ([`VisorPtyConfig`], struct only), plus the atomic file write shared
//! with the whitelist persistence.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use skywire_cipher::{PubKey, SecKey};

/// G1 default dmsg discovery (the value `confgen` writes).
pub const DEFAULT_DMSG_DISC: &str = "http://dmsgd.skywire.skycoin.com";
/// Default minimum number of dmsg server sessions.
pub const DEFAULT_DMSG_SESSIONS: i64 = 1;
/// Default dmsg port of the pty host.
pub const DEFAULT_DMSG_PORT: u16 = 22;
/// Default direct-TCP (noise-XK) port clients use when a target has none.
pub const DEFAULT_TCP_PORT: u16 = 2022;
/// Default control-socket network.
pub const DEFAULT_CLI_NET: &str = "unix";
/// Control-socket file name of the standalone host (G1; what `confgen` writes).
pub const CLI_SOCKET_NAME_G1: &str = "dmsgpty.sock";
/// Control-socket file name of G3 hosts and the visor.
pub const CLI_SOCKET_NAME: &str = "pty.sock";
/// Default environment prefix of the standalone host.
pub const DEFAULT_ENV_PREFIX: &str = "DMSGPTY";
/// Canonical key of the visor config section.
pub const VISOR_SECTION_KEY: &str = "pty";
/// Legacy key of the visor config section (still accepted on load).
pub const LEGACY_VISOR_SECTION_KEY: &str = "dmsgpty";

/// Errors of loading, checking and writing configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading or writing a file failed.
    #[error("pty config file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The JSON is malformed or has a value of the wrong type.
    #[error("pty config JSON")]
    Json(#[source] serde_json::Error),
    /// `sk` is not a valid secret key.
    #[error("pty config: invalid sk")]
    InvalidSecretKey(#[source] skywire_cipher::CipherError),
    /// An environment override has an unusable value.
    #[error("pty config: environment variable {var} has invalid value {value:?}")]
    Env {
        /// The variable.
        var: String,
        /// Its value.
        value: String,
    },
}

/// Go's `os.TempDir()` joined with `name` (the default control-socket address).
pub fn default_cli_addr_in(tmp: &Path, name: &str) -> String {
    tmp.join(name).to_string_lossy().into_owned()
}

fn default_cli_addr_g1() -> String {
    default_cli_addr_in(&std::env::temp_dir(), CLI_SOCKET_NAME_G1)
}

fn default_cli_addr_g3() -> String {
    default_cli_addr_in(&std::env::temp_dir(), CLI_SOCKET_NAME)
}

/// The standalone host's config file (`dmsgpty-host`, `dmsg pty host`, `app pty dmsg`).
///
/// Keys and order are the reference's: `dmsgdisc, dmsgsessions, dmsgport, clinet, cliaddr, sk,
/// pk, wl`, then `tcplisten` (G2) and `ssh_listen` (G3), both omitted when empty. Keys this
/// struct does not know are kept in [`extra`](Self::extra) and written back. Absent keys take the
/// defaults (the Go loader zeroes `dmsgsessions`, `dmsgport` and `clinet` instead; see
/// pty.md 4.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostConfig {
    /// dmsg discovery address.
    #[serde(rename = "dmsgdisc")]
    pub dmsg_disc: String,
    /// Minimum number of dmsg server sessions.
    #[serde(rename = "dmsgsessions")]
    pub dmsg_sessions: i64,
    /// dmsg listening port.
    #[serde(rename = "dmsgport")]
    pub dmsg_port: u16,
    /// Control-socket network (`unix` or `tcp`).
    #[serde(rename = "clinet")]
    pub cli_net: String,
    /// Control-socket address.
    #[serde(rename = "cliaddr")]
    pub cli_addr: String,
    /// Host secret key, 64 hex characters (empty in a zero config).
    pub sk: String,
    /// Host public key, 66 hex characters (informational, written by `confgen`).
    pub pk: String,
    /// The whitelist (`null` until the first key is added).
    pub wl: Option<Vec<PubKey>>,
    /// G2 direct-TCP listen address.
    #[serde(rename = "tcplisten", skip_serializing_if = "String::is_empty")]
    pub tcp_listen: String,
    /// G3 name of the direct-TCP listen address (a `--tcplisten` flag overrides it).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ssh_listen: String,
    /// Keys not known to this version, preserved on rewrite.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Default for HostConfig {
    /// The reference's `DefaultConfig()`: G1 discovery, 1 session, port 22, `unix`,
    /// `<tmp>/dmsgpty.sock`, no key, `wl: null`.
    fn default() -> Self {
        HostConfig {
            dmsg_disc: DEFAULT_DMSG_DISC.to_owned(),
            dmsg_sessions: DEFAULT_DMSG_SESSIONS,
            dmsg_port: DEFAULT_DMSG_PORT,
            cli_net: DEFAULT_CLI_NET.to_owned(),
            cli_addr: default_cli_addr_g1(),
            sk: String::new(),
            pk: String::new(),
            wl: None,
            tcp_listen: String::new(),
            ssh_listen: String::new(),
            extra: serde_json::Map::new(),
        }
    }
}

impl HostConfig {
    /// The all-zero config the reference writes into an empty config file.
    pub fn zero() -> Self {
        HostConfig {
            dmsg_disc: String::new(),
            dmsg_sessions: 0,
            dmsg_port: 0,
            cli_net: String::new(),
            cli_addr: String::new(),
            ..HostConfig::default()
        }
    }

    /// `confgen`: the defaults with `sk` and its `pk` filled in.
    pub fn generate(sk: &SecKey) -> Self {
        HostConfig {
            sk: sk.to_hex(),
            pk: sk.pub_key().to_hex(),
            ..HostConfig::default()
        }
    }

    /// Parses a config file's contents; absent keys take the defaults.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        serde_json::from_slice(bytes).map_err(ConfigError::Json)
    }

    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&bytes)
    }

    /// The file `confgen` writes: 4-space indent and a trailing newline (Go's `json.Encoder`
    /// with `SetIndent("", "    ")`).
    pub fn to_confgen_json(&self) -> String {
        to_indented_json(self, b"    ", true)
    }

    /// The file the whitelist backend rewrites: 2-space indent, no trailing newline (Go's
    /// `json.MarshalIndent(conf, "", "  ")`).
    pub fn to_whitelist_file_json(&self) -> String {
        to_indented_json(self, b"  ", false)
    }

    /// The secret key, `None` when `sk` is empty.
    pub fn secret_key(&self) -> Result<Option<SecKey>, ConfigError> {
        if self.sk.is_empty() {
            return Ok(None);
        }
        SecKey::from_hex(&self.sk)
            .map(Some)
            .map_err(ConfigError::InvalidSecretKey)
    }

    /// The direct-TCP listen address: `tcplisten` if set, else `ssh_listen`.
    pub fn tcp_listen_addr(&self) -> Option<&str> {
        [&self.tcp_listen, &self.ssh_listen]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(String::as_str)
    }

    /// Applies the environment overrides `<PREFIX>_DMSGDISC`, `_DMSGSESSIONS`, `_DMSGPORT`,
    /// `_CLINET`, `_CLIADDR` (there is none for `sk`), reading variables through `get`.
    pub fn apply_env(
        &mut self,
        prefix: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let var = |name: &str| format!("{prefix}_{name}");
        if let Some(v) = get(&var("DMSGDISC")) {
            self.dmsg_disc = v;
        }
        if let Some(v) = get(&var("DMSGSESSIONS")) {
            self.dmsg_sessions = v.trim().parse().map_err(|_| ConfigError::Env {
                var: var("DMSGSESSIONS"),
                value: v.clone(),
            })?;
        }
        if let Some(v) = get(&var("DMSGPORT")) {
            self.dmsg_port = v.trim().parse().map_err(|_| ConfigError::Env {
                var: var("DMSGPORT"),
                value: v.clone(),
            })?;
        }
        if let Some(v) = get(&var("CLINET")) {
            self.cli_net = v;
        }
        if let Some(v) = get(&var("CLIADDR")) {
            self.cli_addr = v;
        }
        Ok(())
    }
}

fn to_indented_json<T: Serialize>(value: &T, indent: &[u8], newline: bool) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serializing plain data into memory cannot fail.
    if value.serialize(&mut ser).is_err() {
        return String::new();
    }
    if newline {
        out.push(b'\n');
    }
    String::from_utf8(out).unwrap_or_default()
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The visor config's `pty` section (legacy key `dmsgpty`). Struct only; the visor seeds its own
/// key and its hypervisors into the whitelist at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VisorPtyConfig {
    /// dmsg (and skynet mirror) listening port; 0 disables.
    pub dmsg_port: u16,
    /// Control-socket network; empty disables the socket.
    pub cli_network: String,
    /// Control-socket address.
    pub cli_address: String,
    /// Extra authorized keys.
    pub whitelist: Vec<PubKey>,
    /// G3 direct-TCP entry point (visor key as identity); omitted when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ssh_listen: String,
    /// G3: allow visor-RPC `DmsgPtyExec` against the visor's own key.
    #[serde(skip_serializing_if = "is_false")]
    pub allow_rpc_exec: bool,
    /// G3 persistent sessions (JSON key name unconfirmed in the reference).
    #[serde(skip_serializing_if = "is_false")]
    pub persistent_sessions: bool,
}

impl Default for VisorPtyConfig {
    fn default() -> Self {
        VisorPtyConfig {
            dmsg_port: DEFAULT_DMSG_PORT,
            cli_network: DEFAULT_CLI_NET.to_owned(),
            cli_address: default_cli_addr_g3(),
            whitelist: Vec::new(),
            ssh_listen: String::new(),
            allow_rpc_exec: false,
            persistent_sessions: false,
        }
    }
}

impl VisorPtyConfig {
    /// The section of a whole visor config: `pty`, else the legacy `dmsgpty`; `None` if absent
    /// or `null`.
    pub fn from_visor_config(visor: &serde_json::Value) -> Result<Option<Self>, ConfigError> {
        let section = [VISOR_SECTION_KEY, LEGACY_VISOR_SECTION_KEY]
            .into_iter()
            .filter_map(|k| visor.get(k))
            .find(|v| !v.is_null());
        section
            .map(|v| Self::deserialize(v).map_err(ConfigError::Json))
            .transpose()
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory (created with
/// `mode` on Unix), fsync, then rename over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ConfigError> {
    let io_err = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io_err)
}
