//! Runs the real `skywire app pty exec` client against a real `skywire dmsg pty host --no-dmsg`
//! through its control socket: `whitelist-add` / `whitelist` (lines and `--json`) /
//! `whitelist-remove`, checked against the host's config file `wl`; an already-present key
//! (host error printed, exit 0); `exec -- cmd` with stdout, stderr and the exit code; `exec`
//! with a key through a `--no-dmsg` host (proxy refused: exit 1); the interactive form with piped
//! stdin; bad keys (usage error) and a missing socket (exit 1); and on a `skywire testnet`,
//! `exec <pk> -- cmd` through host A's `dmsgpty/proxy` to host B (B whitelists A; a host B does
//! not whitelist is refused). Waits are bounded; hosts and the testnet are killed on `Drop`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::{PtyHost, text};

use skywire_cipher::{PubKey, SecKey};
use skywire_pty::HostConfig;

const BOUND: Duration = Duration::from_secs(20);

/// A running host; killed on drop.
struct Host(PtyHost);

impl std::ops::Deref for Host {
    type Target = PtyHost;
    fn deref(&self) -> &PtyHost {
        &self.0
    }
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
        Host(PtyHost::start(
            dir,
            &format!("{name}.json"),
            &format!("{name}.sock"),
            args,
            until,
        ))
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

/// Runs `skywire args` to completion within [`BOUND`] (killed otherwise), feeding `stdin`.
fn run(args: &[&str], dir: &Path, stdin: Option<&[u8]>) -> Output {
    common::run_bounded(args, dir, stdin, BOUND)
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

#[test]
fn exec_through_the_proxy_on_a_testnet() {
    let dir = tempfile::tempdir().unwrap();
    let net = common::Testnet::start(dir.path(), 1, 1);
    let disc = net.disc.clone();
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
