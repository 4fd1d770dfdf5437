//! Gob type descriptions: the predefined type ids, [`WireType`] (what a type-definition message
//! carries, used both for received definitions and for the encoder's own types), and the exact
//! encoding/decoding of Go's `wireType` struct.

use crate::error::{Error, Result};
use crate::wire::{Reader, write_bytes, write_int, write_uint};

/// A gob type id. Predefined ids are below 64; user types are numbered from 64 by the sender.
pub type GobId = i64;

/// Predefined gob type ids.
pub mod ids {
    use super::GobId;
    /// `bool`
    pub const BOOL: GobId = 1;
    /// all signed integers
    pub const INT: GobId = 2;
    /// all unsigned integers (including `uint8` outside `[]byte`)
    pub const UINT: GobId = 3;
    /// `float32`/`float64`
    pub const FLOAT: GobId = 4;
    /// `[]byte`
    pub const BYTES: GobId = 5;
    /// `string`
    pub const STRING: GobId = 6;
    /// `complex64`/`complex128`
    pub const COMPLEX: GobId = 7;
    /// `interface{}`
    pub const INTERFACE: GobId = 8;
    /// First id a sender assigns to its own types.
    pub const FIRST_USER: GobId = 64;
}

/// Which Go marshaling interface a type uses instead of its structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarshalerKind {
    /// `GobEncoder` (`wireType.GobEncoderT`).
    Gob,
    /// `encoding.BinaryMarshaler` (`wireType.BinaryMarshalerT`), e.g. `cipher.PubKey`.
    Binary,
    /// `encoding.TextMarshaler` (`wireType.TextMarshalerT`).
    Text,
}

impl MarshalerKind {
    fn go_name(self) -> &'static str {
        match self {
            MarshalerKind::Gob => "GobEncoder",
            MarshalerKind::Binary => "BinaryMarshaler",
            MarshalerKind::Text => "TextMarshaler",
        }
    }
}

impl std::fmt::Display for MarshalerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.go_name())
    }
}

/// One field of a struct type: Go field name and type id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// Go field name (matching is by name, case-sensitive).
    pub name: String,
    /// Type id of the field.
    pub id: GobId,
}

impl FieldDef {
    /// Convenience constructor.
    pub fn new(name: impl Into<String>, id: GobId) -> Self {
        FieldDef {
            name: name.into(),
            id,
        }
    }
}

/// Shape of a user-defined gob type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireKind {
    /// `[Len]Elem`
    Array {
        /// element type
        elem: GobId,
        /// fixed length
        len: i64,
    },
    /// `[]Elem`
    Slice {
        /// element type
        elem: GobId,
    },
    /// `struct { ... }`, fields in the sender's declaration order.
    Struct {
        /// fields
        fields: Vec<FieldDef>,
    },
    /// `map[Key]Elem`
    Map {
        /// key type
        key: GobId,
        /// element type
        elem: GobId,
    },
    /// A type encoded through a marshaler: a length-prefixed opaque byte string.
    Marshaler(MarshalerKind),
}

/// A user-defined type as described by a gob type-definition message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireType {
    /// `CommonType.Name` (informational; empty for unnamed top-level composites).
    pub name: String,
    /// `CommonType.Id`.
    pub id: GobId,
    /// The shape.
    pub kind: WireKind,
}

/// Name of a predefined type id, for messages.
pub fn builtin_name(id: GobId) -> Option<&'static str> {
    Some(match id {
        ids::BOOL => "bool",
        ids::INT => "int",
        ids::UINT => "uint",
        ids::FLOAT => "float",
        ids::BYTES => "[]byte",
        ids::STRING => "string",
        ids::COMPLEX => "complex",
        ids::INTERFACE => "interface",
        _ => return None,
    })
}

/// Appends the `wireType` struct value describing `t` exactly as Go's encoder does
/// (zero-valued fields omitted).
pub fn encode_wire_type(out: &mut Vec<u8>, t: &WireType) {
    // wireType field: ArrayT 0, SliceT 1, StructT 2, MapT 3, GobEncoderT 4, BinaryMarshalerT 5,
    // TextMarshalerT 6; delta from -1 is index + 1.
    let which: u64 = match &t.kind {
        WireKind::Array { .. } => 1,
        WireKind::Slice { .. } => 2,
        WireKind::Struct { .. } => 3,
        WireKind::Map { .. } => 4,
        WireKind::Marshaler(MarshalerKind::Gob) => 5,
        WireKind::Marshaler(MarshalerKind::Binary) => 6,
        WireKind::Marshaler(MarshalerKind::Text) => 7,
    };
    write_uint(out, which);
    // Every inner type starts with CommonType at field 0.
    write_uint(out, 1);
    encode_common(out, &t.name, t.id);
    let mut last = 0i64;
    let mut field = |out: &mut Vec<u8>, idx: i64, v: i64| {
        if v != 0 {
            write_uint(out, (idx - last) as u64);
            write_int(out, v);
            last = idx;
        }
    };
    match &t.kind {
        WireKind::Array { elem, len } => {
            field(out, 1, *elem);
            field(out, 2, *len);
        }
        WireKind::Slice { elem } => field(out, 1, *elem),
        WireKind::Map { key, elem } => {
            field(out, 1, *key);
            field(out, 2, *elem);
        }
        WireKind::Struct { fields } => {
            if !fields.is_empty() {
                write_uint(out, 1);
                write_uint(out, fields.len() as u64);
                for f in fields {
                    let mut l = -1i64;
                    if !f.name.is_empty() {
                        write_uint(out, 1);
                        write_bytes(out, f.name.as_bytes());
                        l = 0;
                    }
                    if f.id != 0 {
                        write_uint(out, (1 - l) as u64);
                        write_int(out, f.id);
                    }
                    out.push(0);
                }
            }
        }
        WireKind::Marshaler(_) => {}
    }
    out.push(0); // end of inner type
    out.push(0); // end of wireType
}

