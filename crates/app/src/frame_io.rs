//! Tokio helpers that read and write one [`proto`](crate::proto) frame on a byte stream, used by
//! the SDK and by the visor's app server. They read exactly one frame and nothing more, so the
//! bytes after a setup reply stay in the socket for the raw pipe.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::proto::{self, ProtoError};

/// Errors reading or writing a frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed or closed mid-frame.
    #[error("app protocol connection: {0}")]
    Io(#[source] std::io::Error),
    /// The peer closed the connection before a frame started.
    #[error("app protocol connection closed by the peer")]
    Closed,
    /// The frame is not a valid message.
    #[error(transparent)]
    Proto(#[from] ProtoError),
}

/// Reads one whole frame and decodes it as a `T`.
pub async fn read_msg<T, R>(r: &mut R) -> Result<T, FrameError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let mut len = [0u8; 2];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(FrameError::Io(e)),
    }
    let n = usize::from(u16::from_be_bytes(len));
    let mut frame = vec![0u8; 2 + n];
    frame[..2].copy_from_slice(&len);
    r.read_exact(&mut frame[2..])
        .await
        .map_err(FrameError::Io)?;
    match proto::decode::<T>(&frame)? {
        Some((msg, _)) => Ok(msg),
        // Cannot happen: the buffer holds the whole frame.
        None => Err(ProtoError::Malformed("short frame".into()).into()),
    }
}

/// Encodes and writes one frame.
pub async fn write_msg<T, W>(w: &mut W, msg: &T) -> Result<(), FrameError>
where
    T: Serialize,
    W: AsyncWrite + Unpin,
{
    let frame = proto::encode(msg)?;
    w.write_all(&frame).await.map_err(FrameError::Io)?;
    w.flush().await.map_err(FrameError::Io)
}
