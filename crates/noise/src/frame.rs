//! Sans-IO frame splitting (dmsg-wire.md 3 and 4.4): [`FrameDecoder`] buffers bytes from a
//! stream and yields complete frame bodies (`nonce || ciphertext || tag`, the `L` bytes after
//! each `BE16(L)` prefix), enforcing the length limits. It never panics on any input; a bad
//! length prefix poisons it permanently, like the reference reader.
//!
//! The buffer is fixed-size and allocated once; callers can read from a socket straight into
//! [`FrameDecoder::unfilled_mut`] (no intermediate copy) or push bytes with [`FrameDecoder::feed`].

use std::ops::Range;

use crate::error::FrameError;
use crate::{LEN_PREFIX, MAX_FRAME_LEN, MAX_OBJECT_FRAME_LEN, MIN_FRAME_LEN};

/// Default buffer size: room for many frames, so one socket read can fetch up to 64 KiB.
pub const DEFAULT_DECODER_CAPACITY: usize = 64 * 1024;

/// Splits a byte stream into frame bodies.
pub struct FrameDecoder {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    max_len: usize,
    poisoned: Option<FrameError>,
}

impl std::fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("capacity", &self.buf.len())
            .field("buffered", &self.buffered())
            .field("max_len", &self.max_len)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder for stream frames (`24 <= L <= 4094`) with a 64 KiB buffer.
    pub fn new() -> Self {
        Self::with_limits(MAX_FRAME_LEN, DEFAULT_DECODER_CAPACITY)
    }

    /// A decoder for session-object frames (4.4: `24 <= L <= 65535`).
    pub fn for_session_objects() -> Self {
        Self::with_limits(
            MAX_OBJECT_FRAME_LEN,
            DEFAULT_DECODER_CAPACITY + LEN_PREFIX + MAX_OBJECT_FRAME_LEN,
        )
    }

    /// A decoder accepting `L` up to `max_len` (clamped to 24..=65535) with a buffer of
    /// `capacity` bytes (raised to hold at least one maximal frame).
    pub fn with_limits(max_len: usize, capacity: usize) -> Self {
        let max_len = max_len.clamp(MIN_FRAME_LEN, MAX_OBJECT_FRAME_LEN);
        let capacity = capacity.max(LEN_PREFIX + max_len);
        Self {
            buf: vec![0u8; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
            max_len,
            poisoned: None,
        }
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Buffer capacity.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// The error that poisoned this decoder, if any.
    pub fn poisoned(&self) -> Option<FrameError> {
        self.poisoned
    }

    /// Moves buffered bytes to the front when the free tail cannot hold a maximal frame.
    fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 && self.buf.len() - self.end < LEN_PREFIX + self.max_len {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Free space to read into (never empty while fewer than one maximal frame is buffered).
    /// Follow with [`commit`](Self::commit). May move buffered bytes, so slices returned by
    /// [`next_frame`](Self::next_frame) must be dropped first (the borrow checker enforces this).
    pub fn unfilled_mut(&mut self) -> &mut [u8] {
        self.compact();
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes written into [`unfilled_mut`](Self::unfilled_mut) as buffered
    /// (clamped to the free space).
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Copies as much of `data` as fits; returns how many bytes were taken. When this returns
    /// less than `data.len()`, take frames out with [`next_frame`](Self::next_frame) first.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let dst = self.unfilled_mut();
        let n = dst.len().min(data.len());
        dst[..n].copy_from_slice(&data[..n]);
        self.commit(n);
        n
    }

    /// The next complete frame body, or `None` if more bytes are needed.
    ///
    /// # Errors
    /// [`FrameError::TooLong`] / [`FrameError::TooShort`] for a length prefix outside the limits;
    /// the decoder is then poisoned and keeps returning that error.
    pub fn next_frame(&mut self) -> Result<Option<&mut [u8]>, FrameError> {
        match self.next_frame_range()? {
            Some(r) => Ok(Some(&mut self.buf[r])),
            None => Ok(None),
        }
    }

    /// Like [`next_frame`](Self::next_frame) but returns the body's position in the buffer, which
    /// stays valid until the next [`unfilled_mut`]/[`feed`] call.
    ///
    /// [`unfilled_mut`]: Self::unfilled_mut
    /// [`feed`]: Self::feed
    pub(crate) fn next_frame_range(&mut self) -> Result<Option<Range<usize>>, FrameError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        let avail = self.end - self.start;
        if avail < LEN_PREFIX {
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([
            self.buf[self.start],
            self.buf[self.start + 1],
        ]));
        if len > self.max_len {
            let e = FrameError::TooLong {
                len,
                max: self.max_len,
            };
            self.poisoned = Some(e);
            return Err(e);
        }
        if len < MIN_FRAME_LEN {
            let e = FrameError::TooShort { len };
            self.poisoned = Some(e);
            return Err(e);
        }
        if avail < LEN_PREFIX + len {
            return Ok(None);
        }
        let body = self.start + LEN_PREFIX..self.start + LEN_PREFIX + len;
        self.start = body.end;
        Ok(Some(body))
    }

    /// Mutable access to a range returned by [`next_frame_range`](Self::next_frame_range).
    pub(crate) fn slice_mut(&mut self, r: Range<usize>) -> &mut [u8] {
        self.buf.get_mut(r).unwrap_or_default()
    }

    /// Shared access to a range returned by [`next_frame_range`](Self::next_frame_range).
    pub(crate) fn slice(&self, r: Range<usize>) -> &[u8] {
        self.buf.get(r).unwrap_or_default()
    }
}
