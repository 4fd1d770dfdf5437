//! The serde `Deserializer` over one gob value. It is driven by the *wire* type (what the sender
//! defined) while the *local* type ([`GobType`](crate::GobType) schema of the Rust target, already
//! checked for compatibility) supplies the field names to match; wire fields the local struct
//! lacks are skipped. `is_human_readable()` is false, so marshaler types such as `PubKey` receive
//! their raw bytes through `visit_bytes`.

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use crate::decode::TypeTable;
use crate::error::{Error, Result};
use crate::schema::Registry;
use crate::types::{FieldDef, GobId, WireKind, WireType, ids};
use crate::value::{array_count, field_index, skip};
use crate::wire::{Reader, uint_to_float};

/// Deserializer for one value of wire type `wid` into local type `lid`.
#[derive(Debug)]
pub struct Deserializer<'a, 'de> {
    r: &'a mut Reader<'de>,
    types: &'a TypeTable,
    local: &'a Registry,
    wid: GobId,
    lid: GobId,
    depth: usize,
    max_depth: usize,
}

impl<'a, 'de> Deserializer<'a, 'de> {
    pub(crate) fn new(
        r: &'a mut Reader<'de>,
        types: &'a TypeTable,
        local: &'a Registry,
        wid: GobId,
        lid: GobId,
        max_depth: usize,
    ) -> Self {
        Deserializer {
            r,
            types,
            local,
            wid,
            lid,
            depth: max_depth,
            max_depth,
        }
    }

    fn child(&mut self, wid: GobId, lid: GobId) -> Deserializer<'_, 'de> {
        Deserializer {
            r: self.r,
            types: self.types,
            local: self.local,
            wid,
            lid,
            depth: self.depth,
            max_depth: self.max_depth,
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth = self
            .depth
            .checked_sub(1)
            .ok_or(Error::DepthExceeded(self.max_depth))?;
        Ok(())
    }

    fn wire_def(&self) -> Result<&'a WireType> {
        self.types.def(self.wid)
    }

    fn skip(&mut self) -> Result<()> {
        skip(self.r, self.types, self.wid, self.depth).map_err(|e| match e {
            Error::DepthExceeded(_) => Error::DepthExceeded(self.max_depth),
            e => e,
        })
    }

    /// Local element type of a local slice/array (or the same id if unknown: builtins).
    fn local_elem(&self) -> GobId {
        match self.local.get(self.lid).map(|d| &d.kind) {
            Some(WireKind::Slice { elem }) | Some(WireKind::Array { elem, .. }) => *elem,
            _ => 0,
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.wid {
            ids::BOOL => visitor.visit_bool(self.r.read_uint()? != 0),
            ids::INT => visitor.visit_i64(self.r.read_int()?),
            ids::UINT => visitor.visit_u64(self.r.read_uint()?),
            ids::FLOAT => visitor.visit_f64(uint_to_float(self.r.read_uint()?)),
            ids::BYTES => visitor.visit_borrowed_bytes(self.r.read_bytes()?),
            ids::STRING => {
                let b = self.r.read_bytes()?;
                visitor.visit_borrowed_str(std::str::from_utf8(b).map_err(|_| Error::InvalidUtf8)?)
            }
            ids::COMPLEX => Err(Error::Unsupported("complex numbers in typed decoding")),
            ids::INTERFACE => Err(Error::Unsupported("interface values in typed decoding")),
            _ => {
                let def = self.wire_def()?;
                match &def.kind {
                    WireKind::Marshaler(_) => visitor.visit_borrowed_bytes(self.r.read_bytes()?),
                    WireKind::Struct { fields } => {
                        self.enter()?;
                        let lfields: &[FieldDef] = match self.local.get(self.lid).map(|d| &d.kind) {
                            Some(WireKind::Struct { fields }) => fields,
                            _ => &[],
                        };
                        visitor.visit_map(StructAccess {
                            de: self,
                            wname: &def.name,
                            wfields: fields,
                            lfields,
                            last: -1,
                            pending: None,
                        })
                    }
                    WireKind::Slice { elem } => {
                        self.enter()?;
                        let n = self.r.read_count(1)?;
                        let lelem = self.local_elem();
                        visitor.visit_seq(Elements {
                            de: self,
                            left: n,
                            welem: *elem,
                            lelem,
                        })
                    }
                    WireKind::Array { elem, len } => {
                        self.enter()?;
                        let n = array_count(self.r, *len)?;
                        let lelem = self.local_elem();
                        visitor.visit_seq(Elements {
                            de: self,
                            left: n,
                            welem: *elem,
                            lelem,
                        })
                    }
                    WireKind::Map { key, elem } => {
                        self.enter()?;
                        let n = self.r.read_count(2)?;
                        let (lkey, lelem) = match self.local.get(self.lid).map(|d| &d.kind) {
                            Some(WireKind::Map { key, elem }) => (*key, *elem),
                            _ => (0, 0),
                        };
                        visitor.visit_map(Entries {
                            de: self,
                            left: n,
                            wkey: *key,
                            welem: *elem,
                            lkey,
                            lelem,
                        })
                    }
                }
            }
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.wid == ids::BYTES {
            // `Vec<u8>` asks for a sequence; gob sends `[]byte` as one byte string.
            let b = self.r.read_bytes()?;
            return visitor.visit_seq(de::value::SeqDeserializer::new(b.iter().copied()));
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(Error::Unsupported("enums (gob has no enum kind)"))
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf tuple_struct map struct identifier
    }
}

struct StructAccess<'s, 'a, 'de> {
    de: &'s mut Deserializer<'a, 'de>,
    wname: &'a str,
    wfields: &'a [FieldDef],
    lfields: &'a [FieldDef],
    last: i64,
    pending: Option<(GobId, GobId)>,
}

impl<'de> MapAccess<'de> for StructAccess<'_, '_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        loop {
            let delta = self.de.r.read_uint()?;
            if delta == 0 {
                return Ok(None);
            }
            let idx = field_index(self.last, delta, self.wfields.len(), self.wname)?;
            self.last = idx as i64;
            let wf = &self.wfields[idx];
            if let Some(lf) = self.lfields.iter().find(|l| l.name == wf.name) {
                self.pending = Some((wf.id, lf.id));
                let key: de::value::StrDeserializer<'_, Error> =
                    lf.name.as_str().into_deserializer();
                return seed.deserialize(key).map(Some);
            }
            self.de.child(wf.id, 0).skip()?;
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let (wid, lid) = self
            .pending
            .take()
            .ok_or(Error::Custom("value requested before key".into()))?;
        seed.deserialize(&mut self.de.child(wid, lid))
    }
}

struct Elements<'s, 'a, 'de> {
    de: &'s mut Deserializer<'a, 'de>,
    left: usize,
    welem: GobId,
    lelem: GobId,
}

impl<'de> SeqAccess<'de> for Elements<'_, '_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut self.de.child(self.welem, self.lelem))
            .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

struct Entries<'s, 'a, 'de> {
    de: &'s mut Deserializer<'a, 'de>,
    left: usize,
    wkey: GobId,
    welem: GobId,
    lkey: GobId,
    lelem: GobId,
}

impl<'de> MapAccess<'de> for Entries<'_, '_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut self.de.child(self.wkey, self.lkey))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut self.de.child(self.welem, self.lelem))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}
