//! dmsg addresses: `(public key, port)` pairs, their text form `<pk hex>:<port>` (`:~` for port
//! 0, as the reference prints it), and the gob shape `Addr { PK PubKey; Port uint16 }`.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use skywire_cipher::PubKey;
use skywire_gob::GobType;

/// A dmsg address: a client's public key and a port on it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
#[gob(name = "Addr")]
pub struct Addr {
    /// The client's public key.
    #[serde(rename = "PK")]
    #[gob(rename = "PK")]
    pub pk: PubKey,
    /// The port (0 is invalid in requests).
    pub port: u16,
}

impl Addr {
    /// Builds an address.
    pub fn new(pk: PubKey, port: u16) -> Addr {
        Addr { pk, port }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.port == 0 {
            write!(f, "{}:~", self.pk)
        } else {
            write!(f, "{}:{}", self.pk, self.port)
        }
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Error parsing an [`Addr`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrParseError {
    /// No `:` separating key and port.
    #[error("dmsg address {0:?} has no ':<port>'")]
    MissingPort(String),
    /// The key part is not a public key.
    #[error("dmsg address {addr:?}: {source}")]
    Key {
        /// The text that was parsed.
        addr: String,
        /// Why the key is invalid.
        #[source]
        source: skywire_cipher::CipherError,
    },
    /// The port part is not a number in 0..=65535.
    #[error("dmsg address {0:?} has an invalid port")]
    Port(String),
}

impl FromStr for Addr {
    type Err = AddrParseError;
    fn from_str(s: &str) -> Result<Addr, AddrParseError> {
        let (pk, port) = s
            .rsplit_once(':')
            .ok_or_else(|| AddrParseError::MissingPort(s.to_string()))?;
        let pk = PubKey::from_hex(pk).map_err(|source| AddrParseError::Key {
            addr: s.to_string(),
            source,
        })?;
        let port = if port == "~" {
            0
        } else {
            port.parse()
                .map_err(|_| AddrParseError::Port(s.to_string()))?
        };
        Ok(Addr { pk, port })
    }
}
