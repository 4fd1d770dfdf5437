//! The local side of the type system: the [`GobType`] trait (what Go type a Rust type stands for,
//! how it is encoded, when it is zero), the [`Registry`] that numbers types the way a Go process
//! does, and the implementations for std types.
//!
//! Go numbering rules reproduced here: a struct or marshaler type takes its id *before* its field
//! types (pre-order); slices, arrays and maps take theirs *after* their element/key types
//! (post-order). Unnamed composites are named by their Go type string (`[]string`) when reached
//! directly through a struct field and are unnamed (`""`) at top level or as elements.

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::error::{Error, Result};
use crate::types::{FieldDef, GobId, MarshalerKind, WireKind, WireType, ids};
use crate::wire::{write_bytes, write_float, write_int, write_uint};

/// Where a type is being registered from; decides how Go would name an unnamed composite, and
/// carries the key and name of a named wrapper (a Rust newtype standing for a Go named type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// Reached directly as a struct field (Go names unnamed composites by their type string).
    pub field: bool,
    /// Key and Go name of a named type wrapping this one (set by derived newtypes).
    pub named: Option<(TypeId, &'static str)>,
}

impl Ctx {
    /// Top-level value or slice/array/map element.
    pub const TOP: Ctx = Ctx {
        field: false,
        named: None,
    };
    /// Direct struct field.
    pub const FIELD: Ctx = Ctx {
        field: true,
        named: None,
    };

    /// The registry key and name to use: the wrapper's if any, else the given defaults.
    pub fn named_or(self, key: TypeId, name: &'static str) -> (TypeId, &'static str) {
        self.named.unwrap_or((key, name))
    }
}

/// A Rust type that stands for a Go type on the gob wire.
///
/// Implemented for bool, integers, floats, `String`, `Vec<T>`/`Box<[T]>` (`Vec<u8>` = `[]byte`),
/// `[T; N]`, `HashMap`/`BTreeMap`, `Option<T>` (a pointer: omitted when `None`), `Box<T>`, `()`
/// (the anonymous `struct{}`), `skywire_cipher::PubKey`, and via `#[derive(GobType)]` for
/// structs and newtypes. Marshaler types use [`gob_marshaler!`](crate::gob_marshaler).
pub trait GobType: 'static {
    /// Registers this type (and every type it refers to) and returns its gob type id.
    fn gob_register(reg: &mut Registry, ctx: Ctx) -> GobId;
    /// Go's `reflect.Type.String()` of this type (`int64`, `[]string`, `cipher.PubKey`); names
    /// unnamed composites that are reached through a struct field.
    fn gob_type_string() -> String;
    /// Whether Go would omit this value as a struct field (its zero value). Structs and arrays
    /// are never zero in this sense: Go always sends them.
    fn gob_is_zero(&self) -> bool;
    /// Appends the value's encoding (no zero check, no singleton delta).
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()>;

    /// Registers `[]Self`. Overridden by `u8` so that `Vec<u8>` is gob's `[]byte`.
    #[doc(hidden)]
    fn gob_register_slice(reg: &mut Registry, ctx: Ctx) -> GobId
    where
        Self: Sized,
    {
        reg.register_composite(
            TypeId::of::<[Self]>(),
            ctx,
            || format!("[]{}", Self::gob_type_string()),
            |reg| WireKind::Slice {
                elem: Self::gob_register(reg, Ctx::TOP),
            },
        )
    }

    /// Encodes `[]Self`. Overridden by `u8`.
    #[doc(hidden)]
    fn gob_encode_slice(items: &[Self], out: &mut Vec<u8>) -> Result<()>
    where
        Self: Sized,
    {
        write_uint(out, items.len() as u64);
        for it in items {
            it.gob_encode(out)?;
        }
        Ok(())
    }
}

/// Type table of one (simulated) Go process: Rust type -> gob id, and the definitions.
///
/// An [`Encoder`](crate::Encoder) owns a fresh registry by default (ids from 64 per stream, like a
/// fresh Go process); several encoders can share one through
/// [`SharedRegistry`](crate::SharedRegistry) to reproduce the ids of a Go process that runs
/// several streams.
#[derive(Debug, Clone)]
pub struct Registry {
    by_key: HashMap<TypeId, GobId>,
    defs: HashMap<GobId, WireType>,
    next: GobId,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry; the first user type gets id 64.
    pub fn new() -> Self {
        Registry {
            by_key: HashMap::new(),
            defs: HashMap::new(),
            next: ids::FIRST_USER,
        }
    }

    /// Registers `T` at top level and returns its id.
    pub fn id_of<T: GobType + ?Sized>(&mut self) -> GobId {
        T::gob_register(self, Ctx::TOP)
    }

