//! In-process dmsg network on 127.0.0.1: a real discovery (memory store), two relay servers
//! and three clients. Dial/accept both ways, many concurrent streams with checksummed data,
//! server sharing rules, failover when a server dies, and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sha2::{Digest, Sha256};
use skywire_cipher::{PubKey, SecKey};
use skywire_disc::{DiscConfig, DiscHandle, StoreConfig};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Addr, Client, ClientConfig, DmsgError, ErrorCode, ServerConfig, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const READY: Duration = Duration::from_secs(10);

struct Net {
    disc: DiscHandle,
    servers: Vec<ServerHandle>,
}

impl Net {
    async fn start(n_servers: usize) -> Net {
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
        let mut servers = Vec::new();
        for _ in 0..n_servers {
            servers.push(start_server(&disc).await);
        }
        let net = Net { disc, servers };
        // Both servers are listed before clients start looking.
        let dc = net.disc_client();
        for _ in 0..200 {
            if dc.available_servers().await.map(|l| l.len()).unwrap_or(0) >= n_servers {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        net
    }

    fn disc_client(&self) -> DiscClient {
        DiscClient::new(&self.disc.url()).unwrap()
    }

    fn client_config(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new(SecKey::generate(), self.disc_client());
        cfg.first_stream_delay = Duration::ZERO;
        cfg
    }

    /// A client whose sessions are pinned to the given servers.
    async fn client_on(&self, servers: &[PubKey], dial_on_demand: bool) -> Client {
        let mut cfg = self.client_config();
        cfg.servers = Some(servers.to_vec());
        cfg.min_sessions = servers.len();
        cfg.dial_on_demand = dial_on_demand;
        let c = Client::start(cfg);
        c.ready(READY).await.unwrap();
        c
    }
}

async fn start_server(disc: &DiscHandle) -> ServerHandle {
    let mut cfg = ServerConfig::new(SecKey::generate());
    cfg.local_addr = "127.0.0.1:0".parse().unwrap();
    cfg.discovery = Some(DiscClient::new(&disc.url()).unwrap());
    ServerHandle::start(cfg).await.unwrap()
}

/// Echo server on `port` of `client`: reads to EOF, writes everything back, then shuts down.
fn spawn_echo(client: &Client, port: u16) -> tokio::task::JoinHandle<()> {
    let mut l = client.listen(port).unwrap();
    tokio::spawn(async move {
        while let Some(mut s) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    })
}

fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `len` bytes through an echo and checks the SHA-256 of what comes back.
async fn echo_roundtrip(client: &Client, to: Addr, seed: u64, len: usize) -> Result<(), DmsgError> {
    let s = client.dial(to).await?;
    let data = pattern(seed, len);
    let want = Sha256::digest(&data);
    let (mut r, mut w) = tokio::io::split(s);
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::with_capacity(len);
    r.read_to_end(&mut got).await.unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), len);
    assert_eq!(Sha256::digest(&got), want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_and_accept_both_directions_through_two_servers() {
    let net = Net::start(2).await;
    let (sa, sb) = (net.servers[0].pk(), net.servers[1].pk());
    let c1 = net.client_on(&[sa], false).await;
    let c2 = net.client_on(&[sa, sb], false).await;
    let c3 = net.client_on(&[sb], false).await;
    let _e1 = spawn_echo(&c1, 80);
    let _e2 = spawn_echo(&c2, 80);
    let _e3 = spawn_echo(&c3, 22);

    // c1 <-> c2 share server A; c2 <-> c3 share B; both directions.
    echo_roundtrip(&c1, Addr::new(c2.pk(), 80), 1, 300_000)
        .await
        .unwrap();
    echo_roundtrip(&c2, Addr::new(c1.pk(), 80), 2, 300_000)
        .await
        .unwrap();
    echo_roundtrip(&c2, Addr::new(c3.pk(), 22), 3, 100_000)
        .await
        .unwrap();
    echo_roundtrip(&c3, Addr::new(c2.pk(), 80), 4, 100_000)
        .await
        .unwrap();

    // Addresses seen by both ends.
    let mut l = c1.listen(7000).unwrap();
    let dialer = c3.clone();
    let c1pk = c1.pk();
    // c3 and c1 share no server: with on-demand dialing disabled the error says so.
    let err = dialer.dial(Addr::new(c1pk, 7000)).await.unwrap_err();
    assert!(matches!(err, DmsgError::NoCommonServer { .. }), "{err}");
    assert!(err.to_string().contains("no common dmsg server"), "{err}");

    // A client allowed to dial on demand reaches c1 through c1's server.
    let c4 = net.client_on(&[sb], true).await;
    let dial = tokio::spawn({
        let c4 = c4.clone();
        async move { c4.dial(Addr::new(c1pk, 7000)).await }
    });
    let dialed = dial.await.unwrap().unwrap();
    let accepted = tokio::time::timeout(READY, l.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(accepted.remote_addr(), dialed.local_addr());
    assert_eq!(dialed.remote_addr(), Addr::new(c1pk, 7000));
    assert!(dialed.local_addr().port >= 49153);
    assert!(c4.servers().contains(&sa));

    // No listener: a quick, signed 306 instead of a 20 s silence.
    let err = c2.dial(Addr::new(c1pk, 9999)).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::NoListener), "{err}");
    // Unknown key.
    let err = c2
        .dial(Addr::new(SecKey::generate().pub_key(), 80))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::EntryNotFound), "{err}");
    // Port already taken.
    assert_eq!(
        c1.listen(7000).unwrap_err().error_code(),
        Some(ErrorCode::PortOccupied)
    );

    // 800 kB went each way through the relays (plus framing), counted while flowing.
    let relayed: u64 = net
        .servers
        .iter()
        .map(|s| {
            s.stats()
                .bytes_relayed
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert!(relayed >= 2 * 800_000, "relayed {relayed}");

    for c in [c1, c2, c3, c4] {
        c.close().await;
    }
    for s in net.servers {
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_streams_with_checksums() {
    let net = Net::start(2).await;
    let (sa, sb) = (net.servers[0].pk(), net.servers[1].pk());
    let server_side = net.client_on(&[sa, sb], false).await;
    let dialer = net.client_on(&[sa], false).await;
    let _echo = spawn_echo(&server_side, 80);
    let to = Addr::new(server_side.pk(), 80);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..1000u64 {
        let d = dialer.clone();
        set.spawn(async move { echo_roundtrip(&d, to, i, 4096 + (i as usize % 7) * 1000).await });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, 1000);
    dialer.close().await;
    server_side.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_server_moves_clients_to_the_other() {
    let mut net = Net::start(2).await;
    let listener_cfg = net.client_config();
    let listener = Client::start(listener_cfg);
    listener.ready(READY).await.unwrap();
    let dialer = Client::start(net.client_config());
    dialer.ready(READY).await.unwrap();
    let _echo = spawn_echo(&listener, 80);
    let to = Addr::new(listener.pk(), 80);
    echo_roundtrip(&dialer, to, 7, 50_000).await.unwrap();

    // Kill the server the listener is registered through, in the middle of a transfer.
    let victim = listener.servers()[0];
    let mut transfer = dialer.dial(to).await.unwrap();
    transfer.write_all(&pattern(9, 10_000)).await.unwrap();
    let idx = net.servers.iter().position(|s| s.pk() == victim).unwrap();
    let killed = net.servers.remove(idx);
    killed.kill();
    let survivor = net.servers[0].pk();

    // The interrupted stream fails instead of hanging (if it went through the victim).
    let mut sink = vec![0u8; 1 << 20];
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match transfer.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(read.is_ok(), "stream through a dead server must end");

    // Both re-register through the survivor and new dials work within 3 s.
    let deadline = Duration::from_secs(3);
    tokio::time::timeout(deadline, async {
        listener
            .wait_registered(deadline, |s| s == [survivor])
            .await
            .unwrap();
        dialer
            .wait_registered(deadline, |s| s.contains(&survivor))
            .await
            .unwrap();
        loop {
            if echo_roundtrip(&dialer, to, 11, 20_000).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("failover within 3 s");
    dialer.close().await;
    listener.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_without_affecting_others() {
    use skywire_dmsg::{SignedRequest, StreamRequest};
    let net = Net::start(1).await;
    let server = &net.servers[0];
    let s_pk = server.pk();
    let good_a = net.client_on(&[s_pk], false).await;
    let good_b = net.client_on(&[s_pk], false).await;
    let _echo = spawn_echo(&good_b, 80);
    let to = Addr::new(good_b.pk(), 80);

    // 1. Garbage instead of a handshake, and garbage after a valid handshake.
    let addr = server.local_addr();
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0xff; 300]).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "server must close a garbage connection"
    );

    let evil_sk = SecKey::generate();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut hs = skywire_noise::Handshake::xk_initiator(&evil_sk, s_pk).unwrap();
    skywire_noise::stream::drive_framed_handshake(&mut tcp, &mut hs)
        .await
        .unwrap();
    tcp.write_all(b"this is not a yamux frame at all, just noise")
        .await
        .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(10), async {
        let mut sink = [0u8; 64];
        loop {
            match tcp.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(n.is_ok(), "server must drop a session that sends garbage");

    // 2. Forged requests through a real session: a source key that did not sign, and a
    //    destination with no session. The server answers with signed rejections.
    let forger_sk = SecKey::generate();
    let mut cfg = net.client_config();
    cfg.sk = forger_sk.clone();
    cfg.servers = Some(vec![s_pk]);
    let forger = Client::start(cfg);
    forger.ready(READY).await.unwrap();
    let forged = SignedRequest::sign(
        StreamRequest {
            timestamp: 1,
            src_addr: Addr::new(good_a.pk(), 49999),
            dst_addr: to,
            noise_msg: vec![1, 2, 3],
        },
        &forger_sk,
    )
    .unwrap();
    let err = forger
        .send_request_for_tests(s_pk, forged)
        .await
        .unwrap_err();
    assert_eq!(
        err.error_code(),
        Some(ErrorCode::InvalidReqSignature),
        "{err}"
    );

    let nowhere = SignedRequest::sign(
        StreamRequest {
            timestamp: 1,
            src_addr: Addr::new(forger_sk.pub_key(), 49998),
            dst_addr: Addr::new(SecKey::generate().pub_key(), 80),
            noise_msg: vec![1, 2, 3],
        },
        &forger_sk,
    )
    .unwrap();
    let err = forger
        .send_request_for_tests(s_pk, nowhere)
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::NoSessionToDst), "{err}");
    assert!(matches!(err, DmsgError::ServerRejected { .. }), "{err}");

    // 3. A garbage KK message towards a real listener: the listener refuses, nothing else breaks.
    let bad_noise = SignedRequest::sign(
        StreamRequest {
            timestamp: 1,
            src_addr: Addr::new(forger_sk.pub_key(), 49997),
            dst_addr: to,
            noise_msg: vec![0x02; 49],
        },
        &forger_sk,
    )
    .unwrap();
    assert!(
        forger
            .send_request_for_tests(s_pk, bad_noise)
            .await
            .is_err()
    );

    // Others are unaffected.
    echo_roundtrip(&good_a, to, 5, 100_000).await.unwrap();
    for c in [good_a, good_b, forger] {
        c.close().await;
    }
}
