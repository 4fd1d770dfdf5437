//! The stateful gob [`Decoder`]: one per stream direction. It frames messages, records received
//! type definitions (rejecting redefinitions, accepting forward references), checks wire/local
//! type compatibility with Go's rules, and hands value messages to the serde deserializer
//! ([`crate::de`]), the dynamic [`Value`] reader or the skipper ([`crate::value`]).

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::de::Deserializer;
use crate::error::{Error, Result};
use crate::schema::{Ctx, GobType, Registry};
use crate::types::{GobId, WireKind, WireType, builtin_name, decode_wire_type, ids};
use crate::value::{Value, read_value, skip_value};
use crate::wire::{Reader, peek_uint};

/// Default cap on one message (type definition or value): 64 MiB.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 64 << 20;

/// Resource limits of a [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message body (default 64 MiB).
    pub max_message_len: usize,
    /// Deepest accepted nesting of structs/slices/arrays/maps (default 64).
    pub max_depth: usize,
    /// Most type definitions accepted on one stream (default 4096).
    pub max_types: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
            max_depth: 64,
            max_types: 4096,
        }
    }
}

/// Received type definitions of one stream.
#[derive(Debug, Default, Clone)]
pub struct TypeTable {
    defs: HashMap<GobId, WireType>,
}

impl TypeTable {
    /// The definition of a received user type id.
    pub fn get(&self, id: GobId) -> Option<&WireType> {
        self.defs.get(&id)
    }

    /// Number of definitions received.
    pub fn len(&self) -> usize {
        self.defs.len()
    }

    /// Whether no definition was received yet.
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// The user definition for `id`, or `UnknownTypeId`.
    pub(crate) fn def(&self, id: GobId) -> Result<&WireType> {
        self.defs.get(&id).ok_or(Error::UnknownTypeId(id))
    }

    /// Human-readable name of a wire type id (for error messages).
    pub(crate) fn name(&self, id: GobId) -> String {
        if let Some(n) = builtin_name(id) {
            return n.to_owned();
        }
        match self.defs.get(&id) {
            Some(t) if !t.name.is_empty() => t.name.clone(),
            Some(t) => describe_kind(&t.kind),
            None => format!("type id {id}"),
        }
    }
}

fn describe_kind(k: &WireKind) -> String {
    match k {
        WireKind::Array { len, .. } => format!("array[{len}]"),
        WireKind::Slice { .. } => "slice".into(),
        WireKind::Struct { .. } => "struct".into(),
        WireKind::Map { .. } => "map".into(),
        WireKind::Marshaler(m) => m.to_string(),
    }
}

/// Per-stream gob decoder (sans-IO).
///
/// Feed it the bytes received so far; each `decode_*` call consumes any type definitions plus one
/// value and reports how many bytes that took, or `Ok(None)` if the buffer does not yet hold a
/// complete value message (nothing is consumed or recorded in that case).
///
/// ```
/// # use skywire_gob::Decoder;
/// let mut dec = Decoder::new();
/// let (n, used) = dec.decode_value::<i64>(&[0x05, 0x04, 0x00, 0xfe, 0x20, 0x00]).unwrap().unwrap();
/// assert_eq!((n, used), (4096, 6));
/// ```
#[derive(Debug, Default)]
pub struct Decoder {
    types: TypeTable,
    local: Registry,
    compatible: HashSet<(GobId, GobId)>,
    limits: Limits,
}

/// A located value message: its type id and body (after the id).
struct ValueMsg<'de> {
    id: GobId,
    body: Reader<'de>,
    end: usize,
}

impl Decoder {
    /// A decoder with default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Decoder {
            limits,
            ..Self::default()
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Type definitions received so far.
    pub fn types(&self) -> &TypeTable {
        &self.types
    }

