//! In-process throughput benchmark of `skywire_dmsg::mux` over a tokio TCP loopback pair,
//! compared with plain TCP in the same run.
//!
//! `cargo run --release -p skywire-dmsg --example mux_bench [-- SECONDS]`
//!
//! Every measurement is bounded in time (SECONDS, default 2) and in bytes (4 GiB per stream).

use skywire_dmsg::mux::{Config, Session};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNK: usize = 64 * 1024;
const MAX_BYTES_PER_STREAM: u64 = 4 << 30;

async fn tcp_pair() -> std::io::Result<(TcpStream, TcpStream)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let (c, s) = tokio::join!(TcpStream::connect(addr), l.accept());
    let (c, s) = (c?, s?.0);
    c.set_nodelay(true)?;
    s.set_nodelay(true)?;
    Ok((c, s))
}

/// Writes `chunk`-sized buffers until `deadline` (or the byte cap), then shuts down.
async fn pump<W: AsyncWrite + Unpin>(
    mut w: W,
    deadline: Instant,
    chunk: usize,
) -> std::io::Result<u64> {
    let buf = vec![0x5au8; chunk];
    let mut sent = 0u64;
    while Instant::now() < deadline && sent < MAX_BYTES_PER_STREAM {
        // 16 writes between clock reads
        for _ in 0..16 {
            w.write_all(&buf).await?;
            sent += chunk as u64;
        }
    }
    w.shutdown().await?;
    Ok(sent)
}

/// Reads until EOF.
async fn sink<R: AsyncRead + Unpin>(mut r: R) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(got);
        }
        got += n as u64;
    }
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

async fn bench_tcp(conns: usize, secs: Duration, chunk: usize) -> std::io::Result<f64> {
    let mut pairs = Vec::new();
    for _ in 0..conns {
        pairs.push(tcp_pair().await?);
    }
    let start = Instant::now();
    let deadline = start + secs;
    let mut tasks = Vec::new();
    for (c, s) in pairs {
        tasks.push(tokio::spawn(pump(c, deadline, chunk)));
        tasks.push(tokio::spawn(sink(s)));
    }
    let mut total = 0u64;
    for (i, t) in tasks.into_iter().enumerate() {
        let n = t.await.map_err(std::io::Error::other)??;
        if i % 2 == 1 {
            total += n;
        }
    }
    Ok(mib_s(total, start.elapsed()))
}

async fn bench_mux(streams: usize, secs: Duration, chunk: usize) -> std::io::Result<f64> {
    let (c, s) = tcp_pair().await?;
    let client = Session::client(c, Config::default());
    let server = Session::server(s, Config::default());
    let acceptor = tokio::spawn(async move {
        let mut sinks = Vec::new();
        for _ in 0..streams {
            let Some(st) = server.accept().await else {
                break;
            };
            sinks.push(tokio::spawn(sink(st)));
        }
        let mut total = 0u64;
        for t in sinks {
            total += t.await.map_err(std::io::Error::other)??;
        }
        Ok::<_, std::io::Error>((total, server))
    });
    let mut opened = Vec::new();
    for _ in 0..streams {
        opened.push(client.open_stream().await.map_err(std::io::Error::from)?);
    }
    let start = Instant::now();
    let deadline = start + secs;
    let pumps: Vec<_> = opened
        .into_iter()
        .map(|st| tokio::spawn(pump(st, deadline, chunk)))
        .collect();
    for p in pumps {
        p.await.map_err(std::io::Error::other)??;
    }
    let (total, server) = acceptor.await.map_err(std::io::Error::other)??;
    let elapsed = start.elapsed();
    client.close().await;
    drop(server);
    Ok(mib_s(total, elapsed))
}

async fn rtt_mux(rounds: usize) -> std::io::Result<Duration> {
    let (c, s) = tcp_pair().await?;
    let client = Session::client(c, Config::default());
    let server = Session::server(s, Config::default());
    let echo = tokio::spawn(async move {
        let mut st = server
            .accept()
            .await
            .ok_or(std::io::ErrorKind::NotConnected)?;
        let mut b = [0u8; 64];
        for _ in 0..rounds {
            st.read_exact(&mut b).await?;
            st.write_all(&b).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut st = client.open_stream().await.map_err(std::io::Error::from)?;
    let mut b = [7u8; 64];
    let start = Instant::now();
    for _ in 0..rounds {
        st.write_all(&b).await?;
        st.read_exact(&mut b).await?;
    }
    let d = start.elapsed() / rounds as u32;
    echo.await.map_err(std::io::Error::other)??;
    Ok(d)
}

async fn rtt_tcp(rounds: usize) -> std::io::Result<Duration> {
    let (mut c, mut s) = tcp_pair().await?;
    let echo = tokio::spawn(async move {
        let mut b = [0u8; 64];
        for _ in 0..rounds {
            s.read_exact(&mut b).await?;
            s.write_all(&b).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut b = [7u8; 64];
    let start = Instant::now();
    for _ in 0..rounds {
        c.write_all(&b).await?;
        c.read_exact(&mut b).await?;
    }
    let d = start.elapsed() / rounds as u32;
    echo.await.map_err(std::io::Error::other)??;
    Ok(d)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let secs = std::env::args()
        .nth(1)
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(2));
    println!(
        "mux_bench: {:?} per case, 2 tokio workers, TCP loopback",
        secs
    );
    println!("{:<44} {:>12}", "case", "MiB/s");
    let cases: [(&str, bool, usize, usize); 6] = [
        ("plain TCP, 1 connection, 64 KiB writes", false, 1, CHUNK),
        ("mux, 1 stream, 64 KiB writes", true, 1, CHUNK),
        ("plain TCP, 64 connections, 64 KiB writes", false, 64, CHUNK),
        ("mux, 64 streams, 64 KiB writes", true, 64, CHUNK),
        ("plain TCP, 1 connection, 1 KiB writes", false, 1, 1024),
        ("mux, 1 stream, 1 KiB writes", true, 1, 1024),
    ];
    for (name, mux, n, chunk) in cases {
        let v = if mux {
            bench_mux(n, secs, chunk).await?
        } else {
            bench_tcp(n, secs, chunk).await?
        };
        println!("{name:<44} {v:>12.0}");
    }
    let rounds = 20_000;
    println!(
        "{:<44} {:>9.1} µs",
        "plain TCP 64 B ping-pong RTT",
        rtt_tcp(rounds).await?.as_secs_f64() * 1e6
    );
    println!(
        "{:<44} {:>9.1} µs",
        "mux 64 B ping-pong RTT",
        rtt_mux(rounds).await?.as_secs_f64() * 1e6
    );
    Ok(())
}
