//! Entry storage behind the async [`Store`] trait, with three backends that behave alike:
//!
//! * [`MemoryStore`]: process memory, for tests and throwaway networks;
//! * [`RedbStore`]: an embedded redb file, the default (`dmsg-discovery.redb`);
//! * [`RedisStore`]: Redis with the reference's keys, types and TTLs, so several discovery
//!   instances (and the Go discovery) can share one database.
//!
//! The model is the reference's Redis layout (spec `dmsg-wire.md` 5.6): one record per public
//! key (hex) holding the re-serialised entry, optionally expiring; a `servers` set and a
//! `clients` set of public keys. Expired records vanish at once; members of `servers` whose
//! record expired are removed by [`Store::remove_expired`] (run every 10 s by the service);
//! `clients` is never cleaned, as in the reference.

mod memory;
mod redb_store;
mod redis_store;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use skywire_cipher::PubKey;
use skywire_dmsg::disc::{Entry, EntryError};

pub use memory::MemoryStore;
pub use redb_store::RedbStore;
pub use redis_store::RedisStore;

use crate::config::StoreConfig;

/// Key of the set of server public keys.
pub const SERVERS_SET: &str = "servers";
/// Key of the set of client public keys.
pub const CLIENTS_SET: &str = "clients";

/// Errors of the store backends.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A Redis command failed.
    #[error("redis command failed")]
    Redis(#[source] redis::RedisError),
    /// Connecting to Redis failed.
    #[error("connecting to redis at {url} failed")]
    RedisConnect {
        /// The URL without its password.
        url: String,
        /// Cause.
        #[source]
        source: redis::RedisError,
    },
    /// A redb operation failed.
    #[error("redb operation failed")]
    Redb(#[source] redb::Error),
    /// The redb file could not be opened.
    #[error("opening redb database {path} failed")]
    RedbOpen {
        /// File path.
        path: String,
        /// Cause.
        #[source]
        source: redb::Error,
    },
    /// A stored record does not parse.
    #[error("stored record of {key} is corrupt")]
    Corrupt {
        /// Record key.
        key: String,
        /// Cause.
        #[source]
        source: EntryError,
    },
    /// A blocking store task panicked or was cancelled.
    #[error("store task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Future returned by [`Store`] methods.
pub type StoreFuture<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// Entry storage used by the discovery API (the reference's `store.Storer`).
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// The live entry of `pk`, if any.
    fn entry<'a>(&'a self, pk: &'a PubKey) -> StoreFuture<'a, Option<Entry>>;

    /// Stores `entry` under its static key, replacing any previous record, expiring after
    /// `ttl` (`None`: never; a previous TTL is cleared), and adds the key to `servers` and/or
    /// `clients` according to the entry's parts.
    fn set_entry<'a>(&'a self, entry: &'a Entry, ttl: Option<Duration>) -> StoreFuture<'a, ()>;

    /// Deletes the record of `pk` and removes it from both sets (absent is not an error).
    fn del_entry<'a>(&'a self, pk: &'a PubKey) -> StoreFuture<'a, ()>;

    /// Up to `max` live server entries with `availableSessions > 0`, most sessions first.
    fn available_servers(&self, max: usize) -> StoreFuture<'_, Vec<Entry>>;

    /// All live server entries (no order).
    fn all_servers(&self) -> StoreFuture<'_, Vec<Entry>>;

    /// Public keys (hex) in the `clients` set (no order).
    fn client_keys(&self) -> StoreFuture<'_, Vec<String>>;

    /// Drops expired records and removes `servers` members without a live record.
    fn remove_expired(&self) -> StoreFuture<'_, ()>;

    /// Sizes of the `servers` and `clients` sets.
    fn count(&self) -> StoreFuture<'_, (u64, u64)>;
}

/// Opens the store `config` describes (connects to Redis, creates the redb file).
pub async fn open(
    config: &StoreConfig,
    op_timeout: Duration,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match config {
        StoreConfig::Memory => Arc::new(MemoryStore::new()),
        StoreConfig::Redb(path) => Arc::new(RedbStore::open(path.clone()).await?),
        StoreConfig::Redis { url, password } => {
            Arc::new(RedisStore::connect(url, password.as_deref(), op_timeout).await?)
        }
    })
}

/// Sorts by available sessions, most first, and keeps at most `max` with sessions > 0.
pub(crate) fn select_available(mut entries: Vec<Entry>, max: usize) -> Vec<Entry> {
    entries.retain(|e| e.server.as_ref().is_some_and(|s| s.available_sessions > 0));
    entries
        .sort_by_key(|e| std::cmp::Reverse(e.server.as_ref().map_or(0, |s| s.available_sessions)));
    entries.truncate(max);
    entries
}

pub(crate) fn parse_record(key: &str, json: &[u8]) -> Result<Entry, StoreError> {
    Entry::from_json(json).map_err(|source| StoreError::Corrupt {
        key: key.to_owned(),
        source,
    })
}
