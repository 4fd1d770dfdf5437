//! In-process tests of the tokio drivers over `tokio::io::duplex`: many concurrent calls answered
//! out of order and matched by seq, Go's error replies for unknown methods and bad arguments,
//! ordered methods, connection loss and local close.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use skywire_pty::rpc::{Router, RpcClient, RpcClientCodec, RpcError, RpcServer, ServiceError};
use skywire_pty::types::{self, CommandExecReq, CommandExecResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Debug)]
struct State {
    /// Completion order of `test.Reverse` calls.
    order: Mutex<Vec<i64>>,
    /// How many `test.Reverse` calls have completed.
    turn: watch::Sender<i64>,
    /// Arrivals of `test.Hang`.
    hanging: watch::Sender<usize>,
    /// Order in which `test.Ordered` ran.
    ordered: Mutex<Vec<i64>>,
}

const N: i64 = 100;

fn router() -> Router<State> {
    Router::new()
        // Call k waits until the calls k+1..N have completed: replies go out in reverse order.
        .route("test.Reverse", |st: Arc<State>, k: i64| async move {
            let mut rx = st.turn.subscribe();
            rx.wait_for(|t| *t == N - 1 - k)
                .await
                .map_err(|_| ServiceError::new("turn closed"))?;
            st.order.lock().unwrap().push(k);
            st.turn.send_modify(|t| *t += 1);
            Ok(k * 2)
        })
        .route("test.Hang", |st: Arc<State>, (): ()| async move {
            st.hanging.send_modify(|n| *n += 1);
            std::future::pending::<()>().await;
            Ok(())
        })
        .route_ordered("test.Ordered", |st: Arc<State>, k: i64| async move {
            // Later calls yield less: without ordering they would overtake earlier ones.
            for _ in 0..(50 - k) {
                tokio::task::yield_now().await;
            }
            st.ordered.lock().unwrap().push(k);
            Ok(())
        })
        .method::<types::Exec, _, _>(|_, req: CommandExecReq| async move {
            types::validate_exec(&req)?;
            Ok(CommandExecResult {
                stdout: req.stdin,
                exit_code: 3,
                ..CommandExecResult::default()
            })
        })
        .method::<types::Read, _, _>(|_, n| async move {
            let n = types::read_size(n)?;
            Ok(vec![b'x'; n.min(3)])
        })
}

fn state() -> Arc<State> {
    Arc::new(State {
        order: Mutex::new(Vec::new()),
        turn: watch::channel(0).0,
        hanging: watch::channel(0).0,
        ordered: Mutex::new(Vec::new()),
    })
}

