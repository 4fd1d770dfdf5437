//! The `dmsgpty/proxy?pk=<pk>&port=<port>` endpoint of the control socket (pty.md 2.3, 3.2, 2.5).
//!
//! Set-up: the query is parsed, the host dials `<pk>:<port>` over its own dmsg client (the remote
//! sees the **host's** key, not the local user's) and performs its own `dmsgpty/pty` request on
//! that stream. Any set-up failure (bad query, dial failure, the remote's reject byte or silent
//! close) closes the local stream **without** a status byte, as the Go host does.
//!
//! Session: a *proxied* `pty` service, [`ProxyGateway`], forwards every call as a separate RPC on
//! the outbound stream: `Start` (forwarding `Name`, `Arg`, `Env` and **dropping `Size`**), `Stop`,
//! `Read`, `Write`, `SetPtySize` and `Exec`. Remote error texts travel back unchanged. When the
//! local stream ends the outbound stream is closed.

use std::sync::Arc;

use crate::client::PtyClient;
use crate::rpc::{Router, RpcError, ServiceError};
use crate::types::{self, CommandReq, WinSize};

/// The per-stream state of the proxied `pty` service: the host's client on the remote host.
#[derive(Debug)]
pub struct ProxyGateway {
    remote: PtyClient,
}

impl ProxyGateway {
    /// A gateway forwarding to `remote`.
    pub fn new(remote: PtyClient) -> Self {
        ProxyGateway { remote }
    }

    /// The client on the remote host.
    pub fn remote(&self) -> &PtyClient {
        &self.remote
    }
}

impl Drop for ProxyGateway {
    fn drop(&mut self) {
        // pty.md 2.5: a proxied session closes its outbound stream.
        self.remote.close();
    }
}

/// A forwarded call's error as the text the local client receives: the remote's error text
/// unchanged, otherwise the local failure (e.g. the outbound stream is gone).
fn forward_err(e: RpcError) -> ServiceError {
    match e {
        RpcError::Remote(t) => ServiceError::new(t),
        other => ServiceError::new(other.to_string()),
    }
}

/// The proxied `pty` method table (pty.md 3.2): `Start` (without `Size`), `Stop`, `Read`,
/// `Write` (ordered), `SetPtySize`, `Exec`.
pub fn proxy_router() -> Router<ProxyGateway> {
    Router::new()
        .method::<types::Start, _, _>(|g: Arc<ProxyGateway>, req: CommandReq| async move {
            let req = CommandReq { size: None, ..req };
            g.remote.start_req(&req).await.map_err(forward_err)
        })
        .method::<types::Stop, _, _>(|g: Arc<ProxyGateway>, (): ()| async move {
            g.remote.stop().await.map_err(forward_err)
        })
        .method::<types::Read, _, _>(|g: Arc<ProxyGateway>, n: i64| async move {
            g.remote
                .rpc()
                .call_method::<types::Read>(&n)
                .await
                .map_err(forward_err)
        })
        .method_ordered::<types::Write, _, _>(|g: Arc<ProxyGateway>, data: Vec<u8>| async move {
            g.remote
                .rpc()
                .call_method::<types::Write>(&data)
                .await
                .map_err(forward_err)
        })
        .method::<types::SetPtySize, _, _>(|g: Arc<ProxyGateway>, size: WinSize| async move {
            g.remote.set_size(size).await.map_err(forward_err)
        })
        .method::<types::Exec, _, _>(|g: Arc<ProxyGateway>, req| async move {
            g.remote.exec_req(&req).await.map_err(forward_err)
        })
}
