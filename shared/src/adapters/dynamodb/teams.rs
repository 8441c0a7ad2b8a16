use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::{applied, backend, decode, s, string, to_item};
use crate::domain::record::TeamRecord;
use crate::domain::{SigningSecret, TeamId, TeamSecrets};
use crate::ports::{StateStore, StoreResult, TeamStore};

/// Teams' signing secrets, one item per team.
#[derive(Clone)]
pub struct DynamoTeamStore {
    client: Client,
    table: String,
}

impl DynamoTeamStore {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
        }
    }
}

#[async_trait]
impl TeamStore for DynamoTeamStore {
    async fn get(&self, team: &TeamId) -> StoreResult<Option<TeamSecrets>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("team", s(team.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        out.item.map(decode::<TeamRecord, TeamSecrets>).transpose()
    }

    async fn insert(&self, secrets: &TeamSecrets) -> StoreResult<bool> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&TeamRecord::from(secrets))?))
            .condition_expression("attribute_not_exists(team)")
            .send()
            .await;
        applied(put)
    }

    async fn replace(&self, secrets: &TeamSecrets, expected: &SigningSecret) -> StoreResult<bool> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&TeamRecord::from(secrets))?))
            .condition_expression("secret = :expected")
            .expression_attribute_values(":expected", s(expected.as_str()))
            .send()
            .await;
        applied(put)
    }
}

/// Named background state lives in the teams table under keys no team can have (team ids
/// cannot contain `#`): `team = "#state#<name>"`, the value in `state`.
const STATE_PARTITION: &str = "#state#";

#[async_trait]
impl StateStore for DynamoTeamStore {
    async fn load(&self, name: &str) -> StoreResult<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("team", s(format!("{STATE_PARTITION}{name}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| string(i, "state"))
            .map(str::to_owned))
    }

    async fn save(&self, name: &str, value: &str) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("team", s(format!("{STATE_PARTITION}{name}")))
            .item("state", s(value))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
