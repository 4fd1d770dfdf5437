//! Sans-IO `net/rpc` codecs over gob: [`RpcClientCodec`] (encode calls, feed received bytes, get
//! completed calls matched by `Seq`) and [`RpcServerCodec`] (feed received bytes, pull request
//! headers and bodies, encode replies). Neither performs I/O or keeps time.
//!
//! Both buffer received bytes until a whole value message (with the type definitions in front of
//! it) is present, so input may be split anywhere, e.g. across noise frames.

use std::any::Any;
use std::collections::HashMap;

use serde::Deserialize;
use skywire_gob::wire::{Reader, peek_uint};
use skywire_gob::{Decoder, Encoder, GobType, Limits, SharedRegistry};

use super::{Request, Response, RpcError};
use crate::types::Method;

/// A decoded body whose type was chosen by the caller (downcast it to that type).
pub type ErasedBody = Box<dyn Any + Send>;

/// Decodes one value message (exactly `input`) into a type-erased body.
pub(crate) type DecodeFn = fn(&mut Decoder, &[u8]) -> skywire_gob::Result<ErasedBody>;

/// Most bytes of type definitions accepted in front of one value.
const MAX_DEFINITION_BYTES: usize = 1 << 20;

pub(crate) fn decode_as<T>(dec: &mut Decoder, input: &[u8]) -> skywire_gob::Result<ErasedBody>
where
    T: for<'de> Deserialize<'de> + GobType + Send,
{
    decode_exact::<T>(dec, input).map(|v| Box::new(v) as ErasedBody)
}

fn decode_exact<T>(dec: &mut Decoder, input: &[u8]) -> skywire_gob::Result<T>
where
    T: for<'de> Deserialize<'de> + GobType,
{
    match dec.decode_value::<T>(input)? {
        Some((v, n)) if n == input.len() => Ok(v),
        Some((_, n)) => Err(skywire_gob::Error::TrailingBytes(input.len() - n)),
        None => Err(skywire_gob::Error::Truncated { needed: 1 }),
    }
}

fn skip_exact(dec: &mut Decoder, input: &[u8]) -> skywire_gob::Result<()> {
    match dec.skip_value(input)? {
        Some(n) if n == input.len() => Ok(()),
        Some(n) => Err(skywire_gob::Error::TrailingBytes(input.len() - n)),
        None => Err(skywire_gob::Error::Truncated { needed: 1 }),
    }
}

/// The length of the next value message of a gob stream together with the type-definition
/// messages in front of it, or `None` if `input` does not hold all of it yet. Only framing is
/// checked (message lengths, type ids); nothing is decoded or recorded.
pub fn value_extent(input: &[u8], limits: &Limits) -> skywire_gob::Result<Option<usize>> {
    let mut pos = 0usize;
    let mut defs = 0usize;
    loop {
        let Some((hdr, len)) = peek_uint(&input[pos..])? else {
            return Ok(None);
        };
        if len == 0 {
            return Err(skywire_gob::Error::EmptyMessage);
        }
        if len > limits.max_message_len as u64 {
            return Err(skywire_gob::Error::MessageTooLarge {
                len,
                max: limits.max_message_len,
            });
        }
        let start = pos + hdr;
        let len = len as usize; // ≤ max_message_len
        if input.len() - start < len {
            return Ok(None);
        }
        let id = Reader::new(&input[start..start + len]).read_int()?;
        pos = start + len;
        if id >= 0 {
            return Ok(Some(pos));
        }
        defs += 1;
        if defs > limits.max_types {
            return Err(skywire_gob::Error::TooManyTypes(limits.max_types));
        }
        if pos > MAX_DEFINITION_BYTES {
            return Err(skywire_gob::Error::Custom(format!(
                "more than {MAX_DEFINITION_BYTES} bytes of type definitions before a value"
            )));
        }
    }
}

/// Start offset of the last message in `buf` (a sequence of complete messages we produced).
fn last_message_start(buf: &[u8]) -> usize {
    let mut pos = 0;
    let mut last = 0;
    while pos < buf.len() {
        match peek_uint(&buf[pos..]) {
            Ok(Some((hdr, len))) => {
                last = pos;
                pos = pos.saturating_add(hdr).saturating_add(len as usize);
            }
            _ => return last,
        }
    }
    last
}

/// Why [`encode_pair`] failed.
enum PairError {
    /// Nothing was appended.
    Header(skywire_gob::Error),
    /// Only the header's new type definitions (if any) were appended; they must still be sent.
    Body(skywire_gob::Error),
}