fn encode_common(out: &mut Vec<u8>, name: &str, id: GobId) {
    let mut last = -1i64;
    if !name.is_empty() {
        write_uint(out, 1);
        write_bytes(out, name.as_bytes());
        last = 0;
    }
    if id != 0 {
        write_uint(out, (1 - last) as u64);
        write_int(out, id);
    }
    out.push(0);
}

/// Iterates over the fields of a struct value: yields field indexes until the `00` terminator.
struct Fields {
    last: i64,
}

impl Fields {
    fn new() -> Self {
        Fields { last: -1 }
    }
    fn next(&mut self, r: &mut Reader<'_>, nfields: i64, what: &str) -> Result<Option<i64>> {
        let delta = r.read_uint()?;
        if delta == 0 {
            return Ok(None);
        }
        let idx = i64::try_from(delta)
            .ok()
            .and_then(|d| d.checked_add(self.last))
            .filter(|&i| i < nfields)
            .ok_or_else(|| bad(format!("field delta {delta} out of range in {what}")))?;
        self.last = idx;
        Ok(Some(idx))
    }
}

fn bad(msg: String) -> Error {
    Error::BadTypeDefinition(msg)
}

fn read_string(r: &mut Reader<'_>) -> Result<String> {
    let b = r.read_bytes()?;
    String::from_utf8(b.to_vec()).map_err(|_| Error::InvalidUtf8)
}

fn decode_common(r: &mut Reader<'_>) -> Result<(String, GobId)> {
    let mut name = String::new();
    let mut id = 0;
    let mut f = Fields::new();
    while let Some(i) = f.next(r, 2, "CommonType")? {
        match i {
            0 => name = read_string(r)?,
            _ => id = r.read_int()?,
        }
    }
    Ok((name, id))
}

/// Decodes a `wireType` struct value (the body of a type-definition message after the id).
pub fn decode_wire_type(r: &mut Reader<'_>) -> Result<WireType> {
    let mut result: Option<WireType> = None;
    let mut f = Fields::new();
    while let Some(which) = f.next(r, 7, "wireType")? {
        if result.is_some() {
            return Err(bad("more than one kind set in wireType".into()));
        }
        let mut name = String::new();
        let mut id = 0;
        let mut a = 0i64;
        let mut b = 0i64;
        let mut fields = Vec::new();
        let nfields = match which {
            0 | 3 => 3,
            1 | 2 => 2,
            _ => 1,
        };
        let mut g = Fields::new();
        while let Some(i) = g.next(r, nfields, "type definition")? {
            match (which, i) {
                (_, 0) => (name, id) = decode_common(r)?,
                (2, 1) => {
                    // []fieldType
                    let n = r.read_count(1)?;
                    fields.reserve(n);
                    for _ in 0..n {
                        let mut fname = String::new();
                        let mut fid = 0;
                        let mut h = Fields::new();
                        while let Some(j) = h.next(r, 2, "fieldType")? {
                            match j {
                                0 => fname = read_string(r)?,
                                _ => fid = r.read_int()?,
                            }
                        }
                        fields.push(FieldDef {
                            name: fname,
                            id: fid,
                        });
                    }
                }
                (_, 1) => a = r.read_int()?,
                _ => b = r.read_int()?,
            }
        }
        let kind = match which {
            0 => {
                if b < 0 {
                    return Err(bad(format!("negative array length {b}")));
                }
                WireKind::Array { elem: a, len: b }
            }
            1 => WireKind::Slice { elem: a },
            2 => WireKind::Struct { fields },
            3 => WireKind::Map { key: a, elem: b },
            4 => WireKind::Marshaler(MarshalerKind::Gob),
            5 => WireKind::Marshaler(MarshalerKind::Binary),
            _ => WireKind::Marshaler(MarshalerKind::Text),
        };
        result = Some(WireType { name, id, kind });
    }
    result.ok_or_else(|| bad("empty wireType".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_struct_definition() {
        let t = WireType {
            name: String::new(),
            id: 65,
            kind: WireKind::Struct { fields: vec![] },
        };
        let mut out = Vec::new();
        encode_wire_type(&mut out, &t);
        assert_eq!(out, [0x03, 0x01, 0x02, 0xff, 0x82, 0x00, 0x00, 0x00]);
        let back = decode_wire_type(&mut Reader::new(&out)).unwrap();
        assert_eq!(back, t);
    }
}
