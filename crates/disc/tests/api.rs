//! HTTP API tests against a discovery on 127.0.0.1:0, run for each store backend (memory, redb
//! in a temp dir, a throwaway redis-server): every endpoint, the exact bodies, status codes and
//! messages of the reference (`live_trace.json`), validation order, expiry with short TTLs, and
//! the `DiscClient` flow (register, update, stale sequence, forged signature, delete).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::Value;
use skywire_cipher::{SecKey, sign_payload};
use skywire_dmsg::disc::{
    ApiError, DiscClient, Entry, Server, ValidationError, entries_to_json, now_unix_nanos,
};

fn vector(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test vectors missing at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn trace_body(request: &str, status: u16) -> Vec<String> {
    vector("live_trace.json")["discovery_http"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["request"] == request && x["status"] == status)
        .map(|x| x["body"].as_str().unwrap().to_owned())
        .collect()
}

macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod memory { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name("memory").await } )* }
        mod redb { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name("redb").await } )* }
        mod redis { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name("redis").await } )* }
    };
}

per_backend!(
    read_endpoints_and_errors,
    post_validation,
    sequence_rules,
    server_lists,
    delete_entry,
    deregister,
    expiry_with_short_ttl,
    disc_client_flow,
);

async fn read_endpoints_and_errors(kind: &str) {
    let b = Backend::new(kind);
    let h = b.serve(b.config()).await;
    let http = Http::new(&h.url());

    // /health: same shape as the reference's.
    let r = http.get("/health").await;
    assert_eq!(
        (r.status, r.content_type.as_deref()),
        (200, Some("application/json"))
    );
    let want_prefix = format!(
        r#"{{"build_info":{{"version":"{}","commit":"unknown","date":"unknown"}},"started_at":""#,
        env!("CARGO_PKG_VERSION")
    );
    assert!(r.body.starts_with(&want_prefix), "{}", r.body);
    assert!(r.body.ends_with("Z\"}"), "{}", r.body);
    let live = &trace_body("GET /health", 200)[0];
    assert!(live.starts_with(r#"{"build_info":{"version":"#));

    // Bad keys: 400 with the reference's exact body.
    for pk in [
        "zz",
        "020000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let r = http.get(&format!("/dmsg-discovery/entry/{pk}")).await;
        let want = &trace_body(&format!("GET /dmsg-discovery/entry/{pk}"), 400)[0];
        assert_json(&r, 400, want);
    }
    // Unknown key and the null key: 404.
    let unknown = SecKey::generate().pub_key();
    let r = http.get(&format!("/dmsg-discovery/entry/{unknown}")).await;
    assert_json(&r, 404, &msg("entry of public key is not found", 404));
    let r = http.get("/dmsg-discovery/entry/000").await;
    assert_json(&r, 404, &msg("entry of public key is not found", 404));

    // Empty lists.
    let none = msg("no delegated dmsg servers available for remote", 404);
    assert_json(
        &http.get("/dmsg-discovery/available_servers").await,
        404,
        &none,
    );
    assert_json(&http.get("/dmsg-discovery/all_servers").await, 404, &none);
    assert_json(&http.get("/dmsg-discovery/entries").await, 200, "[]");

    // Unknown path: Go's http.NotFound.
    let r = http.get("/nope").await;
    assert_eq!(
        (r.status, r.content_type.as_deref(), r.body.as_str()),
        (
            404,
            Some("text/plain; charset=utf-8"),
            "404 page not found\n"
        )
    );
    // Wrong method: 405 with an empty body (chi).
    let r = http
        .req(Method::PUT, "/dmsg-discovery/entries", &[], None)
        .await;
    assert_eq!((r.status, r.body.as_str()), (405, ""));
    h.shutdown().await.unwrap();
}

async fn post_validation(kind: &str) {
    let b = Backend::new(kind);
    let h = b.serve(b.config()).await;
    let http = Http::new(&h.url());
    let post = |body: String| {
        let http = &http;
        async move { http.post("/dmsg-discovery/entry/", &body).await }
    };
    let sk = SecKey::generate();

    // Undecodable body: 500 (live trace).
    let unexpected = &trace_body("POST /dmsg-discovery/entry/", 500)[0];
    assert_json(&post(String::new()).await, 500, unexpected);
    assert_json(&post("{\"sequence\":\"x\"}".into()).await, 500, unexpected);

    // Validation order and texts.
    let mut e = client_entry(&sk, 0, vec![]);
    e.signature = None;
    let no_sig = post(e.to_json()).await;
    assert_json(&no_sig, 422, &validation("entry has no signature"));
    assert!(trace_body("POST /dmsg-discovery/entry/", 422).contains(&no_sig.body));

    let mut e = client_entry(&sk, 0, vec![]);
    e.client = None;
    e.sign(&sk).unwrap();
    let neither = post(e.to_json()).await;
    assert_json(
        &neither,
        422,
        &validation("entry has neither client or server field"),
    );
    assert!(trace_body("POST /dmsg-discovery/entry/", 422).contains(&neither.body));

    let mut e = client_entry(&sk, 0, vec![]);
    e.version.clear();
    e.sign(&sk).unwrap();
    assert_json(
        &post(e.to_json()).await,
        422,
        &validation("entry has no version"),
    );

    let mut e = client_entry(&sk, 0, vec![]);
    e.static_pk = Default::default();
    assert_json(
        &post(e.to_json()).await,
        422,
        &validation("entry Keys is nil"),
    );

    // Server entries: loopback/host-less addresses first, then empty address, then time window.
    let localhost =
        validation("advertising localhost listening address is not allowed in production mode");
    for addr in ["127.0.0.1:8081", ":8081", "[::1]:8081"] {
        let e = server_entry(&sk, 0, addr, 10);
        assert_json(&post(e.to_json()).await, 422, &localhost);
    }
    let mut e = server_entry(&sk, 0, "", 10);
    e.signature = None; // the address check runs before the signature check
    assert_json(
        &post(e.to_json()).await,
        422,
        &validation("entry has no signature"),
    );
    let e = server_entry(&sk, 0, "", 10);
    assert_json(
        &post(e.to_json()).await,
        422,
        &validation("server address cannot be empty"),
    );
    let outdated = validation("advertised entry has outdated timestamp");
    for delta in [-61_000_000_000i64, 6_000_000_000] {
        let mut e = server_entry(&sk, 0, "203.0.113.7:8081", 10);
        e.timestamp = now_unix_nanos() + delta;
        e.sign(&sk).unwrap();
        assert_json(&post(e.to_json()).await, 422, &outdated);
    }
    // Client entries are exempt from the window (the vector's 2023 timestamp is fine).
    let v = vector("disc_entry.json");
    let vec_entry = v["entries"][0]["entry_json"].as_str().unwrap();
    let r = post(vec_entry.to_owned()).await;
    assert_json(&r, 200, &msg("wrote a new entry", 200));
    let pk = v["entries"][0]["signed_payload_json"].as_str().unwrap();
    let pk = Entry::from_json(pk.as_bytes()).unwrap().static_pk;
    // GET returns the stored, re-serialised entry byte for byte.
    assert_json(
        &http.get(&format!("/dmsg-discovery/entry/{pk}")).await,
        200,
        vec_entry,
    );

    // Forged signature: signed by another key → 401.
    let mut forged = client_entry(&sk, 5, vec![]);
    forged.sign(&SecKey::generate()).unwrap();
    assert_json(
        &post(forged.to_json()).await,
        401,
        &msg("invalid signature", 401),
    );
    // Garbage signature text is a 401 too (the reference parses it only when verifying).
    let garbage = client_entry(&sk, 5, vec![])
        .to_json()
        .replace("\"signature\":\"", "\"signature\":\"zz");
    assert_json(&post(garbage).await, 401, &msg("invalid signature", 401));
    // Unknown fields are dropped before verification: signed over an extra key → 401.
    let mut extra = client_entry(&sk, 5, vec![]);
    extra.signature = None;
    let payload = extra.signed_payload().replacen('{', "{\"extra\":1,", 1);
    let sig = sign_payload(&sk, payload.as_bytes()).unwrap();
    let doc = format!(
        "{},\"signature\":\"{sig}\"}}",
        payload.strip_suffix('}').unwrap()
    );
    assert_json(&post(doc).await, 401, &msg("invalid signature", 401));

    // Trailing bytes after the JSON value are ignored (Go's Decoder), reformatted input works,
    // and POST /entry/{pk} ignores the pk.
    let e = client_entry(&sk, 0, vec![]);
    let body = format!(
        "{}\n garbage",
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&e.to_json()).unwrap())
            .unwrap()
    );
    let r = http.post("/dmsg-discovery/entry/whatever", &body).await;
    assert_json(&r, 200, &msg("wrote a new entry", 200));
    assert_json(
        &http
            .get(&format!("/dmsg-discovery/entry/{}", sk.pub_key()))
            .await,
        200,
        &e.to_json(),
    );

    // test_mode accepts loopback server addresses.
    let mut cfg = b.config();
    cfg.test_mode = true;
    h.shutdown().await.unwrap();
    let h2 = b.serve(cfg).await;
    let http2 = Http::new(&h2.url());
    let srv = SecKey::generate();
    let e = server_entry(&srv, 0, "127.0.0.1:8081", 10);
    let r = http2.post("/dmsg-discovery/entry/", &e.to_json()).await;
    assert_json(&r, 200, &msg("wrote a new entry", 200));
    h2.shutdown().await.unwrap();
}

