//! [`MemoryStore`]: the Redis model in process memory (records with optional expiry, the
//! `servers` and `clients` sets). Unlike the reference's test store it expires entries and
//! keeps the sets, so it behaves exactly like the other backends.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use skywire_cipher::PubKey;
use skywire_dmsg::disc::Entry;

use super::{Store, StoreFuture, select_available};

#[derive(Debug, Default)]
struct Inner {
    records: HashMap<String, (Entry, Option<Instant>)>,
    servers: BTreeSet<String>,
    clients: BTreeSet<String>,
}

impl Inner {
    fn live(&self, key: &str, now: Instant) -> Option<&Entry> {
        match self.records.get(key) {
            Some((e, exp)) if exp.is_none_or(|t| t > now) => Some(e),
            _ => None,
        }
    }

    fn servers(&self) -> Vec<Entry> {
        let now = Instant::now();
        self.servers
            .iter()
            .filter_map(|k| self.live(k, now))
            .filter(|e| e.server.is_some())
            .cloned()
            .collect()
    }
}

/// In-memory store.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the store, so recover the guard.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn entry<'a>(&'a self, pk: &'a PubKey) -> StoreFuture<'a, Option<Entry>> {
        let r = self.lock().live(&pk.to_hex(), Instant::now()).cloned();
        async move { Ok(r) }.boxed()
    }

    fn set_entry<'a>(&'a self, entry: &'a Entry, ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        let key = entry.static_pk.to_hex();
        let expires = ttl.map(|t| Instant::now() + t);
        let mut g = self.lock();
        if entry.server.is_some() {
            g.servers.insert(key.clone());
        }
        if entry.client.is_some() {
            g.clients.insert(key.clone());
        }
        g.records.insert(key, (entry.clone(), expires));
        drop(g);
        async { Ok(()) }.boxed()
    }

    fn del_entry<'a>(&'a self, pk: &'a PubKey) -> StoreFuture<'a, ()> {
        let key = pk.to_hex();
        let mut g = self.lock();
        g.records.remove(&key);
        g.servers.remove(&key);
        g.clients.remove(&key);
        drop(g);
        async { Ok(()) }.boxed()
    }

    fn available_servers(&self, max: usize) -> StoreFuture<'_, Vec<Entry>> {
        let all = self.lock().servers();
        async move { Ok(select_available(all, max)) }.boxed()
    }

    fn all_servers(&self) -> StoreFuture<'_, Vec<Entry>> {
        let all = self.lock().servers();
        async move { Ok(all) }.boxed()
    }

    fn client_keys(&self) -> StoreFuture<'_, Vec<String>> {
        let keys = self.lock().clients.iter().cloned().collect();
        async move { Ok(keys) }.boxed()
    }

    fn remove_expired(&self) -> StoreFuture<'_, ()> {
        let now = Instant::now();
        let mut g = self.lock();
        g.records.retain(|_, (_, exp)| exp.is_none_or(|t| t > now));
        let Inner {
            records, servers, ..
        } = &mut *g;
        servers.retain(|k| records.contains_key(k));
        drop(g);
        async { Ok(()) }.boxed()
    }

    fn count(&self) -> StoreFuture<'_, (u64, u64)> {
        let g = self.lock();
        let r = (g.servers.len() as u64, g.clients.len() as u64);
        drop(g);
        async move { Ok(r) }.boxed()
    }
}
