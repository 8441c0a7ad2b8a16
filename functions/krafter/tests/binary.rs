//! The real `krafter` binary: the operator commands, and a `kill -9` in the middle of a
//! burst of due runs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_krafter");

fn krafter(args: &[&str], db: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--db")
        .arg(db)
        .env("KRAFTER_LOG", "warn")
        .output()
        .expect("krafter runs")
}

struct Server {
    child: Child,
    base: String,
    bootstrap_key: Option<String>,
    /// What the server wrote to stderr after its address line.
    logs: Arc<Mutex<Vec<String>>>,
}

/// Starts `krafter serve` on port 0 and reads its address (stderr) and key (stdout).
fn serve(db: &Path, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--db"])
        .arg(db)
        .env("KRAFTER_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("krafter serve starts");
    let mut stderr_lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut base = None;
    for line in stderr_lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("krafter: serving ") {
            base = Some(rest.split("/api/").next().unwrap().to_owned());
            break;
        }
    }
    let base = base.expect("krafter prints the address it serves");
    // Keep reading stderr, as a terminal would.
    let logs: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = logs.clone();
    std::thread::spawn(move || {
        for line in stderr_lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    let mut bootstrap_key = None;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
        if let Some(k) = line.split_whitespace().find(|w| w.starts_with("kr_live_")) {
            bootstrap_key = Some(k.to_owned());
            break;
        }
    }
    Server {
        child,
        base,
        bootstrap_key,
        logs,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_team_gets_a_signing_secret_with_its_first_key_and_rotating_it_keeps_the_old_one_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let first = krafter(
        &["keys", "create", "--team", "acme", "--scope", "cron:write"],
        &db,
    );
    let stderr = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(first.status.success(), "{stderr}");
    assert!(stderr.contains("created team acme"), "{stderr}");
    let shown = String::from_utf8(krafter(&["teams", "show-secret", "--team", "acme"], &db).stdout)
        .unwrap();
    let secret = shown.trim().to_owned();
    assert!(
        stderr.contains(&secret),
        "the secret printed at creation: {stderr}"
    );
    let second = krafter(
        &["keys", "create", "--team", "acme", "--scope", "cron:read"],
        &db,
    );
    assert!(
        !String::from_utf8_lossy(&second.stderr).contains("created team"),
        "a second key does not make a new team"
    );

    let rotated = krafter(&["teams", "rotate-secret", "--team", "acme"], &db);
    let rotate_note = String::from_utf8_lossy(&rotated.stderr).into_owned();
    assert!(rotated.status.success(), "{rotate_note}");
    let new = String::from_utf8(rotated.stdout).unwrap().trim().to_owned();
    assert!(new.starts_with("whsec_") && new != secret, "{new}");
    assert!(rotate_note.contains("keeps signing"), "{rotate_note}");
    let shown = krafter(&["teams", "show-secret", "--team", "acme"], &db);
    assert_eq!(String::from_utf8(shown.stdout).unwrap().trim(), new);
    let note = String::from_utf8_lossy(&shown.stderr).into_owned();
    assert!(
        note.contains("previous secret") && note.contains(&secret),
        "{note}"
    );

    let unknown = krafter(&["teams", "show-secret", "--team", "nobody"], &db);
    assert!(!unknown.status.success());
}

#[test]
fn keys_are_created_listed_and_revoked_by_the_operator_command() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let out = krafter(
        &[
            "keys",
            "create",
            "--team",
            "acme",
            "--scope",
            "cron:read",
            "--scope",
            "cron:write",
        ],
        &db,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.lines().last().unwrap().to_owned();
    assert!(key.starts_with("kr_live_") && key.len() == 51, "{key}");

    let out = krafter(&["keys", "list"], &db);
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(
        listing.contains(&key[..12]) && listing.contains("acme"),
        "{listing}"
    );
    assert!(!listing.contains(&key), "the secret is never shown again");
    assert!(listing.contains("active"));

    let out = krafter(&["keys", "revoke", &key[..12]], &db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(krafter(&["keys", "list"], &db).stdout).unwrap();
    assert!(listing.contains("revoked"), "{listing}");

    let bad = krafter(
        &["keys", "create", "--team", "acme", "--scope", "cron:admin"],
        &db,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scope"));
    let bad = krafter(&["keys", "revoke", "kr_live_zzzz"], &db);
    assert!(!bad.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_creates_a_first_key_and_a_revoked_key_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let server = serve(&db, &[]);
    let key = server
        .bootstrap_key
        .clone()
        .expect("a key for an empty store");
    let client = reqwest::Client::new();
    let jobs = format!("{}/api/v1/cron/jobs", server.base);
    let r = client.get(&jobs).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let out = krafter(&["keys", "revoke", &key[..12]], &db);
    assert!(out.status.success());
    let r = client.get(&jobs).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 401);
    drop(server);
    let again = serve(&db, &[]);
    assert!(
        again.bootstrap_key.is_none(),
        "only an empty store gets a first key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(&dir.path().join("k.db"), &[]);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "exit 0 on SIGTERM, got {status}");
            break;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the receiver counted: (job id, attempt) → deliveries, and job id → the
/// `Idempotency-Key`s its requests carried.
#[derive(Default)]
struct Counts {
    attempts: HashMap<(String, String), u32>,
    runs: HashMap<String, std::collections::HashSet<String>>,
    /// When each request arrived.
    arrivals: Vec<Instant>,
}

type Seen = Arc<Mutex<Counts>>;

async fn counting_receiver(delay: Duration) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let state = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let state = state.clone();
        async move {
            let h = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            {
                let mut counts = state.lock().unwrap();
                *counts
                    .attempts
                    .entry((h("x-krafter-job-id"), h("x-krafter-attempt")))
                    .or_default() += 1;
                counts
                    .runs
                    .entry(h("x-krafter-job-id"))
                    .or_default()
                    .insert(h("idempotency-key"));
                counts.arrivals.push(Instant::now());
            }
            tokio::time::sleep(delay).await;
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/burst", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Creates `n` one-time jobs calling `url`, all due at `due`, 8 at a time; returns their ids.
async fn create_burst(
    server: &Server,
    key: &str,
    url: &str,
    n: usize,
    due: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    const CREATORS: usize = 8;
    let client = reqwest::Client::new();
    let creators: Vec<_> = (0..CREATORS)
        .map(|c| {
            let (client, base, key, url) = (
                client.clone(),
                server.base.clone(),
                key.to_owned(),
                url.to_owned(),
            );
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in (c..n).step_by(CREATORS) {
                    let r = client
                        .post(format!("{base}/api/v1/cron/jobs"))
                        .bearer_auth(&key)
                        .json(&json!({
                            "name": format!("burst {i}"),
                            "schedule_type": "once",
                            "schedule": due.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                            "url": url,
                            "max_retries": 3,
                        }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                    let body: Value = r.json().await.unwrap();
                    ids.push(body["data"]["id"].as_str().unwrap().to_owned());
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for c in creators {
        ids.extend(c.await.unwrap());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_burst_of_1000_due_runs_loses_no_run_and_sends_no_attempt_twice() {
    const JOBS: usize = 1_000;
    let (url, seen) = counting_receiver(Duration::from_millis(400)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let env = [
        ("KRAFTER_RATE_LIMIT", "100000"),
        ("KRAFTER_RETRY_BACKOFF_MS", "100"),
        ("KRAFTER_CONCURRENCY", "64"),
    ];
    let mut server = serve(&db, &env);
    let key = server.bootstrap_key.clone().unwrap();
    // All due at the same second, after every job is created.
    let due = chrono::Utc::now() + chrono::Duration::seconds(15);
    let ids = create_burst(&server, &key, &url, JOBS, due).await;
    assert!(
        chrono::Utc::now() < due,
        "every job was created before the burst"
    );
    // Kill while attempts are in flight and runs are still queued (64 at a time, 0.4 s each).
    let deadline = Instant::now() + Duration::from_secs(40);
    while seen.lock().unwrap().runs.len() < 200 {
        assert!(Instant::now() < deadline, "the burst did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let before = seen.lock().unwrap().runs.len();
    assert!(
        before < JOBS,
        "killed mid-burst ({before} of {JOBS} runs sent)"
    );
    drop(server);

    let server = serve(&db, &env);
    wait_until_all_succeed(&server, &key, &ids).await;
    let seen = seen.lock().unwrap();
    let doubled: Vec<_> = seen.attempts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "attempts sent twice: {doubled:?}");
    for id in &ids {
        let keys = seen.runs.get(id);
        assert!(keys.is_some(), "the run of {id} was never delivered");
        assert_eq!(keys.unwrap().len(), 1, "one run, one Idempotency-Key: {id}");
    }
    // Attempts that were in flight at the kill are recorded as interrupted and retried as
    // the next attempt, with the same Idempotency-Key (at-least-once, deduplicable).
    let retried = seen
        .attempts
        .keys()
        .filter(|(_, attempt)| attempt != "1")
        .count();
    eprintln!("killed after {before} of {JOBS} runs; {retried} interrupted attempts retried");
}

#[test]
fn a_start_that_cannot_listen_fails_clearly_and_creates_no_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let out = Command::new(BIN)
        .args(["serve", "--bind", &addr, "--db"])
        .arg(&db)
        .env("KRAFTER_LOG", "off")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not listen on"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).is_empty(),
        "no key printed"
    );
    let listing = krafter(&["keys", "list"], &db);
    assert!(
        String::from_utf8_lossy(&listing.stderr).contains("0 key(s)"),
        "no key stored"
    );
}

#[test]
fn nonsense_settings_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    for (flag, env) in [
        ("--rate-limit=0", ("KRAFTER_LOG", "off")),
        ("--rate-limit=5", ("KRAFTER_CONCURRENCY", "0")),
        ("--retry-backoff-ms=0", ("KRAFTER_LOG", "off")),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", flag, "--db"])
            .arg(&db)
            .env(env.0, env.1)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} {env:?} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("invalid value"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!db.exists(), "nothing was created");
}

/// `krafter` pointed at this test process's moto server, as an operator would point it at
/// AWS (the usual AWS configuration: endpoint, region, credentials).
fn krafter_aws(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("AWS_ENDPOINT_URL", krafter_testkit::moto())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("KRAFTER_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("krafter runs")
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test]
async fn keys_commands_work_on_the_hosted_dynamodb_table() {
    let clients = krafter_testkit::clients().await;
    let r = krafter_testkit::provision(&clients).await;
    let table = r.tables.keys.as_str();
    let backend = [
        "--backend",
        "dynamodb",
        "--keys-table",
        table,
        "--teams-table",
        &r.tables.teams,
    ];
    let create = [
        &["keys", "create", "--team", "acme", "--scope", "cron:write"][..],
        &backend,
    ]
    .concat();
    let key = ok(&krafter_aws(&create, &[]))
        .lines()
        .last()
        .unwrap()
        .to_owned();
    assert!(key.starts_with("kr_live_"), "{key}");
    let secret = ok(&krafter_aws(
        &[&["teams", "show-secret", "--team", "acme"][..], &backend].concat(),
        &[],
    ));
    assert!(secret.trim().starts_with("whsec_"), "{secret}");

    // The hosted store now knows the key by its hash.
    let stores = krafter_shared::adapters::dynamodb::DynamoKeyStore::new(clients.dynamodb, table);
    let plain = krafter_shared::domain::PlainKey::parse(&key).unwrap();
    use krafter_shared::ports::KeyStore;
    let stored = stores.find_by_hash(&plain.hash()).await.unwrap().unwrap();
    assert_eq!(stored.team.as_str(), "acme");

    // The table name may come from the environment instead.
    let listing = ok(&krafter_aws(
        &["keys", "list", "--backend", "dynamodb"],
        &[("KRAFTER_KEYS_TABLE", table)],
    ));
    assert!(
        listing.contains(&key[..12]) && listing.contains("active"),
        "{listing}"
    );
    ok(&krafter_aws(
        &[&["keys", "revoke", &key[..12]][..], &backend].concat(),
        &[],
    ));
    let listing = ok(&krafter_aws(
        &[&["keys", "list"][..], &backend].concat(),
        &[],
    ));
    assert!(listing.contains("revoked"), "{listing}");

    let missing = krafter_aws(&["keys", "list", "--backend", "dynamodb"], &[]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--keys-table"));
}

#[tokio::test]
async fn aws_init_creates_what_the_template_declares_and_tick_fires_and_delivers() {
    let prefix = krafter_testkit::unique("init");
    let exports = ok(&krafter_aws(&["aws", "init", "--prefix", &prefix], &[]));
    let env: Vec<(String, String)> = exports
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect();
    assert_eq!(env.len(), 13, "{exports}");
    let get = |k: &str| env.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // A job whose every-minute schedule exists, created through the hosted wiring.
    let clients = krafter_testkit::clients().await;
    let resources = krafter_shared::hosted::process_env_from(&env_refs)
        .resources()
        .unwrap();
    let hosted = krafter_shared::hosted::Hosted::new(
        clients.clone(),
        resources.clone(),
        krafter_shared::settings::Settings {
            // The job's URL is never called here.
            target_policy: krafter_shared::targets::TargetPolicy::AllowPrivate,
            ..krafter_shared::settings::Settings::defaults(krafter_shared::settings::Mode::Hosted)
        },
    );
    let body = serde_json::json!({
        "name": "tick", "schedule_type": "cron", "schedule": "* * * * *",
        "url": "http://127.0.0.1:9/unused",
    });
    let team = krafter_shared::domain::TeamId::parse("alpha").unwrap();
    let job = hosted
        .service()
        .create(
            &team,
            &krafter_shared::api::read_job_draft(body.as_object().unwrap()).unwrap(),
        )
        .await
        .unwrap();

    // `krafter audit` reads the hosted audit table.
    let audit = krafter_shared::adapters::dynamodb::DynamoAuditStore::new(
        clients.dynamodb.clone(),
        &get("KRAFTER_AUDIT_TABLE"),
        Duration::from_secs(86_400),
    );
    let entry = krafter_shared::domain::AuditEntry {
        id: krafter_shared::domain::AuditId::new(),
        team: team.clone(),
        at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0),
        action: krafter_shared::domain::AuditAction::CreateJob,
        job_id: Some(job.id),
        key_prefix: None,
        outcome: krafter_shared::domain::AuditOutcome(201),
        request_id: "req-cli".into(),
        source: "127.0.0.1".into(),
    };
    krafter_shared::ports::AuditStore::record(&audit, &entry)
        .await
        .unwrap();
    let listed = ok(&krafter_aws(
        &[
            "audit",
            "--backend",
            "dynamodb",
            "--team",
            "alpha",
            "--json",
        ],
        &env_refs,
    ));
    let line: serde_json::Value = serde_json::from_str(listed.trim()).unwrap();
    assert_eq!(line["action"], "job.create");
    assert_eq!(line["job_id"], job.id.to_string());
    assert_eq!(line["request_id"], "req-cli");

    // A stand-in for the executor function's invoke endpoint: records the SQS events.
    let events = Arc::new(std::sync::Mutex::new(Vec::<serde_json::Value>::new()));
    let seen = events.clone();
    let app = axum::Router::new().route(
        "/invoke",
        axum::routing::post(move |axum::Json(event): axum::Json<serde_json::Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(event);
                axum::Json(serde_json::json!({"batchItemFailures": []}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let invoke = format!("http://{}/invoke", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // Tick until the next minute boundary has passed: the schedule fires into SQS and the
    // message is handed to the executor endpoint.
    let next = job.next_run_at.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(75);
    while events.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "nothing delivered");
        let out = tokio::task::spawn_blocking({
            let (env, invoke) = (
                env_refs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
                invoke.clone(),
            );
            move || {
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                krafter_aws(
                    &[
                        "aws",
                        "tick",
                        "--once",
                        "--every-secs",
                        "5",
                        "--invoke-url",
                        &invoke,
                    ],
                    &env,
                )
            }
        })
        .await
        .unwrap();
        ok(&out);
        if chrono::Utc::now() < next {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let first = events.lock().unwrap()[0].clone();
    let body: serde_json::Value =
        serde_json::from_str(first["Records"][0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["kind"], "tick");
    assert_eq!(body["job_id"], job.id.to_string());
    let fired: chrono::DateTime<chrono::Utc> =
        body["scheduled_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        fired, next,
        "fired at the job's next run, as EventBridge would"
    );
    // The group exists, and the run queue dead-letters into the printed DLQ after 5 tries.
    clients
        .scheduler
        .get_schedule_group()
        .name(get("KRAFTER_SCHEDULE_GROUP"))
        .send()
        .await
        .expect("the schedule group exists");
    let redrive = clients
        .sqs
        .get_queue_attributes()
        .queue_url(get("KRAFTER_RUN_QUEUE_URL"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy]
        .clone();
    let redrive: serde_json::Value = serde_json::from_str(&redrive).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"],
        get("KRAFTER_DEAD_LETTER_QUEUE_ARN")
    );
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );
}

/// Catch-up after `kill -9`: two one-time jobs come due while the server is down. After the
/// restart, the one whose `catchup_window_s` covers the downtime runs once, late, with its
/// own `scheduled_at`; the one whose window is shorter is skipped (and, being `once`, done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_a_missed_run_starts_late_only_within_its_catch_up_window() {
    let (url, seen) = counting_receiver(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let mut server = serve(&db, &[]);
    let key = server.bootstrap_key.clone().unwrap();
    let client = reqwest::Client::new();
    let due =
        chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0) + chrono::Duration::seconds(4);
    let mut ids = Vec::new();
    for window in [3600, 1] {
        let r = client
            .post(format!("{}/api/v1/cron/jobs", server.base))
            .bearer_auth(&key)
            .json(&json!({
                "name": format!("window {window}"),
                "schedule_type": "once",
                "schedule": due.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "url": url,
                "catchup_window_s": window,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let body: Value = r.json().await.unwrap();
        ids.push(body["data"]["id"].as_str().unwrap().to_owned());
    }
    server.child.kill().unwrap(); // SIGKILL, before the runs are due
    server.child.wait().unwrap();
    drop(server);
    let down_until = due + chrono::Duration::seconds(4);
    tokio::time::sleep(
        (down_until - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
    .await;

    let server = serve(&db, &[]);
    let executions = async |id: &str| -> Vec<Value> {
        let r = client
            .get(format!("{}/api/v1/cron/jobs/{id}/executions", server.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["data"].as_array().unwrap().clone()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let patient = loop {
        let runs = executions(&ids[0]).await;
        if !runs.is_empty() {
            break runs;
        }
        assert!(Instant::now() < deadline, "the missed run never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(patient.len(), 1);
    let at = |v: &Value| {
        v.as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    assert_eq!(at(&patient[0]["scheduled_at"]), due, "with its own time");
    assert!(
        at(&patient[0]["started_at"]) >= down_until,
        "late, after the restart"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        executions(&ids[1]).await.is_empty(),
        "too late for a 1 s window"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.runs.len(), 1, "only the patient job was called");
    assert!(seen.runs.contains_key(&ids[0]));
}

/// A backup taken with `krafter backup` during a burst of 1,000 due runs, while the server
/// fires them: restored, every run either happened (its attempt recorded) or is still to
/// happen (queued, or its job not yet fired), no attempt is recorded twice, and after a
/// restart on the restored store every run succeeds without sending again an attempt the
/// backup had recorded. Prints how long the copy took and the longest gap in deliveries
/// while it ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_a_burst_restores_to_a_store_that_loses_and_doubles_nothing() {
    const JOBS: usize = 1_000;
    let (url, seen) = counting_receiver(Duration::from_millis(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let (db, copy, restored) = (
        dir.path().join("k.db"),
        dir.path().join("backup.db"),
        dir.path().join("restored.db"),
    );
    let env = [
        ("KRAFTER_RATE_LIMIT", "100000"),
        ("KRAFTER_CONCURRENCY", "64"),
    ];
    let mut server = serve(&db, &env);
    let key = server.bootstrap_key.clone().unwrap();
    let due = chrono::Utc::now() + chrono::Duration::seconds(12);
    let ids = create_burst(&server, &key, &url, JOBS, due).await;
    assert!(
        chrono::Utc::now() < due,
        "every job was created before the burst"
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    while seen.lock().unwrap().runs.len() < 300 {
        assert!(Instant::now() < deadline, "the burst did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let out = krafter(&["backup", "--to", copy.to_str().unwrap()], &db);
    let finished = Instant::now();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Let the burst finish on the live store, then stop the server for good.
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let gap = longest_gap(&seen.lock().unwrap().arrivals, started, finished);
    eprintln!(
        "backup copied in {} ms while firing; longest gap between deliveries meanwhile: {} ms",
        (finished - started).as_millis(),
        gap.as_millis()
    );

    let out = krafter(&["restore", copy.to_str().unwrap()], &restored);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = recorded_attempts(&restored, &ids, due);
    let before_restart = seen.lock().unwrap().attempts.clone();

    let server = serve(&restored, &env);
    wait_until_all_succeed(&server, &key, &ids).await;
    let seen = seen.lock().unwrap();
    for (job, attempt) in &recorded {
        let sent = seen
            .attempts
            .get(&(job.clone(), attempt.to_string()))
            .copied()
            .unwrap_or(0);
        let before = before_restart
            .get(&(job.clone(), attempt.to_string()))
            .copied()
            .unwrap_or(0);
        assert_eq!(
            sent, before,
            "attempt {attempt} of {job} was in the backup and sent again"
        );
    }
}

/// The longest time between two deliveries (or an edge of the window) within it.
fn longest_gap(arrivals: &[Instant], from: Instant, until: Instant) -> Duration {
    let mut inside: Vec<Instant> = arrivals
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= until)
        .collect();
    inside.sort();
    let mut edges = vec![from];
    edges.extend(inside);
    edges.push(until);
    edges
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

/// Checks the restored store: each job's run happened (attempts recorded, each once) or
/// is to happen (queued, or not fired yet). Returns the recorded (job, attempt) pairs.
fn recorded_attempts(
    db: &Path,
    ids: &[String],
    due: chrono::DateTime<chrono::Utc>,
) -> Vec<(String, u32)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let doubled: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM (SELECT run_id, attempt FROM executions \
             GROUP BY run_id, attempt HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(doubled, 0, "an attempt recorded twice");
    let mut recorded = Vec::new();
    let (mut happened, mut queued, mut unfired) = (0, 0, 0);
    for id in ids {
        let count = |sql: &str| -> i64 { c.query_row(sql, [id], |r| r.get(0)).unwrap() };
        let attempts = count("SELECT COUNT(*) FROM executions WHERE job_id = ?1");
        let in_queue = count("SELECT COUNT(*) FROM run_queue WHERE job_id = ?1");
        let not_fired = count(&format!(
            "SELECT COUNT(*) FROM jobs WHERE id = ?1 AND next_run_at <= {}",
            due.timestamp()
        ));
        assert!(
            attempts + in_queue + not_fired > 0,
            "the run of {id} is lost in the backup"
        );
        happened += i64::from(attempts > 0);
        queued += i64::from(attempts == 0 && in_queue > 0);
        unfired += i64::from(attempts == 0 && in_queue == 0);
        let mut stmt = c
            .prepare("SELECT attempt FROM executions WHERE job_id = ?1")
            .unwrap();
        let rows = stmt.query_map([id], |r| r.get::<_, u32>(0)).unwrap();
        recorded.extend(rows.map(|a| (id.clone(), a.unwrap())));
    }
    eprintln!("in the backup: {happened} runs begun, {queued} queued, {unfired} not fired yet");
    recorded
}

async fn wait_until_all_succeed(server: &Server, key: &str, ids: &[String]) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut missing = ids.to_vec();
    while !missing.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} runs never succeeded",
            missing.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut still = Vec::new();
        for id in missing {
            let r = client
                .get(format!("{}/api/v1/cron/jobs/{id}", server.base))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            if body["data"]["last_status"] != "success" {
                still.push(id);
            }
        }
        missing = still;
    }
}

#[test]
fn a_restore_is_refused_while_a_server_holds_the_store_and_for_a_file_that_is_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let copy = dir.path().join("copy.db");
    let server = serve(&db, &[]);
    let out = krafter(&["backup", "--to", copy.to_str().unwrap()], &db);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = krafter(&["backup", "--to", copy.to_str().unwrap()], &db);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    let refused = krafter(&["restore", copy.to_str().unwrap()], &db);
    assert!(!refused.status.success());
    let msg = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(msg.contains("stop the server first"), "{msg}");
    drop(server);
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database").unwrap();
    let refused = krafter(&["restore", junk.to_str().unwrap()], &db);
    assert!(!refused.status.success());
    let msg = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        msg.contains("is not a healthy Krafter Cron database"),
        "{msg}"
    );
    let ok = krafter(&["restore", copy.to_str().unwrap()], &db);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// `KRAFTER_LOG_FORMAT=json`: every log line is one JSON object; a run's lines carry its
/// job and run ids at the top, a request's its request id (the client's `x-request-id`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_job_run_and_request_ids() {
    let (url, seen) = counting_receiver(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("KRAFTER_LOG_FORMAT", "json"), ("KRAFTER_LOG", "info")];
    let server = serve(&dir.path().join("k.db"), &env);
    let key = server.bootstrap_key.clone().unwrap();
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/api/v1/cron/jobs", server.base))
        .bearer_auth(&key)
        .json(
            &json!({"name": "logged", "schedule_type": "interval", "schedule": "every_1h",
                      "url": url}),
        )
        .send()
        .await
        .unwrap();
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let job: Value = r.json().await.unwrap();
    let id = job["data"]["id"].as_str().unwrap().to_owned();
    client
        .post(format!("{}/api/v1/cron/jobs/{id}/trigger", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let finished = loop {
        let lines: Vec<Value> = server
            .logs
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
            .collect();
        if let Some(l) = lines.iter().find(|l| l["message"] == "attempt finished") {
            assert!(
                lines
                    .iter()
                    .any(|l| l["span"]["request_id"] == request_id.as_str()),
                "no line of request {request_id}: {lines:#?}"
            );
            break l.clone();
        }
        assert!(Instant::now() < deadline, "no attempt logged: {lines:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(finished["job_id"], id.as_str());
    assert!(finished["run_id"].as_str().is_some() && finished["execution_id"].as_str().is_some());
    assert_eq!(finished["level"], "INFO");
    assert!(seen.lock().unwrap().runs.contains_key(&id));

    // The change is in the audit log, as `krafter audit` reads it beside the running server.
    let audit = krafter(
        &["audit", "--team", "default", "--json"],
        &dir.path().join("k.db"),
    );
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let entries: Vec<Value> = String::from_utf8(audit.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let created = entries
        .iter()
        .find(|e| e["action"] == "job.create")
        .unwrap_or_else(|| panic!("no create in {entries:#?}"));
    assert_eq!(created["request_id"], request_id.as_str());
    assert_eq!(created["job_id"], id.as_str());
    assert_eq!(created["status"], 201);
    assert!(entries.iter().any(|e| e["action"] == "job.trigger"));

    let bad = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("other.db"))
        .env("KRAFTER_LOG_FORMAT", "xml")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&bad.stderr).into_owned();
    assert!(
        msg.contains("KRAFTER_LOG_FORMAT: must be text or json"),
        "{msg}"
    );
}

/// A real Prometheus server scrapes `krafter serve --metrics-bind` while jobs run; the
/// metrics are read back through Prometheus's query API: runs fired, attempts by outcome,
/// the lateness histogram, API requests by route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_runs_attempts_and_lateness() {
    let (url, _seen) = counting_receiver(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("KRAFTER_METRICS_BIND", "127.0.0.1:0"),
        ("KRAFTER_RETRY_BACKOFF_MS", "100"),
    ];
    let server = serve(&dir.path().join("k.db"), &env);
    let metrics = server_metrics_addr(&server);
    let prometheus = krafter_testkit::start_prometheus(&[metrics]);
    let key = server.bootstrap_key.clone().unwrap();
    let client = reqwest::Client::new();
    let create = async |body: Value| -> String {
        let r = client
            .post(format!("{}/api/v1/cron/jobs", server.base))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        v["data"]["id"].as_str().unwrap().to_owned()
    };
    let due =
        chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0) + chrono::Duration::seconds(3);
    let once = |name: &str, url: &str| {
        json!({"name": name, "schedule_type": "once",
               "schedule": due.format("%Y-%m-%dT%H:%M:%SZ").to_string(), "url": url, "max_retries": 0})
    };
    for i in 0..3 {
        create(once(&format!("ok {i}"), &url)).await;
    }
    // A refused connection: a failed attempt.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    create(once("failing", &format!("http://{closed}/"))).await;

    let query = async |q: &str| -> f64 {
        let mut url = url::Url::parse(&format!("{}/api/v1/query", prometheus.url)).unwrap();
        url.query_pairs_mut().append_pair("query", q);
        let r: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        r["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let wanted = [
        ("sum(krafter_runs_fired_total)", 4.0),
        ("sum(krafter_attempts_total{outcome=\"success\"})", 3.0),
        ("sum(krafter_attempts_total{outcome=\"failed\"})", 1.0),
        ("sum(krafter_run_lateness_seconds_count)", 4.0),
        ("sum(krafter_webhook_duration_seconds_count)", 4.0),
        (
            "sum(krafter_api_requests_total{route=\"/jobs\",status=\"201\"})",
            4.0,
        ),
        ("sum(krafter_jobs)", 4.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let mut got = Vec::new();
        for (q, want) in wanted {
            got.push((q, query(q).await, want));
        }
        if got.iter().all(|(_, v, want)| v >= want) {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus never saw: {got:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Lateness is small: every run started within 2 s of its time.
    let within = query("sum(krafter_run_lateness_seconds_bucket{le=\"2.5\"})").await;
    assert!(within >= 4.0, "{within}");
}

/// The address `krafter serve` said it serves metrics at.
fn server_metrics_addr(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = server.logs.lock().unwrap().iter().find_map(|l| {
            l.strip_prefix("krafter: metrics at http://")
                .and_then(|rest| rest.strip_suffix("/metrics"))
                .map(str::to_owned)
        });
        if let Some(addr) = found {
            return addr;
        }
        assert!(
            Instant::now() < deadline,
            "krafter did not say where its metrics are"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `krafter jobs` against a running server: create from flags and from a file, list, get,
/// update, pause with a reason, trigger, executions, upcoming, delete; the API's errors with
/// exit status 1, bad usage with 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_command_drives_the_api() {
    let (url, seen) = counting_receiver(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("k.db"), &[]);
    let key = server.bootstrap_key.clone().unwrap();
    let jobs = |args: &[&str]| {
        Command::new(BIN)
            .arg("jobs")
            .args(args)
            .env("KRAFTER_URL", &server.base)
            .env("KRAFTER_KEY", &key)
            .env("KRAFTER_LOG", "warn")
            .output()
            .unwrap()
    };
    let json_of = |out: &std::process::Output| -> Value {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let created = json_of(&jobs(&[
        "create",
        "--json",
        "--name",
        "cli job",
        "--schedule-type",
        "interval",
        "--schedule",
        "every_1h",
        "--webhook",
        &url,
        "--header",
        "X-Team: blue",
        "--tag",
        "cli",
        "--set",
        "overlap=\"skip\"",
    ]));
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["headers"]["X-Team"], "blue");
    assert_eq!(created["overlap"], "skip");
    let file = dir.path().join("job.json");
    std::fs::write(
        &file,
        json!({"name": "from a file", "schedule_type": "cron",
        "schedule": "0 2 * * *", "timezone": "Europe/Berlin", "url": url})
        .to_string(),
    )
    .unwrap();
    let from_file = json_of(&jobs(&[
        "create",
        "--json",
        "--file",
        file.to_str().unwrap(),
    ]));
    assert_eq!(from_file["timezone"], "Europe/Berlin");

    let listed = json_of(&jobs(&["list", "--json", "--tag", "cli"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let table = jobs(&["list"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.starts_with("ID") && table.contains("cli job") && table.contains("from a file"),
        "{table}"
    );
    let updated = json_of(&jobs(&["update", &id, "--json", "--name", "renamed"]));
    assert_eq!(updated["name"], "renamed");
    let paused = json_of(&jobs(&["pause", &id, "--json", "--reason", "maintenance"]));
    assert_eq!(paused["paused_reason"], "maintenance");
    // A paused job cannot be triggered: the API's error, exit status 1.
    let refused = jobs(&["trigger", &id]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Job is paused (HTTP 409)"));
    json_of(&jobs(&["resume", &id, "--json"]));
    assert!(jobs(&["trigger", &id]).status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let runs = loop {
        let runs = json_of(&jobs(&["executions", &id, "--json"]));
        if !runs.as_array().unwrap().is_empty() {
            break runs;
        }
        assert!(Instant::now() < deadline, "the triggered run never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(runs[0]["status"], "success");
    assert!(seen.lock().unwrap().runs.contains_key(&id));
    let upcoming = json_of(&jobs(&["upcoming", &id, "--count", "3", "--json"]));
    assert_eq!(upcoming.as_array().unwrap().len(), 3);

    let invalid = jobs(&["update", &id, "--timeout-ms", "5"]);
    assert_eq!(invalid.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&invalid.stderr).into_owned();
    assert!(
        msg.contains("Validation failed")
            && msg.contains("timeout_ms: must be between 1000 and 300000"),
        "{msg}"
    );
    assert!(jobs(&["delete", &id]).status.success());
    assert_eq!(jobs(&["get", &id]).status.code(), Some(1));
    assert_eq!(jobs(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        jobs(&["update", &id, "--set", "overlap=skip"])
            .status
            .code(),
        Some(2)
    );
    let help = String::from_utf8(jobs(&["--help"]).stdout).unwrap();
    assert!(help.contains("Examples:"), "{help}");
}

/// A team's jobs move from `krafter serve`'s store to the hosted tables and back, with their
/// ids, schedules and state (a paused job stays paused, with its reason; the schedules
/// follow); importing twice changes nothing; a dry run writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teams_jobs_move_from_sqlite_to_dynamodb_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let (db, back) = (dir.path().join("k.db"), dir.path().join("back.db"));
    let server = serve(&db, &[]);
    let key = server.bootstrap_key.clone().unwrap();
    let client = reqwest::Client::new();
    let (hook, seen) = counting_receiver(Duration::ZERO).await;
    let mut ids = Vec::new();
    for body in [
        json!({"name": "nightly", "schedule_type": "cron", "schedule": "0 2 * * *",
               "timezone": "Europe/Berlin", "url": hook, "tags": ["ops"],
               "overlap": "skip", "jitter_s": 30}),
        json!({"name": "paused", "schedule_type": "interval", "schedule": "every_5m",
               "url": "https://example.com/p"}),
    ] {
        let r = client
            .post(format!("{}/api/v1/cron/jobs", server.base))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        ids.push(v["data"]["id"].as_str().unwrap().to_owned());
    }
    client
        .post(format!("{}/api/v1/cron/jobs/{}/pause", server.base, ids[1]))
        .bearer_auth(&key)
        .json(&json!({"reason": "moving to AWS"}))
        .send()
        .await
        .unwrap();
    drop(server);
    let exported = dir.path().join("export.json");
    let e = exported.to_str().unwrap();
    ok(&krafter(&["export", "--team", "default", "--to", e], &db));
    let original: Value =
        serde_json::from_str(&std::fs::read_to_string(&exported).unwrap()).unwrap();
    assert_eq!(original["jobs"].as_array().unwrap().len(), 2);

    let prefix = krafter_testkit::unique("move");
    let env: Vec<(String, String)> = ok(&krafter_aws(&["aws", "init", "--prefix", &prefix], &[]))
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let into_aws = ["import", e, "--backend", "dynamodb"];
    let first = ok(&krafter_aws(&into_aws, &env));
    assert_eq!(first.matches("create").count(), 2, "{first}");
    let again = ok(&krafter_aws(&into_aws, &env));
    assert_eq!(
        again.matches("unchanged").count(),
        2,
        "imported twice: {again}"
    );

    // What the hosted tables hold is what was exported, and the schedules follow the state.
    let from_aws = dir.path().join("from-aws.json");
    let f = from_aws.to_str().unwrap();
    ok(&krafter_aws(
        &[
            "export",
            "--team",
            "default",
            "--backend",
            "dynamodb",
            "--to",
            f,
        ],
        &env,
    ));
    let hosted: Value = serde_json::from_str(&std::fs::read_to_string(&from_aws).unwrap()).unwrap();
    assert_eq!(hosted["jobs"], original["jobs"]);
    let clients = krafter_testkit::clients().await;
    let group = env
        .iter()
        .find(|(k, _)| *k == "KRAFTER_SCHEDULE_GROUP")
        .unwrap()
        .1;
    let schedule = |id: &str| {
        let name =
            krafter_shared::adapters::eventbridge::schedule_names(id.parse().unwrap())[0].clone();
        let c = clients.scheduler.clone();
        async move { c.get_schedule().group_name(group).name(name).send().await }
    };
    let nightly = schedule(&ids[0]).await.unwrap();
    assert_eq!(nightly.schedule_expression(), Some("cron(0 2 * * ? *)"));
    assert_eq!(
        nightly.schedule_expression_timezone(),
        Some("Europe/Berlin")
    );
    let paused = schedule(&ids[1]).await.unwrap();
    assert_eq!(paused.state().map(|s| s.as_str()), Some("DISABLED"));
    // The imported job fires in the hosted path: its schedule, fired as EventBridge would at
    // its latest time, runs through the executor and reaches the webhook.
    fire_through_the_hosted_executor(&clients, &env, group).await;
    let runs = seen.lock().unwrap().runs.clone();
    assert_eq!(
        runs.keys().collect::<Vec<_>>(),
        [&ids[0]],
        "only the enabled job fired"
    );

    // And back, into a fresh store: a dry run first.
    let dry = ok(&krafter(&["import", f, "--dry-run"], &back));
    assert_eq!(dry.matches("create").count(), 2, "{dry}");
    let empty = ok(&krafter(&["export", "--team", "default"], &back));
    assert_eq!(
        serde_json::from_str::<Value>(&empty).unwrap()["jobs"],
        json!([])
    );
    ok(&krafter(&["import", f], &back));
    let round = ok(&krafter(&["export", "--team", "default"], &back));
    assert_eq!(
        serde_json::from_str::<Value>(&round).unwrap()["jobs"],
        original["jobs"]
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"format": "something/1", "team": "x", "jobs": []}"#,
    )
    .unwrap();
    let refused = krafter(&["import", bad.to_str().unwrap()], &back);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a Krafter Cron export"));
}

/// Fires `group`'s schedules due in the next 24 hours into the run queue (as EventBridge
/// will) and hands the queued runs to the hosted executor (as Lambda's SQS source would),
/// whose clock is set past them (the webhook itself is called for real).
async fn fire_through_the_hosted_executor(
    clients: &krafter_shared::hosted::AwsClients,
    env: &[(&str, &str)],
    group: &str,
) {
    use krafter_shared::{hosted, settings, targets};
    let resources = hosted::process_env_from(env).resources().unwrap();
    let settings = settings::Settings {
        target_policy: targets::TargetPolicy::AllowPrivate, // the webhook is on loopback
        ..settings::Settings::defaults(settings::Mode::Hosted)
    };
    let now = chrono::Utc::now();
    let day = chrono::Duration::hours(24);
    let later = Arc::new(krafter_testkit::TestClock::new(
        now + day + chrono::Duration::hours(1),
    ));
    let hosted = hosted::Hosted::with_clock(clients.clone(), resources.clone(), settings, later);
    let handler = Arc::new(hosted.run_handler().unwrap());
    let fired = krafter_ops::local::fire_due_schedules(clients, group, now, now + day)
        .await
        .unwrap();
    assert_eq!(fired, 1, "one enabled schedule, due once a day");
    let app = axum::Router::new().route(
        "/invoke",
        axum::routing::post(move |axum::Json(event)| {
            let handler = handler.clone();
            async move { axum::Json(hosted::handle_sqs_event(&handler, event).await) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let invoke = format!("http://{}/invoke", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (queue, arn) = (&resources.run_queue_url, &resources.run_queue_arn);
    let http = reqwest::Client::new();
    let delivered = krafter_ops::local::deliver_queued(clients, queue, arn, &invoke, &http)
        .await
        .unwrap();
    assert_eq!(delivered, (1, 0), "one run delivered, none failed");
}

/// `krafter import-crontab`: curl and wget lines become jobs through the API's rules; every
/// line it cannot convert is listed with the reason; a dry run creates nothing.
#[test]
fn a_crontab_of_curl_and_wget_lines_becomes_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let tab = dir.path().join("crontab");
    std::fs::write(
        &tab,
        "MAILTO=ops@example.com\n\
         CRON_TZ=Europe/Berlin\n\
         30 6 * * 1-5 curl -fsS -X POST -H 'X-Token: t' -d '{\"go\":1}' https://example.com/morning >/dev/null 2>&1\n\
         @daily wget -q -O- --timeout=20 https://example.com/daily\n\
         0 * * * * /usr/local/bin/cleanup.sh\n\
         0 * * * * curl -m 0.1 https://example.com/too-quick\n",
    )
    .unwrap();
    let t = tab.to_str().unwrap();
    let dry = ok(&krafter(
        &["import-crontab", t, "--team", "ops", "--dry-run"],
        &db,
    ));
    for want in [
        "line 1: skipped: the variable MAILTO has no equivalent in a job",
        "line 3: create 30 6 * * 1-5 (Europe/Berlin) POST https://example.com/morning",
        "line 4: create @daily (Europe/Berlin) GET https://example.com/daily",
        "line 5: skipped: the command is cleanup.sh, not curl or wget",
        "line 6: skipped: timeout_ms must be between 1000 and 300000",
    ] {
        assert!(dry.contains(want), "{want:?} not in:\n{dry}");
    }
    let none = ok(&krafter(&["export", "--team", "ops"], &db));
    assert_eq!(
        serde_json::from_str::<Value>(&none).unwrap()["jobs"],
        json!([])
    );

    ok(&krafter(&["import-crontab", t, "--team", "ops"], &db));
    let jobs = ok(&krafter(&["export", "--team", "ops"], &db));
    let jobs: Value = serde_json::from_str(&jobs).unwrap();
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    let morning = jobs
        .iter()
        .find(|j| j["url"] == "https://example.com/morning")
        .unwrap();
    assert_eq!(morning["schedule"], "30 6 * * 1-5");
    assert_eq!(morning["timezone"], "Europe/Berlin");
    assert_eq!(morning["method"], "POST");
    assert_eq!(morning["body"], "{\"go\":1}");
    assert_eq!(morning["headers"], json!([["X-Token", "t"]]));
    let daily = jobs
        .iter()
        .find(|j| j["url"] == "https://example.com/daily")
        .unwrap();
    assert_eq!(daily["schedule"], "@daily");
    assert_eq!(daily["timeout_ms"], 20_000);
}

/// A crontab of 26 varied lines (`tests/fixtures/crontab.sample`): the plan is the reviewed
/// one (`crontab.sample.plan`), and the jobs made carry each line's request.
#[test]
fn a_varied_crontab_is_planned_line_by_line_and_its_jobs_carry_each_request() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let tab = format!("{fixtures}/crontab.sample");
    let plan = std::fs::read_to_string(format!("{fixtures}/crontab.sample.plan")).unwrap();
    let dry = krafter(&["import-crontab", &tab, "--team", "ops", "--dry-run"], &db);
    assert_eq!(String::from_utf8_lossy(&dry.stdout), plan);
    let summary = String::from_utf8_lossy(&dry.stderr);
    assert!(
        summary.contains("12 jobs for team ops, 11 lines not converted"),
        "{summary}"
    );

    ok(&krafter(&["import-crontab", &tab, "--team", "ops"], &db));
    let export: Value =
        serde_json::from_str(&ok(&krafter(&["export", "--team", "ops"], &db))).unwrap();
    let jobs = export["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 12);
    let by_url = |url: &str| jobs.iter().find(|j| j["url"] == url).unwrap().clone();
    let reports = by_url("https://api.example.com/reports");
    assert_eq!(reports["timezone"], "Europe/Berlin");
    assert_eq!(reports["body"], "{\"report\":\"morning\"}");
    assert_eq!(
        reports["headers"],
        json!([["Content-Type", "application/json"], ["X-Token", "s3cr3t"]])
    );
    let hourly = by_url("https://example.com/hourly");
    assert_eq!(hourly["headers"], json!([["Authorization", "Bearer abc"]]));
    assert_eq!(
        by_url("https://backup.example.com/weekly")["timeout_ms"],
        120_000
    );
    let nightly = by_url("https://example.com/nightly");
    assert_eq!(
        (nightly["timeout_ms"].clone(), nightly["timezone"].clone()),
        (json!(5000), json!("America/New_York"))
    );
    assert_eq!(by_url("https://example.com/head-check")["method"], "HEAD");
    let basic = by_url("https://example.com/new-year")["headers"].clone();
    assert_eq!(basic, json!([["Authorization", "Basic dXNlcjpwYXNz"]]));
    assert_eq!(by_url("https://example.com/form")["body"], "x=1");
}
