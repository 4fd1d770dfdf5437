//! `skywire-config.json`: the visor configuration with the reference's key names (spec apps.md §7.1),
//! loading (2024 layout, the 2019-2020 `apps_path`/`apps` layout, the newer `pty`/`stcp` names and
//! string-form `args`), validation with clear errors, and generation of a fresh config (`config gen`).
//!
//! Sections this visor does not use (route finder, uptime tracker, rewards, ...) are kept verbatim in
//! [`VisorConfig::extra`] and written back unchanged, so a config edited by us still works for the Go visor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use skywire_cipher::{PubKey, SecKey};

/// Errors of loading, validating or writing a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The config path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON or has a wrong type somewhere.
    #[error("{path}: {source}")]
    Parse {
        /// The config path.
        path: PathBuf,
        /// The cause (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The public deployment's discovery (the reference default).
pub const DEFAULT_DMSG_DISC: &str = "http://dmsgd.skywire.skycoin.com";
/// The reference's test deployment discovery (`config gen -t`).
pub const TEST_DMSG_DISC: &str = "http://dmsgd.skywire.dev";

/// The whole config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisorConfig {
    /// Build version that wrote the file.
    #[serde(default)]
    pub version: String,
    /// The visor's secret key.
    pub sk: SecKey,
    /// The visor's public key (must match `sk`).
    pub pk: PubKey,
    /// dmsg client settings.
    #[serde(default)]
    pub dmsg: DmsgSection,
    /// The built-in pty host (`dmsgpty` in 2024 files, `pty` in newer ones).
    #[serde(default, alias = "pty")]
    pub dmsgpty: PtySection,
    /// Direct noise-TCP transports (`skywire-tcp`; `stcp` in older files).
    #[serde(default, rename = "skywire-tcp", alias = "stcp")]
    pub stcp: StcpSection,
    /// Apps.
    #[serde(default)]
    pub launcher: LauncherSection,
    /// Hypervisors allowed to manage this visor (the visor dials them on dmsg port 46).
    #[serde(default, deserialize_with = "null_as_default")]
    pub hypervisors: Vec<PubKey>,
    /// Control API address: `localhost:3435` (TCP) or `unix:/path` (unix socket).
    #[serde(default = "default_cli_addr")]
    pub cli_addr: String,
    /// Log level (`""` = info).
    #[serde(default)]
    pub log_level: String,
    /// Per-app working directories, logs and state.
    #[serde(default = "default_local_path")]
    pub local_path: String,
    /// How long shutdown may take before apps are killed (`"10s"`).
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: String,
    /// Transports re-dialled forever: `[{"pk": ..., "type": "stcp"}]`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub persistent_transports: Vec<PersistentTransport>,
    /// The resolving SOCKS5 proxy for `.dmsg` names (newer key `dmsg_web`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmsg_web: Option<DmsgWebSection>,
    /// Present on a hypervisor (`config gen -i`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<HypervisorSection>,
    /// Every other key, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn default_cli_addr() -> String {
    "localhost:3435".into()
}
fn default_local_path() -> String {
    "./local".into()
}
fn default_shutdown_timeout() -> String {
    "10s".into()
}

/// `dmsg`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DmsgSection {
    /// Discovery URL.
    #[serde(default = "default_disc")]
    pub discovery: String,
    /// Sessions to keep (servers to stay connected to).
    #[serde(default = "default_sessions")]
    pub sessions_count: usize,
    /// Static server entries (normally empty; fetched from discovery at run time).
    #[serde(default, deserialize_with = "null_as_default")]
    pub servers: Vec<Value>,
    /// `"all"` in generated configs.
    #[serde(default = "default_servers_type")]
    pub servers_type: String,
}

fn default_disc() -> String {
    DEFAULT_DMSG_DISC.into()
}
fn default_sessions() -> usize {
    2
}
fn default_servers_type() -> String {
    "all".into()
}

