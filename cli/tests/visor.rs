//! `skywire visor` + `skywire cli visor|proxy|pty` through the control API: two visors on a local
//! testnet (discovery + two relays as real processes), config generation, info, app start/stop/log,
//! a SOCKS5 proxy through the other visor's skysocks with curl, `cli pty exec <pk>` and
//! `cli pty fs mount <pk>` through the visor, bad input, and shutdown through the API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, STOP, Testnet, http_server, run_bounded, text};
use serde_json::Value;

struct Visor {
    proc: Proc,
    pk: String,
    rpc: String,
    conf: PathBuf,
}

fn gen_config(dir: &Path, name: &str, disc: &str, extra: &[&str]) -> (PathBuf, String) {
    let conf = dir.join(format!("{name}.json"));
    let rpc = format!("unix:{}", dir.join(format!("{name}.rpc.sock")).display());
    let mut args = vec![
        "cli",
        "config",
        "gen",
        "-o",
        conf.to_str().unwrap(),
        "--dmsg-disc",
        disc,
        "--cli-addr",
        &rpc,
        "--stcp-local-address",
        "",
        "--app-server-addr",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let out = run_bounded(&args, dir, None, STOP);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Per-visor pty control socket and local path (the defaults are shared by all visors).
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&conf).unwrap()).unwrap();
    v["dmsgpty"]["cli_address"] =
        Value::String(dir.join(format!("{name}.pty.sock")).display().to_string());
    v["local_path"] = Value::String(dir.join(format!("{name}-local")).display().to_string());
    std::fs::write(&conf, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    (conf, rpc)
}

