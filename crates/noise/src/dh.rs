//! The secp256k1 Diffie-Hellman function Skywire plugs into Noise (dmsg-wire.md 1.3), as a
//! `snow` [`Dh`] implementation, and the [`SkywireResolver`] that hands it to snow.
//!
//! `DH(sk, pk) = SHA-256(compress(sk * pk)) || 0x00`, 33 bytes; public keys are 33-byte
//! compressed points. Malformed peer keys (wrong prefix, X not on the curve, all zero, short
//! buffer) make [`Dh::dh`] return `snow::Error::Dh`; nothing here panics.

use skywire_cipher::{PubKey, SecKey, noise_dh};
use snow::Error;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// Length of a compressed secp256k1 public key.
pub const PUBLIC_KEY_LEN: usize = 33;
/// Length of a secp256k1 secret key.
pub const SECRET_KEY_LEN: usize = 32;
/// Length of Skywire's noise DH output (hash plus one zero byte).
pub const DH_LEN: usize = 33;
/// How many 32-byte draws [`Dh::generate`] tries before giving up (each draw is invalid with
/// probability about 2^-128, so this bound is never reached with a working RNG).
const GENERATE_ATTEMPTS: usize = 64;

/// secp256k1 key pair slot for snow (`Noise`'s DH name `Secp256k1`).
pub struct Secp256k1Dh {
    secret: Option<SecKey>,
    public: [u8; PUBLIC_KEY_LEN],
}

impl std::fmt::Debug for Secp256k1Dh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secp256k1Dh")
            .field("public", &PubKeyHex(&self.public))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

struct PubKeyHex<'a>(&'a [u8; PUBLIC_KEY_LEN]);

impl std::fmt::Debug for PubKeyHex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Default for Secp256k1Dh {
    fn default() -> Self {
        Self {
            secret: None,
            public: [0; PUBLIC_KEY_LEN],
        }
    }
}

impl Secp256k1Dh {
    /// A slot holding `secret` (and its public key).
    pub fn from_secret(secret: SecKey) -> Self {
        let mut dh = Self::default();
        dh.install(secret);
        dh
    }

    fn install(&mut self, secret: SecKey) {
        self.public = *secret.pub_key().as_bytes();
        self.secret = Some(secret);
    }
}

impl Dh for Secp256k1Dh {
    fn name(&self) -> &'static str {
        "Secp256k1"
    }

    fn pub_len(&self) -> usize {
        PUBLIC_KEY_LEN
    }

    fn priv_len(&self) -> usize {
        SECRET_KEY_LEN
    }

    /// Installs a secret key. An invalid key (zero, not below the group order, wrong length)
    /// leaves the slot empty, so every later [`Dh::dh`] fails with `Error::Dh`.
    fn set(&mut self, privkey: &[u8]) {
        match SecKey::from_bytes(privkey) {
            Ok(sk) => self.install(sk),
            Err(_) => {
                self.secret = None;
                self.public = [0; PUBLIC_KEY_LEN];
            }
        }
    }

    /// Draws 32 bytes from snow's RNG until they form a valid secret key, so an injected
    /// deterministic RNG gives deterministic ephemeral keys.
    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), Error> {
        let mut bytes = zeroize::Zeroizing::new([0u8; SECRET_KEY_LEN]);
        for _ in 0..GENERATE_ATTEMPTS {
            rng.try_fill_bytes(&mut bytes[..])?;
            if let Ok(sk) = SecKey::from_bytes(&bytes[..]) {
                self.install(sk);
                return Ok(());
            }
        }
        Err(Error::Rng)
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        match &self.secret {
            Some(sk) => &sk.as_bytes()[..],
            None => &[],
        }
    }

    /// snow passes its whole `MAXDHLEN` buffer as `pubkey`; only the first 33 bytes are the key.
    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), Error> {
        let sk = self.secret.as_ref().ok_or(Error::Dh)?;
        let pk_bytes = pubkey.get(..PUBLIC_KEY_LEN).ok_or(Error::Dh)?;
        let pk = PubKey::from_bytes(pk_bytes).map_err(|_| Error::Dh)?;
        let shared = noise_dh(sk, &pk).map_err(|_| Error::Dh)?;
        out.get_mut(..DH_LEN)
            .ok_or(Error::Dh)?
            .copy_from_slice(&shared);
        Ok(())
    }

    fn dh_len(&self) -> usize {
        DH_LEN
    }
}

/// snow resolver: our [`Secp256k1Dh`] for every DH choice, snow's defaults for the rest.
#[derive(Debug, Default, Clone, Copy)]
pub struct SkywireResolver;

impl CryptoResolver for SkywireResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
    }

    fn resolve_dh(&self, _choice: &DHChoice) -> Option<Box<dyn Dh>> {
        Some(Box::new(Secp256k1Dh::default()))
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}
