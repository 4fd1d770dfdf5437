//! `skywire cli pty fs mount|umount` end to end with real FUSE mounts (run as root; CI is):
//! a `dmsg pty host` started by the test serves `dmsgpty/sftp` over noise-XK TCP and its control
//! socket; the mount is driven through the filesystem and checked on the host's files;
//! SIGTERM, `fs umount` and a lost connection leave no mount; an unauthorized key cannot mount.
//! Interop: OpenSSH's `sftp -D` against our server, and our mount against OpenSSH's
//! `sftp-server`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, PtyHost, STOP, run_bounded, skywire};
use skywire_cipher::SecKey;

const OPENSSH_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

fn is_mounted(dir: &Path) -> bool {
    let want = fs::canonicalize(dir).unwrap();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.to_str().unwrap()))
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + STOP;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Setup {
    tmp: tempfile::TempDir,
    host: PtyHost,
    sk: String,
    remote: PathBuf,
    mnt: PathBuf,
}

/// A TCP-only host whitelisting a fresh client key; a remote dir and an empty mount point.
fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let sk = SecKey::generate();
    let pk = sk.pub_key().to_string();
    let host = PtyHost::start(
        tmp.path(),
        "host.json",
        "pty.sock",
        &["--no-dmsg", "--tcplisten", "127.0.0.1:0", "--wl", &pk],
        "pty host ready",
    );
    let remote = tmp.path().join("remote");
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&remote).unwrap();
    fs::create_dir(&mnt).unwrap();
    Setup {
        tmp,
        host,
        sk: sk.to_hex(),
        remote,
        mnt,
    }
}

impl Setup {
    fn target(&self) -> String {
        format!("{}@{}", self.host.pk, self.host.addr.unwrap())
    }

