//! The `skywire cli pty exec|shell` client commands (real binary) against an in-process pty host
//! serving noise-XK TCP on 127.0.0.1:0 and whitelisting the key passed with `--sk`: output,
//! stderr and exit code of a remote command, a refused key, timeout → 124, `shell -- cmd`
//! without a terminal, piped stdin, and an interactive session fed from a pipe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::text;

use skywire_cipher::SecKey;
use skywire_pty::{HostHandle, PtyHost, PtyHostConfig, WhitelistStore};

struct Host {
    _rt: tokio::runtime::Runtime,
    _handle: HostHandle,
    via: String,
    pk: String,
}

/// A host on its own runtime whitelisting `allowed`.
fn host(allowed: &SecKey) -> Host {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (handle, via, pk) = rt.block_on(async {
        let host = PtyHost::new(
            PtyHostConfig::new(SecKey::generate())
                .with_whitelist(WhitelistStore::memory([allowed.pub_key()])),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let pk = host.pk().to_string();
        (host.serve_tcp(l), format!("tcp://{pk}@{addr}"), pk)
    });
    Host {
        _rt: rt,
        _handle: handle,
        via,
        pk,
    }
}

fn skywire(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::skywire();
    c.args(args)
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = c.spawn().unwrap();
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn exec_output_exit_code_timeout_and_refusal() {
    let sk = SecKey::generate();
    let h = host(&sk);
    let hex = sk.to_hex();

    let o = skywire(
        &[
            "cli",
            "pty",
            "exec",
            &h.pk,
            "--via",
            &h.via,
            "--sk",
            &hex,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ],
        None,
    );
    assert_eq!(text(&o.stdout), "out\n", "stderr: {}", text(&o.stderr));
    assert!(text(&o.stderr).contains("err"));
    assert_eq!(o.status.code(), Some(7));

    // Piped stdin reaches the command; flags of the command are not ours.
    let o = skywire(
        &[
            "cli", "pty", "exec", &h.pk, "--via", &h.via, "--sk", &hex, "--", "tr", "-d", "x",
        ],
        Some(b"axbxc"),
    );
    assert_eq!(text(&o.stdout), "abc", "stderr: {}", text(&o.stderr));
    assert_eq!(o.status.code(), Some(0));

    let o = skywire(
        &[
            "cli",
            "pty",
            "exec",
            &h.pk,
            "--via",
            &h.via,
            "--sk",
            &hex,
            "--timeout",
            "300ms",
            "--",
            "sleep",
            "5",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(124), "stderr: {}", text(&o.stderr));
    assert!(text(&o.stderr).contains("[timed out after"));

    let stranger = SecKey::generate();
    let o = skywire(
        &[
            "cli",
            "pty",
            "exec",
            &h.pk,
            "--via",
            &h.via,
            "--sk",
            &stranger.to_hex(),
            "--",
            "true",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("not in its whitelist"), "{err}");
    assert!(err.contains(&stranger.pub_key().to_string()), "{err}");

    // The target key must match the --via key.
    let other = SecKey::generate().pub_key().to_string();
    let o = skywire(
        &[
            "cli", "pty", "exec", &other, "--via", &h.via, "--sk", &hex, "--", "true",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("differs"));
}

#[test]
fn shell_command_and_piped_session() {
    let sk = SecKey::generate();
    let h = host(&sk);
    let hex = sk.to_hex();
    let target = h.via.trim_start_matches("tcp://").to_owned();

    let o = skywire(
        &[
            "cli", "pty", "shell", &target, "--sk", &hex, "--", "sh", "-c", "echo hi",
        ],
        None,
    );
    assert_eq!(text(&o.stdout), "hi\n", "stderr: {}", text(&o.stderr));
    assert_eq!(o.status.code(), Some(0));

    // The hidden `cli sshd --via` alias, interactive on a pty fed from a pipe: the session ends
    // when the remote shell exits.
    let o = skywire(
        &["cli", "sshd", "--via", &h.via, "--sk", &hex, "--", "sh"],
        None,
    );
    // `-- sh` without a terminal is a buffered exec of `sh` with empty stdin.
    assert_eq!(o.status.code(), Some(0), "stderr: {}", text(&o.stderr));

    let o = skywire(
        &["cli", "pty", "start", &h.pk, "--via", &h.via, "--sk", &hex],
        Some(b"echo mark-$((40+2)); exit\n"),
    );
    let out = text(&o.stdout);
    assert!(
        out.contains("mark-42"),
        "stdout: {out} stderr: {}",
        text(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0));

    // No key: a random one, noted on stderr (and refused by this host).
    let o = skywire(&["cli", "pty", "shell", &target, "--", "true"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("using the random key"));
}
