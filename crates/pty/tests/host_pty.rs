//! The pty host with real processes and real ptys, over `tokio::io::duplex` (control carrier and
//! the dmsg carrier's whitelist gate): buffered exec (output, exit code, timeout with the process
//! group killed), interactive pty sessions (read/write/end-of-session, window size, Stop and
//! stream end killing and reaping the child) and the service's error texts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod host_common;

use host_common::*;
use skywire_cipher::SecKey;
use skywire_pty::types::{self, CommandExecReq, CommandReq, WinSize, errors};
use skywire_pty::uri::{self, PTY_URI, UriError};
use skywire_pty::{Carrier, PtyHost, PtyHostConfig, RpcClient, WhitelistStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn exec_captures_output_and_exit_code() {
    let host = PtyHost::new(PtyHostConfig::new(SecKey::generate()));
    let (client, _task) = duplex_client(&host, PTY_URI, None, Carrier::Control).await;
    let res = client
        .call_method::<types::Exec>(&sh_exec("echo out; echo err >&2; exit 7"))
        .await
        .unwrap();
    assert_eq!(res.stdout, b"out\n");
    assert_eq!(res.stderr, b"err\n");
    assert_eq!(res.exit_code, 7);
    assert!(!res.timed_out);

    // Stdin and env overrides.
    let mut req = sh_exec("cat; printf \"$SKYWIRE_T\"");
    req.stdin = b"in:".to_vec();
    req.env = vec!["SKYWIRE_T=envval".into()];
    let res = client.call_method::<types::Exec>(&req).await.unwrap();
    assert_eq!(res.stdout, b"in:envval");
    assert_eq!(res.exit_code, 0);

    // Spawn failure: exit -1 with the note on stderr, not an RPC error.
    let req = CommandExecReq {
        name: "/nonexistent/skywire-test-binary".into(),
        ..Default::default()
    };
    let res = client.call_method::<types::Exec>(&req).await.unwrap();
    assert_eq!(res.exit_code, -1);
    assert!(
        String::from_utf8_lossy(&res.stderr)
            .starts_with("dmsgpty: exec /nonexistent/skywire-test-binary: ")
    );

    // Validation errors are RPC errors with the reference texts.
    let err = client
        .call_method::<types::Exec>(&CommandExecReq::default())
        .await
        .unwrap_err();
    assert_eq!(err.remote_text(), Some(errors::EXEC_EMPTY_NAME));
}

#[tokio::test]
async fn exec_timeout_kills_the_process_group() {
    let host = PtyHost::new(PtyHostConfig::new(SecKey::generate()));
    let (client, _task) = duplex_client(&host, PTY_URI, None, Carrier::Control).await;

    let req = CommandExecReq {
        name: "sleep".into(),
        arg: vec!["5".into()],
        timeout_ms: 200,
        ..Default::default()
    };
    let res = bounded(client.call_method::<types::Exec>(&req))
        .await
        .unwrap();
    assert!(res.timed_out);
    assert_eq!(res.exit_code, -1);

    // A shell with a background grandchild: both are killed, the shell is reaped.
    let mut req = sh_exec("sleep 30 & echo $$ $!; wait");
    req.timeout_ms = 300;
    let res = bounded(client.call_method::<types::Exec>(&req))
        .await
        .unwrap();
    assert!(res.timed_out);
    assert_eq!(res.exit_code, -1);
    let pids = pids_in(&res.stdout);
    assert_eq!(
        pids.len(),
        2,
        "stdout {:?}",
        String::from_utf8_lossy(&res.stdout)
    );
    for pid in pids {
        wait_not_running(pid).await;
    }
}

#[tokio::test]
async fn pty_session_read_write_until_end() {
    let host = PtyHost::new(PtyHostConfig::new(SecKey::generate()));
    let (client, _task) = duplex_client(&host, PTY_URI, None, Carrier::Control).await;
    start(&client, &["-c", "printf hi; read x; echo got:$x"], None).await;

    let first = read_until(&client, "hi").await;
    assert!(first.starts_with("hi"), "{first:?}");
    let n = client
        .call_method::<types::Write>(&b"abc\n".to_vec())
        .await
        .unwrap();
    assert_eq!(n, 4);
    read_until(&client, "got:abc").await;
    let end = read_to_end(&client).await;
    assert_eq!(end, errors::PTMX_EIO);
    // The end is sticky.
    let err = client.call_method::<types::Read>(&1024).await.unwrap_err();
    assert_eq!(err.remote_text(), Some(errors::PTMX_EIO));
    client.call_method::<types::Stop>(&()).await.unwrap();
}

#[tokio::test]
async fn pty_window_size_from_start_and_set_pty_size() {
    let host = PtyHost::new(PtyHostConfig::new(SecKey::generate()));
    let (client, _task) = duplex_client(&host, PTY_URI, None, Carrier::Control).await;
    let size = WinSize {
        rows: 24,
        cols: 80,
        ..Default::default()
    };
    start(&client, &["-c", "stty size; read x; stty size"], Some(size)).await;
    read_until(&client, "24 80").await;
    client
        .call_method::<types::SetPtySize>(&WinSize {
            x: 640,
            y: 480,
            rows: 33,
            cols: 101,
        })
        .await
        .unwrap();
    client
        .call_method::<types::Write>(&b"\n".to_vec())
        .await
        .unwrap();
    read_until(&client, "33 101").await;
    client.call_method::<types::Ping>(&()).await.unwrap();
}

#[tokio::test]
async fn pty_error_texts() {
    let host = PtyHost::new(PtyHostConfig::new(SecKey::generate()));
    let (client, _task) = duplex_client(&host, PTY_URI, None, Carrier::Control).await;
    for err in [
        client.call_method::<types::Read>(&10).await.unwrap_err(),
        client
            .call_method::<types::Write>(&b"x".to_vec())
            .await
            .unwrap_err(),
        client
            .call_method::<types::SetPtySize>(&WinSize::default())
            .await
            .unwrap_err(),
        client.call_method::<types::Stop>(&()).await.unwrap_err(),
    ] {
        assert_eq!(err.remote_text(), Some(errors::NO_ACTIVE_SESSION));
    }
    client.call_method::<types::Ping>(&()).await.unwrap();

    let err = client
        .call_method::<types::Start>(&CommandReq {
            name: "skywire-no-such-command".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.remote_text(),
        Some("exec: \"skywire-no-such-command\": executable file not found in $PATH")
    );

    start(&client, &["-c", "sleep 30"], None).await;
    let err = client
        .call_method::<types::Start>(&CommandReq {
            name: "/bin/sh".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.remote_text(), Some(errors::ALREADY_RUNNING));
    let err = client.call_method::<types::Read>(&0).await.unwrap_err();
    assert_eq!(err.remote_text(), Some("invalid read size: 0"));
    let err = client
        .call_method::<types::StartSession>(&CommandReq::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.remote_text(),
        Some("rpc: can't find method pty.StartSession")
    );
    client.call_method::<types::Stop>(&()).await.unwrap();
}

#[tokio::test]
async fn stop_interrupts_read_and_reaps_the_child() {
    let host = PtyHost::new(PtyHostConfig::new(SecKey::generate()));
    let (client, _task) = duplex_client(&host, PTY_URI, None, Carrier::Control).await;
    start(&client, &["-c", "echo pid:$$; exec sleep 30"], None).await;
    let out = read_until(&client, "\n").await;
    let pid = pid_after(&out, "pid:");

    let reader = client.clone();
    let pending = tokio::spawn(async move {
        // The output is consumed; this read blocks until Stop.
        reader.call_method::<types::Read>(&1024).await
    });
    wait_until(|| client.pending() >= 1).await;
    client.call_method::<types::Stop>(&()).await.unwrap();
    // Stop waits for the reap: the pid is gone now.
    assert!(!pid_exists(pid), "pid {pid} still exists after Stop");
    let err = bounded(pending).await.unwrap().unwrap_err();
    assert!(
        err.remote_text() == Some(skywire_pty::gateway::READ_CLOSED_TEXT)
            || err.remote_text() == Some(errors::PTMX_EIO),
        "{err}"
    );
    // A new session can be started after Stop.
    start(&client, &["-c", "printf again"], None).await;
    read_until(&client, "again").await;
}

#[tokio::test]
async fn stream_end_kills_and_reaps_the_child() {
    let host = PtyHost::new(PtyHostConfig::new(SecKey::generate()));
    let (client, task) = duplex_client(&host, PTY_URI, None, Carrier::Control).await;
    start(&client, &["-c", "echo pid:$$; sleep 30 & wait"], None).await;
    let pid = pid_after(&read_until(&client, "\n").await, "pid:");
    assert!(pid_exists(pid));
    client.close();
    drop(client);
    bounded(task).await.unwrap().unwrap();
    assert!(
        !pid_exists(pid),
        "pid {pid} still exists after the stream ended"
    );
}

#[tokio::test]
async fn dmsg_carrier_gate() {
    let stranger = SecKey::generate().pub_key();
    let friend = SecKey::generate().pub_key();
    let sk = SecKey::generate();
    let own = sk.pub_key();
    let host =
        PtyHost::new(PtyHostConfig::new(sk).with_whitelist(WhitelistStore::memory([friend])));

    // Not whitelisted: 0x01 before the request is read, then EOF.
    let (mut c, s) = tokio::io::duplex(4096);
    let h = host.clone();
    let task = tokio::spawn(async move { h.serve_stream(s, Some(stranger), Carrier::Dmsg).await });
    let mut got = Vec::new();
    bounded(c.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, [0x01]);
    assert!(bounded(task).await.unwrap().is_err());

    // Whitelisted and the host's own key: served (pty only; whitelist is control-socket only).
    for pk in [friend, own] {
        let (client, _t) = duplex_client(&host, PTY_URI, Some(pk), Carrier::Dmsg).await;
        client.call_method::<types::Ping>(&()).await.unwrap();
        let (mut c, s) = tokio::io::duplex(4096);
        let h = host.clone();
        tokio::spawn(async move { h.serve_stream(s, Some(pk), Carrier::Dmsg).await });
        let err = bounded(uri::request_uri(&mut c, uri::WHITELIST_URI))
            .await
            .unwrap_err();
        assert!(matches!(err, UriError::Rejected(1)), "{err}");
    }

    // Unknown endpoint on the control carrier: 0x01.
    let (mut c, s) = tokio::io::duplex(4096);
    let h = host.clone();
    tokio::spawn(async move { h.serve_stream(s, None, Carrier::Control).await });
    c.write_all(&uri::encode_request("dmsgpty/nope").unwrap())
        .await
        .unwrap();
    let mut got = Vec::new();
    bounded(c.read_to_end(&mut got)).await.unwrap();
    assert_eq!(got, [0x01]);
}

async fn start(client: &RpcClient, args: &[&str], size: Option<WinSize>) {
    client
        .call_method::<types::Start>(&CommandReq {
            name: "/bin/sh".into(),
            arg: args.iter().map(|s| (*s).to_owned()).collect(),
            size,
            env: vec!["TERM=dumb".into()],
        })
        .await
        .unwrap();
}
