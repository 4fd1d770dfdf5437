//! Pipelined SFTP v3 client over any byte stream: any number of requests in flight, answers
//! matched by request id (a table of waiting senders), one writer task batching outgoing packets
//! and one reader task dispatching answers.
//!
//! [`SftpClient::submit`] enqueues synchronously (the order on the wire is the order of calls,
//! which the mount relies on for write-behind) and returns a future for the answer; the typed
//! helpers (`stat`, `read`, `write`, …) are built on it. When the stream ends every waiting call
//! fails with [`SftpError::Closed`] and [`SftpClient::closed`] resolves.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot, watch};

use crate::sftp::{self, Attrs, NameEntry, Request, Response, StatVfs, ext, status};

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SftpError {
    /// The server answered with a non-OK status.
    #[error("sftp: status {code}: {message}")]
    Status {
        /// `SSH_FX_*` code.
        code: u32,
        /// The server's message.
        message: String,
    },
    /// The session is gone (stream closed or broken).
    #[error("sftp: connection closed")]
    Closed,
    /// The server sent something we cannot use.
    #[error("sftp: protocol error: {0}")]
    Protocol(String),
}

impl SftpError {
    /// The errno this error stands for. An `(os error N)` suffix in the message (our server
    /// sends the OS text) gives the exact errno; otherwise the status code is mapped.
    pub fn errno(&self) -> i32 {
        use nix::libc;
        match self {
            SftpError::Status { code, message } => {
                if let Some(n) = os_errno(message) {
                    return n;
                }
                match *code {
                    status::EOF => 0,
                    status::NO_SUCH_FILE => libc::ENOENT,
                    status::PERMISSION_DENIED => libc::EACCES,
                    status::OP_UNSUPPORTED => libc::ENOSYS,
                    status::NO_CONNECTION | status::CONNECTION_LOST => libc::ENOTCONN,
                    status::BAD_MESSAGE => libc::EBADMSG,
                    _ => libc::EIO,
                }
            }
            SftpError::Closed => libc::ENOTCONN,
            SftpError::Protocol(_) => libc::EPROTO,
        }
    }

    /// Whether this is the `EOF` status.
    pub fn is_eof(&self) -> bool {
        matches!(self, SftpError::Status { code, .. } if *code == status::EOF)
    }
}

