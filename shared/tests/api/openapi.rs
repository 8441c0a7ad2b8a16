//! `docs/openapi.json` is the API as implemented: the paths and methods it documents are
//! exactly the ones served, and every response of a scenario that touches every operation
//! and its error statuses has a documented status, the documented headers, and a body that
//! matches the documented schema.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::Method;
use krafter_shared::domain::Scope;
use serde_json::{Value, json};

use crate::helpers::{Receiver, Reply, TestApp, idle_job};

/// The document under test (read at compile time: a change to it rebuilds this test).
const DOCUMENT: &str = include_str!("../../../docs/openapi.json");
/// The router's source: the routes it declares must be the documented paths.
const ROUTER_SOURCE: &str = include_str!("../../src/api/mod.rs");

/// The methods probed on every path. HEAD is left out: axum answers it for every GET route.
const METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

// ---------------------------------------------------------------------------------------
// The document.

struct Doc(Value);

/// A documented path: its key in `paths` and the full path template as served.
struct DocPath {
    key: String,
    full: String,
}

impl Doc {
    fn load() -> Self {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        Self(doc)
    }

    /// Follows local `$ref`s (`#/components/...`).
    fn deref<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        while let Some(r) = v.get("$ref").and_then(Value::as_str) {
            let pointer = r.strip_prefix('#').expect("only local $refs");
            v = self
                .0
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{r} resolves"));
        }
        v
    }

    /// Every documented path, with its server (the path's own `servers`, else the document's).
    fn paths(&self) -> Vec<DocPath> {
        let default_server = self.0["servers"][0]["url"].as_str().expect("a server");
        self.0["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .map(|(key, item)| {
                let server = item["servers"][0]["url"].as_str().unwrap_or(default_server);
                DocPath {
                    key: key.clone(),
                    full: format!("{server}{key}"),
                }
            })
            .collect()
    }

    fn operation(&self, key: &str, method: &Method) -> Option<&Value> {
        self.0["paths"][key].get(method.as_str().to_ascii_lowercase())
    }

    /// The documented path whose template matches `path` (a served path, query stripped).
    fn path_for(&self, path: &str) -> Option<DocPath> {
        let segments: Vec<&str> = path.split('/').collect();
        self.paths().into_iter().find(|p| {
            let template: Vec<&str> = p.full.split('/').collect();
            template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')))
        })
    }

    /// A validator for `schema`, with the document's components beside it so that its
    /// `#/components/...` references resolve (locally: no HTTP, no files).
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let root = json!({"components": self.0["components"], "allOf": [schema]});
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("the schema {schema} compiles: {e}"))
    }
}

/// A documented response header's value as JSON, read by its schema's type.
fn header_json(raw: &str, schema: &Value) -> Value {
    match schema["type"].as_str() {
        Some("integer") => raw
            .parse::<i64>()
            .map_or_else(|_| Value::String(raw.to_owned()), Value::from),
        _ => Value::String(raw.to_owned()),
    }
}

// ---------------------------------------------------------------------------------------
// Requests, each checked against the document.

enum Payload {
    None,
    Json(Value),
    Raw(Vec<u8>),
    /// No body, an `Idempotency-Key` header.
    IdempotencyKey(String),
}

/// Sends `method path` (a full path, `/api/v1/...`) with `key` (None: no Authorization).
async fn send(
    app: &TestApp,
    key: Option<&str>,
    method: Method,
    path: &str,
    payload: Payload,
) -> Reply {
    let mut req = app.client.request(method, format!("{}{path}", app.base));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req = match payload {
        Payload::None => req,
        Payload::Json(v) => req
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&v).unwrap()),
        Payload::Raw(bytes) => req.header("content-type", "application/json").body(bytes),
        Payload::IdempotencyKey(key) => req.header("idempotency-key", key),
    };
    let r = req.send().await.expect("the request is answered");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply {
        status,
        headers,
        body,
    }
}

struct Checker {
    doc: Doc,
    problems: Vec<String>,
    /// (path key, METHOD, status) of every checked response.
    seen: BTreeSet<(String, String, u16)>,
}

impl Checker {
    fn new() -> Self {
        Self {
            doc: Doc::load(),
            problems: Vec::new(),
            seen: BTreeSet::new(),
        }
    }

    /// Sends the request and checks the response against the document.
    async fn call(
        &mut self,
        app: &TestApp,
        key: Option<&str>,
        method: Method,
        path: &str,
        payload: Payload,
    ) -> Reply {
        let reply = send(app, key, method.clone(), path, payload).await;
        let problems = self.check(&method, path, &reply);
        self.problems.extend(problems);
        reply
    }

