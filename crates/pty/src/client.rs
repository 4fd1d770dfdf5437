//! The pty client as a library ([`PtyClient`]): one stream to a host on any carrier — direct TCP
//! (noise XK with this side as initiator to the host's key, pty.md 5), a dmsg stream to
//! `<pk>:22`, or the host's local unix control socket — then the `dmsgpty/pty` request
//! ([`crate::uri::request_uri`]) and Go `net/rpc` ([`RpcClient`]) on top.
//!
//! Two ways to use it: buffered [`PtyClient::exec`] (`pty.Exec`, pty.md 6.1; map the result to a
//! process exit code with [`crate::types::client_exit_code`]) and the interactive session API
//! [`start`](PtyClient::start) / [`read`](PtyClient::read) / [`write`](PtyClient::write) /
//! [`set_size`](PtyClient::set_size) / [`stop`](PtyClient::stop). Calls may run concurrently on
//! one client (a pending `read` does not block `write`).
//!
//! [`open_stream`] returns the raw stream of a non-RPC subsystem (`dmsgpty/sftp`) after the
//! host's `0x00`.
//!
//! [`Target`] parses the addresses the CLI accepts: `tcp://<pk>@<host>:<port>`,
//! `<pk>@<host>[:<port>]`, `dmsg://<pk>[:<port>]`, `<pk>` and `unix://<path>`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use skywire_cipher::{PubKey, SecKey};
use skywire_noise::{NoiseError, NoiseStream};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::host::BoxedStream;
use crate::rpc::{RpcClient, RpcError};
use crate::types::{self, CommandExecReq, CommandExecResult, CommandReq, WinSize};
use crate::uri::{self, PTY_URI, UriError};

/// Default port of a host's direct TCP listener (pty.md 9, `cli pty shell -p`).
pub const DEFAULT_TCP_PORT: u16 = 2022;
/// Default dmsg port of a pty host.
pub const DEFAULT_DMSG_PORT: u16 = 22;
/// TCP dial timeout (pty.md 5.1).
pub const TCP_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Noise handshake timeout (pty.md 5.1).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the client allows beyond an exec's own timeout before giving up on the host.
pub const EXEC_GRACE: Duration = Duration::from_secs(15);

/// Where a pty host is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Direct TCP + noise XK to `addr` (`host:port`), authenticating the host as `pk`.
    Tcp {
        /// The host's public key.
        pk: PubKey,
        /// `host:port`.
        addr: String,
    },
    /// A dmsg stream to `pk:port`.
    Dmsg {
        /// The host's public key.
        pk: PubKey,
        /// dmsg port (22 by default).
        port: u16,
    },
    /// The host's local control socket (no authentication; pty.md 2.4).
    Unix(PathBuf),
}

/// A target string that could not be parsed.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "invalid pty target {input:?}: {reason} (expected tcp://<pk>@<host>:<port>, <pk>@<host>[:<port>], dmsg://<pk>[:<port>], <pk> or unix://<path>)"
)]
pub struct TargetError {
    input: String,
    reason: String,
}

impl Target {
    /// Parses a target; `tcp_port` is used for `<pk>@<host>` without a port, `dmsg_port` for a
    /// dmsg target without one.
    pub fn parse_with(s: &str, tcp_port: u16, dmsg_port: u16) -> Result<Target, TargetError> {
        let err = |reason: &str| TargetError {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let pk = |t: &str| PubKey::from_str(t).map_err(|e| err(&format!("public key: {e}")));
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(err("empty socket path"));
            }
            return Ok(Target::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let (k, hostport) = rest.split_once('@').ok_or_else(|| err("missing <pk>@"))?;
            return Ok(Target::Tcp {
                pk: pk(k)?,
                addr: with_port(hostport, tcp_port).ok_or_else(|| err("missing host"))?,
            });
        }
        let rest = s.strip_prefix("dmsg://").unwrap_or(s);
        if let Some((k, hostport)) = rest.split_once('@') {
            if s.starts_with("dmsg://") {
                return Err(err("dmsg targets take no host"));
            }
            return Ok(Target::Tcp {
                pk: pk(k)?,
                addr: with_port(hostport, tcp_port).ok_or_else(|| err("missing host"))?,
            });
        }
        let rest = rest.trim_end_matches('/');
        match rest.split_once(':') {
            Some((k, port)) => Ok(Target::Dmsg {
                pk: pk(k)?,
                port: port.parse().map_err(|_| err("bad port"))?,
            }),
            None => Ok(Target::Dmsg {
                pk: pk(rest)?,
                port: dmsg_port,
            }),
        }
    }

