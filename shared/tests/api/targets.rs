//! The private-address defence: refused at save time for literal addresses in every
//! spelling and for names that resolve to internal addresses, and again at connect time on
//! the address actually connected to (DNS answers injected through a stub resolver).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::Method;
use krafter_shared::ports::Resolver;
use krafter_shared::targets::{PRIVATE_TARGET, TargetPolicy};
use serde_json::{Value, json};

use crate::helpers::{Receiver, TestApp, idle_job};

/// DNS answers by name; each lookup takes the next answer, the last one repeats.
#[derive(Default)]
struct StubDns {
    answers: Mutex<HashMap<String, VecDeque<Vec<IpAddr>>>>,
    lookups: Mutex<Vec<String>>,
}

impl StubDns {
    fn answer(&self, name: &str, answers: &[&[&str]]) {
        let answers = answers
            .iter()
            .map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect())
            .collect();
        self.answers
            .lock()
            .unwrap()
            .insert(name.to_owned(), answers);
    }

    fn lookups_of(&self, name: &str) -> usize {
        self.lookups
            .lock()
            .unwrap()
            .iter()
            .filter(|n| *n == name)
            .count()
    }
}

#[async_trait]
impl Resolver for StubDns {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<SocketAddr>> {
        self.lookups.lock().unwrap().push(host.to_owned());
        let mut answers = self.answers.lock().unwrap();
        let queue = answers
            .get_mut(host)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such name"))?;
        let ips = if queue.len() > 1 {
            queue.pop_front().unwrap()
        } else {
            queue.front().cloned().unwrap_or_default()
        };
        Ok(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect())
    }
}

async fn app_with(policy: TargetPolicy, dns: &Arc<StubDns>) -> TestApp {
    let resolver: Arc<dyn Resolver> = dns.clone();
    TestApp::spawn_with(|c| {
        c.settings.target_policy = policy;
        c.resolver = resolver;
    })
    .await
}

fn assert_refused(r: &crate::helpers::Reply, url: &str) {
    assert_eq!(r.status, 422, "{url}: {}", r.body);
    assert_eq!(
        r.body["details"]["url"],
        json!([PRIVATE_TARGET]),
        "{url}: {}",
        r.body
    );
}

/// Loopback, private, link-local (incl. the metadata addresses), unique-local,
/// unspecified, multicast, broadcast, CGNAT, and the IPv6 forms that embed those, in the
/// spellings a URL parser accepts: decimal, octal, hex, short forms, percent-encoding,
/// full-width digits, a trailing dot.
const PRIVATE_LITERALS: &[&str] = &[
    "http://127.0.0.1/hook",
    "http://127.0.0.1:8080/hook",
    "https://127.255.255.254/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.0x0.0x0.0x1/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://127.0.1/",
    "http://0/",
    "http://0.0.0.0/",
    "http://%31%32%37.0.0.1/",
    "http://\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}/",
    "http://127.0.0.1./",
    "http://10.0.0.1/",
    "http://0xa.1.2.3/",
    "http://012.1.2.3/",
    "http://167772161/",
    "http://172.16.0.1/",
    "http://172.31.255.255/",
    "http://192.168.0.1/",
    "http://3232235521/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0xa9fea9fe/",
    "http://2852039166/",
    "http://0251.0376.0251.0376/",
    "http://169.254.0.1/",
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://224.0.0.1/",
    "http://239.255.255.250/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/",
    "http://[::]/",
    "http://[fd00:ec2::254]/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:10.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::127.0.0.1]/",
    "http://[::10.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::192.168.1.1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://localhost/",
    "http://LOCALHOST:9000/",
    "http://localhost./",
    "http://api.localhost/",
];

#[tokio::test]
async fn private_addresses_are_refused_in_every_spelling_and_nothing_is_stored() {
    let dns = Arc::new(StubDns::default());
    let app = app_with(TargetPolicy::DenyPrivate, &dns).await;
    for url in PRIVATE_LITERALS {
        let r = app.post("/jobs", &idle_job(url)).await;
        assert_refused(&r, url);
    }
    assert_eq!(app.get("/jobs").await.body["data"], json!([]));
    assert_eq!(
        dns.lookups.lock().unwrap().len(),
        0,
        "literal addresses and localhost names are judged without DNS"
    );
}

#[tokio::test]
async fn the_refusal_joins_the_other_field_errors() {
    let app = app_with(TargetPolicy::DenyPrivate, &Arc::new(StubDns::default())).await;
    let mut body = idle_job("http://10.1.2.3/");
    body["timeout_ms"] = json!(0);
    let r = app.post("/jobs", &body).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["details"]["url"], json!([PRIVATE_TARGET]));
    assert!(r.body["details"]["timeout_ms"].is_array(), "{}", r.body);
}

#[tokio::test]
async fn public_addresses_are_accepted_when_private_ones_are_denied() {
    let dns = Arc::new(StubDns::default());
    dns.answer(
        "hooks.example.com",
        &[&["93.184.216.34", "2606:4700::1111"]],
    );
    let app = app_with(TargetPolicy::DenyPrivate, &dns).await;
    for url in [
        "http://93.184.216.34/hook",
        "https://1.1.1.1/",
        "http://[2606:4700:4700::1111]/",
        "http://[::ffff:93.184.216.34]/",
        "http://[64:ff9b::93.184.216.34]/",
        "https://hooks.example.com/hook",
        "https://localhost.example.com/",
    ] {
        let r = app.post("/jobs", &idle_job(url)).await;
        assert_eq!(r.status, 201, "{url}: {}", r.body);
    }
}

