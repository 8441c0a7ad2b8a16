use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::{applied, backend, decode, s, to_item};
use crate::domain::record::TeamRecord;
use crate::domain::{SigningSecret, TeamId, TeamSecrets};
use crate::ports::{StoreResult, TeamStore};

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
