//! SFTP v3 server over any byte stream, backed by the local filesystem as the host process sees
//! it (the `dmsgpty/sftp` subsystem, pty.md 7; also `sftp -D` over stdio).
//!
//! Concurrency: the reader decodes requests and never waits on the filesystem. Path requests
//! (stat, mkdir, rename, …) each run on tokio's blocking pool, so a slow read never delays a stat.
//! Requests on one open handle go, in arrival order, to that handle's own worker task (pread/
//! pwrite through `FileExt` on the blocking pool, every queued request of the handle in one
//! blocking job), which keeps the SFTP rule that requests on one file are processed in order
//! while different files proceed in parallel. No thread is created per handle: opening many
//! small files costs no thread spawns. Responses are written as they complete (out
//! of order across handles) by one writer task that batches them into few writes.
//!
//! Names are raw bytes end to end (`OsStrExt`), so non-UTF-8 file names survive. Errors carry the
//! OS text (with its `(os error N)` suffix, which our client maps back to the exact errno).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;

use crate::sftp::{self, Attrs, NameEntry, Request, Response, StatVfs, ext, pflags, status};

/// Largest `READ` answered in one `DATA` packet.
pub const MAX_READ: u32 = 1024 * 1024;
/// Entries per `READDIR` answer.
const READDIR_BATCH: usize = 128;
/// Open handles per session.
const MAX_HANDLES: usize = 4096;

/// Server options.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Refuse every modifying request with `PERMISSION_DENIED`.
    pub read_only: bool,
}

/// Why a session ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The stream failed.
    #[error("sftp server: i/o")]
    Io(#[from] io::Error),
    /// The first packet was not `INIT`, or a frame was malformed.
    #[error("sftp server: protocol")]
    Protocol(#[from] sftp::CodecError),
    /// The first packet was not `INIT`.
    #[error("sftp server: expected INIT first")]
    NoInit,
}

type Job = (Request, mpsc::UnboundedSender<Vec<u8>>);

struct State {
    handles: Mutex<HashMap<u32, mpsc::UnboundedSender<Job>>>,
    rt: tokio::runtime::Handle,
    next: AtomicU32,
    read_only: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves one SFTP session on `io` until the client closes it.
pub async fn serve<IO>(io: IO, config: ServerConfig) -> Result<(), ServerError>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (rd, wr) = tokio::io::split(io);
    let mut rd = BufReader::with_capacity(256 * 1024, rd);
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::with_capacity(256 * 1024, wr);
        while let Some(buf) = rx.recv().await {
            w.write_all(&buf).await?;
            while let Ok(more) = rx.try_recv() {
                w.write_all(&more).await?;
            }
            w.flush().await?;
        }
        w.shutdown().await?;
        Ok::<(), io::Error>(())
    });

    let first = read_frame(&mut rd).await?.ok_or(ServerError::NoInit)?;
    match Request::decode(&first)? {
        Request::Init { .. } => {}
        _ => return Err(ServerError::NoInit),
    }
    let mut out = Vec::new();
    Response::Version {
        version: sftp::VERSION,
        extensions: [
            (ext::POSIX_RENAME, "1"),
            (ext::STATVFS, "2"),
            (ext::FSTATVFS, "2"),
            (ext::FSYNC, "1"),
            (ext::HARDLINK, "1"),
            (ext::OPEN_READ, "1"),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect(),
    }
    .encode(&mut out);
    let _ = tx.send(out);

    let state = Arc::new(State {
        handles: Mutex::new(HashMap::new()),
        next: AtomicU32::new(1),
        rt: tokio::runtime::Handle::current(),
        read_only: config.read_only,
    });
    let result = loop {
        let body = match read_frame(&mut rd).await {
            Ok(Some(b)) => b,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let req = match Request::decode(&body) {
            Ok(r) => r,
            Err(e) => {
                // Answer with the id when we can read one, else give up on the stream.
                if body.len() >= 5 {
                    let id = u32::from_be_bytes([body[1], body[2], body[3], body[4]]);
                    let code = if matches!(e, sftp::CodecError::UnknownType(_)) {
                        status::OP_UNSUPPORTED
                    } else {
                        status::BAD_MESSAGE
                    };
                    send(&tx, Response::status(id, code, &e.to_string()));
                    continue;
                }
                break Err(e.into());
            }
        };
        dispatch(&state, req, &tx);
    };
    // Stop the handle workers (they finish queued jobs first), then the writer.
    lock(&state.handles).clear();
    drop(tx);
    match writer.await {
        Ok(Ok(())) | Err(_) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "sftp server: writing responses"),
    }
    result
}

