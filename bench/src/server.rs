//! `krafter serve` as a separate process (release build), so that its CPU time and memory
//! are its own; with the API client the benchmark drives it through.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

use crate::Settings;

pub struct Server {
    child: Child,
    pub base: String,
    pub key: String,
    pub db: PathBuf,
    /// From spawning the process to its "serving" line.
    pub ready_in: Duration,
    pub spawned: Instant,
    client: reqwest::Client,
}

impl Server {
    /// Starts a server on the database in `dir` (created, with a key for team `bench`, if it
    /// is new). The rate limit and the job quota are lifted: the benchmark is the only caller.
    pub fn start(settings: &Settings, dir: &Path) -> Self {
        let db = dir.join("krafter.db");
        let key_file = dir.join("key");
        if !key_file.exists() {
            let out = Command::new(&settings.krafter)
                .args([
                    "keys",
                    "create",
                    "--team",
                    "bench",
                    "--scope",
                    "cron:write",
                    "--db",
                ])
                .arg(&db)
                .stderr(Stdio::null())
                .output()
                .expect("run krafter keys create");
            assert!(out.status.success(), "krafter keys create failed");
            std::fs::write(&key_file, String::from_utf8(out.stdout).unwrap().trim()).unwrap();
        }
        let key = std::fs::read_to_string(&key_file).unwrap();
        let log = dir.join("serve.log");
        let spawned = Instant::now();
        let child = Command::new(&settings.krafter)
            .args(["serve", "--bind", "127.0.0.1:0", "--db"])
            .arg(&db)
            .args([
                "--rate-limit",
                "1000000000",
                "--max-jobs-per-team",
                "100000000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start krafter serve");
        let base = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("krafter: serving ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            assert!(
                spawned.elapsed() < Duration::from_secs(60),
                "krafter serve did not start; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(1));
        };
        let ready_in = spawned.elapsed();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();
        Self {
            child,
            base,
            key,
            db,
            ready_in,
            spawned,
            client,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates the jobs through the API, 64 requests in flight. Returns the ids, in order.
    pub async fn create_jobs(&self, bodies: Vec<Value>) -> Vec<String> {
        let total = bodies.len();
        let started = Instant::now();
        let mut ids = vec![String::new(); total];
        let mut done: usize = 0;
        let mut results = futures_util::stream::iter(bodies.into_iter().enumerate())
            .map(|(i, body)| async move { (i, self.create(&body).await) })
            .buffer_unordered(64);
        while let Some((i, id)) = results.next().await {
            ids[i] = id;
            done += 1;
            if done.is_multiple_of(20_000) {
                eprintln!("  {done} of {total} jobs created");
            }
        }
        eprintln!(
            "  {total} jobs created in {:.1} s ({:.0}/s)",
            started.elapsed().as_secs_f64(),
            total as f64 / started.elapsed().as_secs_f64()
        );
        ids
    }

    pub async fn create(&self, body: &Value) -> String {
        let v = self.call(reqwest::Method::POST, "/jobs", Some(body)).await;
        v["data"]["id"].as_str().unwrap().to_owned()
    }

    /// Calls the API; panics unless the answer is a success (the benchmark measures nothing
    /// if its requests fail).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.expect("the API answers");
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Stops the server (SIGTERM: it lets attempts in flight finish) and waits for it.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Counts the executions in the database that finished with a success, scheduled at `at`
/// (Unix seconds) or, with `None`, at any time.
pub fn succeeded(db: &Path, at: Option<i64>) -> usize {
    let conn = open_read_only(db);
    let n: i64 = match at {
        Some(at) => conn.query_row(
            "SELECT count(*) FROM executions WHERE status = 'success' AND scheduled_at = ?1",
            [at],
            |r| r.get(0),
        ),
        None => conn.query_row(
            "SELECT count(*) FROM executions WHERE status = 'success'",
            [],
            |r| r.get(0),
        ),
    }
    .expect("count executions");
    n as usize
}

/// The scheduled time (Unix seconds) of each execution id, read from the database.
pub fn scheduled_times(db: &Path) -> std::collections::HashMap<String, i64> {
    let conn = open_read_only(db);
    let mut stmt = conn
        .prepare("SELECT id, scheduled_at FROM executions")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The server's database, read-only, beside the running server.
pub fn open_read_only(db: &Path) -> rusqlite::Connection {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database read-only");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}
