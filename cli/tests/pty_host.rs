//! Runs the real `skywire` binary's pty hosts: `dmsg pty host confgen` (stdout and file, the
//! reference keys, no overwrite without `--unsafe`); `dmsg pty host --no-dmsg --tcplisten
//! 127.0.0.1:0` with a whitelisted key (exec round trip over noise-XK), a refused key, a key
//! added over the control socket, and SIGTERM (exit 0, socket file removed); `--listen-fd 0`
//! serving one inherited connection then exiting; `app pty tcp --addr`; `cli pty host` (visor
//! key, `--allow`, empty whitelist refused); and the dmsg mode on a `skywire testnet` (whitelisted
//! key served on `--dmsgport`, other keys rejected with `0x01`). Every listener binds port 0 and the host
//! prints its address; waits are bounded; children are killed in `Drop`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Proc, run, skywire};

use skywire_cipher::{PubKey, SecKey};
use skywire_noise::NoiseStream;
use skywire_pty::types::{self, CommandExecReq, CommandExecResult};
use skywire_pty::uri::{self, PTY_URI, UriError, WHITELIST_URI};
use skywire_pty::{HostConfig, RpcClient};

const BOUND: Duration = Duration::from_secs(20);

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    common::runtime()
        .block_on(async { tokio::time::timeout(BOUND, f).await.expect("bounded wait") })
}

fn sh_exec(script: &str) -> CommandExecReq {
    CommandExecReq {
        name: "sh".into(),
        arg: vec!["-c".into(), script.into()],
        ..Default::default()
    }
}

const SCRIPT: &str = "echo out; echo err >&2; exit 7";

/// Execs `sh -c` [`SCRIPT`] over `stream` (noise-XK initiator with `sk` towards `host`); `None`
/// when the host closes the connection without serving the request (not whitelisted).
async fn exec_over<T>(stream: T, sk: &SecKey, host: PubKey) -> Option<CommandExecResult>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut ns = NoiseStream::xk_initiator(stream, sk, host, Duration::from_secs(10))
        .await
        .unwrap();
    match uri::request_uri(&mut ns, PTY_URI).await {
        Ok(()) => {}
        Err(UriError::ClosedWithoutResponse | UriError::Io(_)) => return None,
        Err(e) => panic!("unexpected request outcome {e}"),
    }
    let client = RpcClient::new(ns);
    let res = client
        .call_method::<types::Exec>(&sh_exec(SCRIPT))
        .await
        .unwrap();
    client.close();
    Some(res)
}

/// Execs [`SCRIPT`] over a plain (already authenticated) stream such as a dmsg stream; `None`
/// when the host rejects the request.
async fn exec_plain<T>(mut stream: T) -> Option<CommandExecResult>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match uri::request_uri(&mut stream, PTY_URI).await {
        Ok(()) => {}
        Err(UriError::Rejected(1)) => return None,
        Err(e) => panic!("unexpected request outcome {e}"),
    }
    let client = RpcClient::new(stream);
    let res = client
        .call_method::<types::Exec>(&sh_exec(SCRIPT))
        .await
        .unwrap();
    client.close();
    Some(res)
}

/// [`exec_over`] a new TCP connection to `addr`.
fn tcp_exec(addr: SocketAddr, sk: &SecKey, host: PubKey) -> Option<CommandExecResult> {
    block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        exec_over(tcp, sk, host).await
    })
}

fn assert_script_result(res: Option<CommandExecResult>) {
    let res = res.expect("a whitelisted key must be served");
    assert_eq!(
        (res.stdout.as_slice(), res.stderr.as_slice(), res.exit_code),
        (&b"out\n"[..], &b"err\n"[..], 7)
    );
}

/// `confgen -o <dir>/name` and its secret key.
fn confgen(dir: &Path, name: &str) -> (PathBuf, SecKey) {
    let out = run(&["dmsg", "pty", "host", "confgen", "-o", name], dir);
    assert!(out.status.success(), "{out:?}");
    let path = dir.join(name);
    let cfg = HostConfig::load(&path).unwrap();
    (path, cfg.secret_key().unwrap().unwrap())
}

