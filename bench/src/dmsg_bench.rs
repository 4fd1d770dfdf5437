//! dmsg benchmark. Run with:
//!
//! ```text
//! cargo run --release -p skywire-bench --bin dmsg-bench            # full run (about 30 s)
//! cargo run --release -p skywire-bench --bin dmsg-bench -- --quick # shorter cases, 1,000 sessions
//! cargo run --release -p skywire-bench --bin dmsg-bench -- --sessions 5000 --idle-rounds 5
//! ```
//!
//! Everything runs on 127.0.0.1 in one process (plus one child process for the idle clients): a
//! real discovery service (memory store), one relay server and two clients, as in
//! `crates/dmsg/tests/network.rs`. In one run it prints:
//!
//! 1. one-direction throughput: plain TCP, `NoiseStream` (XK) over TCP, one dmsg stream relayed
//!    client A -> server -> client B, and 8 concurrent relayed streams (aggregate);
//! 2. open latency (p50/p90/p99) of a dmsg dial over established sessions, of TCP connect + XK
//!    handshake and of a plain TCP connect, each also with a one-byte echo after it;
//! 3. memory of idle sessions: one relay server (this process) and 10,000 real dmsg sessions
//!    (TCP + XK + yamux client) opened from a child process (this binary re-executed with
//!    `--idle-clients`), so the server's RSS and live heap are measured alone; two rounds
//!    against the same server tell a leak from memory the allocator keeps.
//!
//! Every loop is bounded in count and in time.

use std::alloc::System;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use skywire_bench::{LocalRelay, MIB, Throughput, read_side, write_side};
use skywire_cipher::{PubKey, SecKey};
use skywire_disc::DiscHandle;
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Addr, Client, ServerConfig, ServerHandle, mux};
use skywire_noise::{DEFAULT_HANDSHAKE_TIMEOUT, Handshake, NoiseStream};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Application write size for the throughput cases.
/// Upper bound of bytes per throughput case (all streams together).
const MAX_BYTES: u64 = 64 << 30;
/// Concurrent streams of the aggregate case.
const STREAMS: usize = 8;
/// Bound on the whole idle-session case (child start to all sessions counted by the server).
const IDLE_CAP: Duration = Duration::from_secs(120);
/// Handshakes in flight while the child opens idle sessions.
const IDLE_CONCURRENCY: usize = 32;
/// Deadline of waits for the in-process network (registration, accept).
const READY: Duration = Duration::from_secs(10);
/// dmsg ports used by the benchmark listeners.
const SINK_PORT: u16 = 1;
const ECHO_PORT: u16 = 2;

/// Counts live heap bytes (requested sizes), so the idle case can tell a leak from memory the
/// allocator keeps. Costs a few atomic adds per allocation; the throughput loops hardly allocate.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes allocated and not yet freed, in KiB.
fn heap_kib() -> u64 {
    let s = GLOBAL.stats();
    (s.bytes_allocated.saturating_sub(s.bytes_deallocated) / 1024) as u64
}

#[derive(Debug, Clone, Copy)]
struct Params {
    /// Time budget per throughput case.
    case_time: Duration,
    /// Sequential opens per latency case.
    dials: usize,
    /// Time bound per latency case.
    dial_time: Duration,
    /// Idle sessions to open.
    sessions: usize,
    /// Rounds of the idle case against the same server (a second round tells allocator
    /// retention from a leak).
    idle_rounds: usize,
}

impl Params {
    fn full() -> Params {
        Params {
            case_time: Duration::from_millis(2500),
            dials: 500,
            dial_time: Duration::from_secs(20),
            sessions: 10_000,
            idle_rounds: 2,
        }
    }

