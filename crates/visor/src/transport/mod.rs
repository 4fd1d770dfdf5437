//! Placeholder of the transport manager (replaced by the transport work): the API the visor calls.
#![allow(missing_docs, dead_code)]
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use skywire_cipher::{PubKey, SecKey};

#[derive(Debug, thiserror::Error)]
#[error("transports are not available in this build")]
pub struct TransportError;

#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub sk: SecKey,
    pub pk_table: BTreeMap<PubKey, String>,
    pub stcp_listen: Option<String>,
    pub dmsg: Option<skywire_dmsg::Client>,
    pub persistent: Vec<(PubKey, String)>,
}

impl TransportConfig {
    pub fn new(sk: SecKey) -> Self {
        TransportConfig {
            sk,
            pk_table: BTreeMap::new(),
            stcp_listen: None,
            dmsg: None,
            persistent: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransportSummary {
    pub id: String,
}

#[derive(Debug)]
pub struct TransportManager;

#[derive(Debug, Clone, Copy)]
pub struct Id;
impl std::str::FromStr for Id {
    type Err = TransportError;
    fn from_str(_: &str) -> Result<Id, TransportError> {
        Err(TransportError)
    }
}

impl TransportManager {
    pub async fn start(_cfg: TransportConfig) -> Result<Arc<TransportManager>, TransportError> {
        Err(TransportError)
    }
    pub fn types(&self) -> Vec<String> {
        Vec::new()
    }
    pub fn stcp_local_addr(&self) -> Option<SocketAddr> {
        None
    }
    pub fn list(&self) -> Vec<TransportSummary> {
        Vec::new()
    }
    pub async fn add(
        &self,
        _remote: PubKey,
        _t: &str,
        _timeout: Duration,
    ) -> Result<TransportSummary, TransportError> {
        Err(TransportError)
    }
    pub async fn remove(&self, _id: Id) -> Result<(), TransportError> {
        Err(TransportError)
    }
    pub async fn close(&self) {}
}