#[test]
fn confgen_prints_and_writes_the_reference_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["dmsg", "pty", "host", "confgen"], dir.path());
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.ends_with("}\n") && text.contains("\n    \"dmsgdisc\""),
        "{text}"
    );
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("    \""))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert_eq!(
        keys,
        [
            "dmsgdisc",
            "dmsgsessions",
            "dmsgport",
            "clinet",
            "cliaddr",
            "sk",
            "pk",
            "wl"
        ]
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["dmsgdisc"], "http://dmsgd.skywire.skycoin.com");
    assert_eq!(v["dmsgsessions"], 1);
    assert_eq!(v["dmsgport"], 22);
    assert_eq!(v["clinet"], "unix");
    assert!(v["cliaddr"].as_str().unwrap().ends_with("dmsgpty.sock"));
    assert!(v["wl"].is_null());
    let sk = SecKey::from_hex(v["sk"].as_str().unwrap()).unwrap();
    assert_eq!(v["pk"], sk.pub_key().to_hex());

    // To a file (0644), not overwritten without --unsafe; the positional path works too.
    let (path, sk1) = confgen(dir.path(), "host.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let out = run(&["dmsg", "pty", "host", "confgen", "host.json"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--unsafe"));
    let out = run(
        &["app", "pty", "dmsg", "confgen", "--unsafe", "host.json"],
        dir.path(),
    );
    assert!(out.status.success(), "{out:?}");
    let sk2 = HostConfig::load(&path)
        .unwrap()
        .secret_key()
        .unwrap()
        .unwrap();
    assert_ne!(sk1.to_hex(), sk2.to_hex());
}

#[test]
fn tcp_host_whitelist_control_socket_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (conf, host_sk) = confgen(dir.path(), "host.json");
    let sock = dir.path().join("pty.sock");
    let friend = SecKey::generate();
    let stranger = SecKey::generate();
    let friend_pk = friend.pub_key().to_hex();
    let mut host = Proc::start(
        &[
            "dmsg",
            "pty",
            "host",
            "-c",
            conf.to_str().unwrap(),
            "--no-dmsg",
            "--tcplisten",
            "127.0.0.1:0",
            "--cliaddr",
            sock.to_str().unwrap(),
            "--wl",
            &friend_pk,
        ],
        dir.path(),
    );
    let (pk, addr) = host.wait_ready();
    assert_eq!(pk, host_sk.pub_key());
    assert!(sock.exists());
    // --wl keys are written to the config's `wl`.
    assert_eq!(
        HostConfig::load(&conf).unwrap().wl.unwrap(),
        [friend.pub_key()]
    );

    assert_script_result(tcp_exec(addr, &friend, pk));
    assert!(tcp_exec(addr, &stranger, pk).is_none(), "stranger served");

    // Whitelist add over the control socket, then the stranger is served.
    block_on(async {
        let mut s = tokio::net::UnixStream::connect(&sock).await.unwrap();
        uri::request_uri(&mut s, WHITELIST_URI).await.unwrap();
        let wl = RpcClient::new(s);
        wl.call_method::<types::WhitelistAdd>(&vec![stranger.pub_key()])
            .await
            .unwrap();
        assert_eq!(
            wl.call_method::<types::WhitelistList>(&()).await.unwrap(),
            [friend.pub_key(), stranger.pub_key()]
        );
        wl.close();
    });
    assert_script_result(tcp_exec(addr, &stranger, pk));

    let status = host.terminate();
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "control socket left behind");
}

#[test]
fn listen_fd_serves_one_inherited_connection() {
    listen_fd_round_trip(false);
}

#[test]
fn listen_fd_3_from_systemd_listen_fds() {
    listen_fd_round_trip(true);
}

/// The accepted end of a loopback connection is handed to the host as its stdin (inetd style,
/// `--listen-fd 0`) or, through `sh`, as descriptor 3 with `LISTEN_FDS=1` (systemd style).
fn listen_fd_round_trip(systemd: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (conf, host_sk) = confgen(dir.path(), "host.json");
    let friend = SecKey::generate();
    let mut cfg = HostConfig::load(&conf).unwrap();
    cfg.wl = Some(vec![friend.pub_key()]);
    std::fs::write(&conf, cfg.to_confgen_json()).unwrap();

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let conf_arg = conf.to_str().unwrap();
    let fd = if systemd { "3" } else { "0" };
    let args = [
        "dmsg",
        "pty",
        "host",
        "-c",
        conf_arg,
        "--no-dmsg",
        "--listen-fd",
        fd,
    ];
    let stdin = Stdio::from(std::os::fd::OwnedFd::from(accepted));
    let mut host = if systemd {
        let mut sh = Command::new("sh");
        sh.env_remove("SKYWIRE_LOG")
            .env("LISTEN_FDS", "1")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDS_FIRST_FD")
            .args([
                "-c",
                r#"exec 3<&0 0</dev/null; exec "$0" "$@""#,
                env!("CARGO_BIN_EXE_skywire"),
            ]);
        Proc::spawn(sh, &args, dir.path(), stdin)
    } else {
        Proc::start_with(&args, dir.path(), stdin)
    };
    let res = block_on(async {
        client.set_nonblocking(true).unwrap();
        let tcp = tokio::net::TcpStream::from_std(client).unwrap();
        exec_over(tcp, &friend, host_sk.pub_key()).await
    });
    assert_script_result(res);
    // The session ended with the client: the process exits by itself.
    let status = host.wait_exit();
    assert!(status.success(), "{status:?}");
}

