//! Transport-phase crypto after a handshake (dmsg-wire.md 2.4, 3 and 4.4): one
//! [`TransportSender`] and one [`TransportReceiver`] per direction, bundled in [`Transport`].
//!
//! Frame: `BE16(L) || BE64(nonce) || ChaCha20-Poly1305(key, 00000000 || LE64(nonce), ad = "", pt)`
//! with `L = 8 + len(pt) + 16`. The send counter starts at 0 and is incremented before use (first
//! nonce 1). Stream frames ([`TransportSender::encrypt_frames`], [`TransportReceiver::decrypt_frame`])
//! have `L <= 4094` and strictly increasing receive nonces (gaps allowed); any receive error
//! poisons the receiver for good. Session objects ([`TransportSender::seal_object`],
//! [`TransportReceiver::open`]) share the counter and framing but `L` is only bounded by 16 bits
//! and there is no ordering check. Everything encrypts/decrypts in place; nothing allocates
//! per frame once the output buffer has grown.

use skywire_cipher::PubKey;
use zeroize::Zeroizing;

use crate::aead::FrameKey;
pub use crate::aead::KEY_LEN;
use crate::error::FrameError;
use crate::{
    FRAME_OVERHEAD, LEN_PREFIX, MAX_FRAME_LEN, MAX_OBJECT_FRAME_LEN, MAX_OBJECT_PLAINTEXT,
    MAX_PLAINTEXT_PER_FRAME, MIN_FRAME_LEN, NONCE_LEN, TAG_LEN,
};

/// Wire size of the frames that carry `len` plaintext bytes of a stream write (0 for `len == 0`).
pub fn wire_len_for(len: usize) -> usize {
    let frames = len.div_ceil(MAX_PLAINTEXT_PER_FRAME);
    len + frames * (LEN_PREFIX + FRAME_OVERHEAD)
}

/// The sending half: key and nonce counter.
pub struct TransportSender {
    aead: FrameKey,
    key: Zeroizing<[u8; KEY_LEN]>,
    nonce: u64,
}

impl std::fmt::Debug for TransportSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportSender")
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

impl TransportSender {
    /// A sender with `key` whose next frame carries nonce 1.
    ///
    /// # Errors
    /// [`FrameError::Key`] if the AEAD backend refuses the key.
    pub fn new(key: &[u8; KEY_LEN]) -> Result<Self, FrameError> {
        Ok(Self {
            aead: FrameKey::new(key)?,
            key: Zeroizing::new(*key),
            nonce: 0,
        })
    }