/// A client connected to a served router; returns the server task.
fn pair(st: Arc<State>) -> (RpcClient, tokio::task::JoinHandle<Result<(), RpcError>>) {
    let (c, s) = tokio::io::duplex(1 << 16);
    let server = RpcServer::new(Arc::new(router()), st);
    let task = tokio::spawn(server.serve(s));
    (RpcClient::new(c), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_calls_out_of_order() {
    let st = state();
    let (client, server) = pair(st.clone());
    let mut calls = JoinSet::new();
    for k in 0..N {
        let c = client.clone();
        calls.spawn(async move { (k, c.call::<i64, i64>("test.Reverse", &k).await) });
    }
    let mut got = 0;
    while let Some(r) = calls.join_next().await {
        let (k, res) = r.unwrap();
        assert_eq!(res.unwrap(), 2 * k, "call {k}");
        got += 1;
    }
    assert_eq!(got, N);
    let order = st.order.lock().unwrap().clone();
    assert_eq!(order, (0..N).rev().collect::<Vec<_>>());
    assert_eq!(client.pending(), 0);
    drop(client);
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn go_error_replies_keep_the_connection_usable() {
    let (client, _server) = pair(state());
    let e = client.call::<_, ()>("test.Nope", &()).await.unwrap_err();
    assert_eq!(e.remote_text(), Some("rpc: can't find method test.Nope"));
    assert!(e.is_unknown_method());
    let e = client.call::<_, ()>("nope.Nope", &1i64).await.unwrap_err();
    assert_eq!(e.remote_text(), Some("rpc: can't find service nope.Nope"));
    let e = client.call::<_, ()>("nodot", &()).await.unwrap_err();
    assert_eq!(
        e.remote_text(),
        Some("rpc: service/method request ill-formed: nodot")
    );
    // An argument of the wrong kind: Go answers with the gob error and keeps going.
    let e = client
        .call::<_, i64>("test.Reverse", &"text".to_owned())
        .await
        .unwrap_err();
    assert!(e.remote_text().unwrap().starts_with("gob: "), "{e}");
    // Typed methods, application errors.
    let r = client
        .call_method::<types::Exec>(&CommandExecReq {
            name: "cat".into(),
            stdin: b"in".to_vec(),
            ..CommandExecReq::default()
        })
        .await
        .unwrap();
    assert_eq!((r.stdout.as_slice(), r.exit_code), (&b"in"[..], 3));
    let e = client
        .call_method::<types::Exec>(&CommandExecReq::default())
        .await
        .unwrap_err();
    assert_eq!(e.remote_text(), Some(types::errors::EXEC_EMPTY_NAME));
    let e = client.call_method::<types::Read>(&0).await.unwrap_err();
    assert_eq!(e.remote_text(), Some("invalid read size: 0"));
    assert_eq!(
        client.call_method::<types::Read>(&10).await.unwrap(),
        b"xxx"
    );
    assert!(client.closed().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_drop_fails_pending_calls() {
    let st = state();
    let (client, server) = pair(st.clone());
    let mut calls = JoinSet::new();
    for _ in 0..10 {
        let c = client.clone();
        calls.spawn(async move { c.call::<_, ()>("test.Hang", &()).await });
    }
    st.hanging.subscribe().wait_for(|n| *n == 10).await.unwrap();
    assert_eq!(client.pending(), 10);
    server.abort();
    while let Some(r) = calls.join_next().await {
        let e = r.unwrap().unwrap_err();
        assert!(
            matches!(e, RpcError::ConnectionLost(_)) && e.is_connection_error(),
            "{e:?}"
        );
    }
    assert_eq!(client.pending(), 0);
    let e = client
        .call::<_, i64>("test.Reverse", &0i64)
        .await
        .unwrap_err();
    assert!(e.is_connection_error(), "{e:?}");
}

#[tokio::test]
async fn local_close_fails_pending_calls() {
    let st = state();
    let (client, _server) = pair(st.clone());
    let c = client.clone();
    let call = tokio::spawn(async move { c.call::<_, ()>("test.Hang", &()).await });
    st.hanging.subscribe().wait_for(|n| *n == 1).await.unwrap();
    client.close();
    assert!(matches!(call.await.unwrap(), Err(RpcError::Shutdown)));
    assert!(matches!(
        client.call::<_, ()>("test.Hang", &()).await,
        Err(RpcError::Shutdown)
    ));
}

#[tokio::test]
async fn abandoned_call_reply_is_discarded() {
    let st = state();
    let (client, _server) = pair(st.clone());
    let c = client.clone();
    let hang = tokio::spawn(async move { c.call::<_, ()>("test.Hang", &()).await });
    st.hanging.subscribe().wait_for(|n| *n == 1).await.unwrap();
    hang.abort();
    let _ = hang.await;
    assert_eq!(client.pending(), 0);
    assert_eq!(client.call_method::<types::Read>(&2).await.unwrap(), b"xx");
}

/// Pipelined calls of an ordered method run in arrival order; driven by the sans-IO client codec
/// so the wire order is exactly the encoding order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_method_runs_in_arrival_order() {
    let st = state();
    let (mut c, s) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(RpcServer::new(Arc::new(router()), st.clone()).serve(s));
    let mut codec = RpcClientCodec::new();
    let mut out = Vec::new();
    for k in 0..50i64 {
        codec
            .encode_call::<i64, ()>("test.Ordered", &k, &mut out)
            .unwrap();
    }
    c.write_all(&out).await.unwrap();
    let mut done = 0;
    let mut buf = vec![0u8; 4096];
    while done < 50 {
        let n = c.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed early");
        codec.feed(&buf[..n]);
        while let Some(r) = codec.poll_completed().unwrap() {
            r.into_reply::<()>().unwrap();
            done += 1;
        }
    }
    assert_eq!(*st.ordered.lock().unwrap(), (0..50).collect::<Vec<_>>());
    drop(c);
    server.await.unwrap().unwrap();
}

/// The server stops on garbage instead of a net/rpc stream, with a protocol error.
#[tokio::test]
async fn server_rejects_garbage() {
    let (mut c, s) = tokio::io::duplex(1024);
    let server = tokio::spawn(RpcServer::new(Arc::new(router()), state()).serve(s));
    c.write_all(&[0x00, 0x00]).await.unwrap();
    let r = server.await.unwrap();
    assert!(matches!(r, Err(RpcError::Protocol { .. })), "{r:?}");
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}
