//! Test harness: the real application on port 0 with a fresh SQLite file, a real HTTP
//! client, and a real local webhook receiver.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use krafter_shared::domain::{Scope, Scopes, TeamId};
use krafter_shared::embedded::{Database, Embedded, EmbeddedConfig, create_key};
use serde_json::{Value, json};

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// A `cron:write` key of team `alpha`.
    pub key: String,
    pub app: Option<Embedded>,
    pub dir: tempfile::TempDir,
}

pub fn quiet_config() -> EmbeddedConfig {
    let mut config = EmbeddedConfig {
        bootstrap_key: false,
        ..EmbeddedConfig::default()
    };
    let s = &mut config.settings;
    s.bind = "127.0.0.1:0".parse().unwrap();
    s.retry_backoff = Duration::from_millis(200);
    s.rate_limit = 10_000;
    s.shutdown_grace = Duration::from_secs(5);
    config
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut EmbeddedConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = quiet_config();
        config.database = Database::File(dir.path().join("krafter.db"));
        tweak(&mut config);
        let app = Embedded::start(config).await.expect("the app starts");
        let base = format!("http://{}", app.local_addr());
        let mut this = Self {
            base,
            client: reqwest::Client::new(),
            key: String::new(),
            app: Some(app),
            dir,
        };
        this.key = this.new_key("alpha", &[Scope::Write]).await;
        this
    }

    pub async fn new_key(&self, team: &str, scopes: &[Scope]) -> String {
        let keys = self.app.as_ref().unwrap().keys();
        let (plain, _) = create_key(
            keys.as_ref(),
            TeamId::parse(team).unwrap(),
            Scopes::new(scopes.to_vec()),
            None,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        plain.as_str().to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1/cron{}", self.base, path)
    }

    /// Sends a request with `key` (None: no Authorization header) and returns status,
    /// headers and JSON body.
    pub async fn call_as(
        &self,
        key: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(b).unwrap());
        }
        Reply::from(req.send().await.expect("the request is answered")).await
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        self.call_as(Some(&self.key.clone()), method, path, body)
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn post_empty(&self, path: &str) -> Reply {
        self.call(Method::POST, path, None).await
    }

    /// Creates a job and returns its JSON.
    pub async fn create_job(&self, body: Value) -> Value {
        let r = self.post("/jobs", &body).await;
        assert_eq!(r.status, 201, "creating {body}: {}", r.body);
        r.body["data"].clone()
    }

    pub async fn executions(&self, job_id: &str) -> Vec<Value> {
        let r = self
            .get(&format!("/jobs/{job_id}/executions?limit=100"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["data"].as_array().unwrap().clone()
    }

    /// Waits until the job has at least `n` finished executions.
    pub async fn wait_for_executions(
        &self,
        job_id: &str,
        n: usize,
        within: Duration,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let e = self.executions(job_id).await;
            if e.len() >= n {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} executions of {job_id} within {within:?}, got {}: {e:?}",
                e.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server and starts it again on the same database, with `tweak` applied.
    pub async fn restart_with(&mut self, tweak: impl FnOnce(&mut EmbeddedConfig)) {
        self.shutdown().await;
        let mut config = quiet_config();
        config.database = Database::File(self.dir.path().join("krafter.db"));
        tweak(&mut config);
        let app = Embedded::start(config).await.expect("the app restarts");
        self.base = format!("http://{}", app.local_addr());
        self.app = Some(app);
    }

    pub async fn shutdown(&mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    async fn from(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("a JSON body, got {:?}", String::from_utf8_lossy(&bytes))
            })
        };
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the error body: status, `error`, and (when given) `details`.
    pub fn assert_error(&self, status: u16, error: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], error, "{}", self.body);
        assert!(self.body["code"].is_string(), "{}", self.body);
        self
    }
}

/// The quickstart's job.
pub fn health_check(url: &str) -> Value {
    json!({
        "name": "Health Check",
        "schedule_type": "interval",
        "schedule": "every_5m",
        "url": url,
        "method": "GET"
    })
}

/// A job body that never fires on its own within a test.
pub fn idle_job(url: &str) -> Value {
    json!({
        "name": "idle",
        "schedule_type": "cron",
        "schedule": "0 0 1 1 *",
        "url": url,
    })
}

// ---------------------------------------------------------------------------------------
// The webhook receiver.

#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: u16,
    pub delay: Duration,
    pub body: String,
    pub retry_after: Option<String>,
}

impl Scripted {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            body: String::new(),
            retry_after: None,
        }
    }
    pub fn slow(status: u16, delay: Duration) -> Self {
        Self {
            delay,
            ..Self::status(status)
        }
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    scripts: HashMap<String, VecDeque<Scripted>>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The next requests to `path` get these answers, in order; then 200 `{"status":"ok"}`.
    pub fn script(&self, path: &str, replies: Vec<Scripted>) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .insert(path.to_owned(), replies.into());
    }

    pub fn received(&self, path: &str) -> Vec<Received> {
        self.state
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let r = self.received(path);
            if r.len() >= n {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} requests to {path} within {within:?}, got {}",
                r.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let reply = {
        let mut s = state.lock().unwrap();
        s.received.push(Received {
            method: method.to_string(),
            path: path.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: chrono::Utc::now(),
        });
        s.scripts.get_mut(&path).and_then(|q| q.pop_front())
    };
    let reply = reply.unwrap_or(Scripted {
        body: r#"{"status":"ok"}"#.to_owned(),
        ..Scripted::status(200)
    });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        reply.body.clone(),
    )
        .into_response();
    if let Some(ra) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    response
}
