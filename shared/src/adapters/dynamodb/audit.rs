//! The audit log in DynamoDB: one item per entry, keyed by `team` and `id` (UUIDv7: time
//! order), with a TTL (`expires_at`, the entry's time plus the retention), so DynamoDB
//! deletes old entries without a sweep.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{backend, decode, newest_first, query_page, s, to_item};
use crate::domain::record::AuditRecord;
use crate::domain::{AuditEntry, AuditFilter, AuditId, TeamId};
use crate::ports::{AuditStore, Page, PageRequest, StoreResult};

#[derive(Clone)]
pub struct DynamoAuditStore {
    client: Client,
    table: String,
    retention: Duration,
}

impl DynamoAuditStore {
    pub fn new(client: Client, table: &str, retention: Duration) -> Self {
        Self {
            client,
            table: table.to_owned(),
            retention,
        }
    }
}

/// The item: the record plus its TTL (read back as the record alone).
#[derive(Serialize, Deserialize)]
struct AuditItem {
    #[serde(flatten)]
    record: AuditRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

#[async_trait]
impl AuditStore for DynamoAuditStore {
    async fn record(&self, entry: &AuditEntry) -> StoreResult<()> {
        let record = AuditRecord::from(entry);
        let expires_at = Some(record.at + self.retention.as_secs() as i64);
        let item = to_item(&AuditItem { record, expires_at })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn list(
        &self,
        team: &TeamId,
        page: PageRequest<AuditId>,
        filter: &AuditFilter,
    ) -> StoreResult<Page<AuditEntry, AuditId>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":team", s(team.as_str()));
        let query = newest_first(
            query,
            "team = :team",
            "id",
            page.after.map(|a| a.to_string()),
        );
        query_page(
            query,
            page,
            decode::<AuditRecord, AuditEntry>,
            |e| filter.matches(e),
            !filter.is_empty(),
            |e| e.id,
        )
        .await
    }

    /// DynamoDB's TTL deletes expired entries; nothing to do here.
    async fn prune(&self, _older_than: DateTime<Utc>) -> StoreResult<u64> {
        Ok(0)
    }
}
