//! What the functions' mains need from Lambda: logs for CloudWatch, the executor's SQS event
//! and the sync function's DynamoDB stream event, each turned into a partial batch response.

use aws_lambda_events::event::dynamodb;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use super::sync::{JobChange, SyncHandler, SyncReport};
use super::{Delivery, RunHandler};
use crate::adapters::dynamodb::{Item, decode, string};
use crate::adapters::eventbridge::same_schedules;
use crate::domain::record::JobRecord;
use crate::domain::{Job, JobId, TeamId};

/// Logs for CloudWatch: JSON lines (`crate::logs`) that Logs Insights queries by job, run and
/// request id; no timestamps (Lambda adds them); level from `RUST_LOG` (default `info`). And
/// the metrics recorder, whose documents go among the log lines (`flush_metrics`).
pub fn init_lambda_tracing() {
    super::metrics::init_metrics();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    crate::logs::LogOutput {
        filter,
        format: crate::logs::LogFormat::Json,
        writer: std::io::stdout,
        ansi: false,
        time: false,
    }
    .init();
}

/// The executor function's whole job for one SQS event: handle its records and report the
/// ones that failed (`ReportBatchItemFailures`), so that only those come again.
pub async fn handle_sqs_event(handler: &RunHandler, event: SqsEvent) -> SqsBatchResponse {
    let deliveries: Vec<Delivery> = event
        .records
        .into_iter()
        .filter_map(|r| {
            Some(Delivery {
                id: r.message_id?,
                body: r.body.unwrap_or_default(),
            })
        })
        .collect();
    let mut response = SqsBatchResponse::default();
    for id in handler.handle(&deliveries).await {
        response.add_failure(id);
    }
    super::metrics::flush_metrics();
    response
}

/// The sync function's whole job for one DynamoDB stream event from the jobs table: each
/// record read as a [`JobChange`] (items that are not jobs, the per-team counts, left out),
/// handled, and the first record that must come again reported (`ReportBatchItemFailures`).
/// With what the batch did.
pub async fn handle_dynamodb_event(
    handler: &SyncHandler,
    event: dynamodb::Event,
    now: chrono::DateTime<chrono::Utc>,
) -> (DynamoDbEventResponse, SyncReport) {
    let changes: Vec<JobChange> = event
        .records
        .into_iter()
        .filter_map(|r| job_change(r, now))
        .collect();
    let (report, failed) = handler.handle(&changes).await;
    tracing::info!(?report, "stream batch handled");
    super::metrics::flush_metrics();
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence) = failed {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
    }
    (response, report)
}

/// A stream record as a change to a job; `None` for an item that is not a job.
fn job_change(r: dynamodb::EventRecord, now: chrono::DateTime<chrono::Utc>) -> Option<JobChange> {
    let keys: Item = r.change.keys.into();
    let team = string(&keys, "team").and_then(|t| TeamId::parse(t).ok())?;
    let id = string(&keys, "id").and_then(|i| i.parse::<JobId>().ok())?;
    let image = |i: serde_dynamo::Item| -> Option<Job> {
        let item: Item = i.into();
        (!item.is_empty())
            .then(|| decode::<JobRecord, Job>(item).ok())
            .flatten()
    };
    let schedules_may_differ = match (image(r.change.old_image), image(r.change.new_image)) {
        (Some(old), Some(new)) if r.event_name == "MODIFY" => !same_schedules(&old, &new, now),
        _ => true,
    };
    Some(JobChange {
        sequence: r.change.sequence_number.unwrap_or_default(),
        team,
        id,
        schedules_may_differ,
    })
}
