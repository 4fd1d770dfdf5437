//! Sans-IO Noise handshakes as Skywire uses them (dmsg-wire.md 2.1-2.3): XK (dmsg session,
//! client = initiator) and KK (end-to-end stream), both roles, on top of `snow` with the
//! secp256k1 resolver of [`crate::dh`]. A finished [`Handshake`] becomes a [`Transport`] with the
//! split keys assigned the dmsg way.
//!
//! Payloads we send are empty; non-empty payloads received from newer peers (ML-KEM keys,
//! section 7) are accepted and returned to the caller, who may ignore them.

use skywire_cipher::{PubKey, SecKey};
use snow::params::NoiseParams;

use crate::dh::{PUBLIC_KEY_LEN, SkywireResolver};
use crate::error::NoiseError;
use crate::transport::Transport;
use crate::{KK_PROTOCOL_NAME, MAX_HANDSHAKE_MSG_LEN, TAG_LEN, XK_PROTOCOL_NAME};

/// Upper bound of the non-payload bytes of any XK/KK message (two keys and two tags).
const MAX_MSG_OVERHEAD: usize = 2 * PUBLIC_KEY_LEN + 2 * TAG_LEN;

/// Handshake pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `XK`: the initiator knows the responder's static key; the responder learns the
    /// initiator's from message 3. Used for the dmsg client-server session.
    XK,
    /// `KK`: both sides know both static keys. Used end-to-end inside dmsg streams.
    KK,
}

impl Pattern {
    /// The Skywire protocol name hashed into the handshake state.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Pattern::XK => XK_PROTOCOL_NAME,
            Pattern::KK => KK_PROTOCOL_NAME,
        }
    }

    /// Number of handshake messages.
    pub fn message_count(self) -> usize {
        match self {
            Pattern::XK => 3,
            Pattern::KK => 2,
        }
    }

    /// snow-parseable name: same pattern with the `25519` DH choice (snow's `DHChoice` is closed).
    fn snow_template(self) -> &'static str {
        match self {
            Pattern::XK => "Noise_XK_25519_ChaChaPoly_SHA256",
            Pattern::KK => "Noise_KK_25519_ChaChaPoly_SHA256",
        }
    }

    fn params(self) -> Result<NoiseParams, NoiseError> {
        let mut params: NoiseParams = self.snow_template().parse()?;
        params.name = self.protocol_name().to_owned();
        Ok(params)
    }
}

/// Handshake role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends the first message.
    Initiator,
    /// Receives the first message.
    Responder,
}

/// Configures a [`Handshake`]; use the shortcuts on [`Handshake`] for the common cases.
#[derive(Debug)]
pub struct HandshakeBuilder<'a> {
    pattern: Pattern,
    role: Role,
    local: &'a SecKey,
    remote: Option<PubKey>,
    fixed_ephemeral: Option<&'a SecKey>,
}

impl<'a> HandshakeBuilder<'a> {
    /// A builder for `pattern` in `role` with our static secret key.
    pub fn new(pattern: Pattern, role: Role, local: &'a SecKey) -> Self {
        Self {
            pattern,
            role,
            local,
            remote: None,
            fixed_ephemeral: None,
        }
    }

    /// The peer's static public key (required for XK initiators and for both KK roles).
    pub fn remote(mut self, remote: PubKey) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Use `ephemeral` instead of a random ephemeral key. **Only for test vectors and fuzzing**:
    /// reusing an ephemeral key across handshakes destroys forward secrecy.
    pub fn with_fixed_ephemeral(mut self, ephemeral: &'a SecKey) -> Self {
        self.fixed_ephemeral = Some(ephemeral);
        self
    }

