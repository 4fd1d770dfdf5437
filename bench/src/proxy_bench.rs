//! proxy-bench: skynet forwards and skysocks against the standard tools, in one run.
//!
//! Every path below delivers a local TCP address that reaches the same target servers on
//! 127.0.0.1 (a sink that counts to EOF and answers with the count, and a one-byte echo):
//!
//! 1. direct TCP to the target (the ceiling);
//! 2. skynet forward over the direct noise-XK TCP path (`Network::Direct`);
//! 3. skynet forward over a dmsg relay (in-process discovery + relay server);
//! 4. `ssh -N -L` through a throwaway `sshd -D` on loopback (temp host key, authorized_keys);
//! 5. `rathole` (server + client, default TCP transport: **no encryption**);
//! 6. SOCKS5: skysocks over the dmsg relay vs a direct TCP connection.
//!
//! Throughput: one connection writes `--mib` MiB (default 256) then half-closes; the rate is
//! bytes / time until the sink's count arrives. Connect latency: `--conns` (default 200)
//! sequential connections, each connect + 1-byte echo; p50/p90 in ms. Each forwarded
//! connection opens a fresh carrier (dmsg stream / noise handshake), as the 2026 client does.
//!
//! Run (release, one benchmark at a time on the machine):
//! `flock /work/wt/bench.lock cargo run --release -p skywire-bench --bin proxy-bench`

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use skywire_bench::{MIB, WRITE_SIZE};
use skywire_cipher::SecKey;
use skywire_proxy::skysocks::{self, SkysocksConfig};
use skywire_proxy::{Dialer, ForwardServer, ForwardServerConfig, Network};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

const READY: Duration = Duration::from_secs(30);

/// Sink: reads to EOF, answers the byte count (u64 BE).
async fn sink() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let a = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; WRITE_SIZE];
                let mut n = 0u64;
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(k) => n += k as u64,
                        Err(_) => return,
                    }
                }
                let _ = s.write_all(&n.to_be_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Ok(a)
}

/// Echo of single bytes.
async fn echo() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let a = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let mut b = [0u8; 1];
                while let Ok(1) = s.read(&mut b).await {
                    if s.write_all(&b).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(a)
}

async fn push<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, bytes: u64) -> Result<f64> {
    let chunk = vec![0x5au8; WRITE_SIZE];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        s.write_all(&chunk).await?;
        sent += chunk.len() as u64;
    }
    s.shutdown().await?;
    let mut cnt = [0u8; 8];
    s.read_exact(&mut cnt)
        .await
        .context("reading the sink's count")?;
    let got = u64::from_be_bytes(cnt);
    if got != sent {
        bail!("sink got {got} of {sent} bytes");
    }
    Ok(sent as f64 / MIB / start.elapsed().as_secs_f64())
}

async fn throughput(addr: SocketAddr, bytes: u64) -> Result<f64> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    push(s, bytes).await
}

async fn latency(addr: SocketAddr, n: usize) -> Result<(f64, f64)> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        s.write_all(b"x").await?;
        let mut b = [0u8; 1];
        tokio::time::timeout(READY, s.read_exact(&mut b))
            .await
            .context("echo timed out")??;
        v.push(t.elapsed());
    }
    v.sort();
    let pct = |p: f64| v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    Ok((pct(0.5), pct(0.9)))
}

/// Polls until a 1-byte echo works through `addr` (the echo target behind it).
async fn wait_echo(addr: SocketAddr, what: &str) -> Result<()> {
    let deadline = Instant::now() + READY;
    loop {
        if latency(addr, 1).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not come up on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `addr` accepts TCP connections.
async fn wait_port(addr: SocketAddr, what: &str) -> Result<()> {
    let deadline = Instant::now() + READY;
    while TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("{what} did not listen on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A forward client listener for `port` through `dialer`.
async fn forward(dialer: Dialer, pk: skywire_cipher::PubKey, port: u16) -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let a = l.local_addr()?;
    tokio::spawn(skywire_proxy::serve_forward_client(
        l,
        Arc::new(dialer),
        pk,
        port,
        true,
    ));
    Ok(a)
}

struct Procs(Vec<tokio::process::Child>, Vec<tempfile::TempDir>);
impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.start_kill();
        }
    }
}

async fn keygen(path: &Path) -> Result<()> {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .await?;
    if !st.success() {
        bail!("ssh-keygen failed");
    }
    Ok(())
}