    /// The last nonce used (0 before the first frame).
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// The send key. Exposed for test vectors; treat it as secret.
    #[doc(hidden)]
    pub fn key_for_testing(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    fn seal_into(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<u64, FrameError> {
        let nonce = self
            .nonce
            .checked_add(1)
            .ok_or(FrameError::NonceExhausted)?;
        let len = u16::try_from(plaintext.len() + FRAME_OVERHEAD).map_err(|_| {
            FrameError::PlaintextTooLong {
                len: plaintext.len(),
                max: MAX_OBJECT_PLAINTEXT,
            }
        })?;
        let start = out.len();
        out.reserve(LEN_PREFIX + usize::from(len));
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&nonce.to_be_bytes());
        let ct_start = out.len();
        out.extend_from_slice(plaintext);
        match self.aead.seal(nonce, &mut out[ct_start..]) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                self.nonce = nonce;
                Ok(nonce)
            }
            Err(_) => {
                out.truncate(start);
                Err(FrameError::Encrypt)
            }
        }
    }

    /// Appends one stream frame carrying `plaintext` (at most 4070 bytes; an empty plaintext
    /// gives a 26-byte frame) to `out`. Returns the nonce used.
    ///
    /// # Errors
    /// [`FrameError::PlaintextTooLong`] above 4070 bytes; [`FrameError::NonceExhausted`].
    pub fn encrypt_frame(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<u64, FrameError> {
        if plaintext.len() > MAX_PLAINTEXT_PER_FRAME {
            return Err(FrameError::PlaintextTooLong {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_PER_FRAME,
            });
        }
        self.seal_into(plaintext, out)
    }

    /// Appends the frames of one stream write of `data` to `out`, split like the reference
    /// writer: `ceil(len / 4070)` frames, all but the last carrying exactly 4070 bytes. An empty
    /// write appends nothing. Returns the number of frames.
    ///
    /// # Errors
    /// [`FrameError::NonceExhausted`]; frames appended before the error stay in `out`.
    pub fn encrypt_frames(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize, FrameError> {
        out.reserve(wire_len_for(data.len()));
        let mut frames = 0;
        for chunk in data.chunks(MAX_PLAINTEXT_PER_FRAME) {
            self.seal_into(chunk, out)?;
            frames += 1;
        }
        Ok(frames)
    }

    /// Appends one session object frame (4.4) carrying `plaintext` (up to 65511 bytes) to `out`,
    /// using and advancing the same nonce counter. Returns the nonce used.
    ///
    /// # Errors
    /// [`FrameError::PlaintextTooLong`] if `L` would not fit in 16 bits; [`FrameError::NonceExhausted`].
    pub fn seal_object(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<u64, FrameError> {
        self.seal_into(plaintext, out)
    }
}

/// The receiving half: key, last accepted nonce and the sticky error.
pub struct TransportReceiver {
    aead: FrameKey,
    key: Zeroizing<[u8; KEY_LEN]>,
    last_nonce: u64,
    poisoned: Option<FrameError>,
}

impl std::fmt::Debug for TransportReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportReceiver")
            .field("last_nonce", &self.last_nonce)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl TransportReceiver {
    /// A receiver with `key` that has accepted no frame yet.
    ///
    /// # Errors
    /// [`FrameError::Key`] if the AEAD backend refuses the key.
    pub fn new(key: &[u8; KEY_LEN]) -> Result<Self, FrameError> {
        Ok(Self {
            aead: FrameKey::new(key)?,
            key: Zeroizing::new(*key),
            last_nonce: 0,
            poisoned: None,
        })
    }

    /// The last accepted stream-frame nonce (0 before the first frame).
    pub fn last_nonce(&self) -> u64 {
        self.last_nonce
    }

    /// The error that poisoned this receiver, if any.
    pub fn poisoned(&self) -> Option<FrameError> {
        self.poisoned
    }

    /// The receive key. Exposed for test vectors; treat it as secret.
    #[doc(hidden)]
    pub fn key_for_testing(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// Decrypts one stream frame in place. `body` is everything after the length prefix
    /// (`nonce || ciphertext || tag`, i.e. `L` bytes). Returns the plaintext, a sub-slice of
    /// `body` starting at offset 8.
    ///
    /// # Errors
    /// [`FrameError::TooShort`]/[`FrameError::TooLong`] for `L` outside 24..=4094,
    /// [`FrameError::StaleNonce`] if the nonce does not exceed the last accepted one,
    /// [`FrameError::Decrypt`] on authentication failure. Every error poisons the receiver:
    /// later calls return the same error.
    pub fn decrypt_frame<'a>(&mut self, body: &'a mut [u8]) -> Result<&'a mut [u8], FrameError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        if body.len() > MAX_FRAME_LEN {
            return Err(self.poison(FrameError::TooLong {
                len: body.len(),
                max: MAX_FRAME_LEN,
            }));
        }
        let nonce = match read_nonce(body) {
            Ok(n) => n,
            Err(e) => return Err(self.poison(e)),
        };
        if nonce <= self.last_nonce {
            return Err(self.poison(FrameError::StaleNonce {
                nonce,
                last: self.last_nonce,
            }));
        }
        if open_in_place(&self.aead, nonce, &mut body[NONCE_LEN..]).is_err() {
            return Err(self.poison(FrameError::Decrypt));
        }
        self.last_nonce = nonce;
        let end = body.len() - TAG_LEN;
        Ok(&mut body[NONCE_LEN..end])
    }

    fn poison(&mut self, e: FrameError) -> FrameError {
        self.poisoned = Some(e);
        e
    }

    /// Decrypts a session object's `ciphertext || tag` in place with an explicit `nonce`: no
    /// ordering or replay check, no poisoning (4.4). Returns the plaintext (a prefix of
    /// `ciphertext_and_tag`).
    ///
    /// # Errors
    /// [`FrameError::TooShort`] without room for a tag, [`FrameError::Decrypt`].
    pub fn open<'a>(
        &self,
        nonce: u64,
        ciphertext_and_tag: &'a mut [u8],
    ) -> Result<&'a mut [u8], FrameError> {
        open_in_place(&self.aead, nonce, ciphertext_and_tag)?;
        let end = ciphertext_and_tag.len() - TAG_LEN;
        Ok(&mut ciphertext_and_tag[..end])
    }

    /// Decrypts a session object frame body (`nonce || ciphertext || tag`, the `L` bytes after
    /// the prefix) in place. Returns the nonce and the plaintext. No ordering check (4.4).
    ///
    /// # Errors
    /// [`FrameError::TooShort`]/[`FrameError::TooLong`], [`FrameError::Decrypt`].
    pub fn open_object<'a>(&self, body: &'a mut [u8]) -> Result<(u64, &'a mut [u8]), FrameError> {
        if body.len() > MAX_OBJECT_FRAME_LEN {
            return Err(FrameError::TooLong {
                len: body.len(),
                max: MAX_OBJECT_FRAME_LEN,
            });
        }
        let nonce = read_nonce(body)?;
        let pt = self.open(nonce, &mut body[NONCE_LEN..])?;
        Ok((nonce, pt))
    }
}