    fn mount(&self, target: &str, extra: &[&str]) -> Proc {
        let mut args = vec![
            "cli",
            "pty",
            "fs",
            "mount",
            target,
            self.mnt.to_str().unwrap(),
            "--sk",
            &self.sk,
            "--remote-root",
            self.remote.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let mut p = Proc::start(&args, self.tmp.path());
        p.wait_on(true, |l| l.starts_with("mounted at").then_some(()));
        assert!(is_mounted(&self.mnt));
        p
    }
}

#[test]
fn mount_over_tcp_reaches_the_host_files_and_sigterm_unmounts() {
    let s = setup();
    let mut m = s.mount(&s.target(), &[]);
    let (mnt, remote) = (&s.mnt, &s.remote);
    fs::write(mnt.join("a"), b"over sftp").unwrap();
    assert_eq!(fs::read(remote.join("a")).unwrap(), b"over sftp");
    fs::write(remote.join("b"), b"from host").unwrap();
    assert_eq!(fs::read(mnt.join("b")).unwrap(), b"from host");
    fs::create_dir(mnt.join("d")).unwrap();
    fs::rename(mnt.join("a"), mnt.join("d/a2")).unwrap();
    assert_eq!(fs::read(remote.join("d/a2")).unwrap(), b"over sftp");
    std::os::unix::fs::symlink("d/a2", mnt.join("l")).unwrap();
    assert_eq!(fs::read_link(remote.join("l")).unwrap(), Path::new("d/a2"));
    let ls = Command::new("ls").arg("-lR").arg(mnt).output().unwrap();
    assert!(ls.status.success());
    assert!(common::text(&ls.stdout).contains("a2"), "{ls:?}");
    let status = m.terminate();
    assert!(status.success(), "{status:?}");
    assert!(!is_mounted(mnt), "SIGTERM left the mount behind");
}

#[test]
fn control_socket_mount_and_fs_umount() {
    let s = setup();
    let target = format!("unix://{}", s.host.sock.display());
    let mut m = s.mount(&target, &["-o", "ro"]);
    fs::write(s.remote.join("r"), b"read only").unwrap();
    assert_eq!(fs::read(s.mnt.join("r")).unwrap(), b"read only");
    let err = fs::write(s.mnt.join("w"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::EROFS), "{err}");
    let out = run_bounded(
        &["cli", "pty", "fs", "umount", s.mnt.to_str().unwrap()],
        s.tmp.path(),
        None,
        STOP,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(!is_mounted(&s.mnt));
    let status = m.wait_exit();
    assert!(status.success(), "{status:?}");
}

#[test]
fn daemon_mount_detaches_and_lost_connection_unmounts() {
    let mut s = setup();
    let target = s.target();
    let out = run_bounded(
        &[
            "cli",
            "pty",
            "fs",
            "mount",
            &target,
            s.mnt.to_str().unwrap(),
            "--sk",
            &s.sk,
            "--remote-root",
            s.remote.to_str().unwrap(),
            "-d",
        ],
        s.tmp.path(),
        None,
        STOP * 3,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(is_mounted(&s.mnt));
    fs::write(s.mnt.join("x"), b"daemon").unwrap();
    assert_eq!(fs::read(s.remote.join("x")).unwrap(), b"daemon");
    // The host goes away: the detached mount notices and unmounts itself.
    s.host.proc.terminate();
    wait_until("the mount to go away after the host died", || {
        !is_mounted(&s.mnt)
    });
}

#[test]
fn unauthorized_key_cannot_mount() {
    let s = setup();
    let stranger = SecKey::generate().to_hex();
    let out = run_bounded(
        &[
            "cli",
            "pty",
            "fs",
            "mount",
            &s.target(),
            s.mnt.to_str().unwrap(),
            "--sk",
            &stranger,
        ],
        s.tmp.path(),
        None,
        STOP * 3,
    );
    assert!(!out.status.success(), "{out:?}");
    let err = common::text(&out.stderr);
    assert!(err.contains("whitelist"), "{err}");
    assert!(!is_mounted(&s.mnt));
    // A plain <pk> without --standalone names the missing visor.
    let out = run_bounded(
        &[
            "cli",
            "pty",
            "fs",
            "mount",
            &s.host.pk.to_string(),
            s.mnt.to_str().unwrap(),
        ],
        s.tmp.path(),
        None,
        STOP,
    );
    assert!(!out.status.success());
    assert!(
        common::text(&out.stderr).contains("--standalone"),
        "{out:?}"
    );
}

#[test]
fn openssh_sftp_client_against_our_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::write(dir.join("hello.txt"), b"hello from rust").unwrap();
    fs::write(dir.join("upload.src"), vec![7u8; 300_000]).unwrap();
    let server = format!("{} cli pty fs sftp-server", env!("CARGO_BIN_EXE_skywire"));
    let batch = "get hello.txt got.txt\nput upload.src up.bin\nmkdir sub\nrename up.bin sub/up2.bin\nsymlink hello.txt link\nls -l\nchmod 600 hello.txt\nrm sub/up2.bin\nrmdir sub\nbye\n";
    let mut child = Command::new("sftp")
        .args(["-D", &server, "-b", "-"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("OpenSSH sftp (Debian openssh-client)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(batch.as_bytes())
        .unwrap();
    let deadline = Instant::now() + STOP;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "sftp did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(common::text(&out.stdout).contains("link"), "{out:?}");
    assert_eq!(fs::read(dir.join("got.txt")).unwrap(), b"hello from rust");
    assert_eq!(
        fs::read_link(dir.join("link")).unwrap(),
        Path::new("hello.txt")
    );
    assert!(!dir.join("sub").exists());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(dir.join("hello.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn our_mount_against_openssh_sftp_server() {
    let tmp = tempfile::tempdir().unwrap();
    let (remote, mnt) = (tmp.path().join("remote"), tmp.path().join("mnt"));
    fs::create_dir(&remote).unwrap();
    fs::create_dir(&mnt).unwrap();
    fs::write(remote.join("seed"), b"seed").unwrap();
    let mut cmd = skywire();
    cmd.current_dir(tmp.path());
    let mut m = Proc::spawn(
        cmd,
        &[
            "cli",
            "pty",
            "fs",
            "mount",
            "openssh",
            mnt.to_str().unwrap(),
            "--sftp-server-cmd",
            OPENSSH_SFTP_SERVER,
            "--remote-root",
            remote.to_str().unwrap(),
        ],
        tmp.path(),
        Stdio::null(),
    );
    m.wait_on(true, |l| l.starts_with("mounted at").then_some(()));
    assert_eq!(fs::read(mnt.join("seed")).unwrap(), b"seed");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(mnt.join("big"), &data).unwrap();
    assert_eq!(
        fs::metadata(mnt.join("big")).unwrap().len(),
        data.len() as u64
    );
    assert!(fs::read(remote.join("big")).unwrap() == data);
    assert!(fs::read(mnt.join("big")).unwrap() == data);
    fs::create_dir(mnt.join("d")).unwrap();
    fs::rename(mnt.join("big"), mnt.join("d/big")).unwrap();
    assert!(remote.join("d/big").exists());
    fs::remove_file(mnt.join("d/big")).unwrap();
    fs::remove_dir(mnt.join("d")).unwrap();
    assert!(!remote.join("d").exists());
    let status = m.terminate();
    assert!(status.success(), "{status:?}");
    assert!(!is_mounted(&mnt));
}
