//! What the functions' mains need from Lambda: logs for CloudWatch, and the executor's SQS
//! event turned into a partial batch response.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};

use super::{Delivery, RunHandler};

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
