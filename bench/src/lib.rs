//! Shared pieces of the benchmark binaries: the one-direction throughput driver (a writer that
//! stops at a byte or time budget, a reader that counts to EOF) and its result type.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes per MiB.
pub const MIB: f64 = 1024.0 * 1024.0;
/// Size of each write (and of the reader's buffer).
pub const WRITE_SIZE: usize = 256 * 1024;

/// Bytes moved and the seconds it took.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Bytes received.
    pub bytes: u64,
    /// Seconds from the start to EOF.
    pub secs: f64,
}

impl Throughput {
    /// MiB per second.
    pub fn mib_s(&self) -> f64 {
        self.bytes as f64 / MIB / self.secs
    }
}

/// Writes `WRITE_SIZE` chunks until `max` bytes or `time` are spent, then shuts down.
pub async fn write_side<W: AsyncWrite + Unpin>(mut w: W, max: u64, time: Duration) -> Result<u64> {
    let chunk = vec![0x5au8; WRITE_SIZE];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < max && start.elapsed() < time {
        w.write_all(&chunk).await?;
        sent += chunk.len() as u64;
    }
    w.shutdown().await?;
    Ok(sent)
}

/// Reads to EOF; returns the bytes and the seconds from `start` to EOF. More than `max` plus one
/// write is an error (the writer never sends that much).
pub async fn read_side<R: AsyncRead + Unpin>(
    mut r: R,
    start: Instant,
    max: u64,
) -> Result<Throughput> {
    let mut buf = vec![0u8; WRITE_SIZE];
    let mut got = 0u64;
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got += n as u64;
        if got > max + WRITE_SIZE as u64 {
            bail!("reader got more than was sent");
        }
    }
    Ok(Throughput {
        bytes: got,
        secs: start.elapsed().as_secs_f64(),
    })
}

/// A discovery (memory store, test mode) and one relay server on 127.0.0.1, the server already
/// listed in discovery: the in-process dmsg network the dmsg and pty benchmarks measure on.
#[derive(Debug)]
pub struct LocalRelay {
    /// The discovery service.
    pub disc: skywire_disc::DiscHandle,
    /// The relay server.
    pub server: skywire_dmsg::ServerHandle,
}

impl LocalRelay {
    /// Starts both and waits (up to `ready`) until the server is listed.
    pub async fn start(mux: skywire_dmsg::mux::Config, ready: Duration) -> Result<LocalRelay> {
        use anyhow::Context;
        use skywire_dmsg::disc::DiscClient;
        let disc = skywire_disc::serve(skywire_disc::DiscConfig {
            listen: "127.0.0.1:0".parse()?,
            store: skywire_disc::StoreConfig::Memory,
            test_mode: true,
            ..skywire_disc::DiscConfig::default()
        })
        .await
        .context("starting discovery")?;
        let url = disc.url();
        let mut cfg = skywire_dmsg::ServerConfig::new(skywire_cipher::SecKey::generate());
        cfg.local_addr = "127.0.0.1:0".parse()?;
        cfg.discovery = Some(DiscClient::new(&url)?);
        cfg.mux = mux;
        let server = skywire_dmsg::ServerHandle::start(cfg)
            .await
            .context("starting server")?;
        let dc = DiscClient::new(&url)?;
        let deadline = Instant::now() + ready;
        while dc.available_servers().await.map_or(0, |l| l.len()) < 1 {
            if Instant::now() > deadline {
                bail!("the relay server did not appear in discovery within {ready:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(LocalRelay { disc, server })
    }

    /// A client pinned to this relay, with no first-stream delay (our own server needs none).
    pub fn client(&self, mux: skywire_dmsg::mux::Config) -> Result<skywire_dmsg::Client> {
        let mut cfg = skywire_dmsg::ClientConfig::new(
            skywire_cipher::SecKey::generate(),
            skywire_dmsg::disc::DiscClient::new(&self.disc.url())?,
        );
        cfg.servers = Some(vec![self.server.pk()]);
        cfg.dial_on_demand = false;
        cfg.first_stream_delay = Duration::ZERO;
        cfg.mux = mux;
        Ok(skywire_dmsg::Client::start(cfg))
    }
}

/// `target/release/skywire` of this workspace.
pub fn skywire_bin() -> Result<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow::anyhow!("workspace root"))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release").join("skywire");
    if !bin.is_file() {
        bail!(
            "{} not found: build it first with `cargo build --release -p skywire`",
            bin.display()
        );
    }
    Ok(bin)
}