/// `sshd -D` + `ssh -N -L <lport>:127.0.0.1:<target>`; returns the local port's address.
async fn ssh_forward(procs: &mut Procs, target: SocketAddr) -> Result<SocketAddr> {
    let dir = tempfile::tempdir()?;
    let p = |n: &str| dir.path().join(n);
    keygen(&p("host_key")).await?;
    keygen(&p("client_key")).await?;
    std::fs::copy(p("client_key.pub"), p("authorized_keys"))?;
    if !Path::new("/run/sshd").exists() {
        std::fs::create_dir_all("/run/sshd")?;
    }
    std::fs::write(
        p("sshd_config"),
        format!(
            "HostKey {}\nListenAddress 127.0.0.1\nAuthorizedKeysFile {}\nPidFile {}\n\
             PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nUseDNS no\nLogLevel ERROR\n\
             AllowTcpForwarding yes\n",
            p("host_key").display(),
            p("authorized_keys").display(),
            p("sshd.pid").display()
        ),
    )?;
    let sport = free_port()?;
    procs.0.push(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(p("sshd_config"))
            .args(["-p", &sport.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting /usr/sbin/sshd")?,
    );
    wait_port(SocketAddr::from(([127, 0, 0, 1], sport)), "sshd").await?;
    let lport = free_port()?;
    procs.0.push(
        Command::new("ssh")
            .args(["-F", "/dev/null", "-N", "-p", &sport.to_string()])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
            ])
            .arg("-i")
            .arg(p("client_key"))
            .arg("-L")
            .arg(format!("127.0.0.1:{lport}:{target}"))
            .arg("root@127.0.0.1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting ssh -L")?,
    );
    procs.1.push(dir);
    Ok(SocketAddr::from(([127, 0, 0, 1], lport)))
}

fn rathole_bin() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let p = home.join(".cargo/bin/rathole");
    if p.exists() {
        p
    } else {
        PathBuf::from("rathole")
    }
}

