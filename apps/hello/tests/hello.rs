//! The `hello` app under two real visors' app servers on an in-process dmsg network (discovery
//! with a memory store, one relay server, two dmsg clients on 127.0.0.1): launched through
//! `Proc`, talking to each other over dmsg, status, logs, stop, the app protocol's refusals, and
//! the left-over pid handling.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use skywire_app::proto::{Hello, PROTOCOL_VERSION, ProcKey, Reply};
use skywire_app::{AppError, Client, Net, ProcConfig};
use skywire_cipher::SecKey;
use skywire_disc::{DiscConfig, DiscHandle, StoreConfig};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{ClientConfig, ServerConfig, ServerHandle};
use skywire_visor::appserver::AppServer;
use skywire_visor::proc::{Proc, ProcSpec, kill_leftovers, record_pid};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Upper bound of every wait (never reached when things work).
const BOUND: Duration = Duration::from_secs(30);

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("bounded wait expired")
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let ok = tokio::time::timeout(BOUND, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "timed out waiting for {what}");
}

struct Net2 {
    _disc: DiscHandle,
    _server: ServerHandle,
    visors: Vec<(skywire_dmsg::Client, Arc<AppServer>)>,
}

async fn network() -> Net2 {
    let disc = skywire_disc::serve(DiscConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: StoreConfig::Memory,
        test_mode: true,
        ..DiscConfig::default()
    })
    .await
    .unwrap();
    let mut scfg = ServerConfig::new(SecKey::generate());
    scfg.local_addr = "127.0.0.1:0".parse().unwrap();
    scfg.discovery = Some(DiscClient::new(&disc.url()).unwrap());
    let server = ServerHandle::start(scfg).await.unwrap();
    let dc = DiscClient::new(&disc.url()).unwrap();
    bounded(async {
        while dc.available_servers().await.map(|l| l.len()).unwrap_or(0) < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let mut visors = Vec::new();
    for _ in 0..2 {
        let mut cfg = ClientConfig::new(SecKey::generate(), DiscClient::new(&disc.url()).unwrap());
        cfg.first_stream_delay = Duration::ZERO;
        let dmsg = skywire_dmsg::Client::start(cfg);
        dmsg.ready(BOUND).await.unwrap();
        let apps = AppServer::bind("127.0.0.1:0", dmsg.pk(), dmsg.clone())
            .await
            .unwrap();
        visors.push((dmsg, apps));
    }
    Net2 {
        _disc: disc,
        _server: server,
        visors,
    }
}

fn spec(dir: &Path, name: &str, args: &[&str], port: u16) -> ProcSpec {
    ProcSpec {
        name: name.into(),
        binary: PathBuf::from(env!("CARGO_BIN_EXE_hello")),
        args: args.iter().map(|s| s.to_string()).collect(),
        work_dir: dir.join("local").join(name),
        port,
        log_path: dir.join("local").join(format!("{name}.log")),
        env: vec![("HELLO_TEST".into(), "1".into())],
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Every non-empty line starts with an RFC 3339 UTC timestamp.
fn assert_timestamped(log: &str) {
    for line in log.lines() {
        let (ts, _) = line.split_once(' ').expect("timestamp prefix");
        assert_eq!(ts.len(), 24, "{line}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_over_dmsg_between_two_visors() {
    let net = network().await;
    let (dmsg_a, apps_a) = &net.visors[0];
    let (_dmsg_b, apps_b) = &net.visors[1];
    let dir = tempfile::tempdir().unwrap();
    let pk_a = dmsg_a.pk();

    // Visor A runs the hello server on its routing port 45.
    let mut server = Proc::spawn(apps_a, spec(dir.path(), "hello", &[], 45)).unwrap();
    assert!(server.pid().is_some());
    wait_until("the server's Running status", || {
        server.detailed_status() == "Running"
    })
    .await;
    assert_eq!(server.app_port(), Some(45));
    assert_eq!(server.app_error(), None);
    assert!(dir.path().join("local/hello").is_dir());

    // Visor B runs `hello --dial`; it exits 0 after printing the answer (into its log).
    let client_spec = spec(
        dir.path(),
        "hello-client",
        &["--dial", &pk_a.to_hex(), "--port", "45", "world"],
        46,
    );
    let client_log = client_spec.log_path.clone();
    let mut client = Proc::spawn(apps_b, client_spec).unwrap();
    let status = bounded(client.wait()).await.unwrap();
    let log = read(&client_log);
    assert!(
        status.success(),
        "hello --dial failed: {status}; log:\n{log}"
    );
    assert!(
        log.contains(&format!("hello world from {pk_a}")),
        "answer missing from the client log:\n{log}"
    );
    assert_timestamped(&log);

    // An app registered by hand on B (the SDK in this process): a conn is counted while open.
    let reg = apps_b.register("manual");
    let sdk = Client::connect(
        ProcConfig::from_lookup(|k| match k {
            "APP_KEY" => Some(reg.key().to_hex()),
            "APP_SERVER_ADDR" => Some(apps_b.local_addr().to_string()),
            "VISOR_PK" => Some(apps_b.visor_pk().to_hex()),
            _ => None,
        })
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(sdk.visor_pk(), apps_b.visor_pk());
    assert_eq!(sdk.app_name(), "manual");
    let conn = bounded(sdk.dial(Net::Dmsg, pk_a, 45)).await.unwrap();
    assert_eq!(conn.remote().pk, pk_a);
    assert_eq!(conn.remote().port, 45);
    wait_until("conn counted on both sides", || {
        reg.connections() == 1 && server.connections() == 1
    })
    .await;
    let (r, mut w) = tokio::io::split(conn);
    let mut r = BufReader::new(r);
    for text in ["one", "two"] {
        w.write_all(format!("{text}\n").as_bytes()).await.unwrap();
        let mut line = String::new();
        bounded(r.read_line(&mut line)).await.unwrap();
        assert_eq!(line, format!("hello {text} from {pk_a}\n"));
    }
    // Half-close: the server sees EOF, finishes and closes its side.
    w.shutdown().await.unwrap();
    let mut rest = String::new();
    bounded(r.read_to_string(&mut rest)).await.unwrap();
    assert_eq!(rest, "");
    wait_until("conns released", || {
        reg.connections() == 0 && server.connections() == 0
    })
    .await;

    // The port is taken while the server runs: a second listener is refused clearly.
    let err = sdk.listen(Net::Dmsg, 45).await;
    assert!(err.is_ok(), "B's own port 45 is free: {err:?}");
    let reg_a = apps_a.register("second");
    let sdk_a = Client::connect(ProcConfig {
        app_server_addr: apps_a.local_addr().to_string(),
        proc_key: reg_a.key(),
        ..sdk.config().clone()
    })
    .await
    .unwrap();
    match sdk_a.listen(Net::Dmsg, 45).await {
        Err(AppError::Refused(m)) => assert!(m.contains("already bound"), "{m}"),
        other => panic!("second listen on 45: {other:?}"),
    }
    match sdk_a.dial(Net::Skynet, pk_a, 45).await {
        Err(AppError::Refused(m)) => assert!(m.contains("skynet"), "{m}"),
        other => panic!("skynet dial: {other:?}"),
    }

    // stop(): SIGINT, the app exits 0, its listener is released: port 45 can be bound again.
    let pid = server.pid().unwrap();
    let status = bounded(server.stop(Duration::from_secs(10))).await.unwrap();
    assert!(status.success(), "hello after SIGINT: {status}");
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    let l = bounded(sdk_a.listen(Net::Dmsg, 45)).await.unwrap();
    assert_eq!(l.addr().port, 45);
    let server_log = read(&dir.path().join("local/hello.log"));
    assert!(
        server_log.contains("hello: listening on dmsg") && server_log.contains("interrupted"),
        "server log:\n{server_log}"
    );
    assert_timestamped(&server_log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_kill() {
    let net = network().await;
    let (_, apps) = &net.visors[0];

    // Unknown proc key: an error frame, then the connection is closed.
    let mut s = tokio::net::TcpStream::connect(apps.local_addr())
        .await
        .unwrap();
    let hello = Hello::Control {
        version: PROTOCOL_VERSION,
        proc_key: ProcKey([7; 16]),
    };
    skywire_app::frame_io::write_msg(&mut s, &hello)
        .await
        .unwrap();
    let reply: Reply = bounded(skywire_app::frame_io::read_msg(&mut s))
        .await
        .unwrap();
    assert_eq!(
        reply,
        Reply::Error {
            message: "unknown proc key".into()
        }
    );
    let mut rest = Vec::new();
    bounded(s.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());

    // Garbage instead of a hello: refused with the codec's message.
    let mut s = tokio::net::TcpStream::connect(apps.local_addr())
        .await
        .unwrap();
    s.write_all(&[0, 3, b'{', b'x', b'}']).await.unwrap();
    let reply: Reply = bounded(skywire_app::frame_io::read_msg(&mut s))
        .await
        .unwrap();
    assert!(
        matches!(&reply, Reply::Error { message } if message.contains("malformed")),
        "{reply:?}"
    );

    // The SDK reports the refusal.
    let cfg = ProcConfig {
        app_name: "x".into(),
        app_server_addr: apps.local_addr().to_string(),
        proc_key: ProcKey([9; 16]),
        proc_args: vec![],
        proc_envs: None,
        proc_work_dir: String::new(),
        visor_pk: apps.visor_pk(),
        routing_port: 0,
        binary_loc: String::new(),
        log_db_loc: String::new(),
        log_store_path: String::new(),
    };
    match Client::connect(cfg).await {
        Err(AppError::Refused(m)) => assert_eq!(m, "unknown proc key"),
        other => panic!("unknown key accepted: {other:?}"),
    }

    // A registration that is dropped stops working.
    let reg = apps.register("gone");
    let key = reg.key();
    drop(reg);
    let mut s = tokio::net::TcpStream::connect(apps.local_addr())
        .await
        .unwrap();
    skywire_app::frame_io::write_msg(
        &mut s,
        &Hello::Control {
            version: PROTOCOL_VERSION,
            proc_key: key,
        },
    )
    .await
    .unwrap();
    let reply: Reply = bounded(skywire_app::frame_io::read_msg(&mut s))
        .await
        .unwrap();
    assert!(matches!(reply, Reply::Error { .. }), "{reply:?}");

    // A bad binary is a spawn error, not a panic.
    let dir = tempfile::tempdir().unwrap();
    let mut bad = spec(dir.path(), "nope", &[], 0);
    bad.binary = dir.path().join("does-not-exist");
    assert!(Proc::spawn(apps, bad).is_err());

    // Left-over processes listed in apps-pid.txt are killed and the file emptied.
    let pid_file = dir.path().join("apps-pid.txt");
    let mut leftover = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    record_pid(&pid_file, "old-app", leftover.id()).unwrap();
    std::fs::write(&pid_file, format!("{}garbage line\n", read(&pid_file))).unwrap();
    assert_eq!(kill_leftovers(&pid_file).unwrap(), 1);
    let status = leftover.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
    assert_eq!(read(&pid_file), "");
    assert_eq!(kill_leftovers(&dir.path().join("missing.txt")).unwrap(), 0);
}