/// Appends header and body. On a body failure the header value is removed again but type
/// definitions it introduced stay (the encoder considers them sent; a definition without a value
/// is valid gob).
fn encode_pair<H: GobType>(
    enc: &mut Encoder,
    header: &H,
    body: impl FnOnce(&mut Encoder, &mut Vec<u8>) -> skywire_gob::Result<()>,
    out: &mut Vec<u8>,
) -> Result<(), PairError> {
    let start = out.len();
    enc.encode(header, out).map_err(PairError::Header)?;
    if let Err(e) = body(enc, out) {
        let value_start = start + last_message_start(&out[start..]);
        out.truncate(value_start);
        return Err(PairError::Body(e));
    }
    Ok(())
}

/// Received bytes not yet consumed.
#[derive(Debug, Default)]
struct InBuf {
    buf: Vec<u8>,
    start: usize,
}

impl InBuf {
    fn extend(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }
}

fn new_encoder(reg: Option<SharedRegistry>, limits: &Limits) -> Encoder {
    let mut enc = match reg {
        Some(r) => Encoder::with_shared_registry(r),
        None => Encoder::new(),
    };
    enc.set_max_message_len(limits.max_message_len);
    enc
}

#[derive(Debug)]
struct Pending {
    method: String,
    decode: DecodeFn,
}

/// A finished call reported by [`RpcClientCodec::poll_completed`].
#[derive(Debug)]
pub struct Completed {
    /// The call's sequence number.
    pub seq: u64,
    /// The method, as echoed by the server.
    pub service_method: String,
    /// The decoded reply (of the type given to `encode_call`) or the call's error.
    pub result: Result<ErasedBody, RpcError>,
}

impl Completed {
    /// The reply as `T` (the reply type given when the call was encoded).
    pub fn into_reply<T: 'static>(self) -> Result<T, RpcError> {
        let body = self.result?;
        body.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| RpcError::ReplyType(self.service_method))
    }
}

/// Sans-IO client side of one connection: encodes calls, decodes replies and matches them to
/// calls by `Seq`, so any number of calls may be in flight.
#[derive(Debug)]
pub struct RpcClientCodec {
    enc: Encoder,
    dec: Decoder,
    limits: Limits,
    next_seq: u64,
    pending: HashMap<u64, Pending>,
    inbuf: InBuf,
    header: Option<Response>,
    broken: Option<RpcError>,
}

impl Default for RpcClientCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl RpcClientCodec {
    /// A codec with its own type registry (ids from 64) and default gob limits.
    pub fn new() -> Self {
        Self::with_options(None, Limits::default())
    }

    /// A codec whose encoder takes type ids from `reg` (reproduces a Go process in which several
    /// connections share process-global ids), with the given decoder limits.
    pub fn with_options(reg: Option<SharedRegistry>, limits: Limits) -> Self {
        RpcClientCodec {
            enc: new_encoder(reg, &limits),
            dec: Decoder::with_limits(limits),
            limits,
            next_seq: 0,
            pending: HashMap::new(),
            inbuf: InBuf::default(),
            header: None,
            broken: None,
        }
    }

    /// The sequence number the next call will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Number of calls waiting for their reply.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Encodes a call of `service_method` with `arg` whose reply will be decoded as `R`; appends
    /// the bytes to `out` and returns the call's `Seq`.
    ///
    /// On error the call is not pending, but `out` may have received type definitions, which
    /// must still be sent (the encoder counts them as sent).
    pub fn encode_call<A, R>(
        &mut self,
        service_method: &str,
        arg: &A,
        out: &mut Vec<u8>,
    ) -> Result<u64, RpcError>
    where
        A: GobType + ?Sized,
        R: for<'de> Deserialize<'de> + GobType + Send,
    {
        let seq = self.next_seq;
        self.next_seq += 1;
        let header = Request {
            service_method: service_method.to_owned(),
            seq,
        };
        encode_pair(&mut self.enc, &header, |enc, out| enc.encode(arg, out), out).map_err(|e| {
            match e {
                PairError::Header(source) => RpcError::Encode {
                    what: format!("request header of {service_method}"),
                    source,
                },
                PairError::Body(source) => RpcError::Encode {
                    what: format!("argument of {service_method}"),
                    source,
                },
            }
        })?;
        self.pending.insert(
            seq,
            Pending {
                method: service_method.to_owned(),
                decode: decode_as::<R>,
            },
        );
        Ok(seq)
    }