    /// The host's public key, if the target names one.
    pub fn pk(&self) -> Option<PubKey> {
        match self {
            Target::Tcp { pk, .. } | Target::Dmsg { pk, .. } => Some(*pk),
            Target::Unix(_) => None,
        }
    }
}

impl FromStr for Target {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Target, TargetError> {
        Target::parse_with(s, DEFAULT_TCP_PORT, DEFAULT_DMSG_PORT)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp { pk, addr } => write!(f, "tcp://{pk}@{addr}"),
            Target::Dmsg { pk, port } => write!(f, "dmsg://{pk}:{port}"),
            Target::Unix(p) => write!(f, "unix://{}", p.display()),
        }
    }
}

/// `host:port` with `default` when no port is given (IPv6 literals in brackets keep theirs).
fn with_port(hostport: &str, default: u16) -> Option<String> {
    if hostport.is_empty() || hostport.starts_with(':') {
        return None;
    }
    let has_port = match hostport.rfind(']') {
        Some(close) => hostport[close..].contains(':'),
        None => hostport.contains(':'),
    };
    Some(if has_port {
        hostport.to_owned()
    } else {
        format!("{hostport}:{default}")
    })
}

/// Why connecting to a host failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TCP or unix connection could not be made.
    #[error("connecting to {target}")]
    Connect {
        /// The target.
        target: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The TCP dial did not finish in time.
    #[error("connecting to {0}: timed out")]
    ConnectTimeout(String),
    /// The noise XK handshake failed (wrong host key, not a pty host, timeout).
    #[error("noise handshake with {target}")]
    Handshake {
        /// The target.
        target: String,
        /// The noise error.
        #[source]
        source: NoiseError,
    },
    /// The dmsg network could not reach the host.
    #[error("dialing {target} over dmsg")]
    Dmsg {
        /// The target.
        target: String,
        /// The dmsg error.
        #[source]
        source: skywire_dmsg::DmsgError,
    },
    /// The host refused the `dmsgpty/pty` request; over TCP a closed stream without an answer
    /// means this key is not whitelisted.
    #[error("{target}: {hint}")]
    Refused {
        /// The target.
        target: String,
        /// What it probably means.
        hint: String,
        /// The request error.
        #[source]
        source: UriError,
    },
    /// A dmsg target was used without a dmsg client.
    #[error("{0} needs a dmsg client")]
    NoDmsgClient(String),
}

/// Opens a stream to `target` (identity `sk` on TCP; a dmsg target needs `dmsg`) and sends the
/// request for `uri_path` (e.g. [`uri::SFTP_URI`]); returns the raw stream after the host's
/// `0x00`, for subsystems that are not RPC (`dmsgpty/sftp`).
pub async fn open_stream(
    target: &Target,
    sk: &SecKey,
    dmsg: Option<&skywire_dmsg::Client>,
    uri_path: &str,
) -> Result<BoxedStream, ClientError> {
    let name = target.to_string();
    let (mut io, own_pk): (BoxedStream, Option<PubKey>) = match target {
        Target::Tcp { pk, addr } => (
            Box::new(dial_tcp(addr, *pk, sk, &name).await?),
            Some(sk.pub_key()),
        ),
        Target::Dmsg { pk, port } => {
            let Some(c) = dmsg else {
                return Err(ClientError::NoDmsgClient(name));
            };
            let stream = c
                .dial(skywire_dmsg::Addr::new(*pk, *port))
                .await
                .map_err(|source| ClientError::Dmsg {
                    target: name.clone(),
                    source,
                })?;
            (Box::new(stream), None)
        }
        Target::Unix(path) => {
            let s = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|source| ClientError::Connect {
                    target: name.clone(),
                    source,
                })?;
            (Box::new(s), None)
        }
    };
    send_request(&mut io, uri_path, name, own_pk).await?;
    Ok(io)
}

