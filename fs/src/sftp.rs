//! Sans-IO SFTP v3 packet codec (draft-ietf-secsh-filexfer-02, as spoken by OpenSSH and by the
//! reference's `pkg/sftp`): framing ([`frame_len`]), every v3 request and response as plain
//! enums ([`Request`], [`Response`]), file attributes ([`Attrs`]) and the OpenSSH extensions we
//! use (`posix-rename`, `statvfs`, `fstatvfs`, `fsync`, `hardlink`).
//!
//! Written by hand rather than with `russh-sftp` because that crate decodes file names and
//! handles as lossy UTF-8 `String`s (non-UTF-8 names would be mangled) and its server handler is
//! sequential; here names, paths and handles are raw bytes and decoding never panics (every read
//! is bounds-checked; malformed input is a [`CodecError`]).

/// Protocol version we speak.
pub const VERSION: u32 = 3;
/// Largest packet (length field value) we accept: a 1 MiB data payload plus headers.
pub const MAX_PACKET: u32 = 1024 * 1024 + 1024;

/// Packet type numbers.
pub mod kind {
    #![allow(missing_docs)]
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const READLINK: u8 = 19;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;
    pub const EXTENDED_REPLY: u8 = 201;
}

/// `SSH_FXF_*` open flags.
pub mod pflags {
    #![allow(missing_docs)]
    pub const READ: u32 = 0x01;
    pub const WRITE: u32 = 0x02;
    pub const APPEND: u32 = 0x04;
    pub const CREAT: u32 = 0x08;
    pub const TRUNC: u32 = 0x10;
    pub const EXCL: u32 = 0x20;
}

/// `SSH_FX_*` status codes.
pub mod status {
    #![allow(missing_docs)]
    pub const OK: u32 = 0;
    pub const EOF: u32 = 1;
    pub const NO_SUCH_FILE: u32 = 2;
    pub const PERMISSION_DENIED: u32 = 3;
    pub const FAILURE: u32 = 4;
    pub const BAD_MESSAGE: u32 = 5;
    pub const NO_CONNECTION: u32 = 6;
    pub const CONNECTION_LOST: u32 = 7;
    pub const OP_UNSUPPORTED: u32 = 8;
}

/// Extension names.
pub mod ext {
    #![allow(missing_docs)]
    pub const POSIX_RENAME: &str = "posix-rename@openssh.com";
    pub const STATVFS: &str = "statvfs@openssh.com";
    pub const FSTATVFS: &str = "fstatvfs@openssh.com";
    pub const FSYNC: &str = "fsync@openssh.com";
    pub const HARDLINK: &str = "hardlink@openssh.com";
    /// Ours (see [`OpenRead`](super::OpenRead)); used only when the server announces it.
    pub const OPEN_READ: &str = "open-read@skycoin.com";
}

/// `open-read@skycoin.com` request payload (our extension, announced in `VERSION`): open `path`
/// for reading and read up to `len` bytes at offset 0, answered in one round trip. The server
/// refuses anything but a regular file (and never blocks opening a FIFO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRead {
    /// File to open.
    pub path: Vec<u8>,
    /// Bytes to read at offset 0.
    pub len: u32,
}

/// `open-read@skycoin.com` reply payload (in `SSH_FXP_EXTENDED_REPLY`): the handle (as from
/// `OPEN`) and the data at offset 0 (short or empty at end of file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReadReply {
    /// Open handle; the client closes it.
    pub handle: Vec<u8>,
    /// The first bytes of the file.
    pub data: Vec<u8>,
}

impl OpenRead {
    /// Encodes the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, &self.path);
        put_u32(out, self.len);
    }

    /// Decodes the payload (no trailing bytes).
    pub fn decode(data: &[u8]) -> Result<OpenRead, CodecError> {
        let mut r = Reader(data);
        let o = OpenRead {
            path: r.string()?,
            len: r.u32()?,
        };
        r.finish()?;
        Ok(o)
    }
}

impl OpenReadReply {
    /// Encodes the payload.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, &self.handle);
        put_str(out, &self.data);
    }

    /// Decodes the payload (no trailing bytes).
    pub fn decode(data: &[u8]) -> Result<OpenReadReply, CodecError> {
        let mut r = Reader(data);
        let o = OpenReadReply {
            handle: r.string()?,
            data: r.string()?,
        };
        r.finish()?;
        Ok(o)
    }
}

