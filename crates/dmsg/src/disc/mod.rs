//! dmsg discovery: the signed [`Entry`] every dmsg client and server publishes, the wire types
//! of the discovery HTTP API, and [`DiscClient`], the HTTP client for that API.
//!
//! This module owns the exact JSON text of entries (spec `dmsg-wire.md` section 5): compact,
//! fixed key order, the reference's string escaping, integers as integers. Signatures are made
//! over that text without the `signature` key and verified by re-serialising the parsed entry,
//! so unknown keys are dropped before verification exactly as the 2023 reference does.
//!
//! Submodules:
//! * [`entry`]: [`Entry`], [`Client`], [`Server`]; parsing, canonical serialisation, signing,
//!   verification, validation.
//! * [`api`]: error texts and status codes ([`ApiError`], [`ValidationError`]), the
//!   `{"message","code"}` body ([`HttpMessage`]), `/health` ([`Health`]), success messages.
//! * [`json`]: the reference serializer's string escaping (json-iterator `ConfigFastest`).
//! * [`client`]: [`DiscClient`] and [`DiscClient::register_or_update`] (section 5.5).
//!
//! Newer fields (section 7: `client_type`, `protocol`, server `address_v6`, `address_udp`,
//! `address_udp_v6`, `address_ws`, `serverType`, `dht_bootstrap`) are parsed and re-serialised
//! in their newest struct positions when non-empty, so entries of newer Skywire clients verify
//! at our discovery; when they are empty the text is byte-identical to the 2023 text. Our own
//! client never sets them and [`DiscClient::register_or_update`] clears them before re-signing,
//! because a 2023 discovery drops them before verifying and would answer 401, and because a
//! server reading `protocol: "smux"` would switch to a multiplexer we do not speak.

pub mod api;
pub mod client;
pub mod entry;
pub mod json;

pub use api::{
    ApiError, BuildInfo, Health, HttpMessage, MSG_ENTRY_DELETED, MSG_ENTRY_SET, MSG_ENTRY_UPDATED,
    ValidationError,
};
pub use client::{DiscClient, DiscError};
pub use entry::{
    ALLOWED_CLOCK_SKEW, CURRENT_VERSION, Client, ENTRY_LIFETIME, Entry, EntryError, Server,
    entries_to_json, now_unix_nanos,
};