async fn sequence_rules(kind: &str) {
    let b = Backend::new(kind);
    let h = b.serve(b.config()).await;
    let http = Http::new(&h.url());
    let sk = SecKey::generate();
    let path = "/dmsg-discovery/entry/";
    let wrong_seq = validation("sequence field of new entry is not sequence of old entry + 1");

    // A first entry may carry any sequence.
    let first = client_entry(&sk, 7, vec![]);
    assert_json(
        &http.post(path, &first.to_json()).await,
        200,
        &msg("wrote a new entry", 200),
    );
    // Equal sequence (also a replay of the same document) → 422.
    assert_json(&http.post(path, &first.to_json()).await, 422, &wrong_seq);
    let mut lower = first.clone();
    lower.sequence = 6;
    lower.sign(&sk).unwrap();
    assert_json(&http.post(path, &lower.to_json()).await, 422, &wrong_seq);
    // Higher sequence but older timestamp → 422.
    let mut older = first.clone();
    older.sequence = 8;
    older.timestamp = first.timestamp - 1;
    older.sign(&sk).unwrap();
    assert_json(
        &http.post(path, &older.to_json()).await,
        422,
        &validation("advertised entry timestamp is not greater than previous"),
    );
    // Any increase with a timestamp not before the old one → 200 "iteration".
    let mut next = first.clone();
    next.sequence = 100;
    next.sign(&sk).unwrap();
    assert_json(
        &http.post(path, &next.to_json()).await,
        200,
        &msg("wrote new entry iteration", 200),
    );
    // Replaying the previous iteration is stale now.
    assert_json(&http.post(path, &first.to_json()).await, 422, &wrong_seq);
    assert_json(
        &http
            .get(&format!("/dmsg-discovery/entry/{}", sk.pub_key()))
            .await,
        200,
        &next.to_json(),
    );
    // The entry is listed under /entries.
    let r = http.get("/dmsg-discovery/entries").await;
    assert_json(&r, 200, &format!("[\"{}\"]", sk.pub_key()));
    h.shutdown().await.unwrap();
}

