//! `krafter aws`: the hosted backend on a local emulator. `init` creates the template's
//! resources; `tick` does what AWS does around the functions, round after round.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use krafter_ops::local::{deliver_queued, fire_due_schedules};
use krafter_ops::provision::provision;
use krafter_ops::streams::StreamSource;
use krafter_shared::hosted::{AwsClients, HostedResources, process_env};

use crate::stores::aws_clients;
use crate::{AnyError, say};

#[derive(Subcommand)]
pub enum AwsCommand {
    /// Create the tables, queues and schedule group `template.yaml` declares, on the AWS
    /// endpoint configured (meant for a local emulator: AWS_ENDPOINT_URL). Prints the
    /// functions' environment as `export` lines.
    Init {
        /// Resource names start with this.
        #[arg(long, default_value = "krafter-local")]
        prefix: String,
    },
    /// Do locally what AWS does around the functions: fire due EventBridge schedules into
    /// SQS (an emulator never fires them), and hand queued messages to the executor
    /// function, and the jobs table's stream to the sync function. Reads the functions'
    /// KRAFTER_* environment and AWS_ENDPOINT_URL.
    Tick {
        /// The executor function's invoke URL (`cargo lambda watch` serves it).
        #[arg(
            long,
            default_value = "http://127.0.0.1:9000/2015-03-31/functions/executor/invocations"
        )]
        invoke_url: String,
        /// The sync function's invoke URL (`infra/local-hosted` passes
        /// `http://127.0.0.1:9000/2015-03-31/functions/sync/invocations`). Without it the
        /// jobs table's stream is not read: schedules follow the API's inline sync only.
        #[arg(long)]
        sync_invoke_url: Option<String>,
        /// Seconds between rounds.
        #[arg(long, default_value_t = 1)]
        every_secs: u64,
        /// One round (schedules due in the last period), then exit.
        #[arg(long)]
        once: bool,
    },
}

pub async fn aws(cmd: AwsCommand) -> Result<(), AnyError> {
    let clients = aws_clients().await;
    match cmd {
        AwsCommand::Init { prefix } => init(&clients, &prefix).await,
        AwsCommand::Tick {
            invoke_url,
            sync_invoke_url,
            every_secs,
            once,
        } => {
            let urls = Urls {
                executor: invoke_url,
                sync: sync_invoke_url,
            };
            tick(&clients, &urls, every_secs, once).await
        }
    }
}

async fn init(clients: &AwsClients, prefix: &str) -> Result<(), AnyError> {
    let r = provision(clients, prefix).await?;
    for (name, value) in [
        ("KRAFTER_JOBS_TABLE", &r.tables.jobs),
        ("KRAFTER_EXECUTIONS_TABLE", &r.tables.executions),
        ("KRAFTER_KEYS_TABLE", &r.tables.keys),
        ("KRAFTER_TEAMS_TABLE", &r.tables.teams),
        ("KRAFTER_RATE_LIMITS_TABLE", &r.tables.rate_limits),
        ("KRAFTER_IDEMPOTENCY_TABLE", &r.tables.idempotency),
        ("KRAFTER_AUDIT_TABLE", &r.tables.audit),
        ("KRAFTER_RUN_QUEUE_URL", &r.run_queue_url),
        ("KRAFTER_RUN_QUEUE_ARN", &r.run_queue_arn),
        ("KRAFTER_DEAD_LETTER_QUEUE_URL", &r.dead_letter_queue_url),
        ("KRAFTER_DEAD_LETTER_QUEUE_ARN", &r.dead_letter_queue_arn),
        ("KRAFTER_SCHEDULE_GROUP", &r.schedule_group),
        ("KRAFTER_SCHEDULER_ROLE_ARN", &r.scheduler_role_arn),
    ] {
        println!("export {name}='{value}'");
    }
    say(format_args!(
        "krafter: created the hosted resources ({prefix}-*)"
    ));
    Ok(())
}

