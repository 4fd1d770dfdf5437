//! skysocks (apps.md 2): SOCKS5 over skywire, with the reference's framing. The server accepts
//! app connections (dmsg port 3), runs a yamux **server** session over each (keep-alives off,
//! as the reference) and hands every yamux stream to one SOCKS5 exchange (fast-socks5), so
//! SOCKS runs end to end between the user's application and the exit. The client dials the
//! server once, runs a yamux **client** session and maps each local TCP connection to one
//! stream without speaking SOCKS itself; `--http` adds an HTTP CONNECT front that speaks
//! SOCKS5 (with the passcode) on a stream.
//!
//! SOCKS5 as the reference: passcode → only RFC 1929 auth, accepted when the username **or**
//! the password equals it; CONNECT to IPv4, IPv6 or a name resolved at the exit; BIND and
//! UDP ASSOCIATE answer 0x07. UDP ASSOCIATE is not offered: the reference framing has no
//! datagram channel (a UDP relay would need a new per-stream framing both ends agree on).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use fast_socks5::server::Socks5ServerProtocol;
use fast_socks5::util::target_addr::TargetAddr;
use fast_socks5::{ReplyError, Socks5Command};
use skywire_dmsg::mux::{self, Session};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::http_connect::{Head, parse_head};
use crate::net::{ProxyError, relay};

/// dmsg/skynet port of the skysocks server.
pub const SKYSOCKS_PORT: u16 = 3;

/// Server settings.
#[derive(Debug, Clone)]
pub struct SkysocksConfig {
    /// Required as SOCKS5 username or password when set.
    pub passcode: Option<String>,
    /// Bound on the SOCKS exchange and on the exit's TCP connect.
    pub connect_timeout: Duration,
    /// yamux settings of the carrier session.
    pub mux: mux::Config,
}

impl Default for SkysocksConfig {
    fn default() -> Self {
        SkysocksConfig {
            passcode: None,
            connect_timeout: Duration::from_secs(30),
            mux: carrier_mux(),
        }
    }
}

/// The carrier's yamux settings: hashicorp defaults with keep-alives disabled (reference).
pub fn carrier_mux() -> mux::Config {
    mux::Config {
        enable_keepalive: false,
        ..mux::Config::default()
    }
}

fn socks_err(e: impl std::error::Error + Send + Sync + 'static) -> ProxyError {
    ProxyError::Socks(Box::new(e))
}

/// Serves skysocks on every connection `listener` yields (a dmsg listener on port 3).
pub async fn serve_skysocks(mut listener: skywire_dmsg::Listener, cfg: SkysocksConfig) {
    let cfg = Arc::new(cfg);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Some(conn) = accepted else { break };
                let peer = conn.remote_addr();
                tracing::info!(%peer, "skysocks: client connected");
                conns.spawn(serve_carrier(conn, cfg.clone()));
            }
        }
    }
}

/// One app connection: a yamux server session whose streams each carry one SOCKS5 exchange.
pub async fn serve_carrier<T>(conn: T, cfg: Arc<SkysocksConfig>)
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let session = Session::server(conn, cfg.mux.clone());
    let mut streams = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = streams.join_next(), if !streams.is_empty() => {}
            s = session.accept() => {
                let Some(s) = s else { break };
                let cfg = cfg.clone();
                streams.spawn(async move {
                    if let Err(e) = serve_socks(s, &cfg).await {
                        tracing::debug!(error = %e, "skysocks: stream ended");
                    }
                });
            }
        }
    }
    streams.shutdown().await;
}

fn reply_for(e: &std::io::Error) -> ReplyError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => ReplyError::ConnectionRefused,
        K::NetworkUnreachable => ReplyError::NetworkUnreachable,
        K::TimedOut => ReplyError::ConnectionTimeout,
        _ => ReplyError::HostUnreachable,
    }
}