    /// The definition of a user type id.
    pub fn get(&self, id: GobId) -> Option<&WireType> {
        self.defs.get(&id)
    }

    /// Id already assigned to a Rust type key.
    pub fn lookup(&self, key: TypeId) -> Option<GobId> {
        self.by_key.get(&key).copied()
    }

    fn alloc(&mut self, key: TypeId) -> GobId {
        let id = self.next;
        self.next += 1;
        self.by_key.insert(key, id);
        id
    }

    /// Registers a struct type (id assigned before its fields are registered).
    pub fn register_struct(
        &mut self,
        key: TypeId,
        name: &str,
        fields: impl FnOnce(&mut Registry) -> Vec<FieldDef>,
    ) -> GobId {
        if let Some(id) = self.lookup(key) {
            return id;
        }
        let id = self.alloc(key);
        let fields = fields(self);
        self.defs.insert(
            id,
            WireType {
                name: name.to_owned(),
                id,
                kind: WireKind::Struct { fields },
            },
        );
        id
    }

    /// Registers a marshaler type.
    pub fn register_marshaler(&mut self, key: TypeId, name: &str, kind: MarshalerKind) -> GobId {
        if let Some(id) = self.lookup(key) {
            return id;
        }
        let id = self.alloc(key);
        self.defs.insert(
            id,
            WireType {
                name: name.to_owned(),
                id,
                kind: WireKind::Marshaler(kind),
            },
        );
        id
    }

    /// Registers an array, slice or map (or an anonymous struct when `build` returns a struct):
    /// element types first, then this type. `type_string` names it when reached via a field.
    pub fn register_composite(
        &mut self,
        key: TypeId,
        ctx: Ctx,
        type_string: impl FnOnce() -> String,
        build: impl FnOnce(&mut Registry) -> WireKind,
    ) -> GobId {
        let (key, name) = match ctx.named {
            Some((k, n)) => (k, n.to_owned()),
            None if ctx.field => (key, type_string()),
            None => (key, String::new()),
        };
        if let Some(id) = self.lookup(key) {
            return id;
        }
        let kind = build(self);
        if let Some(id) = self.lookup(key) {
            // Registered recursively while building (only possible through a struct).
            return id;
        }
        let id = self.alloc(key);
        self.defs.insert(id, WireType { name, id, kind });
        id
    }

    /// Whether values of type `id` are encoded as structs (no singleton delta at top level).
    pub fn is_struct(&self, id: GobId) -> bool {
        matches!(
            self.defs.get(&id),
            Some(WireType {
                kind: WireKind::Struct { .. },
                ..
            })
        )
    }
}

/// Helper used by derived `gob_encode`: writes struct fields with deltas, skipping zero values.
#[derive(Debug)]
pub struct StructEncoder<'a> {
    out: &'a mut Vec<u8>,
    last: i64,
}

impl<'a> StructEncoder<'a> {
    /// Starts a struct value.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        StructEncoder { out, last: -1 }
    }

    /// Writes field `index` unless it is zero.
    pub fn field<T: GobType + ?Sized>(&mut self, index: i64, v: &T) -> Result<()> {
        if v.gob_is_zero() {
            return Ok(());
        }
        write_uint(self.out, (index - self.last) as u64);
        self.last = index;
        v.gob_encode(self.out)
    }

    /// Writes the `00` terminator.
    pub fn finish(self) {
        self.out.push(0);
    }
}

macro_rules! builtin {
    ($($t:ty => $id:expr, $name:expr, $zero:expr, |$s:ident, $o:ident| $enc:expr;)*) => {$(
        impl GobType for $t {
            fn gob_register(_: &mut Registry, _: Ctx) -> GobId { $id }
            fn gob_type_string() -> String { String::from($name) }
            fn gob_is_zero(&self) -> bool { *self == $zero }
            fn gob_encode(&self, $o: &mut Vec<u8>) -> Result<()> {
                let $s = *self;
                $enc;
                Ok(())
            }
        }
    )*};
}

builtin! {
    bool => ids::BOOL, "bool", false, |v, o| write_uint(o, u64::from(v));
    i8 => ids::INT, "int8", 0, |v, o| write_int(o, i64::from(v));
    i16 => ids::INT, "int16", 0, |v, o| write_int(o, i64::from(v));
    i32 => ids::INT, "int32", 0, |v, o| write_int(o, i64::from(v));
    i64 => ids::INT, "int64", 0, |v, o| write_int(o, v);
    isize => ids::INT, "int", 0, |v, o| write_int(o, v as i64);
    u16 => ids::UINT, "uint16", 0, |v, o| write_uint(o, u64::from(v));
    u32 => ids::UINT, "uint32", 0, |v, o| write_uint(o, u64::from(v));
    u64 => ids::UINT, "uint64", 0, |v, o| write_uint(o, v);
    usize => ids::UINT, "uint", 0, |v, o| write_uint(o, v as u64);
    f32 => ids::FLOAT, "float32", 0.0, |v, o| write_float(o, f64::from(v));
    f64 => ids::FLOAT, "float64", 0.0, |v, o| write_float(o, v);
}

