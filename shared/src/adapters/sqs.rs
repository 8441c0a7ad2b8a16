//! The hosted run queue: an SQS standard queue (plus its dead-letter queue).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::{DateTime, Utc};

use crate::domain::{QueuedMessage, RunMessage};
use crate::ports::{Clock, RunQueue, StoreError, StoreResult};

/// The longest delay SQS gives one message.
pub const MAX_DELAY_SECS: i64 = 900;

/// Sends runs to SQS as JSON [`QueuedMessage`]s with a `DelaySeconds` up to their delivery
/// time (at most 15 minutes; the executor sends a run that arrives early back for the rest).
#[derive(Clone)]
pub struct SqsRunQueue {
    client: Client,
    queue_url: String,
    clock: Arc<dyn Clock>,
}

/// Whole seconds from `now` until `at`, within what SQS accepts.
pub fn delay_seconds(at: DateTime<Utc>, now: DateTime<Utc>) -> i32 {
    let ms = (at - now).num_milliseconds();
    ((ms + 999) / 1000).clamp(0, MAX_DELAY_SECS) as i32
}

impl SqsRunQueue {
    pub fn new(client: Client, queue_url: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            queue_url: queue_url.to_owned(),
            clock,
        }
    }

    /// Sends message bodies with their delays, ten per request, retrying entries SQS
    /// reports as failed.
    pub async fn send(&self, messages: &[(String, i32)]) -> StoreResult<()> {
        for chunk in messages.chunks(10) {
            let mut pending: Vec<usize> = (0..chunk.len()).collect();
            for _ in 0..3 {
                if pending.is_empty() {
                    break;
                }
                let entries = pending
                    .iter()
                    .map(|&i| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(&chunk[i].0)
                            .delay_seconds(chunk[i].1)
                            .build()
                            .map_err(StoreError::backend)
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(StoreError::backend)?;
                pending = out
                    .failed
                    .iter()
                    .filter_map(|f| f.id.parse().ok())
                    .collect();
            }
            if !pending.is_empty() {
                return Err(StoreError::Corrupt(format!(
                    "SQS refused {} messages three times",
                    pending.len()
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl RunQueue for SqsRunQueue {
    async fn enqueue(&self, runs: &[(RunMessage, DateTime<Utc>)]) -> StoreResult<()> {
        let now = self.clock.now();
        let messages = runs
            .iter()
            .map(|(run, at)| {
                let body = QueuedMessage::Run {
                    run: run.clone(),
                    deliver_at: *at,
                };
                let json = serde_json::to_string(&body).map_err(StoreError::backend)?;
                Ok((json, delay_seconds(*at, now)))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.send(&messages).await
    }
}
