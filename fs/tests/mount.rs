//! Real FUSE mounts (needs root or fusermount3) of our sftp server through our client, over an
//! in-process socket pair: every operation class checked on the host's files, a seeded
//! fsx-style randomized sequence (10k ops) compared with a local directory after every op, a
//! 256 MiB checksum round trip, non-UTF-8 names, and no mount left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use skywire_fs::mount::{MountConfig, MountHandle, mount};
use skywire_fs::{ServerConfig, SftpClient, serve};

struct Fixture {
    rt: tokio::runtime::Runtime,
    handle: Option<MountHandle>,
    _tmp: tempfile::TempDir,
    src: PathBuf,
    mnt: PathBuf,
}

fn is_mounted(dir: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = dir.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(want))
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(MountConfig::default())
    }

    fn with(base: MountConfig) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let mnt = tmp.path().join("mnt");
        fs::create_dir(&src).unwrap();
        fs::create_dir(&mnt).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cfg = MountConfig {
            remote_root: src.as_os_str().as_bytes().to_vec(),
            ..base
        };
        let handle = rt.block_on(async {
            let (a, b) = tokio::net::UnixStream::pair().unwrap();
            tokio::spawn(async move { serve(a, ServerConfig::default()).await });
            let client = SftpClient::new(b).await.unwrap();
            mount(client, &mnt, cfg).await.unwrap()
        });
        assert!(is_mounted(&mnt));
        Fixture {
            rt,
            handle: Some(handle),
            _tmp: tmp,
            src,
            mnt,
        }
    }

    fn unmount(&mut self) {
        let h = self.handle.take().unwrap();
        h.unmount().unwrap();
        self.rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(10), h.wait())
                .await
                .unwrap()
        });
        assert!(!is_mounted(&self.mnt), "mount left behind");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.unmount();
        }
    }
}