/// The functions' invoke URLs.
struct Urls {
    executor: String,
    sync: Option<String>,
}

/// Rounds of [`round`] every `every_secs` (at least 1), or one with `once`.
async fn tick(
    clients: &AwsClients,
    urls: &Urls,
    every_secs: u64,
    once: bool,
) -> Result<(), AnyError> {
    let r = process_env().resources()?;
    let http = reqwest::Client::new();
    let mut stream = match &urls.sync {
        Some(url) => {
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .map_err(|_| "krafter aws tick: AWS_ENDPOINT_URL (the emulator) is not set")?;
            Some((StreamSource::open(&endpoint, &r.tables.jobs).await?, url))
        }
        None => None,
    };
    // The first round looks back one period, so that `--once` run every period misses
    // nothing.
    let mut after = Utc::now() - chrono::Duration::seconds(every_secs.max(1) as i64);
    loop {
        after = round(clients, &r, &urls.executor, &http, after).await?;
        if let Some((stream, url)) = &mut stream {
            let (records, failed) = deliver_stream(stream, url, &http).await?;
            if records > 0 {
                say(format_args!(
                    "krafter aws tick: {records} job change(s) delivered to the sync function, {failed} batch(es) to retry"
                ));
            }
        }
        if once {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(every_secs.max(1))).await;
    }
}

/// One round: fires the schedules due since `after`, then delivers what is queued. Returns
/// the end of the period it covered, where the next round starts.
async fn round(
    clients: &AwsClients,
    r: &HostedResources,
    invoke_url: &str,
    http: &reqwest::Client,
    after: DateTime<Utc>,
) -> Result<DateTime<Utc>, AnyError> {
    let until = Utc::now();
    let fired = fire_due_schedules(clients, &r.schedule_group, after, until).await?;
    let (delivered, failed) = deliver_all_queued(clients, r, invoke_url, http).await?;
    if fired + delivered > 0 {
        say(format_args!(
            "krafter aws tick: {fired} schedule(s) fired, {delivered} message(s) delivered, {failed} failed"
        ));
    }
    Ok(until)
}

/// Hands the run queue's visible messages to the executor, batch after batch, until a batch
/// is empty or wholly failed. Returns (delivered, failed).
async fn deliver_all_queued(
    clients: &AwsClients,
    r: &HostedResources,
    invoke_url: &str,
    http: &reqwest::Client,
) -> Result<(usize, usize), AnyError> {
    let (mut delivered, mut failed) = (0, 0);
    loop {
        let (d, f) = deliver_queued(
            clients,
            &r.run_queue_url,
            &r.run_queue_arn,
            invoke_url,
            http,
        )
        .await?;
        delivered += d;
        failed += f;
        if d == 0 || d == f {
            return Ok((delivered, failed));
        }
    }
}

/// Hands the jobs table's new stream records to the sync function, a batch per shard;
/// rewinds a shard to the record it reports failed. Returns (records, failed batches).
async fn deliver_stream(
    stream: &mut StreamSource,
    sync_url: &str,
    http: &reqwest::Client,
) -> Result<(usize, usize), AnyError> {
    let (mut records, mut failed) = (0, 0);
    for batch in stream.read().await? {
        records += batch.event["Records"].as_array().map_or(0, Vec::len);
        let response = http
            .post(sync_url)
            .header("content-type", "application/json")
            .body(batch.event.to_string())
            .send()
            .await?;
        let ok = response.status().is_success();
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await?).unwrap_or_default();
        let first_failed = body["batchItemFailures"][0]["itemIdentifier"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                // The whole batch failed: from its first record.
                (!ok)
                    .then(|| batch.event["Records"][0]["dynamodb"]["SequenceNumber"].as_str())
                    .flatten()
                    .map(str::to_owned)
            });
        if let Some(sequence) = first_failed {
            failed += 1;
            stream.rewind(&batch.shard, &sequence);
        }
    }
    Ok((records, failed))
}