/// Reads the explicit nonce of a frame body, checking the minimum length.
fn read_nonce(body: &[u8]) -> Result<u64, FrameError> {
    if body.len() < MIN_FRAME_LEN {
        return Err(FrameError::TooShort { len: body.len() });
    }
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(&body[..NONCE_LEN]);
    Ok(u64::from_be_bytes(n))
}

/// Authenticates and decrypts `ct || tag` in place (`ct` keeps the plaintext).
fn open_in_place(aead: &FrameKey, nonce: u64, ct_and_tag: &mut [u8]) -> Result<(), FrameError> {
    if ct_and_tag.len() < TAG_LEN {
        return Err(FrameError::TooShort {
            len: ct_and_tag.len() + NONCE_LEN,
        });
    }
    aead.open(nonce, ct_and_tag).map(|_| ())
}

/// Both directions of an established Noise channel, plus what the handshake learned.
#[derive(Debug)]
pub struct Transport {
    sender: TransportSender,
    receiver: TransportReceiver,
    remote: Option<PubKey>,
    handshake_hash: Option<[u8; 32]>,
}

impl Transport {
    /// A transport from raw keys (e.g. recorded vectors). Nonces start fresh.
    ///
    /// # Errors
    /// [`FrameError::Key`] if the AEAD backend refuses a key.
    pub fn from_keys(
        send_key: &[u8; KEY_LEN],
        recv_key: &[u8; KEY_LEN],
    ) -> Result<Self, FrameError> {
        Ok(Self {
            sender: TransportSender::new(send_key)?,
            receiver: TransportReceiver::new(recv_key)?,
            remote: None,
            handshake_hash: None,
        })
    }

    pub(crate) fn with_remote(mut self, remote: PubKey) -> Self {
        self.remote = Some(remote);
        self
    }

    pub(crate) fn with_handshake_hash(mut self, h: [u8; 32]) -> Self {
        self.handshake_hash = Some(h);
        self
    }

    /// The peer's static key learnt or used in the handshake (`None` for [`Self::from_keys`]).
    pub fn remote_static(&self) -> Option<&PubKey> {
        self.remote.as_ref()
    }

    /// The final handshake hash (`None` for [`Self::from_keys`]).
    pub fn handshake_hash(&self) -> Option<&[u8; 32]> {
        self.handshake_hash.as_ref()
    }

    /// The sending half.
    pub fn sender(&mut self) -> &mut TransportSender {
        &mut self.sender
    }

    /// The receiving half.
    pub fn receiver(&mut self) -> &mut TransportReceiver {
        &mut self.receiver
    }

    /// Splits into independent halves (e.g. for separate reader and writer tasks).
    pub fn into_split(self) -> (TransportSender, TransportReceiver) {
        (self.sender, self.receiver)
    }

    /// See [`TransportSender::encrypt_frame`].
    ///
    /// # Errors
    /// As there.
    pub fn encrypt_frame(
        &mut self,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<u64, FrameError> {
        self.sender.encrypt_frame(plaintext, out)
    }

    /// See [`TransportSender::encrypt_frames`].
    ///
    /// # Errors
    /// As there.
    pub fn encrypt_frames(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize, FrameError> {
        self.sender.encrypt_frames(data, out)
    }

    /// See [`TransportReceiver::decrypt_frame`].
    ///
    /// # Errors
    /// As there.
    pub fn decrypt_frame<'a>(&mut self, body: &'a mut [u8]) -> Result<&'a mut [u8], FrameError> {
        self.receiver.decrypt_frame(body)
    }

    /// See [`TransportSender::seal_object`].
    ///
    /// # Errors
    /// As there.
    pub fn seal_object(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<u64, FrameError> {
        self.sender.seal_object(plaintext, out)
    }

    /// See [`TransportReceiver::open`].
    ///
    /// # Errors
    /// As there.
    pub fn open<'a>(
        &self,
        nonce: u64,
        ciphertext_and_tag: &'a mut [u8],
    ) -> Result<&'a mut [u8], FrameError> {
        self.receiver.open(nonce, ciphertext_and_tag)
    }

    /// See [`TransportReceiver::open_object`].
    ///
    /// # Errors
    /// As there.
    pub fn open_object<'a>(&self, body: &'a mut [u8]) -> Result<(u64, &'a mut [u8]), FrameError> {
        self.receiver.open_object(body)
    }
}
