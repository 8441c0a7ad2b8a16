use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ReturnValue, Select};

use super::{
    Item, backend, decode, is_condition_failed, n, newest_first, query_items, s, set_or_remove,
    string, to_item,
};
use crate::domain::record::JobRecord;
use crate::domain::{Job, JobId, RunStatus, TeamId};
use crate::ports::{
    JobStore, Page, PageRequest, RunResult, StoreError, StoreResult, UpdateOutcome, paginate,
};

/// Jobs: one item per job, keyed by `team` and `id`.
#[derive(Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

/// The attributes `JobStore::update` writes: definition and state, never the run status
/// fields or `created_at`.
const UPDATED_ATTRIBUTES: &[&str] = &[
    "name",
    "schedule_type",
    "schedule",
    "timezone",
    "url",
    "method",
    "headers",
    "body",
    "timeout_ms",
    "max_retries",
    "failure_notify",
    "enabled",
    "generation",
    "version",
    "next_run_at",
    "updated_at",
];

impl DynamoJobStore {
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
        }
    }

    fn key(team: &TeamId, id: JobId) -> Item {
        Item::from([
            ("team".to_owned(), s(team.as_str())),
            ("id".to_owned(), s(id.to_string())),
        ])
    }

    pub(crate) async fn get_item(&self, team: &TeamId, id: JobId) -> StoreResult<Option<Job>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(team, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        out.item.map(decode::<JobRecord, Job>).transpose()
    }
}

/// The `(team, id)` cursor of a scan, from or to DynamoDB's `LastEvaluatedKey`.
fn scan_cursor(key: &Item) -> StoreResult<(TeamId, JobId)> {
    let team = string(key, "team").and_then(|t| TeamId::parse(t).ok());
    let id = string(key, "id").and_then(|i| i.parse().ok());
    match (team, id) {
        (Some(team), Some(id)) => Ok((team, id)),
        _ => Err(StoreError::Corrupt(format!("scan position {key:?}"))),
    }
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn insert(&self, job: &Job) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&JobRecord::from(job))?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get(&self, team: &TeamId, id: JobId) -> StoreResult<Option<Job>> {
        self.get_item(team, id).await
    }

    async fn list(&self, team: &TeamId, page: PageRequest<JobId>) -> StoreResult<Page<Job, JobId>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":t", s(team.as_str()));
        let query = newest_first(query, "team = :t", "id", page.after.map(|a| a.to_string()));
        // One more than asked tells whether another page follows.
        let want = page.limit.map(|l| l as usize + 1);
        let items = query_items(query, want)
            .await?
            .into_iter()
            .map(decode::<JobRecord, Job>)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(paginate(items, page.limit, |j| j.id))
    }

    async fn count(&self, team: &TeamId) -> StoreResult<u64> {
        let mut total = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .select(Select::Count)
                .key_condition_expression("team = :t")
                .expression_attribute_values(":t", s(team.as_str()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            total += out.count.max(0) as u64;
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => return Ok(total),
            }
        }
    }

    async fn update(&self, job: &Job, expected_version: u64) -> StoreResult<UpdateOutcome> {
        let item = to_item(&JobRecord::from(job))?;
        let (expr, names, values) = set_or_remove(&item, UPDATED_ATTRIBUTES);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&job.team, job.id)))
            .update_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .expression_attribute_names("#expected", "version")
            .expression_attribute_values(":expected", n(expected_version))
            .condition_expression("attribute_exists(id) AND #expected = :expected")
            .send()
            .await;
        match result {
            Ok(_) => Ok(UpdateOutcome::Updated),
            Err(e) if is_condition_failed(&e) => Ok(match self.get_item(&job.team, job.id).await {
                Ok(Some(_)) | Err(StoreError::Corrupt(_)) => UpdateOutcome::Conflict,
                Ok(None) => UpdateOutcome::NotFound,
                Err(e) => return Err(e),
            }),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, team: &TeamId, id: JobId) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(team, id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(backend)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn record_run_results(
        &self,
        results: &[RunResult],
    ) -> StoreResult<Vec<Option<Option<RunStatus>>>> {
        // In order: a later result for the same job must see the earlier one applied.
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(&r.team, r.job_id)))
                .update_expression("SET last_status = :s, last_run_at = :at")
                .condition_expression(
                    "attribute_exists(id) AND \
                     (attribute_not_exists(last_run_at) OR last_run_at <= :at)",
                )
                .expression_attribute_values(":s", s(r.status.as_str()))
                .expression_attribute_values(":at", n(r.scheduled_at.timestamp()))
                .return_values(ReturnValue::UpdatedOld)
                .send()
                .await;
            out.push(match result {
                Ok(o) => Some(
                    o.attributes
                        .as_ref()
                        .and_then(|a| string(a, "last_status"))
                        .and_then(RunStatus::parse),
                ),
                Err(e) if is_condition_failed(&e) => None,
                Err(e) => return Err(backend(e)),
            });
        }
        Ok(out)
    }

    async fn scan(
        &self,
        page: PageRequest<(TeamId, JobId)>,
    ) -> StoreResult<Page<Job, (TeamId, JobId)>> {
        let mut q = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true);
        if let Some(limit) = page.limit {
            q = q.limit(limit as i32);
        }
        if let Some((team, id)) = &page.after {
            q = q.set_exclusive_start_key(Some(Self::key(team, *id)));
        }
        let out = q.send().await.map_err(backend)?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(decode::<JobRecord, Job>)
            .collect::<StoreResult<Vec<_>>>()?;
        let next = out
            .last_evaluated_key
            .as_ref()
            .map(scan_cursor)
            .transpose()?;
        Ok(Page { items, next })
    }
}
