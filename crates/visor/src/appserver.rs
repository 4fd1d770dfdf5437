//! Placeholder of the local app server (replaced by the app-SDK work): the API the visor calls.
#![allow(missing_docs, dead_code)]
use std::sync::Arc;

use skywire_cipher::PubKey;

#[derive(Debug, thiserror::Error)]
#[error("the app server is not available in this build")]
pub struct AppServerError;

#[derive(Debug)]
pub struct AppServer {
    addr: std::net::SocketAddr,
}

impl AppServer {
    pub async fn bind(
        _addr: &str,
        _visor_pk: PubKey,
        _dmsg: skywire_dmsg::Client,
    ) -> Result<Arc<AppServer>, AppServerError> {
        Err(AppServerError)
    }
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}
