use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};

use super::{backend, n, number, s};
use crate::ports::{RateDecision, RateLimiter, StoreResult};

/// A fixed-window counter per bucket in DynamoDB, shared by every API function instance:
/// one atomic `ADD` per request. Counter items expire by TTL after their window.
#[derive(Clone)]
pub struct DynamoRateLimiter {
    client: Client,
    table: String,
    limit: u32,
    window_secs: i64,
}

impl DynamoRateLimiter {
    pub fn new(client: Client, table: &str, limit: u32, window_secs: u32) -> Self {
        Self {
            client,
            table: table.to_owned(),
            limit,
            window_secs: i64::from(window_secs.max(1)),
        }
    }
}

#[async_trait]
impl RateLimiter for DynamoRateLimiter {
    async fn hit(&self, bucket: &str, now: DateTime<Utc>) -> StoreResult<RateDecision> {
        let now = now.timestamp();
        let window = now - now.rem_euclid(self.window_secs);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("bucket", s(format!("{bucket}#{window}")))
            .update_expression("ADD hits :one SET expires_at = :expires")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(window + 2 * self.window_secs))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(backend)?;
        let hits = out
            .attributes
            .as_ref()
            .and_then(|a| number(a, "hits"))
            .unwrap_or(1)
            .max(0) as u64;
        let used = hits.min(u64::from(self.limit)) as u32;
        Ok(RateDecision {
            allowed: hits <= u64::from(self.limit),
            limit: self.limit,
            remaining: self.limit - used,
            reset_after: (window + self.window_secs - now) as u32,
        })
    }
}