    /// Builds the handshake state.
    ///
    /// # Errors
    /// [`NoiseError::RemoteStatic`] if the pattern needs the remote key and none was given;
    /// [`NoiseError::Snow`] if snow refuses the configuration.
    pub fn build(self) -> Result<Handshake, NoiseError> {
        let needs_remote = match (self.pattern, self.role) {
            (Pattern::XK, Role::Initiator) | (Pattern::KK, _) => true,
            (Pattern::XK, Role::Responder) => false,
        };
        if needs_remote && self.remote.is_none() {
            return Err(NoiseError::RemoteStatic);
        }
        let local = self.local.as_bytes();
        let mut builder =
            snow::Builder::with_resolver(self.pattern.params()?, Box::new(SkywireResolver))
                .local_private_key(&local[..])?
                .prologue(&[])?;
        let remote_bytes = self.remote.as_ref().map(|pk| *pk.as_bytes());
        if let Some(rb) = remote_bytes.as_ref() {
            builder = builder.remote_public_key(&rb[..])?;
        }
        let eph_bytes = self.fixed_ephemeral.map(SecKey::as_bytes);
        if let Some(eb) = eph_bytes {
            builder = builder.fixed_ephemeral_key_for_testing_only(&eb[..]);
        }
        let state = match self.role {
            Role::Initiator => builder.build_initiator()?,
            Role::Responder => builder.build_responder()?,
        };
        Ok(Handshake {
            state,
            pattern: self.pattern,
            role: self.role,
            last_was_write: false,
            failed: false,
        })
    }
}

/// A Noise XK or KK handshake in progress (sans-IO).
///
/// Drive it with [`write_message`](Self::write_message) / [`read_message`](Self::read_message)
/// according to [`is_my_turn`](Self::is_my_turn) until [`is_finished`](Self::is_finished), then
/// call [`into_transport`](Self::into_transport). Any error is final: later calls return
/// [`NoiseError::HandshakeFailed`].
pub struct Handshake {
    state: snow::HandshakeState,
    pattern: Pattern,
    role: Role,
    last_was_write: bool,
    failed: bool,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake")
            .field("pattern", &self.pattern)
            .field("role", &self.role)
            .field("finished", &self.state.is_handshake_finished())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// XK initiator (dmsg client) towards the server `remote`.
    ///
    /// # Errors
    /// See [`HandshakeBuilder::build`].
    pub fn xk_initiator(local: &SecKey, remote: PubKey) -> Result<Self, NoiseError> {
        HandshakeBuilder::new(Pattern::XK, Role::Initiator, local)
            .remote(remote)
            .build()
    }

    /// XK responder (dmsg server); learns the initiator's key from message 3.
    ///
    /// # Errors
    /// See [`HandshakeBuilder::build`].
    pub fn xk_responder(local: &SecKey) -> Result<Self, NoiseError> {
        HandshakeBuilder::new(Pattern::XK, Role::Responder, local).build()
    }

    /// KK initiator (dialing client).
    ///
    /// # Errors
    /// See [`HandshakeBuilder::build`].
    pub fn kk_initiator(local: &SecKey, remote: PubKey) -> Result<Self, NoiseError> {
        HandshakeBuilder::new(Pattern::KK, Role::Initiator, local)
            .remote(remote)
            .build()
    }

    /// KK responder (listening client); `remote` is the initiator's key from the signed request.
    ///
    /// # Errors
    /// See [`HandshakeBuilder::build`].
    pub fn kk_responder(local: &SecKey, remote: PubKey) -> Result<Self, NoiseError> {
        HandshakeBuilder::new(Pattern::KK, Role::Responder, local)
            .remote(remote)
            .build()
    }

    /// The pattern.
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the next step is [`write_message`](Self::write_message).
    pub fn is_my_turn(&self) -> bool {
        !self.failed && !self.state.is_handshake_finished() && self.state.is_my_turn()
    }

    /// Whether all handshake messages have been processed.
    pub fn is_finished(&self) -> bool {
        !self.failed && self.state.is_handshake_finished()
    }

    /// Whether an earlier step failed.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// The peer's static key, once known (from the start for XK initiators and KK, after
    /// message 3 for XK responders).
    pub fn remote_static(&self) -> Option<PubKey> {
        self.state
            .get_remote_static()
            .and_then(|b| b.get(..PUBLIC_KEY_LEN))
            .and_then(|b| PubKey::from_bytes(b).ok())
    }