async fn server_lists(kind: &str) {
    let b = Backend::new(kind);
    let h = b.serve(b.config()).await;
    let http = Http::new(&h.url());
    let mut posted = Vec::new();
    for (i, sessions) in [5i64, 0, 2048, 17, -1].into_iter().enumerate() {
        let sk = SecKey::generate();
        let e = server_entry(&sk, 0, &format!("203.0.113.{}:8081", i + 1), sessions);
        let r = http.post("/dmsg-discovery/entry/", &e.to_json()).await;
        assert_json(&r, 200, &msg("wrote a new entry", 200));
        posted.push(e);
    }
    // A client entry is not a server.
    let c = client_entry(&SecKey::generate(), 0, vec![posted[0].static_pk]);
    http.post("/dmsg-discovery/entry/", &c.to_json()).await;

    let r = http.get("/dmsg-discovery/available_servers").await;
    let mut want: Vec<Entry> = posted
        .iter()
        .filter(|e| e.server.as_ref().unwrap().available_sessions > 0)
        .cloned()
        .collect();
    want.sort_by_key(|e| std::cmp::Reverse(e.server.as_ref().unwrap().available_sessions));
    assert_json(&r, 200, &entries_to_json(&want));

    let r = http.get("/dmsg-discovery/all_servers").await;
    assert_eq!(r.status, 200);
    let mut all: Vec<Entry> = serde_json::from_str(&r.body).unwrap();
    all.sort_by_key(|e| e.static_pk);
    let mut want_all = posted.clone();
    want_all.sort_by_key(|e| e.static_pk);
    assert_eq!(all, want_all);
    h.shutdown().await.unwrap();
}