impl Default for DmsgSection {
    fn default() -> Self {
        DmsgSection {
            discovery: default_disc(),
            sessions_count: default_sessions(),
            servers: Vec::new(),
            servers_type: default_servers_type(),
        }
    }
}

/// `dmsgpty` / `pty`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PtySection {
    /// dmsg port of the pty host.
    #[serde(default = "default_pty_port")]
    pub dmsg_port: u16,
    /// Control socket network (`unix`).
    #[serde(default = "default_cli_network")]
    pub cli_network: String,
    /// Control socket path.
    #[serde(default = "default_pty_sock")]
    pub cli_address: String,
    /// Keys allowed to open shells and mounts (besides the hypervisors and the visor itself).
    #[serde(default, deserialize_with = "null_as_default")]
    pub whitelist: Vec<PubKey>,
    /// Direct noise-XK TCP entry (newer `ssh_listen`, e.g. `":2022"`); empty = off.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ssh_listen: String,
}

fn default_pty_port() -> u16 {
    22
}
fn default_cli_network() -> String {
    "unix".into()
}
fn default_pty_sock() -> String {
    std::env::temp_dir()
        .join("dmsgpty.sock")
        .to_string_lossy()
        .into_owned()
}

impl Default for PtySection {
    fn default() -> Self {
        PtySection {
            dmsg_port: default_pty_port(),
            cli_network: default_cli_network(),
            cli_address: default_pty_sock(),
            whitelist: Vec::new(),
            ssh_listen: String::new(),
        }
    }
}

/// `skywire-tcp` (stcp).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StcpSection {
    /// Public key -> `host:port` of its stcp listener.
    #[serde(default)]
    pub pk_table: Option<BTreeMap<PubKey, String>>,
    /// Where to listen for incoming stcp transports (`":7777"`; empty = no listener). `local_address`
    /// in the 2020 layout.
    #[serde(default = "default_stcp_listen", alias = "local_address")]
    pub listening_address: String,
}

fn default_stcp_listen() -> String {
    ":7777".into()
}

impl Default for StcpSection {
    fn default() -> Self {
        StcpSection {
            pk_table: None,
            listening_address: default_stcp_listen(),
        }
    }
}

/// `launcher`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LauncherSection {
    /// Service discovery URL (kept; this visor announces nothing yet).
    #[serde(default)]
    pub service_discovery: String,
    /// Configured apps.
    #[serde(default, deserialize_with = "null_as_default")]
    pub apps: Vec<AppConfig>,
    /// The local app server for custom apps.
    #[serde(default = "default_app_server")]
    pub server_addr: String,
    /// Where app binaries are looked up.
    #[serde(default = "default_bin_path")]
    pub bin_path: String,
    /// Reference UI option, kept.
    #[serde(default)]
    pub display_node_ip: bool,
}

fn default_app_server() -> String {
    "localhost:5505".into()
}
fn default_bin_path() -> String {
    "./".into()
}

impl Default for LauncherSection {
    fn default() -> Self {
        LauncherSection {
            service_discovery: String::new(),
            apps: Vec::new(),
            server_addr: default_app_server(),
            bin_path: default_bin_path(),
            display_node_ip: false,
        }
    }
}

/// One entry of `launcher.apps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppConfig {
    /// Unique instance name.
    pub name: String,
    /// Executable in `bin_path` (`skywire` for the built-in apps).
    #[serde(default)]
    pub binary: String,
    /// argv after the binary; a JSON array or (newer files) one shell-like string.
    #[serde(default, deserialize_with = "args_de")]
    pub args: Vec<String>,
    /// Started when the visor starts.
    #[serde(default)]
    pub auto_start: bool,
    /// The app's routing port.
    #[serde(default)]
    pub port: u16,
}

fn args_de<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Args {
        List(Vec<String>),
        Line(String),
        Null,
    }
    Ok(match Option::<Args>::deserialize(d)? {
        Some(Args::List(v)) => v,
        Some(Args::Line(s)) => split_args(&s).map_err(serde::de::Error::custom)?,
        Some(Args::Null) | None => Vec::new(),
    })
}

