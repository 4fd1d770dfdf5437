//! Wire types of the discovery HTTP API shared by the client ([`super::DiscClient`]) and the
//! service (`skywire-disc`): the error texts and their status codes, the `{"message","code"}`
//! body, the success messages and the `/health` body (spec `dmsg-wire.md` 5.4).
//!
//! The reference client maps the `message` text of an error body back to an error value and
//! treats unknown texts as "unexpected"; [`ApiError::from_message`] does the same.

use serde::{Deserialize, Serialize};

use super::json;

/// `POST /dmsg-discovery/entry/` success message for a first entry.
pub const MSG_ENTRY_SET: &str = "wrote a new entry";
/// `POST /dmsg-discovery/entry/` success message for a new iteration of an existing entry.
pub const MSG_ENTRY_UPDATED: &str = "wrote new entry iteration";
/// `DELETE /dmsg-discovery/entry` success message.
pub const MSG_ENTRY_DELETED: &str = "deleted entry";

/// Entry validation failures (`disc.EntryValidationError`), answered with 422 and the message
/// `entry validation error: <cause>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ValidationError {
    /// Legacy; never produced by the 2023 code, kept for message mapping.
    #[error("entry validation error: new entry has non-zero sequence")]
    NonZeroSequence,
    /// Legacy; never produced by the 2023 code, kept for message mapping.
    #[error("entry validation error: entry of client instance has nil ephemeral keys")]
    NilEphemerals,
    /// `static` is the null key.
    #[error("entry validation error: entry Keys is nil")]
    NilKeys,
    /// Legacy; never produced by the 2023 code, kept for message mapping.
    #[error("entry validation error: entry of server instance has non nil Keys.Ephemerals field")]
    NonNilEphemerals,
    /// `signature` is missing or empty.
    #[error("entry validation error: entry has no signature")]
    NoSignature,
    /// `version` is missing or empty.
    #[error("entry validation error: entry has no version")]
    NoVersion,
    /// Neither `client` nor `server` is present.
    #[error("entry validation error: entry has neither client or server field")]
    NoClientOrServer,
    /// The new sequence is not greater than the stored one.
    #[error("entry validation error: sequence field of new entry is not sequence of old entry + 1")]
    WrongSequence,
    /// The new timestamp is before the stored one.
    #[error("entry validation error: advertised entry timestamp is not greater than previous")]
    WrongTime,
    /// A server entry's timestamp is outside `[now - 60 s, now + 5 s]`.
    #[error("entry validation error: advertised entry has outdated timestamp")]
    OutdatedTime,
    /// A server entry advertises a loopback or host-less address (production mode).
    #[error(
        "entry validation error: advertising localhost listening address is not allowed in production mode"
    )]
    ServerAddress,
    /// A server entry with an empty address.
    #[error("entry validation error: server address cannot be empty")]
    EmptyServerAddress,
}

impl ValidationError {
    /// Every variant, for reverse lookup by message.
    pub const ALL: [ValidationError; 12] = [
        ValidationError::NonZeroSequence,
        ValidationError::NilEphemerals,
        ValidationError::NilKeys,
        ValidationError::NonNilEphemerals,
        ValidationError::NoSignature,
        ValidationError::NoVersion,
        ValidationError::NoClientOrServer,
        ValidationError::WrongSequence,
        ValidationError::WrongTime,
        ValidationError::OutdatedTime,
        ValidationError::ServerAddress,
        ValidationError::EmptyServerAddress,
    ];

    /// The `<cause>` part of the message (after `entry validation error: `).
    pub fn cause(&self) -> String {
        let full = self.to_string();
        full.strip_prefix("entry validation error: ")
            .map(str::to_owned)
            .unwrap_or(full)
    }
}

/// Every error the discovery API reports, with the reference's message texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ApiError {
    /// 404: no entry for that key.
    #[error("entry of public key is not found")]
    KeyNotFound,
    /// 404: no (available) server entries.
    #[error("no delegated dmsg servers available for remote")]
    NoAvailableServers,
    /// 500: anything else (also what unknown message texts map to).
    #[error("something unexpected happened")]
    Unexpected,
    /// 401: the entry's signature does not verify.
    #[error("invalid signature")]
    Unauthorized,
    /// 400: a malformed public key in the path or deregistration list.
    #[error("error bad input")]
    BadInput,
    /// 422: entry validation failed.
    #[error(transparent)]
    Validation(#[from] ValidationError),
}

