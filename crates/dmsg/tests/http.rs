//! dmsghttp over an in-process network (discovery + one relay server + two clients on
//! 127.0.0.1): an axum router served with `http::serve`, fetched with `http::get`/`request`:
//! small pages, Host header, POST bodies, status codes, several requests at once, and a 10 MiB
//! streamed body checked by SHA-256.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use sha2::{Digest, Sha256};
use skywire_cipher::SecKey;
use skywire_disc::{DiscConfig, DiscHandle, StoreConfig};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::http::{self as dmsghttp, DmsgUrl, HttpError};
use skywire_dmsg::{Client, ClientConfig, ServerConfig, ServerHandle};

const READY: Duration = Duration::from_secs(20);
const BIG: usize = 10 * 1024 * 1024;

struct Net {
    _disc: DiscHandle,
    _server: ServerHandle,
    a: Client,
    b: Client,
}

async fn start() -> Net {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let disc = skywire_disc::serve(DiscConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: StoreConfig::Memory,
        test_mode: true,
        ..DiscConfig::default()
    })
    .await
    .unwrap();
    let mut cfg = ServerConfig::new(SecKey::generate());
    cfg.local_addr = "127.0.0.1:0".parse().unwrap();
    cfg.discovery = Some(DiscClient::new(&disc.url()).unwrap());
    let server = ServerHandle::start(cfg).await.unwrap();
    let client = || {
        let mut cfg = ClientConfig::new(SecKey::generate(), DiscClient::new(&disc.url()).unwrap());
        cfg.servers = Some(vec![server.pk()]);
        cfg.first_stream_delay = Duration::ZERO;
        Client::start(cfg)
    };
    let (a, b) = (client(), client());
    a.ready(READY).await.unwrap();
    b.ready(READY).await.unwrap();
    Net {
        _disc: disc,
        _server: server,
        a,
        b,
    }
}

fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn router(big: Bytes) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { "hello over dmsg" }))
        .route(
            "/host",
            get(|headers: HeaderMap| async move {
                headers
                    .get("host")
                    .map(|h| h.to_str().unwrap().to_owned())
                    .unwrap_or_default()
            }),
        )
        .route(
            "/echo",
            post(|body: Bytes| async move {
                format!("{} bytes: ", body.len()) + &String::from_utf8_lossy(&body)
            }),
        )
        .route(
            "/big",
            get(move || {
                let big = big.clone();
                async move {
                    // Streamed in 64 KiB chunks rather than one buffer.
                    let chunks: Vec<Result<Bytes, std::io::Error>> = big
                        .chunks(64 * 1024)
                        .map(|c| Ok(Bytes::copy_from_slice(c)))
                        .collect();
                    Body::from_stream(futures::stream::iter(chunks))
                }
            }),
        )
}

async fn text(resp: http::Response<hyper::body::Incoming>) -> String {
    String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_get_over_dmsg() {
    let net = start().await;
    let big = Bytes::from(pattern(BIG));
    let want = Sha256::digest(&big);
    let listener = net.b.listen(80).unwrap();
    let serving = tokio::spawn(dmsghttp::serve(listener, router(big)));
    let web = net.b.listen(8080).unwrap();
    tokio::spawn(dmsghttp::serve(web, router(Bytes::new())));
    let pk = net.b.pk();

    let resp = dmsghttp::get(&net.a, &format!("dmsg://{pk}/"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(text(resp).await, "hello over dmsg");

    // Host is the key on port 80, key:port elsewhere.
    let resp = dmsghttp::get(&net.a, &format!("dmsg://{pk}/host"))
        .await
        .unwrap();
    assert_eq!(text(resp).await, pk.to_hex());
    let resp = dmsghttp::get(&net.a, &format!("dmsg://{pk}:8080/host"))
        .await
        .unwrap();
    assert_eq!(text(resp).await, format!("{pk}:8080"));

    let resp = dmsghttp::get(&net.a, &format!("dmsg://{pk}/missing"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let req = http::Request::post(format!("dmsg://{pk}/echo"))
        .body(Full::new(Bytes::from_static(b"ping")))
        .unwrap();
    let resp = dmsghttp::request(&net.a, req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(text(resp).await, "4 bytes: ping");

    // 10 MiB streamed, checked by digest without buffering it all.
    let resp = dmsghttp::get(&net.a, &format!("dmsg://{pk}/big"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let mut hasher = Sha256::new();
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            n += data.len();
            hasher.update(&data);
        }
    }
    assert_eq!(n, BIG);
    assert_eq!(hasher.finalize(), want);

    // Several requests at once, each on its own stream.
    let gets: Vec<_> = (0..8)
        .map(|_| {
            let a = net.a.clone();
            tokio::spawn(async move {
                let resp = dmsghttp::get(&a, &format!("dmsg://{pk}/")).await.unwrap();
                text(resp).await
            })
        })
        .collect();
    for g in gets {
        assert_eq!(g.await.unwrap(), "hello over dmsg");
    }

    // Nobody listens on port 81; unknown keys are not in discovery.
    let err = dmsghttp::get(&net.a, &format!("dmsg://{pk}:81/"))
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Dial { .. }), "{err:?}");
    let stranger = SecKey::generate().pub_key();
    let err = dmsghttp::get(&net.a, &format!("dmsg://{stranger}/"))
        .await
        .unwrap_err();
    assert!(matches!(err, HttpError::Dial { .. }), "{err:?}");
    assert!(matches!(
        dmsghttp::get(&net.a, "dmsg://nope/").await,
        Err(HttpError::Url { .. })
    ));

    // `serve` returns once its client is closed.
    net.b.close().await;
    tokio::time::timeout(READY, serving).await.unwrap().unwrap();
    net.a.close().await;
}

#[test]
fn url_round_trip() {
    let pk = SecKey::generate().pub_key();
    let u: DmsgUrl = format!("dmsg://{pk}:8000/x/y?z=1").parse().unwrap();
    assert_eq!(u.addr.pk, pk);
    assert_eq!(u.addr.port, 8000);
    assert_eq!(u.file_name(), Some("y"));
}