/// One frame body, `None` at a clean end of stream.
async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R) -> Result<Option<Vec<u8>>, ServerError> {
    let mut len = [0u8; 4];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let n = sftp::frame_len(&len)?.unwrap_or(4) - 4;
    let mut body = vec![0u8; n];
    rd.read_exact(&mut body).await?;
    Ok(Some(body))
}

fn send(tx: &mpsc::UnboundedSender<Vec<u8>>, resp: Response) {
    let mut out = Vec::new();
    resp.encode(&mut out);
    let _ = tx.send(out);
}

fn handle_id(h: &[u8]) -> Option<u32> {
    let b: [u8; 4] = h.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

fn is_modifying(req: &Request) -> bool {
    match req {
        Request::Open { pflags: f, .. } => {
            f & (pflags::WRITE | pflags::APPEND | pflags::CREAT | pflags::TRUNC) != 0
        }
        Request::Write { .. }
        | Request::Setstat { .. }
        | Request::Fsetstat { .. }
        | Request::Remove { .. }
        | Request::Mkdir { .. }
        | Request::Rmdir { .. }
        | Request::Rename { .. }
        | Request::Symlink { .. } => true,
        Request::Extended { name, .. } => {
            name != ext::STATVFS.as_bytes()
                && name != ext::FSTATVFS.as_bytes()
                && name != ext::OPEN_READ.as_bytes()
        }
        _ => false,
    }
}

fn dispatch(state: &Arc<State>, req: Request, tx: &mpsc::UnboundedSender<Vec<u8>>) {
    let id = req.id().unwrap_or(0);
    if state.read_only && is_modifying(&req) {
        send(
            tx,
            Response::status(id, status::PERMISSION_DENIED, "read-only server"),
        );
        return;
    }
    let handle = match &req {
        Request::Close { handle, .. }
        | Request::Read { handle, .. }
        | Request::Write { handle, .. }
        | Request::Fstat { handle, .. }
        | Request::Fsetstat { handle, .. }
        | Request::Readdir { handle, .. } => Some(handle.clone()),
        Request::Extended { name, data, .. }
            if name == ext::FSYNC.as_bytes() || name == ext::FSTATVFS.as_bytes() =>
        {
            Some(sftp::Reader(data).string().unwrap_or_default())
        }
        _ => None,
    };
    if let Some(h) = handle {
        let is_close = matches!(req, Request::Close { .. });
        let worker = handle_id(&h).and_then(|hid| {
            let mut table = lock(&state.handles);
            if is_close {
                table.remove(&hid)
            } else {
                table.get(&hid).cloned()
            }
        });
        match worker {
            Some(w) => {
                if let Err(mpsc::error::SendError((req, _))) = w.send((req, tx.clone())) {
                    send(
                        tx,
                        Response::status(req.id().unwrap_or(0), status::FAILURE, "handle gone"),
                    );
                }
            }
            None => send(tx, Response::status(id, status::FAILURE, "invalid handle")),
        }
        return;
    }
    let state = state.clone();
    let tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let resp = match path_request(&state, req, &tx) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => io_status(id, &e),
        };
        send(&tx, resp);
    });
}

/// A status answer for an I/O error.
fn io_status(id: u32, e: &io::Error) -> Response {
    let code = match e.kind() {
        io::ErrorKind::NotFound => status::NO_SUCH_FILE,
        io::ErrorKind::PermissionDenied => status::PERMISSION_DENIED,
        io::ErrorKind::Unsupported => status::OP_UNSUPPORTED,
        _ => status::FAILURE,
    };
    Response::status(id, code, &e.to_string())
}

fn ok(id: u32) -> Response {
    Response::status(id, status::OK, "Success")
}

fn path(b: &[u8]) -> &Path {
    if b.is_empty() {
        Path::new(".")
    } else {
        Path::new(OsStr::from_bytes(b))
    }
}

/// Attributes of a file.
pub fn attrs_of(m: &fs::Metadata) -> Attrs {
    let clamp = |t: i64| t.clamp(0, u32::MAX as i64) as u32;
    Attrs {
        size: Some(m.size()),
        uid_gid: Some((m.uid(), m.gid())),
        perm: Some(m.mode()),
        atime_mtime: Some((clamp(m.atime()), clamp(m.mtime()))),
        extended: Vec::new(),
    }
}