    fn check(&mut self, method: &Method, path: &str, reply: &Reply) -> Vec<String> {
        let what = format!("{method} {path} -> {}", reply.status);
        let bare = path.split('?').next().unwrap();
        let Some(doc_path) = self.doc.path_for(bare) else {
            return vec![format!("{what}: the path is not documented")];
        };
        let Some(op) = self.doc.operation(&doc_path.key, method) else {
            return vec![format!(
                "{what}: {method} {} is not documented",
                doc_path.key
            )];
        };
        self.seen
            .insert((doc_path.key.clone(), method.to_string(), reply.status));
        let Some(response) = op["responses"].get(reply.status.to_string()) else {
            return vec![format!("{what}: status not documented ({})", reply.body)];
        };
        let response = self.doc.deref(response);
        let mut problems = Vec::new();
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let header = self.doc.deref(header);
            match reply.header(name) {
                None if header["required"] == true => {
                    problems.push(format!("{what}: required header {name} is missing"));
                }
                None => {}
                Some(raw) => {
                    let value = header_json(raw, &header["schema"]);
                    let validator = self.doc.validator(&header["schema"]);
                    for e in validator.iter_errors(&value) {
                        problems.push(format!("{what}: header {name}: {raw:?}: {e}"));
                    }
                }
            }
        }
        match response["content"].as_object() {
            Some(content) => {
                let (media, spec) = content.iter().next().expect("a media type");
                let content_type = reply.header("content-type").unwrap_or("");
                if !content_type.starts_with(media.as_str()) {
                    problems.push(format!(
                        "{what}: content-type {content_type:?}, not {media}"
                    ));
                }
                let validator = self.doc.validator(&spec["schema"]);
                for e in validator.iter_errors(&reply.body) {
                    problems.push(format!(
                        "{what}: at {:?}: {e}\n    body: {}",
                        e.instance_path().to_string(),
                        reply.body
                    ));
                }
            }
            None if reply.body != Value::String(String::new()) => {
                problems.push(format!("{what}: no body is documented, got {}", reply.body));
            }
            None => {}
        }
        problems
    }

    /// Every documented status of every operation, except 500 (nothing in a black-box test
    /// can make the server fail inside).
    fn documented(&self) -> BTreeSet<(String, String, u16)> {
        let mut all = BTreeSet::new();
        for p in self.doc.paths() {
            for method in &METHODS {
                let Some(op) = self.doc.operation(&p.key, method) else {
                    continue;
                };
                for status in op["responses"].as_object().unwrap().keys() {
                    let status: u16 = status.parse().expect("numeric statuses only");
                    if status != 500 {
                        all.insert((p.key.clone(), method.to_string(), status));
                    }
                }
            }
        }
        all
    }
}

fn cron(path: &str) -> String {
    format!("/api/v1/cron{path}")
}

/// The routes `router()` declares, as served: `.route` paths of the nested router under the
/// `.nest` prefix, absolute ones (`/api/...`) as they are.
fn declared_routes() -> BTreeSet<String> {
    fn string_args<'a>(source: &'a str, call: &str) -> Vec<&'a str> {
        source
            .split(call)
            .skip(1)
            .filter_map(|rest| {
                let rest = rest.trim_start().strip_prefix('"')?;
                rest.split('"').next()
            })
            .collect()
    }
    let prefix = string_args(ROUTER_SOURCE, ".nest(");
    assert_eq!(prefix.len(), 1, "one nested router");
    string_args(ROUTER_SOURCE, ".route(")
        .into_iter()
        .map(|r| {
            if r.starts_with("/api/") {
                r.to_owned()
            } else {
                format!("{}{r}", prefix[0])
            }
        })
        .collect()
}

