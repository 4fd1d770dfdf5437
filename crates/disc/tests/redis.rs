//! Redis backend specifics: the keys, types, values and TTLs match the reference's
//! (`live_trace.json` → `redis_snapshot`), and two discovery instances sharing one Redis see
//! each other's entries and enforce each other's sequences. Needs `redis-server` (fails, does
//! not skip, when it is missing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::*;
use serde_json::Value;
use skywire_cipher::SecKey;
use skywire_dmsg::disc::Entry;

fn snapshot() -> serde_json::Map<String, Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec/vectors/live_trace.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["redis_snapshot"].as_object().unwrap().clone()
}

async fn key_type(con: &mut redis::aio::ConnectionManager, key: &str) -> String {
    redis::cmd("TYPE").arg(key).query_async(con).await.unwrap()
}

async fn ttl(con: &mut redis::aio::ConnectionManager, key: &str) -> i64 {
    redis::cmd("TTL").arg(key).query_async(con).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_types_values_and_ttls_match_reference() {
    let redis_server = RedisServer::start();
    let cfg = skywire_disc::DiscConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: skywire_disc::StoreConfig::Redis {
            url: redis_server.url(),
            password: None,
        },
        ..Default::default()
    };
    let h = skywire_disc::serve(cfg).await.unwrap();
    let http = Http::new(&h.url());
    let mut con = redis_server.connection().await;

    // Replay the reference's client entries: the stored values must be byte-identical.
    let snap = snapshot();
    let mut want_clients = BTreeSet::new();
    for (key, rec) in &snap {
        if rec["type"] == "string" {
            let text = rec["value"].as_str().unwrap();
            let e = Entry::from_json(text.as_bytes()).unwrap();
            if e.client.is_some() {
                let r = http.post("/dmsg-discovery/entry/", text).await;
                assert_eq!(r.status, 200, "{r:?}");
                want_clients.insert(key.clone());
                let stored: String = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut con)
                    .await
                    .unwrap();
                assert_eq!(stored, text);
                assert_eq!(key_type(&mut con, key).await, "string");
                assert_eq!(
                    ttl(&mut con, key).await,
                    rec["ttl_seconds"].as_i64().unwrap()
                );
            }
        }
    }
    assert_eq!(want_clients.len(), 3);

    // A server entry: string key with TTL <= 120 s, member of `servers`.
    let srv = SecKey::generate();
    let s = server_entry(&srv, 0, "203.0.113.7:8081", 2047);
    assert_eq!(
        http.post("/dmsg-discovery/entry/", &s.to_json())
            .await
            .status,
        200
    );
    let skey = srv.pub_key().to_hex();
    assert_eq!(key_type(&mut con, &skey).await, "string");
    let t = ttl(&mut con, &skey).await;
    assert!((100..=120).contains(&t), "server TTL {t}");
    let live_server_ttl = snap
        .values()
        .find(|r| r["type"] == "string" && r["value"].as_str().unwrap().contains("\"server\""))
        .unwrap()["ttl_seconds"]
        .as_i64()
        .unwrap();
    assert!((0..=120).contains(&live_server_ttl));
    let stored: String = redis::cmd("GET")
        .arg(&skey)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(stored, s.to_json());

    // ?timeout=true gives a client entry a 180 s TTL.
    let timed = SecKey::generate();
    let e = client_entry(&timed, 0, vec![]);
    assert_eq!(
        http.post("/dmsg-discovery/entry/?timeout=true", &e.to_json())
            .await
            .status,
        200
    );
    let t = ttl(&mut con, &timed.pub_key().to_hex()).await;
    assert!((160..=180).contains(&t), "timeout TTL {t}");
    want_clients.insert(timed.pub_key().to_hex());
    // Updating without the flag clears the TTL again (plain SET).
    let mut e2 = e.clone();
    e2.sequence = 1;
    e2.sign(&timed).unwrap();
    assert_eq!(
        http.post("/dmsg-discovery/entry/", &e2.to_json())
            .await
            .status,
        200
    );
    assert_eq!(ttl(&mut con, &timed.pub_key().to_hex()).await, -1);

    // The sets: type set, no TTL, the right members.
    for (set, want) in [
        ("servers", BTreeSet::from([skey.clone()])),
        ("clients", want_clients.clone()),
    ] {
        assert_eq!(key_type(&mut con, set).await, "set");
        assert_eq!(
            ttl(&mut con, set).await,
            snap[set]["ttl_seconds"].as_i64().unwrap()
        );
        let members: BTreeSet<String> = redis::cmd("SMEMBERS")
            .arg(set)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(members, want, "{set}");
    }
    // /entries is the `clients` set.
    let r = http.get("/dmsg-discovery/entries").await;
    let listed: BTreeSet<String> = serde_json::from_str(&r.body).unwrap();
    assert_eq!(listed, want_clients);

    // A discovery reading what the reference wrote: GET serves the stored JSON.
    let (key, rec) = snap
        .iter()
        .find(|(_, r)| r["type"] == "string" && r["value"].as_str().unwrap().contains("\"server\""))
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg(rec["value"].as_str().unwrap())
        .arg("EX")
        .arg(120)
        .query_async(&mut con)
        .await
        .unwrap();
    let r = http.get(&format!("/dmsg-discovery/entry/{key}")).await;
    assert_json(&r, 200, rec["value"].as_str().unwrap());
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_redis() {
    let b = Backend::new("redis");
    let a = b.serve(b.config()).await;
    let c = b.serve(b.config()).await;
    assert_ne!(a.local_addr(), c.local_addr());
    let (ha, hc) = (Http::new(&a.url()), Http::new(&c.url()));

    let sk = SecKey::generate();
    let e0 = client_entry(&sk, 0, vec![]);
    assert_json(
        &ha.post("/dmsg-discovery/entry/", &e0.to_json()).await,
        200,
        &msg("wrote a new entry", 200),
    );
    let path = format!("/dmsg-discovery/entry/{}", sk.pub_key());
    assert_json(&hc.get(&path).await, 200, &e0.to_json());

    // Update through the other instance, then the first one sees it and rejects the replay.
    let mut e1 = e0.clone();
    e1.sequence = 1;
    e1.sign(&sk).unwrap();
    assert_json(
        &hc.post("/dmsg-discovery/entry/", &e1.to_json()).await,
        200,
        &msg("wrote new entry iteration", 200),
    );
    assert_json(&ha.get(&path).await, 200, &e1.to_json());
    assert_json(
        &ha.post("/dmsg-discovery/entry/", &e0.to_json()).await,
        422,
        &validation("sequence field of new entry is not sequence of old entry + 1"),
    );

    // Servers registered at one instance are listed by the other.
    let srv = SecKey::generate();
    let s = server_entry(&srv, 0, "203.0.113.8:8081", 12);
    assert_eq!(
        ha.post("/dmsg-discovery/entry/", &s.to_json()).await.status,
        200
    );
    assert_json(
        &hc.get("/dmsg-discovery/available_servers").await,
        200,
        &format!("[{}]", s.to_json()),
    );
    // Delete at one, gone at both.
    assert_eq!(
        hc.delete("/dmsg-discovery/entry", &e1.to_json())
            .await
            .status,
        200
    );
    assert_eq!(ha.get(&path).await.status, 404);
    a.shutdown().await.unwrap();
    c.shutdown().await.unwrap();
}

#[tokio::test]
async fn unreachable_redis_fails_to_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = skywire_disc::DiscConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        store: skywire_disc::StoreConfig::Redis {
            url: format!("redis://127.0.0.1:{port}"),
            password: Some("secret".into()),
        },
        store_timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let err = skywire_disc::serve(cfg).await.unwrap_err();
    assert!(
        matches!(err, skywire_disc::DiscServiceError::Store(_)),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains("secret"));
}