/// Splits a shell-like argument string: whitespace separates, single and double quotes group,
/// backslash escapes the next character (outside single quotes).
pub fn split_args(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated ' in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err(format!("trailing \\ in {s:?}")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated \" in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err(format!("trailing \\ in {s:?}")),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// One entry of `persistent_transports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistentTransport {
    /// Remote visor.
    pub pk: PubKey,
    /// Transport type (`stcp`, `dmsg`).
    #[serde(rename = "type")]
    pub tp_type: String,
}

/// `dmsg_web`: the resolving SOCKS5 proxy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DmsgWebSection {
    /// Run it.
    #[serde(default)]
    pub enable: bool,
    /// Local SOCKS5 port (4445).
    #[serde(default = "default_proxy_port")]
    pub proxy_port: u16,
    /// Bind address (`127.0.0.1`).
    #[serde(default = "default_proxy_bind")]
    pub proxy_addr: String,
    /// SOCKS5 proxy for names that are not `.dmsg` (empty = direct).
    #[serde(default)]
    pub upstream_socks: String,
    /// Every other key, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_proxy_port() -> u16 {
    4445
}
fn default_proxy_bind() -> String {
    "127.0.0.1".into()
}

/// `hypervisor`: the web UI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HypervisorSection {
    /// Where the UI is served (`":8000"`).
    #[serde(default = "default_hv_http")]
    pub http_addr: String,
    /// dmsg port the managed visors dial (46).
    #[serde(default = "default_hv_port")]
    pub dmsg_port: u16,
    /// Require a login.
    #[serde(default = "default_true")]
    pub enable_auth: bool,
    /// User database (password hash).
    #[serde(default = "default_hv_db")]
    pub db_path: String,
    /// Every other key, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_hv_http() -> String {
    ":8000".into()
}
fn default_hv_port() -> u16 {
    46
}
fn default_true() -> bool {
    true
}
fn default_hv_db() -> String {
    "./users.db".into()
}

impl VisorConfig {
    /// Reads and validates `path`; converts the 2019-2020 layout (`apps_path`, `apps[].app`).
    pub fn load(path: &Path) -> Result<VisorConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        VisorConfig::parse(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        })
    }

    /// Parses and validates a config text.
    pub fn parse(text: &str) -> Result<VisorConfig, ConfigError> {
        let parse_err = |source| ConfigError::Parse {
            path: PathBuf::from("<config>"),
            source,
        };
        let mut v: Value = serde_json::from_str(text).map_err(parse_err)?;
        let cfg: VisorConfig = if legacy_apps(&mut v) {
            serde_json::from_value(v).map_err(parse_err)?
        } else {
            // From the text, so errors carry line and column.
            serde_json::from_str(text).map_err(parse_err)?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Consistency checks with messages naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sk.pub_key() != self.pk {
            return Err(ConfigError::Invalid(format!(
                "\"pk\" {} does not belong to \"sk\" (its key is {})",
                self.pk,
                self.sk.pub_key()
            )));
        }
        let mut names = std::collections::BTreeSet::new();
        for app in &self.launcher.apps {
            if app.name.is_empty() {
                return Err(ConfigError::Invalid(
                    "launcher.apps: an app has an empty \"name\"".into(),
                ));
            }
            if !names.insert(app.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "launcher.apps: the name {:?} is used twice",
                    app.name
                )));
            }
        }
        parse_duration(&self.shutdown_timeout).map_err(|e| {
            ConfigError::Invalid(format!("shutdown_timeout {:?}: {e}", self.shutdown_timeout))
        })?;
        if self.dmsg.discovery.is_empty() {
            return Err(ConfigError::Invalid("dmsg.discovery is empty".into()));
        }
        Ok(())
    }

    /// `shutdown_timeout` as a duration (validated at load).
    pub fn shutdown_timeout(&self) -> Duration {
        parse_duration(&self.shutdown_timeout).unwrap_or(Duration::from_secs(10))
    }

    /// Pretty JSON as written to disk (with a trailing newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Writes the config to `path` (mode 0600: it holds the secret key).
    pub fn write(&self, path: &Path) -> Result<(), ConfigError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(self.to_json().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The config's `local_path` resolved against `base` (the config file's directory).
    pub fn local_path_in(&self, base: &Path) -> PathBuf {
        base.join(&self.local_path)
    }
}