const ATTR_SIZE: u32 = 0x1;
const ATTR_UIDGID: u32 = 0x2;
const ATTR_PERMISSIONS: u32 = 0x4;
const ATTR_ACMODTIME: u32 = 0x8;
const ATTR_EXTENDED: u32 = 0x8000_0000;

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The packet ended before a field was complete.
    #[error("sftp: truncated packet")]
    Truncated,
    /// The packet is empty or its type is unknown in this direction.
    #[error("sftp: unknown packet type {0}")]
    UnknownType(u8),
    /// The length prefix exceeds [`MAX_PACKET`] (or is zero).
    #[error("sftp: bad packet length {0}")]
    BadLength(u32),
    /// Bytes left over after the last field.
    #[error("sftp: {0} trailing bytes in packet")]
    Trailing(usize),
}

/// File attributes (`ATTRS`); absent fields are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Size in bytes.
    pub size: Option<u64>,
    /// Owner and group ids.
    pub uid_gid: Option<(u32, u32)>,
    /// `st_mode` (type and permission bits).
    pub perm: Option<u32>,
    /// Access and modification times (seconds since the epoch).
    pub atime_mtime: Option<(u32, u32)>,
    /// Extended attribute pairs.
    pub extended: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Statistics of a file system (`statvfs@openssh.com` reply).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StatVfs {
    pub bsize: u64,
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub favail: u64,
    pub fsid: u64,
    pub flag: u64,
    pub namemax: u64,
}

impl StatVfs {
    /// Encodes the reply payload (11 × u64).
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [
            self.bsize,
            self.frsize,
            self.blocks,
            self.bfree,
            self.bavail,
            self.files,
            self.ffree,
            self.favail,
            self.fsid,
            self.flag,
            self.namemax,
        ] {
            put_u64(out, v);
        }
    }

    /// Decodes the reply payload.
    pub fn decode(data: &[u8]) -> Result<StatVfs, CodecError> {
        let mut r = Reader(data);
        let s = StatVfs {
            bsize: r.u64()?,
            frsize: r.u64()?,
            blocks: r.u64()?,
            bfree: r.u64()?,
            bavail: r.u64()?,
            files: r.u64()?,
            ffree: r.u64()?,
            favail: r.u64()?,
            fsid: r.u64()?,
            flag: r.u64()?,
            namemax: r.u64()?,
        };
        r.finish()?;
        Ok(s)
    }
}

/// One entry of a `NAME` response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameEntry {
    /// File name (a path for `REALPATH`/`READLINK`).
    pub filename: Vec<u8>,
    /// `ls -l` style line.
    pub longname: Vec<u8>,
    /// Attributes.
    pub attrs: Attrs,
}

/// A client → server packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Request {
    Init {
        version: u32,
        extensions: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Open {
        id: u32,
        path: Vec<u8>,
        pflags: u32,
        attrs: Attrs,
    },
    Close {
        id: u32,
        handle: Vec<u8>,
    },
    Read {
        id: u32,
        handle: Vec<u8>,
        offset: u64,
        len: u32,
    },
    Write {
        id: u32,
        handle: Vec<u8>,
        offset: u64,
        data: Vec<u8>,
    },
    Lstat {
        id: u32,
        path: Vec<u8>,
    },
    Fstat {
        id: u32,
        handle: Vec<u8>,
    },
    Setstat {
        id: u32,
        path: Vec<u8>,
        attrs: Attrs,
    },
    Fsetstat {
        id: u32,
        handle: Vec<u8>,
        attrs: Attrs,
    },
    Opendir {
        id: u32,
        path: Vec<u8>,
    },
    Readdir {
        id: u32,
        handle: Vec<u8>,
    },
    Remove {
        id: u32,
        path: Vec<u8>,
    },
    Mkdir {
        id: u32,
        path: Vec<u8>,
        attrs: Attrs,
    },
    Rmdir {
        id: u32,
        path: Vec<u8>,
    },
    Realpath {
        id: u32,
        path: Vec<u8>,
    },
    Stat {
        id: u32,
        path: Vec<u8>,
    },
    Rename {
        id: u32,
        old: Vec<u8>,
        new: Vec<u8>,
    },
    Readlink {
        id: u32,
        path: Vec<u8>,
    },
    /// OpenSSH's (and `pkg/sftp`'s) argument order: the link target first, then the new link.
    Symlink {
        id: u32,
        target: Vec<u8>,
        link: Vec<u8>,
    },
    /// `SSH_FXP_EXTENDED`: `data` is the request-specific rest of the packet.
    Extended {
        id: u32,
        name: Vec<u8>,
        data: Vec<u8>,
    },
}

