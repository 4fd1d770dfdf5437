//! The noise KK wrapper of apps.md 0 over a transport carrier: both static keys are known
//! (ours and the peer's from the skywire handshake), the dialer is the initiator, and the
//! result is a [`NoiseStream`] with Skywire's framing. The handshake, the frame codec and the
//! stream all come from `skywire-noise` (its `NoiseStream` is generic over the pattern); this
//! module only chooses the pattern, the role and the 5 s timeout.

use std::time::Duration;

use skywire_cipher::{PubKey, SecKey};
use skywire_noise::{Handshake, NoiseError, NoiseStream};
use tokio::io::{AsyncRead, AsyncWrite};

/// Noise handshake timeout of transports.
pub const KK_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs noise KK over `io` with `remote`'s static key (`initiator` = we dialled).
///
/// # Errors
/// Handshake, I/O or timeout errors of `skywire-noise`.
pub async fn kk_wrap<T: AsyncRead + AsyncWrite + Unpin>(
    io: T,
    local: &SecKey,
    remote: PubKey,
    initiator: bool,
    timeout: Duration,
) -> Result<NoiseStream<T>, NoiseError> {
    let hs = if initiator {
        Handshake::kk_initiator(local, remote)?
    } else {
        Handshake::kk_responder(local, remote)?
    };
    NoiseStream::handshake(io, hs, timeout).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::transport::vectors::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Appendix A: both KK messages are `0031` + 49 bytes; the first transport frame with
    /// "hello" is `001d` + nonce 1 + 21 bytes. Checked on the raw bytes between the peers.
    #[tokio::test]
    async fn kk_frame_shapes_match_appendix_a() {
        let (a_io, mut raw_b) = tokio::io::duplex(1 << 16);
        let (mut raw_a, b_io) = tokio::io::duplex(1 << 16);
        // Relay bytes by hand so the test sees every one of them.
        let a = tokio::spawn(async move {
            let mut s = kk_wrap(a_io, &sk_a(), pk_b(), true, KK_TIMEOUT)
                .await
                .unwrap();
            s.write_all(b"hello").await.unwrap();
            s.flush().await.unwrap();
            let mut back = [0u8; 2];
            s.read_exact(&mut back).await.unwrap();
            back
        });
        let b = tokio::spawn(async move {
            let mut s = kk_wrap(b_io, &sk_b(), pk_a(), false, KK_TIMEOUT)
                .await
                .unwrap();
            let mut got = [0u8; 5];
            s.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"hello");
            s.write_all(b"ok").await.unwrap();
            s.flush().await.unwrap();
            s
        });
        let mut m1 = [0u8; 51];
        raw_b.read_exact(&mut m1).await.unwrap();
        assert_eq!(&m1[..2], &[0x00, 0x31]);
        raw_a.write_all(&m1).await.unwrap();
        let mut m2 = [0u8; 51];
        raw_a.read_exact(&mut m2).await.unwrap();
        assert_eq!(&m2[..2], &[0x00, 0x31]);
        raw_b.write_all(&m2).await.unwrap();
        let mut f = [0u8; 31];
        raw_b.read_exact(&mut f).await.unwrap();
        assert_eq!(&f[..2], &[0x00, 0x1d]);
        assert_eq!(&f[2..10], &1u64.to_be_bytes());
        raw_a.write_all(&f).await.unwrap();
        let mut f2 = [0u8; 2 + 8 + 2 + 16];
        raw_a.read_exact(&mut f2).await.unwrap();
        raw_b.write_all(&f2).await.unwrap();
        assert_eq!(&a.await.unwrap(), b"ok");
        let _b = b.await.unwrap();
    }

    #[tokio::test]
    async fn kk_wrong_remote_key_fails() {
        let (x, y) = tokio::io::duplex(1 << 16);
        let other = SecKey::generate();
        let a = tokio::spawn(async move { kk_wrap(x, &sk_a(), pk_b(), true, KK_TIMEOUT).await });
        // The responder is not B: it holds another key and cannot complete KK.
        let b = tokio::spawn(async move { kk_wrap(y, &other, pk_a(), false, KK_TIMEOUT).await });
        let (ra, rb) = (a.await.unwrap(), b.await.unwrap());
        assert!(ra.is_err() || rb.is_err());
        assert!(rb.is_err());
    }
}
