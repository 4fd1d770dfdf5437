//! The stateful gob [`Encoder`]: one per stream direction. It remembers which type definitions it
//! has already sent and emits missing ones (outer type first, then field/element types in
//! declaration order) before each value, exactly as Go's `gob.Encoder` does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::schema::{Ctx, GobType, Registry};
use crate::types::{GobId, WireKind, encode_wire_type, ids};
use crate::wire::{write_int, write_uint};

/// A [`Registry`] shared by several encoders, standing for one Go process whose type ids are
/// process-global (e.g. both directions of an in-process net/rpc client and server).
#[derive(Debug, Clone, Default)]
pub struct SharedRegistry(Arc<Mutex<Registry>>);

impl SharedRegistry {
    /// A new, empty shared registry (first user id 64).
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the registry (a poisoned lock is recovered: the registry is append-only).
    pub fn lock(&self) -> MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug)]
enum Reg {
    Own(Registry),
    Shared(SharedRegistry),
}

/// Per-stream gob encoder (sans-IO: appends complete messages to a caller's buffer).
///
/// ```
/// # use skywire_gob::Encoder;
/// let mut enc = Encoder::new();
/// let mut out = Vec::new();
/// enc.encode(&4096i64, &mut out).unwrap();
/// assert_eq!(out, [0x05, 0x04, 0x00, 0xfe, 0x20, 0x00]);
/// ```
#[derive(Debug)]
pub struct Encoder {
    reg: Reg,
    sent: HashSet<GobId>,
    scratch: Vec<u8>,
    max_message_len: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// A fresh encoder with its own registry: type ids start at 64 in first-use order, as in a
    /// fresh Go process (this reproduces the dmsg preambles byte for byte).
    pub fn new() -> Self {
        Self::with_reg(Reg::Own(Registry::new()))
    }

    /// An encoder whose type ids come from a registry shared with other encoders.
    pub fn with_shared_registry(reg: SharedRegistry) -> Self {
        Self::with_reg(Reg::Shared(reg))
    }

    fn with_reg(reg: Reg) -> Self {
        Encoder {
            reg,
            sent: HashSet::new(),
            scratch: Vec::new(),
            max_message_len: crate::decode::DEFAULT_MAX_MESSAGE_LEN,
        }
    }

    /// Sets the largest message this encoder will produce (default 64 MiB).
    pub fn set_max_message_len(&mut self, max: usize) {
        self.max_message_len = max;
    }

    /// Appends to `out` any type definitions not yet sent on this stream, then the value message.
    /// On error nothing is appended.
    pub fn encode<T: GobType + ?Sized>(&mut self, value: &T, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let r = self.encode_inner(value, out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    fn encode_inner<T: GobType + ?Sized>(&mut self, value: &T, out: &mut Vec<u8>) -> Result<()> {
        let mut guard;
        let reg: &mut Registry = match &mut self.reg {
            Reg::Own(r) => r,
            Reg::Shared(s) => {
                guard = s.lock();
                &mut guard
            }
        };
        let id = T::gob_register(reg, Ctx::TOP);
        let mut newly_sent = Vec::new();
        send_type(
            reg,
            &mut self.sent,
            &mut newly_sent,
            &mut self.scratch,
            id,
            out,
            self.max_message_len,
        )
        .inspect_err(|_| {
            for id in &newly_sent {
                self.sent.remove(id);
            }
        })?;
        let is_struct = reg.is_struct(id);
        let scratch = &mut self.scratch;
        scratch.clear();
        write_int(scratch, id);
        if !is_struct {
            scratch.push(0);
        }
        let res = value
            .gob_encode(scratch)
            .and_then(|()| frame(scratch, out, self.max_message_len));
        if res.is_err() {
            for id in &newly_sent {
                self.sent.remove(id);
            }
        }
        res
    }
}

fn frame(body: &[u8], out: &mut Vec<u8>, max: usize) -> Result<()> {
    if body.len() > max {
        return Err(Error::MessageTooLarge {
            len: body.len() as u64,
            max,
        });
    }
    write_uint(out, body.len() as u64);
    out.extend_from_slice(body);
    Ok(())
}

/// Sends the definition of `id` if needed, then (recursively) its field/element types.
fn send_type(
    reg: &Registry,
    sent: &mut HashSet<GobId>,
    newly: &mut Vec<GobId>,
    scratch: &mut Vec<u8>,
    id: GobId,
    out: &mut Vec<u8>,
    max: usize,
) -> Result<()> {
    if id < ids::FIRST_USER || sent.contains(&id) {
        return Ok(());
    }
    let Some(def) = reg.get(id) else {
        return Err(Error::UnknownTypeId(id));
    };
    scratch.clear();
    write_int(scratch, -id);
    encode_wire_type(scratch, def);
    frame(scratch, out, max)?;
    sent.insert(id);
    newly.push(id);
    match &def.kind {
        WireKind::Struct { fields } => {
            for f in fields {
                send_type(reg, sent, newly, scratch, f.id, out, max)?;
            }
        }
        WireKind::Slice { elem } | WireKind::Array { elem, .. } => {
            send_type(reg, sent, newly, scratch, *elem, out, max)?;
        }
        WireKind::Map { key, elem } => {
            send_type(reg, sent, newly, scratch, *key, out, max)?;
            send_type(reg, sent, newly, scratch, *elem, out, max)?;
        }
        WireKind::Marshaler(_) => {}
    }
    Ok(())
}