/// A server → client packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Response {
    Version {
        version: u32,
        extensions: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Status {
        id: u32,
        code: u32,
        message: Vec<u8>,
        lang: Vec<u8>,
    },
    Handle {
        id: u32,
        handle: Vec<u8>,
    },
    Data {
        id: u32,
        data: Vec<u8>,
    },
    Name {
        id: u32,
        entries: Vec<NameEntry>,
    },
    Attrs {
        id: u32,
        attrs: Attrs,
    },
    ExtendedReply {
        id: u32,
        data: Vec<u8>,
    },
}

impl Response {
    /// The request id this answers (`None` for `VERSION`).
    pub fn id(&self) -> Option<u32> {
        match self {
            Response::Version { .. } => None,
            Response::Status { id, .. }
            | Response::Handle { id, .. }
            | Response::Data { id, .. }
            | Response::Name { id, .. }
            | Response::Attrs { id, .. }
            | Response::ExtendedReply { id, .. } => Some(*id),
        }
    }

    /// A `STATUS` answer.
    pub fn status(id: u32, code: u32, message: &str) -> Response {
        Response::Status {
            id,
            code,
            message: message.as_bytes().to_vec(),
            lang: b"en".to_vec(),
        }
    }
}

/// Given the start of a byte stream, the total size of the first frame (4-byte length + body)
/// once its length is known: `Ok(None)` needs more bytes, `Err` for a length out of range.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, CodecError> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let n = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if n == 0 || n > MAX_PACKET {
        return Err(CodecError::BadLength(n));
    }
    Ok(Some(4 + n as usize))
}

// ---- encoding ----

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s);
}

/// Appends a length-prefixed string (for extension payloads).
pub fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    put_str(out, s);
}