/// Converts the 2019-2020 layout in place: top-level `apps_path` + `apps: [{app, ...}]` become
/// `launcher.bin_path` + `launcher.apps: [{name, binary, ...}]`. Returns whether it changed anything.
fn legacy_apps(v: &mut Value) -> bool {
    let Some(obj) = v.as_object_mut() else {
        return false;
    };
    if obj.contains_key("launcher") || !obj.contains_key("apps") {
        return false;
    }
    let (Some(apps), bin_path) = (obj.remove("apps"), obj.remove("apps_path")) else {
        return false;
    };
    let apps: Vec<Value> = apps
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut a| {
            if let Some(o) = a.as_object_mut()
                && let Some(name) = o.remove("app")
            {
                o.entry("binary").or_insert(name.clone());
                o.entry("name").or_insert(name);
            }
            a
        })
        .collect();
    let mut launcher = Map::new();
    launcher.insert("apps".into(), Value::Array(apps));
    if let Some(p) = bin_path {
        launcher.insert("bin_path".into(), p);
    }
    obj.insert("launcher".into(), Value::Object(launcher));
    true
}

/// Parses Go-style durations: `"10s"`, `"1m30s"`, `"500ms"`, `"168h0m0s"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in {s:?}"))?;
        let (num, tail) = rest.split_at(num_end);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("bad number {num:?} in {s:?}"))?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("unknown unit {unit:?} in {s:?}")),
        };
        total += Duration::try_from_secs_f64(n * secs).map_err(|e| format!("{s:?}: {e}"))?;
        rest = tail;
    }
    Ok(total)
}

/// Options of `skywire cli config gen`.
#[derive(Debug, Clone, Default)]
pub struct GenOptions {
    /// Keep this key (else a new one).
    pub sk: Option<SecKey>,
    /// dmsg discovery URL (default: the public deployment; `test` = the reference test deployment).
    pub dmsg_disc: Option<String>,
    /// Listen for stcp transports here (empty = the default `:7777`).
    pub stcp_local_address: Option<String>,
    /// Hypervisors that may manage this visor.
    pub hypervisor_pks: Vec<PubKey>,
    /// Make this visor a hypervisor (web UI on `:8000`).
    pub hypervisor: bool,
    /// Keys allowed to use the pty host.
    pub pty_whitelist: Vec<PubKey>,
    /// Package layout (`/var/lib/skywire`, `/opt/skywire/bin`, `/run/skywire`).
    pub package_paths: bool,
    /// Control API address.
    pub cli_addr: Option<String>,
    /// Direct pty TCP entry (`ssh_listen`).
    pub ssh_listen: Option<String>,
    /// Start vpn-server at boot.
    pub serve_vpn: bool,
    /// Do not start skysocks at boot.
    pub no_proxy_server: bool,
    /// skysocks passcode.
    pub proxy_server_pass: Option<String>,
    /// Run the `.dmsg` resolving proxy.
    pub resolver: bool,
    /// Local app server address.
    pub app_server_addr: Option<String>,
    /// dmsg sessions to keep.
    pub sessions: Option<usize>,
}

