//! The hosted executor on moto: SQS batches of 10 runs, each making its webhook call (10 at
//! once) against the sink, timed around the Lambda handler; with every AWS request it makes
//! counted, for the cost per million runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{DateTime, SubsecRound, Utc};
use krafter_shared::adapters::eventbridge::schedule_names;
use krafter_shared::domain::{JobId, Scope, Scopes, TeamId, time};
use krafter_shared::embedded::create_key;
use krafter_shared::hosted::{AwsClients, Hosted, HostedResources, handle_sqs_event};
use krafter_shared::ports::Clock;
use krafter_shared::settings::{Mode, Settings as CoreSettings};
use krafter_shared::targets::TargetPolicy;
use krafter_testkit::TestClock;
use serde_json::{Value, json};

use crate::Settings;
use crate::sink::Sink;
use crate::stats::{Summary, ms};

/// AWS requests sent, by service and operation (every attempt: what AWS bills).
#[derive(Clone, Debug, Default)]
struct Counter(Arc<Mutex<BTreeMap<String, usize>>>);

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "bench-request-counter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg
            .load::<Metadata>()
            .map(|m| format!("{} {}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown".into());
        let body = context
            .request()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice::<Value>(b).ok())
            .unwrap_or_default();
        let mut counts = self.0.lock().unwrap();
        if op.ends_with("TransactWriteItems") {
            // Billed per item (two write units each): count the items too.
            let items = body["TransactItems"]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            *counts.entry(format!("{op} items")).or_default() += items.len();
        }
        *counts.entry(op).or_default() += 1;
        Ok(())
    }
}

impl Counter {
    fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// List prices, us-east-1, arm64 (the template's architecture), as published when written.
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
const SQS_REQUEST: f64 = 0.40 / 1e6;
const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
const SCHEDULER_INVOCATION: f64 = 1.00 / 1e6;
/// The executor's MemorySize in template.yaml (Globals).
const EXECUTOR_GB: f64 = 0.25;

struct World {
    clients: AwsClients,
    resources: HostedResources,
    counter: Counter,
}

impl World {
    /// Fires a job's schedule at `at` as EventBridge Scheduler does: its target input, with
    /// the scheduled time filled in, sent to the run queue.
    async fn fire(&self, job: &str, at: DateTime<Utc>) {
        let id: JobId = job.parse().unwrap();
        let schedule = self
            .clients
            .scheduler
            .get_schedule()
            .group_name(&self.resources.schedule_group)
            .name(&schedule_names(id)[0])
            .send()
            .await
            .expect("the job has a schedule");
        let input = schedule
            .target
            .and_then(|t| t.input)
            .expect("a target input")
            .replace("<aws.scheduler.scheduled-time>", &time::format(at));
        self.clients
            .sqs
            .send_message()
            .queue_url(&self.resources.run_queue_url)
            .message_body(input)
            .send()
            .await
            .unwrap();
    }

    /// Up to `n` messages from the run queue, as the SQS event Lambda would get, with their
    /// receipt handles.
    async fn receive(&self, n: usize) -> (Value, Vec<String>) {
        let mut records = Vec::new();
        let mut handles = Vec::new();
        for _ in 0..20 {
            if records.len() >= n {
                break;
            }
            let out = self
                .clients
                .sqs
                .receive_message()
                .queue_url(&self.resources.run_queue_url)
                .max_number_of_messages((n - records.len()) as i32)
                .send()
                .await
                .unwrap();
            for m in out.messages.unwrap_or_default() {
                handles.push(m.receipt_handle.clone().unwrap());
                records.push(json!({
                    "messageId": m.message_id, "receiptHandle": m.receipt_handle,
                    "body": m.body, "eventSource": "aws:sqs",
                    "eventSourceARN": self.resources.run_queue_arn, "awsRegion": "us-east-1",
                    "attributes": {}, "messageAttributes": {},
                }));
            }
        }
        (json!({ "Records": records }), handles)
    }