#[test]
fn every_operation_reaches_the_host() {
    let mut fx = Fixture::new();
    let (m, s) = (fx.mnt.clone(), fx.src.clone());

    // create / write / read
    fs::write(m.join("a.txt"), b"hello").unwrap();
    assert_eq!(fs::read(s.join("a.txt")).unwrap(), b"hello");
    assert_eq!(fs::read(m.join("a.txt")).unwrap(), b"hello");
    // append: size seen through the mount right after our own write (no stale size)
    {
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(m.join("a.txt"))
            .unwrap();
        f.write_all(b" world").unwrap();
        assert_eq!(fs::metadata(m.join("a.txt")).unwrap().len(), 11);
    }
    assert_eq!(fs::read(s.join("a.txt")).unwrap(), b"hello world");
    // overwrite in the middle
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(m.join("a.txt"))
            .unwrap();
        f.seek(SeekFrom::Start(6)).unwrap();
        f.write_all(b"WORLD").unwrap();
    }
    assert_eq!(fs::read(s.join("a.txt")).unwrap(), b"hello WORLD");
    // truncate
    fs::OpenOptions::new()
        .write(true)
        .open(m.join("a.txt"))
        .unwrap()
        .set_len(5)
        .unwrap();
    assert_eq!(fs::metadata(m.join("a.txt")).unwrap().len(), 5);
    assert_eq!(fs::read(s.join("a.txt")).unwrap(), b"hello");
    // rename
    fs::rename(m.join("a.txt"), m.join("b.txt")).unwrap();
    assert!(!s.join("a.txt").exists());
    assert_eq!(fs::read(s.join("b.txt")).unwrap(), b"hello");
    // rename over an existing file replaces it
    fs::write(m.join("c.txt"), b"c").unwrap();
    fs::rename(m.join("c.txt"), m.join("b.txt")).unwrap();
    assert_eq!(fs::read(s.join("b.txt")).unwrap(), b"c");
    // symlink / readlink
    std::os::unix::fs::symlink("b.txt", m.join("lnk")).unwrap();
    assert_eq!(fs::read_link(s.join("lnk")).unwrap(), Path::new("b.txt"));
    assert_eq!(fs::read_link(m.join("lnk")).unwrap(), Path::new("b.txt"));
    assert_eq!(fs::read(m.join("lnk")).unwrap(), b"c");
    // chmod
    fs::set_permissions(m.join("b.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(s.join("b.txt")).unwrap().mode() & 0o777, 0o640);
    assert_eq!(fs::metadata(m.join("b.txt")).unwrap().mode() & 0o777, 0o640);
    // utimes
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(m.join("b.txt"))
        .unwrap()
        .set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
    assert_eq!(
        fs::metadata(s.join("b.txt")).unwrap().mtime(),
        1_000_000_000
    );
    let status = std::process::Command::new("touch")
        .args(["-m", "-d", "@1200000000"])
        .arg(m.join("b.txt"))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        fs::metadata(s.join("b.txt")).unwrap().mtime(),
        1_200_000_000
    );
    // mkdir / nested file / rename dir / rmdir / unlink
    fs::create_dir(m.join("d")).unwrap();
    assert!(s.join("d").is_dir());
    fs::write(m.join("d/f"), b"x").unwrap();
    fs::rename(m.join("d"), m.join("e")).unwrap();
    assert_eq!(fs::read(m.join("e/f")).unwrap(), b"x");
    assert_eq!(fs::read(s.join("e/f")).unwrap(), b"x");
    let err = fs::remove_dir(m.join("e")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::ENOTEMPTY), "{err}");
    fs::remove_file(m.join("e/f")).unwrap();
    fs::remove_dir(m.join("e")).unwrap();
    assert!(!s.join("e").exists());
    fs::remove_file(m.join("lnk")).unwrap();
    assert!(fs::symlink_metadata(s.join("lnk")).is_err());
    // errors map to the right errno
    assert_eq!(
        fs::read(m.join("nope")).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert_eq!(
        fs::create_dir(m.join("b.txt")).unwrap_err().kind(),
        std::io::ErrorKind::AlreadyExists
    );
    // non-UTF-8 names survive both ways
    let odd = OsStr::from_bytes(b"caf\xe9-\xff.bin");
    fs::write(m.join(odd), b"latin1").unwrap();
    assert_eq!(fs::read(s.join(odd)).unwrap(), b"latin1");
    let names: Vec<_> = fs::read_dir(&m)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.iter().any(|n| n == odd), "{names:?}");
    // a change on the host is seen within the cache timeout (1 s; the fresh listing above
    // answers lookups of names it lacks until then)
    fs::write(s.join("host.txt"), b"from host").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let got = loop {
        match fs::read(m.join("host.txt")) {
            Ok(d) => break d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(std::time::Instant::now() < deadline, "host file never seen");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(got, b"from host");
    // statfs works
    let out = std::process::Command::new("df").arg(&m).output().unwrap();
    assert!(out.status.success(), "{out:?}");

    fx.unmount();
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn tree(root: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if p.is_dir() {
                out.push((rel, None));
                stack.push(p);
            } else {
                out.push((rel, Some(fs::read(&p).unwrap())));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fsx_random_ops_match_a_local_dir() {
    let mut fx = Fixture::new();
    let local = tempfile::tempdir().unwrap();
    let (m, l) = (fx.mnt.clone(), local.path().to_path_buf());
    for d in [&m, &l] {
        fs::create_dir(d.join("sub")).unwrap();
    }
    let names = ["f0", "f1", "f2", "sub/g0", "sub/g1"];
    let seed = std::env::var("FSX_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let mut rng = Rng(seed);
    const OPS: usize = 10_000;
    const MAX_LEN: u64 = 256 * 1024;
    let mut buf = vec![0u8; 70_000];
    for op in 0..OPS {
        let name = names[rng.below(names.len() as u64) as usize];
        let kind = rng.below(100);
        let mut apply = |root: &Path, rng_state: u64| -> String {
            let mut r = Rng(rng_state);
            let p = root.join(name);
            if kind < 40 {
                // write at an offset (creates the file)
                let off = r.below(MAX_LEN);
                let len = 1 + r.below(65_536) as usize;
                for b in &mut buf[..len] {
                    *b = r.next() as u8;
                }
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&p)
                    .unwrap();
                f.seek(SeekFrom::Start(off)).unwrap();
                f.write_all(&buf[..len]).unwrap();
                format!("write {name} off={off} len={len}")
            } else if kind < 55 {
                let len = 1 + r.below(8192) as usize;
                for b in &mut buf[..len] {
                    *b = r.next() as u8;
                }
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .unwrap();
                f.write_all(&buf[..len]).unwrap();
                format!("append {name} len={len}")
            } else if kind < 70 {
                let size = r.below(MAX_LEN);
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&p)
                    .unwrap()
                    .set_len(size)
                    .unwrap();
                format!("truncate {name} {size}")
            } else if kind < 85 {
                // read a range (compared below through the whole-file check)
                if let Ok(mut f) = fs::File::open(&p) {
                    let off = r.below(MAX_LEN);
                    f.seek(SeekFrom::Start(off)).unwrap();
                    let mut v = vec![0u8; r.below(65_536) as usize];
                    let _ = f.read(&mut v).unwrap();
                }
                format!("read {name}")
            } else if kind < 93 {
                let to = names[r.below(names.len() as u64) as usize];
                if p.exists() {
                    fs::rename(&p, root.join(to)).unwrap();
                }
                format!("rename {name} -> {to}")
            } else {
                let _ = fs::remove_file(&p);
                format!("unlink {name}")
            }
        };
        let state = rng.next() | 1;
        let desc = apply(&m, state);
        apply(&l, state);
        // After every op: the touched file (contents and size) must match.
        let (pm, pl) = (m.join(name), l.join(name));
        let got = fs::read(&pm).ok();
        let want = fs::read(&pl).ok();
        assert_eq!(
            got.as_ref().map(Vec::len),
            want.as_ref().map(Vec::len),
            "op {op} ({desc}): size differs (seed {seed:#x})"
        );
        assert!(
            got == want,
            "op {op} ({desc}): contents differ (seed {seed:#x})"
        );
        if let Some(w) = &want {
            assert_eq!(
                fs::metadata(&pm).unwrap().len(),
                w.len() as u64,
                "op {op} ({desc}): stat size"
            );
        }
        if op % 1000 == 999 {
            assert!(
                tree(&m) == tree(&l),
                "op {op}: trees differ (seed {seed:#x})"
            );
            // and the host's files really hold it
            assert!(
                tree(&fx.src) == tree(&l),
                "op {op}: host tree differs (seed {seed:#x})"
            );
        }
    }
    fx.unmount();
}

#[test]
fn large_file_checksum_round_trip() {
    use sha2::{Digest, Sha256};
    let mut fx = Fixture::new();
    const SIZE: usize = 256 * 1024 * 1024;
    let mut rng = Rng(42);
    let mut block = vec![0u8; 1024 * 1024];
    let mut h_in = Sha256::new();
    {
        let mut f = fs::File::create(fx.mnt.join("big")).unwrap();
        for _ in 0..SIZE / block.len() {
            for c in block.chunks_mut(8) {
                c.copy_from_slice(&rng.next().to_le_bytes());
            }
            h_in.update(&block);
            f.write_all(&block).unwrap();
        }
        f.sync_all().unwrap();
    }
    assert_eq!(fs::metadata(fx.src.join("big")).unwrap().len(), SIZE as u64);
    let mut digest = |p: &Path| {
        let mut h = Sha256::new();
        let mut f = fs::File::open(p).unwrap();
        let mut total = 0;
        loop {
            let n = f.read(&mut block).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            h.update(&block[..n]);
        }
        assert_eq!(total, SIZE);
        h.finalize()
    };
    let want = h_in.finalize();
    assert_eq!(digest(&fx.src.join("big")), want, "host copy");
    assert_eq!(
        digest(&fx.mnt.join("big")),
        want,
        "read back through the mount"
    );
    fx.unmount();
}

/// With no caching every open goes through a wire lookup, which takes the speculative
/// open-read path: contents must always be current, after our own writes, truncates and
/// renames and after changes on the host.
#[test]
fn speculative_open_read_stays_coherent() {
    let mut fx = Fixture::with(MountConfig {
        cache_timeout: std::time::Duration::ZERO,
        ..MountConfig::default()
    });
    let (m, s) = (fx.mnt.clone(), fx.src.clone());
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(m.join("big"), &big).unwrap();
    for round in 0..20u32 {
        let name = m.join(format!("f{}", round % 4));
        let body = format!("round {round} {}", "x".repeat(round as usize * 100));
        fs::write(&name, &body).unwrap();
        assert_eq!(fs::read(&name).unwrap(), body.as_bytes());
        assert_eq!(fs::read(m.join("big")).unwrap(), big);
        // our own in-place change and truncate are seen by the next open
        {
            let mut f = fs::OpenOptions::new().write(true).open(&name).unwrap();
            f.write_all(b"ROUND").unwrap();
        }
        assert_eq!(&fs::read(&name).unwrap()[..5], b"ROUND");
        fs::OpenOptions::new()
            .write(true)
            .open(&name)
            .unwrap()
            .set_len(3)
            .unwrap();
        assert_eq!(fs::read(&name).unwrap(), b"ROU");
        // a change on the host is seen at once (no cache)
        fs::write(s.join("host"), format!("host {round}")).unwrap();
        assert_eq!(
            fs::read(m.join("host")).unwrap(),
            format!("host {round}").as_bytes()
        );
        fs::rename(m.join("host"), m.join("moved")).unwrap();
        assert_eq!(
            fs::read(m.join("moved")).unwrap(),
            format!("host {round}").as_bytes()
        );
        assert!(!m.join("host").exists());
    }
    // a FIFO on the host is neither a hang nor a regular file
    nix::unistd::mkfifo(
        &s.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let md = fs::symlink_metadata(m.join("fifo")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&md.file_type()));
    fx.unmount();
}