#[test]
fn app_pty_tcp_serves_direct_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let (conf, host_sk) = confgen(dir.path(), "host.json");
    let sock = dir.path().join("app.sock");
    let friend = SecKey::generate();
    let mut host = Proc::start(
        &[
            "app",
            "pty",
            "tcp",
            "--addr",
            "127.0.0.1:0",
            "-c",
            conf.to_str().unwrap(),
            "--cliaddr",
            sock.to_str().unwrap(),
            "--wl",
            &friend.pub_key().to_hex(),
        ],
        dir.path(),
    );
    let (pk, addr) = host.wait_ready();
    assert_eq!(pk, host_sk.pub_key());
    assert_script_result(tcp_exec(addr, &friend, pk));
    assert!(host.terminate().success());
    assert!(!sock.exists());
}

#[test]
fn cli_pty_host_uses_the_visor_key_and_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let visor_sk = SecKey::generate();
    let visor = dir.path().join("skywire-config.json");
    std::fs::write(
        &visor,
        format!(
            r#"{{"version":"v1","sk":"{}","pk":"{}","dmsg":{{}}}}"#,
            visor_sk.to_hex(),
            visor_sk.pub_key()
        ),
    )
    .unwrap();
    let visor_arg = visor.to_str().unwrap();

    // An empty whitelist is refused.
    let out = run(
        &[
            "cli",
            "pty",
            "host",
            "--listen",
            "127.0.0.1:0",
            "--sk-from-visor",
            visor_arg,
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("empty whitelist"),
        "{out:?}"
    );

    let friend = SecKey::generate();
    let stranger = SecKey::generate();
    let mut host = Proc::start(
        &[
            "cli",
            "pty",
            "host",
            "-l",
            "127.0.0.1:0",
            "--sk-from-visor",
            visor_arg,
            "--allow",
            &friend.pub_key().to_hex(),
        ],
        dir.path(),
    );
    let (pk, addr) = host.wait_ready();
    assert_eq!(pk, visor_sk.pub_key());
    assert_script_result(tcp_exec(addr, &friend, pk));
    assert!(tcp_exec(addr, &stranger, pk).is_none(), "stranger served");
    assert!(host.terminate().success());
}

#[test]
fn bad_invocations_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    // No config file.
    let out = run(&["dmsg", "pty", "host", "--no-dmsg"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("confgen"),
        "{out:?}"
    );
    // --sk-from-visor needs --no-dmsg.
    let out = run(
        &["dmsg", "pty", "host", "--sk-from-visor", "x.json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--no-dmsg"),
        "{out:?}"
    );
    // A config from stdin without a key.
    let mut child = skywire()
        .args(["dmsg", "pty", "host", "--confstdin", "--no-dmsg"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(br#"{"dmsgport": 22, "wl": null}"#).unwrap();
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(1));
    assert!(err.contains("no `sk`"), "{err}");
}

#[test]
fn dmsg_host_serves_on_its_dmsg_port() {
    let dir = tempfile::tempdir().unwrap();
    let mut net = common::Testnet::start(dir.path(), 1, 1);
    let disc = net.disc.clone();

    let (conf, host_sk) = confgen(dir.path(), "host.json");
    let sock = dir.path().join("dmsg.sock");
    let friend = SecKey::generate();
    let stranger = SecKey::generate();
    let mut host = Proc::start(
        &[
            "dmsg",
            "pty",
            "host",
            "-c",
            conf.to_str().unwrap(),
            "--dmsgdisc",
            &disc,
            "--dmsgport",
            "2222",
            "--cliaddr",
            sock.to_str().unwrap(),
            "--wl",
            &friend.pub_key().to_hex(),
        ],
        dir.path(),
    );
    let pk = host_sk.pub_key();
    host.wait_for(|l| {
        (l == format!("pty host listening on dmsg://{pk}:2222 (discovery {disc})")).then_some(())
    });
    host.wait_for(|l| (l == "pty host ready").then_some(()));
    host.wait_for(|l| {
        l.starts_with("pty host registered in dmsg discovery")
            .then_some(())
    });

    let dial_exec = |sk: &SecKey| {
        block_on(async {
            let cfg = skywire_dmsg::ClientConfig::new(
                sk.clone(),
                skywire_dmsg::disc::DiscClient::new(&disc).unwrap(),
            );
            let client = skywire_dmsg::Client::start(cfg);
            client.ready(BOUND).await.unwrap();
            let stream = client
                .dial(skywire_dmsg::Addr::new(pk, 2222))
                .await
                .unwrap();
            let res = exec_plain(stream).await;
            client.close().await;
            res
        })
    };
    assert_script_result(dial_exec(&friend));
    assert!(dial_exec(&stranger).is_none(), "stranger served over dmsg");

    assert!(host.terminate().success());
    assert!(!sock.exists());
    assert!(net.proc.terminate().success());
}