async fn delete_entry(kind: &str) {
    let b = Backend::new(kind);
    let h = b.serve(b.config()).await;
    let http = Http::new(&h.url());
    let sk = SecKey::generate();
    let e = client_entry(&sk, 0, vec![]);
    http.post("/dmsg-discovery/entry/", &e.to_json()).await;

    // Forged → 401, unsigned → 422, garbage → 500; the entry survives.
    let mut forged = e.clone();
    forged.sign(&SecKey::generate()).unwrap();
    assert_json(
        &http
            .delete("/dmsg-discovery/entry", &forged.to_json())
            .await,
        401,
        &msg("invalid signature", 401),
    );
    let mut unsigned = e.clone();
    unsigned.signature = None;
    assert_json(
        &http
            .delete("/dmsg-discovery/entry", &unsigned.to_json())
            .await,
        422,
        &validation("entry has no signature"),
    );
    assert_json(
        &http.delete("/dmsg-discovery/entry", "nope").await,
        500,
        &msg("something unexpected happened", 500),
    );
    let get = format!("/dmsg-discovery/entry/{}", sk.pub_key());
    assert_eq!(http.get(&get).await.status, 200);

    let r = http.delete("/dmsg-discovery/entry", &e.to_json()).await;
    assert_json(&r, 200, &msg("deleted entry", 200));
    assert_eq!(http.get(&get).await.status, 404);
    assert_json(&http.get("/dmsg-discovery/entries").await, 200, "[]");
    // Deleting again is fine (absent is not an error).
    assert_eq!(
        http.delete("/dmsg-discovery/entry", &e.to_json())
            .await
            .status,
        200
    );

    // Server entries must still be fresh to be deleted.
    let srv = SecKey::generate();
    let mut s = server_entry(&srv, 0, "203.0.113.9:8081", 3);
    http.post("/dmsg-discovery/entry/", &s.to_json()).await;
    s.timestamp -= 61_000_000_000;
    s.sign(&srv).unwrap();
    assert_json(
        &http.delete("/dmsg-discovery/entry", &s.to_json()).await,
        422,
        &validation("advertised entry has outdated timestamp"),
    );
    // DELETE with a trailing slash is a different (unknown) route.
    assert_eq!(
        http.delete("/dmsg-discovery/entry/", &e.to_json())
            .await
            .status,
        405
    );
    h.shutdown().await.unwrap();
}

async fn deregister(kind: &str) {
    let b = Backend::new(kind);
    let nm = SecKey::generate();
    let mut cfg = b.config();
    cfg.whitelist_keys = vec![nm.pub_key()];
    let h = b.serve(cfg).await;
    let http = Http::new(&h.url());
    let path = "/dmsg-discovery/deregister";

    let a = SecKey::generate();
    let c = SecKey::generate();
    for sk in [&a, &c] {
        http.post(
            "/dmsg-discovery/entry/",
            &client_entry(sk, 0, vec![]).to_json(),
        )
        .await;
    }
    let nm_pk = nm.pub_key().to_hex();
    let good_sig = sign_payload(&nm, nm_pk.as_bytes()).unwrap().to_hex();
    let other = SecKey::generate();
    let other_pk = other.pub_key().to_hex();
    let other_sig = sign_payload(&other, other_pk.as_bytes()).unwrap().to_hex();
    let body = format!("[\"{}\"]", a.pub_key());

    let empty = |r: &Resp, status: u16| {
        assert_eq!(
            (r.status, r.content_type.as_deref(), r.body.as_str()),
            (status, None, "")
        );
    };
    // Live trace: no headers → 403 with an empty body and no content type.
    let r = http.req(Method::DELETE, path, &[], Some(&body)).await;
    empty(&r, 403);
    assert_eq!(trace_body("DELETE /dmsg-discovery/deregister", 403)[0], "");
    // Not whitelisted (even with a valid own signature) → 403.
    let r = http
        .req(
            Method::DELETE,
            path,
            &[("NM-PK", &other_pk), ("NM-Sign", &other_sig)],
            Some(&body),
        )
        .await;
    empty(&r, 403);
    // Whitelisted, signature of the wrong text → 403; malformed signature → 400.
    let wrong = sign_payload(&nm, b"other text").unwrap().to_hex();
    let r = http
        .req(
            Method::DELETE,
            path,
            &[("NM-PK", &nm_pk), ("NM-Sign", &wrong)],
            Some(&body),
        )
        .await;
    empty(&r, 403);
    let r = http
        .req(
            Method::DELETE,
            path,
            &[("NM-PK", &nm_pk), ("NM-Sign", "xyz")],
            Some(&body),
        )
        .await;
    empty(&r, 400);
    // Bad body → 400 empty; bad key in the list → 400 JSON.
    let hdrs = [("NM-PK", nm_pk.as_str()), ("NM-Sign", good_sig.as_str())];
    empty(&http.req(Method::DELETE, path, &hdrs, Some("{")).await, 400);
    let r = http
        .req(Method::DELETE, path, &hdrs, Some("[\"zz\"]"))
        .await;
    assert_json(&r, 400, &msg("error bad input", 400));
    // Success → 200 `null`, listed keys are gone, others stay.
    let r = http.req(Method::DELETE, path, &hdrs, Some(&body)).await;
    assert_json(&r, 200, "null");
    assert_eq!(
        http.get(&format!("/dmsg-discovery/entry/{}", a.pub_key()))
            .await
            .status,
        404
    );
    assert_eq!(
        http.get(&format!("/dmsg-discovery/entry/{}", c.pub_key()))
            .await
            .status,
        200
    );
    assert_json(
        &http.get("/dmsg-discovery/entries").await,
        200,
        &format!("[\"{}\"]", c.pub_key()),
    );
    h.shutdown().await.unwrap();
}