/// `N` from a trailing `(os error N)`.
fn os_errno(msg: &str) -> Option<i32> {
    let rest = msg.strip_suffix(')')?;
    let i = rest.rfind("(os error ")?;
    rest[i + "(os error ".len()..]
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

type Waiters = Mutex<HashMap<u32, oneshot::Sender<Response>>>;

struct Inner {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    waiters: Waiters,
    next: AtomicU32,
    dead: AtomicBool,
    closed: watch::Receiver<bool>,
    extensions: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A connected SFTP session; cheap to clone.
#[derive(Clone)]
pub struct SftpClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SftpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SftpClient").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An answer that will arrive.
pub type Pending = oneshot::Receiver<Response>;

impl SftpClient {
    /// `INIT`/`VERSION` on `io`, then starts the reader and writer tasks (needs a tokio runtime).
    pub async fn new<IO>(io: IO) -> Result<SftpClient, SftpError>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let mut rd = BufReader::with_capacity(256 * 1024, rd);
        let mut wr = BufWriter::with_capacity(256 * 1024, wr);
        let mut init = Vec::new();
        Request::Init {
            version: sftp::VERSION,
            extensions: Vec::new(),
        }
        .encode(&mut init);
        wr.write_all(&init).await.map_err(|_| SftpError::Closed)?;
        wr.flush().await.map_err(|_| SftpError::Closed)?;
        let body = read_frame(&mut rd)
            .await
            .map_err(|e| SftpError::Protocol(format!("reading VERSION: {e}")))?
            .ok_or(SftpError::Closed)?;
        let extensions = match Response::decode(&body) {
            Ok(Response::Version {
                version,
                extensions,
            }) if version >= 3 => extensions,
            Ok(other) => {
                return Err(SftpError::Protocol(format!(
                    "expected VERSION 3: {other:?}"
                )));
            }
            Err(e) => return Err(SftpError::Protocol(e.to_string())),
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (closed_tx, closed) = watch::channel(false);
        let inner = Arc::new(Inner {
            tx,
            waiters: Mutex::new(HashMap::new()),
            next: AtomicU32::new(1),
            dead: AtomicBool::new(false),
            closed,
            extensions,
        });
        tokio::spawn(async move {
            while let Some(buf) = rx.recv().await {
                if wr.write_all(&buf).await.is_err() {
                    return;
                }
                while let Ok(more) = rx.try_recv() {
                    if wr.write_all(&more).await.is_err() {
                        return;
                    }
                }
                if wr.flush().await.is_err() {
                    return;
                }
            }
            let _ = wr.shutdown().await;
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            loop {
                let body = match read_frame(&mut rd).await {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "sftp client: reading");
                        break;
                    }
                };
                let resp = match Response::decode(&body) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "sftp client: undecodable answer");
                        break;
                    }
                };
                let Some(inner) = weak.upgrade() else { break };
                let Some(id) = resp.id() else { continue };
                let waiter = lock(&inner.waiters).remove(&id);
                if let Some(w) = waiter {
                    let _ = w.send(resp);
                }
            }
            if let Some(inner) = weak.upgrade() {
                inner.dead.store(true, Ordering::SeqCst);
                lock(&inner.waiters).clear();
            }
            let _ = closed_tx.send(true);
        });
        Ok(SftpClient { inner })
    }

    /// Whether the server announced extension `name`.
    pub fn has_extension(&self, name: &str) -> bool {
        self.inner
            .extensions
            .iter()
            .any(|(k, _)| k == name.as_bytes())
    }

    /// Resolves when the session has ended.
    pub async fn closed(&self) {
        let mut c = self.inner.closed.clone();
        let _ = c.wait_for(|v| *v).await;
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.dead.load(Ordering::SeqCst)
    }

    /// Ends the session (the writer shuts the stream down once queued packets are out).
    pub fn close(&self) {
        self.inner.dead.store(true, Ordering::SeqCst);
        lock(&self.inner.waiters).clear();
    }

    /// Enqueues the request built from a fresh id; the packet goes out in call order.
    pub fn submit(&self, build: impl FnOnce(u32) -> Request) -> Result<Pending, SftpError> {
        if self.is_closed() {
            return Err(SftpError::Closed);
        }
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let req = build(id);
        tracing::trace!(id, kind = kind(&req), "sftp request");
        let mut out = Vec::new();
        req.encode(&mut out);
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.waiters).insert(id, tx);
        if self.inner.tx.send(out).is_err() {
            lock(&self.inner.waiters).remove(&id);
            return Err(SftpError::Closed);
        }
        Ok(rx)
    }

    /// Sends a request and waits for its answer.
    pub async fn call(&self, build: impl FnOnce(u32) -> Request) -> Result<Response, SftpError> {
        self.submit(build)?.await.map_err(|_| SftpError::Closed)
    }

    /// `OK` status or the error.
    pub async fn call_ok(&self, build: impl FnOnce(u32) -> Request) -> Result<(), SftpError> {
        expect_ok(self.call(build).await?)
    }

    /// `LSTAT`.
    pub async fn lstat(&self, path: &[u8]) -> Result<Attrs, SftpError> {
        let path = path.to_vec();
        expect_attrs(self.call(|id| Request::Lstat { id, path }).await?)
    }

    /// `STAT` (follows symlinks).
    pub async fn stat(&self, path: &[u8]) -> Result<Attrs, SftpError> {
        let path = path.to_vec();
        expect_attrs(self.call(|id| Request::Stat { id, path }).await?)
    }

    /// `FSTAT`.
    pub async fn fstat(&self, handle: &[u8]) -> Result<Attrs, SftpError> {
        let handle = handle.to_vec();
        expect_attrs(self.call(|id| Request::Fstat { id, handle }).await?)
    }

    /// `SETSTAT`.
    pub async fn setstat(&self, path: &[u8], attrs: Attrs) -> Result<(), SftpError> {
        let path = path.to_vec();
        self.call_ok(|id| Request::Setstat { id, path, attrs })
            .await
    }

    /// `FSETSTAT`.
    pub async fn fsetstat(&self, handle: &[u8], attrs: Attrs) -> Result<(), SftpError> {
        let handle = handle.to_vec();
        self.call_ok(|id| Request::Fsetstat { id, handle, attrs })
            .await
    }

    /// `OPEN` with `SSH_FXF_*` flags; returns the handle.
    pub async fn open(&self, path: &[u8], pflags: u32, attrs: Attrs) -> Result<Vec<u8>, SftpError> {
        let path = path.to_vec();
        expect_handle(
            self.call(|id| Request::Open {
                id,
                path,
                pflags,
                attrs,
            })
            .await?,
        )
    }

    /// `CLOSE`.
    pub async fn close_handle(&self, handle: &[u8]) -> Result<(), SftpError> {
        let handle = handle.to_vec();
        self.call_ok(|id| Request::Close { id, handle }).await
    }

    /// One `READ`: the data (short at end of file), empty at EOF.
    pub async fn read(&self, handle: &[u8], offset: u64, len: u32) -> Result<Vec<u8>, SftpError> {
        let handle = handle.to_vec();
        match self
            .call(|id| Request::Read {
                id,
                handle,
                offset,
                len,
            })
            .await?
        {
            Response::Data { data, .. } => Ok(data),
            other => match expect_ok(other) {
                Ok(()) => Ok(Vec::new()),
                Err(e) if e.is_eof() => Ok(Vec::new()),
                Err(e) => Err(e),
            },
        }
    }

    /// Reads `len` bytes at `offset` as parallel `READ`s of at most `chunk` bytes (short only at
    /// end of file).
    pub async fn read_range(
        &self,
        handle: &[u8],
        offset: u64,
        len: usize,
        chunk: u32,
    ) -> Result<Vec<u8>, SftpError> {
        let chunk = chunk.max(1) as usize;
        let mut pending = Vec::new();
        let mut at = 0usize;
        while at < len {
            let n = chunk.min(len - at);
            let h = handle.to_vec();
            let off = offset + at as u64;
            pending.push((
                n,
                self.submit(|id| Request::Read {
                    id,
                    handle: h,
                    offset: off,
                    len: n as u32,
                })?,
            ));
            at += n;
        }
        let mut out = Vec::with_capacity(len);
        let mut short = false;
        for (n, p) in pending {
            let resp = p.await.map_err(|_| SftpError::Closed)?;
            if short {
                continue;
            }
            match resp {
                Response::Data { data, .. } => {
                    let got = data.len();
                    out.extend_from_slice(&data);
                    if got < n {
                        short = true;
                    }
                }
                other => match expect_ok(other) {
                    Ok(()) => short = true,
                    Err(e) if e.is_eof() => short = true,
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(out)
    }

    /// One `WRITE` (waits for the answer).
    pub async fn write(&self, handle: &[u8], offset: u64, data: Vec<u8>) -> Result<(), SftpError> {
        let handle = handle.to_vec();
        self.call_ok(|id| Request::Write {
            id,
            handle,
            offset,
            data,
        })
        .await
    }

    /// All entries of a directory: `OPENDIR`, then `READDIR`s pipelined 8 at a time (a server
    /// answers requests on one handle in order, so they return successive batches) until EOF,
    /// then a `CLOSE` that is not waited for.
    pub async fn read_dir(&self, path: &[u8]) -> Result<Vec<NameEntry>, SftpError> {
        const AHEAD: usize = 8;
        let p = path.to_vec();
        let handle = expect_handle(self.call(|id| Request::Opendir { id, path: p }).await?)?;
        let mut all = Vec::new();
        let res = 'outer: loop {
            let mut batch = Vec::with_capacity(AHEAD);
            for _ in 0..AHEAD {
                let h = handle.clone();
                match self.submit(|id| Request::Readdir { id, handle: h }) {
                    Ok(p) => batch.push(p),
                    Err(e) => break 'outer Err(e),
                }
            }
            let mut done = None;
            for p in batch {
                let r = p.await.map_err(|_| SftpError::Closed);
                if done.is_some() {
                    continue;
                }
                match r {
                    Ok(Response::Name { entries, .. }) => all.extend(entries),
                    Ok(other) => match expect_ok(other) {
                        Err(e) if e.is_eof() => done = Some(Ok(())),
                        Err(e) => done = Some(Err(e)),
                        Ok(()) => done = Some(Ok(())),
                    },
                    Err(e) => done = Some(Err(e)),
                }
            }
            if let Some(d) = done {
                break d;
            }
        };
        let h = handle;
        let _ = self.submit(|id| Request::Close { id, handle: h });
        res.map(|()| all)
    }

    /// `REMOVE`.
    pub async fn remove(&self, path: &[u8]) -> Result<(), SftpError> {
        let path = path.to_vec();
        self.call_ok(|id| Request::Remove { id, path }).await
    }

    /// `MKDIR`.
    pub async fn mkdir(&self, path: &[u8], attrs: Attrs) -> Result<(), SftpError> {
        let path = path.to_vec();
        self.call_ok(|id| Request::Mkdir { id, path, attrs }).await
    }

    /// `RMDIR`.
    pub async fn rmdir(&self, path: &[u8]) -> Result<(), SftpError> {
        let path = path.to_vec();
        self.call_ok(|id| Request::Rmdir { id, path }).await
    }

    /// `REALPATH`.
    pub async fn realpath(&self, path: &[u8]) -> Result<Vec<u8>, SftpError> {
        let path = path.to_vec();
        first_name(self.call(|id| Request::Realpath { id, path }).await?)
    }

    /// `READLINK`.
    pub async fn readlink(&self, path: &[u8]) -> Result<Vec<u8>, SftpError> {
        let path = path.to_vec();
        first_name(self.call(|id| Request::Readlink { id, path }).await?)
    }

    /// `SYMLINK`: a new link at `link` pointing to `target`.
    pub async fn symlink(&self, target: &[u8], link: &[u8]) -> Result<(), SftpError> {
        let (target, link) = (target.to_vec(), link.to_vec());
        self.call_ok(|id| Request::Symlink { id, target, link })
            .await
    }

    /// Rename replacing an existing target (`posix-rename@openssh.com` when offered, else v3
    /// `RENAME`, which fails if the target exists).
    pub async fn rename(&self, old: &[u8], new: &[u8]) -> Result<(), SftpError> {
        let (old, new) = (old.to_vec(), new.to_vec());
        if self.has_extension(ext::POSIX_RENAME) {
            let mut data = Vec::new();
            sftp::encode_string(&mut data, &old);
            sftp::encode_string(&mut data, &new);
            return self
                .call_ok(|id| Request::Extended {
                    id,
                    name: ext::POSIX_RENAME.as_bytes().to_vec(),
                    data,
                })
                .await;
        }
        self.call_ok(|id| Request::Rename { id, old, new }).await
    }

    /// `hardlink@openssh.com`.
    pub async fn hardlink(&self, old: &[u8], new: &[u8]) -> Result<(), SftpError> {
        if !self.has_extension(ext::HARDLINK) {
            return Err(unsupported());
        }
        let mut data = Vec::new();
        sftp::encode_string(&mut data, old);
        sftp::encode_string(&mut data, new);
        self.call_ok(|id| Request::Extended {
            id,
            name: ext::HARDLINK.as_bytes().to_vec(),
            data,
        })
        .await
    }

    /// `fsync@openssh.com` (a no-op success when the server lacks it).
    pub async fn fsync(&self, handle: &[u8]) -> Result<(), SftpError> {
        if !self.has_extension(ext::FSYNC) {
            return Ok(());
        }
        let mut data = Vec::new();
        sftp::encode_string(&mut data, handle);
        self.call_ok(|id| Request::Extended {
            id,
            name: ext::FSYNC.as_bytes().to_vec(),
            data,
        })
        .await
    }

    /// `statvfs@openssh.com`.
    pub async fn statvfs(&self, path: &[u8]) -> Result<StatVfs, SftpError> {
        if !self.has_extension(ext::STATVFS) {
            return Err(unsupported());
        }
        let mut data = Vec::new();
        sftp::encode_string(&mut data, path);
        match self
            .call(|id| Request::Extended {
                id,
                name: ext::STATVFS.as_bytes().to_vec(),
                data,
            })
            .await?
        {
            Response::ExtendedReply { data, .. } => {
                StatVfs::decode(&data).map_err(|e| SftpError::Protocol(e.to_string()))
            }
            other => Err(expect_ok(other).err().unwrap_or_else(unexpected)),
        }
    }
}

/// The packet type's name (for traces).
fn kind(r: &Request) -> &'static str {
    match r {
        Request::Init { .. } => "INIT",
        Request::Open { .. } => "OPEN",
        Request::Close { .. } => "CLOSE",
        Request::Read { .. } => "READ",
        Request::Write { .. } => "WRITE",
        Request::Lstat { .. } => "LSTAT",
        Request::Fstat { .. } => "FSTAT",
        Request::Setstat { .. } => "SETSTAT",
        Request::Fsetstat { .. } => "FSETSTAT",
        Request::Opendir { .. } => "OPENDIR",
        Request::Readdir { .. } => "READDIR",
        Request::Remove { .. } => "REMOVE",
        Request::Mkdir { .. } => "MKDIR",
        Request::Rmdir { .. } => "RMDIR",
        Request::Realpath { .. } => "REALPATH",
        Request::Stat { .. } => "STAT",
        Request::Rename { .. } => "RENAME",
        Request::Readlink { .. } => "READLINK",
        Request::Symlink { .. } => "SYMLINK",
        Request::Extended { .. } => "EXTENDED",
    }
}

