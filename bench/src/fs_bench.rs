//! fs-bench: `skywire cli pty fs mount` (our sftp over a noise-XK TCP pty host) side by side
//! with sshfs (over a throwaway OpenSSH `sshd -D`), in the same run, on the same machine.
//!
//! Workloads, each timed on both mounts: sequential write and read of one big file (the page
//! cache is dropped before reads), creating and then reading many 1 KiB files, `ls -lR` of a
//! source tree that was unpacked on the host side (fresh to both clients), and `tar x` of that
//! tree through the mount. Run twice: on loopback, and with 50 ms RTT (`tc netem` 25 ms each way
//! on a veth pair into a network namespace `swfs<pid>` where both servers run).
//!
//! Flags: `--quick` (smaller sizes), `--no-rtt`, `--no-loopback` (run only one case). With the
//! userspace relay fallback it also prints the raw TCP download speed through the relay.
//!
//! Needs root (mounts, netns, drop_caches), `sshfs`, `/usr/sbin/sshd`, `ssh-keygen`, `ip`, `tc`,
//! `tar`, and a release `skywire` (`cargo build --release -p skywire`). Every process, mount and
//! the namespace are removed at the end, also on error (guards' Drop).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use skywire_bench::skywire_bin;

const READY: Duration = Duration::from_secs(30);

fn sh(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn is_mounted(dir: &Path) -> bool {
    let want = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|i| {
            i.lines()
                .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
        })
        .unwrap_or(false)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + READY;
    while !f() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A child process killed on drop.
struct Kid(Child);
impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A mount point unmounted (lazily) on drop.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A network namespace with a veth pair and netem delay; deleted on drop.
struct Netns {
    name: String,
    host_ip: String,
    veth: String,
}
impl Netns {
    fn create(delay_ms: u32) -> Result<Netns> {
        let pid = std::process::id();
        let name = format!("swfs{pid}");
        let (a, b) = (format!("swfsa{pid}"), format!("swfsb{pid}"));
        let ns = Netns {
            name: name.clone(),
            host_ip: "10.213.77.2".into(),
            veth: a.clone(),
        };
        sh(Command::new("ip").args(["netns", "add", &name]))?;
        sh(Command::new("ip").args([
            "link", "add", &a, "type", "veth", "peer", "name", &b, "netns", &name,
        ]))?;
        sh(Command::new("ip").args(["addr", "add", "10.213.77.1/24", "dev", &a]))?;
        sh(Command::new("ip").args(["link", "set", &a, "up"]))?;
        let nsx = |args: &[&str]| {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &name]).args(args);
            sh(&mut c)
        };
        nsx(&["ip", "addr", "add", "10.213.77.2/24", "dev", &b])?;
        nsx(&["ip", "link", "set", &b, "up"])?;
        nsx(&["ip", "link", "set", "lo", "up"])?;
        let d = format!("{delay_ms}ms");
        sh(Command::new("tc").args([
            "qdisc", "add", "dev", &a, "root", "netem", "delay", &d, "limit", "100000",
        ]))?;
        nsx(&[
            "tc", "qdisc", "add", "dev", &b, "root", "netem", "delay", &d, "limit", "100000",
        ])?;
        Ok(ns)
    }
}
impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Wraps a command to run inside `ns` (if any).
fn in_ns(ns: Option<&Netns>, prog: &str) -> Command {
    match ns {
        Some(n) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &n.name, prog]);
            c
        }
        None => Command::new(prog),
    }
}

struct Servers {
    _sshd: Kid,
    _host: Kid,
    ssh_port: u16,
    ssh_key: PathBuf,
    host_pk: String,
    host_addr: String,
    client_sk: String,
}