impl VisorConfig {
    /// A fresh config with the reference's defaults and the given options (spec apps.md §7.1).
    pub fn generate(opts: &GenOptions) -> VisorConfig {
        let sk = opts.sk.clone().unwrap_or_else(SecKey::generate);
        let pk = sk.pub_key();
        let (local_path, bin_path, pty_sock) = if opts.package_paths {
            (
                "/var/lib/skywire/local".to_string(),
                "/usr/bin".to_string(),
                "/run/skywire/dmsgpty.sock".to_string(),
            )
        } else {
            ("./local".into(), "./".into(), default_pty_sock())
        };
        let app = |name: &str, args: &[&str], auto_start: bool, port: u16| AppConfig {
            name: name.into(),
            binary: "skywire".into(),
            args: ["app", name]
                .iter()
                .chain(args)
                .map(|s| s.to_string())
                .collect(),
            auto_start,
            port,
        };
        let mut skysocks_args: Vec<&str> = Vec::new();
        if let Some(p) = &opts.proxy_server_pass {
            skysocks_args.extend(["--passcode", p.as_str()]);
        }
        let apps = vec![
            app("vpn-client", &[], false, 43),
            app("skysocks", &skysocks_args, !opts.no_proxy_server, 3),
            app("skysocks-client", &["--addr", ":1080"], false, 13),
            app("vpn-server", &[], opts.serve_vpn, 44),
        ];
        let dmsg_disc = match opts.dmsg_disc.as_deref() {
            None => DEFAULT_DMSG_DISC.to_string(),
            Some("test") => TEST_DMSG_DISC.to_string(),
            Some(u) => u.to_string(),
        };
        let mut extra = Map::new();
        extra.insert(
            "transport".into(),
            serde_json::json!({
                "discovery": "http://tpd.skywire.skycoin.com",
                "address_resolver": "http://ar.skywire.skycoin.com",
                "public_autoconnect": false,
                "transport_setup": [],
                "stcpr_port": 0,
                "sudph_port": 0
            }),
        );
        VisorConfig {
            version: env!("CARGO_PKG_VERSION").into(),
            sk,
            pk,
            dmsg: DmsgSection {
                discovery: dmsg_disc,
                sessions_count: opts.sessions.unwrap_or(2),
                ..DmsgSection::default()
            },
            dmsgpty: PtySection {
                cli_address: pty_sock,
                whitelist: opts.pty_whitelist.clone(),
                ssh_listen: opts.ssh_listen.clone().unwrap_or_default(),
                ..PtySection::default()
            },
            stcp: StcpSection {
                pk_table: None,
                listening_address: opts
                    .stcp_local_address
                    .clone()
                    .unwrap_or_else(default_stcp_listen),
            },
            launcher: LauncherSection {
                apps,
                bin_path,
                server_addr: opts
                    .app_server_addr
                    .clone()
                    .unwrap_or_else(default_app_server),
                ..LauncherSection::default()
            },
            hypervisors: opts.hypervisor_pks.clone(),
            cli_addr: opts.cli_addr.clone().unwrap_or_else(default_cli_addr),
            log_level: String::new(),
            local_path,
            shutdown_timeout: default_shutdown_timeout(),
            persistent_transports: Vec::new(),
            dmsg_web: Some(DmsgWebSection {
                enable: opts.resolver,
                proxy_port: default_proxy_port(),
                proxy_addr: default_proxy_bind(),
                upstream_socks: String::new(),
                extra: Map::new(),
            }),
            hypervisor: opts.hypervisor.then(|| HypervisorSection {
                http_addr: default_hv_http(),
                dmsg_port: default_hv_port(),
                enable_auth: true,
                db_path: if opts.package_paths {
                    "/var/lib/skywire/users.db".into()
                } else {
                    "./users.db".into()
                },
                extra: Map::new(),
            }),
            extra,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn generated_round_trips() {
        let cfg = VisorConfig::generate(&GenOptions {
            hypervisor: true,
            ..GenOptions::default()
        });
        let back = VisorConfig::parse(&cfg.to_json()).unwrap();
        assert_eq!(back.pk, cfg.pk);
        assert_eq!(back.launcher.apps, cfg.launcher.apps);
        assert_eq!(back.to_json(), cfg.to_json());
        let v: Value = serde_json::from_str(&cfg.to_json()).unwrap();
        for key in [
            "version",
            "sk",
            "pk",
            "dmsg",
            "dmsgpty",
            "skywire-tcp",
            "transport",
            "launcher",
            "hypervisors",
            "cli_addr",
            "local_path",
            "shutdown_timeout",
            "hypervisor",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["launcher"]["server_addr"], "localhost:5505");
        assert_eq!(v["dmsgpty"]["dmsg_port"], 22);
    }

    #[test]
    fn reference_2024_layout_loads_and_keeps_unknown_sections() {
        let sk = SecKey::generate();
        let text = format!(
            r#"{{"version":"v1.3.17","sk":"{}","pk":"{}",
            "dmsg":{{"discovery":"http://d","sessions_count":1,"servers":[],"servers_type":"all"}},
            "dmsgpty":{{"dmsg_port":22,"cli_network":"unix","cli_address":"/tmp/x.sock","whitelist":[]}},
            "skywire-tcp":{{"pk_table":null,"listening_address":":7777"}},
            "routing":{{"route_finder":"http://rf","min_hops":0}},
            "launcher":{{"service_discovery":"http://sd","apps":[
              {{"name":"skysocks","binary":"skywire","args":["app","skysocks"],"auto_start":true,"port":3}},
              {{"name":"vpn-client","binary":"skywire","args":"app vpn-client --dns '1.1.1.1'","auto_start":false,"port":43}}],
              "server_addr":"localhost:5505","bin_path":"./","display_node_ip":false}},
            "hypervisors":[],"cli_addr":"localhost:3435","log_level":"","local_path":"./local",
            "shutdown_timeout":"10s","persistent_transports":null}}"#,
            sk.to_hex(),
            sk.pub_key()
        );
        let cfg = VisorConfig::parse(&text).unwrap();
        assert_eq!(
            cfg.launcher.apps[1].args,
            ["app", "vpn-client", "--dns", "1.1.1.1"]
        );
        assert!(cfg.extra.contains_key("routing"));
        let out: Value = serde_json::from_str(&cfg.to_json()).unwrap();
        assert_eq!(out["routing"]["route_finder"], "http://rf");
    }

