//! Noise layer benchmark. Run with:
//!
//! ```text
//! cargo run --release -p skywire-bench --bin noise-bench
//! ```
//!
//! Over loopback TCP, in one run: plain TCP throughput, `NoiseStream` throughput (one
//! direction), the single-core ChaCha20-Poly1305 limit for 4070-byte frames (in memory, no I/O),
//! and XK handshakes per second (in memory and over loopback TCP). Every loop is bounded in
//! count and in time (about 3 s per throughput case), so the whole run takes well under a minute.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use skywire_bench::{MIB, Throughput, read_side, write_side};
use skywire_cipher::SecKey;
use skywire_noise::{
    DEFAULT_HANDSHAKE_TIMEOUT, Handshake, MAX_PLAINTEXT_PER_FRAME, NoiseStream, Transport,
};
use tokio::net::{TcpListener, TcpStream};

/// Upper bound of bytes per throughput case.
const MAX_BYTES: u64 = 64 << 30;
/// Time budget per throughput case.
const CASE_TIME: Duration = Duration::from_secs(3);
/// Application write size for the stream cases.
/// Handshake cases: time budget and count bound.
const HS_TIME: Duration = Duration::from_secs(2);
const HS_MAX: u32 = 100_000;

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

async fn plain_tcp() -> Result<Throughput> {
    let (a, b) = tcp_pair().await?;
    let start = Instant::now();
    let writer = tokio::spawn(write_side(a, MAX_BYTES, CASE_TIME));
    let t = read_side(b, start, MAX_BYTES).await?;
    let sent = writer.await??;
    if sent != t.bytes {
        bail!("plain tcp: sent {sent}, received {}", t.bytes);
    }
    Ok(t)
}

async fn noise_tcp() -> Result<Throughput> {
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
    let start = Instant::now();
    let writer = tokio::spawn(write_side(client, MAX_BYTES, CASE_TIME));
    let t = read_side(server, start, MAX_BYTES).await?;
    let sent = writer.await??;
    if sent != t.bytes {
        bail!("noise: sent {sent}, received {}", t.bytes);
    }
    Ok(t)
}

/// Single-core ChaCha20-Poly1305 limit: encrypt 4070-byte frames into a reused buffer.
fn chacha_limit() -> Result<(Throughput, Throughput)> {
    let key_a = [7u8; 32];
    let key_b = [9u8; 32];
    let mut tx = Transport::from_keys(&key_a, &key_b)?;
    let rx = Transport::from_keys(&key_b, &key_a)?;
    let pt = vec![0x42u8; MAX_PLAINTEXT_PER_FRAME];
    let mut out = Vec::with_capacity(MAX_PLAINTEXT_PER_FRAME + 26);
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut frames = 0u64;
    while bytes < MAX_BYTES && (!frames.is_multiple_of(256) || start.elapsed() < CASE_TIME) {
        out.clear();
        tx.encrypt_frame(&pt, &mut out)?;
        bytes += pt.len() as u64;
        frames += 1;
    }
    let enc = Throughput {
        bytes,
        secs: start.elapsed().as_secs_f64(),
    };
    // Decrypt limit: re-encrypt one frame per nonce would double the work, so decrypt a fresh
    // frame stream with the same bounds (frames encrypted up front in a small ring).
    let ring: Vec<Vec<u8>> = (0..64)
        .map(|_| {
            let mut w = Vec::new();
            tx.encrypt_frame(&pt, &mut w).map(|_| w)
        })
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut i = 0usize;
    let mut scratch = vec![0u8; ring[0].len()];
    while bytes < MAX_BYTES && (!i.is_multiple_of(256) || start.elapsed() < CASE_TIME / 2) {
        // Open as session objects (no ordering check) so the ring can repeat.
        scratch.copy_from_slice(&ring[i % ring.len()]);
        let (_, p) = rx.open_object(&mut scratch[2..])?;
        bytes += p.len() as u64;
        i += 1;
    }
    let dec = Throughput {
        bytes,
        secs: start.elapsed().as_secs_f64(),
    };
    Ok((enc, dec))
}

/// The same frame encryption with the pure-Rust `chacha20poly1305` crate (the alternative
/// backend), in place into a reused buffer.
fn rustcrypto_limit() -> Result<Throughput> {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
    let aead = ChaCha20Poly1305::new_from_slice(&[7u8; 32])
        .map_err(|_| anyhow::anyhow!("bad key length"))?;
    let pt = vec![0x42u8; MAX_PLAINTEXT_PER_FRAME];
    let mut buf = pt.clone();
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut n = 0u64;
    while bytes < MAX_BYTES && (!n.is_multiple_of(256) || start.elapsed() < CASE_TIME / 2) {
        n += 1;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&n.to_le_bytes());
        buf.copy_from_slice(&pt);
        aead.encrypt_in_place_detached(&nonce.into(), &[], &mut buf)
            .map_err(|_| anyhow::anyhow!("encrypt"))?;
        bytes += pt.len() as u64;
    }
    Ok(Throughput {
        bytes,
        secs: start.elapsed().as_secs_f64(),
    })
}