    /// The current handshake hash `h` (the final one once finished).
    pub fn handshake_hash(&self) -> &[u8] {
        self.state.get_handshake_hash()
    }

    /// Writes the next handshake message carrying `payload` (Skywire sends empty payloads),
    /// appending it to `out`. Returns the message length.
    ///
    /// # Errors
    /// [`NoiseError::HandshakeMessageTooLong`] if the message would exceed 4094 bytes;
    /// [`NoiseError::Snow`] when it is not our turn or the DH fails.
    pub fn write_message(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, NoiseError> {
        if self.failed {
            return Err(NoiseError::HandshakeFailed);
        }
        let max_payload = MAX_HANDSHAKE_MSG_LEN - MAX_MSG_OVERHEAD;
        if payload.len() > max_payload {
            return Err(NoiseError::HandshakeMessageTooLong {
                len: payload.len() + MAX_MSG_OVERHEAD,
                max: MAX_HANDSHAKE_MSG_LEN,
            });
        }
        let start = out.len();
        out.resize(start + payload.len() + MAX_MSG_OVERHEAD, 0);
        match self.state.write_message(payload, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                self.last_was_write = true;
                Ok(n)
            }
            Err(e) => {
                out.truncate(start);
                self.failed = true;
                Err(e.into())
            }
        }
    }

    /// Processes the peer's next handshake message and returns its payload (empty from
    /// 2023-era peers, ML-KEM material from newer ones; Skywire-compatible callers ignore it).
    ///
    /// Never panics on arbitrary input; malformed keys, tampering and wrong lengths are errors.
    ///
    /// # Errors
    /// [`NoiseError::HandshakeMessageTooLong`] above 4094 bytes; [`NoiseError::Snow`] otherwise.
    pub fn read_message(&mut self, message: &[u8]) -> Result<Vec<u8>, NoiseError> {
        if self.failed {
            return Err(NoiseError::HandshakeFailed);
        }
        if message.len() > MAX_HANDSHAKE_MSG_LEN {
            self.failed = true;
            return Err(NoiseError::HandshakeMessageTooLong {
                len: message.len(),
                max: MAX_HANDSHAKE_MSG_LEN,
            });
        }
        let mut payload = vec![0u8; message.len()];
        match self.state.read_message(message, &mut payload) {
            Ok(n) => {
                payload.truncate(n);
                self.last_was_write = false;
                Ok(payload)
            }
            Err(e) => {
                self.failed = true;
                Err(e.into())
            }
        }
    }

    /// Finishes the handshake and derives the transport keys with the dmsg split-key quirk
    /// (2.3): the side that *wrote* the last message sends with `k2` and receives with `k1`;
    /// the side that *read* it sends with `k1` and receives with `k2`. XK: initiator sends with
    /// `k2`; KK: initiator sends with `k1`.
    ///
    /// # Errors
    /// [`NoiseError::HandshakeIncomplete`] before the last message; [`NoiseError::HandshakeFailed`]
    /// after an error; [`NoiseError::RemoteStatic`] if the peer key is unavailable.
    pub fn into_transport(mut self) -> Result<Transport, NoiseError> {
        if self.failed {
            return Err(NoiseError::HandshakeFailed);
        }
        if !self.state.is_handshake_finished() {
            return Err(NoiseError::HandshakeIncomplete);
        }
        let remote = self.remote_static().ok_or(NoiseError::RemoteStatic)?;
        let mut hash = [0u8; 32];
        let h = self.state.get_handshake_hash();
        if let Some(src) = h.get(..32) {
            hash.copy_from_slice(src);
        }
        let (k1, k2) = self.state.dangerously_get_raw_split();
        let (k1, k2) = (zeroize::Zeroizing::new(k1), zeroize::Zeroizing::new(k2));
        let (send, recv) = if self.last_was_write {
            (&k2, &k1)
        } else {
            (&k1, &k2)
        };
        Ok(Transport::from_keys(send, recv)?
            .with_remote(remote)
            .with_handshake_hash(hash))
    }
}
