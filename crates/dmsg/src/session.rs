//! What client and server sessions share (`dmsg-wire.md` 4.1 and 4.4): the XK session handshake
//! on a TCP connection, and the session-object framing inside mux streams, where each signed
//! dial object is sealed with the XK session keys as `BE16(L) || BE64(nonce) || AEAD(object)`.
//!
//! The send counter belongs to the session (shared by all its streams, first object nonce 1);
//! received object nonces are taken as given, as in the reference.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use skywire_cipher::{PubKey, SecKey};
use skywire_noise::{
    Handshake, LEN_PREFIX, MIN_FRAME_LEN, Transport, TransportReceiver, TransportSender,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{DmsgError, ErrorCode};

/// The two directions of the session-object cipher.
#[derive(Debug)]
pub(crate) struct ObjectCipher {
    tx: Mutex<TransportSender>,
    rx: TransportReceiver,
}

impl ObjectCipher {
    pub(crate) fn new(transport: Transport) -> ObjectCipher {
        let (tx, rx) = transport.into_split();
        ObjectCipher {
            tx: Mutex::new(tx),
            rx,
        }
    }

    /// Seals one signed object into its wire form.
    pub(crate) fn seal(&self, object: &[u8]) -> Result<Vec<u8>, DmsgError> {
        let mut out = Vec::with_capacity(object.len() + LEN_PREFIX + MIN_FRAME_LEN);
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seal_object(object, &mut out)
            .map_err(DmsgError::Frame)?;
        Ok(out)
    }

    /// Writes one sealed object in a single write.
    pub(crate) async fn write<W: AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        object: &[u8],
    ) -> Result<(), DmsgError> {
        let wire = self.seal(object)?;
        w.write_all(&wire)
            .await
            .map_err(|e| DmsgError::io("writing a dial object", e))?;
        w.flush()
            .await
            .map_err(|e| DmsgError::io("writing a dial object", e))?;
        Ok(())
    }

    /// Reads exactly one sealed object (2 bytes, then `L` bytes, nothing more) and opens it.
    pub(crate) async fn read<R: AsyncRead + Unpin>(&self, r: &mut R) -> Result<Vec<u8>, DmsgError> {
        let mut prefix = [0u8; LEN_PREFIX];
        r.read_exact(&mut prefix)
            .await
            .map_err(|e| DmsgError::io("reading a dial object", e))?;
        let len = usize::from(u16::from_be_bytes(prefix));
        if len <= MIN_FRAME_LEN {
            return Err(DmsgError::code(ErrorCode::SignedObjectTooShort));
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body)
            .await
            .map_err(|e| DmsgError::io("reading a dial object", e))?;
        let (_, plain) = self.rx.open_object(&mut body).map_err(DmsgError::Frame)?;
        Ok(plain.to_vec())
    }
}

/// Runs the XK handshake as the dmsg client (initiator) on `tcp`, bounded by `timeout`.
pub(crate) async fn client_handshake(
    tcp: &mut TcpStream,
    sk: &SecKey,
    server: PubKey,
    timeout: Duration,
) -> Result<Transport, DmsgError> {
    let mut hs = Handshake::xk_initiator(sk, server).map_err(DmsgError::Noise)?;
    run_handshake(tcp, &mut hs, timeout).await?;
    hs.into_transport().map_err(DmsgError::Noise)
}

/// Runs the XK handshake as the dmsg server (responder); returns the client's key too.
pub(crate) async fn server_handshake(
    tcp: &mut TcpStream,
    sk: &SecKey,
    timeout: Duration,
) -> Result<(PubKey, Transport), DmsgError> {
    let mut hs = Handshake::xk_responder(sk).map_err(DmsgError::Noise)?;
    run_handshake(tcp, &mut hs, timeout).await?;
    let transport = hs.into_transport().map_err(DmsgError::Noise)?;
    let remote = transport
        .remote_static()
        .copied()
        .ok_or_else(|| DmsgError::Noise(skywire_noise::NoiseError::RemoteStatic))?;
    Ok((remote, transport))
}

async fn run_handshake(
    tcp: &mut TcpStream,
    hs: &mut Handshake,
    timeout: Duration,
) -> Result<(), DmsgError> {
    match tokio::time::timeout(
        timeout,
        skywire_noise::stream::drive_framed_handshake(tcp, hs),
    )
    .await
    {
        Ok(r) => r.map_err(DmsgError::Noise),
        Err(_) => Err(DmsgError::Timeout(format!(
            "session handshake took longer than {timeout:?}"
        ))),
    }
}

/// Connects a TCP socket with a timeout and low-latency options.
pub(crate) async fn connect_tcp(addr: &str, timeout: Duration) -> Result<TcpStream, DmsgError> {
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            return Err(DmsgError::Connect {
                addr: addr.to_string(),
                source: e,
            });
        }
        Err(_) => {
            return Err(DmsgError::Connect {
                addr: addr.to_string(),
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {timeout:?}"),
                ),
            });
        }
    };
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// One live session per remote key (client: per server; server: per client). A newer session
/// for the same key replaces the older one; removal only removes the exact session that ended.
#[derive(Debug)]
pub(crate) struct SessionTable<T> {
    map: Mutex<HashMap<PubKey, Arc<T>>>,
}

impl<T> Default for SessionTable<T> {
    fn default() -> Self {
        SessionTable {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> SessionTable<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PubKey, Arc<T>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, pk: &PubKey) -> Option<Arc<T>> {
        self.lock().get(pk).cloned()
    }

    /// Inserts `session`, returning the one it replaces.
    pub(crate) fn insert(&self, pk: PubKey, session: Arc<T>) -> Option<Arc<T>> {
        self.lock().insert(pk, session)
    }

    /// Removes `pk` only if it still maps to `session`; true if it did.
    pub(crate) fn remove_if_same(&self, pk: &PubKey, session: &Arc<T>) -> bool {
        let mut map = self.lock();
        match map.get(pk) {
            Some(s) if Arc::ptr_eq(s, session) => map.remove(pk).is_some(),
            _ => false,
        }
    }

    /// Takes every session out of the table.
    pub(crate) fn drain(&self) -> Vec<Arc<T>> {
        self.lock().drain().map(|(_, s)| s).collect()
    }

    /// The keys, sorted.
    pub(crate) fn keys(&self) -> Vec<PubKey> {
        let mut keys: Vec<_> = self.lock().keys().copied().collect();
        keys.sort();
        keys
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
