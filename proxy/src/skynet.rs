//! skynet port forwards (apps.md 4): the forwarding server (exposed port list + optional
//! client-key whitelist) on a dmsg port (57 for 2026, 47 for 2025) and/or on a direct
//! noise-XK TCP listener, and the client that maps a local TCP port to one remote port.
//!
//! Per accepted carrier: (2026) ready byte, request JSON, then the whitelist and port checks
//! (`not authorized`, `port N not exposed`), a connect to `127.0.0.1:<port>`, `{}` and a raw
//! relay. Like the 2026 client, ours opens a fresh carrier per local TCP connection (the wire
//! has no per-connection framing).
//!
//! HTTP mode (no `raw_tcp` in the request) differs from raw mode only in how a failed local
//! connect is reported: `{}` followed by a literal `HTTP/1.1 502 Bad Gateway` response, as
//! the reference. The reference's HTTP mode re-issues "one read" as one request and reads the
//! answer until EOF, which breaks large requests, streaming and WebSockets; we relay the
//! bytes instead, which carries any HTTP exchange and is the same on the wire for a client
//! that writes a request and reads the response.

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use skywire_cipher::{PubKey, SecKey};
use skywire_noise::NoiseStream;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::handshake::{self, ForwardReply, Variant};
use crate::net::{Dialer, ProxyError, relay};

/// The literal answer of HTTP mode when the local port cannot be reached.
pub const BAD_GATEWAY: &[u8] =
    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// Forwarding server settings.
#[derive(Debug, Clone)]
pub struct ForwardServerConfig {
    /// Local TCP ports peers may reach.
    pub ports: BTreeSet<u16>,
    /// Keys allowed to connect; empty = everyone.
    pub whitelist: HashSet<PubKey>,
    /// Handshake generation.
    pub variant: Variant,
    /// Where exposed ports live.
    pub target_ip: IpAddr,
    /// Bound on the handshake and the local connect.
    pub timeout: Duration,
}

impl Default for ForwardServerConfig {
    fn default() -> Self {
        ForwardServerConfig {
            ports: BTreeSet::new(),
            whitelist: HashSet::new(),
            variant: Variant::V2026,
            target_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            timeout: Duration::from_secs(20),
        }
    }
}

/// Counters of a forwarding server.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Forwards that started relaying.
    pub accepted: AtomicU64,
    /// Forwards refused (whitelist, port, local connect).
    pub refused: AtomicU64,
}

/// The forwarding server.
#[derive(Debug)]
pub struct ForwardServer {
    cfg: ForwardServerConfig,
    /// Counters.
    pub stats: ForwardStats,
}

impl ForwardServer {
    /// A server with `cfg`.
    pub fn new(cfg: ForwardServerConfig) -> Arc<ForwardServer> {
        Arc::new(ForwardServer {
            cfg,
            stats: ForwardStats::default(),
        })
    }

    /// Serves carriers from a dmsg listener (port 57/47).
    pub async fn serve_dmsg(self: Arc<Self>, mut listener: skywire_dmsg::Listener) {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                acc = listener.accept() => {
                    let Some(s) = acc else { break };
                    let me = self.clone();
                    conns.spawn(async move {
                        let pk = s.remote_addr().pk;
                        me.log(pk, me.handle(s, pk).await);
                    });
                }
            }
        }
    }

    /// Serves direct noise-XK carriers accepted on `listener` with identity `sk`.
    pub async fn serve_direct(self: Arc<Self>, listener: TcpListener, sk: SecKey) {
        let sk = Arc::new(sk);
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                acc = listener.accept() => {
                    let (tcp, peer) = match acc {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "skynet: accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let me = self.clone();
                    let sk = sk.clone();
                    conns.spawn(async move {
                        let _ = tcp.set_nodelay(true);
                        match NoiseStream::xk_responder(tcp, &sk, me.cfg.timeout).await {
                            Ok(ns) => {
                                let pk = *ns.remote_pk();
                                me.log(pk, me.handle(ns, pk).await);
                            }
                            Err(e) => tracing::debug!(%peer, error = %e, "skynet: noise handshake failed"),
                        }
                    });
                }
            }
        }
    }

    fn log(&self, pk: PubKey, r: Result<(), ProxyError>) {
        if let Err(e) = r {
            tracing::info!(remote = %pk, error = %crate::net::chain(&e), "skynet: forward ended");
        }
    }

    /// One carrier from `remote`: handshake, checks, relay.
    pub async fn handle<S>(&self, mut s: S, remote: PubKey) -> Result<(), ProxyError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let cfg = &self.cfg;
        let allowed = cfg.whitelist.is_empty() || cfg.whitelist.contains(&remote);
        if !allowed && cfg.variant == Variant::V2025 {
            // The 2025 server refuses before reading the request.
            return self.refuse(&mut s, "not authorized".into()).await;
        }
        let req = handshake::server_read_request(&mut s, cfg.variant, cfg.timeout).await?;
        if !allowed {
            return self.refuse(&mut s, "not authorized".into()).await;
        }
        if !cfg.ports.contains(&req.port) {
            return self
                .refuse(&mut s, format!("port {} not exposed", req.port))
                .await;
        }
        let target = SocketAddr::new(cfg.target_ip, req.port);
        let local = match tokio::time::timeout(cfg.timeout, TcpStream::connect(target)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                if req.raw_tcp {
                    handshake::server_reply(
                        &mut s,
                        &ForwardReply::Error(format!("Failed to dial port {}", req.port)),
                    )
                    .await?;
                } else {
                    handshake::server_reply(&mut s, &ForwardReply::Ok).await?;
                    s.write_all(BAD_GATEWAY)
                        .await
                        .map_err(|e| ProxyError::Io("reply", e))?;
                    let _ = s.shutdown().await;
                }
                return Err(ProxyError::Io("local connect", e));
            }
            Err(_) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return Err(ProxyError::Timeout("local connect", cfg.timeout));
            }
        };
        let _ = local.set_nodelay(true);
        handshake::server_reply(&mut s, &ForwardReply::Ok).await?;
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(remote = %remote, port = req.port, raw = req.raw_tcp, "skynet: forwarding");
        relay(s, local)
            .await
            .map_err(|e| ProxyError::Io("relay", e))?;
        Ok(())
    }

    async fn refuse<S: AsyncWrite + Unpin>(
        &self,
        s: &mut S,
        why: String,
    ) -> Result<(), ProxyError> {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        handshake::server_reply(s, &ForwardReply::Error(why.clone())).await?;
        let _ = s.shutdown().await;
        Err(ProxyError::Handshake(handshake::HandshakeError::Refused(
            why,
        )))
    }
}

/// Client side: every connection accepted on `local` gets a fresh forward to `pk`'s
/// `remote_port`; bytes are relayed. Runs until the listener fails.
pub async fn serve_forward_client(
    local: TcpListener,
    dialer: Arc<Dialer>,
    pk: PubKey,
    remote_port: u16,
    raw_tcp: bool,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            acc = local.accept() => {
                let (tcp, _) = match acc {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "skynet client: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let dialer = dialer.clone();
                conns.spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    match dialer.dial_forward(pk, remote_port, raw_tcp).await {
                        Ok(remote) => {
                            let _ = relay(tcp, remote).await;
                        }
                        Err(e) => tracing::warn!(remote = %pk, port = remote_port, error = %crate::net::chain(&e), "skynet client: forward failed"),
                    }
                });
            }
        }
    }
}