    /// Decodes the next value into `T` (fields matched by Go name, unknown wire fields skipped,
    /// kinds checked as Go does). Returns the value and the number of bytes consumed.
    pub fn decode_value<'de, T>(&mut self, input: &'de [u8]) -> Result<Option<(T, usize)>>
    where
        T: Deserialize<'de> + GobType,
    {
        let Some(mut msg) = self.next_value_message(input)? else {
            return Ok(None);
        };
        let lid = T::gob_register(&mut self.local, Ctx::TOP);
        self.check_compatible(lid, msg.id)?;
        let wire_struct = matches!(
            self.types.get(msg.id),
            Some(WireType {
                kind: WireKind::Struct { .. },
                ..
            })
        );
        if !wire_struct {
            singleton_delta(&mut msg.body)?;
        }
        let v = {
            let mut de = Deserializer::new(
                &mut msg.body,
                &self.types,
                &self.local,
                msg.id,
                lid,
                self.limits.max_depth,
            );
            T::deserialize(&mut de)?
        };
        finish(&msg.body)?;
        Ok(Some((v, msg.end)))
    }

    /// Decodes the next value into a dynamic [`Value`], driven only by the wire types.
    pub fn decode_dynamic(&mut self, input: &[u8]) -> Result<Option<(Value, usize)>> {
        let Some(mut msg) = self.next_value_message(input)? else {
            return Ok(None);
        };
        if !self.is_wire_struct(msg.id)? {
            singleton_delta(&mut msg.body)?;
        }
        let v = read_value(&mut msg.body, &self.types, msg.id, self.limits.max_depth)?;
        finish(&msg.body)?;
        Ok(Some((v, msg.end)))
    }

    /// Consumes the next value without decoding it (still processing the type definitions in
    /// front of it), e.g. the body of an unwanted net/rpc reply. Returns the bytes consumed.
    pub fn skip_value(&mut self, input: &[u8]) -> Result<Option<usize>> {
        let Some(mut msg) = self.next_value_message(input)? else {
            return Ok(None);
        };
        if !self.is_wire_struct(msg.id)? {
            singleton_delta(&mut msg.body)?;
        }
        skip_value(&mut msg.body, &self.types, msg.id, self.limits.max_depth)?;
        finish(&msg.body)?;
        Ok(Some(msg.end))
    }

    fn is_wire_struct(&self, id: GobId) -> Result<bool> {
        if id < ids::FIRST_USER {
            if builtin_name(id).is_none() {
                return Err(Error::UnknownTypeId(id));
            }
            return Ok(false);
        }
        Ok(matches!(self.types.def(id)?.kind, WireKind::Struct { .. }))
    }

    /// Finds the first value message, processing the definitions before it. Nothing is recorded
    /// unless the whole sequence up to and including the value message is present.
    fn next_value_message<'de>(&mut self, input: &'de [u8]) -> Result<Option<ValueMsg<'de>>> {
        // Pass 1: frame without side effects.
        let mut pos = 0usize;
        let (value_pos, value_frame) = loop {
            let Some((start, end)) = self.frame_at(input, pos)? else {
                return Ok(None);
            };
            let id = Reader::new(&input[start..end]).read_int()?;
            if id >= 0 {
                break (pos, (start, end));
            }
            pos = end;
        };
        // Pass 2: record the definitions in front of the value.
        let mut pos = 0usize;
        while pos < value_pos {
            let Some((start, end)) = self.frame_at(input, pos)? else {
                return Ok(None);
            };
            let mut r = Reader::new(&input[start..end]);
            let id = r
                .read_int()?
                .checked_neg()
                .ok_or(Error::ReservedTypeId(i64::MIN))?;
            self.define(id, &mut r)?;
            pos = end;
        }
        let (start, end) = value_frame;
        let mut body = Reader::new(&input[start..end]);
        let id = body.read_int()?;
        Ok(Some(ValueMsg { id, body, end }))
    }

    /// The body bounds of the message starting at `pos`, or `None` if it is incomplete.
    fn frame_at(&self, input: &[u8], pos: usize) -> Result<Option<(usize, usize)>> {
        let Some((hdr, len)) = peek_uint(&input[pos..])? else {
            return Ok(None);
        };
        if len > self.limits.max_message_len as u64 {
            return Err(Error::MessageTooLarge {
                len,
                max: self.limits.max_message_len,
            });
        }
        if len == 0 {
            return Err(Error::EmptyMessage);
        }
        let start = pos + hdr;
        let len = len as usize;
        if input.len() - start < len {
            return Ok(None);
        }
        Ok(Some((start, start + len)))
    }

    fn define(&mut self, id: GobId, r: &mut Reader<'_>) -> Result<()> {
        if id < ids::FIRST_USER {
            return Err(Error::ReservedTypeId(id));
        }
        if self.types.defs.contains_key(&id) {
            return Err(Error::Redefinition(id));
        }
        if self.types.defs.len() >= self.limits.max_types {
            return Err(Error::TooManyTypes(self.limits.max_types));
        }
        let def = decode_wire_type(r)?;
        finish(r)?;
        self.types.defs.insert(id, def);
        Ok(())
    }

    /// Go's `compatibleType` plus the struct-field checks of `compileDec`, memoised per
    /// (local id, wire id) pair.
    fn check_compatible(&mut self, lid: GobId, wid: GobId) -> Result<()> {
        if self.compatible.contains(&(lid, wid)) {
            return Ok(());
        }
        let mut seen = HashSet::new();
        compat(
            &self.local,
            &self.types,
            lid,
            wid,
            &mut seen,
            0,
            self.limits.max_depth,
        )?;
        self.compatible.extend(seen);
        Ok(())
    }
}