    async fn delete(&self, handles: Vec<String>) {
        for h in handles {
            self.clients
                .sqs
                .delete_message()
                .queue_url(&self.resources.run_queue_url)
                .receipt_handle(h)
                .send()
                .await
                .unwrap();
        }
    }
}

struct Variant {
    delay_ms: u64,
    first: Duration,
    durations: Summary,
    requests_per_run: BTreeMap<String, f64>,
}

pub async fn run(settings: &Settings, sink: &Sink) -> String {
    eprintln!("hosted: the executor on moto, batches of 10");
    let moto = tokio::task::spawn_blocking(krafter_testkit::start_moto)
        .await
        .unwrap();
    let config = krafter_testkit::sdk_config(&moto.url).await;
    let counter = Counter::default();
    let clients = AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        ),
        sqs: aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        ),
        scheduler: aws_sdk_scheduler::Client::from_conf(
            aws_sdk_scheduler::config::Builder::from(&config)
                .interceptor(counter.clone())
                .build(),
        ),
    };
    let resources = krafter_ops::provision::provision(&clients, "bench")
        .await
        .expect("create the hosted resources on moto");
    // The service's clock, moved a minute per batch: each batch is the next run of its jobs
    // (`* * * * *`), due when it is handled, as when EventBridge Scheduler fires on time.
    let clock = Arc::new(TestClock::new(Utc::now().trunc_subsecs(0)));
    let hosted = Hosted::with_clock(
        clients.clone(),
        resources.clone(),
        CoreSettings {
            rate_limit: 1_000_000_000,
            max_jobs_per_team: 1_000_000,
            // The sink is on loopback.
            target_policy: TargetPolicy::AllowPrivate,
            ..CoreSettings::defaults(Mode::Hosted)
        },
        clock.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/v1/cron", listener.local_addr().unwrap());
    let app = hosted
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (key, _) = create_key(
        hosted.keys.as_ref(),
        TeamId::parse("bench").unwrap(),
        Scopes::new(vec![Scope::Write]),
        None,
        Utc::now(),
    )
    .await
    .unwrap();
    let handler = hosted.run_handler().unwrap();
    let world = World {
        clients,
        resources,
        counter,
    };
    let http = reqwest::Client::new();
    let mut variants = Vec::new();
    for delay_ms in [0, 100] {
        let mut jobs = Vec::new();
        for i in 0..10 {
            let r = http
                .post(format!("{base}/jobs"))
                .bearer_auth(key.as_str())
                .json(
                    &json!({"name": format!("hosted {i}"), "schedule_type": "cron",
                    "schedule": "* * * * *", "method": "POST", "body": "{\"hello\":\"bench\"}",
                    "url": format!("{}/hosted/{delay_ms}/{i}?delay_ms={delay_ms}", sink.base)}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "create a hosted job");
            let v: Value = r.json().await.unwrap();
            jobs.push(v["data"]["id"].as_str().unwrap().to_owned());
        }
        // The jobs' first run: the next minute after their creation.
        let now = clock.now();
        let start = now.trunc_subsecs(0) - chrono::Duration::seconds(now.timestamp() % 60)
            + chrono::Duration::minutes(1);
        let mut durations = Vec::new();
        let mut first = Duration::ZERO;
        let mut totals: BTreeMap<String, usize> = BTreeMap::new();
        let prefix = format!("/hosted/{delay_ms}/");
        for b in 0..=settings.hosted_batches {
            let at = start + chrono::Duration::minutes(b as i64);
            clock.set(at);
            for job in &jobs {
                world.fire(job, at).await;
            }
            let (event, handles) = world.receive(10).await;
            assert_eq!(handles.len(), 10, "a batch of 10 on the queue");
            let event = serde_json::from_value(event).unwrap();
            let mark = sink.mark();
            world.counter.take();
            let t = Instant::now();
            let response = handle_sqs_event(&handler, event).await;
            let took = t.elapsed();
            let requests = world.counter.take();
            assert!(
                response.batch_item_failures.is_empty(),
                "the executor reported failures"
            );
            assert_eq!(sink.count_since(mark, &prefix), 10, "10 webhook calls");
            world.delete(handles).await;
            if b == 0 {
                // The first batch also opens connections and reads the team's secret.
                first = took;
                continue;
            }
            durations.push(took.as_secs_f64() * 1000.0);
            for (op, n) in requests {
                *totals.entry(op).or_default() += n;
            }
        }
        let runs = (settings.hosted_batches * 10) as f64;
        variants.push(Variant {
            delay_ms,
            first,
            durations: Summary::new(durations),
            requests_per_run: totals
                .into_iter()
                .map(|(op, n)| (op, n as f64 / runs))
                .collect(),
        });
    }
    let hook = format!("{}/control", sink.base);
    let control = control_plane(
        &hosted,
        &world,
        &moto.url,
        &http,
        &base,
        key.as_str(),
        &hook,
    )
    .await;
    let sizes = ItemSizes {
        execution: world.largest_item(&world.resources.tables.executions).await,
        job: world.largest_item(&world.resources.tables.jobs).await,
    };
    drop(moto);
    let mut out = table(&variants, settings.hosted_batches, &sizes);
    out.push_str(&control.table());
    out
}

/// The largest items the runs left, in DynamoDB's item size (what a write unit's 1 KB
/// counts): the check on the cost table's "items ≤ 1 KB".
struct ItemSizes {
    execution: usize,
    job: usize,
}

impl World {
    async fn largest_item(&self, table: &str) -> usize {
        let mut largest = 0;
        let mut start = None;
        loop {
            let out = self
                .clients
                .dynamodb
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            for item in out.items() {
                largest = largest.max(item_size(item));
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return largest,
            }
        }
    }
}

/// DynamoDB's size of an item: each attribute's name and value.
fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        // Numbers: about one byte per two significant digits, plus one.
        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        _ => 1,
    }
}