/// Sends the request for `uri_path` on an already open stream (e.g. one a visor dialled for us) and
/// returns it after the host's `0x00`; `target` names the host in errors.
pub async fn request_on<IO>(mut io: IO, uri_path: &str, target: String) -> Result<IO, ClientError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    send_request(&mut io, uri_path, target, None).await?;
    Ok(io)
}

/// TCP dial plus noise XK as initiator towards `host_pk`.
async fn dial_tcp(
    addr: &str,
    host_pk: PubKey,
    sk: &SecKey,
    target: &str,
) -> Result<NoiseStream<tokio::net::TcpStream>, ClientError> {
    let tcp =
        match tokio::time::timeout(TCP_DIAL_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(t)) => t,
            Ok(Err(source)) => {
                return Err(ClientError::Connect {
                    target: target.to_owned(),
                    source,
                });
            }
            Err(_) => return Err(ClientError::ConnectTimeout(target.to_owned())),
        };
    let _ = tcp.set_nodelay(true);
    NoiseStream::xk_initiator(tcp, sk, host_pk, HANDSHAKE_TIMEOUT)
        .await
        .map_err(|source| ClientError::Handshake {
            target: target.to_owned(),
            source,
        })
}

/// Sends the request for `uri_path` and maps a refusal to [`ClientError::Refused`] with a hint.
async fn send_request<IO>(
    io: &mut IO,
    uri_path: &str,
    target: String,
    own_pk: Option<PubKey>,
) -> Result<(), ClientError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    if let Err(source) = uri::request_uri(io, uri_path).await {
        let who = own_pk.map_or_else(|| "this client".to_owned(), |pk| format!("key {pk}"));
        let hint = match &source {
            // Over noise the closing host may surface as a reset/decrypt I/O error.
            UriError::ClosedWithoutResponse | UriError::Io(_) => format!(
                "the host closed the connection without answering: {who} is probably not in its whitelist"
            ),
            UriError::Rejected(_) => format!(
                "request rejected by remote dmsgpty-host ({who} not whitelisted, or the host does not serve {uri_path})"
            ),
            _ => "the pty request failed".to_owned(),
        };
        return Err(ClientError::Refused {
            target,
            hint,
            source,
        });
    }
    Ok(())
}

/// A `pty` RPC client on one host stream.
#[derive(Debug)]
pub struct PtyClient {
    rpc: RpcClient,
    target: String,
}

impl PtyClient {
    /// Connects to `target` with identity `sk` (used by TCP; dmsg streams carry the identity of
    /// `dmsg`'s client). A dmsg target needs `dmsg`.
    pub async fn connect(
        target: &Target,
        sk: &SecKey,
        dmsg: Option<&skywire_dmsg::Client>,
    ) -> Result<PtyClient, ClientError> {
        match target {
            Target::Tcp { pk, addr } => PtyClient::connect_tcp(addr, *pk, sk).await,
            Target::Dmsg { pk, port } => match dmsg {
                Some(c) => PtyClient::connect_dmsg(c, *pk, *port).await,
                None => Err(ClientError::NoDmsgClient(target.to_string())),
            },
            Target::Unix(path) => PtyClient::connect_unix(path).await,
        }
    }