/// The same frame encryption through snow's `StatelessTransportState` (what crates.md suggested),
/// for comparison with our direct use of the `chacha20poly1305` crate.
fn snow_stateless_limit() -> Result<Throughput> {
    let params: snow::params::NoiseParams = "Noise_NN_25519_ChaChaPoly_SHA256".parse()?;
    let mut i = snow::Builder::new(params.clone()).build_initiator()?;
    let mut r = snow::Builder::new(params).build_responder()?;
    let mut m = [0u8; 128];
    let mut p = [0u8; 128];
    let n = i.write_message(&[], &mut m)?;
    r.read_message(&m[..n], &mut p)?;
    let n = r.write_message(&[], &mut m)?;
    i.read_message(&m[..n], &mut p)?;
    let tx = i.into_stateless_transport_mode()?;
    let pt = vec![0x42u8; MAX_PLAINTEXT_PER_FRAME];
    let mut out = vec![0u8; MAX_PLAINTEXT_PER_FRAME + 16];
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut nonce = 0u64;
    while bytes < MAX_BYTES && (!nonce.is_multiple_of(256) || start.elapsed() < CASE_TIME / 2) {
        nonce += 1;
        tx.write_message(nonce, &pt, &mut out)?;
        bytes += pt.len() as u64;
    }
    Ok(Throughput {
        bytes,
        secs: start.elapsed().as_secs_f64(),
    })
}

fn handshake_in_memory() -> Result<(u32, f64)> {
    let client = SecKey::generate();
    let server = SecKey::generate();
    let server_pk = server.pub_key();
    let start = Instant::now();
    let mut n = 0u32;
    let mut m = Vec::with_capacity(128);
    while n < HS_MAX && start.elapsed() < HS_TIME {
        let mut i = Handshake::xk_initiator(&client, server_pk)?;
        let mut r = Handshake::xk_responder(&server)?;
        for step in 0..3 {
            m.clear();
            if step % 2 == 0 {
                i.write_message(&[], &mut m)?;
                r.read_message(&m)?;
            } else {
                r.write_message(&[], &mut m)?;
                i.read_message(&m)?;
            }
        }
        let _ = (i.into_transport()?, r.into_transport()?);
        n += 1;
    }
    Ok((n, start.elapsed().as_secs_f64()))
}

async fn handshake_tcp() -> Result<(u32, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server_sk = SecKey::generate();
    let server_pk = server_sk.pub_key();
    let server = tokio::spawn(async move {
        let mut done = 0u32;
        loop {
            let (sock, _) = listener.accept().await?;
            sock.set_nodelay(true)?;
            let s = NoiseStream::xk_responder(sock, &server_sk, DEFAULT_HANDSHAKE_TIMEOUT).await;
            match s {
                Ok(_) => done += 1,
                // The client signals the end with a connection it closes at once.
                Err(_) => return Ok::<u32, anyhow::Error>(done),
            }
        }
    });
    let client_sk = SecKey::generate();
    let start = Instant::now();
    let mut n = 0u32;
    while n < HS_MAX && start.elapsed() < HS_TIME {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        NoiseStream::xk_initiator(sock, &client_sk, server_pk, DEFAULT_HANDSHAKE_TIMEOUT).await?;
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(TcpStream::connect(addr).await?);
    let served = server.await??;
    if served != n {
        bail!("server completed {served} handshakes, client {n}");
    }
    Ok((n, secs))
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "noise-bench: {cores} cores, {CASE_TIME:?} or {} GiB per throughput case",
        MAX_BYTES >> 30
    );

    let plain = rt.block_on(plain_tcp())?;
    let noise = rt.block_on(noise_tcp())?;
    let (enc, dec) = chacha_limit()?;
    let rc_enc = rustcrypto_limit()?;
    let snow_enc = snow_stateless_limit()?;
    let (hs_mem, hs_mem_s) = handshake_in_memory()?;
    let (hs_tcp, hs_tcp_s) = rt.block_on(handshake_tcp())?;

    println!();
    println!(
        "| case                                    |      MiB |   secs |    MiB/s | noise/plain | noise/chacha |"
    );
    println!(
        "|-----------------------------------------|---------:|-------:|---------:|------------:|-------------:|"
    );
    let row = |name: &str, t: &Throughput, ratios: bool| {
        let (a, b) = if ratios {
            (
                format!("{:.2}", noise.mib_s() / plain.mib_s()),
                format!("{:.2}", noise.mib_s() / enc.mib_s()),
            )
        } else {
            (String::new(), String::new())
        };
        println!(
            "| {name:<39} | {:>8.0} | {:>6.2} | {:>8.1} | {a:>11} | {b:>12} |",
            t.bytes as f64 / MIB,
            t.secs,
            t.mib_s()
        );
    };
    row("plain TCP loopback (1 direction)", &plain, false);
    row("NoiseStream over TCP (1 direction)", &noise, true);
    row("ChaCha20-Poly1305 encrypt (ours, ring)", &enc, false);
    row("ChaCha20-Poly1305 decrypt (ours, ring)", &dec, false);
    row("encrypt, RustCrypto chacha20poly1305", &rc_enc, false);
    row("encrypt, snow StatelessTransportState", &snow_enc, false);
    println!();
    println!("| handshake case                 | count |  secs | handshakes/s |");
    println!("|--------------------------------|------:|------:|-------------:|");
    println!(
        "| XK in memory (both sides)      | {hs_mem:>5} | {hs_mem_s:>5.2} | {:>12.0} |",
        f64::from(hs_mem) / hs_mem_s
    );
    println!(
        "| XK over loopback TCP (framed)  | {hs_tcp:>5} | {hs_tcp_s:>5.2} | {:>12.0} |",
        f64::from(hs_tcp) / hs_tcp_s
    );
    Ok(())
}
