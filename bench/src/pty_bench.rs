//! pty `exec -- true` round-trip latency, ours against OpenSSH. Run with:
//!
//! ```text
//! cargo build --release -p skywire                                   # the CLI case runs it
//! cargo run --release -p skywire-bench --bin pty-bench
//! cargo run --release -p skywire-bench --bin pty-bench -- --n 50     # fewer iterations
//! ```
//!
//! Everything is on 127.0.0.1, in one run:
//!
//! 1. the library: `PtyClient::connect_tcp` + `exec("true")` per iteration against an in-process
//!    `PtyHost` on TCP (TCP connect, noise XK, pty URI request, `pty.Exec` RPC), and `exec`
//!    alone over one connection reused for every iteration;
//! 2. the CLI: `target/release/skywire cli pty exec <pk> --via tcp://<pk>@127.0.0.1:<port> --sk
//!    <hex> -- true`, one process per iteration, against the same host;
//! 3. dmsg: an in-process discovery, relay server and two dmsg clients; a `PtyHost` serves port
//!    22 of client A, client B runs `exec` over its established session: a new stream (dial +
//!    URI + RPC) per iteration, and one stream reused;
//! 4. OpenSSH: `ssh ... root@127.0.0.1 true` against a throwaway `sshd -D` started here on a
//!    free loopback port with generated keys, without connection reuse and with
//!    ControlMaster/ControlPersist reuse.
//!
//! Each case runs one untimed warm-up, then up to `--n` (200) iterations or 60 s. The table
//! gives p50/p90/p99 (nearest rank) in ms and the p50 ratio to `ssh` without reuse. Every child
//! process (sshd, the ssh control master, CLI processes) is stopped at the end, also on error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use skywire_cipher::{PubKey, SecKey};
use skywire_disc::DiscHandle;

use skywire_bench::{LocalRelay, skywire_bin};
use skywire_dmsg::{Client, ServerHandle, mux};
use skywire_pty::{HostHandle, PtyClient, PtyHost, PtyHostConfig, WhitelistStore};
use tokio::net::TcpListener;
use tokio::process::Command;

/// Default iterations per case.
const ITERATIONS: usize = 200;
/// Time bound per case.
const CASE_TIME: Duration = Duration::from_secs(60);
/// Bound on one iteration (process run, connect + exec).
const ONE: Duration = Duration::from_secs(20);
/// Deadline of waits for start-up (relay registration, sshd listening).
const READY: Duration = Duration::from_secs(10);
/// Host-side timeout passed with every `pty.Exec`.
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);
/// dmsg port of the pty host.
const DMSG_PTY_PORT: u16 = 22;
const SSHD: &str = "/usr/sbin/sshd";

/// Nearest-rank percentile of sorted samples, in ms.
fn pct_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let i = rank.saturating_sub(1).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e3
}

/// Runs `one` once untimed, then up to `n` times or `CASE_TIME`; sorted durations.
async fn measure<F, Fut>(n: usize, what: &str, mut one: F) -> Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let bounded = |f: Fut| async move {
        match tokio::time::timeout(ONE, f).await {
            Ok(r) => r,
            Err(_) => bail!("no result within {ONE:?}"),
        }
    };
    bounded(one())
        .await
        .with_context(|| format!("{what}: warm-up"))?;
    let mut v = Vec::with_capacity(n);
    let start = Instant::now();
    while v.len() < n && start.elapsed() < CASE_TIME {
        let t0 = Instant::now();
        bounded(one())
            .await
            .with_context(|| format!("{what}: iteration {}", v.len() + 1))?;
        v.push(t0.elapsed());
    }
    v.sort_unstable();
    Ok(v)
}

/// `pty.Exec` of `true`; fails unless it exits 0.
async fn exec_true(c: &PtyClient) -> Result<()> {
    let r = c.exec("true", &[], &[], Vec::new(), EXEC_TIMEOUT).await?;
    if r.exit_code != 0 {
        bail!(
            "exec true: exit {} (stderr {:?})",
            r.exit_code,
            String::from_utf8_lossy(&r.stderr)
        );
    }
    Ok(())
}