    fn quick() -> Params {
        Params {
            case_time: Duration::from_millis(600),
            dials: 100,
            dial_time: Duration::from_secs(5),
            sessions: 1_000,
            idle_rounds: 2,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Throughput

/// Runs writer/reader pairs concurrently from a common start; aggregate bytes over the slowest
/// reader's time. Checks that every reader got what its writer sent.
async fn run_pairs<W, R>(pairs: Vec<(W, R)>, time: Duration, what: &str) -> Result<Throughput>
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
{
    let per_stream = MAX_BYTES / pairs.len().max(1) as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, r) in pairs {
        let writer = tokio::spawn(write_side(w, per_stream, time));
        let reader = tokio::spawn(read_side(r, start, MAX_BYTES));
        tasks.push((writer, reader));
    }
    let mut total = Throughput {
        bytes: 0,
        secs: 0.0,
    };
    for (writer, reader) in tasks {
        let t = reader.await??;
        let sent = writer.await??;
        if sent != t.bytes {
            bail!("{what}: sent {sent}, received {}", t.bytes);
        }
        total.bytes += t.bytes;
        total.secs = total.secs.max(t.secs);
    }
    Ok(total)
}

async fn tcp_pair() -> Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let a = a?;
    let (b, _) = b?;
    a.set_nodelay(true)?;
    b.set_nodelay(true)?;
    Ok((a, b))
}

async fn plain_tcp(p: Params) -> Result<Throughput> {
    let (a, b) = tcp_pair().await?;
    run_pairs(vec![(a, b)], p.case_time, "plain tcp").await
}

async fn noise_tcp(p: Params) -> Result<Throughput> {
    let (a, b) = tcp_pair().await?;
    let client_sk = SecKey::generate();
    let server_sk = SecKey::generate();
    let server_pk = server_sk.pub_key();
    let server = tokio::spawn(async move {
        NoiseStream::xk_responder(b, &server_sk, DEFAULT_HANDSHAKE_TIMEOUT).await
    });
    let client = NoiseStream::xk_initiator(a, &client_sk, server_pk, DEFAULT_HANDSHAKE_TIMEOUT)
        .await
        .context("client handshake")?;
    let server = server.await?.context("server handshake")?;
    run_pairs(vec![(client, server)], p.case_time, "noise").await
}

// ---------------------------------------------------------------------------------------------
// In-process dmsg network

#[derive(Debug)]
struct Net {
    disc: DiscHandle,
    server: ServerHandle,
    a: Client,
    b: Client,
}

impl Net {
    /// Discovery, one relay server and two clients with a session to it, all with `mux`.
    async fn start(mux_cfg: mux::Config) -> Result<Net> {
        let relay = LocalRelay::start(mux_cfg.clone(), READY).await?;
        let a = relay.client(mux_cfg.clone())?;
        let b = relay.client(mux_cfg.clone())?;
        let LocalRelay { disc, server } = relay;
        a.ready(READY).await.context("client A registration")?;
        b.ready(READY).await.context("client B registration")?;
        Ok(Net { disc, server, a, b })
    }

    async fn stop(self) -> Result<()> {
        self.a.close().await;
        self.b.close().await;
        self.server.shutdown().await;
        self.disc.shutdown().await?;
        Ok(())
    }
}

/// `n` relayed streams A -> B, all writing at once.
async fn relayed(net: &Net, n: usize, p: Params) -> Result<Throughput> {
    let mut l = net.b.listen(SINK_PORT)?;
    let to = Addr::new(net.b.pk(), SINK_PORT);
    let mut pairs = Vec::with_capacity(n);
    for _ in 0..n {
        let w = net.a.dial(to).await.context("dial")?;
        let r = tokio::time::timeout(READY, l.accept())
            .await
            .context("accept timed out")?
            .context("listener closed")?;
        pairs.push((w, r));
    }
    run_pairs(pairs, p.case_time, "relayed dmsg").await
}

// ---------------------------------------------------------------------------------------------
// Open latency

#[derive(Debug, Default)]
struct Latency {
    /// Time until the stream/connection is usable.
    open: Vec<Duration>,
    /// Open plus a one-byte echo.
    echo: Vec<Duration>,
}

impl Latency {
    fn sort(mut self) -> Latency {
        self.open.sort_unstable();
        self.echo.sort_unstable();
        self
    }
}

/// Nearest-rank percentile of sorted samples, in microseconds.
fn pct_us(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    let i = rank.saturating_sub(1).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e6
}

async fn echo_one<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Result<()> {
    s.write_all(&[0x42]).await?;
    s.flush().await?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    if b[0] != 0x42 {
        bail!("echo returned {:#x}", b[0]);
    }
    Ok(())
}

/// Answers one echo on `s`, then waits for the peer to close.
async fn serve_echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut b = [0u8; 1];
    if s.read_exact(&mut b).await.is_ok() && s.write_all(&b).await.is_ok() {
        let _ = s.flush().await;
        let mut rest = [0u8; 64];
        while matches!(s.read(&mut rest).await, Ok(n) if n > 0) {}
    }
}

