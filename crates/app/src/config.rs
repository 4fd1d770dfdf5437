//! The launch contract: `PROC_CONFIG`, the JSON the visor puts in each app's environment (same
//! keys as the reference, apps.md §1.1), and the legacy `APP_KEY` / `PROC_KEY` /
//! `APP_SERVER_ADDR` / `VISOR_PK` variables of 2019–2020 apps.

use serde::{Deserialize, Serialize};
use skywire_cipher::PubKey;

use crate::proto::ProcKey;

/// Name of the environment variable holding the JSON [`ProcConfig`].
pub const ENV_PROC_CONFIG: &str = "PROC_CONFIG";
/// Legacy variable: the proc key (2019 apps).
pub const ENV_APP_KEY: &str = "APP_KEY";
/// Legacy variable: the proc key (early 2020 apps).
pub const ENV_PROC_KEY: &str = "PROC_KEY";
/// Legacy variable: the app server address.
pub const ENV_APP_SERVER_ADDR: &str = "APP_SERVER_ADDR";
/// Legacy variable: the visor's public key.
pub const ENV_VISOR_PK: &str = "VISOR_PK";

/// What the visor tells a launched app (the reference's `PROC_CONFIG` keys, in its order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcConfig {
    /// The app's instance name in the visor config.
    #[serde(default)]
    pub app_name: String,
    /// Where the app server listens (`host:port`).
    pub app_server_addr: String,
    /// The key that authenticates this app to the app server.
    pub proc_key: ProcKey,
    /// The argv after the binary.
    #[serde(default)]
    pub proc_args: Vec<String>,
    /// Extra `K=V` environment entries the visor added (`null` when none).
    #[serde(default)]
    pub proc_envs: Option<Vec<String>>,
    /// The app's working directory.
    #[serde(default)]
    pub proc_work_dir: String,
    /// The visor's public key.
    pub visor_pk: PubKey,
    /// The app's nominal routing port (`port` in the visor config).
    #[serde(default)]
    pub routing_port: u16,
    /// Path of the app's binary.
    #[serde(default)]
    pub binary_loc: String,
    /// The reference's per-app bbolt log database; empty here (logs are a text file, see
    /// `log_store_path`).
    #[serde(default)]
    pub log_db_loc: String,
    /// Path of the app's log file (stdout and stderr lines with a timestamp).
    #[serde(default)]
    pub log_store_path: String,
}

/// Why the launch configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither `PROC_CONFIG` nor the legacy variables are set: not launched by a visor.
    #[error(
        "not started by a visor: neither PROC_CONFIG nor APP_KEY/APP_SERVER_ADDR/VISOR_PK are set"
    )]
    NotLaunched,
    /// `PROC_CONFIG` is not valid JSON of the expected shape.
    #[error("PROC_CONFIG is not a valid proc config")]
    BadProcConfig(#[source] serde_json::Error),
    /// A legacy variable is missing or invalid.
    #[error("environment variable {name}: {reason}")]
    BadVar {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl ProcConfig {
    /// Parses the `PROC_CONFIG` JSON.
    pub fn from_json(s: &str) -> Result<ProcConfig, ConfigError> {
        serde_json::from_str(s).map_err(ConfigError::BadProcConfig)
    }

    /// The JSON form put into `PROC_CONFIG`.
    pub fn to_json(&self) -> String {
        // Plain strings, numbers and arrays: serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the configuration from a variable lookup: `PROC_CONFIG` first, then the legacy
    /// variables. [`ProcConfig::from_env`] uses the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ProcConfig, ConfigError> {
        if let Some(json) = get(ENV_PROC_CONFIG).filter(|s| !s.is_empty()) {
            return ProcConfig::from_json(&json);
        }
        let key = get(ENV_APP_KEY)
            .map(|k| (ENV_APP_KEY, k))
            .or_else(|| get(ENV_PROC_KEY).map(|k| (ENV_PROC_KEY, k)));
        let addr = get(ENV_APP_SERVER_ADDR);
        let pk = get(ENV_VISOR_PK);
        if key.is_none() && addr.is_none() && pk.is_none() {
            return Err(ConfigError::NotLaunched);
        }
        let (key_name, key) = key.ok_or(ConfigError::BadVar {
            name: ENV_APP_KEY,
            reason: "not set".into(),
        })?;
        let proc_key = ProcKey::from_hex(&key).map_err(|e| ConfigError::BadVar {
            name: key_name,
            reason: e.to_string(),
        })?;
        let app_server_addr = addr.ok_or(ConfigError::BadVar {
            name: ENV_APP_SERVER_ADDR,
            reason: "not set".into(),
        })?;
        let pk = pk.ok_or(ConfigError::BadVar {
            name: ENV_VISOR_PK,
            reason: "not set".into(),
        })?;
        let visor_pk = PubKey::from_hex(&pk).map_err(|e| ConfigError::BadVar {
            name: ENV_VISOR_PK,
            reason: e.to_string(),
        })?;
        Ok(ProcConfig {
            app_name: String::new(),
            app_server_addr,
            proc_key,
            proc_args: Vec::new(),
            proc_envs: None,
            proc_work_dir: String::new(),
            visor_pk,
            routing_port: 0,
            binary_loc: String::new(),
            log_db_loc: String::new(),
            log_store_path: String::new(),
        })
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<ProcConfig, ConfigError> {
        ProcConfig::from_lookup(|k| std::env::var(k).ok())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const PK: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn reference_proc_config_parses() {
        let json = format!(
            r#"{{"app_name":"skysocks","app_server_addr":"localhost:5505","proc_key":"000102030405060708090a0b0c0d0e0f","proc_args":["app","skysocks"],"proc_envs":null,"proc_work_dir":"/x/local/skysocks","visor_pk":"{PK}","routing_port":3,"binary_loc":"/x/skywire","log_db_loc":"/x/local/skysocks_log.db","log_store_path":""}}"#
        );
        let c = ProcConfig::from_json(&json).unwrap();
        assert_eq!(c.routing_port, 3);
        assert_eq!(c.proc_key.to_hex(), "000102030405060708090a0b0c0d0e0f");
        // Same keys, same order when written back.
        assert_eq!(c.to_json(), json);
    }

    #[test]
    fn legacy_variables() {
        let vars = [
            (ENV_APP_KEY, "000102030405060708090a0b0c0d0e0f"),
            (ENV_APP_SERVER_ADDR, "127.0.0.1:5505"),
            (ENV_VISOR_PK, PK),
        ];
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let c = ProcConfig::from_lookup(get).unwrap();
        assert_eq!(c.app_server_addr, "127.0.0.1:5505");
        assert_eq!(c.visor_pk.to_hex(), PK);
        assert!(matches!(
            ProcConfig::from_lookup(|_| None),
            Err(ConfigError::NotLaunched)
        ));
        let partial = |k: &str| (k == ENV_VISOR_PK).then(|| PK.to_string());
        assert!(matches!(
            ProcConfig::from_lookup(partial),
            Err(ConfigError::BadVar { .. })
        ));
    }
}
