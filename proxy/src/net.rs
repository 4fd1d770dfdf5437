//! Carriers and plumbing shared by the proxies: the boxed stream type, dialling a key over
//! dmsg or over the direct noise-XK TCP path (an address book maps keys to `ip:port`, because
//! the visor's transport layer does not exist yet), the skynet client handshake on top, and
//! the bidirectional byte relay.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use skywire_cipher::{PubKey, SecKey};
use skywire_dmsg::{Addr, Client};
use skywire_noise::NoiseStream;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::handshake::{self, ForwardRequest, HandshakeError, Variant};

/// Anything a proxy relays over.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> AsyncStream for T {}

/// A boxed carrier stream.
pub type BoxStream = Pin<Box<dyn AsyncStream>>;

/// Errors of the proxies.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// dmsg dial or listen.
    #[error("dmsg")]
    Dmsg(#[from] skywire_dmsg::DmsgError),
    /// Direct noise handshake.
    #[error("noise handshake with {0}")]
    Noise(PubKey, #[source] skywire_noise::NoiseError),
    /// No address for a key on the direct path.
    #[error("no direct address for {0} (add --peer <pk>@<ip>:<port>)")]
    NoAddress(PubKey),
    /// TCP connect or relay I/O.
    #[error("{0}")]
    Io(&'static str, #[source] std::io::Error),
    /// Skynet handshake.
    #[error("skynet handshake")]
    Handshake(#[from] HandshakeError),
    /// yamux session.
    #[error("yamux session")]
    Mux(#[from] skywire_dmsg::mux::Error),
    /// SOCKS5 protocol.
    #[error("socks5")]
    Socks(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Deadline passed.
    #[error("{0} timed out after {1:?}")]
    Timeout(&'static str, Duration),
}

/// How a key is reached.
#[derive(Debug, Clone)]
pub enum Network {
    /// dmsg streams through the relays.
    Dmsg(Client),
    /// Direct noise-XK over TCP (the foundation's "skynet" path), with an address book.
    Direct {
        /// Our identity.
        sk: SecKey,
        /// Key → `ip:port` of its noise-TCP listener.
        book: HashMap<PubKey, SocketAddr>,
        /// Keys missing from the book are dialled over dmsg with this client, if set.
        fallback: Option<Client>,
    },
}

/// Dials keys on a [`Network`] and, for skynet forwards, runs the client handshake.
#[derive(Debug, Clone)]
pub struct Dialer {
    /// The carrier.
    pub network: Network,
    /// Handshake generation of the forwarding service.
    pub variant: Variant,
    /// Port of the forwarding service on dmsg (47/57); unused on the direct path.
    pub forward_port: u16,
    /// Bound on connecting plus handshaking.
    pub timeout: Duration,
}

impl Dialer {
    /// A dialer with the 2026 defaults.
    pub fn new(network: Network) -> Dialer {
        Dialer {
            network,
            variant: Variant::V2026,
            forward_port: Variant::V2026.default_port(),
            timeout: Duration::from_secs(20),
        }
    }

    /// A raw stream to `pk:port` (dmsg) or to `pk`'s noise-TCP listener (direct; `port`
    /// unused).
    pub async fn dial_raw(&self, pk: PubKey, port: u16) -> Result<BoxStream, ProxyError> {
        match &self.network {
            Network::Dmsg(client) => {
                let s = tokio::time::timeout(self.timeout, client.dial(Addr::new(pk, port)))
                    .await
                    .map_err(|_| ProxyError::Timeout("dmsg dial", self.timeout))??;
                Ok(Box::pin(s))
            }
            Network::Direct { sk, book, fallback } => {
                let Some(addr) = book.get(&pk).copied() else {
                    let client = fallback.as_ref().ok_or(ProxyError::NoAddress(pk))?;
                    let s = tokio::time::timeout(self.timeout, client.dial(Addr::new(pk, port)))
                        .await
                        .map_err(|_| ProxyError::Timeout("dmsg dial", self.timeout))??;
                    return Ok(Box::pin(s));
                };
                let tcp = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(addr))
                    .await
                    .map_err(|_| ProxyError::Timeout("tcp connect", self.timeout))?
                    .map_err(|e| ProxyError::Io("tcp connect", e))?;
                let _ = tcp.set_nodelay(true);
                let ns = NoiseStream::xk_initiator(tcp, sk, pk, self.timeout)
                    .await
                    .map_err(|e| ProxyError::Noise(pk, e))?;
                Ok(Box::pin(ns))
            }
        }
    }

    /// A forward to `pk`'s TCP port `port` through its forwarding service.
    pub async fn dial_forward(
        &self,
        pk: PubKey,
        port: u16,
        raw_tcp: bool,
    ) -> Result<BoxStream, ProxyError> {
        let mut s = self.dial_raw(pk, self.forward_port).await?;
        handshake::client_handshake(
            &mut s,
            self.variant,
            &ForwardRequest { port, raw_tcp },
            self.timeout,
        )
        .await?;
        Ok(s)
    }
}

/// Copies both ways until both directions ended; returns (a→b, b→a) bytes.
pub async fn relay<A, B>(mut a: A, mut b: B) -> std::io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, 64 * 1024, 64 * 1024).await
}

/// `e` and its sources on one line (`a: b: c`), for logs.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// Parses `<pk>@<ip>:<port>` (the direct path's address book entries).
pub fn parse_peer(text: &str) -> Result<(PubKey, SocketAddr), String> {
    let (pk, addr) = text
        .split_once('@')
        .ok_or_else(|| format!("{text:?}: expected <pk>@<ip>:<port>"))?;
    let pk = PubKey::from_hex(pk).map_err(|e| format!("{text:?}: bad key: {e}"))?;
    let addr = addr
        .parse()
        .map_err(|e| format!("{text:?}: bad address: {e}"))?;
    Ok((pk, addr))
}