/// Runs a command to its end (killed if dropped); fails with its stderr unless it exits 0.
async fn run_ok(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("spawning {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?}: {} (stderr: {})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Our TCP host, library and CLI

/// An in-process pty host on TCP whitelisting one client key.
struct TcpHost {
    handle: HostHandle,
    pk: PubKey,
    addr: SocketAddr,
}

impl TcpHost {
    async fn start(client: &SecKey) -> Result<TcpHost> {
        let host = PtyHost::new(
            PtyHostConfig::new(SecKey::generate())
                .with_whitelist(WhitelistStore::memory([client.pub_key()])),
        );
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        Ok(TcpHost {
            handle: host.serve_tcp(l),
            pk: host.pk(),
            addr,
        })
    }
}

async fn lib_new_conn(h: &TcpHost, sk: &SecKey, n: usize) -> Result<Vec<Duration>> {
    let addr = h.addr.to_string();
    measure(n, "library, new connection", || async {
        let c = PtyClient::connect_tcp(&addr, h.pk, sk).await?;
        exec_true(&c).await?;
        c.close();
        Ok(())
    })
    .await
}

async fn lib_reused(h: &TcpHost, sk: &SecKey, n: usize) -> Result<Vec<Duration>> {
    let c = PtyClient::connect_tcp(&h.addr.to_string(), h.pk, sk).await?;
    let v = measure(n, "library, one connection", || exec_true(&c)).await;
    c.close();
    v
}

async fn cli(h: &TcpHost, sk: &SecKey, bin: &Path, n: usize) -> Result<Vec<Duration>> {
    let pk = h.pk.to_string();
    let via = format!("tcp://{pk}@{}", h.addr);
    let hex = sk.to_hex();
    let dir = tempfile::tempdir()?;
    measure(n, "CLI", || {
        let mut cmd = Command::new(bin);
        cmd.args([
            "cli", "pty", "exec", &pk, "--via", &via, "--sk", &hex, "--", "true",
        ])
        .current_dir(dir.path())
        .env_remove("DMSGPTY_SK")
        .env_remove("SKYWIRE_LOG");
        async move { run_ok(&mut cmd).await }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// dmsg

/// Discovery, one relay server, client A (serving the pty host on port 22) and client B.
struct DmsgNet {
    disc: DiscHandle,
    server: ServerHandle,
    a: Client,
    b: Client,
    host: HostHandle,
}

impl DmsgNet {
    async fn start() -> Result<DmsgNet> {
        let relay = LocalRelay::start(mux::Config::default(), READY).await?;
        let a = relay.client(mux::Config::default())?;
        let b = relay.client(mux::Config::default())?;
        let LocalRelay { disc, server } = relay;
        a.ready(READY).await.context("client A registration")?;
        b.ready(READY).await.context("client B registration")?;
        let pty = PtyHost::new(
            PtyHostConfig::new(SecKey::generate()).with_whitelist(WhitelistStore::memory([b.pk()])),
        );
        let host = pty.serve_dmsg(a.listen(DMSG_PTY_PORT)?);
        Ok(DmsgNet {
            disc,
            server,
            a,
            b,
            host,
        })
    }

    async fn stop(self) -> Result<()> {
        self.host.shutdown().await;
        self.a.close().await;
        self.b.close().await;
        self.server.shutdown().await;
        self.disc.shutdown().await?;
        Ok(())
    }
}

async fn dmsg_new_stream(net: &DmsgNet, n: usize) -> Result<Vec<Duration>> {
    let pk = net.a.pk();
    measure(n, "dmsg, new stream", || async move {
        let c = PtyClient::connect_dmsg(&net.b, pk, DMSG_PTY_PORT).await?;
        exec_true(&c).await?;
        c.close();
        Ok(())
    })
    .await
}

async fn dmsg_reused(net: &DmsgNet, n: usize) -> Result<Vec<Duration>> {
    let c = PtyClient::connect_dmsg(&net.b, net.a.pk(), DMSG_PTY_PORT).await?;
    let v = measure(n, "dmsg, one stream", || exec_true(&c)).await;
    c.close();
    v
}

// ---------------------------------------------------------------------------------------------
// OpenSSH

/// A throwaway `sshd -D` on a free loopback port; killed (and its control master told to exit)
/// on drop.
struct Sshd {
    child: Option<tokio::process::Child>,
    port: u16,
    user: String,
    key: PathBuf,
    control: PathBuf,
    log: PathBuf,
    /// Keys, config, log and control socket; removed on drop (after the processes stop).
    _dir: tempfile::TempDir,
}

impl Sshd {
    async fn start() -> Result<Sshd> {
        let dir = tempfile::tempdir()?;
        let p = |name: &str| dir.path().join(name);
        let keygen = |path: PathBuf| async move {
            run_ok(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(&path),
            )
            .await
            .with_context(|| format!("ssh-keygen {}", path.display()))
        };
        keygen(p("host_key")).await?;
        keygen(p("client_key")).await?;
        std::fs::copy(p("client_key.pub"), p("authorized_keys"))?;
        // sshd refuses to start without its privilege separation directory.
        if !Path::new("/run/sshd").exists() {
            std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
        }
        let config = format!(
            "HostKey {}\nListenAddress 127.0.0.1\nAuthorizedKeysFile {}\nPidFile {}\n\
             PermitRootLogin prohibit-password\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\n\
             UsePAM no\nUseDNS no\nPrintMotd no\nLogLevel ERROR\n",
            p("host_key").display(),
            p("authorized_keys").display(),
            p("sshd.pid").display(),
        );
        std::fs::write(p("sshd_config"), config)?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let log = p("sshd.log");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(p("sshd_config"))
            .args(["-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {SSHD}"))?;
        let user = if is_root() {
            "root".to_owned()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "root".to_owned())
        };
        let mut sshd = Sshd {
            child: Some(child),
            port,
            user,
            key: p("client_key"),
            control: p("cm"),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + READY;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            let exited = match sshd.child.as_mut() {
                Some(c) => c.try_wait()?,
                None => None,
            };
            if exited.is_some() || Instant::now() > deadline {
                bail!(
                    "sshd did not listen on 127.0.0.1:{port} (exit {exited:?}): {}",
                    sshd.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(sshd)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// `ssh` with the bench options, optionally through the control master.
    fn ssh(&self, reuse: bool) -> Command {
        let mut c = Command::new("ssh");
        c.args(["-F", "/dev/null", "-p", &self.port.to_string()])
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "BatchMode=yes"])
            .args(["-o", "IdentitiesOnly=yes"])
            .args(["-o", "LogLevel=ERROR"])
            .arg("-i")
            .arg(&self.key);
        if reuse {
            c.args(["-o", "ControlMaster=auto"])
                .arg("-o")
                .arg(format!("ControlPath={}", self.control.display()))
                .args(["-o", "ControlPersist=60"]);
        }
        c.arg(format!("{}@127.0.0.1", self.user));
        c
    }

    async fn bench(&self, reuse: bool, n: usize) -> Result<Vec<Duration>> {
        let what = if reuse { "ssh, ControlMaster" } else { "ssh" };
        measure(n, what, || {
            let mut c = self.ssh(reuse);
            c.arg("true");
            async move { run_ok(&mut c).await }
        })
        .await
        .with_context(|| format!("sshd log: {}", self.log_text()))
    }

    /// Tells the control master (if any) to exit; bounded, synchronous (used by `Drop`).
    fn stop_master(&self) {
        if !self.control.exists() {
            return;
        }
        let mut c = std::process::Command::new("ssh");
        c.args(["-F", "/dev/null", "-o"])
            .arg(format!("ControlPath={}", self.control.display()))
            .args(["-O", "exit"])
            .arg(format!("{}@127.0.0.1", self.user))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Ok(mut child) = c.spawn() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop_master();
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// Output

/// A row: name and either samples or why there are none.
type Row = (&'static str, std::result::Result<Vec<Duration>, String>);

fn print_table(rows: &[Row], ssh_p50: Option<f64>) {
    println!(
        "| `exec -- true` round trip, ms                    |   n |    p50 |    p90 |    p99 | p50 / ssh p50 |"
    );
    println!(
        "|--------------------------------------------------|----:|-------:|-------:|-------:|--------------:|"
    );
    for (name, r) in rows {
        match r {
            Ok(v) => {
                let p50 = pct_ms(v, 0.50);
                let ratio = ssh_p50.map_or("n/a".to_owned(), |s| format!("{:.4}", p50 / s));
                println!(
                    "| {name:<48} | {:>3} | {p50:>6.2} | {:>6.2} | {:>6.2} | {ratio:>13} |",
                    v.len(),
                    pct_ms(v, 0.90),
                    pct_ms(v, 0.99),
                );
            }
            Err(why) => println!("| {name:<48} |   - |      - |      - |      - | {why} |"),
        }
    }
}

fn usage() -> anyhow::Error {
    anyhow::anyhow!("usage: pty-bench [--n N]")
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = match args.as_slice() {
        [] => ITERATIONS,
        [flag, v] if flag == "--n" => v.parse().map_err(|_| usage())?,
        _ => return Err(usage()),
    };
    let bin = skywire_bin()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "pty-bench: {cores} cores, tokio 2 workers, up to {n} iterations or {CASE_TIME:?} per case (after 1 warm-up), all on 127.0.0.1"
    );
    let rows = rt.block_on(async {
        let sk = SecKey::generate();
        let host = TcpHost::start(&sk).await?;
        let lib_new = lib_new_conn(&host, &sk, n).await?;
        let lib_one = lib_reused(&host, &sk, n).await?;
        let cli = cli(&host, &sk, &bin, n).await?;
        host.handle.shutdown().await;

        let net = DmsgNet::start().await?;
        let dmsg_new = dmsg_new_stream(&net, n).await;
        let dmsg_one = if dmsg_new.is_ok() {
            dmsg_reused(&net, n).await
        } else {
            Ok(Vec::new())
        };
        net.stop().await?;
        let (dmsg_new, dmsg_one) = (dmsg_new?, dmsg_one?);

        let (ssh, ssh_cm) = if Path::new(SSHD).exists() {
            let sshd = Sshd::start().await?;
            let ssh = sshd.bench(false, n).await?;
            let cm = sshd.bench(true, n).await?;
            drop(sshd);
            (Ok(ssh), Ok(cm))
        } else {
            let na = "n/a (openssh-server not installed)".to_owned();
            (Err(na.clone()), Err(na))
        };
        let rows: Vec<Row> = vec![
            ("ssh, new connection", ssh),
            ("ssh, ControlMaster reuse", ssh_cm),
            ("library: connect_tcp + exec (new connection)", Ok(lib_new)),
            ("library: exec on one TCP connection", Ok(lib_one)),
            ("CLI process: `skywire cli pty exec --via tcp`", Ok(cli)),
            ("dmsg: new stream (dial + URI) + exec", Ok(dmsg_new)),
            ("dmsg: exec on one stream", Ok(dmsg_one)),
        ];
        Ok::<_, anyhow::Error>(rows)
    })?;
    let ssh_p50 = match &rows[0].1 {
        Ok(v) => Some(pct_ms(v, 0.50)),
        Err(_) => None,
    };
    println!();
    print_table(&rows, ssh_p50);
    Ok(())
}