fn singleton_delta(r: &mut Reader<'_>) -> Result<()> {
    match r.read_uint()? {
        0 => Ok(()),
        d => Err(Error::BadSingletonDelta(d)),
    }
}

fn finish(r: &Reader<'_>) -> Result<()> {
    match r.remaining() {
        0 => Ok(()),
        n => Err(Error::TrailingBytes(n)),
    }
}

fn local_name(local: &Registry, id: GobId) -> String {
    if let Some(n) = builtin_name(id) {
        return n.to_owned();
    }
    match local.get(id) {
        Some(t) if !t.name.is_empty() => t.name.clone(),
        Some(t) => describe_kind(&t.kind),
        None => format!("local type {id}"),
    }
}

fn compat(
    local: &Registry,
    wire: &TypeTable,
    lid: GobId,
    wid: GobId,
    seen: &mut HashSet<(GobId, GobId)>,
    depth: usize,
    max_depth: usize,
) -> Result<()> {
    if depth > max_depth {
        return Err(Error::DepthExceeded(max_depth));
    }
    if !seen.insert((lid, wid)) {
        return Ok(()); // in progress (recursive type) or already checked
    }
    let mismatch = || {
        Error::TypeMismatch(format!(
            "local type {} is not compatible with wire type {}",
            local_name(local, lid),
            wire.name(wid)
        ))
    };
    let wdef = if wid >= ids::FIRST_USER {
        Some(wire.def(wid)?)
    } else if builtin_name(wid).is_some() {
        None
    } else {
        return Err(Error::UnknownTypeId(wid));
    };
    let ldef = local.get(lid);
    match (ldef.map(|d| &d.kind), wdef.map(|d| &d.kind)) {
        (Some(WireKind::Marshaler(lk)), Some(WireKind::Marshaler(wk))) if lk == wk => Ok(()),
        (Some(WireKind::Marshaler(lk)), _) => Err(Error::TypeMismatch(format!(
            "local type {} is a {lk} but wire type {} is not",
            local_name(local, lid),
            wire.name(wid)
        ))),
        (_, Some(WireKind::Marshaler(wk))) => Err(Error::TypeMismatch(format!(
            "wire type {} is a {wk} but local type {} is not",
            wire.name(wid),
            local_name(local, lid)
        ))),
        (None, None) => {
            if lid == wid {
                Ok(())
            } else {
                Err(mismatch())
            }
        }
        (Some(WireKind::Slice { elem: le }), Some(WireKind::Slice { elem: we })) => {
            compat(local, wire, *le, *we, seen, depth + 1, max_depth)
        }
        (
            Some(WireKind::Array { elem: le, len: ll }),
            Some(WireKind::Array { elem: we, len: wl }),
        ) if ll == wl => compat(local, wire, *le, *we, seen, depth + 1, max_depth),
        (Some(WireKind::Map { key: lk, elem: le }), Some(WireKind::Map { key: wk, elem: we })) => {
            compat(local, wire, *lk, *wk, seen, depth + 1, max_depth)?;
            compat(local, wire, *le, *we, seen, depth + 1, max_depth)
        }
        (Some(WireKind::Struct { fields: lf }), Some(WireKind::Struct { fields: wf })) => {
            let mut matched = false;
            for w in wf {
                if let Some(l) = lf.iter().find(|l| l.name == w.name) {
                    matched = true;
                    compat(local, wire, l.id, w.id, seen, depth + 1, max_depth).map_err(
                        |e| match e {
                            Error::TypeMismatch(m) => {
                                Error::TypeMismatch(format!("field {}: {m}", w.name))
                            }
                            other => other,
                        },
                    )?;
                }
            }
            if !matched && !wf.is_empty() && !lf.is_empty() {
                return Err(Error::TypeMismatch(format!(
                    "no fields matched compiling decoder for {}",
                    local_name(local, lid)
                )));
            }
            Ok(())
        }
        _ => Err(mismatch()),
    }
}