/// Scheduler calls of the control plane, counted on the SDK client.
struct ControlPlane {
    jobs: usize,
    sweep_calls: usize,
    converged_sweep_calls: usize,
    inline_per_change: usize,
    stream_per_change: usize,
    stream_per_run_end: usize,
    period_hours: f64,
    calls_per_sec: u32,
}

fn scheduler_calls(counts: &BTreeMap<String, usize>) -> usize {
    counts
        .iter()
        .filter(|(op, _)| op.starts_with("Scheduler "))
        .map(|(_, n)| n)
        .sum()
}

/// Every record on the jobs stream so far (batches of at most 100) through the sync function;
/// returns the Scheduler calls it made.
async fn sync_stream(
    world: &World,
    sync: &krafter_shared::hosted::SyncHandler,
    stream: &mut krafter_ops::streams::StreamSource,
) -> usize {
    world.counter.take();
    loop {
        let batches = stream.read().await.unwrap();
        if batches.is_empty() {
            break;
        }
        for batch in batches {
            let event = serde_json::from_value(batch.event).unwrap();
            krafter_shared::hosted::handle_dynamodb_event(sync, event, Utc::now()).await;
        }
    }
    scheduler_calls(&world.counter.take())
}

/// Jobs made, one sweep run over them (and a second, converged), one change followed through
/// the inline and the stream sync, and a run's end through the stream.
async fn control_plane(
    hosted: &Hosted,
    world: &World,
    moto: &str,
    http: &reqwest::Client,
    base: &str,
    key: &str,
    hook: &str,
) -> ControlPlane {
    eprintln!("hosted: the control plane's Scheduler calls");
    let mut stream = krafter_ops::streams::StreamSource::open(moto, &world.resources.tables.jobs)
        .await
        .unwrap();
    let sync = hosted.sync_handler();
    let mut ids = Vec::new();
    for i in 0..100 {
        let r = http
            .post(format!("{base}/jobs"))
            .bearer_auth(key)
            .json(
                &json!({"name": format!("sweep {i}"), "schedule_type": "cron",
                "schedule": "0 * * * *", "url": hook}),
            )
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        ids.push(v["data"]["id"].as_str().unwrap().to_owned());
    }
    sync_stream(world, &sync, &mut stream).await;
    let jobs = hosted
        .jobs
        .count(&TeamId::parse("bench").unwrap())
        .await
        .unwrap() as usize;
    world.counter.take();
    // The first sweep of the deployment also lists the schedules (one in seven does).
    hosted.reconcile_all().await.unwrap();
    let sweep_calls = scheduler_calls(&world.counter.take());
    hosted.reconcile_all().await.unwrap();
    let converged_sweep_calls = scheduler_calls(&world.counter.take());
    let r = http
        .patch(format!("{base}/jobs/{}", ids[0]))
        .bearer_auth(key)
        .json(&json!({"schedule": "30 * * * *"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the change");
    let inline_per_change = scheduler_calls(&world.counter.take());
    let stream_per_change = sync_stream(world, &sync, &mut stream).await;
    let r = http
        .post(format!("{base}/jobs/{}/trigger", ids[1]))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "the trigger");
    sync_stream(world, &sync, &mut stream).await;
    let handler = hosted.run_handler().unwrap();
    let (event, handles) = world.receive(1).await;
    handle_sqs_event(&handler, serde_json::from_value(event).unwrap()).await;
    world.delete(handles).await;
    let stream_per_run_end = sync_stream(world, &sync, &mut stream).await;
    ControlPlane {
        jobs,
        sweep_calls,
        converged_sweep_calls,
        inline_per_change,
        stream_per_change,
        stream_per_run_end,
        period_hours: hosted.settings.sweep_period.as_secs_f64() / 3600.0,
        calls_per_sec: hosted.settings.sweep_calls_per_sec,
    }
}

impl ControlPlane {
    fn table(&self) -> String {
        let every = krafter_shared::hosted::ORPHAN_SWEEP_EVERY as f64;
        let per_job_sweep = self.converged_sweep_calls as f64 / self.jobs as f64;
        let per_job_listing = self.sweep_calls as f64 / self.jobs as f64;
        let per_sweep = ((every - 1.0) * per_job_sweep + per_job_listing) / every;
        let per_day = per_sweep * 24.0 / self.period_hours;
        let million_hours = 1e6 * per_sweep / f64::from(self.calls_per_sec) / 3600.0;
        let rows = [
            (
                "before: the full reconcile, every 5 minutes (one `GetSchedule` per schedule)"
                    .to_owned(),
                "288 per job per day".to_owned(),
            ),
            (
                format!("a sweep that repaired nothing ({} jobs)", self.jobs),
                format!(
                    "{} ({per_job_sweep:.2} per job)",
                    self.converged_sweep_calls
                ),
            ),
            (
                format!("a sweep that also lists the schedules (one in {every})"),
                format!("{} ({per_job_listing:.2} per job)", self.sweep_calls),
            ),
            (
                "**after, at steady state: the sweep**".to_owned(),
                format!("**{per_day:.2} per job per day**"),
            ),
            (
                "a run (tick, attempt, its end on the job; the stream sync skips it)".to_owned(),
                self.stream_per_run_end.to_string(),
            ),
            (
                "a schedule change: the API's inline sync".to_owned(),
                self.inline_per_change.to_string(),
            ),
            (
                "a schedule change: the stream sync after it".to_owned(),
                self.stream_per_change.to_string(),
            ),
        ];
        let mut t = format!(
            "\n### Hosted: the control plane's Scheduler calls (counted on the SDK client, moto)\n\n\
             {} jobs (one schedule each) on the deployment's defaults: a sweep every {} h at \
             most {} calls/s.\n\n| what | Scheduler calls |\n|---|---|\n",
            self.jobs, self.period_hours, self.calls_per_sec
        );
        for (what, calls) in rows {
            t.push_str(&format!("| {what} | {calls} |\n"));
        }
        t.push_str(&format!(
            "\nA sweep of 1,000,000 jobs at {} calls/s takes {million_hours:.1} h; past the \
             period, the next one starts when it ends (fewer calls per job per day, never \
             more).\n",
            self.calls_per_sec
        ));
        t
    }
}

fn table(variants: &[Variant], batches: usize, sizes: &ItemSizes) -> String {
    let mut t = format!(
        "## Hosted: the executor handling an SQS batch of 10 (moto on 127.0.0.1), \
         {batches} batches after a first one\n\n\
         | webhook answers in | first batch | batch p50 | p90 | max |\n|---|---|---|---|---|\n"
    );
    for v in variants {
        t.push_str(&format!(
            "| {} ms | {} | {} | {} | {} |\n",
            v.delay_ms,
            ms(v.first.as_secs_f64() * 1000.0),
            ms(v.durations.pct(0.5)),
            ms(v.durations.pct(0.9)),
            ms(v.durations.max())
        ));
    }
    let v = &variants[0];
    t.push_str("\nAWS requests the executor makes per run (counted on the SDK clients):\n\n");
    t.push_str("| request | per run |\n|---|---|\n");
    for (op, n) in &v.requests_per_run {
        t.push_str(&format!("| {op} | {n:.2} |\n"));
    }
    let per = |prefix: &str, ops: &[&str]| -> f64 {
        v.requests_per_run
            .iter()
            .filter(|(op, _)| op.starts_with(prefix) && ops.iter().any(|o| op.ends_with(o)))
            .map(|(_, n)| n)
            .sum()
    };
    // A transactional write costs two write units per item.
    let writes = per(
        "DynamoDB",
        &["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"],
    ) + 2.0 * per("DynamoDB", &["TransactWriteItems items"]);
    let reads = per("DynamoDB", &["GetItem", "Query", "Scan", "BatchGetItem"]);
    let executor_sqs: f64 = per(
        "SQS",
        &["SendMessage", "SendMessageBatch", "ChangeMessageVisibility"],
    );
    let mut cost = String::from(
        "\nCost per million runs on AWS, from these figures (us-east-1 list prices, arm64, \
         256 MB executor, its duration on moto: slower than DynamoDB, so an upper bound; free \
         tiers ignored; items ≤ 1 KB: a write is one write unit, a transactional item two, a \
         read one read unit):\n\n\
         | webhook answers in | Lambda GB-s | Lambda requests | SQS | DynamoDB | Scheduler | total |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for v in variants {
        let batch_s = v.durations.pct(0.5) / 1000.0;
        let lambda_gbs = 1e6 / 10.0 * batch_s * EXECUTOR_GB * LAMBDA_GB_SECOND;
        let lambda_req = 1e6 / 10.0 * LAMBDA_REQUEST;
        // Scheduler's SendMessage, and the event source mapping's receive and delete (per
        // batch of 10), and the executor's own.
        let sqs = 1e6 * (1.0 + 0.1 + 0.1 + executor_sqs) * SQS_REQUEST;
        let dynamo = 1e6 * (writes * DYNAMODB_WRITE_UNIT + reads * DYNAMODB_READ_UNIT);
        let scheduler = 1e6 * SCHEDULER_INVOCATION;
        cost.push_str(&format!(
            "| {} ms | ${lambda_gbs:.2} | ${lambda_req:.2} | ${sqs:.2} | ${dynamo:.2} | \
             ${scheduler:.2} | **${:.2}** |\n",
            v.delay_ms,
            lambda_gbs + lambda_req + sqs + dynamo + scheduler
        ));
    }
    t.push_str(&format!(
        "\nPer run: {writes:.2} DynamoDB write units, {reads:.2} read units, 1 Scheduler \
         invocation (its tick), {:.2} SQS requests.\n",
        1.2 + executor_sqs
    ));
    t.push_str(&cost);
    t.push_str(&format!(
        "\nThe largest items the runs left: an execution {} bytes, a job {} bytes (a write unit \
         covers 1,024).\n",
        sizes.execution, sizes.job
    ));
    t
}