/// One SOCKS5 exchange on `s` (exit side): auth, CONNECT, relay.
pub async fn serve_socks<S>(s: S, cfg: &SkysocksConfig) -> Result<(), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let t = cfg.connect_timeout;
    let negotiated = tokio::time::timeout(t, async {
        let proto = match &cfg.passcode {
            Some(pc) => {
                Socks5ServerProtocol::accept_password_auth(s, |u, p| u == *pc || p == *pc)
                    .await
                    .map_err(socks_err)?
                    .0
            }
            None => Socks5ServerProtocol::accept_no_auth(s)
                .await
                .map_err(socks_err)?,
        };
        proto.read_command().await.map_err(socks_err)
    })
    .await
    .map_err(|_| ProxyError::Timeout("socks5 negotiation", t))?;
    let (proto, cmd, target) = negotiated?;
    if cmd != Socks5Command::TCPConnect {
        proto
            .reply_error(&ReplyError::CommandNotSupported)
            .await
            .map_err(socks_err)?;
        return Ok(());
    }
    let connect = async {
        match &target {
            TargetAddr::Ip(sa) => TcpStream::connect(*sa).await,
            TargetAddr::Domain(host, port) => TcpStream::connect((host.as_str(), *port)).await,
        }
    };
    let out = match tokio::time::timeout(t, connect).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            proto.reply_error(&reply_for(&e)).await.map_err(socks_err)?;
            return Err(ProxyError::Io("exit connect", e));
        }
        Err(_) => {
            proto
                .reply_error(&ReplyError::ConnectionTimeout)
                .await
                .map_err(socks_err)?;
            return Err(ProxyError::Timeout("exit connect", t));
        }
    };
    let _ = out.set_nodelay(true);
    let bound = out
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let inner = proto.reply_success(bound).await.map_err(socks_err)?;
    relay(inner, out)
        .await
        .map_err(|e| ProxyError::Io("relay", e))?;
    Ok(())
}

/// Client side: opens the yamux client session over an app connection to the server.
pub fn client_session<T>(conn: T) -> Session
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    Session::client(conn, carrier_mux())
}

/// Client side: every connection accepted on `socks` becomes one stream on `session` (bytes
/// copied, SOCKS spoken by the application end to end). With `http`, an HTTP CONNECT front
/// that performs the SOCKS5 exchange itself (with `passcode` when set). Returns when the
/// session dies.
pub async fn serve_skysocks_client(
    session: Session,
    socks: TcpListener,
    http: Option<TcpListener>,
    passcode: Option<String>,
) -> ProxyError {
    let session = Arc::new(session);
    let passcode = Arc::new(passcode);
    let mut conns = JoinSet::new();
    let http_accept = async |l: &Option<TcpListener>| match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    };
    loop {
        tokio::select! {
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            e = session.closed() => return ProxyError::Mux(e),
            acc = socks.accept() => match acc {
                Ok((tcp, _)) => {
                    let session = session.clone();
                    conns.spawn(async move {
                        let _ = tcp.set_nodelay(true);
                        match session.open_stream().await {
                            Ok(st) => { let _ = relay(tcp, st).await; }
                            Err(e) => tracing::warn!(error = %e, "skysocks-client: opening a stream failed"),
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "skysocks-client: accept failed"),
            },
            acc = http_accept(&http) => match acc {
                Ok((tcp, _)) => {
                    let session = session.clone();
                    let passcode = passcode.clone();
                    conns.spawn(async move {
                        if let Err(e) = serve_http_connect(tcp, &session, passcode.as_deref()).await {
                            tracing::debug!(error = %e, "skysocks-client: http proxy connection ended");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "skysocks-client: http accept failed"),
            },
        }
    }
}

async fn serve_http_connect(
    mut tcp: TcpStream,
    session: &Session,
    passcode: Option<&str>,
) -> Result<(), ProxyError> {
    let io = |e| ProxyError::Io("http proxy", e);
    let mut buf = Vec::with_capacity(1024);
    let head = loop {
        let mut chunk = [0u8; 1024];
        let n = tcp.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(&buf) {
            Ok(Some(h)) => break h,
            Ok(None) => {}
            Err(e) => {
                let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                return Err(socks_err(e));
            }
        }
    };
    let (host, port, len) = match head {
        Head::Connect { host, port, len } => (host, port, len),
        Head::Other { .. } => {
            tcp.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await
                .map_err(io)?;
            return Ok(());
        }
    };
    let stream = session.open_stream().await?;
    let auth = passcode.map(|p| fast_socks5::AuthenticationMethod::Password {
        username: p.to_owned(),
        password: p.to_owned(),
    });
    let socks = async {
        let mut s =
            fast_socks5::client::Socks5Stream::use_stream(stream, auth, Default::default()).await?;
        let target = match host.parse() {
            Ok(ip) => TargetAddr::Ip(SocketAddr::new(ip, port)),
            Err(_) => TargetAddr::Domain(host.clone(), port),
        };
        s.request(Socks5Command::TCPConnect, target).await?;
        Ok::<_, fast_socks5::SocksError>(s)
    };
    let mut s = match socks.await {
        Ok(s) => s,
        Err(e) => {
            let _ = tcp
                .write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return Err(socks_err(e));
        }
    };
    tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .map_err(io)?;
    // Bytes the client sent after the head already belong to the tunnel.
    if buf.len() > len {
        s.write_all(&buf[len..]).await.map_err(io)?;
    }
    relay(tcp, s).await.map_err(io)?;
    Ok(())
}