impl Visor {
    fn start(dir: &Path, conf: &Path, rpc: &str) -> Visor {
        let mut proc = Proc::start(&["visor", "-c", conf.to_str().unwrap()], dir);
        let pk = proc.wait_for(|l| {
            l.strip_prefix("visor ")
                .and_then(|r| r.strip_suffix(" running"))
                .map(String::from)
        });
        Visor {
            proc,
            pk,
            rpc: rpc.to_string(),
            conf: conf.to_path_buf(),
        }
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        // `--rpc` right after the subcommand, before any `--` of a remote command.
        let mut full = vec!["cli"];
        let split = args.len().min(2);
        full.extend_from_slice(&args[..split]);
        full.extend(["--rpc", &self.rpc]);
        full.extend_from_slice(&args[split..]);
        run_bounded(&full, Path::new("/"), None, Duration::from_secs(90))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "cli {args:?}: {}\n{}",
            text(&out.stderr),
            text(&out.stdout)
        );
        text(&out.stdout)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Polls `cli visor info` until both relays have a session.
    fn wait_sessions(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let i = self.json(&["visor", "info"]);
            if i["dmsg_servers"].as_array().is_some_and(|a| !a.is_empty()) {
                return;
            }
            assert!(Instant::now() < deadline, "no dmsg session: {i}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn app<'a>(apps: &'a Value, name: &str) -> &'a Value {
    apps.as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no app {name} in {apps}"))
}

/// The example app binary, built (or found up to date) with cargo: another package's binary is not
/// rebuilt for this package's tests.
fn hello_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_skywire")).with_file_name("hello");
    {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "skywire-app-hello"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(st.success(), "building the hello example app");
    }
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn visor_control_proxy_pty_and_fs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let net = Testnet::start(dir, 2, 0);

    // B first: A whitelists B's key for pty.
    let (conf_b, rpc_b) = gen_config(dir, "b", &net.disc, &["--noproxyserver"]);
    let b_pk =
        serde_json::from_str::<Value>(&std::fs::read_to_string(&conf_b).unwrap()).unwrap()["pk"]
            .as_str()
            .unwrap()
            .to_string();
    let (conf_a, rpc_a) = gen_config(dir, "a", &net.disc, &["--dmsgpty", &b_pk]);
    // gen refuses to overwrite without -f/-r, and --if-missing keeps the file.
    let again = run_bounded(
        &["cli", "config", "gen", "-o", conf_a.to_str().unwrap()],
        dir,
        None,
        STOP,
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );
    let before = std::fs::read(&conf_a).unwrap();
    let keep = run_bounded(
        &[
            "cli",
            "config",
            "gen",
            "--if-missing",
            "-o",
            conf_a.to_str().unwrap(),
        ],
        dir,
        None,
        STOP,
    );
    assert!(keep.status.success());
    assert_eq!(std::fs::read(&conf_a).unwrap(), before);

    let a = Visor::start(dir, &conf_a, &rpc_a);
    let b = Visor::start(dir, &conf_b, &rpc_b);
    assert_eq!(b.pk, b_pk);
    a.wait_sessions();
    b.wait_sessions();

    // info / pk / version
    assert_eq!(a.ok(&["visor", "pk"]).trim(), a.pk);
    assert_eq!(
        a.ok(&["visor", "version"]).trim(),
        env!("CARGO_PKG_VERSION")
    );
    let table = a.ok(&["visor", "info"]);
    assert!(table.contains(&a.pk), "{table}");

    // Apps: skysocks auto-started on A, not on B.
    let apps = a.json(&["visor", "app", "ls"]);
    assert_eq!(app(&apps, "skysocks")["status"], 1, "{apps}");
    assert_eq!(app(&apps, "vpn-client")["status"], 0, "{apps}");
    let apps_b = b.json(&["visor", "app", "ls"]);
    assert_eq!(app(&apps_b, "skysocks")["status"], 0, "{apps_b}");
    let ls = a.ok(&["visor", "app", "ls"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("skysocks ") && l.contains("running")),
        "{ls}"
    );

    // Proxy on B through A's skysocks, with curl.
    let web = http_server("hello through skysocks");
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    b.ok(&["proxy", "start", "--pk", &a.pk, "--addr", &addr]);
    let st = b.json(&["proxy", "status"]);
    assert_eq!(st["status"], 1, "{st}");
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--socks5-hostname", &addr])
        .arg(format!("http://{web}/"))
        .output()
        .unwrap();
    assert!(curl.status.success(), "{}", text(&curl.stderr));
    assert_eq!(text(&curl.stdout), "hello through skysocks");
    // The proxy args were saved to B's config.
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&b.conf).unwrap()).unwrap();
    let sc = saved["launcher"]["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "skysocks-client")
        .unwrap()
        .clone();
    assert!(sc["args"].to_string().contains(&a.pk), "{sc}");
    b.ok(&["proxy", "stop"]);
    assert_eq!(b.json(&["proxy", "status"])["status"], 0);
    let refused = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--socks5-hostname", &addr])
        .arg(format!("http://{web}/"))
        .output()
        .unwrap();
    assert!(!refused.status.success());

    // A dmsg transport from B to A: listed on both sides with the same ID, removed on both.
    let types = b.json(&["visor", "tp", "type"]);
    assert!(types.to_string().contains("dmsg"), "{types}");
    let tp = b.json(&["visor", "tp", "add", &a.pk, "-t", "dmsg"]);
    let id = tp["id"].as_str().unwrap().to_string();
    assert_eq!(tp["remote_pk"], a.pk.as_str(), "{tp}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a.json(&["visor", "tp", "ls"]).to_string().contains(&id) {
        assert!(Instant::now() < deadline, "A never listed transport {id}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ls = b.ok(&["visor", "tp", "ls"]);
    assert!(ls.contains(&id) && ls.contains("dmsg"), "{ls}");
    b.ok(&["visor", "tp", "rm", &id]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.json(&["visor", "tp", "ls"]).to_string().contains(&id) {
        assert!(Instant::now() < deadline, "A still lists transport {id}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = b.cli(&["visor", "tp", "rm", "not-a-uuid"]);
    assert!(!out.status.success());

    // Skynet forward through the visors: A exposes the web server's port, B maps a local port to it.
    let web_port = web.port().to_string();
    a.ok(&["skynet", "srv", "start", "--ports", &web_port]);
    let out = b.ok(&[
        "skynet",
        "start",
        &a.pk,
        "-r",
        &web_port,
        "-l",
        "0",
        "--raw-tcp",
    ]);
    let local = out
        .split("started: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .arg(format!("http://{local}/"))
        .output()
        .unwrap();
    assert!(curl.status.success(), "{}", text(&curl.stderr));
    assert_eq!(text(&curl.stdout), "hello through skysocks");
    let st = b.ok(&["skynet", "status"]);
    assert!(st.contains(&local), "{st}");
    b.ok(&["skynet", "stop"]);
    // A port A does not expose is refused.
    a.ok(&["skynet", "srv", "stop"]);
    let out = b.ok(&[
        "skynet",
        "start",
        &a.pk,
        "-r",
        &web_port,
        "-l",
        "0",
        "--raw-tcp",
    ]);
    let local = out
        .split("started: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_string();
    let curl = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .arg(format!("http://{local}/"))
        .output()
        .unwrap();
    assert!(text(&curl.stdout).is_empty(), "{}", text(&curl.stdout));
    b.ok(&["skynet", "stop"]);

    // Stop and start an app on A; its log records both.
    let st = a.json(&["visor", "app", "stop", "skysocks"]);
    assert_eq!(st["status"], 0, "{st}");
    assert_eq!(st["detailed_status"], "Stopped");
    let st = a.json(&["visor", "app", "start", "skysocks"]);
    assert!(st["status"] == 1 || st["status"] == 3, "{st}");
    let log = a.ok(&["visor", "app", "log", "skysocks"]);
    assert!(log.contains("stopped") && log.contains("starting"), "{log}");

    // pty exec on A through B's visor (A whitelists B).
    let out = b.cli(&[
        "pty",
        "exec",
        &a.pk,
        "--",
        "sh",
        "-c",
        "echo via-visor; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "via-visor\n");
    // B does not whitelist A: refused with a clear message.
    let out = a.cli(&["pty", "exec", &b.pk, "--", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("whitelist"),
        "{}",
        text(&out.stderr)
    );

    // fs mount of A's directory through B's visor.
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("f.txt"), b"remote file").unwrap();
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mut mount = Proc::start(
        &[
            "cli",
            "pty",
            "fs",
            "mount",
            &a.pk,
            mnt.to_str().unwrap(),
            "--remote-root",
            share.to_str().unwrap(),
            "--rpc",
            &b.rpc,
        ],
        dir,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read(mnt.join("f.txt")).ok().as_deref() != Some(b"remote file") {
        assert!(Instant::now() < deadline, "the mount did not come up");
        if let Ok(Some(s)) = mount.child.try_wait() {
            panic!(
                "mount exited {s}: {:?}",
                mount.stderr.try_iter().collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(mnt.join("new.txt"), b"written through the mount").unwrap();
    assert_eq!(
        std::fs::read(share.join("new.txt")).unwrap(),
        b"written through the mount"
    );
    let st = mount.terminate();
    assert!(st.success(), "{st}");

    // A failing app is restarted with backoff: skysocks-client towards a key nobody serves.
    let nobody = skywire_cipher::SecKey::generate().pub_key().to_string();
    a.ok(&[
        "visor",
        "app",
        "set",
        "skysocks-client",
        "--set",
        &format!("srv={nobody}"),
        "--set",
        "addr=127.0.0.1:0",
    ]);
    a.ok(&["visor", "app", "start", "skysocks-client"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let st = a.json(&["visor", "app", "ls"]);
        let sc = app(&st, "skysocks-client");
        if sc["restarts"].as_u64().unwrap_or(0) >= 1 {
            assert!(
                sc["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("dialling skysocks"),
                "{sc}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no restart: {sc}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = a.json(&["visor", "app", "stop", "skysocks-client"]);
    assert_eq!(st["status"], 0, "{st}");

    // A custom app (the SDK's example `hello`) as a child process of A, reached through B's visor.
    let hello = hello_bin();
    a.ok(&[
        "visor",
        "app",
        "add",
        "hello",
        "--binary",
        hello.to_str().unwrap(),
        "--port",
        "15",
    ]);
    a.ok(&["visor", "app", "start", "hello"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = a.json(&["visor", "app", "ls"]);
        let h = app(&st, "hello");
        if h["status"] == 1 && h["detailed_status"] == "Running" {
            assert_eq!(h["kind"], "external", "{h}");
            assert!(h["pid"].as_u64().is_some(), "{h}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hello did not come up: {h}\n{}",
            a.ok(&["visor", "app", "log", "hello"])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = common::runtime().block_on(async {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let c = skywire_visor::ControlClient::new(skywire_visor::ControlAddr::parse(&b.rpc));
        let pk: skywire_cipher::PubKey = a.pk.parse().unwrap();
        let s = c.dial(pk, 15).await.unwrap();
        let (r, mut w) = tokio::io::split(s);
        w.write_all(b"world\n").await.unwrap();
        let mut line = String::new();
        tokio::io::BufReader::new(r)
            .read_line(&mut line)
            .await
            .unwrap();
        line
    });
    assert_eq!(answer.trim_end(), format!("hello world from {}", a.pk));
    let st = a.json(&["visor", "app", "stop", "hello"]);
    assert_eq!(st["status"], 0, "{st}");
    let saved = std::fs::read_to_string(&a.conf).unwrap();
    assert!(
        saved.contains("\"hello\""),
        "app add is saved to the config"
    );

    // Bad input: unknown app, bad flag.
    let out = a.cli(&["visor", "app", "start", "nope"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no app named"),
        "{}",
        text(&out.stderr)
    );
    let out = a.cli(&["visor", "app", "set", "skysocks", "--set", "bogus=1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown flag --bogus"),
        "{}",
        text(&out.stderr)
    );

    // No visor at the address: a clear error.
    let out = run_bounded(
        &["cli", "visor", "info", "--rpc", "unix:/nonexistent.sock"],
        dir,
        None,
        STOP,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is `skywire visor` running"),
        "{}",
        text(&out.stderr)
    );

    // SIGTERM: B stops cleanly.
    let mut b = b;
    let st = b.proc.terminate();
    assert!(st.success(), "{st}");

    // Shutdown through the API: the process exits 0 and removes its control socket.
    let mut a = a;
    a.ok(&["visor", "shutdown"]);
    let st = a.proc.wait_exit();
    assert!(st.success(), "{st}");
    assert!(!dir.join("a.rpc.sock").exists());
}
