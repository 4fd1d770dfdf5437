//! Transport manager end to end: real TCP on 127.0.0.1:0 for stcp, and a real in-process dmsg
//! network (discovery with a memory store, one relay server) for dmsg transports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use skywire_cipher::{PubKey, SecKey};
use skywire_disc::{DiscConfig, DiscHandle, StoreConfig};
use skywire_dmsg::disc::DiscClient;
use skywire_dmsg::{Client, ClientConfig, ServerConfig, ServerHandle};
use skywire_visor::transport::handshake::{Frame1, Frame3};
use skywire_visor::transport::{
    Packet, TransportConfig, TransportError, TransportManager, transport_id,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOUND: Duration = Duration::from_secs(30);
const ADD_TIMEOUT: Duration = Duration::from_secs(15);

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("bounded wait expired")
}

/// Polls `cond` every 10 ms until it holds (bounded).
async fn wait_until(mut cond: impl FnMut() -> bool) {
    bounded(async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

async fn stcp_manager(sk: &SecKey, table: &[(PubKey, String)]) -> Arc<TransportManager> {
    let mut cfg = TransportConfig::new(sk.clone());
    cfg.stcp_listen = Some("127.0.0.1:0".into());
    cfg.pk_table = table.iter().cloned().collect::<BTreeMap<_, _>>();
    TransportManager::start(cfg).await.unwrap()
}

fn addr_of(m: &TransportManager) -> String {
    m.stcp_local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stcp_add_list_remove_both_directions() {
    let (ska, skb) = (SecKey::generate(), SecKey::generate());
    let (pka, pkb) = (ska.pub_key(), skb.pub_key());
    // B first (A needs its address); then B learns A's.
    let b0 = stcp_manager(&skb, &[]).await;
    let a = stcp_manager(&ska, &[(pkb, addr_of(&b0))]).await;
    let b_addr = addr_of(&b0);
    b0.close().await;
    drop(b0);
    // B again on the same port, now with A in its table.
    let mut cfg = TransportConfig::new(skb.clone());
    cfg.stcp_listen = Some(b_addr);
    cfg.pk_table.insert(pka, addr_of(&a));
    let b = TransportManager::start(cfg).await.unwrap();
    assert_eq!(a.types(), vec!["stcp".to_string()]);

    let want_id = transport_id(&pka, &pkb, "stcp");
    assert_eq!(want_id, transport_id(&pkb, &pka, "stcp"));

    // A -> B.
    let s = bounded(a.add(pkb, "stcp", ADD_TIMEOUT)).await.unwrap();
    assert_eq!(s.id, want_id);
    assert_eq!((s.local_pk, s.remote_pk), (pka, pkb));
    assert_eq!(s.tp_type, "stcp");
    assert_eq!(s.label, "user");
    assert!(s.is_up && s.initiator);
    wait_until(|| b.list().len() == 1).await;
    let lb = b.list();
    assert_eq!(lb[0].id, want_id);
    assert_eq!((lb[0].local_pk, lb[0].remote_pk), (pkb, pka));
    assert!(!lb[0].initiator);
    assert_eq!(a.list().len(), 1);
    // Adding again returns the same transport, no second one on either side.
    let again = bounded(a.add(pkb, "stcp", ADD_TIMEOUT)).await.unwrap();
    assert_eq!(again.id, want_id);
    assert_eq!((a.list().len(), b.list().len()), (1, 1));

    // Packets flow and are counted (payload bytes) on both sides.
    a.write_packet(want_id, &Packet::data(7, b"hello transport".to_vec()))
        .await
        .unwrap();
    wait_until(|| b.list().first().is_some_and(|t| t.log.recv_bytes == 15)).await;
    wait_until(|| a.list().first().is_some_and(|t| t.log.sent_bytes == 15)).await;
    // The JSON has the reference's summary keys.
    let json = serde_json::to_value(&a.list()[0]).unwrap();
    for k in [
        "id",
        "local_pk",
        "remote_pk",
        "type",
        "log",
        "is_setup",
        "label",
    ] {
        assert!(json.get(k).is_some(), "missing {k} in {json}");
    }
    assert_eq!(json["log"]["sent"], 15);
    assert_eq!(json["id"], want_id.to_string());

    // Remove on B: gone on both sides.
    bounded(b.remove(want_id)).await.unwrap();
    assert!(b.list().is_empty());
    wait_until(|| a.list().is_empty()).await;
    assert!(matches!(
        b.remove(want_id).await,
        Err(TransportError::NotFound(_))
    ));

    // B -> A, removed on A.
    let s = bounded(b.add(pka, "stcp", ADD_TIMEOUT)).await.unwrap();
    assert_eq!(s.id, want_id);
    wait_until(|| a.list().len() == 1).await;
    assert_eq!(a.list()[0].id, want_id);
    bounded(a.remove(want_id)).await.unwrap();
    wait_until(|| b.list().is_empty()).await;

    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stcp_refusals() {
    let (ska, skb, skc) = (SecKey::generate(), SecKey::generate(), SecKey::generate());
    let (pkb, pkc) = (skb.pub_key(), skc.pub_key());
    let c = stcp_manager(&skc, &[]).await;
    // A's table points B's key at C's listener.
    let a = stcp_manager(&ska, &[(pkb, addr_of(&c))]).await;

    // Unknown key: clear error, nothing dialled.
    let e = bounded(a.add(pkc, "stcp", ADD_TIMEOUT)).await.unwrap_err();
    assert!(
        matches!(e, TransportError::NotInPkTable(pk) if pk == pkc),
        "{e}"
    );
    assert!(e.to_string().contains("pk_table"));
    // Unknown type (no dmsg client here).
    let e = bounded(a.add(pkb, "dmsg", ADD_TIMEOUT)).await.unwrap_err();
    assert!(matches!(e, TransportError::UnknownType(_)), "{e}");
    let e = bounded(a.add(pkb, "sudph", ADD_TIMEOUT)).await.unwrap_err();
    assert!(matches!(e, TransportError::UnknownType(_)), "{e}");

    // Wrong key on the other end: handshake error, no transport anywhere.
    let e = bounded(a.add(pkb, "stcp", ADD_TIMEOUT)).await.unwrap_err();
    assert!(
        matches!(e, TransportError::Handshake(_) | TransportError::Noise(_)),
        "{e:?}"
    );
    assert!(a.list().is_empty());
    assert!(c.list().is_empty());

    // A peer sending garbage instead of Frame2 is rejected (Frame3 not OK), nothing breaks.
    let mut raw = tokio::net::TcpStream::connect(addr_of(&c)).await.unwrap();
    raw.write_all(b"get_nonce").await.unwrap();
    let mut line = Vec::new();
    bounded(async {
        loop {
            let b = raw.read_u8().await.unwrap();
            line.push(b);
            if b == b'\n' {
                break;
            }
        }
    })
    .await;
    Frame1::decode(&line).unwrap();
    raw.write_all(b"{\"SrcAddr\": garbage!!\n").await.unwrap();
    let mut rest = Vec::new();
    bounded(raw.read_to_end(&mut rest)).await.unwrap();
    let f3 = Frame3::decode(&rest).unwrap();
    assert!(!f3.ok && !f3.err_msg.is_empty(), "{f3:?}");
    // Garbage instead of Frame0: the connection is just closed.
    let mut raw = tokio::net::TcpStream::connect(addr_of(&c)).await.unwrap();
    raw.write_all(&[0xff; 64]).await.unwrap();
    let mut rest = Vec::new();
    let _ = bounded(raw.read_to_end(&mut rest)).await;
    assert!(rest.is_empty());
    assert!(c.list().is_empty());

    // C still serves real transports afterwards.
    let d_sk = SecKey::generate();
    let d = stcp_manager(&d_sk, &[(skc.pub_key(), addr_of(&c))]).await;
    let s = bounded(d.add(skc.pub_key(), "stcp", ADD_TIMEOUT))
        .await
        .unwrap();
    wait_until(|| c.list().iter().any(|t| t.id == s.id)).await;

    // A key that is in nobody's table can still be accepted (as the reference does):
    // C has an empty table and accepted D above.
    assert!(c.list()[0].remote_pk == d_sk.pub_key());

    for m in [a, c, d] {
        m.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stcp_persistent_comes_back_after_peer_restart() {
    let (ska, skb) = (SecKey::generate(), SecKey::generate());
    let (pka, pkb) = (ska.pub_key(), skb.pub_key());
    let b = stcp_manager(&skb, &[]).await;
    let b_addr = addr_of(&b);
    let mut cfg = TransportConfig::new(ska.clone());
    cfg.pk_table.insert(pkb, b_addr.clone());
    cfg.persistent = vec![(pkb, "stcp".into())];
    let a = TransportManager::start(cfg).await.unwrap();
    let id = transport_id(&pka, &pkb, "stcp");
    wait_until(|| a.list().len() == 1 && b.list().len() == 1).await;
    assert_eq!(a.list()[0].id, id);

    // B goes away: A's transport goes down.
    b.close().await;
    drop(b);
    wait_until(|| a.list().is_empty()).await;
    // B restarts on the same address: A re-dials it.
    let mut cfg = TransportConfig::new(skb.clone());
    cfg.stcp_listen = Some(b_addr);
    let b = TransportManager::start(cfg).await.unwrap();
    wait_until(|| a.list().len() == 1 && b.list().len() == 1).await;
    assert_eq!(b.list()[0].id, id);
    assert_eq!(b.list()[0].remote_pk, pka);

    // Removed by hand, a persistent transport is dialled again.
    bounded(b.remove(id)).await.unwrap();
    wait_until(|| a.list().len() == 1 && b.list().len() == 1).await;

    a.close().await;
    b.close().await;
}

struct Net {
    disc: DiscHandle,
    _server: ServerHandle,
}

impl Net {
    async fn start() -> Net {
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
        let dc = DiscClient::new(&disc.url()).unwrap();
        bounded(async {
            while dc.available_servers().await.map(|l| l.len()).unwrap_or(0) < 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        Net {
            disc,
            _server: server,
        }
    }

    async fn client(&self, sk: &SecKey) -> Client {
        let mut cfg = ClientConfig::new(sk.clone(), DiscClient::new(&self.disc.url()).unwrap());
        cfg.first_stream_delay = Duration::ZERO;
        let c = Client::start(cfg);
        c.ready(Duration::from_secs(10)).await.unwrap();
        c
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dmsg_add_list_remove() {
    let net = Net::start().await;
    let (ska, skb) = (SecKey::generate(), SecKey::generate());
    let (pka, pkb) = (ska.pub_key(), skb.pub_key());
    let (da, db) = (net.client(&ska).await, net.client(&skb).await);
    let mut cfg = TransportConfig::new(ska.clone());
    cfg.dmsg = Some(da.clone());
    let a = TransportManager::start(cfg).await.unwrap();
    let mut cfg = TransportConfig::new(skb.clone());
    cfg.dmsg = Some(db.clone());
    let b = TransportManager::start(cfg).await.unwrap();
    assert_eq!(a.types(), vec!["stcp".to_string(), "dmsg".to_string()]);
    assert!(a.stcp_local_addr().is_none());

    let id = transport_id(&pka, &pkb, "dmsg");
    let s = bounded(a.add(pkb, "dmsg", ADD_TIMEOUT)).await.unwrap();
    assert_eq!(s.id, id);
    assert_eq!(s.tp_type, "dmsg");
    assert_eq!(s.remote_addr, format!("{pkb}:45"));
    wait_until(|| b.list().len() == 1).await;
    assert_eq!(b.list()[0].id, id);
    assert_eq!(b.list()[0].remote_pk, pka);

    b.write_packet(id, &Packet::data(1, vec![9; 3000]))
        .await
        .unwrap();
    wait_until(|| a.list().first().is_some_and(|t| t.log.recv_bytes == 3000)).await;

    bounded(a.remove(id)).await.unwrap();
    assert!(a.list().is_empty());
    wait_until(|| b.list().is_empty()).await;

    // And back from B.
    let s = bounded(b.add(pka, "dmsg", ADD_TIMEOUT)).await.unwrap();
    assert_eq!(s.id, id);
    wait_until(|| a.list().len() == 1).await;
    bounded(b.remove(id)).await.unwrap();
    wait_until(|| a.list().is_empty()).await;

    a.close().await;
    b.close().await;
    da.close().await;
    db.close().await;
}