async fn expiry_with_short_ttl(kind: &str) {
    let b = Backend::new(kind);
    let mut cfg = b.config();
    cfg.server_entry_ttl = Duration::from_millis(300);
    cfg.client_entry_timeout = Duration::from_millis(300);
    cfg.sweep_interval = Duration::from_millis(50);
    let h = b.serve(cfg).await;
    let http = Http::new(&h.url());

    let srv = SecKey::generate();
    let s = server_entry(&srv, 0, "203.0.113.5:8081", 9);
    assert_eq!(
        http.post("/dmsg-discovery/entry/", &s.to_json())
            .await
            .status,
        200
    );
    let cl = SecKey::generate();
    let c = client_entry(&cl, 0, vec![]);
    let timed = SecKey::generate();
    let t = client_entry(&timed, 0, vec![]);
    assert_eq!(
        http.post("/dmsg-discovery/entry/", &c.to_json())
            .await
            .status,
        200
    );
    assert_eq!(
        http.post("/dmsg-discovery/entry/?timeout=true", &t.to_json())
            .await
            .status,
        200
    );

    let srv_path = format!("/dmsg-discovery/entry/{}", srv.pub_key());
    let timed_path = format!("/dmsg-discovery/entry/{}", timed.pub_key());
    let expired = eventually(Duration::from_secs(15), || async {
        http.get(&srv_path).await.status == 404
            && http.get(&timed_path).await.status == 404
            && http.get("/dmsg-discovery/all_servers").await.status == 404
            && http.get("/dmsg-discovery/available_servers").await.status == 404
    })
    .await;
    assert!(expired, "server and ?timeout=true entries did not expire");
    // The sweep removes the expired server from the `servers` set.
    let store = h.store().clone();
    let swept = eventually(Duration::from_secs(15), || {
        let store = store.clone();
        async move { store.count().await.unwrap().0 == 0 }
    })
    .await;
    assert!(swept, "expired server stayed in the servers set");
    // Plain client entries never expire; an expired server may register again with sequence 0.
    assert_eq!(
        http.get(&format!("/dmsg-discovery/entry/{}", cl.pub_key()))
            .await
            .status,
        200
    );
    let again = server_entry(&srv, 0, "203.0.113.5:8081", 9);
    assert_json(
        &http.post("/dmsg-discovery/entry/", &again.to_json()).await,
        200,
        &msg("wrote a new entry", 200),
    );
    h.shutdown().await.unwrap();
}

