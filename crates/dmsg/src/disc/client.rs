//! [`DiscClient`]: HTTP client for the dmsg discovery API (spec `dmsg-wire.md` 5.4, 5.5).
//!
//! Plain HTTP (the public discovery is `http://`), one shared connection pool, and a timeout on
//! every request (the reference client has none). Error bodies `{"message","code"}` are mapped
//! back to [`ApiError`] by their text, like the reference's `errFromString`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use skywire_cipher::{PubKey, SecKey};

use super::api::{ApiError, Health, HttpMessage, ValidationError};
use super::entry::{Entry, EntryError, now_unix_nanos};

/// Default total timeout of one request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Default TCP connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of [`DiscClient`].
#[derive(Debug, thiserror::Error)]
pub enum DiscError {
    /// The base address is not an `http://` or `https://` URL.
    #[error("invalid discovery address {0:?} (want http://host[:port])")]
    BadAddress(String),
    /// The HTTP client could not be built.
    #[error("building the discovery HTTP client failed")]
    Build(#[source] reqwest::Error),
    /// Connecting, sending or receiving failed (including timeouts).
    #[error("{method} {url}: request failed")]
    Request {
        /// HTTP method.
        method: Method,
        /// Full URL.
        url: String,
        /// Transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The discovery answered with one of its error messages.
    #[error("{method} {url}: discovery answered {status}")]
    Api {
        /// HTTP method.
        method: Method,
        /// Full URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The error, mapped from the message text.
        #[source]
        source: ApiError,
    },
    /// The discovery answered an error status with an unknown message (the reference client
    /// treats this as "something unexpected happened").
    #[error("{method} {url}: discovery answered {status} with unknown message {message:?}")]
    UnknownApiError {
        /// HTTP method.
        method: Method,
        /// Full URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The message text.
        message: String,
    },
    /// The body is not what the endpoint returns (not JSON, wrong shape).
    #[error("{method} {url}: discovery answered {status} with an unexpected body {body:?}")]
    BadResponse {
        /// HTTP method.
        method: Method,
        /// Full URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The first bytes of the body, lossily decoded.
        body: String,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// Signing an entry failed.
    #[error(transparent)]
    Entry(#[from] EntryError),
}

impl DiscError {
    /// The discovery's error, if it answered with a known one.
    pub fn api_error(&self) -> Option<ApiError> {
        match self {
            DiscError::Api { source, .. } => Some(*source),
            _ => None,
        }
    }

    /// Whether the discovery said the entry does not exist.
    pub fn is_not_found(&self) -> bool {
        self.api_error() == Some(ApiError::KeyNotFound)
    }
}

/// Client of one discovery (`http://host:port`, no trailing path).
#[derive(Debug, Clone)]
pub struct DiscClient {
    base: String,
    http: reqwest::Client,
}

impl DiscClient {
    /// A client with the default timeouts.
    pub fn new(address: &str) -> Result<DiscClient, DiscError> {
        DiscClient::with_timeouts(address, DEFAULT_REQUEST_TIMEOUT, DEFAULT_CONNECT_TIMEOUT)
    }

    /// A client with an explicit total request timeout and connect timeout.
    pub fn with_timeouts(
        address: &str,
        request_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<DiscClient, DiscError> {
        let http = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(connect_timeout)
            .build()
            .map_err(DiscError::Build)?;
        DiscClient::with_http_client(address, http)
    }

    /// A client that uses a caller-built `reqwest::Client` (its timeouts apply).
    pub fn with_http_client(address: &str, http: reqwest::Client) -> Result<DiscClient, DiscError> {
        let base = address.trim_end_matches('/').to_owned();
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() => Ok(DiscClient { base, http }),
            _ => Err(DiscError::BadAddress(address.to_owned())),
        }
    }

    /// The base address (without trailing slash).
    pub fn address(&self) -> &str {
        &self.base
    }

    /// `GET /dmsg-discovery/entry/{pk}`.
    pub async fn entry(&self, pk: &PubKey) -> Result<Entry, DiscError> {
        let url = format!("{}/dmsg-discovery/entry/{}", self.base, pk);
        let (status, body) = self.send(Method::GET, &url, None).await?;
        self.check(&Method::GET, &url, status, &body)?;
        Entry::from_json_prefix(&body).map_err(|e| match e {
            EntryError::Json(source) => bad_response(&Method::GET, &url, status, &body, source),
            other => DiscError::Entry(other),
        })
    }

    /// `POST /dmsg-discovery/entry/` with the (signed) entry.
    pub async fn post_entry(&self, entry: &Entry) -> Result<(), DiscError> {
        let url = format!("{}/dmsg-discovery/entry/", self.base);
        let (status, body) = self.send(Method::POST, &url, Some(entry.to_json())).await?;
        self.check(&Method::POST, &url, status, &body)
    }

    /// `DELETE /dmsg-discovery/entry` with the (signed, currently stored) entry.
    pub async fn delete_entry(&self, entry: &Entry) -> Result<(), DiscError> {
        let url = format!("{}/dmsg-discovery/entry", self.base);
        let (status, body) = self
            .send(Method::DELETE, &url, Some(entry.to_json()))
            .await?;
        self.check(&Method::DELETE, &url, status, &body)
    }

    /// `GET /dmsg-discovery/available_servers`: servers with free sessions, most first.
    /// An empty list is the error [`ApiError::NoAvailableServers`], as in the reference.
    pub async fn available_servers(&self) -> Result<Vec<Entry>, DiscError> {
        self.entry_list("available_servers").await
    }

    /// `GET /dmsg-discovery/all_servers`.
    pub async fn all_servers(&self) -> Result<Vec<Entry>, DiscError> {
        self.entry_list("all_servers").await
    }

    /// `GET /dmsg-discovery/entries`: public keys (hex) of all client entries.
    pub async fn all_entries(&self) -> Result<Vec<String>, DiscError> {
        let url = format!("{}/dmsg-discovery/entries", self.base);
        self.get_json::<Option<Vec<String>>>(&url)
            .await
            .map(Option::unwrap_or_default)
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health, DiscError> {
        let url = format!("{}/health", self.base);
        self.get_json(&url).await
    }

    /// Removes `pk`'s entry on shutdown, as the reference does: fetch the stored entry and send
    /// it back with `DELETE /dmsg-discovery/entry`. A missing entry is not an error.
    pub async fn deregister(&self, pk: &PubKey) -> Result<(), DiscError> {
        match self.entry(pk).await {
            Ok(entry) => self.delete_entry(&entry).await,
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Registers or refreshes this node's entry as the reference clients do (section 5.5):
    /// fetch the own entry; if there is none, build a new one (sequence 0), let `apply` fill it
    /// in, sign and post it; otherwise clear the section-7 fields, let `apply` modify it, set
    /// `sequence + 1` and `timestamp = now` (never before the stored timestamp), re-sign and
    /// post. If the discovery rejects the sequence (a concurrent update), re-fetch: a newer
    /// remote entry is adopted as is, otherwise retry once with the remote sequence + 1.
    ///
    /// Returns the entry the discovery now holds. Unlike the reference, a failed fetch other
    /// than "not found" is returned as an error instead of overwriting with sequence 0.
    pub async fn register_or_update<F>(&self, sk: &SecKey, mut apply: F) -> Result<Entry, DiscError>
    where
        F: FnMut(&mut Entry),
    {
        let pk = sk.pub_key();
        let mut entry = match self.entry(&pk).await {
            Ok(e) => e,
            Err(e) if e.is_not_found() => {
                let mut fresh = Entry {
                    version: super::entry::CURRENT_VERSION.to_owned(),
                    sequence: 0,
                    timestamp: now_unix_nanos(),
                    static_pk: pk,
                    ..Entry::default()
                };
                apply(&mut fresh);
                fresh.sign(sk)?;
                self.post_entry(&fresh).await?;
                return Ok(fresh);
            }
            Err(e) => return Err(e),
        };
        entry.clear_newer_fields();
        if entry.version.is_empty() {
            entry.version = super::entry::CURRENT_VERSION.to_owned();
        }
        apply(&mut entry);
        let mut next_sequence = entry.sequence.saturating_add(1);
        for attempt in 0..2 {
            entry.sequence = next_sequence;
            entry.timestamp = now_unix_nanos().max(entry.timestamp);
            entry.sign(sk)?;
            match self.post_entry(&entry).await {
                Ok(()) => return Ok(entry),
                Err(e)
                    if attempt == 0
                        && e.api_error()
                            == Some(ApiError::Validation(ValidationError::WrongSequence)) =>
                {
                    let remote = self.entry(&pk).await?;
                    if remote.timestamp > entry.timestamp {
                        tracing::debug!(%pk, seq = remote.sequence, "discovery holds a newer entry; adopting it");
                        return Ok(remote);
                    }
                    next_sequence = remote.sequence.saturating_add(1);
                }
                Err(e) => return Err(e),
            }
        }
        // Second attempt failed with the sequence error again.
        Err(DiscError::Api {
            method: Method::POST,
            url: format!("{}/dmsg-discovery/entry/", self.base),
            status: 422,
            source: ApiError::Validation(ValidationError::WrongSequence),
        })
    }

    async fn entry_list(&self, endpoint: &str) -> Result<Vec<Entry>, DiscError> {
        let url = format!("{}/dmsg-discovery/{endpoint}", self.base);
        self.get_json::<Option<Vec<Entry>>>(&url)
            .await
            .map(Option::unwrap_or_default)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, DiscError> {
        let (status, body) = self.send(Method::GET, url, None).await?;
        self.check(&Method::GET, url, status, &body)?;
        serde_json::from_slice(&body).map_err(|e| bad_response(&Method::GET, url, status, &body, e))
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<String>,
    ) -> Result<(StatusCode, Vec<u8>), DiscError> {
        let err = |source| DiscError::Request {
            method: method.clone(),
            url: url.to_owned(),
            source,
        };
        let mut req = self.http.request(method.clone(), url);
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let resp = req.send().await.map_err(err)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(err)?;
        tracing::trace!(%method, url, status = status.as_u16(), "discovery request");
        Ok((status, bytes.to_vec()))
    }

    fn check(
        &self,
        method: &Method,
        url: &str,
        status: StatusCode,
        body: &[u8],
    ) -> Result<(), DiscError> {
        if status == StatusCode::OK {
            return Ok(());
        }
        let msg: HttpMessage =
            serde_json::from_slice(body).map_err(|e| bad_response(method, url, status, body, e))?;
        match ApiError::from_message(&msg.message) {
            Some(source) => Err(DiscError::Api {
                method: method.clone(),
                url: url.to_owned(),
                status: status.as_u16(),
                source,
            }),
            None => Err(DiscError::UnknownApiError {
                method: method.clone(),
                url: url.to_owned(),
                status: status.as_u16(),
                message: msg.message,
            }),
        }
    }
}

fn bad_response(
    method: &Method,
    url: &str,
    status: StatusCode,
    body: &[u8],
    source: serde_json::Error,
) -> DiscError {
    let shown = &body[..body.len().min(256)];
    DiscError::BadResponse {
        method: method.clone(),
        url: url.to_owned(),
        status: status.as_u16(),
        body: String::from_utf8_lossy(shown).into_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(DiscClient::new("http://127.0.0.1:9090/").is_ok());
        assert_eq!(
            DiscClient::new("http://dmsgd.skywire.skycoin.com")
                .map(|c| c.address().to_owned())
                .unwrap_or_default(),
            "http://dmsgd.skywire.skycoin.com"
        );
        assert!(matches!(
            DiscClient::new("dmsgd:9090"),
            Err(DiscError::BadAddress(_))
        ));
        assert!(DiscClient::new("http://").is_err());
    }
}
