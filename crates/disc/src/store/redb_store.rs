//! [`RedbStore`]: the Redis model in an embedded redb file. Records are
//! `expiry (u64 big-endian Unix milliseconds, 0 = never) || entry JSON` in table `entries`;
//! the `servers` and `clients` sets are key-only tables. Expired records are invisible at once
//! and deleted by [`Store::remove_expired`]. Wall-clock expiry times survive restarts.
//! All redb work runs on tokio's blocking pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use skywire_cipher::PubKey;
use skywire_dmsg::disc::Entry;

use super::{
    CLIENTS_SET, SERVERS_SET, Store, StoreError, StoreFuture, parse_record, select_available,
};

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
const SERVERS: TableDefinition<&str, ()> = TableDefinition::new(SERVERS_SET);
const CLIENTS: TableDefinition<&str, ()> = TableDefinition::new(CLIENTS_SET);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Redb(e.into())
}

/// Splits a stored value into (expiry ms, JSON); `None` if live-check fails or malformed.
fn live_json(value: &[u8], now: u64) -> Option<&[u8]> {
    let (exp, json) = value.split_first_chunk::<8>()?;
    let exp = u64::from_be_bytes(*exp);
    (exp == 0 || exp > now).then_some(json)
}

/// Embedded redb store.
#[derive(Debug, Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

impl RedbStore {
    /// Opens (or creates) the database file and its tables.
    pub async fn open(path: PathBuf) -> Result<RedbStore, StoreError> {
        tokio::task::spawn_blocking(move || {
            let open_err = |e: redb::Error| StoreError::RedbOpen {
                path: path.display().to_string(),
                source: e,
            };
            let db = Database::create(&path).map_err(|e| open_err(e.into()))?;
            let txn = db.begin_write().map_err(|e| open_err(e.into()))?;
            {
                txn.open_table(ENTRIES).map_err(|e| open_err(e.into()))?;
                txn.open_table(SERVERS).map_err(|e| open_err(e.into()))?;
                txn.open_table(CLIENTS).map_err(|e| open_err(e.into()))?;
            }
            txn.commit().map_err(|e| open_err(e.into()))?;
            Ok(RedbStore { db: Arc::new(db) })
        })
        .await
        .map_err(StoreError::Task)?
    }

    fn run<T, F>(&self, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        async move {
            tokio::task::spawn_blocking(move || f(&db))
                .await
                .map_err(StoreError::Task)?
        }
        .boxed()
    }

    fn servers(db: &Database) -> Result<Vec<Entry>, StoreError> {
        let now = now_ms();
        let txn = db.begin_read().map_err(db_err)?;
        let entries = txn.open_table(ENTRIES).map_err(db_err)?;
        let servers = txn.open_table(SERVERS).map_err(db_err)?;
        let mut out = Vec::new();
        for item in servers.iter().map_err(db_err)? {
            let (k, _) = item.map_err(db_err)?;
            let key = k.value();
            if let Some(v) = entries.get(key).map_err(db_err)?
                && let Some(json) = live_json(v.value(), now)
            {
                match parse_record(key, json) {
                    Ok(e) if e.server.is_some() => out.push(e),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "skipping corrupt server record"),
                }
            }
        }
        Ok(out)
    }
}

impl Store for RedbStore {
    fn entry<'a>(&'a self, pk: &'a PubKey) -> StoreFuture<'a, Option<Entry>> {
        let key = pk.to_hex();
        self.run(move |db| {
            let txn = db.begin_read().map_err(db_err)?;
            let t = txn.open_table(ENTRIES).map_err(db_err)?;
            let Some(v) = t.get(key.as_str()).map_err(db_err)? else {
                return Ok(None);
            };
            live_json(v.value(), now_ms())
                .map(|json| parse_record(&key, json))
                .transpose()
        })
    }

    fn set_entry<'a>(&'a self, entry: &'a Entry, ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        let key = entry.static_pk.to_hex();
        let (is_server, is_client) = (entry.server.is_some(), entry.client.is_some());
        let expires = ttl.map_or(0, |t| {
            now_ms()
                .saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
                .max(1)
        });
        let mut value = expires.to_be_bytes().to_vec();
        value.extend_from_slice(entry.to_json().as_bytes());
        self.run(move |db| {
            let txn = db.begin_write().map_err(db_err)?;
            {
                let mut t = txn.open_table(ENTRIES).map_err(db_err)?;
                t.insert(key.as_str(), value.as_slice()).map_err(db_err)?;
                if is_server {
                    let mut s = txn.open_table(SERVERS).map_err(db_err)?;
                    s.insert(key.as_str(), ()).map_err(db_err)?;
                }
                if is_client {
                    let mut c = txn.open_table(CLIENTS).map_err(db_err)?;
                    c.insert(key.as_str(), ()).map_err(db_err)?;
                }
            }
            txn.commit().map_err(db_err)
        })
    }

    fn del_entry<'a>(&'a self, pk: &'a PubKey) -> StoreFuture<'a, ()> {
        let key = pk.to_hex();
        self.run(move |db| {
            let txn = db.begin_write().map_err(db_err)?;
            {
                txn.open_table(ENTRIES)
                    .map_err(db_err)?
                    .remove(key.as_str())
                    .map_err(db_err)?;
                txn.open_table(SERVERS)
                    .map_err(db_err)?
                    .remove(key.as_str())
                    .map_err(db_err)?;
                txn.open_table(CLIENTS)
                    .map_err(db_err)?
                    .remove(key.as_str())
                    .map_err(db_err)?;
            }
            txn.commit().map_err(db_err)
        })
    }

    fn available_servers(&self, max: usize) -> StoreFuture<'_, Vec<Entry>> {
        self.run(move |db| Ok(select_available(RedbStore::servers(db)?, max)))
    }

    fn all_servers(&self) -> StoreFuture<'_, Vec<Entry>> {
        self.run(RedbStore::servers)
    }

    fn client_keys(&self) -> StoreFuture<'_, Vec<String>> {
        self.run(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let t = txn.open_table(CLIENTS).map_err(db_err)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(db_err)? {
                let (k, _) = item.map_err(db_err)?;
                out.push(k.value().to_owned());
            }
            Ok(out)
        })
    }

    fn remove_expired(&self) -> StoreFuture<'_, ()> {
        self.run(|db| {
            let now = now_ms();
            let txn = db.begin_write().map_err(db_err)?;
            {
                let mut entries = txn.open_table(ENTRIES).map_err(db_err)?;
                entries
                    .retain(|_, v| live_json(v, now).is_some())
                    .map_err(db_err)?;
                let mut servers = txn.open_table(SERVERS).map_err(db_err)?;
                let mut gone = Vec::new();
                for item in servers.iter().map_err(db_err)? {
                    let (k, _) = item.map_err(db_err)?;
                    if entries.get(k.value()).map_err(db_err)?.is_none() {
                        gone.push(k.value().to_owned());
                    }
                }
                for k in gone {
                    servers.remove(k.as_str()).map_err(db_err)?;
                }
            }
            txn.commit().map_err(db_err)
        })
    }

    fn count(&self) -> StoreFuture<'_, (u64, u64)> {
        self.run(|db| {
            let txn = db.begin_read().map_err(db_err)?;
            let s = txn
                .open_table(SERVERS)
                .map_err(db_err)?
                .len()
                .map_err(db_err)?;
            let c = txn
                .open_table(CLIENTS)
                .map_err(db_err)?
                .len()
                .map_err(db_err)?;
            Ok((s, c))
        })
    }
}
