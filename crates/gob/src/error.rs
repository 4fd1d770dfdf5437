//! Error type of the crate: every way encoding or decoding can fail, with messages that name the
//! offending type, field or limit.

use crate::GobId;

/// Everything that can go wrong while encoding or decoding gob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended in the middle of a value or message.
    #[error("gob: truncated input (needed {needed} more byte(s))")]
    Truncated {
        /// How many more bytes were needed at the point of failure.
        needed: usize,
    },
    /// An unsigned integer with an impossible length byte (more than 8 bytes).
    #[error("gob: invalid unsigned integer (length byte {0:#04x})")]
    BadUint(u8),
    /// A message declared a length larger than the configured limit.
    #[error("gob: message of {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// Declared length.
        len: u64,
        /// Configured limit.
        max: usize,
    },
    /// A message of length zero (it cannot even hold a type id).
    #[error("gob: empty message")]
    EmptyMessage,
    /// A value or definition refers to a type id that was never defined on this stream.
    #[error("gob: unknown type id {0}")]
    UnknownTypeId(GobId),
    /// A type id was defined twice on one stream.
    #[error("gob: duplicate definition of type id {0}")]
    Redefinition(GobId),
    /// A definition for a reserved id (below 64).
    #[error("gob: type definition for reserved id {0}")]
    ReservedTypeId(GobId),
    /// The stream defined more types than the configured limit.
    #[error("gob: more than {0} type definitions on one stream")]
    TooManyTypes(usize),
    /// A malformed `wireType` definition.
    #[error("gob: bad type definition: {0}")]
    BadTypeDefinition(String),
    /// Wire type and local type are incompatible (Go's "type mismatch").
    #[error("gob: type mismatch: {0}")]
    TypeMismatch(String),
    /// A struct field delta pointed past the last field of the wire struct.
    #[error("gob: field number {index} out of range for struct {ty:?} ({fields} fields)")]
    FieldOutOfRange {
        /// Field index computed from the deltas.
        index: u64,
        /// Wire type name.
        ty: String,
        /// Number of fields in the wire definition.
        fields: usize,
    },
    /// An element count that cannot possibly fit in the remaining input.
    #[error("gob: element count {count} exceeds the {remaining} byte(s) remaining")]
    CountTooLarge {
        /// Declared count.
        count: u64,
        /// Remaining bytes of the message.
        remaining: usize,
    },
    /// An array value whose element count differs from its type's length.
    #[error("gob: array length mismatch: value has {got} elements, type has {want}")]
    ArrayLength {
        /// Count found in the value.
        got: u64,
        /// Length declared by the type.
        want: i64,
    },
    /// A top-level non-struct value did not start with the `00` singleton delta.
    #[error("gob: non-zero delta {0} for a singleton value")]
    BadSingletonDelta(u64),
    /// A message body had bytes left after its value or definition.
    #[error("gob: {0} trailing byte(s) after value")]
    TrailingBytes(usize),
    /// Values nested deeper than the configured limit.
    #[error("gob: nesting deeper than {0} levels")]
    DepthExceeded(usize),
    /// A string that is not valid UTF-8 was decoded into a Rust `String`.
    #[error("gob: string is not valid UTF-8")]
    InvalidUtf8,
    /// Something gob can express but this crate does not support.
    #[error("gob: unsupported: {0}")]
    Unsupported(&'static str),
    /// `None` where Go would need a non-nil pointer (top level or slice/map element).
    #[error("gob: cannot encode nil pointer (None) outside a struct field")]
    NilPointer,
    /// A message produced by a serde `Deserialize` implementation (e.g. an invalid key).
    #[error("gob: {0}")]
    Custom(String),
}

impl serde::de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string())
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