    /// [`encode_call`](Self::encode_call) for a typed [`Method`].
    pub fn encode_method<M: Method>(
        &mut self,
        arg: &M::Arg,
        out: &mut Vec<u8>,
    ) -> Result<u64, RpcError> {
        self.encode_call::<M::Arg, M::Reply>(M::NAME, arg, out)
    }

    /// Forgets a pending call (its reply will be consumed and dropped). Returns whether it was
    /// pending.
    pub fn cancel(&mut self, seq: u64) -> bool {
        self.pending.remove(&seq).is_some()
    }

    /// Forgets every pending call (after the connection was lost) and returns their `(seq,
    /// method)`.
    pub fn take_pending(&mut self) -> Vec<(u64, String)> {
        self.pending.drain().map(|(s, p)| (s, p.method)).collect()
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.inbuf.extend(data);
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.inbuf.data().len()
    }

    /// The next completed call, `Ok(None)` if more input is needed. Replies to unknown or
    /// cancelled calls are consumed silently. An `Err` means the stream is corrupt: it is returned
    /// again on every later poll, and pending calls should be failed.
    pub fn poll_completed(&mut self) -> Result<Option<Completed>, RpcError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        let r = self.poll_inner();
        if let Err(e) = &r {
            self.broken = Some(e.clone());
        }
        r
    }

    fn poll_inner(&mut self) -> Result<Option<Completed>, RpcError> {
        let protocol = |context| move |source| RpcError::Protocol { context, source };
        loop {
            let header = match self.header.take() {
                Some(h) => h,
                None => {
                    let data = self.inbuf.data();
                    let Some(n) = value_extent(data, &self.limits)
                        .map_err(protocol("reading response header"))?
                    else {
                        return Ok(None);
                    };
                    let h = decode_exact::<Response>(&mut self.dec, &data[..n])
                        .map_err(protocol("reading response header"))?;
                    self.inbuf.consume(n);
                    h
                }
            };
            let data = self.inbuf.data();
            let n = match value_extent(data, &self.limits) {
                Ok(Some(n)) => n,
                Ok(None) => {
                    self.header = Some(header);
                    return Ok(None);
                }
                Err(e) => return Err(protocol("reading response body")(e)),
            };
            let input = &data[..n];
            let result =
                match self.pending.remove(&header.seq) {
                    None => {
                        skip_exact(&mut self.dec, input).map_err(protocol("reading error body"))?;
                        None
                    }
                    Some(_) if !header.error.is_empty() => {
                        skip_exact(&mut self.dec, input).map_err(protocol("reading error body"))?;
                        Some(Err(RpcError::Remote(header.error.clone())))
                    }
                    Some(p) => Some((p.decode)(&mut self.dec, input).map_err(|source| {
                        RpcError::DecodeBody {
                            method: p.method,
                            source,
                        }
                    })),
                };
            self.inbuf.consume(n);
            if let Some(result) = result {
                return Ok(Some(Completed {
                    seq: header.seq,
                    service_method: header.service_method,
                    result,
                }));
            }
        }
    }
}

/// Sans-IO server side of one connection: pull request headers and bodies in stream order, encode
/// replies in any order.
///
/// Protocol per request: [`poll_request`](Self::poll_request) yields the header (repeatedly, until
/// its body is consumed); then exactly one of [`poll_body`](Self::poll_body) or
/// [`poll_skip_body`](Self::poll_skip_body) must be called until it returns `Some`.
#[derive(Debug)]
pub struct RpcServerCodec {
    enc: Encoder,
    dec: Decoder,
    limits: Limits,
    inbuf: InBuf,
    header: Option<Request>,
    broken: Option<RpcError>,
}

impl Default for RpcServerCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl RpcServerCodec {
    /// A codec with its own type registry (ids from 64) and default gob limits.
    pub fn new() -> Self {
        Self::with_options(None, Limits::default())
    }