/// rathole server + client forwarding a fresh port to `target`.
async fn rathole_forward(procs: &mut Procs, target: SocketAddr) -> Result<SocketAddr> {
    let dir = tempfile::tempdir()?;
    let (ctl, lport) = (free_port()?, free_port()?);
    let srv = dir.path().join("server.toml");
    let cli = dir.path().join("client.toml");
    std::fs::write(
        &srv,
        format!(
            "[server]\nbind_addr = \"127.0.0.1:{ctl}\"\n[server.services.bench]\ntoken = \"bench\"\nbind_addr = \"127.0.0.1:{lport}\"\nnodelay = true\n"
        ),
    )?;
    std::fs::write(
        &cli,
        format!(
            "[client]\nremote_addr = \"127.0.0.1:{ctl}\"\n[client.services.bench]\ntoken = \"bench\"\nlocal_addr = \"{target}\"\nnodelay = true\n"
        ),
    )?;
    for (flag, path) in [("--server", &srv), ("--client", &cli)] {
        procs.0.push(
            Command::new(rathole_bin())
                .arg(flag)
                .arg(path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting rathole (cargo install rathole)")?,
        );
    }
    procs.1.push(dir);
    Ok(SocketAddr::from(([127, 0, 0, 1], lport)))
}

struct Row {
    name: &'static str,
    mib_s: f64,
    p50: f64,
    p90: f64,
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<()> {
    let bytes = arg("--mib", 256) * (1 << 20);
    let conns = arg("--conns", 200) as usize;
    let (sink_a, echo_a) = (sink().await?, echo().await?);
    let mut procs = Procs(Vec::new(), Vec::new());

    // skynet servers: direct noise TCP and dmsg.
    let srv_sk = SecKey::generate();
    let server = ForwardServer::new(ForwardServerConfig {
        ports: [sink_a.port(), echo_a.port()].into_iter().collect(),
        ..ForwardServerConfig::default()
    });
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let tcp_a = tcp.local_addr()?;
    tokio::spawn(server.clone().serve_direct(tcp, srv_sk.clone()));
    let direct = |book_sk: SecKey| {
        Dialer::new(Network::Direct {
            sk: book_sk,
            book: [(srv_sk.pub_key(), tcp_a)].into_iter().collect(),
            fallback: None,
        })
    };

    let relay =
        skywire_bench::LocalRelay::start(skywire_dmsg::mux::Config::default(), READY).await?;
    let a = relay.client(skywire_dmsg::mux::Config::default())?;
    let b = relay.client(skywire_dmsg::mux::Config::default())?;
    a.ready(READY).await?;
    b.ready(READY).await?;
    tokio::spawn(server.clone().serve_dmsg(a.listen(57)?));
    tokio::spawn(skysocks::serve_skysocks(
        a.listen(3)?,
        SkysocksConfig::default(),
    ));
    let dmsg = Dialer::new(Network::Dmsg(b.clone()));

    let mut rows = Vec::new();
    // Each path: (name, sink address, echo address).
    let mut targets: Vec<(&'static str, SocketAddr, SocketAddr)> =
        vec![("direct TCP", sink_a, echo_a)];
    let csk = SecKey::generate();
    targets.push((
        "skynet direct (noise-XK TCP)",
        forward(direct(csk.clone()), srv_sk.pub_key(), sink_a.port()).await?,
        forward(direct(csk), srv_sk.pub_key(), echo_a.port()).await?,
    ));
    targets.push((
        "skynet over dmsg relay",
        forward(dmsg.clone(), a.pk(), sink_a.port()).await?,
        forward(dmsg.clone(), a.pk(), echo_a.port()).await?,
    ));
    match (
        ssh_forward(&mut procs, sink_a).await,
        ssh_forward(&mut procs, echo_a).await,
    ) {
        (Ok(s), Ok(e)) => targets.push(("ssh -L (OpenSSH)", s, e)),
        (Err(e), _) | (_, Err(e)) => eprintln!("ssh -L skipped: {e:#}"),
    }
    match (
        rathole_forward(&mut procs, sink_a).await,
        rathole_forward(&mut procs, echo_a).await,
    ) {
        (Ok(s), Ok(e)) => targets.push(("rathole (plain TCP)", s, e)),
        (Err(e), _) | (_, Err(e)) => eprintln!("rathole skipped: {e:#}"),
    }
    for (name, s, e) in &targets {
        wait_echo(*e, name).await?;
        wait_port(*s, name).await?;
        let mib_s = throughput(*s, bytes)
            .await
            .with_context(|| format!("{name} throughput"))?;
        let (p50, p90) = latency(*e, conns)
            .await
            .with_context(|| format!("{name} latency"))?;
        eprintln!("{name}: {mib_s:.0} MiB/s, connect p50 {p50:.2} ms");
        rows.push(Row {
            name,
            mib_s,
            p50,
            p90,
        });
    }

    // SOCKS5 through skysocks (dmsg) vs direct.
    let conn = b.dial(skywire_dmsg::Addr::new(a.pk(), 3)).await?;
    let session = skysocks::client_session(conn);
    let socks_l = TcpListener::bind("127.0.0.1:0").await?;
    let socks_a = socks_l.local_addr()?;
    tokio::spawn(skysocks::serve_skysocks_client(
        session, socks_l, None, None,
    ));
    let s = fast_socks5::client::Socks5Stream::connect(
        socks_a,
        "127.0.0.1".to_owned(),
        sink_a.port(),
        Default::default(),
    )
    .await?;
    let socks_mib = push(s, bytes).await?;
    let mut socks_lat = Vec::new();
    for _ in 0..conns {
        let t = Instant::now();
        let mut s = fast_socks5::client::Socks5Stream::connect(
            socks_a,
            "127.0.0.1".to_owned(),
            echo_a.port(),
            Default::default(),
        )
        .await?;
        s.write_all(b"x").await?;
        let mut c = [0u8; 1];
        s.read_exact(&mut c).await?;
        socks_lat.push(t.elapsed());
    }
    socks_lat.sort();
    let pct = |p: f64| socks_lat[((socks_lat.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    rows.push(Row {
        name: "SOCKS5 via skysocks (dmsg)",
        mib_s: socks_mib,
        p50: pct(0.5),
        p90: pct(0.9),
    });

    let base = rows[0].mib_s;
    let ssh = rows
        .iter()
        .find(|r| r.name.starts_with("ssh"))
        .map(|r| (r.mib_s, r.p50));
    let rh = rows
        .iter()
        .find(|r| r.name.starts_with("rathole"))
        .map(|r| (r.mib_s, r.p50));
    println!(
        "| path | MiB/s | vs direct | vs ssh -L | vs rathole | connect p50 ms | p90 ms | p50 vs ssh -L |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let ratio = |o: Option<(f64, f64)>| {
            o.map_or("-".to_owned(), |(m, _)| format!("{:.2}x", r.mib_s / m))
        };
        println!(
            "| {} | {:.0} | {:.2}x | {} | {} | {:.2} | {:.2} | {} |",
            r.name,
            r.mib_s,
            r.mib_s / base,
            ratio(ssh),
            ratio(rh),
            r.p50,
            r.p90,
            ssh.map_or("-".to_owned(), |(_, p)| format!("{:.2}x", r.p50 / p)),
        );
    }
    println!(
        "\n{} MiB per throughput run, {conns} sequential connections for latency",
        bytes >> 20
    );
    drop(procs);
    a.close().await;
    b.close().await;
    Ok(())
}
