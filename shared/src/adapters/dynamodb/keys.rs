use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Utc};

use super::{Item, applied, backend, decode, n, s, to_item};
use crate::domain::record::KeyRecord;
use crate::domain::{ApiKey, KeyHash, KeyPrefix, TeamId};
use crate::ports::{KeyStore, StoreResult};

/// API keys, one item per key hash. Listing and revoking scan the table: they are operator
/// commands, run by hand, never on a request's path.
#[derive(Clone)]
pub struct DynamoKeyStore {
    client: Client,
    table: String,
}

impl DynamoKeyStore {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
        }
    }

    /// Every item matching `filter` (with its values), following the scan's pages.
    async fn scan_all(&self, filter: Option<(&str, &str, String)>) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if let Some((expr, name, value)) = &filter {
                q = q
                    .filter_expression(*expr)
                    .expression_attribute_values(*name, s(value.clone()));
            }
            let out = q.send().await.map_err(backend)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(items),
            }
        }
    }
}

fn oldest_first(mut keys: Vec<ApiKey>) -> Vec<ApiKey> {
    keys.sort_by(|a, b| (a.created_at, a.prefix.as_str()).cmp(&(b.created_at, b.prefix.as_str())));
    keys
}

#[async_trait]
impl KeyStore for DynamoKeyStore {
    async fn insert(&self, key: &ApiKey) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&KeyRecord::from(key))?))
            .condition_expression("attribute_not_exists(#h)")
            .expression_attribute_names("#h", "hash")
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("hash", s(hash.to_hex()))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        out.item.map(decode::<KeyRecord, ApiKey>).transpose()
    }

    async fn list(&self, team: Option<&TeamId>) -> StoreResult<Vec<ApiKey>> {
        let filter = team.map(|t| ("team = :t", ":t", t.as_str().to_owned()));
        let items = self.scan_all(filter).await?;
        let keys = items
            .into_iter()
            .map(decode::<KeyRecord, ApiKey>)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(oldest_first(keys))
    }

    async fn revoke(&self, prefix: &KeyPrefix, at: DateTime<Utc>) -> StoreResult<Vec<ApiKey>> {
        let filter = Some(("prefix = :p", ":p", prefix.as_str().to_owned()));
        let mut revoked = Vec::new();
        for item in self.scan_all(filter).await? {
            let Some(hash) = item.get("hash").cloned() else {
                continue;
            };
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("hash", hash)
                .update_expression("SET revoked_at = if_not_exists(revoked_at, :at)")
                .expression_attribute_values(":at", n(at.timestamp()))
                .return_values(ReturnValue::AllNew)
                .send()
                .await
                .map_err(backend)?;
            if let Some(attributes) = out.attributes {
                revoked.push(decode::<KeyRecord, ApiKey>(attributes)?);
            }
        }
        Ok(oldest_first(revoked))
    }

    async fn touch(&self, hash: &KeyHash, at: DateTime<Utc>) -> StoreResult<()> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("hash", s(hash.to_hex()))
            .update_expression("SET last_used_at = :at")
            .condition_expression(
                "attribute_exists(#h) AND (attribute_not_exists(last_used_at) OR last_used_at < :at)",
            )
            .expression_attribute_names("#h", "hash")
            .expression_attribute_values(":at", n(at.timestamp()))
            .send()
            .await;
        // Not applied: the key is gone, or a later use was recorded first.
        applied(update).map(drop)
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(1)
            .projection_expression("#h")
            .expression_attribute_names("#h", "hash")
            .send()
            .await
            .map_err(backend)?;
        Ok(out.count == 0)
    }
}