impl GobType for u8 {
    fn gob_register(_: &mut Registry, _: Ctx) -> GobId {
        ids::UINT
    }
    fn gob_type_string() -> String {
        String::from("uint8")
    }
    fn gob_is_zero(&self) -> bool {
        *self == 0
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        write_uint(out, u64::from(*self));
        Ok(())
    }
    fn gob_register_slice(_: &mut Registry, _: Ctx) -> GobId {
        ids::BYTES
    }
    fn gob_encode_slice(items: &[u8], out: &mut Vec<u8>) -> Result<()> {
        write_bytes(out, items);
        Ok(())
    }
}

impl GobType for String {
    fn gob_register(_: &mut Registry, _: Ctx) -> GobId {
        ids::STRING
    }
    fn gob_type_string() -> String {
        String::from("string")
    }
    fn gob_is_zero(&self) -> bool {
        self.is_empty()
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        write_bytes(out, self.as_bytes());
        Ok(())
    }
}

impl GobType for str {
    fn gob_register(_: &mut Registry, _: Ctx) -> GobId {
        ids::STRING
    }
    fn gob_type_string() -> String {
        String::from("string")
    }
    fn gob_is_zero(&self) -> bool {
        self.is_empty()
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        write_bytes(out, self.as_bytes());
        Ok(())
    }
}

/// `()` is Go's anonymous `struct{}` (net/rpc's empty argument and reply).
impl GobType for () {
    fn gob_register(reg: &mut Registry, ctx: Ctx) -> GobId {
        reg.register_composite(
            TypeId::of::<()>(),
            ctx,
            || String::from("struct {}"),
            |_| WireKind::Struct { fields: Vec::new() },
        )
    }
    fn gob_type_string() -> String {
        String::from("struct {}")
    }
    fn gob_is_zero(&self) -> bool {
        false
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.push(0);
        Ok(())
    }
}

impl<T: GobType> GobType for Vec<T> {
    fn gob_register(reg: &mut Registry, ctx: Ctx) -> GobId {
        T::gob_register_slice(reg, ctx)
    }
    fn gob_type_string() -> String {
        format!("[]{}", T::gob_type_string())
    }
    fn gob_is_zero(&self) -> bool {
        self.is_empty()
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        T::gob_encode_slice(self, out)
    }
}

impl<T: GobType> GobType for [T] {
    fn gob_register(reg: &mut Registry, ctx: Ctx) -> GobId {
        T::gob_register_slice(reg, ctx)
    }
    fn gob_type_string() -> String {
        format!("[]{}", T::gob_type_string())
    }
    fn gob_is_zero(&self) -> bool {
        self.is_empty()
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        T::gob_encode_slice(self, out)
    }
}

impl<T: GobType, const N: usize> GobType for [T; N] {
    fn gob_register(reg: &mut Registry, ctx: Ctx) -> GobId {
        reg.register_composite(TypeId::of::<[T; N]>(), ctx, Self::gob_type_string, |reg| {
            WireKind::Array {
                elem: T::gob_register(reg, Ctx::TOP),
                len: N as i64,
            }
        })
    }
    fn gob_type_string() -> String {
        format!("[{N}]{}", T::gob_type_string())
    }
    fn gob_is_zero(&self) -> bool {
        false
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        write_uint(out, N as u64);
        for it in self {
            it.gob_encode(out)?;
        }
        Ok(())
    }
}

/// A pointer: transparent on the wire; `None` is omitted as a struct field.
impl<T: GobType> GobType for Option<T> {
    fn gob_register(reg: &mut Registry, ctx: Ctx) -> GobId {
        T::gob_register(reg, ctx)
    }
    fn gob_type_string() -> String {
        format!("*{}", T::gob_type_string())
    }
    fn gob_is_zero(&self) -> bool {
        self.as_ref().is_none_or(GobType::gob_is_zero)
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Some(v) => v.gob_encode(out),
            None => Err(Error::NilPointer),
        }
    }
}

impl<T: GobType + ?Sized> GobType for Box<T> {
    fn gob_register(reg: &mut Registry, ctx: Ctx) -> GobId {
        T::gob_register(reg, ctx)
    }
    fn gob_type_string() -> String {
        T::gob_type_string()
    }
    fn gob_is_zero(&self) -> bool {
        (**self).gob_is_zero()
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        (**self).gob_encode(out)
    }
}

