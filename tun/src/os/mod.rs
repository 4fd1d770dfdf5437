//! Privileged OS changes of the VPN, as plain-data plans with apply / verify / revert, and the
//! on-disk record of what was applied ([`Journal`]) so that a crashed run is undone at the next
//! start.
//!
//! Every change is written to the journal *before* it is applied, and reverting tolerates a
//! change that is already gone, so a crash at any point leaves a journal whose revert restores
//! the state from before the run. TUN devices are not journalled: they are not persistent and
//! vanish (with their routes) when the process that holds them dies.

pub mod files;
pub mod net;
pub mod nft;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of the OS layer.
#[derive(Debug, thiserror::Error)]
pub enum OsError {
    /// A file under /proc/sys, resolv.conf or the state dir could not be read or written.
    #[error("{what} {path}")]
    File {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A netlink request failed.
    #[error("netlink: {what}")]
    Netlink {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: rtnetlink::Error,
    },
    /// Opening the netlink socket failed.
    #[error("opening a netlink socket")]
    NetlinkSocket(#[source] std::io::Error),
    /// The `nft` binary failed or could not be run.
    #[error("nft: {0}")]
    Nft(String),
    /// Running the `nft` binary failed.
    #[error("running nft")]
    NftSpawn(#[source] std::io::Error),
    /// The journal file is not valid JSON.
    #[error("journal {path} is corrupt")]
    Journal {
        /// The journal.
        path: PathBuf,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
    /// No IPv4 default route.
    #[error("no IPv4 default route{0}")]
    NoDefaultRoute(String),
    /// The TUN device could not be created.
    #[error("creating TUN device {name}")]
    Tun {
        /// Device name.
        name: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A link looked up by name does not exist.
    #[error("no network interface named {0:?}")]
    NoSuchLink(String),
}

/// One OS change, with what is needed to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A sysctl (`key` like `net/ipv4/ip_forward`) set to `new`; `old` is restored.
    Sysctl {
        /// Path under /proc/sys.
        key: String,
        /// Value before.
        old: String,
        /// Value set.
        new: String,
    },
    /// An nftables table we created with `body` (deleted on revert).
    NftTable {
        /// `ip`, `ip6` or `inet`.
        family: String,
        /// Table name.
        name: String,
        /// The table's contents (see [`nft`]).
        body: String,
    },
    /// An IPv4 route we added (deleted on revert).
    Route(files::RouteSpec),
    /// A file rewritten in place (resolv.conf); `old` is written back.
    FileContents {
        /// The file.
        path: PathBuf,
        /// Contents before.
        old: String,
        /// Contents we wrote.
        new: String,
    },
}

/// The journal of applied changes for one role (`server` or `client`) in a state directory.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    changes: Vec<Change>,
}

impl Journal {
    /// Opens the journal `<state_dir>/<role>.json`, first reverting whatever a previous run
    /// left there (crash recovery). Returns the journal and the changes that were reverted.
    pub async fn open(state_dir: &Path, role: &str) -> Result<(Journal, Vec<Change>), OsError> {
        std::fs::create_dir_all(state_dir).map_err(|source| OsError::File {
            what: "creating state dir",
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(format!("{role}.json"));
        let mut leftover = Vec::new();
        match std::fs::read(&path) {
            Ok(bytes) => {
                leftover = serde_json::from_slice::<Vec<Change>>(&bytes).map_err(|source| {
                    OsError::Journal {
                        path: path.clone(),
                        source,
                    }
                })?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(OsError::File {
                    what: "reading journal",
                    path,
                    source,
                });
            }
        }
        let mut j = Journal {
            path,
            changes: leftover.clone(),
        };
        if !leftover.is_empty() {
            tracing::warn!(
                changes = leftover.len(),
                journal = %j.path.display(),
                "reverting changes left by a previous run"
            );
            j.revert_all().await;
        }
        Ok((j, leftover))
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes currently recorded (in order of application).
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    fn save(&self) -> Result<(), OsError> {
        let tmp = self.path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(&self.changes).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|source| OsError::File {
            what: "writing journal",
            path: self.path.clone(),
            source,
        })
    }

    /// Records `change`, then applies it. On failure the record is dropped again.
    pub async fn apply(&mut self, change: Change) -> Result<(), OsError> {
        self.changes.push(change.clone());
        self.save()?;
        if let Err(e) = apply(&change).await {
            self.changes.pop();
            let _ = self.save();
            return Err(e);
        }
        Ok(())
    }

    /// Reverts and forgets the most recent recorded change equal to `change`.
    pub async fn revert_one(&mut self, change: &Change) {
        if let Some(i) = self.changes.iter().rposition(|c| c == change) {
            let c = self.changes.remove(i);
            if let Err(e) = revert(&c).await {
                tracing::warn!(error = %e, ?c, "revert failed");
            }
            let _ = self.save();
        }
    }

    /// Reverts everything in reverse order and removes the journal file.
    pub async fn revert_all(&mut self) {
        while let Some(c) = self.changes.pop() {
            if let Err(e) = revert(&c).await {
                tracing::warn!(error = %e, ?c, "revert failed");
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Changes whose effect is no longer in place (for status and tests).
    pub async fn verify(&self) -> Vec<Change> {
        let mut drift = Vec::new();
        for c in &self.changes {
            if !verify(c).await {
                drift.push(c.clone());
            }
        }
        drift
    }
}

/// Applies one change.
pub async fn apply(change: &Change) -> Result<(), OsError> {
    match change {
        Change::Sysctl { key, new, .. } => files::write_sysctl(key, new),
        Change::NftTable { family, name, body } => nft::apply_table(family, name, body).await,
        Change::Route(r) => net::Net::new()?.add_route(r).await,
        Change::FileContents { path, new, .. } => files::write_in_place(path, new),
    }
}

/// Undoes one change; a change that is already gone is not an error.
pub async fn revert(change: &Change) -> Result<(), OsError> {
    match change {
        Change::Sysctl { key, old, .. } => files::write_sysctl(key, old),
        Change::NftTable { family, name, .. } => nft::delete_table(family, name).await,
        Change::Route(r) => net::Net::new()?.del_route(r).await,
        Change::FileContents { path, old, .. } => files::write_in_place(path, old),
    }
}

/// Whether the change is still in effect.
pub async fn verify(change: &Change) -> bool {
    match change {
        Change::Sysctl { key, new, .. } => {
            files::read_sysctl(key).is_ok_and(|v| v.trim() == new.trim())
        }
        Change::NftTable { family, name, .. } => nft::table_exists(family, name).await,
        Change::Route(r) => match net::Net::new() {
            Ok(n) => n.has_route(r).await,
            Err(_) => false,
        },
        Change::FileContents { path, new, .. } => {
            std::fs::read_to_string(path).is_ok_and(|s| s == *new)
        }
    }
}

impl Journal {
    /// Reverts everything from synchronous code (a `Drop`): runs the async revert on a
    /// short-lived runtime in its own thread, so it also works inside a tokio runtime.
    pub fn revert_all_blocking(&mut self) {
        if self.changes.is_empty() {
            return;
        }
        let mut j = Journal {
            path: self.path.clone(),
            changes: std::mem::take(&mut self.changes),
        };
        let t = std::thread::spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(j.revert_all()),
                Err(e) => tracing::warn!(error = %e, "no runtime to revert VPN changes"),
            }
        });
        let _ = t.join();
    }
}