impl Attrs {
    /// Encodes the attribute block.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.size.is_some() {
            flags |= ATTR_SIZE;
        }
        if self.uid_gid.is_some() {
            flags |= ATTR_UIDGID;
        }
        if self.perm.is_some() {
            flags |= ATTR_PERMISSIONS;
        }
        if self.atime_mtime.is_some() {
            flags |= ATTR_ACMODTIME;
        }
        if !self.extended.is_empty() {
            flags |= ATTR_EXTENDED;
        }
        put_u32(out, flags);
        if let Some(s) = self.size {
            put_u64(out, s);
        }
        if let Some((u, g)) = self.uid_gid {
            put_u32(out, u);
            put_u32(out, g);
        }
        if let Some(p) = self.perm {
            put_u32(out, p);
        }
        if let Some((a, m)) = self.atime_mtime {
            put_u32(out, a);
            put_u32(out, m);
        }
        if !self.extended.is_empty() {
            put_u32(out, self.extended.len() as u32);
            for (k, v) in &self.extended {
                put_str(out, k);
                put_str(out, v);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Attrs, CodecError> {
        let flags = r.u32()?;
        let mut a = Attrs::default();
        if flags & ATTR_SIZE != 0 {
            a.size = Some(r.u64()?);
        }
        if flags & ATTR_UIDGID != 0 {
            a.uid_gid = Some((r.u32()?, r.u32()?));
        }
        if flags & ATTR_PERMISSIONS != 0 {
            a.perm = Some(r.u32()?);
        }
        if flags & ATTR_ACMODTIME != 0 {
            a.atime_mtime = Some((r.u32()?, r.u32()?));
        }
        if flags & ATTR_EXTENDED != 0 {
            let n = r.u32()?;
            for _ in 0..n {
                // Each pair takes at least 8 bytes, so a huge count fails on Truncated quickly.
                a.extended.push((r.string()?, r.string()?));
            }
        }
        Ok(a)
    }
}

/// Wraps a body in its length prefix; `body` starts with the type byte.
fn finish_frame(out: &mut [u8], start: usize) {
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

impl Request {
    /// Appends the framed packet (length prefix included) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            Request::Init {
                version,
                extensions,
            } => {
                out.push(kind::INIT);
                put_u32(out, *version);
                for (k, v) in extensions {
                    put_str(out, k);
                    put_str(out, v);
                }
            }
            Request::Open {
                id,
                path,
                pflags,
                attrs,
            } => {
                out.push(kind::OPEN);
                put_u32(out, *id);
                put_str(out, path);
                put_u32(out, *pflags);
                attrs.encode(out);
            }
            Request::Close { id, handle } => id_str(out, kind::CLOSE, *id, handle),
            Request::Read {
                id,
                handle,
                offset,
                len,
            } => {
                id_str(out, kind::READ, *id, handle);
                put_u64(out, *offset);
                put_u32(out, *len);
            }
            Request::Write {
                id,
                handle,
                offset,
                data,
            } => {
                id_str(out, kind::WRITE, *id, handle);
                put_u64(out, *offset);
                put_str(out, data);
            }
            Request::Lstat { id, path } => id_str(out, kind::LSTAT, *id, path),
            Request::Fstat { id, handle } => id_str(out, kind::FSTAT, *id, handle),
            Request::Setstat { id, path, attrs } => {
                id_str(out, kind::SETSTAT, *id, path);
                attrs.encode(out);
            }
            Request::Fsetstat { id, handle, attrs } => {
                id_str(out, kind::FSETSTAT, *id, handle);
                attrs.encode(out);
            }
            Request::Opendir { id, path } => id_str(out, kind::OPENDIR, *id, path),
            Request::Readdir { id, handle } => id_str(out, kind::READDIR, *id, handle),
            Request::Remove { id, path } => id_str(out, kind::REMOVE, *id, path),
            Request::Mkdir { id, path, attrs } => {
                id_str(out, kind::MKDIR, *id, path);
                attrs.encode(out);
            }
            Request::Rmdir { id, path } => id_str(out, kind::RMDIR, *id, path),
            Request::Realpath { id, path } => id_str(out, kind::REALPATH, *id, path),
            Request::Stat { id, path } => id_str(out, kind::STAT, *id, path),
            Request::Rename { id, old, new } => {
                id_str(out, kind::RENAME, *id, old);
                put_str(out, new);
            }
            Request::Readlink { id, path } => id_str(out, kind::READLINK, *id, path),
            Request::Symlink { id, target, link } => {
                id_str(out, kind::SYMLINK, *id, target);
                put_str(out, link);
            }
            Request::Extended { id, name, data } => {
                id_str(out, kind::EXTENDED, *id, name);
                out.extend_from_slice(data);
            }
        }
        finish_frame(out, start);
    }

    /// The request id (`None` for `INIT`).
    pub fn id(&self) -> Option<u32> {
        match self {
            Request::Init { .. } => None,
            Request::Open { id, .. }
            | Request::Close { id, .. }
            | Request::Read { id, .. }
            | Request::Write { id, .. }
            | Request::Lstat { id, .. }
            | Request::Fstat { id, .. }
            | Request::Setstat { id, .. }
            | Request::Fsetstat { id, .. }
            | Request::Opendir { id, .. }
            | Request::Readdir { id, .. }
            | Request::Remove { id, .. }
            | Request::Mkdir { id, .. }
            | Request::Rmdir { id, .. }
            | Request::Realpath { id, .. }
            | Request::Stat { id, .. }
            | Request::Rename { id, .. }
            | Request::Readlink { id, .. }
            | Request::Symlink { id, .. }
            | Request::Extended { id, .. } => Some(*id),
        }
    }

    /// Decodes one packet body (after the length prefix, starting with the type byte).
    pub fn decode(body: &[u8]) -> Result<Request, CodecError> {
        let (&t, rest) = body.split_first().ok_or(CodecError::Truncated)?;
        let mut r = Reader(rest);
        let req = match t {
            kind::INIT => {
                let version = r.u32()?;
                let mut extensions = Vec::new();
                while !r.0.is_empty() {
                    extensions.push((r.string()?, r.string()?));
                }
                Request::Init {
                    version,
                    extensions,
                }
            }
            kind::OPEN => Request::Open {
                id: r.u32()?,
                path: r.string()?,
                pflags: r.u32()?,
                attrs: Attrs::decode(&mut r)?,
            },
            kind::CLOSE => Request::Close {
                id: r.u32()?,
                handle: r.string()?,
            },
            kind::READ => Request::Read {
                id: r.u32()?,
                handle: r.string()?,
                offset: r.u64()?,
                len: r.u32()?,
            },
            kind::WRITE => Request::Write {
                id: r.u32()?,
                handle: r.string()?,
                offset: r.u64()?,
                data: r.string()?,
            },
            kind::LSTAT => Request::Lstat {
                id: r.u32()?,
                path: r.string()?,
            },
            kind::FSTAT => Request::Fstat {
                id: r.u32()?,
                handle: r.string()?,
            },
            kind::SETSTAT => Request::Setstat {
                id: r.u32()?,
                path: r.string()?,
                attrs: Attrs::decode(&mut r)?,
            },
            kind::FSETSTAT => Request::Fsetstat {
                id: r.u32()?,
                handle: r.string()?,
                attrs: Attrs::decode(&mut r)?,
            },
            kind::OPENDIR => Request::Opendir {
                id: r.u32()?,
                path: r.string()?,
            },
            kind::READDIR => Request::Readdir {
                id: r.u32()?,
                handle: r.string()?,
            },
            kind::REMOVE => Request::Remove {
                id: r.u32()?,
                path: r.string()?,
            },
            kind::MKDIR => Request::Mkdir {
                id: r.u32()?,
                path: r.string()?,
                attrs: Attrs::decode(&mut r)?,
            },
            kind::RMDIR => Request::Rmdir {
                id: r.u32()?,
                path: r.string()?,
            },
            kind::REALPATH => {
                let id = r.u32()?;
                let path = r.string()?;
                // OpenSSH clients may append a control byte and compose paths (v6 style); ignore.
                r.0 = &[];
                Request::Realpath { id, path }
            }
            kind::STAT => Request::Stat {
                id: r.u32()?,
                path: r.string()?,
            },
            kind::RENAME => {
                let id = r.u32()?;
                let old = r.string()?;
                let new = r.string()?;
                // v5+ clients append rename flags; ignore them.
                r.0 = &[];
                Request::Rename { id, old, new }
            }
            kind::READLINK => Request::Readlink {
                id: r.u32()?,
                path: r.string()?,
            },
            kind::SYMLINK => Request::Symlink {
                id: r.u32()?,
                target: r.string()?,
                link: r.string()?,
            },
            kind::EXTENDED => {
                let id = r.u32()?;
                let name = r.string()?;
                let data = std::mem::take(&mut r.0).to_vec();
                Request::Extended { id, name, data }
            }
            other => return Err(CodecError::UnknownType(other)),
        };
        r.finish()?;
        Ok(req)
    }
}