#[tokio::test]
async fn names_that_resolve_to_internal_addresses_are_refused() {
    let dns = Arc::new(StubDns::default());
    let cases: &[(&str, &[&str])] = &[
        ("loopback.test", &["127.0.0.1"]),
        ("private10.test", &["10.20.30.40"]),
        ("private172.test", &["172.20.0.5"]),
        ("private192.test", &["192.168.10.1"]),
        ("metadata.test", &["169.254.169.254"]),
        ("metadata6.test", &["fd00:ec2::254"]),
        ("linklocal6.test", &["fe80::abcd"]),
        ("ula.test", &["fd12:3456::1"]),
        ("unspecified.test", &["0.0.0.0"]),
        ("multicast.test", &["224.0.0.251"]),
        ("broadcast.test", &["255.255.255.255"]),
        ("cgnat.test", &["100.100.100.200"]),
        ("mapped.test", &["::ffff:10.0.0.1"]),
        ("nat64.test", &["64:ff9b::a9fe:a9fe"]),
        ("loopback6.test", &["::1"]),
        // One internal address among public ones is enough to refuse.
        ("mixed.test", &["93.184.216.34", "10.0.0.1"]),
    ];
    for (name, ips) in cases {
        dns.answer(name, &[ips]);
    }
    let app = app_with(TargetPolicy::DenyPrivate, &dns).await;
    for (name, _) in cases {
        let url = format!("https://{name}/hook");
        assert_refused(&app.post("/jobs", &idle_job(&url)).await, &url);
        assert_eq!(dns.lookups_of(name), 1, "{name} was looked up");
    }
    // And on PATCH: the job keeps its URL.
    dns.answer("public.test", &[&["93.184.216.34"]]);
    let job = app.create_job(idle_job("https://public.test/hook")).await;
    let id = job["id"].as_str().unwrap();
    let r = app
        .call(
            Method::PATCH,
            &format!("/jobs/{id}"),
            Some(&json!({"url": "https://metadata.test/"})),
        )
        .await;
    assert_refused(&r, "PATCH");
    assert_eq!(
        app.get(&format!("/jobs/{id}")).await.body["data"]["url"],
        "https://public.test/hook"
    );
}

/// Waits for the job's one execution to finish, and returns it.
async fn finished_execution(app: &TestApp, id: &str) -> Value {
    let e = app
        .wait_for_executions(id, 1, Duration::from_secs(10))
        .await;
    for _ in 0..200 {
        let e = app.executions(id).await;
        if e[0]["status"] != "running" {
            return e[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the execution did not finish: {e:?}");
}

#[tokio::test]
async fn a_name_that_rebinds_to_a_private_address_after_the_save_is_refused_at_connect_time() {
    let receiver = Receiver::start().await;
    let dns = Arc::new(StubDns::default());
    // Public when the job is saved, the receiver's loopback address when it is called.
    dns.answer("rebind.test", &[&["93.184.216.34"], &["127.0.0.1"]]);
    let app = app_with(TargetPolicy::DenyPrivate, &dns).await;
    let mut body = idle_job(&format!("http://rebind.test:{}/hook", receiver.addr.port()));
    body["max_retries"] = json!(0);
    let job = app.create_job(body).await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(
        app.post_empty(&format!("/jobs/{id}/trigger")).await.status,
        202
    );
    let e = finished_execution(&app, id).await;
    assert_eq!(e["status"], "failed", "{e}");
    assert_eq!(
        e["error"], "refused: rebind.test resolves only to private or internal addresses",
        "{e}"
    );
    assert_eq!(
        dns.lookups_of("rebind.test"),
        2,
        "looked up at save and at connect"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        receiver.received("/hook").is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn a_private_address_saved_before_the_defence_was_on_is_refused_at_call_time() {
    let receiver = Receiver::start().await;
    let mut app = TestApp::spawn().await;
    let mut body = idle_job(&receiver.url("/hook"));
    body["max_retries"] = json!(0);
    let job = app.create_job(body).await;
    let id = job["id"].as_str().unwrap().to_owned();
    app.restart_with(|c| c.settings.target_policy = TargetPolicy::DenyPrivate)
        .await;
    assert_eq!(
        app.post_empty(&format!("/jobs/{id}/trigger")).await.status,
        202
    );
    let e = finished_execution(&app, &id).await;
    assert_eq!(
        e["error"], "refused: 127.0.0.1 is a private or internal address",
        "{e}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        receiver.received("/hook").is_empty(),
        "nothing reached the receiver"
    );
}

#[tokio::test]
async fn the_embedded_server_allows_private_targets_by_default_and_calls_the_resolved_address() {
    let receiver = Receiver::start().await;
    let dns = Arc::new(StubDns::default());
    dns.answer("hooks.internal.test", &[&["127.0.0.1"]]);
    let app = app_with(TargetPolicy::default(), &dns).await;
    let url = format!("http://hooks.internal.test:{}/hook", receiver.addr.port());
    let job = app.create_job(idle_job(&url)).await;
    let id = job["id"].as_str().unwrap();
    assert_eq!(
        app.post_empty(&format!("/jobs/{id}/trigger")).await.status,
        202
    );
    let got = receiver.wait_for("/hook", 1, Duration::from_secs(10)).await;
    assert_eq!(
        got[0].headers["host"],
        format!("hooks.internal.test:{}", receiver.addr.port())
    );
    assert_eq!(finished_execution(&app, id).await["status"], "success");
    assert_eq!(
        dns.lookups_of("hooks.internal.test"),
        1,
        "resolved at connect only"
    );
}
