//! The discovery [`Entry`]: its exact JSON text, signing, verification and validation
//! (spec `dmsg-wire.md` 5.1–5.3).
//!
//! Parsing follows the reference decoder (json-iterator `ConfigFastest`): keys match
//! ASCII-case-insensitively, unknown keys are ignored, a repeated key overwrites the earlier one,
//! and `null` leaves a field at its zero value (a null `client`/`server` is absent, a null
//! `static` is the null key). Serialisation ([`Entry::to_json`]) is compact, in the reference's
//! field order, with omitted fields as the reference omits them and the reference's string
//! escaping ([`super::json`]); `delegated_servers: null` (`None`) and `[]` (`Some(vec![])`)
//! stay distinct because they are different signed texts.
//!
//! The reference keeps `signature` as a string and only parses it when verifying; to keep the
//! same observable behaviour (a garbage signature is a 401, not a decoding failure), a non-empty
//! `signature` that is not 65 bytes of hex parses as [`Sig::NULL`], which never verifies.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use skywire_cipher::{CipherError, PubKey, SecKey, Sig, sign_payload, verify_payload};

use super::api::ValidationError;
use super::json;

/// The only entry version the reference writes.
pub const CURRENT_VERSION: &str = "0.0.1";
/// How old a server entry's timestamp may be when it is posted.
pub const ENTRY_LIFETIME: Duration = Duration::from_secs(60);
/// How far in the future a server entry's timestamp may be (clock skew).
pub const ALLOWED_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// Errors of parsing, signing and verifying entries.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The text is not an entry.
    #[error("malformed entry JSON")]
    Json(#[source] serde_json::Error),
    /// Verification of an entry without a signature.
    #[error("entry has no signature")]
    NoSignature,
    /// The signer refused (all-zero hash; practically impossible).
    #[error("signing the entry failed")]
    Sign(#[source] CipherError),
    /// The signature does not verify against `static`.
    #[error("entry signature does not verify")]
    BadSignature(#[source] CipherError),
}

/// A dmsg node's discovery entry (`disc.Entry`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Structure version, [`CURRENT_VERSION`]; must be non-empty.
    pub version: String,
    /// Iteration counter; each update must increase it.
    pub sequence: u64,
    /// Unix time in nanoseconds of this iteration.
    pub timestamp: i64,
    /// The node's public key (JSON `static`).
    pub static_pk: PubKey,
    /// Present when the node is reachable as a dmsg client.
    pub client: Option<Client>,
    /// Newer field (section 7), omitted when empty. Never set by our client.
    pub client_type: String,
    /// Present when the node is a dmsg server.
    pub server: Option<Server>,
    /// Signature over [`Entry::signed_payload`]; `None` is omitted from the JSON.
    pub signature: Option<Sig>,
    /// Newer field (section 7, mux selection `"smux"`), omitted when empty. Never set by our
    /// client.
    pub protocol: String,
}

/// Client part of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Client {
    /// Servers through which the client accepts streams. `None` serialises as `null`,
    /// `Some(vec![])` as `[]`.
    pub delegated_servers: Option<Vec<PubKey>>,
}

/// Server part of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Server {
    /// `host:port` clients dial.
    pub address: String,
    /// Newer field, omitted when empty.
    pub address_v6: String,
    /// Newer field, omitted when empty.
    pub address_udp: String,
    /// Newer field, omitted when empty.
    pub address_udp_v6: String,
    /// Newer field, omitted when empty.
    pub address_ws: String,
    /// `max_sessions - current sessions` (JSON `availableSessions`; Go `int`).
    pub available_sessions: i64,
    /// Newer field (JSON `serverType`), omitted when empty.
    pub server_type: String,
    /// Newer field, omitted when false.
    pub dht_bootstrap: bool,
}

impl Server {
    /// A server part with only the 2023 fields set.
    pub fn new(address: impl Into<String>, available_sessions: i64) -> Server {
        Server {
            address: address.into(),
            available_sessions,
            ..Server::default()
        }
    }
}

/// Current Unix time in nanoseconds (saturating).
pub fn now_unix_nanos() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

impl Entry {
    /// An unsigned client entry (version 0.0.1, timestamp now).
    pub fn new_client(pk: PubKey, sequence: u64, delegated_servers: Vec<PubKey>) -> Entry {
        Entry {
            version: CURRENT_VERSION.to_owned(),
            sequence,
            timestamp: now_unix_nanos(),
            static_pk: pk,
            client: Some(Client {
                delegated_servers: Some(delegated_servers),
            }),
            ..Entry::default()
        }
    }

