//! Runs the real `skywire app pty exec` client against a real `skywire dmsg pty host --no-dmsg`
//! through its control socket: `whitelist-add` / `whitelist` (lines and `--json`) /
//! `whitelist-remove`, checked against the host's config file `wl`; an already-present key
//! (host error printed, exit 0); `exec -- cmd` with stdout, stderr and the exit code; `exec`
//! with a key through a `--no-dmsg` host (proxy refused: exit 1); the interactive form with piped
//! stdin; bad keys (usage error) and a missing socket (exit 1); and on a `skywire testnet`,
//! `exec <pk> -- cmd` through host A's `dmsgpty/proxy` to host B (B whitelists A; a host B does
//! not whitelist is refused). Waits are bounded; hosts and the testnet are killed on `Drop`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use skywire_cipher::{PubKey, SecKey};
use skywire_pty::HostConfig;

const STARTUP: Duration = Duration::from_secs(60);
const BOUND: Duration = Duration::from_secs(20);

fn skywire() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_skywire"));
    c.env_remove("SKYWIRE_LOG");
    for v in [
        "DMSGPORT",
        "DMSGDISC",
        "DMSGSESSIONS",
        "CLINET",
        "CLIADDR",
        "SK",
    ] {
        c.env_remove(format!("DMSGPTY_{v}"));
    }
    c
}

/// A running host; killed on drop.
struct Host {
    child: Child,
    conf: PathBuf,
    sock: PathBuf,
    pk: PubKey,
}

impl Host {
    fn start(dir: &Path) -> Host {
        Host::start_with(
            dir,
            "host",
            &["--no-dmsg", "--tcplisten", "127.0.0.1:0"],
            "pty host ready",
        )
    }