fn id_str(out: &mut Vec<u8>, t: u8, id: u32, s: &[u8]) {
    out.push(t);
    put_u32(out, id);
    put_str(out, s);
}

impl Response {
    /// Appends the framed packet (length prefix included) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        match self {
            Response::Version {
                version,
                extensions,
            } => {
                out.push(kind::VERSION);
                put_u32(out, *version);
                for (k, v) in extensions {
                    put_str(out, k);
                    put_str(out, v);
                }
            }
            Response::Status {
                id,
                code,
                message,
                lang,
            } => {
                out.push(kind::STATUS);
                put_u32(out, *id);
                put_u32(out, *code);
                put_str(out, message);
                put_str(out, lang);
            }
            Response::Handle { id, handle } => id_str(out, kind::HANDLE, *id, handle),
            Response::Data { id, data } => id_str(out, kind::DATA, *id, data),
            Response::Name { id, entries } => {
                out.push(kind::NAME);
                put_u32(out, *id);
                put_u32(out, entries.len() as u32);
                for e in entries {
                    put_str(out, &e.filename);
                    put_str(out, &e.longname);
                    e.attrs.encode(out);
                }
            }
            Response::Attrs { id, attrs } => {
                out.push(kind::ATTRS);
                put_u32(out, *id);
                attrs.encode(out);
            }
            Response::ExtendedReply { id, data } => {
                out.push(kind::EXTENDED_REPLY);
                put_u32(out, *id);
                out.extend_from_slice(data);
            }
        }
        finish_frame(out, start);
    }

    /// Decodes one packet body (after the length prefix, starting with the type byte).
    pub fn decode(body: &[u8]) -> Result<Response, CodecError> {
        let (&t, rest) = body.split_first().ok_or(CodecError::Truncated)?;
        let mut r = Reader(rest);
        let resp = match t {
            kind::VERSION => {
                let version = r.u32()?;
                let mut extensions = Vec::new();
                while !r.0.is_empty() {
                    extensions.push((r.string()?, r.string()?));
                }
                Response::Version {
                    version,
                    extensions,
                }
            }
            kind::STATUS => {
                let id = r.u32()?;
                let code = r.u32()?;
                // Some old servers omit message and language.
                let message = if r.0.is_empty() {
                    Vec::new()
                } else {
                    r.string()?
                };
                let lang = if r.0.is_empty() {
                    Vec::new()
                } else {
                    r.string()?
                };
                Response::Status {
                    id,
                    code,
                    message,
                    lang,
                }
            }
            kind::HANDLE => Response::Handle {
                id: r.u32()?,
                handle: r.string()?,
            },
            kind::DATA => Response::Data {
                id: r.u32()?,
                data: r.string()?,
            },
            kind::NAME => {
                let id = r.u32()?;
                let n = r.u32()?;
                let mut entries = Vec::new();
                for _ in 0..n {
                    entries.push(NameEntry {
                        filename: r.string()?,
                        longname: r.string()?,
                        attrs: Attrs::decode(&mut r)?,
                    });
                }
                Response::Name { id, entries }
            }
            kind::ATTRS => Response::Attrs {
                id: r.u32()?,
                attrs: Attrs::decode(&mut r)?,
            },
            kind::EXTENDED_REPLY => {
                let id = r.u32()?;
                let data = std::mem::take(&mut r.0).to_vec();
                Response::ExtendedReply { id, data }
            }
            other => return Err(CodecError::UnknownType(other)),
        };
        r.finish()?;
        Ok(resp)
    }
}

