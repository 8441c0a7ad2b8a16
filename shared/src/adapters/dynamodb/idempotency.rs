//! Idempotency keys in DynamoDB: one item per team and key (`pk` = `<team>#<key>`), TTL
//! `expires_at`. A claim is a put conditional on no live item, so of concurrent claims one
//! wins; DynamoDB's TTL deletes what expired.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::{Item, applied, backend, decode, n, s, to_item};
use crate::domain::record::IdempotencyRow;
use crate::domain::{IdempotencyKey, IdempotencyRecord, StoredResponse, TeamId};
use crate::ports::{IdempotencyClaim, IdempotencyStore, StoreError, StoreResult};

#[derive(Clone)]
pub struct DynamoIdempotencyStore {
    client: Client,
    table: String,
}

impl DynamoIdempotencyStore {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
        }
    }

    fn pk(
        team: &TeamId,
        key: &IdempotencyKey,
    ) -> (String, aws_sdk_dynamodb::types::AttributeValue) {
        ("pk".to_owned(), s(format!("{team}#{}", key.as_str())))
    }

    async fn read(
        &self,
        team: &TeamId,
        key: &IdempotencyKey,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let (k, v) = Self::pk(team, key);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(k, v)
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        out.item
            .map(decode::<IdempotencyRow, IdempotencyRecord>)
            .transpose()
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotencyStore {
    async fn claim(&self, record: &IdempotencyRecord) -> StoreResult<IdempotencyClaim> {
        let mut item: Item = to_item(&IdempotencyRow::from(record))?;
        let (k, v) = Self::pk(&record.team, &record.key);
        item.insert(k, v);
        // A released claim may vanish between the put and the read: try again then.
        for _ in 0..3 {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
                .expression_attribute_values(":now", n(record.created_at.timestamp()))
                .send()
                .await;
            if applied(put)? {
                return Ok(IdempotencyClaim::Claimed);
            }
            if let Some(existing) = self.read(&record.team, &record.key).await? {
                return Ok(IdempotencyClaim::Existing(existing));
            }
        }
        Err(StoreError::Corrupt(format!(
            "idempotency key {} kept changing",
            record.key.as_str()
        )))
    }

    async fn complete(
        &self,
        team: &TeamId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        let (k, v) = Self::pk(team, key);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(k, v)
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", n(response.status))
            .expression_attribute_values(":body", s(response.body.clone()));
        update = match &response.location {
            Some(location) => update
                .update_expression("SET #st = :st, body = :body, #loc = :loc")
                .expression_attribute_names("#loc", "location")
                .expression_attribute_values(":loc", s(location.clone())),
            None => update.update_expression("SET #st = :st, body = :body"),
        };
        update.send().await.map_err(backend)?;
        Ok(())
    }

    async fn release(&self, team: &TeamId, key: &IdempotencyKey) -> StoreResult<()> {
        let (k, v) = Self::pk(team, key);
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(k, v)
            .condition_expression("attribute_not_exists(#st)")
            .expression_attribute_names("#st", "status")
            .send()
            .await;
        applied(delete).map(|_| ())
    }

    /// DynamoDB's TTL deletes expired items; nothing to do here.
    async fn prune(&self, _now: DateTime<Utc>) -> StoreResult<u64> {
        Ok(0)
    }
}