    /// Direct TCP to `addr` (`host:port`), noise XK initiator authenticating the host as
    /// `host_pk`, then `dmsgpty/pty`.
    pub async fn connect_tcp(
        addr: &str,
        host_pk: PubKey,
        sk: &SecKey,
    ) -> Result<PtyClient, ClientError> {
        let target = format!("tcp://{host_pk}@{addr}");
        let ns = dial_tcp(addr, host_pk, sk, &target).await?;
        PtyClient::over(ns, target, Some(sk.pub_key())).await
    }

    /// A dmsg stream to `host_pk:port` through `client`, then `dmsgpty/pty`.
    pub async fn connect_dmsg(
        client: &skywire_dmsg::Client,
        host_pk: PubKey,
        port: u16,
    ) -> Result<PtyClient, ClientError> {
        let target = format!("dmsg://{host_pk}:{port}");
        let stream = client
            .dial(skywire_dmsg::Addr::new(host_pk, port))
            .await
            .map_err(|source| ClientError::Dmsg {
                target: target.clone(),
                source,
            })?;
        PtyClient::over(stream, target, None).await
    }

    /// The host's local control socket at `path`, then `dmsgpty/pty`.
    pub async fn connect_unix(path: &Path) -> Result<PtyClient, ClientError> {
        let target = format!("unix://{}", path.display());
        let s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                target: target.clone(),
                source,
            })?;
        PtyClient::over(s, target, None).await
    }

    /// Through the control socket at `path`, the host's `dmsgpty/proxy` endpoint to
    /// `remote:port` (the host dials with its own identity; pty.md 2.3).
    pub async fn connect_unix_proxy(
        path: &Path,
        remote: PubKey,
        port: u16,
    ) -> Result<PtyClient, ClientError> {
        let target = format!("unix://{} -> dmsg://{remote}:{port}", path.display());
        let s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                target: target.clone(),
                source,
            })?;
        PtyClient::over_uri(s, &uri::proxy_uri(&remote, port), target, None).await
    }

    /// Sends the `dmsgpty/pty` request on an established stream and starts the RPC client.
    /// `own_pk` only improves the error text of a refusal.
    pub async fn over<IO>(
        io: IO,
        target: String,
        own_pk: Option<PubKey>,
    ) -> Result<PtyClient, ClientError>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        PtyClient::over_uri(io, PTY_URI, target, own_pk).await
    }

    /// [`over`](Self::over) with another RPC endpoint (`dmsgpty/proxy?...`).
    pub async fn over_uri<IO>(
        mut io: IO,
        uri_path: &str,
        target: String,
        own_pk: Option<PubKey>,
    ) -> Result<PtyClient, ClientError>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        send_request(&mut io, uri_path, target.clone(), own_pk).await?;
        Ok(PtyClient {
            rpc: RpcClient::new(io),
            target,
        })
    }

    /// The target this client is connected to (`tcp://…`, `dmsg://…`, `unix://…`).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The underlying RPC client (for methods without a wrapper here).
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// Buffered `pty.Exec` of `name` with `args`; `env` entries (`KEY=VALUE`) replace the host's,
    /// `stdin` (≤ 1 MiB) is fed to the command, `timeout` is the host-side limit (0 → host
    /// default 30 s, capped at 5 min by the host). The call itself is bounded by the timeout
    /// plus [`EXEC_GRACE`].
    pub async fn exec(
        &self,
        name: &str,
        args: &[String],
        env: &[String],
        stdin: Vec<u8>,
        timeout: Duration,
    ) -> Result<CommandExecResult, RpcError> {
        let req = CommandExecReq {
            name: name.to_owned(),
            arg: args.to_vec(),
            env: env.to_vec(),
            stdin,
            timeout_ms: i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
        };
        self.exec_req(&req).await
    }

    /// `pty.Exec` with a prepared request, bounded by its effective timeout plus [`EXEC_GRACE`].
    pub async fn exec_req(&self, req: &CommandExecReq) -> Result<CommandExecResult, RpcError> {
        let bound = types::exec_timeout(req.timeout_ms) + EXEC_GRACE;
        match tokio::time::timeout(bound, self.rpc.call_method::<types::Exec>(req)).await {
            Ok(r) => r,
            Err(_) => Err(RpcError::ConnectionLost(format!(
                "no answer to pty.Exec within {}s",
                bound.as_secs()
            ))),
        }
    }

    /// `pty.Start`: runs `name` with `args` on a new pty of `size` (if any).
    pub async fn start(
        &self,
        name: &str,
        args: &[String],
        size: Option<WinSize>,
    ) -> Result<(), RpcError> {
        self.start_req(&CommandReq {
            name: name.to_owned(),
            arg: args.to_vec(),
            size,
            env: Vec::new(),
        })
        .await
    }

    /// `pty.Start` with a prepared request (for `Env`).
    pub async fn start_req(&self, req: &CommandReq) -> Result<(), RpcError> {
        self.rpc.call_method::<types::Start>(req).await
    }

    /// `pty.Read`: waits for output, returns at most `max` bytes. A remote error for which
    /// [`types::is_session_end`] holds is the normal end of the session.
    pub async fn read(&self, max: usize) -> Result<Vec<u8>, RpcError> {
        let n = i64::try_from(max.clamp(1, types::READ_MAX)).unwrap_or(4096);
        self.rpc.call_method::<types::Read>(&n).await
    }

    /// `pty.Write`: returns the bytes written.
    pub async fn write(&self, data: &[u8]) -> Result<usize, RpcError> {
        let n = self.rpc.call_method::<types::Write>(&data.to_vec()).await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// `pty.SetPtySize`.
    pub async fn set_size(&self, size: WinSize) -> Result<(), RpcError> {
        self.rpc.call_method::<types::SetPtySize>(&size).await
    }

    /// `pty.Stop`.
    pub async fn stop(&self) -> Result<(), RpcError> {
        self.rpc.call_method::<types::Stop>(&()).await
    }

    /// Closes the stream; pending calls fail.
    pub fn close(&self) {
        self.rpc.close();
    }
}

