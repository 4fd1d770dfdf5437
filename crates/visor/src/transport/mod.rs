//! Transports: see the module list in lib.rs (owned by the transport work).