    /// A host with config `<name>.json` and socket `<name>.sock`, extra flags `args`; returns
    /// once it printed a line starting with `until`.
    fn start_with(dir: &Path, name: &str, args: &[&str], until: &str) -> Host {
        let conf_name = format!("{name}.json");
        let out = run(
            &["dmsg", "pty", "host", "confgen", "-o", &conf_name],
            dir,
            None,
        );
        assert!(out.status.success(), "{out:?}");
        let conf = dir.join(&conf_name);
        let sock = dir.join(format!("{name}.sock"));
        let mut child = skywire()
            .args(["dmsg", "pty", "host"])
            .args(args)
            .arg("--cliaddr")
            .arg(&sock)
            .arg("-c")
            .arg(&conf)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the host");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Keep draining after start-up so the host never blocks on stderr.
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + STARTUP;
        let mut pk = None;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("host not ready; stderr: {seen:#?}"));
            if let Some(k) = line.strip_prefix("pty host ").and_then(|k| k.parse().ok()) {
                pk = Some(k);
            }
            if line.starts_with(until) {
                break;
            }
            seen.push(line);
        }
        Host {
            child,
            conf,
            sock,
            pk: pk.expect("host key line"),
        }
    }

    /// `skywire app pty exec --cliaddr <sock> args...`.
    fn app(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut full = vec![
            "app",
            "pty",
            "exec",
            "--cliaddr",
            self.sock.to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        run(&full, self.conf.parent().unwrap(), stdin)
    }

    fn config_wl(&self) -> Vec<PubKey> {
        HostConfig::load(&self.conf).unwrap().wl.unwrap_or_default()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `skywire args` to completion within [`BOUND`] (killed otherwise), feeding `stdin`.
fn run(args: &[&str], dir: &Path, stdin: Option<&[u8]>) -> Output {
    let mut child = skywire()
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run skywire");
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(data).unwrap();
    }
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`skywire {}` did not finish within {BOUND:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn listed(out: &Output) -> Vec<PubKey> {
    assert!(out.status.success(), "{out:?}");
    text(&out.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn whitelist_add_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path());
    let a = SecKey::generate().pub_key();
    let b = SecKey::generate().pub_key();
    let (ah, bh) = (a.to_hex(), b.to_hex());

    assert_eq!(
        listed(&host.app(&["whitelist"], None)),
        Vec::<PubKey>::new()
    );

    let out = host.app(&["whitelist-add", &ah, &bh], None);
    assert!(out.status.success(), "{out:?}");
    let mut got = listed(&host.app(&["whitelist"], None));
    got.sort_by_key(PubKey::to_hex);
    let mut want = vec![a, b];
    want.sort_by_key(PubKey::to_hex);
    assert_eq!(got, want);
    let mut wl = host.config_wl();
    wl.sort_by_key(PubKey::to_hex);
    assert_eq!(wl, want, "the config file's `wl`");

    // --json (also after the subcommand: the socket flags are global).
    let out = run(
        &[
            "app",
            "pty",
            "exec",
            "whitelist",
            "--json",
            "--cliaddr",
            host.sock.to_str().unwrap(),
        ],
        dir.path(),
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let v: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.len(), 2);
    assert!(v.contains(&ah) && v.contains(&bh), "{v:?}");

    // Already present: the host's error is printed, exit 0 (reference behaviour).
    let out = host.app(&["whitelist-add", &ah], None);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stderr).contains("Already exists"), "{out:?}");

    let out = host.app(&["whitelist-remove", &ah], None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(listed(&host.app(&["whitelist"], None)), [b]);
    assert_eq!(host.config_wl(), [b]);

    // Not a key: usage error.
    let out = host.app(&["whitelist-add", "zz"], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn exec_local_and_interactive_piped() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(dir.path());

    let out = host.app(
        &["exec", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err"), "{out:?}");

    // Without `--`, with -e, and stdin forwarded.
    let out = host.app(
        &["exec", "-e", "SKY_X=42", "sh", "-c", "echo $SKY_X; cat"],
        Some(b"piped"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "42\npiped");

    // A leading key needs the host's dmsgpty/proxy, which a --no-dmsg host refuses (0x01).
    let out = host.app(&["exec", &host.pk.to_hex(), "--", "true"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("dmsgpty/proxy"), "{out:?}");

    // Interactive form on the local host, stdin not a terminal.
    let out = host.app(&["-c", "sh"], Some(b"echo hello-$((6*7)); exit\n"));
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("hello-42"), "{out:?}");

    // No host behind the socket.
    let out = run(
        &[
            "app",
            "pty",
            "exec",
            "--cliaddr",
            dir.path().join("nope.sock").to_str().unwrap(),
            "whitelist",
        ],
        dir.path(),
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("nope.sock"), "{out:?}");
}

/// `skywire testnet`; killed on drop.
struct Testnet(Child);

impl Drop for Testnet {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn exec_through_the_proxy_on_a_testnet() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = skywire()
        .args(["testnet", "--json", "--servers", "1", "--clients", "1"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the testnet");
    let stdout = child.stdout.take().unwrap();
    let net = Testnet(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let disc = loop {
        let line = rx.recv_timeout(STARTUP).expect("testnet layout line");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            break v["discovery"].as_str().unwrap().to_owned();
        }
    };
    let dmsg_host = |name: &str, wl: Option<&PubKey>| {
        let mut args = vec!["--dmsgdisc", &disc];
        let wl_hex = wl.map(PubKey::to_hex);
        if let Some(k) = &wl_hex {
            args.extend(["--wl", k.as_str()]);
        }
        Host::start_with(
            dir.path(),
            name,
            &args,
            "pty host registered in dmsg discovery",
        )
    };
    let a = dmsg_host("a", None);
    let b = dmsg_host("b", Some(&a.pk));
    let c = dmsg_host("c", None);

    let out = a.app(
        &[
            "exec",
            &b.pk.to_hex(),
            "--",
            "sh",
            "-c",
            "echo via-proxy; exit 5",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(text(&out.stdout), "via-proxy\n");

    // `--addr <pk>:<port>` names the remote too.
    let addr = format!("{}:22", b.pk);
    let out = a.app(&["--addr", &addr, "exec", "echo", "addr-ok"], None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "addr-ok\n");

    // B does not whitelist C: C's host closes the proxied stream without answering.
    let out = c.app(&["exec", &b.pk.to_hex(), "--", "true"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("without answering"), "{out:?}");

    drop((a, b, c));
    drop(net);
}
