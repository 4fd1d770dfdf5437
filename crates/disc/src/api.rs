//! The discovery HTTP API (axum router and handlers), answering exactly like the reference
//! (spec `dmsg-wire.md` 5.3–5.4): same paths, status codes, JSON bodies and error texts, same
//! validation order. Bodies are written with the reference serializer's escaping.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use skywire_cipher::{PubKey, Sig, verify_payload};
use skywire_dmsg::disc::{
    ApiError, Entry, Health, HttpMessage, MSG_ENTRY_DELETED, MSG_ENTRY_SET, MSG_ENTRY_UPDATED,
    ValidationError, entries_to_json, json,
};
use tokio::sync::Mutex;

use crate::config::DiscConfig;
use crate::netaddr::is_loopback_addr;
use crate::store::{Store, StoreError};

const LOCK_SHARDS: usize = 64;

/// Shared state of the handlers.
#[derive(Debug)]
pub(crate) struct ApiState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: DiscConfig,
    pub(crate) started_at: String,
    /// Serialises read-check-write of POSTs per key (within this instance).
    locks: Vec<Mutex<()>>,
}

impl ApiState {
    pub(crate) fn new(store: Arc<dyn Store>, config: DiscConfig, started_at: String) -> ApiState {
        ApiState {
            store,
            config,
            started_at,
            locks: (0..LOCK_SHARDS).map(|_| Mutex::new(())).collect(),
        }
    }

    fn lock_for(&self, pk: &PubKey) -> &Mutex<()> {
        let b = pk.as_bytes();
        let idx = usize::from(b[b.len() - 1]) % self.locks.len().max(1);
        &self.locks[idx]
    }
}

type St = State<Arc<ApiState>>;

/// The router with every endpoint of the reference.
pub(crate) fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/dmsg-discovery/entry/{pk}", get(get_entry).post(set_entry))
        .route(
            "/dmsg-discovery/entry/",
            get(get_entry_empty).post(set_entry),
        )
        .route("/dmsg-discovery/entry", delete(del_entry))
        .route("/dmsg-discovery/entries", get(all_entries))
        .route("/dmsg-discovery/deregister", delete(deregister))
        .route("/dmsg-discovery/available_servers", get(available_servers))
        .route("/dmsg-discovery/all_servers", get(all_servers))
        .route("/health", get(health))
        .fallback(not_found)
        .with_state(state)
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn ok_message(msg: &str) -> Response {
    json_response(StatusCode::OK, HttpMessage::ok(msg).to_json())
}

fn api_error(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status != StatusCode::NOT_FOUND {
        tracing::warn!(status = status.as_u16(), error = %e, "discovery request rejected");
    }
    json_response(status, e.http_message().to_json())
}

fn store_error(e: &StoreError) -> Response {
    tracing::error!(error = %e, source = ?std::error::Error::source(e), "store operation failed");
    api_error(ApiError::Unexpected)
}