    /// A codec whose encoder takes type ids from `reg`, with the given decoder limits.
    pub fn with_options(reg: Option<SharedRegistry>, limits: Limits) -> Self {
        RpcServerCodec {
            enc: new_encoder(reg, &limits),
            dec: Decoder::with_limits(limits),
            limits,
            inbuf: InBuf::default(),
            header: None,
            broken: None,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.inbuf.extend(data);
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> usize {
        self.inbuf.data().len()
    }

    /// Whether a header was returned whose body has not been consumed yet.
    pub fn body_pending(&self) -> bool {
        self.header.is_some()
    }

    /// The current request header: the one whose body is pending, else the next one decoded from
    /// the input (`Ok(None)` if incomplete). An `Err` (undecodable header) is final: Go closes the
    /// connection (`rpc: server cannot decode request: ...`).
    pub fn poll_request(&mut self) -> Result<Option<Request>, RpcError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        if let Some(h) = &self.header {
            return Ok(Some(h.clone()));
        }
        let data = self.inbuf.data();
        let decoded = value_extent(data, &self.limits).and_then(|n| match n {
            None => Ok(None),
            Some(n) => decode_exact::<Request>(&mut self.dec, &data[..n]).map(|h| Some((h, n))),
        });
        match decoded {
            Ok(None) => Ok(None),
            Ok(Some((h, n))) => {
                self.inbuf.consume(n);
                self.header = Some(h.clone());
                Ok(Some(h))
            }
            Err(source) => {
                let e = RpcError::Protocol {
                    context: "reading request header",
                    source,
                };
                self.broken = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Decodes the pending request's body as `T`. `Ok(None)`: more input needed. `Ok(Some(Err))`:
    /// the body did not decode (Go answers the call with the gob error text and keeps going); the
    /// body was consumed either way.
    pub fn poll_body<T>(&mut self) -> Result<Option<Result<T, skywire_gob::Error>>, RpcError>
    where
        T: for<'de> Deserialize<'de> + GobType,
    {
        self.poll_body_with(decode_exact::<T>)
    }

    /// Consumes the pending request's body without decoding it (unknown method). Type definitions
    /// in front of it are still recorded. A malformed body is ignored, as Go does.
    pub fn poll_skip_body(&mut self) -> Result<Option<()>, RpcError> {
        Ok(self.poll_body_with(skip_exact)?.map(|_| ()))
    }

    pub(crate) fn poll_body_with<T>(
        &mut self,
        f: impl FnOnce(&mut Decoder, &[u8]) -> skywire_gob::Result<T>,
    ) -> Result<Option<Result<T, skywire_gob::Error>>, RpcError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        if self.header.is_none() {
            return Err(RpcError::Protocol {
                context: "request body polled without a pending header",
                source: skywire_gob::Error::Custom("no pending request header".into()),
            });
        }
        let data = self.inbuf.data();
        let n = match value_extent(data, &self.limits) {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(None),
            Err(source) => {
                let e = RpcError::Protocol {
                    context: "reading request body",
                    source,
                };
                self.broken = Some(e.clone());
                return Err(e);
            }
        };
        let r = f(&mut self.dec, &data[..n]);
        self.inbuf.consume(n);
        self.header = None;
        Ok(Some(r))
    }

    /// Encodes a successful reply. `out` always ends up holding bytes to send: the reply, or, if
    /// the reply body cannot be encoded, an error response `rpc: gob error encoding body: ...`
    /// (Go closes the connection instead); the encoding error is returned in that case.
    pub fn encode_reply<R: GobType + ?Sized>(
        &mut self,
        service_method: &str,
        seq: u64,
        reply: &R,
        out: &mut Vec<u8>,
    ) -> Result<(), RpcError> {
        self.encode_reply_with(service_method, seq, |enc, out| enc.encode(reply, out), out)
    }

    pub(crate) fn encode_reply_with(
        &mut self,
        service_method: &str,
        seq: u64,
        body: impl FnOnce(&mut Encoder, &mut Vec<u8>) -> skywire_gob::Result<()>,
        out: &mut Vec<u8>,
    ) -> Result<(), RpcError> {
        let header = Response {
            service_method: service_method.to_owned(),
            seq,
            error: String::new(),
        };
        match encode_pair(&mut self.enc, &header, body, out) {
            Ok(()) => Ok(()),
            Err(PairError::Header(source)) => Err(RpcError::Encode {
                what: format!("response header of {service_method}"),
                source,
            }),
            Err(PairError::Body(source)) => {
                let text = format!("rpc: gob error encoding body: {source}");
                self.encode_error(service_method, seq, &text, out)?;
                Err(RpcError::Encode {
                    what: format!("reply of {service_method}"),
                    source,
                })
            }
        }
    }

    /// Encodes an error response: the header with `error` followed by an empty struct (Go's
    /// `invalidRequest`). An empty `error` would read as success, so it is sent as
    /// `rpc: empty error`.
    pub fn encode_error(
        &mut self,
        service_method: &str,
        seq: u64,
        error: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), RpcError> {
        let header = Response {
            service_method: service_method.to_owned(),
            seq,
            error: if error.is_empty() {
                "rpc: empty error".to_owned()
            } else {
                error.to_owned()
            },
        };
        encode_pair(&mut self.enc, &header, |enc, out| enc.encode(&(), out), out).map_err(|e| {
            let source = match e {
                PairError::Header(s) | PairError::Body(s) => s,
            };
            RpcError::Encode {
                what: format!("error response of {service_method}"),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::types::{Read, WinSize};

    #[test]
    fn client_server_round_trip_split_anywhere() {
        let mut cli = RpcClientCodec::new();
        let mut srv = RpcServerCodec::new();
        let mut wire = Vec::new();
        let s0 = cli.encode_method::<Read>(&4096, &mut wire).unwrap();
        let s1 = cli
            .encode_call::<_, ()>(
                "pty.SetPtySize",
                &WinSize::from_cols_rows(80, 24),
                &mut wire,
            )
            .unwrap();
        assert_eq!((s0, s1), (0, 1));
        // Byte-at-a-time delivery.
        let mut got = Vec::new();
        for b in &wire {
            srv.feed(std::slice::from_ref(b));
            while let Some(h) = srv.poll_request().unwrap() {
                let body = if h.service_method == "pty.Read" {
                    srv.poll_body::<i64>()
                        .unwrap()
                        .map(|r| format!("{:?}", r.unwrap()))
                } else {
                    srv.poll_body::<WinSize>()
                        .unwrap()
                        .map(|r| format!("{:?}", r.unwrap()))
                };
                match body {
                    Some(b) => got.push((h.seq, b)),
                    None => break,
                }
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (0, "4096".to_owned()));
        // Replies out of order.
        let mut back = Vec::new();
        srv.encode_error("pty.SetPtySize", 1, "no active pty session", &mut back)
            .unwrap();
        srv.encode_reply("pty.Read", 0, &b"hi".to_vec(), &mut back)
            .unwrap();
        cli.feed(&back);
        let c = cli.poll_completed().unwrap().unwrap();
        assert_eq!(c.seq, 1);
        assert_eq!(
            c.result.unwrap_err().remote_text(),
            Some("no active pty session")
        );
        let c = cli.poll_completed().unwrap().unwrap();
        assert_eq!(c.into_reply::<Vec<u8>>().unwrap(), b"hi");
        assert!(cli.poll_completed().unwrap().is_none());
        assert_eq!(cli.pending_len(), 0);
    }

    #[test]
    fn body_encode_failure_keeps_stream_consistent() {
        let limits = Limits {
            max_message_len: 64,
            ..Limits::default()
        };
        let mut cli = RpcClientCodec::with_options(None, limits);
        let mut srv = RpcServerCodec::new();
        let mut wire = Vec::new();
        let err = cli
            .encode_call::<_, i64>("pty.Write", &vec![0u8; 100], &mut wire)
            .unwrap_err();
        assert!(matches!(err, RpcError::Encode { .. }));
        assert_eq!(cli.pending_len(), 0);
        // The Request definition stays in `wire`; the next call reuses it.
        cli.encode_call::<_, i64>("pty.Write", &vec![1u8; 3], &mut wire)
            .unwrap();
        srv.feed(&wire);
        let h = srv.poll_request().unwrap().unwrap();
        assert_eq!((h.service_method.as_str(), h.seq), ("pty.Write", 1));
        assert_eq!(
            srv.poll_body::<Vec<u8>>().unwrap().unwrap().unwrap(),
            [1, 1, 1]
        );
    }

    #[test]
    fn reply_encode_failure_becomes_error_response() {
        let limits = Limits {
            max_message_len: 150,
            ..Limits::default()
        };
        let mut srv = RpcServerCodec::with_options(None, limits);
        let mut cli = RpcClientCodec::new();
        let seq = cli
            .encode_call::<_, Vec<u8>>("pty.Read", &10i64, &mut Vec::new())
            .unwrap();
        let mut out = Vec::new();
        assert!(
            srv.encode_reply("pty.Read", seq, &vec![0u8; 200], &mut out)
                .is_err()
        );
        cli.feed(&out);
        let c = cli.poll_completed().unwrap().unwrap();
        let e = c.result.unwrap_err();
        assert!(
            e.remote_text()
                .unwrap()
                .starts_with("rpc: gob error encoding body")
        );
    }
}