fn unsupported() -> SftpError {
    SftpError::Status {
        code: status::OP_UNSUPPORTED,
        message: "extension not offered by the server".into(),
    }
}

fn unexpected() -> SftpError {
    SftpError::Protocol("unexpected answer".into())
}

/// `OK` → `Ok(())`, another status → its error, anything else → protocol error.
pub fn expect_ok(r: Response) -> Result<(), SftpError> {
    match r {
        Response::Status { code, .. } if code == status::OK => Ok(()),
        Response::Status { code, message, .. } => Err(SftpError::Status {
            code,
            message: String::from_utf8_lossy(&message).into_owned(),
        }),
        _ => Err(unexpected()),
    }
}

fn expect_attrs(r: Response) -> Result<Attrs, SftpError> {
    match r {
        Response::Attrs { attrs, .. } => Ok(attrs),
        other => Err(expect_ok(other).err().unwrap_or_else(unexpected)),
    }
}

fn expect_handle(r: Response) -> Result<Vec<u8>, SftpError> {
    match r {
        Response::Handle { handle, .. } => Ok(handle),
        other => Err(expect_ok(other).err().unwrap_or_else(unexpected)),
    }
}

fn first_name(r: Response) -> Result<Vec<u8>, SftpError> {
    match r {
        Response::Name { entries, .. } => entries
            .into_iter()
            .next()
            .map(|e| e.filename)
            .ok_or_else(unexpected),
        other => Err(expect_ok(other).err().unwrap_or_else(unexpected)),
    }
}

async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let total = sftp::frame_len(&len)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        .unwrap_or(4);
    let mut body = vec![0u8; total - 4];
    rd.read_exact(&mut body).await?;
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_from_message() {
        let e = SftpError::Status {
            code: status::FAILURE,
            message: "Directory not empty (os error 39)".into(),
        };
        assert_eq!(e.errno(), 39);
        let e = SftpError::Status {
            code: status::NO_SUCH_FILE,
            message: "No such file".into(),
        };
        assert_eq!(e.errno(), nix::libc::ENOENT);
    }
}
