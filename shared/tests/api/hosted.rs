//! The hosted path end to end, on a moto server the tests start: the API router on the
//! DynamoDB / EventBridge Scheduler / SQS adapters, served on port 0; schedules fired into
//! SQS as EventBridge would (moto never fires them); the executor's SQS handler calling a
//! real local webhook receiver; everything read back through the API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_scheduler::types::{FlexibleTimeWindowMode, ScheduleState};
use chrono::{DateTime, SubsecRound, Utc};
use krafter_ops::streams::StreamSource;
use krafter_shared::adapters::eventbridge::schedule_names;
use krafter_shared::domain::{JobId, RunId, Scope, Scopes, TeamId, time};
use krafter_shared::hosted::{
    AwsClients, Hosted, HostedResources, RunHandler, SyncHandler, SyncReport,
    handle_dynamodb_event, handle_sqs_event,
};
use krafter_shared::ports::Clock;
use krafter_shared::schedule::validate_eventbridge_expression;
use krafter_shared::service::create_key;
use krafter_shared::settings::{Mode, Settings};
use krafter_shared::targets::{PRIVATE_TARGET, TargetPolicy};
use krafter_testkit::TestClock;
use serde_json::{Value, json};

use crate::helpers::{Receiver, Scripted, TestApp};

/// One hosted deployment on fresh emulator resources, with the API served on port 0.
struct World {
    api: TestApp,
    /// The deployment as an operator's tools see it (keys, setup): calls not recorded.
    hosted: Hosted,
    /// The reconcile function (its calls recorded, `krafter_testkit::iam`).
    reconciler: Hosted,
    handler: RunHandler,
    /// The sync function's handler, and the jobs table's stream it is fed from.
    sync: SyncHandler,
    stream: tokio::sync::Mutex<StreamSource>,
    clock: Arc<TestClock>,
    clients: AwsClients,
    resources: HostedResources,
    receiver: Receiver,
}

fn settings() -> Settings {
    Settings {
        rate_limit: 10_000,
        retry_backoff: Duration::from_secs(1),
        // The receiver is on loopback; `private_targets_are_refused_by_default` covers the
        // hosted default.
        target_policy: TargetPolicy::AllowPrivate,
        // Unpaced in effect: `the_sweep_reads_each_schedule_once_per_period_in_paced_slices`
        // covers the pace.
        sweep_calls_per_sec: 10_000,
        ..Settings::defaults(Mode::Hosted)
    }
}

/// One function of the deployment, on clients that record its AWS calls under its logical
/// id in the template (`krafter_testkit::iam`), so its policy can be checked against them.
async fn function(
    name: &str,
    resources: &HostedResources,
    settings: &Settings,
    clock: &Arc<TestClock>,
) -> Hosted {
    let config = krafter_testkit::sdk_config(krafter_testkit::moto()).await;
    let recorder = krafter_testkit::iam::Recorder::new(name, resources);
    let clients = krafter_testkit::iam::recording_clients(&config, &recorder);
    Hosted::with_clock(clients, resources.clone(), settings.clone(), clock.clone())
}

async fn serve(hosted: &Hosted) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = hosted
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

impl World {
    async fn start() -> Self {
        Self::start_with(settings()).await
    }

    async fn start_with(settings: Settings) -> Self {
        let clients = krafter_testkit::clients().await;
        let resources = krafter_testkit::provision(&clients).await;
        let clock = Arc::new(TestClock::new(Utc::now().trunc_subsecs(0)));
        let hosted = Hosted::with_clock(
            clients.clone(),
            resources.clone(),
            settings.clone(),
            clock.clone(),
        );
        let api_function = function("ApiFunction", &resources, &settings, &clock).await;
        let base = serve(&api_function).await;
        let (key, _) = create_key(
            hosted.keys.as_ref(),
            TeamId::parse("alpha").unwrap(),
            Scopes::new(vec![Scope::Write]),
            None,
            Utc::now(),
        )
        .await
        .unwrap();
        let executor = function("ExecutorFunction", &resources, &settings, &clock).await;
        let handler = executor.run_handler().unwrap();
        let reconciler = function("ReconcileFunction", &resources, &settings, &clock).await;
        let sync = function("SyncFunction", &resources, &settings, &clock)
            .await
            .sync_handler();
        let stream = StreamSource::open(krafter_testkit::moto(), &resources.tables.jobs)
            .await
            .expect("the jobs table's stream");
        Self {
            api: TestApp {
                base,
                client: reqwest::Client::new(),
                key: key.as_str().to_owned(),
                app: None,
                dir: tempfile::tempdir().unwrap(),
            },
            hosted,
            reconciler,
            handler,
            sync,
            stream: tokio::sync::Mutex::new(stream),
            clock,
            clients,
            resources,
            receiver: Receiver::start().await,
        }
    }

    fn job_body(&self, schedule_type: &str, schedule: &str, path: &str) -> Value {
        json!({
            "name": "hosted",
            "schedule_type": schedule_type,
            "schedule": schedule,
            "timezone": "Europe/Berlin",
            "url": self.receiver.url(path),
            "method": "POST",
            "body": "{\"hello\":\"hosted\"}",
            "max_retries": 3,
        })
    }

    /// Creates a job through the API; returns it and its id.
    async fn create(&self, schedule_type: &str, schedule: &str, path: &str) -> (Value, String) {
        let job = self
            .api
            .create_job(self.job_body(schedule_type, schedule, path))
            .await;
        let id = job["id"].as_str().unwrap().to_owned();
        (job, id)
    }

