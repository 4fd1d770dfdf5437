//! Go `net/rpc` with its default gob codec (pty.md 3.1, 3.7): the `Request`/`Response` headers,
//! the error type, the sans-IO codecs ([`RpcClientCodec`], [`RpcServerCodec`]) and the tokio
//! drivers ([`RpcClient`], [`RpcServer`] with its [`Router`]).
//!
//! Framing: each direction is one gob stream (one encoder/decoder per direction for the life of
//! the connection, type definitions sent once). A call is the header value followed by the body
//! value: `Request{ServiceMethod, Seq}` + argument client→host, `Response{ServiceMethod, Seq,
//! Error}` + reply host→client. An error response carries Go's `invalidRequest`, an empty
//! `struct{}` value, which the receiver consumes without decoding. Responses are matched by `Seq`
//! and may come in any order.

mod client;
mod codec;
mod server;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use skywire_gob::GobType;

pub use client::RpcClient;
pub use codec::{Completed, ErasedBody, RpcClientCodec, RpcServerCodec, value_extent};
pub use server::{Router, RpcServer, ServiceError};

/// Go `rpc.Request`: the header in front of every call's argument.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
pub struct Request {
    /// `"<service>.<Method>"`.
    pub service_method: String,
    /// Sequence number chosen by the client (0, 1, 2, ... per connection).
    pub seq: u64,
}

/// Go `rpc.Response`: the header in front of every reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, GobType)]
#[serde(default, rename_all = "PascalCase")]
pub struct Response {
    /// Echo of the request's method.
    pub service_method: String,
    /// Echo of the request's sequence number.
    pub seq: u64,
    /// Error text; non-empty means the body is an empty struct, not the reply.
    pub error: String,
}

/// Go server error text for a method name without a dot.
pub fn ill_formed_text(service_method: &str) -> String {
    format!("rpc: service/method request ill-formed: {service_method}")
}

/// Go server error text for an unknown service (the full `ServiceMethod` is quoted, as Go does).
pub fn unknown_service_text(service_method: &str) -> String {
    format!("rpc: can't find service {service_method}")
}

/// Go server error text for an unknown method of a known service.
pub fn unknown_method_text(service_method: &str) -> String {
    format!("rpc: can't find method {service_method}")
}

/// Everything an RPC call or connection can fail with. Cloneable so that one connection failure
/// can be handed to every pending call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    /// The remote answered with an error text (Go's `rpc.ServerError`), e.g. an application error
    /// or `rpc: can't find method pty.Exec`.
    #[error("{0}")]
    Remote(String),
    /// Encoding a request or reply failed; nothing of the value was sent.
    #[error("rpc: encoding {what}")]
    Encode {
        /// What was being encoded (`request header`, `argument of pty.Write`, ...).
        what: String,
        /// The gob error.
        #[source]
        source: skywire_gob::Error,
    },
    /// A reply body did not decode into the expected type (Go: `reading body ...`).
    #[error("rpc: reading body of {method}")]
    DecodeBody {
        /// The call's method.
        method: String,
        /// The gob error.
        #[source]
        source: skywire_gob::Error,
    },
    /// The byte stream is not a valid net/rpc gob stream; the connection is unusable.
    #[error("rpc: corrupt stream ({context})")]
    Protocol {
        /// Where it broke (`reading response header`, ...).
        context: &'static str,
        /// The gob error.
        #[source]
        source: skywire_gob::Error,
    },
    /// The connection ended or failed while calls were pending or being sent.
    #[error("rpc: connection lost: {0}")]
    ConnectionLost(String),
    /// The client was closed locally (Go's `rpc.ErrShutdown`).
    #[error("rpc: connection is shut down")]
    Shutdown,
    /// I/O failure of the underlying stream.
    #[error("rpc: stream I/O")]
    Io(#[source] Arc<std::io::Error>),
    /// The reply arrived with an unexpected Rust type (a bug in the caller's type choice).
    #[error("rpc: reply of {0} has an unexpected type")]
    ReplyType(String),
}

impl RpcError {
    /// The remote error text, if this is a remote error.
    pub fn remote_text(&self) -> Option<&str> {
        match self {
            RpcError::Remote(t) => Some(t),
            _ => None,
        }
    }

    /// Whether the remote does not implement the method or service (how G3 clients detect an
    /// older host, by the substrings `can't find method` / `can't find service`).
    pub fn is_unknown_method(&self) -> bool {
        self.remote_text()
            .is_some_and(|t| t.contains("can't find method") || t.contains("can't find service"))
    }

    /// Whether the connection is gone (every further call fails too).
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            RpcError::ConnectionLost(_)
                | RpcError::Shutdown
                | RpcError::Io(_)
                | RpcError::Protocol { .. }
        )
    }
}

impl From<std::io::Error> for RpcError {
    fn from(e: std::io::Error) -> Self {
        RpcError::Io(Arc::new(e))
    }
}