/// Bounds-checked big-endian reader over a packet body.
#[derive(Debug)]
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Truncated);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// A length-prefixed byte string.
    pub fn string(&mut self) -> Result<Vec<u8>, CodecError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    /// Fails if bytes are left.
    pub fn finish(&self) -> Result<(), CodecError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CodecError::Trailing(self.0.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..40)
    }

    fn attrs() -> impl Strategy<Value = Attrs> {
        (
            any::<Option<u64>>(),
            any::<Option<(u32, u32)>>(),
            any::<Option<u32>>(),
            any::<Option<(u32, u32)>>(),
            proptest::collection::vec((bytes(), bytes()), 0..3),
        )
            .prop_map(|(size, uid_gid, perm, atime_mtime, extended)| Attrs {
                size,
                uid_gid,
                perm,
                atime_mtime,
                extended,
            })
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (
                any::<u32>(),
                proptest::collection::vec((bytes(), bytes()), 0..3)
            )
                .prop_map(|(version, extensions)| Request::Init {
                    version,
                    extensions
                }),
            (any::<u32>(), bytes(), any::<u32>(), attrs()).prop_map(|(id, path, pflags, attrs)| {
                Request::Open {
                    id,
                    path,
                    pflags,
                    attrs,
                }
            }),
            (any::<u32>(), bytes(), any::<u64>(), any::<u32>()).prop_map(
                |(id, handle, offset, len)| Request::Read {
                    id,
                    handle,
                    offset,
                    len
                }
            ),
            (any::<u32>(), bytes(), any::<u64>(), bytes()).prop_map(
                |(id, handle, offset, data)| Request::Write {
                    id,
                    handle,
                    offset,
                    data
                }
            ),
            (any::<u32>(), bytes(), attrs()).prop_map(|(id, path, attrs)| Request::Setstat {
                id,
                path,
                attrs
            }),
            (any::<u32>(), bytes(), attrs()).prop_map(|(id, handle, attrs)| Request::Fsetstat {
                id,
                handle,
                attrs
            }),
            (any::<u32>(), bytes()).prop_map(|(id, path)| Request::Lstat { id, path }),
            (any::<u32>(), bytes()).prop_map(|(id, path)| Request::Readlink { id, path }),
            (any::<u32>(), bytes(), bytes()).prop_map(|(id, old, new)| Request::Rename {
                id,
                old,
                new
            }),
            (any::<u32>(), bytes(), bytes()).prop_map(|(id, target, link)| Request::Symlink {
                id,
                target,
                link
            }),
            (any::<u32>(), bytes(), bytes()).prop_map(|(id, name, data)| Request::Extended {
                id,
                name,
                data
            }),
        ]
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            (
                any::<u32>(),
                proptest::collection::vec((bytes(), bytes()), 0..3)
            )
                .prop_map(|(version, extensions)| Response::Version {
                    version,
                    extensions
                }),
            (any::<u32>(), any::<u32>(), bytes(), bytes()).prop_map(|(id, code, message, lang)| {
                Response::Status {
                    id,
                    code,
                    message,
                    lang,
                }
            }),
            (any::<u32>(), bytes()).prop_map(|(id, handle)| Response::Handle { id, handle }),
            (any::<u32>(), bytes()).prop_map(|(id, data)| Response::Data { id, data }),
            (any::<u32>(), attrs()).prop_map(|(id, attrs)| Response::Attrs { id, attrs }),
            (
                any::<u32>(),
                proptest::collection::vec(
                    (bytes(), bytes(), attrs()).prop_map(|(filename, longname, attrs)| NameEntry {
                        filename,
                        longname,
                        attrs
                    }),
                    0..4
                )
            )
                .prop_map(|(id, entries)| Response::Name { id, entries }),
            (any::<u32>(), bytes()).prop_map(|(id, data)| Response::ExtendedReply { id, data }),
        ]
    }

    proptest! {
        #[test]
        fn request_roundtrip(req in request()) {
            let mut out = Vec::new();
            req.encode(&mut out);
            prop_assert_eq!(frame_len(&out).unwrap(), Some(out.len()));
            prop_assert_eq!(Request::decode(&out[4..]).unwrap(), req);
        }

        #[test]
        fn response_roundtrip(resp in response()) {
            let mut out = Vec::new();
            resp.encode(&mut out);
            prop_assert_eq!(frame_len(&out).unwrap(), Some(out.len()));
            prop_assert_eq!(Response::decode(&out[4..]).unwrap(), resp);
        }

        #[test]
        fn decoders_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Request::decode(&body);
            let _ = Response::decode(&body);
            let _ = frame_len(&body);
            let _ = StatVfs::decode(&body);
            let _ = OpenRead::decode(&body);
            let _ = OpenReadReply::decode(&body);
        }

        #[test]
        fn open_read_roundtrip(path in bytes(), len in any::<u32>(), handle in bytes(), data in bytes()) {
            let req = OpenRead { path, len };
            let mut out = Vec::new();
            req.encode(&mut out);
            prop_assert_eq!(OpenRead::decode(&out).unwrap(), req);
            if !out.is_empty() {
                prop_assert!(OpenRead::decode(&out[..out.len() - 1]).is_err());
            }
            let rep = OpenReadReply { handle, data };
            let mut out = Vec::new();
            rep.encode(&mut out);
            prop_assert_eq!(OpenReadReply::decode(&out).unwrap(), rep);
            out.push(0);
            prop_assert!(OpenReadReply::decode(&out).is_err());
        }

        #[test]
        fn truncation_is_an_error(req in request(), cut in 1usize..16) {
            let mut out = Vec::new();
            req.encode(&mut out);
            let body = &out[4..];
            if cut < body.len() {
                // Extended/Init carry open-ended tails; everything else must notice the cut.
                if !matches!(req, Request::Extended { .. } | Request::Init { .. }) {
                    prop_assert!(Request::decode(&body[..body.len() - cut]).is_err());
                }
            }
        }
    }

    #[test]
    fn openssh_symlink_order_and_bad_lengths() {
        let mut out = Vec::new();
        Request::Symlink {
            id: 7,
            target: b"t".to_vec(),
            link: b"l".to_vec(),
        }
        .encode(&mut out);
        assert_eq!(&out[4..], b"\x14\0\0\0\x07\0\0\0\x01t\0\0\0\x01l");
        assert_eq!(frame_len(&[0, 0, 0, 0]), Err(CodecError::BadLength(0)));
        assert!(frame_len(&[0xff, 0, 0, 0]).is_err());
        assert_eq!(frame_len(&[0, 0]), Ok(None));
    }
}