/// Userspace stand-in for netem when the kernel has no `sch_netem`: a TCP relay on 127.0.0.1
/// that holds every chunk for `delay` in each direction (so RTT = 2 x delay) without limiting
/// throughput (chunks are pipelined, not serialised). Threads end with their connections.
fn delay_relay(target: std::net::SocketAddr, delay: Duration) -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(a) = conn else { continue };
            let Ok(b) = std::net::TcpStream::connect(target) else {
                continue;
            };
            let _ = a.set_nodelay(true);
            let _ = b.set_nodelay(true);
            for (from, to) in [(&a, &b), (&b, &a)] {
                let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                    continue;
                };
                let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0
                            || tx
                                .send((Instant::now() + delay, buf[..n].to_vec()))
                                .is_err()
                        {
                            break;
                        }
                    }
                });
                std::thread::spawn(move || {
                    while let Ok((due, chunk)) = rx.recv() {
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        if to.write_all(&chunk).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    Ok(port)
}

/// Raw TCP download speed through a [`delay_relay`] (MB/s): the ceiling the relay itself puts
/// on the 50 ms RTT rows. A local server sends `mib` MiB through the relay to us.
fn relay_tcp_mbs(delay: Duration, mib: usize) -> Result<f64> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let target = l.local_addr()?;
    let total = mib * 1024 * 1024;
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = l.accept() {
            let block = vec![0x33u8; 1024 * 1024];
            for _ in 0..mib {
                if c.write_all(&block).is_err() {
                    return;
                }
            }
        }
    });
    let port = delay_relay(target, delay)?;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
    let t = Instant::now();
    let mut buf = vec![0u8; 1024 * 1024];
    let mut got = 0;
    while got < total {
        let n = c.read(&mut buf)?;
        if n == 0 {
            bail!("relay closed after {got} bytes");
        }
        got += n;
    }
    Ok(total as f64 / 1e6 / t.elapsed().as_secs_f64())
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn start_servers(bin: &Path, dir: &Path, ns: Option<&Netns>, ip: &str) -> Result<Servers> {
    // sshd with a temporary host key and authorized_keys.
    let p = |n: &str| dir.join(n);
    for k in ["host_key", "client_key"] {
        if !p(k).exists() {
            sh(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(p(k)))?;
        }
    }
    std::fs::copy(p("client_key.pub"), p("authorized_keys"))?;
    std::fs::create_dir_all("/run/sshd")?;
    let ssh_port = free_port()?;
    std::fs::write(
        p("sshd_config"),
        format!(
            "HostKey {}\nListenAddress {ip}\nAuthorizedKeysFile {}\nPidFile none\n\
             PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nUseDNS no\nLogLevel ERROR\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\n",
            p("host_key").display(),
            p("authorized_keys").display()
        ),
    )?;
    let sshd = Kid(in_ns(ns, "/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(p("sshd_config"))
        .args(["-p", &ssh_port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting sshd")?);
    // Our pty host (TCP only), whitelisting a fresh client key.
    let conf = p("host.json");
    if !conf.exists() {
        sh(Command::new(bin)
            .args(["dmsg", "pty", "host", "confgen", "-o"])
            .arg(&conf))?;
    }
    let client_sk = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a".to_owned();
    let client_pk = skywire_cipher::SecKey::from_hex(&client_sk)?
        .pub_key()
        .to_string();
    let port = free_port()?;
    let mut host = Kid(in_ns(ns, bin.to_str().context("binary path")?)
        .args(["dmsg", "pty", "host", "-c"])
        .arg(&conf)
        .args([
            "--no-dmsg",
            "--tcplisten",
            &format!("{ip}:{port}"),
            "--wl",
            &client_pk,
        ])
        .args(["--cliaddr"])
        .arg(p("pty.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the pty host")?);
    let mut err = host.0.stderr.take().context("host stderr")?;
    let mut text = String::new();
    let mut host_pk = None;
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + READY;
    while !text.contains("pty host ready") {
        if Instant::now() > deadline {
            bail!("pty host did not start: {text}");
        }
        let n = err.read(&mut buf)?;
        if n == 0 {
            bail!("pty host exited: {text}");
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    for l in text.lines() {
        if let Some(k) = l.strip_prefix("pty host ")
            && k.len() == 66
        {
            host_pk = Some(k.to_owned());
        }
    }
    // Keep draining the host's stderr so it never blocks.
    std::thread::spawn(move || {
        let mut sink = [0u8; 4096];
        while matches!(err.read(&mut sink), Ok(n) if n > 0) {}
    });
    let deadline = Instant::now() + READY;
    while std::net::TcpStream::connect((ip, ssh_port)).is_err() {
        if Instant::now() > deadline {
            bail!("sshd did not listen");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Servers {
        _sshd: sshd,
        _host: host,
        ssh_port,
        ssh_key: p("client_key"),
        host_pk: host_pk.context("host key line")?,
        host_addr: format!("{ip}:{port}"),
        client_sk,
    })
}

fn mount_ours(bin: &Path, s: &Servers, remote: &Path, mnt: &Path) -> Result<(Kid, Mounted)> {
    let kid = Kid(Command::new(bin)
        .args(["cli", "pty", "fs", "mount"])
        .arg(format!("{}@{}", s.host_pk, s.host_addr))
        .arg(mnt)
        .args(["--sk", &s.client_sk, "--remote-root"])
        .arg(remote)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?);
    wait_for("our mount", || is_mounted(mnt))?;
    Ok((kid, Mounted(mnt.to_path_buf())))
}

fn mount_sshfs(s: &Servers, ip: &str, remote: &Path, mnt: &Path) -> Result<Mounted> {
    sh(Command::new("sshfs")
        .arg(format!("root@{ip}:{}", remote.display()))
        .arg(mnt)
        .args(["-p", &s.ssh_port.to_string()])
        .arg("-o")
        .arg(format!(
            "IdentityFile={},StrictHostKeyChecking=no,UserKnownHostsFile=/dev/null,BatchMode=yes,IdentitiesOnly=yes",
            s.ssh_key.display()
        )))?;
    wait_for("sshfs mount", || is_mounted(mnt))?;
    Ok(Mounted(mnt.to_path_buf()))
}

fn drop_caches() {
    let _ = Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

fn timed(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

struct Sizes {
    seq_mib: usize,
    small: usize,
}

/// One row per workload: (name, unit, ours, sshfs); values in the unit (MB/s or seconds).
fn workloads(mnt: &Path, remote: &Path, tarball: &Path, z: &Sizes) -> Result<Vec<(String, f64)>> {
    let mut rows = Vec::new();
    let big = mnt.join("big");
    let block = vec![0x5au8; 1024 * 1024];
    let t = timed(|| {
        let mut f = std::fs::File::create(&big)?;
        for _ in 0..z.seq_mib {
            f.write_all(&block)?;
        }
        f.sync_all()?;
        Ok(())
    })?;
    rows.push((
        format!("seq write {} MiB (MB/s)", z.seq_mib),
        z.seq_mib as f64 * 1.048576 / t,
    ));
    drop_caches();
    let t = timed(|| {
        let mut f = std::fs::File::open(&big)?;
        let mut buf = vec![0u8; 1024 * 1024];
        let mut n = 0;
        loop {
            let k = f.read(&mut buf)?;
            if k == 0 {
                break;
            }
            n += k;
        }
        if n != z.seq_mib * 1024 * 1024 {
            bail!("short read {n}");
        }
        Ok(())
    })?;
    rows.push((
        format!("seq read {} MiB (MB/s)", z.seq_mib),
        z.seq_mib as f64 * 1.048576 / t,
    ));
    std::fs::remove_file(&big)?;
    let small = mnt.join("small");
    let kib = vec![7u8; 1024];
    let t = timed(|| {
        std::fs::create_dir(&small)?;
        for i in 0..z.small {
            std::fs::write(small.join(format!("f{i}")), &kib)?;
        }
        Ok(())
    })?;
    rows.push((format!("create {} x 1 KiB files (s)", z.small), t));
    drop_caches();
    let t = timed(|| {
        for i in 0..z.small {
            let d = std::fs::read(small.join(format!("f{i}")))?;
            if d.len() != 1024 {
                bail!("bad small file");
            }
        }
        Ok(())
    })?;
    rows.push((format!("read {} x 1 KiB files (s)", z.small), t));
    // ls -lR of a tree unpacked on the host side (new to the client).
    let fresh = remote.join("lsr");
    std::fs::create_dir(&fresh)?;
    sh(Command::new("tar")
        .arg("xf")
        .arg(tarball)
        .arg("-C")
        .arg(&fresh))?;
    let t = timed(|| {
        sh(Command::new("sh").arg("-c").arg(format!(
            "ls -lR '{}' > /dev/null",
            mnt.join("lsr").display()
        )))
    })?;
    rows.push(("ls -lR source tree (s)".into(), t));
    let t = timed(|| {
        std::fs::create_dir(mnt.join("tx"))?;
        sh(Command::new("tar")
            .arg("xf")
            .arg(tarball)
            .arg("-C")
            .arg(mnt.join("tx")))
    })?;
    rows.push(("tar x source tree (s)".into(), t));
    Ok(rows)
}

fn run_case(
    bin: &Path,
    work: &Path,
    tarball: &Path,
    ns: Option<&Netns>,
    relay_delay: Option<Duration>,
    z: &Sizes,
) -> Result<Vec<(String, f64, f64)>> {
    let ip = ns.map_or("127.0.0.1".to_owned(), |n| n.host_ip.clone());
    let mut servers = start_servers(bin, work, ns, &ip)?;
    if let Some(d) = relay_delay {
        servers.ssh_port = delay_relay(format!("{ip}:{}", servers.ssh_port).parse()?, d)?;
        let host_port = delay_relay(servers.host_addr.parse()?, d)?;
        servers.host_addr = format!("{ip}:{host_port}");
    }
    let mut results: Vec<Vec<(String, f64)>> = Vec::new();
    for which in ["ours", "sshfs"] {
        let remote = work.join(format!("remote-{which}"));
        let mnt = work.join(format!("mnt-{which}"));
        let _ = std::fs::remove_dir_all(&remote);
        std::fs::create_dir_all(&remote)?;
        std::fs::create_dir_all(&mnt)?;
        let rows = if which == "ours" {
            let (_kid, _m) = mount_ours(bin, &servers, &remote, &mnt)?;
            workloads(&mnt, &remote, tarball, z)?
        } else {
            let _m = mount_sshfs(&servers, &ip, &remote, &mnt)?;
            workloads(&mnt, &remote, tarball, z)?
        };
        std::fs::remove_dir_all(&remote)?;
        results.push(rows);
    }
    Ok(results[0]
        .iter()
        .zip(&results[1])
        .map(|((n, a), (_, b))| (n.clone(), *a, *b))
        .collect())
}

fn print(title: &str, rows: &[(String, f64, f64)]) {
    println!("\n### {title}\n");
    println!("| workload | skywire fs | sshfs | ours/sshfs |");
    println!("|---|---:|---:|---:|");
    for (n, a, b) in rows {
        // For MB/s higher is better; for seconds the ratio is sshfs time / ours (speed-up).
        let ratio = if n.ends_with("(MB/s)") { a / b } else { b / a };
        println!("| {n} | {a:.2} | {b:.2} | {ratio:.2}x |");
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let no_rtt = args.iter().any(|a| a == "--no-rtt");
    let no_loopback = args.iter().any(|a| a == "--no-loopback");
    let bin = skywire_bin()?;
    let work = tempfile::Builder::new().prefix("fs-bench").tempdir()?;
    // The source tree: this repository's tracked files (git archive), else /usr/share/doc.
    let tarball = work.path().join("src.tar");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("root")?;
    let git = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["archive", "--format=tar", "-o"])
        .arg(&tarball)
        .arg("HEAD")
        .status();
    if !matches!(git, Ok(s) if s.success()) {
        sh(Command::new("tar")
            .arg("cf")
            .arg(&tarball)
            .args(["-C", "/usr/share", "doc"]))?;
    }
    let local = Sizes {
        seq_mib: if quick { 128 } else { 1024 },
        small: if quick { 1000 } else { 10_000 },
    };
    if !no_loopback {
        let rows = run_case(&bin, work.path(), &tarball, None, None, &local)?;
        print("loopback", &rows);
    }
    if !no_rtt {
        let slow = Sizes {
            seq_mib: if quick { 32 } else { 128 },
            small: if quick { 100 } else { 500 },
        };
        match Netns::create(25) {
            Ok(ns) => {
                let rows = run_case(&bin, work.path(), &tarball, Some(&ns), None, &slow)?;
                print("50 ms RTT (netem 25 ms each way, netns)", &rows);
            }
            Err(e) => {
                eprintln!("netem unavailable ({e:#}); using a userspace delay relay instead");
                let d = Some(Duration::from_millis(25));
                let rows = run_case(&bin, work.path(), &tarball, None, d, &slow)?;
                print("50 ms RTT (userspace relay, 25 ms each way)", &rows);
                let raw = relay_tcp_mbs(Duration::from_millis(25), slow.seq_mib)?;
                println!(
                    "\nraw TCP download through the same relay ({} MiB): {raw:.1} MB/s",
                    slow.seq_mib
                );
            }
        }
    }
    Ok(())
}