    #[test]
    fn legacy_2020_layout_loads() {
        let sk = SecKey::generate();
        let text = format!(
            r#"{{"sk":"{}","pk":"{}","stcp":{{"pk_table":{{}},"local_address":"127.0.0.1:7777"}},
            "apps_path":"./apps","apps":[{{"app":"custom_app","auto_start":true,"port":15,"args":["-c","x.json"]}}]}}"#,
            sk.to_hex(),
            sk.pub_key()
        );
        let cfg = VisorConfig::parse(&text).unwrap();
        assert_eq!(cfg.stcp.listening_address, "127.0.0.1:7777");
        assert_eq!(cfg.launcher.bin_path, "./apps");
        let a = &cfg.launcher.apps[0];
        assert_eq!(
            (a.name.as_str(), a.binary.as_str(), a.port),
            ("custom_app", "custom_app", 15)
        );
        assert_eq!(a.args, ["-c", "x.json"]);
    }

    #[test]
    fn bad_configs_have_clear_errors() {
        let sk = SecKey::generate();
        let other = SecKey::generate().pub_key();
        let e = VisorConfig::parse(&format!(r#"{{"sk":"{}","pk":"{other}"}}"#, sk.to_hex()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not belong"), "{e}");
        let e = VisorConfig::parse(r#"{"sk":"zz","pk":"00"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = VisorConfig::parse(&format!(
            r#"{{"sk":"{}","pk":"{}","launcher":{{"apps":[{{"name":"a"}},{{"name":"a"}}]}}}}"#,
            sk.to_hex(),
            sk.pub_key()
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("used twice"), "{e}");
    }

    #[test]
    fn durations_and_args() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("168h0m0s").unwrap(),
            Duration::from_secs(168 * 3600)
        );
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("x").is_err());
        assert_eq!(
            split_args(r#"app "a b" 'c d' e\ f"#).unwrap(),
            ["app", "a b", "c d", "e f"]
        );
        assert!(split_args("'open").is_err());
    }
}