/// Sequential dmsg dials A -> B over the established sessions.
async fn dial_latency(net: &Net, p: Params) -> Result<Latency> {
    let mut l = net.b.listen(ECHO_PORT)?;
    let echo = tokio::spawn(async move {
        while let Some(s) = l.accept().await {
            tokio::spawn(serve_echo(s));
        }
    });
    let to = Addr::new(net.b.pk(), ECHO_PORT);
    let mut lat = Latency::default();
    let start = Instant::now();
    while lat.open.len() < p.dials && start.elapsed() < p.dial_time {
        let t0 = Instant::now();
        let mut s = net.a.dial(to).await.context("dial")?;
        let t1 = Instant::now();
        echo_one(&mut s).await.context("dmsg echo")?;
        let t2 = Instant::now();
        lat.open.push(t1 - t0);
        lat.echo.push(t2 - t0);
    }
    echo.abort();
    Ok(lat.sort())
}

/// Sequential discovery look-ups of B's entry (part of every dial).
async fn disc_latency(net: &Net, p: Params) -> Result<Latency> {
    let dc = DiscClient::new(&net.disc.url())?;
    let pk = net.b.pk();
    let mut lat = Latency::default();
    let start = Instant::now();
    while lat.open.len() < p.dials && start.elapsed() < p.dial_time {
        let t0 = Instant::now();
        dc.entry(&pk).await?;
        lat.open.push(t0.elapsed());
    }
    Ok(lat.sort())
}

/// Sequential TCP connects, optionally followed by an XK handshake, each with a one-byte echo.
async fn tcp_latency(p: Params, noise: bool) -> Result<Latency> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server_sk = SecKey::generate();
    let server_pk = server_sk.pub_key();
    let server = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let sk = server_sk.clone();
            tokio::spawn(async move {
                let _ = sock.set_nodelay(true);
                if noise {
                    if let Ok(s) =
                        NoiseStream::xk_responder(sock, &sk, DEFAULT_HANDSHAKE_TIMEOUT).await
                    {
                        serve_echo(s).await;
                    }
                } else {
                    serve_echo(sock).await;
                }
            });
        }
    });
    let client_sk = SecKey::generate();
    let mut lat = Latency::default();
    let start = Instant::now();
    while lat.open.len() < p.dials && start.elapsed() < p.dial_time {
        let t0 = Instant::now();
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        if noise {
            let mut s =
                NoiseStream::xk_initiator(sock, &client_sk, server_pk, DEFAULT_HANDSHAKE_TIMEOUT)
                    .await?;
            let t1 = Instant::now();
            echo_one(&mut s).await?;
            lat.open.push(t1 - t0);
        } else {
            let mut s = sock;
            let t1 = Instant::now();
            echo_one(&mut s).await?;
            lat.open.push(t1 - t0);
        }
        lat.echo.push(t0.elapsed());
    }
    server.abort();
    Ok(lat.sort())
}

// ---------------------------------------------------------------------------------------------
// Idle sessions

/// VmRSS of a process in KiB (`/proc/<pid>/status`).
fn rss_kib(pid: Option<u32>) -> Result<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .with_context(|| format!("no VmRSS in {path}"))?;
    let kib = line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("bad VmRSS line {line:?}"))?
        .parse()?;
    Ok(kib)
}

/// Raises the soft RLIMIT_NOFILE so that `need` descriptors fit.
fn ensure_fds(need: u64) -> Result<u64> {
    let got = rlimit::increase_nofile_limit(need).context("raising RLIMIT_NOFILE")?;
    if got < need {
        bail!(
            "RLIMIT_NOFILE is {got} (hard limit), {need} needed: use fewer --sessions or raise the hard limit"
        );
    }
    Ok(got)
}

/// One round: the child opens the sessions, the server counts them, the child exits.
#[derive(Debug)]
struct IdleRound {
    opened: usize,
    failed: usize,
    counted: usize,
    setup_secs: f64,
    /// Server process RSS with the sessions open / after they all closed.
    with_kib: u64,
    closed_kib: u64,
    /// Server process live heap with the sessions open / after they closed.
    heap_with_kib: u64,
    heap_closed_kib: u64,
    /// Child process RSS at its start and with the sessions open.
    client_base_kib: u64,
    client_kib: u64,
    /// Child process live heap at its start and with the sessions open.
    client_heap_base_kib: u64,
    client_heap_kib: u64,
    drained_secs: f64,
    /// Tokio tasks alive in this process with the sessions open / after they closed.
    tasks_with: usize,
    tasks_closed: usize,
}

#[derive(Debug)]
struct IdleResult {
    target: usize,
    server_before_kib: u64,
    heap_before_kib: u64,
    rounds: Vec<IdleRound>,
}