/// Go's `http.NotFound`.
async fn not_found() -> Response {
    let mut r = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn get_entry(State(st): St, Path(pk): Path<String>) -> Response {
    lookup(&st, &pk).await
}

async fn get_entry_empty(State(st): St) -> Response {
    lookup(&st, "").await
}

async fn lookup(st: &ApiState, pk_text: &str) -> Response {
    let Ok(pk) = PubKey::from_hex(pk_text) else {
        return api_error(ApiError::BadInput);
    };
    match st.store.entry(&pk).await {
        Ok(Some(e)) => json_response(StatusCode::OK, e.to_json()),
        Ok(None) => api_error(ApiError::KeyNotFound),
        Err(e) => store_error(&e),
    }
}

/// Go's `r.URL.Query().Get("timeout") == "true"`: first `timeout` parameter, percent-decoded.
fn timeout_requested(query: Option<&str>) -> bool {
    let Some(q) = query else { return false };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .find(|(k, _)| percent_decode(k) == "timeout")
        .is_some_and(|(_, v)| percent_decode(v) == "true")
}

fn percent_decode(s: &str) -> String {
    fn hex_val(c: u8) -> Option<u8> {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Validation shared by POST and DELETE: `Validate` (timestamp for server-only entries), then
/// the signature.
fn check_entry(st: &ApiState, entry: &Entry) -> Result<(), ApiError> {
    let validate_timestamp = !st.config.enable_load_testing && entry.client.is_none();
    entry.validate(validate_timestamp)?;
    if !st.config.enable_load_testing && entry.verify_signature().is_err() {
        return Err(ApiError::Unauthorized);
    }
    Ok(())
}

async fn set_entry(State(st): St, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let Ok(entry) = Entry::from_json_prefix(&body) else {
        return api_error(ApiError::Unexpected);
    };
    if let Some(server) = &entry.server
        && !st.config.test_mode
        && is_loopback_addr(&server.address)
    {
        return api_error(ValidationError::ServerAddress.into());
    }
    if let Err(e) = check_entry(&st, &entry) {
        return api_error(e);
    }
    let ttl: Option<Duration> = if entry.server.is_some() {
        Some(st.config.server_entry_ttl)
    } else if timeout_requested(query.as_deref()) {
        Some(st.config.client_entry_timeout)
    } else {
        None
    };

    let _guard = st.lock_for(&entry.static_pk).lock().await;
    let old = match st.store.entry(&entry.static_pk).await {
        Ok(old) => old,
        Err(e) => return store_error(&e),
    };
    if let Some(old) = &old
        && !st.config.enable_load_testing
        && let Err(e) = old.validate_iteration(&entry)
    {
        return api_error(e.into());
    }
    if let Err(e) = st.store.set_entry(&entry, ttl).await {
        return store_error(&e);
    }
    tracing::debug!(pk = %entry.static_pk, seq = entry.sequence, new = old.is_none(), "entry stored");
    ok_message(if old.is_none() {
        MSG_ENTRY_SET
    } else {
        MSG_ENTRY_UPDATED
    })
}

async fn del_entry(State(st): St, body: Bytes) -> Response {
    let Ok(entry) = Entry::from_json_prefix(&body) else {
        return api_error(ApiError::Unexpected);
    };
    if let Err(e) = check_entry(&st, &entry) {
        return api_error(e);
    }
    match st.store.del_entry(&entry.static_pk).await {
        Ok(()) => ok_message(MSG_ENTRY_DELETED),
        Err(e) => store_error(&e),
    }
}

async fn all_entries(State(st): St) -> Response {
    match st.store.client_keys().await {
        Ok(keys) => json_response(StatusCode::OK, json::string_array(keys)),
        Err(e) => store_error(&e),
    }
}

async fn available_servers(State(st): St) -> Response {
    server_list(
        st.store
            .available_servers(st.config.max_available_servers)
            .await,
    )
}

async fn all_servers(State(st): St) -> Response {
    server_list(st.store.all_servers().await)
}

fn server_list(r: Result<Vec<Entry>, StoreError>) -> Response {
    match r {
        Ok(list) if list.is_empty() => api_error(ApiError::NoAvailableServers),
        Ok(list) => json_response(StatusCode::OK, entries_to_json(&list)),
        Err(e) => store_error(&e),
    }
}

async fn deregister(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let header_text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let nm_pk_text = header_text("NM-PK");
    if !st
        .config
        .whitelist_keys
        .iter()
        .any(|k| k.to_hex() == nm_pk_text)
    {
        tracing::warn!(nm_pk = %nm_pk_text, "deregistration by a key that is not whitelisted");
        return StatusCode::FORBIDDEN.into_response();
    }
    let Ok(nm_pk) = PubKey::from_hex(&nm_pk_text) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let sig_text = header_text("NM-Sign");
    let sig = if sig_text.bytes().all(|c| c == b'0') {
        Sig::NULL
    } else {
        match Sig::from_hex(&sig_text) {
            Ok(s) => s,
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        }
    };
    if verify_payload(&nm_pk, nm_pk.to_hex().as_bytes(), &sig).is_err() {
        tracing::warn!(%nm_pk, "deregistration with a bad signature");
        return StatusCode::FORBIDDEN.into_response();
    }
    let Ok(list) = serde_json::from_slice::<Option<Vec<Option<String>>>>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let mut keys = Vec::new();
    for text in list.unwrap_or_default() {
        match PubKey::from_hex(text.as_deref().unwrap_or_default()) {
            Ok(k) => keys.push(k),
            Err(_) => return api_error(ApiError::BadInput),
        }
    }
    for k in &keys {
        if let Err(e) = st.store.del_entry(k).await {
            return store_error(&e);
        }
    }
    tracing::info!(count = keys.len(), "deregistration completed");
    json_response(StatusCode::OK, "null".to_owned())
}

async fn health(State(st): St) -> Response {
    let h = Health {
        build_info: st.config.build_info.clone(),
        started_at: st.started_at.clone(),
        dmsg_address: st.config.dmsg_address.clone(),
    };
    json_response(StatusCode::OK, h.to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_query() {
        assert!(timeout_requested(Some("timeout=true")));
        assert!(timeout_requested(Some("a=b&timeout=tru%65")));
        assert!(!timeout_requested(Some("timeout=false&timeout=true")));
        assert!(!timeout_requested(Some("timeout")));
        assert!(!timeout_requested(None));
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41+b"), "A b");
    }
}