/// A handle worker: owns the open file or directory and runs its requests in order.
enum Open {
    File(File),
    Dir { path: PathBuf, iter: fs::ReadDir },
}

fn new_handle(state: &Arc<State>, open: Open) -> io::Result<Vec<u8>> {
    let mut table = lock(&state.handles);
    if table.len() >= MAX_HANDLES {
        return Err(io::Error::other("too many open handles"));
    }
    let hid = loop {
        let n = state.next.fetch_add(1, Ordering::Relaxed);
        if !table.contains_key(&n) {
            break n;
        }
    };
    let (jtx, jrx) = mpsc::unbounded_channel::<Job>();
    state.rt.spawn(handle_worker(open, jrx));
    table.insert(hid, jtx);
    Ok(hid.to_be_bytes().to_vec())
}

/// Jobs of one handle run in one blocking job per batch of queued requests.
const HANDLE_BATCH: usize = 64;

async fn handle_worker(open: Open, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut open = Some(open);
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < HANDLE_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let Some(mut o) = open.take() else { return };
        let run = tokio::task::spawn_blocking(move || {
            for (req, tx) in batch {
                let id = req.id().unwrap_or(0);
                let close = matches!(req, Request::Close { .. });
                let resp = handle_request(&mut o, req).unwrap_or_else(|e| io_status(id, &e));
                if close {
                    // The file is closed before the answer leaves.
                    drop(o);
                    send(&tx, resp);
                    return None;
                }
                send(&tx, resp);
            }
            Some(o)
        })
        .await;
        match run {
            Ok(Some(o)) => open = Some(o),
            Ok(None) | Err(_) => return,
        }
    }
}

fn handle_request(open: &mut Open, req: Request) -> io::Result<Response> {
    match (open, req) {
        (_, Request::Close { id, .. }) => Ok(ok(id)),
        (
            Open::File(f),
            Request::Read {
                id, offset, len, ..
            },
        ) => {
            let len = len.min(MAX_READ) as usize;
            let buf = read_at_most(f, offset, len)?;
            if buf.is_empty() && len > 0 {
                return Ok(Response::status(id, status::EOF, "EOF"));
            }
            Ok(Response::Data { id, data: buf })
        }
        (
            Open::File(f),
            Request::Write {
                id, offset, data, ..
            },
        ) => {
            f.write_all_at(&data, offset)?;
            Ok(ok(id))
        }
        (Open::File(f), Request::Fstat { id, .. }) => Ok(Response::Attrs {
            id,
            attrs: attrs_of(&f.metadata()?),
        }),
        (Open::Dir { path, .. }, Request::Fstat { id, .. }) => Ok(Response::Attrs {
            id,
            attrs: attrs_of(&fs::metadata(path)?),
        }),
        (Open::File(f), Request::Fsetstat { id, attrs, .. }) => {
            set_file_attrs(f, &attrs)?;
            Ok(ok(id))
        }
        (Open::Dir { path, .. }, Request::Fsetstat { id, attrs, .. }) => {
            set_path_attrs(path, &attrs)?;
            Ok(ok(id))
        }
        (Open::Dir { path, iter }, Request::Readdir { id, .. }) => {
            let mut entries = Vec::new();
            for ent in iter.by_ref() {
                let ent = ent?;
                let name = ent.file_name();
                let Ok(m) = fs::symlink_metadata(path.join(&name)) else {
                    continue; // vanished meanwhile
                };
                let attrs = attrs_of(&m);
                entries.push(NameEntry {
                    longname: longname(name.as_bytes(), &m),
                    filename: name.as_bytes().to_vec(),
                    attrs,
                });
                if entries.len() >= READDIR_BATCH {
                    break;
                }
            }
            if entries.is_empty() {
                return Ok(Response::status(id, status::EOF, "EOF"));
            }
            Ok(Response::Name { id, entries })
        }
        (Open::File(f), Request::Extended { id, name, .. }) if name == ext::FSYNC.as_bytes() => {
            f.sync_all()?;
            Ok(ok(id))
        }
        (Open::File(f), Request::Extended { id, name, .. }) if name == ext::FSTATVFS.as_bytes() => {
            let s = nix::sys::statvfs::fstatvfs(&*f).map_err(io::Error::from)?;
            Ok(statvfs_reply(id, &s))
        }
        (_, req) => Ok(Response::status(
            req.id().unwrap_or(0),
            status::FAILURE,
            "request not valid on this handle",
        )),
    }
}