/// Whether a read error is the normal end of an interactive session.
pub fn is_read_end(e: &RpcError) -> bool {
    e.remote_text().is_some_and(types::is_session_end)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PK: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn targets() {
        let pk: PubKey = PK.parse().unwrap();
        let tcp = |addr: &str| Target::Tcp {
            pk,
            addr: addr.into(),
        };
        assert_eq!(
            format!("tcp://{PK}@1.2.3.4:99").parse::<Target>().unwrap(),
            tcp("1.2.3.4:99")
        );
        assert_eq!(
            format!("{PK}@host").parse::<Target>().unwrap(),
            tcp("host:2022")
        );
        assert_eq!(
            format!("{PK}@[::1]").parse::<Target>().unwrap(),
            tcp("[::1]:2022")
        );
        assert_eq!(
            format!("{PK}@[::1]:5").parse::<Target>().unwrap(),
            tcp("[::1]:5")
        );
        assert_eq!(PK.parse::<Target>().unwrap(), Target::Dmsg { pk, port: 22 });
        assert_eq!(
            format!("dmsg://{PK}:23").parse::<Target>().unwrap(),
            Target::Dmsg { pk, port: 23 }
        );
        assert_eq!(
            "unix:///tmp/x.sock".parse::<Target>().unwrap(),
            Target::Unix("/tmp/x.sock".into())
        );
        assert!("nope".parse::<Target>().is_err());
        assert!(format!("tcp://{PK}").parse::<Target>().is_err());
        assert!(format!("{PK}@").parse::<Target>().is_err());
        assert!(format!("dmsg://{PK}@h:1").parse::<Target>().is_err());
        let t: Target = format!("tcp://{PK}@h:1").parse().unwrap();
        assert_eq!(t.to_string(), format!("tcp://{PK}@h:1"));
    }
}
