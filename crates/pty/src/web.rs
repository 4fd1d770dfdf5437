//! The browser side of a pty session, shared by `skywire app pty http` and the hypervisor web UI:
//! the vendored xterm.js 6 files (MIT, `assets/xterm/LICENSE`) and the WebSocket ⇄ [`PtyClient`]
//! bridge.
//!
//! Bridge protocol (pty.md 8): pty output → **binary** frames; text or binary frames →
//! `pty.Write`, except a text frame `{"type":"resize","cols":C,"rows":R}` (1..65535) →
//! `pty.SetPtySize`. A WebSocket ping is sent every 10 s. When the session ends on the host the
//! caller's closing text is sent and the socket closed; when the browser goes away the session is
//! stopped.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;

use crate::client::{PtyClient, is_read_end};
use crate::types::{self, WinSize};

/// `xterm.js`.
pub const XTERM_JS: &str = include_str!("../assets/xterm/xterm.js");
/// `xterm.css`.
pub const XTERM_CSS: &str = include_str!("../assets/xterm/xterm.css");
/// `addon-fit.js`.
pub const FIT_JS: &str = include_str!("../assets/xterm/addon-fit.js");
/// xterm.js licence text.
pub const LICENSE: &str = include_str!("../assets/xterm/LICENSE");

/// WebSocket ping interval.
const PING_EVERY: Duration = Duration::from_secs(10);

/// A vendored file by name (`xterm.js`, `addon-fit.js`, `xterm.css`, `LICENSE`): content type
/// and body.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "xterm.js" => ("text/javascript; charset=utf-8", XTERM_JS),
        "addon-fit.js" => ("text/javascript; charset=utf-8", FIT_JS),
        "xterm.css" => ("text/css; charset=utf-8", XTERM_CSS),
        "LICENSE" => ("text/plain; charset=utf-8", LICENSE),
        _ => return None,
    })
}

/// `{"type":"resize","cols":C,"rows":R}`.
#[derive(Debug, Deserialize)]
struct Resize {
    #[serde(rename = "type")]
    kind: String,
    cols: u32,
    rows: u32,
}

/// A resize request in a text frame: `Some(Some(size))` valid, `Some(None)` a resize message
/// out of range (dropped), `None` not a resize message (input).
pub fn parse_resize(text: &str) -> Option<Option<WinSize>> {
    if !text.starts_with('{') {
        return None;
    }
    let r: Resize = serde_json::from_str(text).ok()?;
    if r.kind != "resize" {
        return None;
    }
    let ok = |v: u32| u16::try_from(v).ok().filter(|v| *v >= 1);
    Some(match (ok(r.cols), ok(r.rows)) {
        (Some(cols), Some(rows)) => Some(WinSize {
            x: cols,
            y: rows,
            rows,
            cols,
        }),
        _ => None,
    })
}

/// Sends `text` as a binary frame and closes (a session that could not start).
pub async fn fail(mut socket: WebSocket, text: &str) {
    let _ = socket
        .send(Message::Binary(text.as_bytes().to_vec().into()))
        .await;
    let _ = socket.close().await;
}

/// Bridges a started session until either side ends (module doc); `end_text` is sent when the
/// session ends on the host.
pub async fn bridge(socket: WebSocket, client: PtyClient, end_text: &str) {
    let client = Arc::new(client);
    let (mut tx, mut rx) = socket.split();

    // Input: pty.Write / pty.SetPtySize in order, without holding up the WebSocket reader.
    enum Input {
        Data(Vec<u8>),
        Size(WinSize),
    }
    let (in_tx, mut in_rx) = tokio::sync::mpsc::channel::<Input>(64);
    let writer = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            while let Some(i) = in_rx.recv().await {
                let r = match i {
                    Input::Data(d) => client.write(&d).await.map(drop),
                    Input::Size(s) => client.set_size(s).await,
                };
                if let Err(e) = r
                    && e.is_connection_error()
                {
                    break;
                }
            }
        })
    };

    // Output: pty.Read → the channel (None: the session ended on the host).
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Option<Vec<u8>>>(4);
    let reader = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            loop {
                match client.read(types::READ_MAX).await {
                    Ok(b) => {
                        if out_tx.send(Some(b)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        if !is_read_end(&e) {
                            tracing::debug!("pty.Read: {e}");
                        }
                        let _ = out_tx.send(None).await;
                        return;
                    }
                }
            }
        })
    };

    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    // Whether the session ended on the host (else the browser went away).
    let host_ended = loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(Some(b)) => {
                    if tx.send(Message::Binary(b.into())).await.is_err() {
                        break false;
                    }
                }
                Some(None) | None => break true,
            },
            m = rx.next() => {
                let input = match m {
                    Some(Ok(Message::Text(t))) => match parse_resize(t.as_str()) {
                        Some(Some(size)) => Input::Size(size),
                        Some(None) => continue,
                        None => Input::Data(t.as_str().as_bytes().to_vec()),
                    },
                    Some(Ok(Message::Binary(b))) => Input::Data(b.to_vec()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break false,
                };
                if in_tx.send(input).await.is_err() {
                    break false;
                }
            }
            _ = ping.tick() => {
                if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break false;
                }
            }
        }
    };
    reader.abort();
    writer.abort();
    if host_ended {
        let _ = tx
            .send(Message::Binary(end_text.as_bytes().to_vec().into()))
            .await;
        let _ = tx.close().await;
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(2), client.stop()).await;
    }
    client.close();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn resize_messages() {
        let s = parse_resize(r#"{"type":"resize","cols":80,"rows":24}"#)
            .unwrap()
            .unwrap();
        assert_eq!((s.cols, s.rows, s.x, s.y), (80, 24, 80, 24));
        assert!(
            parse_resize(r#"{"type":"resize","cols":0,"rows":24}"#)
                .unwrap()
                .is_none()
        );
        assert!(
            parse_resize(r#"{"type":"resize","cols":70000,"rows":24}"#)
                .unwrap()
                .is_none()
        );
        assert!(parse_resize(r#"{"type":"other","cols":1,"rows":1}"#).is_none());
        assert!(parse_resize("ls\r").is_none());
        assert!(asset("xterm.js").unwrap().1.contains("Terminal"));
        assert!(asset("nope").is_none());
    }
}