async fn disc_client_flow(kind: &str) {
    let b = Backend::new(kind);
    let h = b.serve(b.config()).await;
    let dc = DiscClient::new(&h.url()).unwrap();

    let health = dc.health().await.unwrap();
    assert_eq!(health.build_info.commit, "unknown");
    assert!(health.started_at.ends_with('Z'));

    let srv = SecKey::generate();
    let sk = SecKey::generate();
    let pk = sk.pub_key();
    assert!(dc.entry(&pk).await.unwrap_err().is_not_found());
    assert_eq!(
        dc.available_servers().await.unwrap_err().api_error(),
        Some(ApiError::NoAvailableServers)
    );

    // Register: sequence 0.
    let e0 = dc
        .register_or_update(&sk, |e| {
            e.client = Some(skywire_dmsg::disc::Client {
                delegated_servers: Some(vec![srv.pub_key()]),
            })
        })
        .await
        .unwrap();
    assert_eq!(e0.sequence, 0);
    assert_eq!(dc.entry(&pk).await.unwrap(), e0);
    // Update: sequence + 1, newer fields stripped.
    let e1 = dc
        .register_or_update(&sk, |e| {
            e.client = Some(skywire_dmsg::disc::Client {
                delegated_servers: Some(vec![]),
            })
        })
        .await
        .unwrap();
    assert_eq!(e1.sequence, 1);
    assert!(e1.timestamp >= e0.timestamp);
    assert_eq!(dc.entry(&pk).await.unwrap(), e1);
    assert_eq!(dc.all_entries().await.unwrap(), vec![pk.to_hex()]);

    // Stale sequence → 422 with the sequence message.
    let err = dc.post_entry(&e0).await.unwrap_err();
    assert_eq!(
        err.api_error(),
        Some(ApiError::Validation(ValidationError::WrongSequence))
    );
    assert!(matches!(
        err,
        skywire_dmsg::disc::DiscError::Api { status: 422, .. }
    ));
    // Forged signature → 401.
    let mut forged = e1.clone();
    forged.sequence = 2;
    forged.sign(&SecKey::generate()).unwrap();
    let err = dc.post_entry(&forged).await.unwrap_err();
    assert!(matches!(
        err,
        skywire_dmsg::disc::DiscError::Api {
            status: 401,
            source: ApiError::Unauthorized,
            ..
        }
    ));

    // A concurrent writer bumped the sequence: register_or_update recovers.
    let mut ahead = e1.clone();
    ahead.sequence = 50;
    ahead.sign(&sk).unwrap();
    dc.post_entry(&ahead).await.unwrap();
    let e2 = dc.register_or_update(&sk, |_| {}).await.unwrap();
    assert_eq!(e2.sequence, 51);

    // A server registering through the client shows up in the server lists.
    let s = dc
        .register_or_update(&srv, |e| {
            e.server = Some(Server::new("203.0.113.10:8081", 100));
        })
        .await
        .unwrap();
    assert_eq!(dc.available_servers().await.unwrap(), vec![s.clone()]);
    assert_eq!(dc.all_servers().await.unwrap(), vec![s]);

    // Delete.
    dc.delete_entry(&e2).await.unwrap();
    assert!(dc.entry(&pk).await.unwrap_err().is_not_found());

    // A server that is not there: a transport error with a timeout, not a hang.
    let dead = DiscClient::with_timeouts(
        "http://127.0.0.1:9",
        Duration::from_secs(2),
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(matches!(
        dead.entry(&pk).await,
        Err(skywire_dmsg::disc::DiscError::Request { .. })
    ));
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn newer_fields_are_accepted_and_kept() {
    let b = Backend::new("memory");
    let h = b.serve(b.config()).await;
    let http = Http::new(&h.url());
    let sk = SecKey::generate();
    let mut e = server_entry(&sk, 0, "203.0.113.1:8081", 3);
    e.client_type = "visor".into();
    e.protocol = "smux".into();
    if let Some(s) = &mut e.server {
        s.address_ws = "wss://example.invalid/dmsg".into();
        s.dht_bootstrap = true;
    }
    e.sign(&sk).unwrap();
    assert_eq!(
        http.post("/dmsg-discovery/entry/", &e.to_json())
            .await
            .status,
        200
    );
    let r = http
        .get(&format!("/dmsg-discovery/entry/{}", sk.pub_key()))
        .await;
    assert_json(&r, 200, &e.to_json());
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn handle_drop_stops_server() {
    let b = Backend::new("memory");
    let h = b.serve(b.config()).await;
    let addr = h.local_addr();
    drop(h);
    let stopped = eventually(Duration::from_secs(10), || async move {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(
        stopped,
        "listener still accepting after the handle was dropped"
    );
}