    /// An unsigned server entry (version 0.0.1, timestamp now).
    pub fn new_server(
        pk: PubKey,
        sequence: u64,
        address: impl Into<String>,
        available_sessions: i64,
    ) -> Entry {
        Entry {
            version: CURRENT_VERSION.to_owned(),
            sequence,
            timestamp: now_unix_nanos(),
            static_pk: pk,
            server: Some(Server::new(address, available_sessions)),
            ..Entry::default()
        }
    }

    /// Parses one complete JSON document (trailing non-whitespace is an error).
    pub fn from_json(bytes: &[u8]) -> Result<Entry, EntryError> {
        serde_json::from_slice(bytes).map_err(EntryError::Json)
    }

    /// Parses the first JSON value of `bytes` and ignores whatever follows, like Go's
    /// `json.NewDecoder(body).Decode(&entry)` in the reference handlers.
    pub fn from_json_prefix(bytes: &[u8]) -> Result<Entry, EntryError> {
        match serde_json::Deserializer::from_slice(bytes)
            .into_iter::<Entry>()
            .next()
        {
            Some(r) => r.map_err(EntryError::Json),
            // Empty input: let serde_json produce its EOF error.
            None => Entry::from_json(bytes),
        }
    }

    /// The entry as the reference serialises it (compact, field order, omissions).
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(512);
        self.write_json(&mut out, true);
        out
    }

    /// The bytes that are signed: [`Entry::to_json`] without the `signature` key.
    pub fn signed_payload(&self) -> String {
        let mut out = String::with_capacity(512);
        self.write_json(&mut out, false);
        out
    }

    fn write_json(&self, out: &mut String, with_signature: bool) {
        out.push_str("{\"version\":");
        json::write_string(out, &self.version);
        out.push_str(",\"sequence\":");
        out.push_str(&self.sequence.to_string());
        out.push_str(",\"timestamp\":");
        out.push_str(&self.timestamp.to_string());
        out.push_str(",\"static\":\"");
        out.push_str(&self.static_pk.to_hex());
        out.push('"');
        if let Some(c) = &self.client {
            out.push_str(",\"client\":{\"delegated_servers\":");
            match &c.delegated_servers {
                None => out.push_str("null"),
                Some(list) => {
                    out.push('[');
                    for (i, pk) in list.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push('"');
                        out.push_str(&pk.to_hex());
                        out.push('"');
                    }
                    out.push(']');
                }
            }
            out.push('}');
        }
        push_opt_str(out, "client_type", &self.client_type);
        if let Some(s) = &self.server {
            out.push_str(",\"server\":{\"address\":");
            json::write_string(out, &s.address);
            push_opt_str(out, "address_v6", &s.address_v6);
            push_opt_str(out, "address_udp", &s.address_udp);
            push_opt_str(out, "address_udp_v6", &s.address_udp_v6);
            push_opt_str(out, "address_ws", &s.address_ws);
            out.push_str(",\"availableSessions\":");
            out.push_str(&s.available_sessions.to_string());
            push_opt_str(out, "serverType", &s.server_type);
            if s.dht_bootstrap {
                out.push_str(",\"dht_bootstrap\":true");
            }
            out.push('}');
        }
        if with_signature && let Some(sig) = &self.signature {
            out.push_str(",\"signature\":\"");
            out.push_str(&sig.to_hex());
            out.push('"');
        }
        push_opt_str(out, "protocol", &self.protocol);
        out.push('}');
    }

    /// Signs the entry with `sk` (clearing any previous signature first), as `Entry.Sign`.
    pub fn sign(&mut self, sk: &SecKey) -> Result<(), EntryError> {
        self.signature = None;
        let sig = sign_payload(sk, self.signed_payload().as_bytes()).map_err(EntryError::Sign)?;
        self.signature = Some(sig);
        Ok(())
    }

    /// Verifies the signature against `static` over the re-serialised entry without its
    /// signature (`Entry.VerifySignature`).
    pub fn verify_signature(&self) -> Result<(), EntryError> {
        let sig = self.signature.as_ref().ok_or(EntryError::NoSignature)?;
        verify_payload(&self.static_pk, self.signed_payload().as_bytes(), sig)
            .map_err(EntryError::BadSignature)
    }

    /// `Entry.Validate`: version, signature, static key, client or server, server address and,
    /// if `validate_timestamp`, the timestamp window against the system clock.
    pub fn validate(&self, validate_timestamp: bool) -> Result<(), ValidationError> {
        self.validate_at(validate_timestamp.then(now_unix_nanos))
    }

    /// [`Entry::validate`] with an explicit clock: the timestamp is checked against
    /// `[now - 60 s, now + 5 s]` when `now_ns` is `Some`.
    pub fn validate_at(&self, now_ns: Option<i64>) -> Result<(), ValidationError> {
        if self.version.is_empty() {
            return Err(ValidationError::NoVersion);
        }
        if self.signature.is_none() {
            return Err(ValidationError::NoSignature);
        }
        if self.static_pk.is_null() {
            return Err(ValidationError::NilKeys);
        }
        if self.client.is_none() && self.server.is_none() {
            return Err(ValidationError::NoClientOrServer);
        }
        if self.server.as_ref().is_some_and(|s| s.address.is_empty()) {
            return Err(ValidationError::EmptyServerAddress);
        }
        if let Some(now) = now_ns {
            let now = i128::from(now);
            let ts = i128::from(self.timestamp);
            let earliest = now - ENTRY_LIFETIME.as_nanos() as i128;
            let latest = now + ALLOWED_CLOCK_SKEW.as_nanos() as i128;
            if ts > latest || ts < earliest {
                return Err(ValidationError::OutdatedTime);
            }
        }
        Ok(())
    }

    /// `Entry.ValidateIteration`: `next` must have a greater sequence and a timestamp not
    /// before this (stored) entry's.
    pub fn validate_iteration(&self, next: &Entry) -> Result<(), ValidationError> {
        if next.sequence <= self.sequence {
            return Err(ValidationError::WrongSequence);
        }
        if next.timestamp < self.timestamp {
            return Err(ValidationError::WrongTime);
        }
        Ok(())
    }

    /// Clears the fields a 2023 discovery does not know (section 7).
    pub fn clear_newer_fields(&mut self) {
        self.client_type.clear();
        self.protocol.clear();
        if let Some(s) = &mut self.server {
            s.address_v6.clear();
            s.address_udp.clear();
            s.address_udp_v6.clear();
            s.address_ws.clear();
            s.server_type.clear();
            s.dht_bootstrap = false;
        }
    }

    /// Whether any section-7 field is set.
    pub fn has_newer_fields(&self) -> bool {
        let mut plain = self.clone();
        plain.clear_newer_fields();
        &plain != self
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// A JSON array of entries in the reference's form (`[]` when empty).
pub fn entries_to_json(entries: &[Entry]) -> String {
    let mut out = String::from("[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        e.write_json(&mut out, true);
    }
    out.push(']');
    out
}

fn push_opt_str(out: &mut String, key: &str, value: &str) {
    if !value.is_empty() {
        out.push_str(",\"");
        out.push_str(key);
        out.push_str("\":");
        json::write_string(out, value);
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

fn parse_sig_text(s: &str) -> Option<Sig> {
    if s.is_empty() {
        return None;
    }
    Some(Sig::from_hex(s).unwrap_or(Sig::NULL))
}

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a dmsg discovery entry object")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
                Ok(Entry::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
                let mut e = Entry::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.to_ascii_lowercase().as_str() {
                        "version" => {
                            e.version = map.next_value::<Option<String>>()?.unwrap_or_default()
                        }
                        "sequence" => {
                            e.sequence = map.next_value::<Option<u64>>()?.unwrap_or_default()
                        }
                        "timestamp" => {
                            e.timestamp = map.next_value::<Option<i64>>()?.unwrap_or_default()
                        }
                        "static" => {
                            e.static_pk = map.next_value::<Option<PubKey>>()?.unwrap_or_default()
                        }
                        "client" => e.client = map.next_value::<Option<Client>>()?,
                        "client_type" => {
                            e.client_type = map.next_value::<Option<String>>()?.unwrap_or_default()
                        }
                        "server" => e.server = map.next_value::<Option<Server>>()?,
                        "signature" => {
                            e.signature = map
                                .next_value::<Option<String>>()?
                                .as_deref()
                                .and_then(parse_sig_text)
                        }
                        "protocol" => {
                            e.protocol = map.next_value::<Option<String>>()?.unwrap_or_default()
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(e)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Client {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Client, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Client;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a client object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Client, A::Error> {
                let mut c = Client::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key.eq_ignore_ascii_case("delegated_servers") {
                        c.delegated_servers = map
                            .next_value::<Option<Vec<Option<PubKey>>>>()?
                            .map(|v| v.into_iter().map(Option::unwrap_or_default).collect());
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Server {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Server, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Server;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a server object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Server, A::Error> {
                let mut s = Server::default();
                while let Some(key) = map.next_key::<String>()? {
                    let text = |v: Option<String>| v.unwrap_or_default();
                    match key.to_ascii_lowercase().as_str() {
                        "address" => s.address = text(map.next_value()?),
                        "address_v6" => s.address_v6 = text(map.next_value()?),
                        "address_udp" => s.address_udp = text(map.next_value()?),
                        "address_udp_v6" => s.address_udp_v6 = text(map.next_value()?),
                        "address_ws" => s.address_ws = text(map.next_value()?),
                        "availablesessions" => {
                            s.available_sessions =
                                map.next_value::<Option<i64>>()?.unwrap_or_default()
                        }
                        "servertype" => s.server_type = text(map.next_value()?),
                        "dht_bootstrap" => {
                            s.dht_bootstrap = map.next_value::<Option<bool>>()?.unwrap_or_default()
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecKey {
        let mut b = [0u8; 32];
        b[31] = n;
        SecKey::from_bytes(&b).unwrap()
    }

    #[test]
    fn null_and_empty_list_differ() {
        let pk = key(1).pub_key();
        let mut e = Entry::new_client(pk, 0, vec![]);
        e.timestamp = 1;
        assert!(e.to_json().contains("\"delegated_servers\":[]"));
        e.client = Some(Client::default());
        assert!(e.to_json().contains("\"delegated_servers\":null"));
        let back = Entry::from_json(e.to_json().as_bytes()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn case_insensitive_keys_nulls_and_unknowns() {
        let pk = key(2).pub_key();
        let text = format!(
            r#"{{"VERSION":"0.0.1","Sequence":null,"timestamp":5,"sTatic":"{pk}","x":[1,{{}}],"server":{{"Address":"a:1","AVAILABLESESSIONS":3}},"client":null}}"#
        );
        let e = Entry::from_json(text.as_bytes()).unwrap();
        assert_eq!(e.version, "0.0.1");
        assert_eq!(e.sequence, 0);
        assert_eq!(e.server, Some(Server::new("a:1", 3)));
        assert_eq!(e.client, None);
        assert_eq!(
            e.to_json(),
            format!(
                r#"{{"version":"0.0.1","sequence":0,"timestamp":5,"static":"{pk}","server":{{"address":"a:1","availableSessions":3}}}}"#
            )
        );
    }

    #[test]
    fn garbage_signature_is_null_and_fails() {
        let pk = key(3).pub_key();
        let text =
            format!(r#"{{"version":"0.0.1","static":"{pk}","client":{{}},"signature":"zz"}}"#);
        let e = Entry::from_json(text.as_bytes()).unwrap();
        assert_eq!(e.signature, Some(Sig::NULL));
        assert_eq!(e.validate(false), Ok(()));
        assert!(e.verify_signature().is_err());
    }

    #[test]
    fn prefix_parse_ignores_trailing() {
        let e = Entry::from_json_prefix(br#"{"version":"v"} trailing"#).unwrap();
        assert_eq!(e.version, "v");
        assert!(Entry::from_json_prefix(b"").is_err());
        assert!(Entry::from_json(br#"{"version":"v"} x"#).is_err());
        assert_eq!(Entry::from_json(b"null").unwrap(), Entry::default());
    }

    #[test]
    fn timestamp_window() {
        let sk = key(4);
        let mut e = Entry::new_server(sk.pub_key(), 0, "1.2.3.4:5", 1);
        e.sign(&sk).unwrap();
        let now = e.timestamp;
        let s = |n: i64| n * 1_000_000_000;
        assert_eq!(e.validate_at(Some(now)), Ok(()));
        assert_eq!(e.validate_at(Some(now + s(60))), Ok(()));
        assert_eq!(
            e.validate_at(Some(now + s(60) + 1)),
            Err(ValidationError::OutdatedTime)
        );
        assert_eq!(e.validate_at(Some(now - s(5))), Ok(()));
        assert_eq!(
            e.validate_at(Some(now - s(5) - 1)),
            Err(ValidationError::OutdatedTime)
        );
    }

    #[test]
    fn newer_fields_keep_position_and_sign() {
        let sk = key(5);
        let mut e = Entry::new_server(sk.pub_key(), 1, "1.2.3.4:5", 1);
        e.timestamp = 7;
        e.client_type = "visor".into();
        e.protocol = "smux".into();
        if let Some(s) = &mut e.server {
            s.address_v6 = "[::1]:5".into();
            s.server_type = "official".into();
            s.dht_bootstrap = true;
        }
        e.sign(&sk).unwrap();
        let text = e.to_json();
        let i = |k: &str| text.find(k).unwrap();
        assert!(i("\"address\"") < i("\"address_v6\""));
        assert!(i("\"availableSessions\"") < i("\"serverType\""));
        assert!(i("\"signature\"") < i("\"protocol\""));
        let back = Entry::from_json(text.as_bytes()).unwrap();
        assert_eq!(back, e);
        back.verify_signature().unwrap();
        assert!(back.has_newer_fields());
        let mut plain = back.clone();
        plain.clear_newer_fields();
        assert!(!plain.has_newer_fields());
        assert!(plain.verify_signature().is_err());
    }
}
