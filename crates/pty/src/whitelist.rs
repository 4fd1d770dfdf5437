//! The pty whitelist (pty.md 4.1, 4.2): an ordered key list with the reference's add/remove
//! semantics and error text, the authorization rule, and persistence as the `wl` array of the
//! standalone host's config file (rewritten whole, 2-space indent, mode 0600, atomically).

use std::path::{Path, PathBuf};

use skywire_cipher::PubKey;

use crate::config::{ConfigError, HostConfig, write_atomic};

/// Errors of whitelist persistence.
#[derive(Debug, thiserror::Error)]
pub enum WhitelistError {
    /// Reading the config file failed.
    #[error("whitelist file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid JSON or has an invalid key in `wl`.
    #[error("whitelist file {path}: invalid JSON")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// Writing the config file failed.
    #[error("whitelist file write")]
    Write(#[source] ConfigError),
}

/// Result of [`Whitelist::add`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddOutcome {
    /// Keys appended.
    pub added: Vec<PubKey>,
    /// Keys already present (reported, not an abort: the others are still added).
    pub skipped: Vec<PubKey>,
}

impl AddOutcome {
    /// The error text the reference returns when keys were skipped:
    /// `skipping append for <pk>[,<pk>...]. Already exists`.
    pub fn error_text(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let keys: Vec<String> = self.skipped.iter().map(PubKey::to_hex).collect();
        Some(format!(
            "skipping append for {}. Already exists",
            keys.join(",")
        ))
    }
}

/// An ordered set of authorized public keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Whitelist {
    keys: Vec<PubKey>,
}

impl Whitelist {
    /// An empty whitelist (admits no remote key but the host's own).
    pub fn new() -> Self {
        Self::default()
    }

    /// A whitelist of `keys` (duplicates and the null key dropped, first occurrence kept).
    pub fn from_keys(keys: impl IntoIterator<Item = PubKey>) -> Self {
        let mut wl = Whitelist::new();
        for k in keys {
            if !k.is_null() && !wl.keys.contains(&k) {
                wl.keys.push(k);
            }
        }
        wl
    }

    /// The keys, in insertion order.
    pub fn list(&self) -> &[PubKey] {
        &self.keys
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `pk` is listed.
    pub fn contains(&self, pk: &PubKey) -> bool {
        self.keys.contains(pk)
    }

    /// Appends each key not yet present (a key repeated within `pks` counts as present the second
    /// time, as in the reference); the null key is ignored.
    pub fn add(&mut self, pks: &[PubKey]) -> AddOutcome {
        let mut out = AddOutcome::default();
        for k in pks {
            if k.is_null() {
                continue;
            }
            if self.keys.contains(k) {
                out.skipped.push(*k);
            } else {
                self.keys.push(*k);
                out.added.push(*k);
            }
        }
        out
    }

    /// Removes each listed key; unknown keys are ignored. Returns how many were removed.
    pub fn remove(&mut self, pks: &[PubKey]) -> usize {
        let mut removed = 0;
        for k in pks {
            if let Some(i) = self.keys.iter().position(|x| x == k) {
                self.keys.remove(i);
                removed += 1;
            }
        }
        removed
    }

    /// The authorization rule for remote carriers: the host's own key is always allowed (the
    /// visor seeds it; the G3 docs state it for the standalone host), any other key must be
    /// listed, so an empty whitelist rejects every other peer. The null key is never allowed.
    /// (The local control socket is not checked at all.)
    pub fn is_allowed(&self, host_pk: &PubKey, remote_pk: &PubKey) -> bool {
        if remote_pk.is_null() {
            return false;
        }
        remote_pk == host_pk || self.contains(remote_pk)
    }
}

/// The whitelist stored in a standalone host config file (`wl` key). Every operation re-reads the
/// file; mutations rewrite it whole, keeping the other keys.
#[derive(Debug, Clone)]
pub struct WhitelistFile {
    path: PathBuf,
}

impl WhitelistFile {
    /// The whitelist of the config file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        WhitelistFile { path: path.into() }
    }

    /// The config file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the config; a missing or zero-length file is a default config.
    fn read_config(&self) -> Result<HostConfig, WhitelistError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(WhitelistError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(HostConfig::default());
        }
        serde_json::from_slice(&bytes).map_err(|source| WhitelistError::Json {
            path: self.path.clone(),
            source,
        })
    }

    /// The current whitelist (empty if the file or its `wl` is missing).
    pub fn load(&self) -> Result<Whitelist, WhitelistError> {
        let conf = self.read_config()?;
        Ok(Whitelist::from_keys(conf.wl.unwrap_or_default()))
    }

    /// Stores `wl` as the file's `wl` (other keys unchanged; a `null` stays `null` while the
    /// list is empty) with a 2-space indent, mode 0600, via temp file + rename.
    pub fn save(&self, wl: &Whitelist) -> Result<(), WhitelistError> {
        let mut conf = self.read_config()?;
        conf.wl = match (&conf.wl, wl.is_empty()) {
            (None, true) => None,
            _ => Some(wl.list().to_vec()),
        };
        write_atomic(&self.path, conf.to_whitelist_file_json().as_bytes(), 0o600)
            .map_err(WhitelistError::Write)
    }

    /// Loads, adds, saves (even when nothing was added, as the reference does).
    pub fn add(&self, pks: &[PubKey]) -> Result<AddOutcome, WhitelistError> {
        let mut wl = self.load()?;
        let out = wl.add(pks);
        self.save(&wl)?;
        Ok(out)
    }

    /// Loads, removes, saves.
    pub fn remove(&self, pks: &[PubKey]) -> Result<usize, WhitelistError> {
        let mut wl = self.load()?;
        let n = wl.remove(pks);
        self.save(&wl)?;
        Ok(n)
    }

    /// Whether `remote_pk` may connect to the host `host_pk` (re-reads the file).
    pub fn is_allowed(&self, host_pk: &PubKey, remote_pk: &PubKey) -> Result<bool, WhitelistError> {
        Ok(self.load()?.is_allowed(host_pk, remote_pk))
    }
}