/// The child side: opens `n` real dmsg client sessions (TCP, XK initiator, yamux client) to
/// `addr`, each with its own key, reports `opened <ok> <failed> <secs> <base_rss_kib> <base_heap_kib> <heap_kib>`, and holds
/// them until its stdin closes.
async fn idle_clients(addr: String, server: PubKey, n: usize) -> Result<()> {
    ensure_fds(n as u64 + 256)?;
    let base = rss_kib(None)?;
    let heap_base = heap_kib();
    let sessions: Arc<Mutex<Vec<mux::Session>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + IDLE_CAP - Duration::from_secs(10);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IDLE_CONCURRENCY.min(n.max(1)) {
        let (addr, sessions, next, failed) =
            (addr.clone(), sessions.clone(), next.clone(), failed.clone());
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n && Instant::now() < deadline {
                match open_idle_session(&addr, server).await {
                    Ok(s) => sessions
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(s),
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let secs = start.elapsed().as_secs_f64();
    let ok = sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len();
    println!(
        "opened {ok} {} {secs:.3} {base} {heap_base} {}",
        failed.load(Ordering::Relaxed),
        heap_kib()
    );
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    // Exit without tearing 10k sessions down one by one; the kernel closes the sockets.
    std::process::exit(0)
}

async fn open_idle_session(addr: &str, server: PubKey) -> Result<mux::Session> {
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let sk = SecKey::generate();
    let mut hs = Handshake::xk_initiator(&sk, server)?;
    tokio::time::timeout(
        DEFAULT_HANDSHAKE_TIMEOUT,
        skywire_noise::stream::drive_framed_handshake(&mut tcp, &mut hs),
    )
    .await
    .context("handshake timed out")??;
    // The session-object keys; an idle client never uses them.
    drop(hs.into_transport()?);
    Ok(mux::Session::client(tcp, mux::Config::default()))
}

/// The parent side: a relay server here, the clients in a child process. Two rounds against
/// the same server: the second tells allocator retention (RSS back to the first round's peak)
/// from a leak (RSS grows again).
async fn idle_sessions(p: Params) -> Result<IdleResult> {
    let n = p.sessions;
    ensure_fds(n as u64 + 256)?;
    let mut cfg = ServerConfig::new(SecKey::generate());
    cfg.local_addr = "127.0.0.1:0".parse()?;
    cfg.max_sessions = n + 64;
    let server = ServerHandle::start(cfg).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server_before_kib = rss_kib(None)?;
    let heap_before_kib = heap_kib();
    let mut rounds = Vec::new();
    for _ in 0..p.idle_rounds.max(1) {
        rounds.push(idle_round(&server, n).await?);
    }
    server.shutdown().await;
    Ok(IdleResult {
        target: n,
        server_before_kib,
        heap_before_kib,
        rounds,
    })
}

async fn idle_round(server: &ServerHandle, n: usize) -> Result<IdleRound> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .arg("--idle-clients")
        .arg(server.local_addr().to_string())
        .arg(server.pk().to_hex())
        .arg(n.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the idle-client child")?;
    let child_pid = child.id().context("child pid")?;
    let stdout = child.stdout.take().context("child stdout")?;
    let start = Instant::now();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(IDLE_CAP, lines.next_line())
        .await
        .context("the idle-client child did not finish within the cap")??
        .context("the idle-client child exited without a report")?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let [tag, ok, failed, secs, base, heap_base, heap] = f.as_slice() else {
        bail!("unexpected child report {line:?}");
    };
    if *tag != "opened" {
        bail!("unexpected child report {line:?}");
    }
    let (opened, failed): (usize, usize) = (ok.parse()?, failed.parse()?);
    let (setup_secs, client_base_kib): (f64, u64) = (secs.parse()?, base.parse()?);
    let (client_heap_base_kib, client_heap_kib): (u64, u64) = (heap_base.parse()?, heap.parse()?);
    // The server counts a session once its handshake is done; wait for the last ones.
    while server.session_count() < opened && start.elapsed() < IDLE_CAP {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counted = server.session_count();
    // Let allocations settle (handshake buffers freed, tasks parked).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_kib = rss_kib(None)?;
    let heap_with_kib = heap_kib();
    let tasks_with = alive_tasks();
    let client_kib = rss_kib(Some(child_pid))?;

    drop(child.stdin.take());
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .context("the idle-client child did not exit")??;
    let t = Instant::now();
    while server.session_count() > 0 && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained_secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let closed_kib = rss_kib(None)?;
    let heap_closed_kib = heap_kib();
    let tasks_closed = alive_tasks();
    Ok(IdleRound {
        opened,
        failed,
        counted,
        setup_secs,
        with_kib,
        closed_kib,
        heap_with_kib,
        heap_closed_kib,
        client_base_kib,
        client_kib,
        client_heap_base_kib,
        client_heap_kib,
        drained_secs,
        tasks_with,
        tasks_closed,
    })
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

// ---------------------------------------------------------------------------------------------
// Output

fn print_throughput(rows: &[(&str, Throughput)], tcp: Throughput, noise: Throughput) {
    println!(
        "| throughput, one direction, loopback        |      MiB |  secs |    MiB/s | / TCP | / noise |"
    );
    println!(
        "|--------------------------------------------|---------:|------:|---------:|------:|--------:|"
    );
    for (name, t) in rows {
        println!(
            "| {name:<42} | {:>8.0} | {:>5.2} | {:>8.1} | {:>5.2} | {:>7.2} |",
            t.bytes as f64 / MIB,
            t.secs,
            t.mib_s(),
            t.mib_s() / tcp.mib_s(),
            t.mib_s() / noise.mib_s(),
        );
    }
}

fn print_latency(rows: &[(&str, &Latency)], dmsg_open_p50: f64) {
    println!(
        "| open latency (sequential), µs              |   n | open p50 |   p90 |   p99 | +1B echo p50 |   p90 |   p99 | dmsg/this (p50) |"
    );
    println!(
        "|--------------------------------------------|----:|---------:|------:|------:|-------------:|------:|------:|----------------:|"
    );
    for (name, l) in rows {
        let (e50, e90, e99) = if l.echo.is_empty() {
            ("-".to_string(), "-".to_string(), "-".to_string())
        } else {
            (
                format!("{:.0}", pct_us(&l.echo, 0.50)),
                format!("{:.0}", pct_us(&l.echo, 0.90)),
                format!("{:.0}", pct_us(&l.echo, 0.99)),
            )
        };
        let open50 = pct_us(&l.open, 0.50);
        println!(
            "| {name:<42} | {:>3} | {open50:>8.0} | {:>5.0} | {:>5.0} | {e50:>12} | {e90:>5} | {e99:>5} | {:>15.1} |",
            l.open.len(),
            pct_us(&l.open, 0.90),
            pct_us(&l.open, 0.99),
            dmsg_open_p50 / open50,
        );
    }
}

fn print_idle(r: &IdleResult) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let per = |kib: u64, base: u64, n: usize| kib.saturating_sub(base) as f64 / n.max(1) as f64;
    let col = |f: &dyn Fn(&IdleRound) -> String| -> String {
        r.rounds.iter().map(f).collect::<Vec<_>>().join(" | ")
    };
    let heads: Vec<String> = (1..=r.rounds.len()).map(|i| format!("round {i}")).collect();
    let rules: Vec<&str> = r.rounds.iter().map(|_| "--------:").collect();
    println!(
        "| {:<50} | {} |",
        format!("idle dmsg sessions, one relay server ({} wanted)", r.target),
        heads.join(" | ")
    );
    println!("|{}|{}|", "-".repeat(52), rules.join("|"));
    let row = |name: &str, f: &dyn Fn(&IdleRound) -> String| {
        println!("| {name:<50} | {} |", col(f));
    };
    row("opened / failed (child)", &|x| {
        format!("{} / {}", x.opened, x.failed)
    });
    row("server `session_count()` after setup", &|x| {
        x.counted.to_string()
    });
    row(
        &format!("setup time, s ({IDLE_CONCURRENCY} handshakes in flight)"),
        &|x| format!("{:.2}", x.setup_secs),
    );
    row("session setups per second", &|x| {
        format!("{:.0}", x.opened as f64 / x.setup_secs)
    });
    row(
        &format!(
            "server RSS with sessions, MiB (before: {:.1})",
            mib(r.server_before_kib)
        ),
        &|x| format!("{:.1}", mib(x.with_kib)),
    );
    row("**server RSS per idle session, KiB**", &|x| {
        format!("**{:.1}**", per(x.with_kib, r.server_before_kib, x.counted))
    });
    row("server live heap per idle session, KiB (requested)", &|x| {
        format!("{:.1}", per(x.heap_with_kib, r.heap_before_kib, x.counted))
    });
    row("client child RSS / live heap per session, KiB", &|x| {
        format!(
            "{:.1} / {:.1}",
            per(x.client_kib, x.client_base_kib, x.opened),
            per(x.client_heap_kib, x.client_heap_base_kib, x.opened)
        )
    });
    row("server RSS after all sessions closed, MiB", &|x| {
        format!("{:.1}", mib(x.closed_kib))
    });
    row(
        &format!(
            "server live heap after close, MiB (before: {:.1})",
            mib(r.heap_before_kib)
        ),
        &|x| format!("{:.1}", mib(x.heap_closed_kib)),
    );
    row("tokio tasks alive with sessions / after close", &|x| {
        format!("{} / {}", x.tasks_with, x.tasks_closed)
    });
    row("time for the server to drop them all, s", &|x| {
        format!("{:.2}", x.drained_secs)
    });
}

// ---------------------------------------------------------------------------------------------

fn usage() -> anyhow::Error {
    anyhow::anyhow!("usage: dmsg-bench [--quick] [--sessions N] [--idle-rounds N]")
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // Child mode: hold idle sessions for the parent's server.
    if args.first().map(String::as_str) == Some("--idle-clients") {
        let [_, addr, pk, n] = args.as_slice() else {
            bail!("usage: dmsg-bench --idle-clients ADDR SERVER_PK N");
        };
        let pk = PubKey::from_hex(pk)?;
        let n: usize = n.parse()?;
        return rt.block_on(idle_clients(addr.clone(), pk, n));
    }

    let mut p = Params::full();
    let mut sessions = None;
    let mut rounds = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => p = Params::quick(),
            "--sessions" => sessions = Some(it.next().ok_or_else(usage)?.parse::<usize>()?),
            "--idle-rounds" => rounds = Some(it.next().ok_or_else(usage)?.parse::<usize>()?),
            _ => return Err(usage()),
        }
    }
    if let Some(n) = sessions {
        p.sessions = n;
    }
    if let Some(n) = rounds {
        p.idle_rounds = n;
    }

    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "dmsg-bench: {cores} cores, tokio 2 workers, {:?} per throughput case, {} sequential opens per latency case, {} idle sessions",
        p.case_time, p.dials, p.sessions
    );

    // Idle sessions first, while this process's heap is fresh (a heap grown by the throughput
    // cases would hide part of the sessions' growth).
    let idle = rt.block_on(idle_sessions(p))?;

    let tcp = rt.block_on(plain_tcp(p))?;
    let noise = rt.block_on(noise_tcp(p))?;
    let (one, many, dial, disc) = rt.block_on(async {
        let net = Net::start(mux::Config::default()).await?;
        let one = relayed(&net, 1, p).await?;
        let many = relayed(&net, STREAMS, p).await?;
        let dial = dial_latency(&net, p).await?;
        let disc = disc_latency(&net, p).await?;
        net.stop().await?;
        Ok::<_, anyhow::Error>((one, many, dial, disc))
    })?;
    let wide = rt.block_on(async {
        let cfg = mux::Config {
            max_stream_window: 1024 * 1024,
            ..mux::Config::default()
        };
        let net = Net::start(cfg).await?;
        let t = relayed(&net, 1, p).await?;
        net.stop().await?;
        Ok::<_, anyhow::Error>(t)
    })?;
    let tcp_lat = rt.block_on(tcp_latency(p, false))?;
    let xk_lat = rt.block_on(tcp_latency(p, true))?;

    println!();
    print_throughput(
        &[
            ("plain TCP", tcp),
            ("NoiseStream (XK) over TCP", noise),
            ("dmsg relayed A->server->B, 1 stream", one),
            ("dmsg relayed, 8 streams (aggregate)", many),
            ("dmsg relayed, 1 stream, 1 MiB yamux window", wide),
        ],
        tcp,
        noise,
    );
    println!();
    println!(
        "relayed/noise: 1 stream {:.2}, 8 streams {:.2}; relayed/TCP: 1 stream {:.2}, 8 streams {:.2}",
        one.mib_s() / noise.mib_s(),
        many.mib_s() / noise.mib_s(),
        one.mib_s() / tcp.mib_s(),
        many.mib_s() / tcp.mib_s(),
    );
    println!();
    let dmsg_p50 = pct_us(&dial.open, 0.50);
    print_latency(
        &[
            ("dmsg dial over established session", &dial),
            ("  of which: discovery entry GET (HTTP)", &disc),
            ("TCP connect + XK handshake", &xk_lat),
            ("TCP connect", &tcp_lat),
        ],
        dmsg_p50,
    );
    println!();
    print_idle(&idle);
    Ok(())
}
