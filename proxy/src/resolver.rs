//! The resolving SOCKS5 proxy (apps.md 5.2): names never go to DNS here. `<pk>.dmsg` (with
//! optional vhost and route labels) becomes a raw dmsg stream to `pk:port`; `<pk>.skynet`
//! becomes a raw forward through `pk`'s forwarding service for `port`; every other name or
//! address is dialled directly or through an upstream SOCKS5 proxy (chaining 4445 → 4446 →
//! `--upstream`). Clients must send names (socks5h semantics), as browsers do.
//! Not implemented: the vhost Host-header rewrite and TLS MITM of the reference.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use fast_socks5::server::Socks5ServerProtocol;
use fast_socks5::util::target_addr::TargetAddr;
use fast_socks5::{ReplyError, Socks5Command};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::hostname::{Suffix, parse_host};
use crate::net::{BoxStream, Dialer, ProxyError, relay};

/// Resolver settings.
#[derive(Debug, Clone, Default)]
pub struct ResolverConfig {
    /// Carrier for `.dmsg` names (`None`: such names are refused).
    pub dmsg: Option<Dialer>,
    /// Carrier for `.skynet` names (`None`: passed to `upstream` or refused).
    pub skynet: Option<Dialer>,
    /// Upstream SOCKS5 for everything else; `None` dials directly.
    pub upstream: Option<SocketAddr>,
    /// Bound on the SOCKS exchange and the outgoing dial (30 s when zero).
    pub timeout: Duration,
}

/// Serves the resolver on `listener` until the task is dropped.
pub async fn serve_resolver(listener: TcpListener, cfg: ResolverConfig) {
    let cfg = Arc::new(cfg);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            acc = listener.accept() => {
                let (tcp, _) = match acc {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "resolver: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let cfg = cfg.clone();
                conns.spawn(async move {
                    if let Err(e) = serve_one(tcp, &cfg).await {
                        tracing::debug!(error = %crate::net::chain(&e), "resolver: connection ended");
                    }
                });
            }
        }
    }
}

fn socks_err(e: impl std::error::Error + Send + Sync + 'static) -> ProxyError {
    ProxyError::Socks(Box::new(e))
}

async fn serve_one(tcp: TcpStream, cfg: &ResolverConfig) -> Result<(), ProxyError> {
    let t = if cfg.timeout.is_zero() {
        Duration::from_secs(30)
    } else {
        cfg.timeout
    };
    let _ = tcp.set_nodelay(true);
    let (proto, cmd, target) = tokio::time::timeout(t, async {
        Socks5ServerProtocol::accept_no_auth(tcp)
            .await
            .map_err(socks_err)?
            .read_command()
            .await
            .map_err(socks_err)
    })
    .await
    .map_err(|_| ProxyError::Timeout("socks5 negotiation", t))??;
    if cmd != Socks5Command::TCPConnect {
        proto
            .reply_error(&ReplyError::CommandNotSupported)
            .await
            .map_err(socks_err)?;
        return Ok(());
    }
    let dialled = tokio::time::timeout(t, dial(cfg, &target))
        .await
        .unwrap_or(Err(ProxyError::Timeout("dial", t)));
    let out = match dialled {
        Ok(out) => out,
        Err(e) => {
            let _ = proto.reply_error(&ReplyError::HostUnreachable).await;
            return Err(e);
        }
    };
    let inner = proto
        .reply_success(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(socks_err)?;
    relay(inner, out)
        .await
        .map_err(|e| ProxyError::Io("relay", e))?;
    Ok(())
}

async fn dial(cfg: &ResolverConfig, target: &TargetAddr) -> Result<BoxStream, ProxyError> {
    if let TargetAddr::Domain(host, port) = target {
        let parsed = parse_host(host).map_err(socks_err)?;
        match parsed {
            Some(t) if t.suffix == Suffix::Dmsg => {
                let d = cfg.dmsg.as_ref().ok_or_else(|| {
                    socks_err(std::io::Error::other(".dmsg names are not served here"))
                })?;
                tracing::debug!(pk = %t.pk, port, "resolver: .dmsg");
                return d.dial_raw(t.pk, *port).await;
            }
            Some(t) if cfg.skynet.is_some() => {
                let Some(d) = cfg.skynet.as_ref() else {
                    return Err(socks_err(std::io::Error::other("unreachable")));
                };
                tracing::debug!(pk = %t.pk, port, "resolver: .skynet");
                return d.dial_forward(t.pk, *port, true).await;
            }
            _ => {}
        }
    }
    let (host, port) = match target {
        TargetAddr::Ip(sa) => (sa.ip().to_string(), sa.port()),
        TargetAddr::Domain(h, p) => (h.clone(), *p),
    };
    match cfg.upstream {
        Some(up) => {
            let s = fast_socks5::client::Socks5Stream::connect(up, host, port, Default::default())
                .await
                .map_err(socks_err)?;
            Ok(Box::pin(s))
        }
        None => {
            let s = match target {
                TargetAddr::Ip(sa) => TcpStream::connect(*sa).await,
                TargetAddr::Domain(h, p) => TcpStream::connect((h.as_str(), *p)).await,
            }
            .map_err(|e| ProxyError::Io("direct connect", e))?;
            let _ = s.set_nodelay(true);
            Ok(Box::pin(s))
        }
    }
}