/// Up to `len` bytes at `offset` (short only at end of file).
fn read_at_most(f: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match f.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

fn statvfs_reply(id: u32, s: &nix::sys::statvfs::Statvfs) -> Response {
    let mut data = Vec::new();
    StatVfs {
        bsize: s.block_size(),
        frsize: s.fragment_size(),
        blocks: s.blocks(),
        bfree: s.blocks_free(),
        bavail: s.blocks_available(),
        files: s.files(),
        ffree: s.files_free(),
        favail: s.files_available(),
        fsid: s.filesystem_id(),
        flag: s.flags().bits(),
        namemax: s.name_max(),
    }
    .encode(&mut data);
    Response::ExtendedReply { id, data }
}

fn set_file_attrs(f: &File, a: &Attrs) -> io::Result<()> {
    if let Some(size) = a.size {
        f.set_len(size)?;
    }
    if let Some((u, g)) = a.uid_gid {
        std::os::unix::fs::fchown(f, Some(u), Some(g))?;
    }
    if let Some(p) = a.perm {
        f.set_permissions(fs::Permissions::from_mode(p & 0o7777))?;
    }
    if let Some((at, mt)) = a.atime_mtime {
        let t = |s: u32| UNIX_EPOCH + Duration::from_secs(s.into());
        f.set_times(fs::FileTimes::new().set_accessed(t(at)).set_modified(t(mt)))?;
    }
    Ok(())
}

fn set_path_attrs(p: &Path, a: &Attrs) -> io::Result<()> {
    if let Some(size) = a.size {
        OpenOptions::new().write(true).open(p)?.set_len(size)?;
    }
    if let Some((u, g)) = a.uid_gid {
        std::os::unix::fs::chown(p, Some(u), Some(g))?;
    }
    if let Some(perm) = a.perm {
        fs::set_permissions(p, fs::Permissions::from_mode(perm & 0o7777))?;
    }
    if let Some((at, mt)) = a.atime_mtime {
        let ts = |s: u32| nix::sys::time::TimeSpec::new(s.into(), 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            p,
            &ts(at),
            &ts(mt),
            nix::sys::stat::UtimensatFlags::FollowSymlink,
        )
        .map_err(io::Error::from)?;
    }
    Ok(())
}

fn name_reply(id: u32, p: &[u8]) -> Response {
    Response::Name {
        id,
        entries: vec![NameEntry {
            filename: p.to_vec(),
            longname: p.to_vec(),
            attrs: Attrs::default(),
        }],
    }
}

/// Runs a request that names a path (or opens a handle). `Ok(None)`: already answered.
fn path_request(
    state: &Arc<State>,
    req: Request,
    _tx: &mpsc::UnboundedSender<Vec<u8>>,
) -> io::Result<Option<Response>> {
    let resp = match req {
        Request::Init { .. } => return Ok(None),
        Request::Open {
            id,
            path: p,
            pflags: f,
            attrs,
        } => {
            let mut o = OpenOptions::new();
            let write = f & (pflags::WRITE | pflags::APPEND) != 0;
            o.read(f & pflags::READ != 0 || !write)
                .write(f & pflags::WRITE != 0)
                .append(f & pflags::APPEND != 0)
                .truncate(f & pflags::TRUNC != 0);
            if f & pflags::CREAT != 0 {
                if f & pflags::EXCL != 0 {
                    o.create_new(true);
                } else {
                    o.create(true);
                }
            }
            o.mode(attrs.perm.map_or(0o666, |m| m & 0o7777));
            let file = o.open(path(&p))?;
            let handle = new_handle(state, Open::File(file))?;
            Response::Handle { id, handle }
        }
        Request::Opendir { id, path: p } => {
            let dir = path(&p).to_path_buf();
            let iter = fs::read_dir(&dir)?;
            let handle = new_handle(state, Open::Dir { path: dir, iter })?;
            Response::Handle { id, handle }
        }
        Request::Lstat { id, path: p } => Response::Attrs {
            id,
            attrs: attrs_of(&fs::symlink_metadata(path(&p))?),
        },
        Request::Stat { id, path: p } => Response::Attrs {
            id,
            attrs: attrs_of(&fs::metadata(path(&p))?),
        },
        Request::Setstat { id, path: p, attrs } => {
            set_path_attrs(path(&p), &attrs)?;
            ok(id)
        }
        Request::Remove { id, path: p } => {
            fs::remove_file(path(&p))?;
            ok(id)
        }
        Request::Mkdir { id, path: p, attrs } => {
            fs::DirBuilder::new()
                .mode(attrs.perm.map_or(0o777, |m| m & 0o7777))
                .create(path(&p))?;
            ok(id)
        }
        Request::Rmdir { id, path: p } => {
            fs::remove_dir(path(&p))?;
            ok(id)
        }
        Request::Realpath { id, path: p } => {
            let resolved = realpath(path(&p))?;
            name_reply(id, resolved.as_os_str().as_bytes())
        }
        Request::Rename { id, old, new } => {
            // v3 RENAME must not replace an existing target (posix-rename does).
            if fs::symlink_metadata(path(&new)).is_ok() {
                return Err(io::Error::from_raw_os_error(nix::libc::EEXIST));
            }
            fs::rename(path(&old), path(&new))?;
            ok(id)
        }
        Request::Readlink { id, path: p } => {
            let t = fs::read_link(path(&p))?;
            name_reply(id, t.as_os_str().as_bytes())
        }
        Request::Symlink { id, target, link } => {
            std::os::unix::fs::symlink(OsStr::from_bytes(&target), path(&link))?;
            ok(id)
        }
        Request::Extended { id, name, data } => {
            let mut r = sftp::Reader(&data);
            let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed extended request");
            match name.as_slice() {
                n if n == ext::POSIX_RENAME.as_bytes() => {
                    let (a, b) = (
                        r.string().map_err(|_| bad())?,
                        r.string().map_err(|_| bad())?,
                    );
                    fs::rename(path(&a), path(&b))?;
                    ok(id)
                }
                n if n == ext::HARDLINK.as_bytes() => {
                    let (a, b) = (
                        r.string().map_err(|_| bad())?,
                        r.string().map_err(|_| bad())?,
                    );
                    fs::hard_link(path(&a), path(&b))?;
                    ok(id)
                }
                n if n == ext::OPEN_READ.as_bytes() => {
                    let o = sftp::OpenRead::decode(&data).map_err(|_| bad())?;
                    // O_NONBLOCK: opening a FIFO must not block; only regular files qualify.
                    let file = OpenOptions::new()
                        .read(true)
                        .custom_flags(nix::libc::O_NONBLOCK)
                        .open(path(&o.path))?;
                    if !file.metadata()?.is_file() {
                        return Err(io::Error::from_raw_os_error(nix::libc::EINVAL));
                    }
                    let data = read_at_most(&file, 0, o.len.min(MAX_READ) as usize)?;
                    let handle = new_handle(state, Open::File(file))?;
                    let mut out = Vec::new();
                    sftp::OpenReadReply { handle, data }.encode(&mut out);
                    Response::ExtendedReply { id, data: out }
                }
                n if n == ext::STATVFS.as_bytes() => {
                    let p = r.string().map_err(|_| bad())?;
                    let s = nix::sys::statvfs::statvfs(path(&p)).map_err(io::Error::from)?;
                    statvfs_reply(id, &s)
                }
                _ => Response::status(id, status::OP_UNSUPPORTED, "unsupported extension"),
            }
        }
        other => Response::status(other.id().unwrap_or(0), status::FAILURE, "invalid handle"),
    };
    Ok(Some(resp))
}

/// Canonical absolute path; a path that does not exist (yet) is cleaned lexically instead.
fn realpath(p: &Path) -> io::Result<PathBuf> {
    if let Ok(c) = fs::canonicalize(p) {
        return Ok(c);
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    };
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

/// An `ls -l` style line (OpenSSH's `sftp` prints it for `ls -l`).
fn longname(name: &[u8], m: &fs::Metadata) -> Vec<u8> {
    let mode = m.mode();
    let t = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut perms = String::with_capacity(10);
    perms.push(t);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        perms.push(if bits & 4 != 0 { 'r' } else { '-' });
        perms.push(if bits & 2 != 0 { 'w' } else { '-' });
        perms.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let (y, mo, d) = civil(m.mtime().div_euclid(86400));
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.get(mo.saturating_sub(1) as usize).unwrap_or(&"Jan");
    let mut s = format!(
        "{perms} {:>4} {:<8} {:<8} {:>8} {month} {d:>2} {y:>5} ",
        m.nlink(),
        m.uid(),
        m.gid(),
        m.size()
    )
    .into_bytes();
    s.extend_from_slice(name);
    s
}

/// (year, month 1-12, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(-1), (1969, 12, 31));
    }
}