impl ApiError {
    /// The HTTP status code the reference answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::KeyNotFound | ApiError::NoAvailableServers => 404,
            ApiError::Unexpected => 500,
            ApiError::Unauthorized => 401,
            ApiError::BadInput => 400,
            ApiError::Validation(_) => 422,
        }
    }

    /// Maps a message text back to the error, as the reference client's `errFromString`
    /// (which answers "unexpected" for unknown texts; here that is `None`).
    pub fn from_message(message: &str) -> Option<ApiError> {
        [
            ApiError::KeyNotFound,
            ApiError::NoAvailableServers,
            ApiError::Unexpected,
            ApiError::Unauthorized,
            ApiError::BadInput,
        ]
        .into_iter()
        .chain(ValidationError::ALL.into_iter().map(ApiError::Validation))
        .find(|e| e.to_string() == message)
    }

    /// The error body the reference writes for this error.
    pub fn http_message(&self) -> HttpMessage {
        HttpMessage {
            message: self.to_string(),
            code: i64::from(self.status()),
        }
    }
}

/// The `{"message": ..., "code": ...}` body of errors and of POST/DELETE successes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpMessage {
    /// Human-readable text; for errors one of the [`ApiError`] texts.
    #[serde(default)]
    pub message: String,
    /// The HTTP status code repeated.
    #[serde(default)]
    pub code: i64,
}

impl HttpMessage {
    /// A 200 message such as [`MSG_ENTRY_SET`].
    pub fn ok(message: &str) -> HttpMessage {
        HttpMessage {
            message: message.to_owned(),
            code: 200,
        }
    }

    /// Compact JSON in the reference's key order (`message` first).
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"message\":");
        json::write_string(&mut out, &self.message);
        out.push_str(",\"code\":");
        out.push_str(&self.code.to_string());
        out.push('}');
        out
    }
}

/// `build_info` of `/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Release version (the reference prints `unknown` when not stamped).
    #[serde(default)]
    pub version: String,
    /// Source commit.
    #[serde(default)]
    pub commit: String,
    /// Build date.
    #[serde(default)]
    pub date: String,
}

impl Default for BuildInfo {
    fn default() -> BuildInfo {
        BuildInfo {
            version: "unknown".to_owned(),
            commit: "unknown".to_owned(),
            date: "unknown".to_owned(),
        }
    }
}

/// The `/health` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Build information.
    #[serde(default)]
    pub build_info: BuildInfo,
    /// Start time, RFC 3339 with nanoseconds (Go's `time.Time` JSON form).
    #[serde(default)]
    pub started_at: String,
    /// `<pk>:80` when the discovery also serves over dmsg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmsg_address: Option<String>,
}

impl Health {
    /// Compact JSON in the reference's key order.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{\"build_info\":{\"version\":");
        json::write_string(&mut out, &self.build_info.version);
        out.push_str(",\"commit\":");
        json::write_string(&mut out, &self.build_info.commit);
        out.push_str(",\"date\":");
        json::write_string(&mut out, &self.build_info.date);
        out.push_str("},\"started_at\":");
        json::write_string(&mut out, &self.started_at);
        if let Some(addr) = self.dmsg_address.as_deref().filter(|a| !a.is_empty()) {
            out.push_str(",\"dmsg_address\":");
            json::write_string(&mut out, addr);
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for v in ValidationError::ALL {
            let e = ApiError::Validation(v);
            assert_eq!(ApiError::from_message(&e.to_string()), Some(e));
            assert_eq!(e.status(), 422);
        }
        assert_eq!(
            ApiError::from_message("entry of public key is not found"),
            Some(ApiError::KeyNotFound)
        );
        assert_eq!(ApiError::from_message("nope"), None);
        assert_eq!(
            ValidationError::NoSignature.cause(),
            "entry has no signature"
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(
            ApiError::BadInput.http_message().to_json(),
            r#"{"message":"error bad input","code":400}"#
        );
        let h = Health {
            build_info: BuildInfo::default(),
            started_at: "2026-11-22T01:12:12.952376862Z".into(),
            dmsg_address: None,
        };
        assert_eq!(
            h.to_json(),
            r#"{"build_info":{"version":"unknown","commit":"unknown","date":"unknown"},"started_at":"2026-11-22T01:12:12.952376862Z"}"#
        );
    }
}
