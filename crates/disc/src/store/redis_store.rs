//! [`RedisStore`]: the reference's Redis layout, so several discovery instances (ours or the Go
//! one) share state. Keys: `<pk hex>` string holding the re-serialised entry JSON, with
//! `EX 120` for server entries, none for client entries or `EX 180` with `?timeout=true`;
//! sets `servers` and `clients` of pk hex. Writes use `MULTI`/`EXEC` pipelines; the reference
//! sends the same commands one by one.

use std::fmt;
use std::time::Duration;

use futures::FutureExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, RedisError};
use skywire_cipher::PubKey;
use skywire_dmsg::disc::Entry;

use super::{
    CLIENTS_SET, SERVERS_SET, Store, StoreError, StoreFuture, parse_record, select_available,
};

/// Redis-backed store (cheap to clone; one multiplexed connection that reconnects).
#[derive(Clone)]
pub struct RedisStore {
    con: ConnectionManager,
    url: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .finish()
    }
}

/// `url` without a `user:password@` part, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

fn rerr(e: RedisError) -> StoreError {
    StoreError::Redis(e)
}

impl RedisStore {
    /// Connects (and pings) like the reference's `newRedis`. A non-empty `password` replaces
    /// the URL's. `timeout` bounds connecting and every command.
    pub async fn connect(
        url: &str,
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<RedisStore, StoreError> {
        let shown = redacted(url);
        let connect_err = |source| StoreError::RedisConnect {
            url: shown.clone(),
            source,
        };
        let mut info = url.into_connection_info().map_err(connect_err)?;
        if let Some(p) = password.filter(|p| !p.is_empty()) {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info).map_err(connect_err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(3);
        let mut con = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(connect_err)?;
        redis::cmd("PING")
            .query_async::<()>(&mut con)
            .await
            .map_err(connect_err)?;
        Ok(RedisStore {
            con,
            url: shown.clone(),
        })
    }

    async fn entries_of(&self, keys: Vec<String>) -> Result<Vec<Entry>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.con.clone();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut con)
            .await
            .map_err(rerr)?;
        let mut out = Vec::with_capacity(values.len());
        for (key, value) in keys.iter().zip(values) {
            let Some(json) = value else { continue };
            match parse_record(key, &json) {
                Ok(e) if e.server.is_some() => out.push(e),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "skipping corrupt server record"),
            }
        }
        Ok(out)
    }
}

impl Store for RedisStore {
    fn entry<'a>(&'a self, pk: &'a PubKey) -> StoreFuture<'a, Option<Entry>> {
        async move {
            let key = pk.to_hex();
            let mut con = self.con.clone();
            let value: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut con)
                .await
                .map_err(rerr)?;
            value.map(|json| parse_record(&key, &json)).transpose()
        }
        .boxed()
    }

    fn set_entry<'a>(&'a self, entry: &'a Entry, ttl: Option<Duration>) -> StoreFuture<'a, ()> {
        async move {
            let key = entry.static_pk.to_hex();
            let mut pipe = redis::pipe();
            pipe.atomic();
            let set = pipe.cmd("SET").arg(&key).arg(entry.to_json());
            match ttl {
                // Whole seconds as EX (what the reference's client sends), else PX.
                Some(t) if t.subsec_millis() == 0 && t.as_secs() > 0 => {
                    set.arg("EX").arg(t.as_secs());
                }
                Some(t) => {
                    set.arg("PX")
                        .arg(u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1));
                }
                None => {}
            }
            set.ignore();
            if entry.server.is_some() {
                pipe.cmd("SADD").arg(SERVERS_SET).arg(&key).ignore();
            }
            if entry.client.is_some() {
                pipe.cmd("SADD").arg(CLIENTS_SET).arg(&key).ignore();
            }
            let mut con = self.con.clone();
            pipe.query_async::<()>(&mut con).await.map_err(rerr)
        }
        .boxed()
    }

    fn del_entry<'a>(&'a self, pk: &'a PubKey) -> StoreFuture<'a, ()> {
        async move {
            let key = pk.to_hex();
            let mut con = self.con.clone();
            redis::pipe()
                .atomic()
                .cmd("DEL")
                .arg(&key)
                .ignore()
                .cmd("SREM")
                .arg(SERVERS_SET)
                .arg(&key)
                .ignore()
                .cmd("SREM")
                .arg(CLIENTS_SET)
                .arg(&key)
                .ignore()
                .query_async::<()>(&mut con)
                .await
                .map_err(rerr)
        }
        .boxed()
    }

    fn available_servers(&self, max: usize) -> StoreFuture<'_, Vec<Entry>> {
        async move {
            if max == 0 {
                return Ok(Vec::new());
            }
            let mut con = self.con.clone();
            // As the reference: a random sample of at most `max` members, then filter + sort.
            let keys: Vec<String> = redis::cmd("SRANDMEMBER")
                .arg(SERVERS_SET)
                .arg(i64::try_from(max).unwrap_or(i64::MAX))
                .query_async(&mut con)
                .await
                .map_err(rerr)?;
            Ok(select_available(self.entries_of(keys).await?, max))
        }
        .boxed()
    }

    fn all_servers(&self) -> StoreFuture<'_, Vec<Entry>> {
        async move {
            let mut con = self.con.clone();
            let keys: Vec<String> = redis::cmd("SMEMBERS")
                .arg(SERVERS_SET)
                .query_async(&mut con)
                .await
                .map_err(rerr)?;
            self.entries_of(keys).await
        }
        .boxed()
    }

    fn client_keys(&self) -> StoreFuture<'_, Vec<String>> {
        async move {
            let mut con = self.con.clone();
            redis::cmd("SMEMBERS")
                .arg(CLIENTS_SET)
                .query_async(&mut con)
                .await
                .map_err(rerr)
        }
        .boxed()
    }

    fn remove_expired(&self) -> StoreFuture<'_, ()> {
        async move {
            let mut con = self.con.clone();
            let keys: Vec<String> = redis::cmd("SMEMBERS")
                .arg(SERVERS_SET)
                .query_async(&mut con)
                .await
                .map_err(rerr)?;
            if keys.is_empty() {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("EXISTS").arg(k);
            }
            let exists: Vec<i64> = pipe.query_async(&mut con).await.map_err(rerr)?;
            let gone: Vec<&String> = keys
                .iter()
                .zip(exists)
                .filter_map(|(k, n)| (n == 0).then_some(k))
                .collect();
            if !gone.is_empty() {
                tracing::debug!(count = gone.len(), "removing expired servers from the set");
                redis::cmd("SREM")
                    .arg(SERVERS_SET)
                    .arg(&gone)
                    .query_async::<()>(&mut con)
                    .await
                    .map_err(rerr)?;
            }
            Ok(())
        }
        .boxed()
    }

    fn count(&self) -> StoreFuture<'_, (u64, u64)> {
        async move {
            let mut con = self.con.clone();
            let (s, c): (u64, u64) = redis::pipe()
                .cmd("SCARD")
                .arg(SERVERS_SET)
                .cmd("SCARD")
                .arg(CLIENTS_SET)
                .query_async(&mut con)
                .await
                .map_err(rerr)?;
            Ok((s, c))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(redacted("redis://:pw@h:1/0"), "redis://h:1/0");
        assert_eq!(redacted("redis://h:1"), "redis://h:1");
    }
}
