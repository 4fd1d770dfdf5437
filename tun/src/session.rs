//! One established tunnel: the hello exchange helpers and the packet pump between a TUN device
//! and a dmsg stream, with byte counters.
//!
//! Writes: one IP packet per stream write (the reference's framing); packets already queued in
//! the TUN are written back to back and the stream is flushed once per batch. Reads: the byte
//! stream is cut into packets by [`PacketSplitter`].

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use skywire_dmsg::DmsgStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tun_rs::AsyncDevice;

use crate::VpnError;
use crate::os::OsError;
use crate::proto::{self, PacketSplitter, TUN_MTU};

/// Byte and packet counters of a tunnel (shared with status readers).
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes received from the peer and written to the TUN.
    pub bytes_in: AtomicU64,
    /// Bytes read from the TUN and sent to the peer.
    pub bytes_out: AtomicU64,
}

impl Counters {
    /// (in, out) bytes.
    pub fn get(&self) -> (u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> VpnError {
    move |source| VpnError::Io { what, source }
}

/// Reads one JSON hello; returns it and the bytes that followed it.
pub(crate) async fn read_hello<T, R>(r: &mut R, timeout: Duration) -> Result<(T, Vec<u8>), VpnError>
where
    T: for<'de> Deserialize<'de>,
    R: AsyncRead + Unpin,
{
    let fut = async {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 4096];
        loop {
            let n = r.read(&mut chunk).await.map_err(io("reading the hello"))?;
            if n == 0 {
                return Err(VpnError::Closed);
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some((v, used)) = proto::decode_hello::<T>(&buf)? {
                return Ok((v, buf.split_off(used)));
            }
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| VpnError::Timeout("hello"))?
}

/// Writes one hello in a single write.
pub(crate) async fn write_hello<T: serde::Serialize, W: AsyncWrite + Unpin>(
    w: &mut W,
    hello: &T,
    timeout: Duration,
) -> Result<(), VpnError> {
    let bytes = proto::encode_hello(hello);
    let fut = async {
        w.write_all(&bytes).await?;
        w.flush().await
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| VpnError::Timeout("hello"))?
        .map_err(io("writing the hello"))
}

/// Creates a TUN device `name` with `ip/29` (IFF_NO_PI, MTU 1500, up).
pub(crate) fn create_tun(name: &str, ip: Ipv4Addr, peer: Ipv4Addr) -> Result<AsyncDevice, OsError> {
    tun_rs::DeviceBuilder::new()
        .name(name)
        .ipv4(ip, proto::Block::PREFIX, Some(peer))
        .mtu(TUN_MTU)
        .packet_information(false)
        .build_async()
        .map_err(|source| OsError::Tun {
            name: name.to_string(),
            source,
        })
}

/// Moves packets both ways until one side fails or the peer closes the stream. `leftover` holds
/// bytes that arrived after the hello.
pub(crate) async fn pump(
    dev: Arc<AsyncDevice>,
    stream: DmsgStream,
    leftover: Vec<u8>,
    counters: Arc<Counters>,
) -> Result<(), VpnError> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let up = {
        let dev = dev.clone();
        let counters = counters.clone();
        async move {
            let mut buf = vec![0u8; proto::MAX_PACKET];
            loop {
                let n = dev.recv(&mut buf).await.map_err(io("reading the TUN"))?;
                let mut total = n as u64;
                wr.write_all(&buf[..n])
                    .await
                    .map_err(io("writing the stream"))?;
                // Drain what is already queued, then flush once.
                for _ in 0..64 {
                    match dev.try_recv(&mut buf) {
                        Ok(n) => {
                            total += n as u64;
                            wr.write_all(&buf[..n])
                                .await
                                .map_err(io("writing the stream"))?;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(io("reading the TUN")(e)),
                    }
                }
                wr.flush().await.map_err(io("writing the stream"))?;
                counters.bytes_out.fetch_add(total, Ordering::Relaxed);
            }
        }
    };
    let down = async move {
        let mut split = PacketSplitter::default();
        split.push(&leftover);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            while let Some(p) = split.next_packet()? {
                let len = p.len() as u64;
                dev.send(p).await.map_err(io("writing the TUN"))?;
                counters.bytes_in.fetch_add(len, Ordering::Relaxed);
            }
            let n = rd.read(&mut buf).await.map_err(io("reading the stream"))?;
            if n == 0 {
                return Ok::<(), VpnError>(());
            }
            split.push(&buf[..n]);
        }
    };
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}