fn fresh_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A `once` schedule `secs` seconds from now.
fn in_seconds(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_documented_route_is_served_and_no_other() {
    let doc = Doc::load();
    let documented: BTreeSet<String> = doc.paths().into_iter().map(|p| p.full).collect();
    assert_eq!(
        declared_routes(),
        documented,
        "the router's routes are the documented paths"
    );
    // The one route outside the document: the MCP endpoint, a JSON-RPC transport whose
    // tools are the documented operations (docs/API.md, "MCP").
    assert_eq!(
        ROUTER_SOURCE.matches(".route_service(").count(),
        1,
        "one service route"
    );
    assert!(ROUTER_SOURCE.contains(".route_service(MCP_PATH,"));
    assert!(!documented.contains(krafter_shared::api::MCP_PATH));

    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let job = app.create_job(idle_job(&receiver.url("/hook"))).await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post_empty(&format!("/jobs/{id}/trigger")).await.status,
        202
    );
    let executions = app
        .wait_for_executions(&id, 1, Duration::from_secs(10))
        .await;
    let execution_id = executions[0]["id"].as_str().unwrap().to_owned();

    let mut wrong = Vec::new();
    for p in doc.paths() {
        for method in &METHODS {
            let documented = doc.operation(&p.key, method).is_some();
            // A documented DELETE gets a job of its own, so the others keep theirs.
            let job_id = if documented && *method == Method::DELETE {
                app.create_job(idle_job("https://example.com/")).await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            } else {
                id.clone()
            };
            let path = p
                .full
                .replace("{id}", &job_id)
                .replace("{execution_id}", &execution_id);
            let payload = match (method.as_str(), p.key.as_str()) {
                ("POST", "/jobs") => Payload::Json(idle_job("https://example.com/")),
                ("PATCH", _) => Payload::Json(json!({})),
                _ => Payload::None,
            };
            let r = send(&app, Some(&app.key), method.clone(), &path, payload).await;
            let ok = if documented {
                !matches!(r.status, 404 | 405)
            } else {
                r.status == 405 && r.body["code"] == "method_not_allowed"
            };
            if !ok {
                wrong.push(format!(
                    "{method} {path} (documented: {documented}) -> {} {}",
                    r.status, r.body
                ));
            }
        }
    }

    for path in [
        "/api/v1".to_owned(),
        "/api/v1/".to_owned(),
        "/api/v1/cron".to_owned(),
        "/api/v1/cron/".to_owned(),
        "/api/v1/cron/health".to_owned(),
        "/api/v1/health/x".to_owned(),
        "/api/v2/cron/jobs".to_owned(),
        "/health".to_owned(),
        cron("/jobs/"),
        cron("/executions"),
        cron(&format!("/executions/{execution_id}")),
        cron(&format!("/jobs/{id}/")),
        cron(&format!("/jobs/{id}/run")),
        cron(&format!("/jobs/{id}/trigger/now")),
        cron(&format!("/jobs/{id}/executions/{execution_id}/retry")),
    ] {
        for method in [Method::GET, Method::POST] {
            let r = send(&app, Some(&app.key), method.clone(), &path, Payload::None).await;
            if r.status != 404 {
                wrong.push(format!("{method} {path} (not documented) -> {}", r.status));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn every_response_matches_its_documented_schema() {
    let mut c = Checker::new();
    let app = TestApp::spawn_with(|cfg| cfg.max_jobs_per_team = 4).await;
    let receiver = Receiver::start().await;
    let write = app.key.clone();
    let w = Some(write.as_str());
    let read = app.new_key("alpha", &[Scope::Read]).await;
    let no_scope = app.new_key("alpha", &[]).await;
    let unknown = fresh_uuid();
    let big = vec![b' '; krafter_shared::api::MAX_BODY_BYTES + 1];

    c.call(&app, None, Method::GET, "/api/v1/health", Payload::None)
        .await;

    // Creating: three jobs (one with a body and headers, one paused `once` job due in 4 s).
    let hook = receiver.url("/hook");
    let r = c
        .call(
            &app,
            w,
            Method::POST,
            &cron("/jobs"),
            Payload::Json(idle_job(&hook)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let full = json!({
        "name": "Nightly", "schedule_type": "interval", "schedule": "every_1d",
        "timezone": "Europe/Berlin", "url": "https://example.com/hooks", "method": "POST",
        "headers": {"Content-Type": "application/json"}, "body": "{}", "timeout_ms": 10000,
        "max_retries": 5, "enabled": true, "failure_notify": true
    });
    let r = c
        .call(&app, w, Method::POST, &cron("/jobs"), Payload::Json(full))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let other = r.body["data"]["id"].as_str().unwrap().to_owned();
    let once = json!({
        "name": "once", "schedule_type": "once", "schedule": in_seconds(4),
        "url": "https://example.com/", "enabled": false
    });
    let r = c
        .call(&app, w, Method::POST, &cron("/jobs"), Payload::Json(once))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let once_id = r.body["data"]["id"].as_str().unwrap().to_owned();
    let once_due = std::time::Instant::now() + Duration::from_secs(5);
    for (payload, status) in [
        (Payload::Raw(b"not json".to_vec()), 400),
        (Payload::Json(json!({"name": 1})), 400),
        (Payload::Json(json!({})), 422),
        (
            Payload::Json(
                json!({"name": "x", "schedule_type": "cron", "schedule": "61 * * * *",
            "url": "ftp://x", "id": "x", "colour": "blue"}),
            ),
            422,
        ),
        (Payload::Raw(big.clone()), 413),
    ] {
        let r = c.call(&app, w, Method::POST, &cron("/jobs"), payload).await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    let r = c
        .call(
            &app,
            w,
            Method::POST,
            &cron("/jobs"),
            Payload::Json(idle_job(&hook)),
        )
        .await;
    assert_eq!(r.status, 201, "the fourth job: {}", r.body);
    let r = c
        .call(
            &app,
            w,
            Method::POST,
            &cron("/jobs"),
            Payload::Json(idle_job(&hook)),
        )
        .await;
    assert_eq!(r.body["code"], "quota_exceeded", "{}", r.body);

    // Listing and reading.
    let r = c
        .call(&app, w, Method::GET, &cron("/jobs"), Payload::None)
        .await;
    assert_eq!(r.status, 200);
    let r = c
        .call(&app, w, Method::GET, &cron("/jobs?limit=1"), Payload::None)
        .await;
    let cursor = r.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let next = cron(&format!("/jobs?limit=1&cursor={cursor}"));
    c.call(&app, w, Method::GET, &next, Payload::None).await;
    for bad in ["/jobs?limit=0", "/jobs?limit=x", "/jobs?cursor=!!!"] {
        let r = c
            .call(&app, w, Method::GET, &cron(bad), Payload::None)
            .await;
        assert_eq!(r.status, 422, "{bad}");
    }
    for job in [id.as_str(), other.as_str(), unknown.as_str(), "not-a-uuid"] {
        c.call(
            &app,
            w,
            Method::GET,
            &cron(&format!("/jobs/{job}")),
            Payload::None,
        )
        .await;
    }

    // Changing.
    let job_path = cron(&format!("/jobs/{id}"));
    for (payload, status) in [
        (
            Payload::Json(json!({"name": "renamed", "headers": {"X-A": "1"}})),
            200,
        ),
        (Payload::Json(json!({})), 200),
        (Payload::Raw(b"{".to_vec()), 400),
        (Payload::Json(json!({"timeout_ms": "5"})), 400),
        (
            Payload::Json(json!({"timeout_ms": 5, "next_run_at": null})),
            422,
        ),
        (Payload::Raw(big.clone()), 413),
    ] {
        let r = c.call(&app, w, Method::PATCH, &job_path, payload).await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    let r = c
        .call(
            &app,
            w,
            Method::PATCH,
            &cron(&format!("/jobs/{unknown}")),
            Payload::Json(json!({"name": "x"})),
        )
        .await;
    assert_eq!(r.status, 404);

    // Runs and their executions.
    for _ in 0..2 {
        let r = c
            .call(
                &app,
                w,
                Method::POST,
                &cron(&format!("/jobs/{id}/trigger")),
                Payload::None,
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let executions = app
        .wait_for_executions(&id, 2, Duration::from_secs(10))
        .await;
    let execution_id = executions[0]["id"].as_str().unwrap().to_owned();
    for path in [
        format!("/jobs/{id}/executions"),
        format!("/jobs/{id}/executions?limit=1"),
        format!("/jobs/{id}/executions?limit=101"),
        format!("/jobs/{id}/executions?cursor=x"),
        format!("/jobs/{unknown}/executions"),
        format!("/jobs/{id}/executions/{execution_id}"),
        format!("/jobs/{id}/executions/{unknown}"),
        format!("/jobs/{other}/executions/{execution_id}"),
    ] {
        c.call(&app, w, Method::GET, &cron(&path), Payload::None)
            .await;
    }

    // Pause, resume, trigger.
    for (action, job, status) in [
        ("pause", id.as_str(), 200),
        ("pause", id.as_str(), 200),
        ("trigger", id.as_str(), 409),
        ("resume", id.as_str(), 200),
        ("resume", id.as_str(), 200),
        ("pause", unknown.as_str(), 404),
        ("resume", unknown.as_str(), 404),
        ("trigger", unknown.as_str(), 404),
    ] {
        let path = cron(&format!("/jobs/{job}/{action}"));
        let r = c.call(&app, w, Method::POST, &path, Payload::None).await;
        assert_eq!(r.status, status, "{action} {job}: {}", r.body);
    }
    // A paused `once` job whose time has passed cannot be resumed.
    tokio::time::sleep_until(once_due.into()).await;
    let r = c
        .call(
            &app,
            w,
            Method::POST,
            &cron(&format!("/jobs/{once_id}/resume")),
            Payload::None,
        )
        .await;
    assert_eq!(r.body["code"], "no_future_run", "{}", r.body);
    let r = c
        .call(
            &app,
            w,
            Method::PATCH,
            &cron(&format!("/jobs/{once_id}")),
            Payload::Json(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.body["code"], "no_future_run", "{}", r.body);

    // Deleting.
    for status in [200, 404] {
        let r = c
            .call(
                &app,
                w,
                Method::DELETE,
                &cron(&format!("/jobs/{other}")),
                Payload::None,
            )
            .await;
        assert_eq!(r.status, status);
    }

    // Upcoming runs and schedule previews (a preview is a read: a `cron:read` key may).
    for path in [
        format!("/jobs/{id}/upcoming"),
        format!("/jobs/{id}/upcoming?count=3"),
        format!("/jobs/{id}/upcoming?count=0"),
        format!("/jobs/{id}/upcoming?count=x"),
        format!("/jobs/{unknown}/upcoming"),
    ] {
        c.call(&app, w, Method::GET, &cron(&path), Payload::None)
            .await;
    }
    let preview = json!({"schedule_type": "cron", "schedule": "0 9 * * MON-FRI",
        "timezone": "Europe/Berlin", "count": 5});
    let r = c
        .call(
            &app,
            Some(&read),
            Method::POST,
            &cron("/schedules/preview"),
            Payload::Json(preview.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (payload, status) in [
        (
            Payload::Json(json!({"schedule_type": "interval", "schedule": "every_5m"})),
            200,
        ),
        (Payload::Raw(b"not json".to_vec()), 400),
        (Payload::Json(json!({"schedule": 5})), 400),
        (
            Payload::Json(json!({"schedule_type": "cron", "schedule": "61 * * * *", "url": "x"})),
            422,
        ),
        (
            Payload::Json(
                json!({"schedule_type": "interval", "schedule": "every_5m", "count": 101}),
            ),
            422,
        ),
        (Payload::Raw(big.clone()), 413),
    ] {
        let r = c
            .call(&app, w, Method::POST, &cron("/schedules/preview"), payload)
            .await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    let r = c
        .call(
            &app,
            None,
            Method::POST,
            &cron("/schedules/preview"),
            Payload::Json(preview.clone()),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = c
        .call(
            &app,
            Some(&no_scope),
            Method::POST,
            &cron("/schedules/preview"),
            Payload::Json(preview.clone()),
        )
        .await;
    assert_eq!(r.status, 403);

    // A backfill of the past hour, and ranges it refuses.
    let backfill = cron(&format!("/jobs/{id}/backfill"));
    let now = chrono::Utc::now();
    let ts = krafter_shared::domain::time::format;
    for (payload, status) in [
        (
            Payload::Json(json!({"from": ts(now - chrono::Duration::hours(1)), "until": ts(now)})),
            202,
        ),
        (Payload::Raw(b"not json".to_vec()), 400),
        (Payload::Json(json!({"from": "yesterday"})), 422),
        (Payload::Raw(big.clone()), 413),
    ] {
        let r = c.call(&app, w, Method::POST, &backfill, payload).await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    let r = c
        .call(
            &app,
            w,
            Method::POST,
            &cron(&format!("/jobs/{unknown}/backfill")),
            Payload::Json(json!({"from": ts(now - chrono::Duration::hours(1)), "until": ts(now)})),
        )
        .await;
    assert_eq!(r.status, 404);

    // A pause with a reason, and bodies it refuses.
    let pause = cron(&format!("/jobs/{id}/pause"));
    for (payload, status) in [
        (Payload::Json(json!({"reason": "maintenance"})), 200),
        (Payload::Raw(b"not json".to_vec()), 400),
        (Payload::Json(json!({"reason": ""})), 422),
        (Payload::Raw(big.clone()), 413),
    ] {
        let r = c.call(&app, w, Method::POST, &pause, payload).await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    let r = c
        .call(
            &app,
            w,
            Method::POST,
            &backfill,
            Payload::Json(json!({"from": ts(now - chrono::Duration::hours(1)), "until": ts(now)})),
        )
        .await;
    assert_eq!(r.status, 409, "a paused job: {}", r.body);
    let r = c
        .call(
            &app,
            w,
            Method::POST,
            &cron(&format!("/jobs/{id}/resume")),
            Payload::None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // The audit log, and the team's signing secret (shown to and rotated by write keys).
    for (path, status) in [
        (format!("/audit?job_id={id}&limit=2"), 200),
        ("/audit?job_id=nope".to_owned(), 422),
        (
            "/audit?from=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z".to_owned(),
            422,
        ),
    ] {
        let r = c
            .call(&app, Some(&read), Method::GET, &cron(&path), Payload::None)
            .await;
        assert_eq!(r.status, status, "{path}: {}", r.body);
    }
    let r = c
        .call(
            &app,
            w,
            Method::GET,
            &cron("/team/signing-secret"),
            Payload::None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c
        .call(
            &app,
            w,
            Method::POST,
            &cron("/team/signing-secret/rotate"),
            Payload::None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // An invalid `Idempotency-Key` on the calls that take no body.
    for (method, path) in [
        (Method::POST, format!("/jobs/{id}/trigger")),
        (Method::POST, format!("/jobs/{id}/pause")),
        (Method::POST, format!("/jobs/{id}/resume")),
        (Method::DELETE, format!("/jobs/{id}")),
    ] {
        let key = Payload::IdempotencyKey("not a valid key".to_owned());
        let r = c.call(&app, w, method.clone(), &cron(&path), key).await;
        assert_eq!(r.status, 422, "{method} {path}: {}", r.body);
    }

    // Every operation without a key, and without the scope it needs.
    let operations: Vec<(Method, String)> = vec![
        (Method::GET, cron("/jobs")),
        (Method::POST, cron("/jobs")),
        (Method::GET, cron(&format!("/jobs/{id}"))),
        (Method::PATCH, cron(&format!("/jobs/{id}"))),
        (Method::DELETE, cron(&format!("/jobs/{id}"))),
        (Method::POST, cron(&format!("/jobs/{id}/trigger"))),
        (Method::POST, cron(&format!("/jobs/{id}/pause"))),
        (Method::POST, cron(&format!("/jobs/{id}/resume"))),
        (Method::GET, cron(&format!("/jobs/{id}/executions"))),
        (Method::GET, cron(&format!("/jobs/{id}/upcoming"))),
        (Method::POST, cron(&format!("/jobs/{id}/backfill"))),
        (
            Method::GET,
            cron(&format!("/jobs/{id}/executions/{execution_id}")),
        ),
        (Method::GET, cron("/audit")),
        (Method::GET, cron("/team/signing-secret")),
        (Method::POST, cron("/team/signing-secret/rotate")),
    ];
    for (method, path) in &operations {
        let body = || match *method {
            Method::POST | Method::PATCH => Payload::Json(idle_job("https://example.com/")),
            _ => Payload::None,
        };
        let r = c.call(&app, None, method.clone(), path, body()).await;
        assert_eq!(r.status, 401, "{method} {path}");
        let key = if *method == Method::GET && !path.ends_with("/signing-secret") {
            &no_scope
        } else {
            &read
        };
        let r = c.call(&app, Some(key), method.clone(), path, body()).await;
        assert_eq!(r.status, 403, "{method} {path}");
    }

    // Over the rate limit: a team, and a client address, get one request per window.
    let limited = TestApp::spawn_with(|cfg| cfg.rate_limit = 1).await;
    let key = limited.key.clone();
    let k = Some(key.as_str());
    for path in ["/api/v1/health", "/api/v1/health"] {
        c.call(&limited, None, Method::GET, path, Payload::None)
            .await;
    }
    c.call(&limited, k, Method::GET, &cron("/jobs"), Payload::None)
        .await;
    for (method, path) in &operations {
        let r = c
            .call(&limited, k, method.clone(), path, Payload::None)
            .await;
        assert_eq!(r.status, 429, "{method} {path}");
    }
    let r = c
        .call(
            &limited,
            k,
            Method::POST,
            &cron("/schedules/preview"),
            Payload::None,
        )
        .await;
    assert_eq!(r.status, 429);

    assert!(
        c.problems.is_empty(),
        "responses that do not match docs/openapi.json:\n{}",
        c.problems.join("\n")
    );
    let missing: Vec<String> = c
        .documented()
        .difference(&c.seen)
        .map(|(path, method, status)| format!("{method} {path} {status}"))
        .collect();
    assert!(
        missing.is_empty(),
        "documented statuses this scenario never saw (add them to it):\n{}",
        missing.join("\n")
    );
}