    /// The job's `n`th EventBridge schedule as it is in the emulator, if it exists.
    async fn schedule_of(
        &self,
        job_id: &str,
        n: usize,
    ) -> Option<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
        self.schedule(&schedule_names(job_id.parse().unwrap())[n])
            .await
    }

    async fn schedule(
        &self,
        name: &str,
    ) -> Option<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
        self.clients
            .scheduler
            .get_schedule()
            .group_name(&self.resources.schedule_group)
            .name(name)
            .send()
            .await
            .ok()
    }

    /// Fires a job's schedule at `at` as EventBridge Scheduler would: its target input, with
    /// the scheduled time filled in, sent to its target queue.
    async fn fire(&self, job_id: &str, at: DateTime<Utc>) {
        let id: JobId = job_id.parse().unwrap();
        let schedule = self
            .schedule(&schedule_names(id)[0])
            .await
            .expect("the job has a schedule");
        let target = schedule.target.expect("a target");
        assert_eq!(target.arn, self.resources.run_queue_arn);
        let input = target
            .input
            .expect("an input")
            .replace("<aws.scheduler.scheduled-time>", &time::format(at));
        self.send(input).await;
    }

    /// The job's schedule fires on time at `at` (the clock set to it), and the executor
    /// handles what the queue then holds.
    async fn fire_on_time(&self, job_id: &str, at: DateTime<Utc>) {
        self.clock.set(at);
        self.fire(job_id, at).await;
        self.deliver().await;
    }

    /// Puts a message body on the run queue.
    async fn send(&self, body: impl Into<String>) {
        self.clients
            .sqs
            .send_message()
            .queue_url(&self.resources.run_queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// What is on the run queue now (up to 10 messages), as the event Lambda would get.
    async fn receive(&self) -> (SqsEvent, Vec<(String, String)>) {
        let out = self
            .clients
            .sqs
            .receive_message()
            .queue_url(&self.resources.run_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.resources.run_queue_arn,
                    "awsRegion": "us-east-1",
                    "attributes": {},
                    "messageAttributes": {},
                })
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
        let handles = messages
            .iter()
            .map(|m| {
                (
                    m.message_id.clone().unwrap(),
                    m.receipt_handle.clone().unwrap(),
                )
            })
            .collect();
        (event, handles)
    }

    /// Hands the queue's messages to the executor's SQS handler, then deletes the ones it
    /// did not report as failed, as Lambda's event source mapping does.
    async fn deliver_event(
        &self,
        event: SqsEvent,
        handles: &[(String, String)],
    ) -> SqsBatchResponse {
        let response = handle_sqs_event(&self.handler, event).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        for (id, handle) in handles {
            if !failed.contains(id) {
                self.delete(handle).await;
            }
        }
        response
    }

    async fn deliver(&self) -> (usize, SqsBatchResponse) {
        let (event, handles) = self.receive().await;
        let n = event.records.len();
        (n, self.deliver_event(event, &handles).await)
    }

    /// An executor whose AWS calls meet `fault` (recorded like the executor's own).
    async fn executor_with(&self, fault: krafter_testkit::iam::Fault) -> RunHandler {
        let config = krafter_testkit::sdk_config(krafter_testkit::moto()).await;
        let recorder = krafter_testkit::iam::Recorder::new("ExecutorFunction", &self.resources);
        let clients =
            krafter_testkit::iam::recording_clients_failing(&config, &recorder, Some(fault));
        let hosted = Hosted::with_clock(
            clients,
            self.resources.clone(),
            settings(),
            self.clock.clone(),
        );
        hosted.run_handler().unwrap()
    }

    /// Hands the queue's messages to `handler`, deletes the ones it did not report as
    /// failed, and makes the failed ones visible again at once (SQS would after the queue's
    /// visibility timeout). Returns how many it got and how many failed.
    async fn deliver_through(&self, handler: &RunHandler) -> (usize, usize) {
        let (event, handles) = self.receive().await;
        let n = event.records.len();
        let response = handle_sqs_event(handler, event).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        for (id, handle) in &handles {
            if failed.contains(id) {
                self.clients
                    .sqs
                    .change_message_visibility()
                    .queue_url(&self.resources.run_queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            } else {
                self.delete(handle).await;
            }
        }
        (n, failed.len())
    }

    /// Delivers through the healthy executor until `path` has had `n` requests (or ten
    /// seconds passed); returns the attempt numbers it was sent, in order.
    async fn attempts_sent_once_there_are(&self, path: &str, n: usize) -> Vec<String> {
        for _ in 0..40 {
            self.deliver_through(&self.handler).await;
            if self.receiver.received(path).len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.receiver
            .received(path)
            .iter()
            .map(|r| r.headers["x-krafter-attempt"].clone())
            .collect()
    }

    /// How many messages wait on the queue with a delay not yet over.
    async fn delayed(&self) -> usize {
        use aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed as Delayed;
        let out = self
            .clients
            .sqs
            .get_queue_attributes()
            .queue_url(&self.resources.run_queue_url)
            .attribute_names(Delayed)
            .send()
            .await
            .unwrap();
        out.attributes.unwrap()[&Delayed].parse().unwrap()
    }

    /// The run messages on the queue (taken off it), as JSON, waiting up to `within` for
    /// delayed ones to become visible.
    async fn queued_within(&self, within: Duration) -> Vec<Value> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let got = self.queued().await;
            if !got.is_empty() || std::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The run messages visible on the queue now (taken off it), as JSON.
    /// Deletes a received message, as Lambda's event source does after a success.
    async fn delete(&self, receipt_handle: &str) {
        self.clients
            .sqs
            .delete_message()
            .queue_url(&self.resources.run_queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .unwrap();
    }

    async fn queued(&self) -> Vec<Value> {
        let (event, handles) = self.receive().await;
        for (_, handle) in &handles {
            self.delete(handle).await;
        }
        event
            .records
            .iter()
            .map(|r| serde_json::from_str(r.body.as_deref().unwrap()).unwrap())
            .collect()
    }
}

/// What handing the stream's new records to a sync function did.
#[derive(Debug, Default)]
struct Streamed {
    report: SyncReport,
    /// Batches the function reported failed: their shard was rewound, so they come again.
    failed_batches: usize,
}

impl World {
    /// Hands the jobs table's new stream records to `handler` as Lambda's DynamoDB event
    /// source does (a batch per shard; a reported failure rewinds the shard to it).
    async fn stream_to(&self, handler: &SyncHandler) -> Streamed {
        let mut stream = self.stream.lock().await;
        let mut out = Streamed::default();
        for batch in stream.read().await.unwrap() {
            let event = serde_json::from_value(batch.event).expect("a DynamoDB stream event");
            let (response, report) = handle_dynamodb_event(handler, event, self.clock.now()).await;
            out.report.records += report.records;
            out.report.jobs_synced += report.jobs_synced;
            out.report.repair.calls += report.repair.calls;
            out.report.repair.changed += report.repair.changed;
            if let Some(failure) = response.batch_item_failures.first() {
                out.failed_batches += 1;
                let sequence = failure.item_identifier.as_deref().unwrap();
                stream.rewind(&batch.shard, sequence);
            }
        }
        out
    }

    /// The same deployment, but EventBridge Scheduler is unreachable.
    async fn with_broken_scheduler(&self) -> Hosted {
        let config = krafter_testkit::sdk_config(krafter_testkit::moto()).await;
        let broken_scheduler = aws_sdk_scheduler::Client::from_conf(
            aws_sdk_scheduler::config::Builder::from(&config)
                .endpoint_url("http://127.0.0.1:9")
                .retry_config(aws_sdk_scheduler::config::retry::RetryConfig::disabled())
                .build(),
        );
        Hosted::with_clock(
            AwsClients {
                scheduler: broken_scheduler,
                ..self.clients.clone()
            },
            self.resources.clone(),
            settings(),
            self.clock.clone(),
        )
    }

    /// The API of `hosted`, served on port 0, with this world's key.
    async fn api_of(&self, hosted: &Hosted) -> TestApp {
        TestApp {
            base: serve(hosted).await,
            client: reqwest::Client::new(),
            key: self.api.key.clone(),
            app: None,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Through `api`: a job created, and `paused` paused, `deleted` deleted, `changed`
    /// moved to 10:15. Returns the created job.
    async fn change_through(
        &self,
        api: &TestApp,
        paused: &Value,
        deleted: &Value,
        changed: &Value,
    ) -> Value {
        let created = api
            .create_job(self.job_body("interval", "every_15m", "/n"))
            .await;
        let id = |j: &Value| j["id"].as_str().unwrap().to_owned();
        let r = api.post_empty(&format!("/jobs/{}/pause", id(paused))).await;
        assert_eq!(r.status, 200);
        let r = api
            .call(
                http::Method::DELETE,
                &format!("/jobs/{}", id(deleted)),
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        let r = api
            .call(
                http::Method::PATCH,
                &format!("/jobs/{}", id(changed)),
                Some(&json!({"schedule": "15 10 * * *"})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        created
    }

    /// The schedules of the four jobs of `change_through` are what the jobs say.
    async fn assert_in_step(
        &self,
        created: &Value,
        paused: &Value,
        deleted: &Value,
        changed: &Value,
    ) {
        let name =
            |j: &Value| schedule_names(j["id"].as_str().unwrap().parse().unwrap())[0].clone();
        let n = self.schedule(&name(created)).await.expect("created");
        assert_eq!(n.schedule_expression.as_deref(), Some("rate(15 minutes)"));
        assert_eq!(n.state, Some(ScheduleState::Enabled));
        assert_eq!(
            self.schedule(&name(paused)).await.unwrap().state,
            Some(ScheduleState::Disabled)
        );
        assert!(self.schedule(&name(deleted)).await.is_none());
        assert_eq!(
            self.schedule(&name(changed))
                .await
                .unwrap()
                .schedule_expression
                .as_deref(),
            Some("cron(15 10 * * ? *)")
        );
    }
}

fn at(job: &Value, field: &str) -> DateTime<Utc> {
    job[field].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_job_created_through_the_api_is_scheduled_fired_executed_and_readable() {
    let w = World::start().await;
    let (job, id) = w.create("cron", "30 9 * * 1-5", "/hook").await;

    let s = w
        .schedule_of(&id, 0)
        .await
        .expect("the schedule was created");
    let expression = s.schedule_expression.clone().unwrap();
    assert_eq!(expression, "cron(30 9 ? * 2-6 *)");
    validate_eventbridge_expression(&expression).unwrap();
    assert_eq!(
        s.schedule_expression_timezone.as_deref(),
        Some("Europe/Berlin")
    );
    assert_eq!(s.state, Some(ScheduleState::Enabled));
    assert_eq!(
        s.flexible_time_window.unwrap().mode,
        FlexibleTimeWindowMode::Off
    );
    let target = s.target.unwrap();
    assert_eq!(target.arn, w.resources.run_queue_arn);
    assert_eq!(target.role_arn, w.resources.scheduler_role_arn);
    assert_eq!(
        target.dead_letter_config.unwrap().arn.as_deref(),
        Some(w.resources.dead_letter_queue_arn.as_str())
    );
    assert!(target.retry_policy.is_some());
    let input: Value = serde_json::from_str(target.input.as_deref().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"kind": "tick", "team": "alpha", "job_id": id,
               "scheduled_at": "<aws.scheduler.scheduled-time>"})
    );
    assert!(
        w.schedule_of(&id, 1).await.is_none(),
        "one expression, one schedule"
    );

    // EventBridge fires at the job's next run; the executor handles the queue message.
    let next = at(&job, "next_run_at");
    w.clock.set(next);
    w.fire(&id, next).await;
    let (n, response) = w.deliver().await;
    assert_eq!(n, 1);
    assert!(response.batch_item_failures.is_empty());

    let received = w.receiver.received("/hook");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].body, "{\"hello\":\"hosted\"}");
    assert_eq!(received[0].headers["x-krafter-job-id"], id);

    let executions = w.api.executions(&id).await;
    assert_eq!(executions.len(), 1);
    let e = &executions[0];
    assert_eq!(e["status"], "success");
    assert_eq!(e["http_status"], 200);
    assert_eq!(e["trigger"], "schedule");
    assert_eq!(e["attempt"], 1);
    assert_eq!(e["scheduled_at"], time::format(next));
    let one = w
        .api
        .get(&format!(
            "/jobs/{id}/executions/{}",
            e["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(&one.body["data"], e);

    let job = w.api.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert_eq!(job["last_status"], "success");
    assert_eq!(job["last_run_at"], time::format(next));
    assert!(
        at(&job, "next_run_at") > next,
        "the next run moved on: {job}"
    );
}

#[tokio::test]
async fn a_duplicate_delivery_sends_the_webhook_once() {
    let w = World::start().await;
    let (job, id) = w.create("interval", "every_5m", "/dup").await;
    let next = at(&job, "next_run_at");
    w.clock.set(next);
    w.fire(&id, next).await;

    // The same message delivered twice (SQS is at least once), one batch after the other.
    let (event, handles) = w.receive().await;
    assert_eq!(event.records.len(), 1);
    w.deliver_event(event.clone(), &[]).await;
    let second = w.deliver_event(event, &handles).await;
    assert!(second.batch_item_failures.is_empty());
    // And the same tick fired twice (two schedules of one cron may fire at one minute).
    w.fire(&id, next).await;
    w.deliver().await;

    assert_eq!(w.receiver.received("/dup").len(), 1, "sent once");
    assert_eq!(w.api.executions(&id).await.len(), 1, "recorded once");
}

#[tokio::test]
async fn a_paused_jobs_queued_run_is_dropped_and_its_schedule_disabled() {
    let w = World::start().await;
    let (job, id) = w.create("interval", "every_1h", "/paused").await;
    assert_eq!(
        w.api
            .post_empty(&format!("/jobs/{id}/trigger"))
            .await
            .status,
        202
    );
    let next = at(&job, "next_run_at");
    w.fire(&id, next).await;

    let r = w.api.post_empty(&format!("/jobs/{id}/pause")).await;
    assert_eq!(r.status, 200);
    let s = w.schedule_of(&id, 0).await.unwrap();
    assert_eq!(s.state, Some(ScheduleState::Disabled));

    w.clock.set(next);
    let (n, response) = w.deliver().await;
    assert_eq!(n, 2, "the manual run and the tick were queued");
    assert!(
        response.batch_item_failures.is_empty(),
        "dropped, not failed"
    );
    assert!(w.receiver.received("/paused").is_empty());
    assert!(w.api.executions(&id).await.is_empty());

    // Resumed: the schedule is enabled again, on a rate counted from the resume time.
    let r = w.api.post_empty(&format!("/jobs/{id}/resume")).await;
    assert_eq!(r.status, 200);
    let s = w.schedule_of(&id, 0).await.unwrap();
    assert_eq!(s.state, Some(ScheduleState::Enabled));
    assert_eq!(s.schedule_expression.as_deref(), Some("rate(1 hour)"));
    assert_eq!(
        s.start_date.map(|d| d.secs()),
        Some((next + chrono::Duration::hours(1)).timestamp())
    );
}

#[tokio::test]
async fn a_failed_attempt_is_retried_through_the_queue_with_linear_backoff() {
    let w = World::start().await;
    w.receiver.script(
        "/flaky",
        vec![
            Scripted::status(500),
            Scripted::status(503),
            Scripted::status(200),
        ],
    );
    let (_, id) = w.create("interval", "every_1h", "/flaky").await;
    assert_eq!(
        w.api
            .post_empty(&format!("/jobs/{id}/trigger"))
            .await
            .status,
        202
    );

    let mut delays = Vec::new();
    for attempt in 1..=3u32 {
        let (n, response) = w.deliver().await;
        assert_eq!(n, 1, "attempt {attempt} was on the queue");
        assert!(response.batch_item_failures.is_empty());
        if attempt == 3 {
            break;
        }
        // The retry waits on the queue (never in the function), delayed by the backoff.
        assert_eq!(w.delayed().await, 1, "the retry is delayed on the queue");
        let queued = w.queued_within(Duration::from_secs(10)).await;
        assert_eq!(queued.len(), 1, "one retry queued: {queued:?}");
        let retry = &queued[0];
        assert_eq!(retry["kind"], "run");
        assert_eq!(retry["attempt"], attempt + 1);
        let due: DateTime<Utc> = retry["deliver_at"].as_str().unwrap().parse().unwrap();
        delays.push((due - w.clock.now()).num_seconds());
        // Put it back as it was, and let its time come.
        w.clock.set(due);
        w.send(retry.to_string()).await;
    }
    assert_eq!(delays, vec![1, 2], "linear backoff: 1×, 2× the base");

    let executions = w.api.executions(&id).await;
    let summary: Vec<(u64, &str, Option<u64>)> = executions
        .iter()
        .map(|e| {
            (
                e["attempt"].as_u64().unwrap(),
                e["status"].as_str().unwrap(),
                e["http_status"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (3, "success", Some(200)),
            (2, "failed", Some(503)),
            (1, "failed", Some(500))
        ]
    );
    let runs: std::collections::HashSet<&str> = executions
        .iter()
        .map(|e| e["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), 1, "one run, three attempts");
}

#[tokio::test]
async fn a_run_that_arrives_early_goes_back_to_wait() {
    let w = World::start().await;
    let (job, id) = w.create("interval", "every_30s", "/half").await;
    let s = w.schedule_of(&id, 0).await.unwrap();
    assert_eq!(s.schedule_expression.as_deref(), Some("rate(1 minute)"));

    // One tick of the 1-minute schedule stands for two runs, 30 s apart.
    let next = at(&job, "next_run_at");
    w.fire_on_time(&id, next).await;
    assert_eq!(w.receiver.received("/half").len(), 1);
    assert_eq!(
        w.delayed().await,
        1,
        "the half-minute run waits on the queue, delayed"
    );
    let half = next + chrono::Duration::seconds(30);
    let job_now = w.api.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert_eq!(at(&job_now, "next_run_at"), half);
    let job_id: JobId = id.parse().unwrap();
    let queued = vec![json!({
        "kind": "run",
        "team": "alpha",
        "job_id": id,
        "run_id": RunId::scheduled(job_id, half),
        "trigger": "schedule",
        "scheduled_at": half,
        "attempt": 1,
        "generation": 0,
        "deliver_at": half,
    })];

    // Delivered early (SQS delays at most 15 minutes): sent back, not run.
    w.send(queued[0].to_string()).await;
    w.deliver().await;
    assert_eq!(w.receiver.received("/half").len(), 1);
    assert_eq!(w.delayed().await, 2, "sent back to wait for its time");
    let back = queued;

    w.clock.set(half);
    w.send(back[0].to_string()).await;
    w.deliver().await;
    assert_eq!(w.receiver.received("/half").len(), 2);
}

#[tokio::test]
async fn a_once_job_fires_once_then_disables_itself_and_loses_its_schedule() {
    let w = World::start().await;
    let when = w.clock.now() + chrono::Duration::hours(2);
    let job = w
        .api
        .create_job(w.job_body("once", &time::format(when), "/once"))
        .await;
    let id = job["id"].as_str().unwrap().to_owned();
    let name = &schedule_names(id.parse().unwrap())[0];
    let s = w.schedule(name).await.unwrap();
    assert!(s.schedule_expression.unwrap().starts_with("at("));

    w.clock.set(when);
    w.fire(&id, when).await;
    w.fire(&id, when).await;
    w.deliver().await;
    assert_eq!(w.receiver.received("/once").len(), 1);
    let job = w.api.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert_eq!(job["enabled"], false);
    assert_eq!(job["next_run_at"], Value::Null);
    assert_eq!(
        job["updated_at"],
        time::format(when),
        "disabling itself is a change"
    );
    assert!(w.schedule(name).await.is_none(), "deleted after completion");
}

#[tokio::test]
async fn thirty_concurrent_creates_never_exceed_the_quota() {
    let w = World::start_with(Settings {
        max_jobs_per_team: 5,
        ..settings()
    })
    .await;
    crate::scenarios::concurrent_creates_never_exceed_the_quota(Arc::new(w.api)).await;
}

#[tokio::test]
async fn a_change_that_changes_nothing_writes_nothing() {
    let w = World::start().await;
    crate::scenarios::a_change_that_changes_nothing_writes_nothing(&w.api, async || {
        w.clock.advance(chrono::Duration::seconds(1));
    })
    .await;
}

#[tokio::test]
async fn a_poison_message_is_reported_failed_until_sqs_moves_it_to_the_dead_letter_queue() {
    let w = World::start().await;
    w.send("not a run").await;
    let sqs = &w.clients.sqs;
    let mut deliveries = 0;
    loop {
        let (event, handles) = w.receive().await;
        if handles.is_empty() {
            break;
        }
        deliveries += 1;
        assert!(deliveries <= 10, "never moved to the dead-letter queue");
        let response = w.deliver_event(event, &handles).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            response.batch_item_failures[0].item_identifier,
            handles[0].0
        );
        // What the visibility timeout's expiry does, without waiting 33 minutes.
        sqs.change_message_visibility()
            .queue_url(&w.resources.run_queue_url)
            .receipt_handle(&handles[0].1)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        deliveries,
        krafter_ops::provision::MAX_RECEIVE_COUNT,
        "handed to the executor maxReceiveCount times"
    );
    let dead = sqs
        .receive_message()
        .queue_url(&w.resources.dead_letter_queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].body.as_deref(), Some("not a run"));
    // A good run sent after it is unaffected.
    let (_, id) = w.create("interval", "every_1h", "/after-poison").await;
    w.api.post_empty(&format!("/jobs/{id}/trigger")).await;
    w.deliver().await;
    assert_eq!(w.receiver.received("/after-poison").len(), 1);
}

/// Invariant 1: a failure between the store write and the Scheduler call leaves drift; the
/// reconcile pass repairs all of it, and until then no paused or deleted job runs.
#[tokio::test]
async fn schedule_drift_left_by_scheduler_failures_is_repaired_by_reconciliation() {
    let w = World::start().await;
    let (paused, _) = w.create("interval", "every_1h", "/p").await;
    let (deleted, _) = w.create("interval", "every_1h", "/d").await;
    let (changed, _) = w.create("cron", "0 9 * * *", "/c").await;

    let broken_api = w.api_of(&w.with_broken_scheduler().await).await;
    let created = w
        .change_through(&broken_api, &paused, &deleted, &changed)
        .await;
    let id = |j: &Value| j["id"].as_str().unwrap().to_owned();
    let name = |j: &Value| schedule_names(id(j).parse().unwrap())[0].clone();

    // The drift: every one of the four schedules is wrong.
    assert!(w.schedule(&name(&created)).await.is_none());
    let p = w.schedule(&name(&paused)).await.unwrap();
    assert_eq!(p.state, Some(ScheduleState::Enabled));
    assert!(w.schedule(&name(&deleted)).await.is_some());
    let c = w.schedule(&name(&changed)).await.unwrap();
    assert_eq!(c.schedule_expression.as_deref(), Some("cron(0 9 * * ? *)"));

    // Meanwhile the paused and deleted jobs' schedules still fire, and nothing runs.
    let p_next = at(&paused, "next_run_at");
    w.clock.set(p_next);
    w.fire(&id(&paused), p_next).await;
    w.fire(&id(&deleted), at(&deleted, "next_run_at")).await;
    let (n, response) = w.deliver().await;
    assert_eq!(n, 2);
    assert!(response.batch_item_failures.is_empty());
    assert!(w.receiver.received("/p").is_empty());
    assert!(w.receiver.received("/d").is_empty());

    let report = w.reconciler.reconcile_all().await.unwrap();
    assert!(report.started && report.finished, "{report:?}");
    assert_eq!(report.jobs, 3);
    assert_eq!(report.schedules_repaired, 3, "{report:?}");
    assert_eq!(report.orphans_removed, 1, "{report:?}");
    w.assert_in_step(&created, &paused, &deleted, &changed)
        .await;

    let again = w.reconciler.reconcile_all().await.unwrap();
    assert_eq!(
        (again.schedules_repaired, again.orphans_removed),
        (0, 0),
        "converged: {again:?}"
    );
    // One read per schedule (3); the second sweep lists nothing (one in seven does).
    assert_eq!(again.scheduler_calls, 3, "{again:?}");
}

#[tokio::test]
async fn drift_left_by_failed_inline_syncs_is_repaired_through_the_stream() {
    let w = World::start().await;
    let (paused, _) = w.create("interval", "every_1h", "/p").await;
    let (deleted, _) = w.create("interval", "every_1h", "/d").await;
    let (changed, _) = w.create("cron", "0 9 * * *", "/c").await;
    // The creates were synced inline: the stream finds them in step.
    let first = w.stream_to(&w.sync).await;
    assert_eq!(first.report.records, 3, "{first:?}");
    assert_eq!(first.report.repair.changed, 0, "{first:?}");

    let broken = w.with_broken_scheduler().await;
    let created = w
        .change_through(&w.api_of(&broken).await, &paused, &deleted, &changed)
        .await;
    let name = |j: &Value| schedule_names(j["id"].as_str().unwrap().parse().unwrap())[0].clone();
    assert!(w.schedule(&name(&created)).await.is_none(), "drift");

    // A sync function that cannot reach the Scheduler either reports the batch failed from
    // its first record; the event source hands it again, and a working one repairs all.
    let failing = w.stream_to(&broken.sync_handler()).await;
    assert_eq!(failing.failed_batches, 1, "{failing:?}");
    assert!(
        w.schedule(&name(&created)).await.is_none(),
        "nothing repaired yet"
    );
    let retried = w.stream_to(&w.sync).await;
    assert_eq!(retried.failed_batches, 0, "{retried:?}");
    assert_eq!(retried.report.jobs_synced, 4, "{retried:?}");
    assert_eq!(retried.report.repair.changed, 4, "{retried:?}");
    w.assert_in_step(&created, &paused, &deleted, &changed)
        .await;
    // Nothing was left for the sweep.
    let sweep = w.reconciler.reconcile_all().await.unwrap();
    assert_eq!(
        (sweep.schedules_repaired, sweep.orphans_removed),
        (0, 0),
        "{sweep:?}"
    );

    // A first run changes its job (its last status; the tick writes nothing) but not its
    // schedules: no call.
    let (_, id) = w.create("interval", "every_1h", "/r").await;
    w.stream_to(&w.sync).await;
    let job = w.api.get(&format!("/jobs/{id}")).await.body["data"].clone();
    let next = at(&job, "next_run_at");
    w.fire_on_time(&id, next).await;
    assert_eq!(w.receiver.received("/r").len(), 1);
    let run = w.stream_to(&w.sync).await;
    assert_eq!(run.report.records, 1, "the run's end: {run:?}");
    assert_eq!(
        (run.report.jobs_synced, run.report.repair.calls),
        (0, 0),
        "{run:?}"
    );

    // A success after a success writes nothing on the job; the API still shows it ran.
    let second = next + chrono::Duration::hours(1);
    w.fire_on_time(&id, second).await;
    assert_eq!(w.receiver.received("/r").len(), 2);
    let steady = w.stream_to(&w.sync).await;
    assert_eq!(steady.report.records, 0, "{steady:?}");
    let job = w.api.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert_eq!(job["last_status"], "success");
    assert_eq!(job["last_run_at"], time::format(second));
    assert_eq!(at(&job, "next_run_at"), second + chrono::Duration::hours(1));
}

#[tokio::test]
async fn the_sweep_reads_each_schedule_once_per_period_in_paced_slices() {
    let w = World::start_with(Settings {
        sweep_calls_per_sec: 20,
        ..settings()
    })
    .await;
    for i in 0..6 {
        w.create("interval", "every_1h", &format!("/s{i}")).await;
    }
    // 20 calls a second: the 6 jobs' reads take 300 ms, more than one 120 ms slice.
    let sweeper = w
        .reconciler
        .clone()
        .with_sweep_slice(Duration::from_millis(120));
    let first = sweeper.reconcile().await.unwrap();
    assert!(first.started && !first.finished, "{first:?}");
    assert!(first.jobs < 6, "{first:?}");
    let (mut jobs, mut calls) = (first.jobs, first.scheduler_calls);
    for invocation in 2.. {
        assert!(invocation < 40, "the sweep never ends");
        let r = sweeper.reconcile().await.unwrap();
        assert!(!r.started, "{r:?}");
        jobs += r.jobs;
        calls += r.scheduler_calls;
        if r.finished {
            break;
        }
    }
    assert_eq!(
        jobs, 6,
        "each job read once, the sweep going on where it stopped"
    );
    // The first sweep also lists the schedules (one in seven does): a page, and each
    // listed schedule read for its job's team.
    assert_eq!(calls, 6 + 1 + 6, "one read per schedule, the listing");

    // Until its period has passed, no new sweep.
    w.clock.advance(chrono::Duration::hours(23));
    let idle = sweeper.reconcile().await.unwrap();
    assert_eq!((idle.started, idle.scheduler_calls), (false, 0), "{idle:?}");
    w.clock.advance(chrono::Duration::hours(1));
    let next = sweeper.reconcile().await.unwrap();
    assert!(next.started, "{next:?}");
}

#[tokio::test]
async fn a_revoked_key_stops_working_once_the_key_cache_expires() {
    let w = World::start().await;
    assert_eq!(w.api.get("/jobs").await.status, 200);
    let prefix = krafter_shared::domain::PlainKey::parse(&w.api.key)
        .unwrap()
        .prefix();
    w.hosted.keys.revoke(&prefix, w.clock.now()).await.unwrap();
    assert_eq!(
        w.api.get("/jobs").await.status,
        200,
        "still cached in this instance"
    );
    w.clock.advance(chrono::Duration::seconds(31));
    w.api
        .get("/jobs")
        .await
        .assert_error(401, "Invalid or missing API key");
}

#[tokio::test]
async fn the_rate_limit_is_shared_by_every_api_instance() {
    let w = World::start_with(Settings {
        rate_limit: 3,
        ..settings()
    })
    .await;
    let second = Hosted::with_clock(
        w.clients.clone(),
        w.resources.clone(),
        Settings {
            rate_limit: 3,
            ..settings()
        },
        w.clock.clone(),
    );
    let other = TestApp {
        base: serve(&second).await,
        client: reqwest::Client::new(),
        key: w.api.key.clone(),
        app: None,
        dir: tempfile::tempdir().unwrap(),
    };
    assert_eq!(w.api.get("/jobs").await.status, 200);
    assert_eq!(other.get("/jobs").await.status, 200);
    let third = w.api.get("/jobs").await;
    assert_eq!(third.status, 200);
    assert_eq!(third.header("x-ratelimit-remaining"), Some("0"));
    other
        .get("/jobs")
        .await
        .assert_error(429, "Rate limit exceeded");
}

#[tokio::test]
async fn private_targets_are_refused_by_default() {
    let w = World::start_with(Settings {
        rate_limit: 10_000,
        ..Settings::defaults(Mode::Hosted)
    })
    .await;
    let r = w
        .api
        .post("/jobs", &crate::helpers::idle_job(&w.receiver.url("/hook")))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.body["details"]["url"], json!([PRIVATE_TARGET]));
    assert_eq!(w.api.get("/jobs").await.body["data"], json!([]));
}

#[tokio::test]
async fn success_rules_decide_what_succeeds() {
    let w = World::start().await;
    crate::scenarios::success_rules_decide_what_succeeds(&w.api, &w.receiver, async || {
        w.deliver().await;
    })
    .await;
}

#[tokio::test]
async fn an_exponential_backoff_doubles_each_wait_up_to_its_cap() {
    let w = World::start().await;
    // The waits are the retries' delays on the queue, exactly (the test clock).
    let waits = async |_: &str| {
        let mut delays = Vec::new();
        for attempt in 1..=3u32 {
            let (n, _) = w.deliver().await;
            assert_eq!(n, 1, "attempt {attempt} was on the queue");
            let queued = w.queued_within(Duration::from_secs(10)).await;
            assert_eq!(queued.len(), 1, "{queued:?}");
            let due: DateTime<Utc> = queued[0]["deliver_at"].as_str().unwrap().parse().unwrap();
            delays.push((due - w.clock.now()).to_std().unwrap());
            w.clock.set(due);
            w.send(queued[0].to_string()).await;
        }
        let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 3], "exactly 1×, 2×, then the 3 s cap");
        delays
    };
    crate::scenarios::an_exponential_backoff_doubles_each_wait_up_to_its_cap(
        &w.api,
        &w.receiver,
        1000,
        waits,
    )
    .await;
}

#[tokio::test]
async fn the_runs_that_fire_are_the_upcoming_runs_and_the_preview() {
    let w = World::start().await;
    // Europe/Berlin springs forward on 2026-03-29: 02:30 does not exist that day.
    w.clock.set("2026-03-27T12:00:00Z".parse().unwrap());
    let schedule = json!({"schedule_type": "cron", "schedule": "30 2 * * *",
        "timezone": "Europe/Berlin", "count": 4});
    let preview = w.api.post("/schedules/preview", &schedule).await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let (_, id) = w.create("cron", "30 2 * * *", "/dst").await;
    let upcoming = w.api.get(&format!("/jobs/{id}/upcoming?count=4")).await;
    assert_eq!(
        upcoming.body, preview.body,
        "a job fires what its schedule previews"
    );
    let times: Vec<DateTime<Utc>> = upcoming.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scheduled_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        times.iter().map(|t| time::format(*t)).collect::<Vec<_>>(),
        [
            "2026-03-28T01:30:00Z",
            "2026-03-30T00:30:00Z",
            "2026-03-31T00:30:00Z",
            "2026-04-01T00:30:00Z"
        ],
        "no run on the day 02:30 does not exist"
    );
    for t in &times {
        w.fire_on_time(&id, *t).await;
    }
    let mut fired: Vec<String> = w
        .api
        .executions(&id)
        .await
        .iter()
        .map(|e| e["scheduled_at"].as_str().unwrap().to_owned())
        .collect();
    fired.reverse();
    assert_eq!(
        fired,
        times.iter().map(|t| time::format(*t)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn list_filters_compose_with_cursors() {
    let w = World::start().await;
    crate::scenarios::list_filters_compose_with_cursors(&w.api, &w.receiver, async || {
        w.deliver().await;
    })
    .await;
}

#[tokio::test]
async fn an_idempotency_key_makes_retries_safe() {
    let w = World::start().await;
    let (other, _) = create_key(
        w.hosted.keys.as_ref(),
        TeamId::parse("beta").unwrap(),
        Scopes::new(vec![Scope::Write]),
        None,
        Utc::now(),
    )
    .await
    .unwrap();
    crate::scenarios::an_idempotency_key_makes_retries_safe(&w.api, other.as_str(), async || {
        w.deliver().await;
    })
    .await;
}

#[tokio::test]
async fn a_failure_streak_notifies_and_disables_and_the_schedule_follows() {
    let notices = Receiver::start().await;
    let w = World::start_with(Settings {
        notify_url: Some(notices.url("/notices").parse().unwrap()),
        ..settings()
    })
    .await;
    let id = crate::scenarios::a_failure_streak_notifies_and_disables(
        &w.api,
        &w.receiver,
        &notices,
        async || {
            w.deliver().await;
        },
    )
    .await;
    // The job was paused by hand after the auto-disable, so its schedule is disabled.
    let name = &schedule_names(id.parse().unwrap())[0];
    let state = w.schedule(name).await.expect("the schedule").state;
    assert_eq!(
        state,
        Some(aws_sdk_scheduler::types::ScheduleState::Disabled)
    );
}

#[tokio::test]
async fn a_backfill_runs_the_missed_times_once() {
    let w = World::start().await;
    crate::scenarios::a_backfill_runs_the_missed_times_once(
        &w.api,
        &w.receiver,
        w.clock.now(),
        async || {
            w.deliver().await;
        },
    )
    .await;
}

#[tokio::test]
async fn notices_go_to_the_jobs_url_signed_in_slacks_format() {
    let w = World::start().await;
    crate::scenarios::notices_go_to_the_jobs_url_signed_in_slacks_format(
        &w.api,
        w.hosted.teams.as_ref(),
        &w.receiver,
        async || {
            w.deliver().await;
        },
    )
    .await;
}

#[tokio::test]
async fn a_window_bounds_the_runs_and_its_schedule() {
    let w = World::start().await;
    let id = crate::scenarios::a_window_bounds_the_runs(&w.api, w.clock.now()).await;
    let job = w.api.get(&format!("/jobs/{id}")).await.body["data"].clone();
    let s = w
        .schedule(&schedule_names(id.parse().unwrap())[0])
        .await
        .unwrap();
    let secs = |field: &str| {
        job[field]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
            .timestamp()
    };
    assert_eq!(
        s.start_date.map(|d| d.secs()),
        Some(secs("starts_at")),
        "StartDate"
    );
    assert_eq!(
        s.end_date.map(|d| d.secs()),
        Some(secs("ends_at")),
        "EndDate"
    );
    // A tick outside the window is dropped.
    let late = job["ends_at"]
        .as_str()
        .unwrap()
        .parse::<DateTime<Utc>>()
        .unwrap();
    w.fire_on_time(&id, late).await;
    assert!(
        w.api.executions(&id).await.is_empty(),
        "nothing ran at ends_at"
    );
}

#[tokio::test]
async fn a_late_tick_fires_within_the_jobs_catch_up_window_only() {
    let w = World::start().await;
    let mut patient = w.job_body("interval", "every_5m", "/patient");
    patient["catchup_window_s"] = json!(3600);
    let patient = w.api.create_job(patient).await;
    let mut strict = w.job_body("interval", "every_5m", "/strict");
    strict["catchup_window_s"] = json!(60);
    let strict = w.api.create_job(strict).await;
    assert_eq!(patient["catchup_window_s"], 3600);
    let next: DateTime<Utc> = patient["next_run_at"].as_str().unwrap().parse().unwrap();
    // The ticks come 12 minutes late (EventBridge retried them, say).
    w.clock.set(next + chrono::Duration::minutes(12));
    for job in [&patient, &strict] {
        let id = job["id"].as_str().unwrap();
        let at: DateTime<Utc> = job["next_run_at"].as_str().unwrap().parse().unwrap();
        w.fire(id, at).await;
    }
    w.deliver().await;
    let id = patient["id"].as_str().unwrap();
    let runs = w.api.executions(id).await;
    assert_eq!(runs.len(), 1, "one run: the most recent missed");
    assert_eq!(
        runs[0]["scheduled_at"],
        time::format(next + chrono::Duration::minutes(10)),
        "with its own scheduled time"
    );
    let strict_id = strict["id"].as_str().unwrap();
    assert!(
        w.api.executions(strict_id).await.is_empty(),
        "too late for 60 s"
    );
    let moved = w.api.get(&format!("/jobs/{strict_id}")).await.body["data"].clone();
    let moved: DateTime<Utc> = moved["next_run_at"].as_str().unwrap().parse().unwrap();
    assert!(moved > w.clock.now(), "the job moves on past now");
}

#[tokio::test]
async fn overlapping_runs_are_skipped_or_buffered() {
    let w = World::start().await;
    crate::scenarios::overlapping_runs_are_skipped_or_buffered(&w.api, &w.receiver, async || {
        w.deliver().await;
    })
    .await;
}

/// The tick comes at the scheduled time; the run goes back to the queue until the time its
/// jitter gives it (SQS `DelaySeconds`), and is executed then.
#[tokio::test]
async fn jitter_moves_runs_within_bounds_and_next_run_at_shows_it() {
    let w = World::start().await;
    let run_due = async |id: &str, at: DateTime<Utc>, fires: DateTime<Utc>| {
        // (A run due within a second is not held back: the tick may come that late.)
        let held = fires - at > chrono::Duration::seconds(1);
        w.clock.set(if held { at } else { fires });
        w.fire(id, at).await;
        w.deliver().await;
        if held {
            let queued = w.queued_within(Duration::from_secs(10)).await;
            assert_eq!(queued.len(), 1, "{queued:?}");
            assert_eq!(
                queued[0]["deliver_at"],
                time::format(fires),
                "held back until then"
            );
            w.clock.set(fires);
            w.send(queued[0].to_string()).await;
        }
    };
    crate::scenarios::jitter_moves_runs_within_bounds_and_next_run_at_shows_it(
        &w.api,
        &w.receiver,
        w.clock.now(),
        run_due,
        async || {
            w.deliver().await;
        },
    )
    .await;
}

#[tokio::test]
async fn every_change_is_audited_once_with_its_key_and_request() {
    let w = World::start().await;
    let key = async |team: &str, scope: Scope| {
        let (k, _) = create_key(
            w.hosted.keys.as_ref(),
            TeamId::parse(team).unwrap(),
            Scopes::new(vec![scope]),
            None,
            Utc::now(),
        )
        .await
        .unwrap();
        k.as_str().to_owned()
    };
    let (read, other) = (
        key("alpha", Scope::Read).await,
        key("beta", Scope::Write).await,
    );
    crate::scenarios::every_change_is_audited_once_with_its_key_and_request(&w.api, &read, &other)
        .await;
}

#[tokio::test]
async fn an_mcp_client_creates_triggers_and_reads_a_job_on_the_hosted_router() {
    let w = World::start().await;
    let (base, key) = (&w.api.base, &w.api.key);
    let body = w.job_body("cron", "0 3 * * *", "/mcp-hosted");
    let created = crate::mcp::call(base, key, "create_job", body).await;
    assert_eq!(created["is_error"], false, "{created}");
    let id = created["structured"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        w.schedule_of(&id, 0).await.is_some(),
        "the schedule was created"
    );

    let triggered = crate::mcp::call(base, key, "trigger_job", json!({"id": id})).await;
    assert_eq!(triggered["structured"], json!({"ok": true}), "{triggered}");
    let (n, response) = w.deliver().await;
    assert_eq!(n, 1);
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(w.receiver.received("/mcp-hosted").len(), 1);

    let runs = crate::mcp::call(base, key, "list_executions", json!({"id": id})).await;
    let run = &runs["structured"]["data"][0];
    assert_eq!(
        (run["status"].as_str(), run["trigger"].as_str()),
        (Some("success"), Some("manual"))
    );
    let other = create_key(
        w.hosted.keys.as_ref(),
        TeamId::parse("beta").unwrap(),
        Scopes::new(vec![Scope::Write]),
        None,
        Utc::now(),
    )
    .await
    .unwrap()
    .0;
    let hidden = crate::mcp::call(base, other.as_str(), "get_job", json!({"id": id})).await;
    assert_eq!(crate::mcp::error_body(&hidden)["code"], "not_found");
}

#[tokio::test]
async fn the_console_creates_triggers_and_shows_a_run_on_the_hosted_router() {
    let w = World::start().await;
    let b = crate::browser::Browser::open(&w.api.base).await;
    b.sign_in(&w.api.key).await;
    b.go("/jobs/new").await;
    b.fill("#f-name", "Hosted from the console").await;
    b.select("#f-schedule_type", "cron").await;
    b.fill("#f-schedule", "0 3 * * *").await;
    b.fill("#f-url", &w.receiver.url("/console-hosted")).await;
    b.click("form.job-form button[type=submit]:not([name])")
        .await;
    let id = b.wait_for_job_page().await;
    assert!(
        w.schedule_of(&id, 0).await.is_some(),
        "the schedule was created"
    );
    b.click(&format!("form[action='/jobs/{id}/trigger'] button"))
        .await;
    b.wait_for_path(&format!("/jobs/{id}?done=trigger")).await;
    let (n, response) = w.deliver().await;
    assert_eq!(n, 1);
    assert!(response.batch_item_failures.is_empty());
    b.wait_for_text("tr.execution .badge", "success", Duration::from_secs(15))
        .await;
    assert_eq!(w.receiver.received("/console-hosted").len(), 1);
    b.close().await;
}

#[tokio::test]
async fn a_console_session_works_on_every_hosted_api_instance() {
    let w = World::start().await;
    let other = Hosted::with_clock(
        w.clients.clone(),
        w.resources.clone(),
        settings(),
        w.clock.clone(),
    );
    let other_base = serve(&other).await;
    let cookie = crate::console::session_cookie(&w.api.base, &w.api.key).await;
    let (status, _) = crate::console::page_status(&other_base, &cookie, "/jobs").await;
    assert_eq!(
        status, 200,
        "a session made on one instance works on another"
    );
}

#[tokio::test]
async fn deleting_a_job_deletes_its_schedule_and_its_executions() {
    let w = World::start().await;
    let (_, id) = w.create("cron", "0 3 * * *", "/deleted").await;
    w.api.post_empty(&format!("/jobs/{id}/trigger")).await;
    assert_eq!(w.deliver().await.0, 1);
    assert_eq!(w.api.executions(&id).await.len(), 1);
    let deleted = w
        .api
        .call(http::Method::DELETE, &format!("/jobs/{id}"), None)
        .await;
    assert_eq!(deleted.status, 200);
    assert!(
        w.schedule_of(&id, 0).await.is_none(),
        "the schedule is gone"
    );
    let left = w
        .clients
        .dynamodb
        .scan()
        .table_name(&w.resources.tables.executions)
        .send()
        .await
        .unwrap();
    let mine = left
        .items()
        .iter()
        .filter(|i| format!("{i:?}").contains(&id))
        .count();
    assert_eq!(mine, 0, "no execution of the deleted job is left");
}

#[tokio::test]
async fn a_server_error_inside_an_idempotent_request_releases_its_key() {
    let w = World::start().await;
    // An API instance whose job writes fail (DynamoDB throttled, say): a create is a 500.
    let config = krafter_testkit::sdk_config(krafter_testkit::moto()).await;
    let recorder = krafter_testkit::iam::Recorder::new("ApiFunction", &w.resources);
    let fault = krafter_testkit::iam::Fault::new("TransactWriteItems", 100);
    let clients = krafter_testkit::iam::recording_clients_failing(&config, &recorder, Some(fault));
    let failing = Hosted::with_clock(clients, w.resources.clone(), settings(), w.clock.clone());
    let base = serve(&failing).await;
    let body = w.job_body("cron", "0 3 * * *", "/idem");
    let key = w.api.key.clone();
    let post = |base: String| {
        let (body, key) = (body.clone(), key.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/cron/jobs"))
                .bearer_auth(key)
                .header("idempotency-key", "create-after-a-fault")
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(base).await, 500);
    // The retry, on a healthy instance, is handled anew: the 500 was not kept.
    assert_eq!(post(w.api.base.clone()).await, 201);
    assert_eq!(
        w.api.get("/jobs").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_job_disabled_by_its_failures_gets_back_a_schedule_that_had_gone_missing() {
    let w = World::start().await;
    w.receiver.script("/gone", vec![Scripted::status(500)]);
    let mut body = w.job_body("cron", "0 3 * * *", "/gone");
    body["max_retries"] = json!(0);
    body["auto_disable_after_failures"] = json!(1);
    let id = w.api.create_job(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = schedule_names(id.parse().unwrap())[0].clone();
    w.clients
        .scheduler
        .delete_schedule()
        .group_name(&w.resources.schedule_group)
        .name(&name)
        .send()
        .await
        .unwrap();
    w.api.post_empty(&format!("/jobs/{id}/trigger")).await;
    assert_eq!(w.deliver().await.0, 1);
    let job = w.api.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert_eq!(job["enabled"], false, "{job}");
    let schedule = w
        .schedule(&name)
        .await
        .expect("the schedule was made again");
    assert_eq!(schedule.state, Some(ScheduleState::Disabled));
}

#[tokio::test]
async fn reconcile_prunes_executions_past_retention_but_keeps_each_jobs_latest_100() {
    let w = World::start().await;
    let (_, id) = w.create("cron", "0 3 * * *", "/many").await;
    for _ in 0..101 {
        w.api.post_empty(&format!("/jobs/{id}/trigger")).await;
    }
    let mut delivered = 0;
    while delivered < 101 {
        let (n, _) = w.deliver().await;
        assert!(n > 0, "runs are missing: {delivered} delivered");
        delivered += n;
    }
    w.clock.set(w.clock.now() + chrono::Duration::days(31));
    let report = w.reconciler.reconcile().await.unwrap();
    assert_eq!(report.executions_pruned, 1, "{report:?}");
    let page = w.api.get(&format!("/jobs/{id}/executions?limit=100")).await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn an_attempt_that_cannot_be_recorded_comes_again_and_is_sent_once() {
    let w = World::start().await;
    let (_, id) = w.create("cron", "0 3 * * *", "/fault-begin").await;
    w.api.post_empty(&format!("/jobs/{id}/trigger")).await;
    // DynamoDB throttles the write that records the attempt as in flight.
    let throttled = w
        .executor_with(krafter_testkit::iam::Fault::new("PutItem", 1))
        .await;
    assert_eq!(
        w.deliver_through(&throttled).await,
        (1, 1),
        "reported failed: it comes again"
    );
    assert!(
        w.receiver.received("/fault-begin").is_empty(),
        "nothing was sent"
    );
    assert_eq!(w.deliver_through(&throttled).await, (1, 0));
    assert_eq!(w.receiver.received("/fault-begin").len(), 1);
    let runs = w.api.executions(&id).await;
    assert_eq!(
        (runs.len(), runs[0]["status"].as_str()),
        (1, Some("success"))
    );
}

#[tokio::test]
async fn an_outcome_that_cannot_be_recorded_is_never_sent_again_and_ends_as_interrupted() {
    let w = World::start().await;
    let mut body = w.job_body("cron", "0 3 * * *", "/fault-finish");
    body["timeout_ms"] = json!(1000);
    body["max_retries"] = json!(1);
    let id = w.api.create_job(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.api.post_empty(&format!("/jobs/{id}/trigger")).await;
    let run = w.queued().await.remove(0).to_string();
    w.send(run.clone()).await;
    // The webhook is called; then DynamoDB fails the write of its outcome.
    let failing = w
        .executor_with(krafter_testkit::iam::Fault::new("UpdateItem", 1))
        .await;
    assert_eq!(w.deliver_through(&failing).await, (1, 1));
    assert_eq!(w.receiver.received("/fault-finish").len(), 1);
    // Redelivered while the attempt may still be in flight: sent back to wait, not sent.
    assert_eq!(w.deliver_through(&failing).await, (1, 0));
    assert_eq!(
        w.receiver.received("/fault-finish").len(),
        1,
        "not sent twice"
    );
    // Delivered again past its timeout and grace (SQS delivers at least once), the attempt
    // is recorded as interrupted and the run goes on with its retry (a new attempt).
    w.clock.set(w.clock.now() + chrono::Duration::seconds(120));
    w.send(run).await;
    let attempts = w.attempts_sent_once_there_are("/fault-finish", 2).await;
    assert_eq!(attempts, ["1", "2"], "each attempt once");
    let runs = w.api.executions(&id).await;
    let statuses: Vec<(&str, u64)> = runs
        .iter()
        .map(|e| {
            (
                e["error"].as_str().unwrap_or(""),
                e["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        statuses
            .iter()
            .any(|(err, a)| *a == 1 && err.contains("interrupted")),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_retry_that_cannot_be_enqueued_is_enqueued_by_the_redelivery() {
    let w = World::start().await;
    w.receiver.script(
        "/fault-retry",
        vec![Scripted::status(500), Scripted::status(200)],
    );
    let mut body = w.job_body("cron", "0 3 * * *", "/fault-retry");
    body["max_retries"] = json!(1);
    body["retry_base_ms"] = json!(1000);
    let id = w.api.create_job(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.api.post_empty(&format!("/jobs/{id}/trigger")).await;
    // Attempt 1 fails; SQS refuses the retry's message.
    let failing = w
        .executor_with(krafter_testkit::iam::Fault::new("SendMessage", 1))
        .await;
    assert_eq!(w.deliver_through(&failing).await, (1, 1));
    assert_eq!(w.receiver.received("/fault-retry").len(), 1);
    // The redelivery does not send attempt 1 again; it enqueues the retry.
    assert_eq!(w.deliver_through(&failing).await, (1, 0));
    assert_eq!(w.receiver.received("/fault-retry").len(), 1);
    w.clock.set(w.clock.now() + chrono::Duration::seconds(5));
    let attempts = w.attempts_sent_once_there_are("/fault-retry", 2).await;
    assert_eq!(attempts, ["1", "2"]);
    let job = w.api.get(&format!("/jobs/{id}")).await.body["data"].clone();
    assert_eq!(job["last_status"], "success", "the run ended: {job}");
}

#[tokio::test]
async fn a_trigger_whose_message_cannot_be_sent_is_refused_and_leaves_nothing_behind() {
    let w = World::start().await;
    let (_, id) = w.create("cron", "0 3 * * *", "/fault-api").await;
    let config = krafter_testkit::sdk_config(krafter_testkit::moto()).await;
    let recorder = krafter_testkit::iam::Recorder::new("ApiFunction", &w.resources);
    let fault = krafter_testkit::iam::Fault::new("SendMessage", 100);
    let clients = krafter_testkit::iam::recording_clients_failing(&config, &recorder, Some(fault));
    let failing = Hosted::with_clock(clients, w.resources.clone(), settings(), w.clock.clone());
    let base = serve(&failing).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/cron/jobs/{id}/trigger"))
        .bearer_auth(&w.api.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500, "the client knows to try again");
    assert!(w.queued().await.is_empty());
    // Tried again on a healthy instance: one run, sent once.
    w.api.post_empty(&format!("/jobs/{id}/trigger")).await;
    assert_eq!(w.deliver().await.0, 1);
    assert_eq!(w.receiver.received("/fault-api").len(), 1);
}

/// Least privilege, proven: every AWS call each function made in every hosted test above
/// (run again here, one after another, so that the record is complete whatever runs beside
/// this test) is granted by its policy in template.yaml, and its policy grants nothing it
/// never used. A template with one action taken out fails the check.
#[test]
fn each_functions_policy_grants_exactly_the_calls_it_makes() {
    let scenarios: [(&str, fn()); 39] = [
        (
            "a_job_created_through_the_api_is_scheduled_fired_executed_and_readable",
            a_job_created_through_the_api_is_scheduled_fired_executed_and_readable,
        ),
        (
            "a_duplicate_delivery_sends_the_webhook_once",
            a_duplicate_delivery_sends_the_webhook_once,
        ),
        (
            "a_paused_jobs_queued_run_is_dropped_and_its_schedule_disabled",
            a_paused_jobs_queued_run_is_dropped_and_its_schedule_disabled,
        ),
        (
            "a_failed_attempt_is_retried_through_the_queue_with_linear_backoff",
            a_failed_attempt_is_retried_through_the_queue_with_linear_backoff,
        ),
        (
            "a_run_that_arrives_early_goes_back_to_wait",
            a_run_that_arrives_early_goes_back_to_wait,
        ),
        (
            "a_once_job_fires_once_then_disables_itself_and_loses_its_schedule",
            a_once_job_fires_once_then_disables_itself_and_loses_its_schedule,
        ),
        (
            "thirty_concurrent_creates_never_exceed_the_quota",
            thirty_concurrent_creates_never_exceed_the_quota,
        ),
        (
            "a_change_that_changes_nothing_writes_nothing",
            a_change_that_changes_nothing_writes_nothing,
        ),
        (
            "a_poison_message_is_reported_failed_until_sqs_moves_it_to_the_dead_letter_queue",
            a_poison_message_is_reported_failed_until_sqs_moves_it_to_the_dead_letter_queue,
        ),
        (
            "schedule_drift_left_by_scheduler_failures_is_repaired_by_reconciliation",
            schedule_drift_left_by_scheduler_failures_is_repaired_by_reconciliation,
        ),
        (
            "drift_left_by_failed_inline_syncs_is_repaired_through_the_stream",
            drift_left_by_failed_inline_syncs_is_repaired_through_the_stream,
        ),
        (
            "the_sweep_reads_each_schedule_once_per_period_in_paced_slices",
            the_sweep_reads_each_schedule_once_per_period_in_paced_slices,
        ),
        (
            "a_revoked_key_stops_working_once_the_key_cache_expires",
            a_revoked_key_stops_working_once_the_key_cache_expires,
        ),
        (
            "the_rate_limit_is_shared_by_every_api_instance",
            the_rate_limit_is_shared_by_every_api_instance,
        ),
        (
            "private_targets_are_refused_by_default",
            private_targets_are_refused_by_default,
        ),
        (
            "success_rules_decide_what_succeeds",
            success_rules_decide_what_succeeds,
        ),
        (
            "an_exponential_backoff_doubles_each_wait_up_to_its_cap",
            an_exponential_backoff_doubles_each_wait_up_to_its_cap,
        ),
        (
            "the_runs_that_fire_are_the_upcoming_runs_and_the_preview",
            the_runs_that_fire_are_the_upcoming_runs_and_the_preview,
        ),
        (
            "list_filters_compose_with_cursors",
            list_filters_compose_with_cursors,
        ),
        (
            "an_idempotency_key_makes_retries_safe",
            an_idempotency_key_makes_retries_safe,
        ),
        (
            "a_failure_streak_notifies_and_disables_and_the_schedule_follows",
            a_failure_streak_notifies_and_disables_and_the_schedule_follows,
        ),
        (
            "a_backfill_runs_the_missed_times_once",
            a_backfill_runs_the_missed_times_once,
        ),
        (
            "notices_go_to_the_jobs_url_signed_in_slacks_format",
            notices_go_to_the_jobs_url_signed_in_slacks_format,
        ),
        (
            "a_window_bounds_the_runs_and_its_schedule",
            a_window_bounds_the_runs_and_its_schedule,
        ),
        (
            "a_late_tick_fires_within_the_jobs_catch_up_window_only",
            a_late_tick_fires_within_the_jobs_catch_up_window_only,
        ),
        (
            "overlapping_runs_are_skipped_or_buffered",
            overlapping_runs_are_skipped_or_buffered,
        ),
        (
            "jitter_moves_runs_within_bounds_and_next_run_at_shows_it",
            jitter_moves_runs_within_bounds_and_next_run_at_shows_it,
        ),
        (
            "every_change_is_audited_once_with_its_key_and_request",
            every_change_is_audited_once_with_its_key_and_request,
        ),
        (
            "an_mcp_client_creates_triggers_and_reads_a_job_on_the_hosted_router",
            an_mcp_client_creates_triggers_and_reads_a_job_on_the_hosted_router,
        ),
        (
            "the_console_creates_triggers_and_shows_a_run_on_the_hosted_router",
            the_console_creates_triggers_and_shows_a_run_on_the_hosted_router,
        ),
        (
            "a_console_session_works_on_every_hosted_api_instance",
            a_console_session_works_on_every_hosted_api_instance,
        ),
        (
            "deleting_a_job_deletes_its_schedule_and_its_executions",
            deleting_a_job_deletes_its_schedule_and_its_executions,
        ),
        (
            "a_server_error_inside_an_idempotent_request_releases_its_key",
            a_server_error_inside_an_idempotent_request_releases_its_key,
        ),
        (
            "a_job_disabled_by_its_failures_gets_back_a_schedule_that_had_gone_missing",
            a_job_disabled_by_its_failures_gets_back_a_schedule_that_had_gone_missing,
        ),
        (
            "reconcile_prunes_executions_past_retention_but_keeps_each_jobs_latest_100",
            reconcile_prunes_executions_past_retention_but_keeps_each_jobs_latest_100,
        ),
        (
            "an_attempt_that_cannot_be_recorded_comes_again_and_is_sent_once",
            an_attempt_that_cannot_be_recorded_comes_again_and_is_sent_once,
        ),
        (
            "an_outcome_that_cannot_be_recorded_is_never_sent_again_and_ends_as_interrupted",
            an_outcome_that_cannot_be_recorded_is_never_sent_again_and_ends_as_interrupted,
        ),
        (
            "a_retry_that_cannot_be_enqueued_is_enqueued_by_the_redelivery",
            a_retry_that_cannot_be_enqueued_is_enqueued_by_the_redelivery,
        ),
        (
            "a_trigger_whose_message_cannot_be_sent_is_refused_and_leaves_nothing_behind",
            a_trigger_whose_message_cannot_be_sent_is_refused_and_leaves_nothing_behind,
        ),
    ];
    for (name, scenario) in scenarios {
        eprintln!("least privilege: running {name}");
        scenario();
    }
    let record = krafter_testkit::iam::recorded();
    let template = include_str!("../../../template.yaml");
    let functions = [
        "ApiFunction",
        "ExecutorFunction",
        "ReconcileFunction",
        "SyncFunction",
    ];
    let problems: Vec<String> = functions
        .iter()
        .flat_map(|f| {
            let calls = record.get(*f).cloned().unwrap_or_default();
            krafter_testkit::iam::policy_problems(template, f, &calls)
        })
        .collect();
    assert!(
        problems.is_empty(),
        "least privilege:\n{}",
        problems.join("\n")
    );

    let removed = "                - dynamodb:ConditionCheckItem\n";
    assert!(template.contains(removed));
    let without = template.replacen(removed, "", 1);
    let calls = &record["ExecutorFunction"];
    let found = krafter_testkit::iam::policy_problems(&without, "ExecutorFunction", calls);
    assert!(
        found
            .iter()
            .any(|p| p.contains("dynamodb:ConditionCheckItem on JobsTable without a grant")),
        "a template without ConditionCheckItem passed: {found:?}"
    );
}