struct MapKey<K, V>(std::marker::PhantomData<(K, V)>);

fn register_map<K: GobType, V: GobType>(reg: &mut Registry, ctx: Ctx) -> GobId {
    reg.register_composite(
        TypeId::of::<MapKey<K, V>>(),
        ctx,
        map_type_string::<K, V>,
        |reg| {
            let key = K::gob_register(reg, Ctx::TOP);
            let elem = V::gob_register(reg, Ctx::TOP);
            WireKind::Map { key, elem }
        },
    )
}

fn map_type_string<K: GobType, V: GobType>() -> String {
    format!("map[{}]{}", K::gob_type_string(), V::gob_type_string())
}

fn encode_map<'a, K: GobType + 'a, V: GobType + 'a>(
    len: usize,
    it: impl Iterator<Item = (&'a K, &'a V)>,
    out: &mut Vec<u8>,
) -> Result<()> {
    write_uint(out, len as u64);
    for (k, v) in it {
        k.gob_encode(out)?;
        v.gob_encode(out)?;
    }
    Ok(())
}

/// Maps: an empty map counts as zero (like Go's nil map) and is omitted as a field.
impl<K: GobType, V: GobType, S: BuildHasher + 'static> GobType for HashMap<K, V, S> {
    fn gob_register(reg: &mut Registry, ctx: Ctx) -> GobId {
        register_map::<K, V>(reg, ctx)
    }
    fn gob_type_string() -> String {
        map_type_string::<K, V>()
    }
    fn gob_is_zero(&self) -> bool {
        self.is_empty()
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        encode_map(self.len(), self.iter(), out)
    }
}

impl<K: GobType, V: GobType> GobType for BTreeMap<K, V> {
    fn gob_register(reg: &mut Registry, ctx: Ctx) -> GobId {
        register_map::<K, V>(reg, ctx)
    }
    fn gob_type_string() -> String {
        map_type_string::<K, V>()
    }
    fn gob_is_zero(&self) -> bool {
        self.is_empty()
    }
    fn gob_encode(&self, out: &mut Vec<u8>) -> Result<()> {
        encode_map(self.len(), self.iter(), out)
    }
}

/// Implements [`GobType`] for a type that Go encodes through a marshaler interface: the value
/// travels as a length-prefixed byte string and the type is defined as `GobEncoderT`,
/// `BinaryMarshalerT` or `TextMarshalerT`.
///
/// ```
/// use serde::Deserialize;
/// use skywire_gob::{GobType, gob_marshaler};
///
/// /// Go: `type Token [4]byte` with `MarshalBinary`.
/// #[derive(Debug, PartialEq, Deserialize)]
/// struct Token(serde_bytes::ByteBuf);
///
/// gob_marshaler!(Token, Binary, name = "Token", type_string = "pkg.Token",
///                bytes = |t| t.0, is_zero = |t| t.0.iter().all(|&b| b == 0));
///
/// #[derive(Debug, PartialEq, Deserialize, GobType)]
/// #[serde(rename_all = "PascalCase")]
/// struct Msg { tok: Token }
///
/// let m = Msg { tok: Token(serde_bytes::ByteBuf::from(vec![1, 2, 3, 4])) };
/// let bytes = skywire_gob::to_vec(&m).unwrap();
/// assert_eq!(skywire_gob::from_slice::<Msg>(&bytes).unwrap(), m);
/// ```
/// `bytes` must yield something that derefs to `[u8]`; `is_zero` says when Go would omit the
/// field (Go: the underlying value is its zero value, e.g. an all-zero array).
#[macro_export]
macro_rules! gob_marshaler {
    ($ty:ty, $kind:ident, name = $name:expr, type_string = $ts:expr,
     bytes = |$b:ident| $bytes:expr, is_zero = |$z:ident| $zero:expr $(,)?) => {
        impl $crate::GobType for $ty {
            fn gob_register(reg: &mut $crate::Registry, ctx: $crate::Ctx) -> $crate::GobId {
                let (key, name) = ctx.named_or(::core::any::TypeId::of::<Self>(), $name);
                reg.register_marshaler(key, name, $crate::MarshalerKind::$kind)
            }
            fn gob_type_string() -> ::std::string::String {
                ::std::string::String::from($ts)
            }
            fn gob_is_zero(&self) -> bool {
                let $z = self;
                $zero
            }
            fn gob_encode(&self, out: &mut ::std::vec::Vec<u8>) -> $crate::Result<()> {
                let $b = self;
                $crate::wire::write_bytes(out, &$bytes[..]);
                Ok(())
            }
        }
    };
}
