use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ReturnValue, Select};

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};

use super::{
    Item, MarkerWrite, Transacted, applied, backend, decode, is_condition_failed, n, newest_first,
    number, query_page, s, set_or_remove, string, to_item, transacted,
};
use crate::domain::record::{JobRecord, job_updated_fields};
use crate::domain::{Job, JobFilter, JobId, RunStatus, StreakChange, TeamId};
use crate::ports::{
    InsertOutcome, JobStore, MarkerSwap, Page, PageRequest, RecordedRun, RunResult, StoreError,
    StoreResult, UpdateOutcome,
};

/// Jobs: one item per job, keyed by `team` and `id`.
#[derive(Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

/// Each team's job count is an item of its own in the jobs table, in a partition no team
/// can have (team ids cannot contain `#`): `team = "#count#<team>"`, `id = "jobs"`, and a
/// number attribute `jobs`. Creates and deletes change it in the same transaction as the
/// job, so the quota check is one condition (`jobs < :max`), exact under any concurrency.
const COUNT_PARTITION: &str = "#count#";
const COUNT_ID: &str = "jobs";

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

    fn count_key(team: &TeamId) -> Item {
        Item::from([
            ("team".to_owned(), s(format!("{COUNT_PARTITION}{team}"))),
            ("id".to_owned(), s(COUNT_ID)),
        ])
    }

    /// The team's job count item, if it has one yet.
    async fn stored_count(&self, team: &TeamId) -> StoreResult<Option<u64>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::count_key(team)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| number(i, COUNT_ID))
            .map(|n| n.max(0) as u64))
    }

    /// Counts the team's jobs with a query (a team whose jobs predate the count item).
    async fn counted(&self, team: &TeamId) -> StoreResult<u64> {
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
                .consistent_read(true)
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

    /// Creates the team's count item from a query, unless it exists (concurrent first
    /// creates agree: only one put succeeds, and only the transactions change it after).
    async fn start_count(&self, team: &TeamId) -> StoreResult<()> {
        let n = self.counted(team).await?;
        let mut item = Self::count_key(team);
        item.insert(COUNT_ID.to_owned(), super::n(n));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        applied(put).map(|_| ())
    }

    /// One try of the quota-checked insert: the count goes up by one if it is below
    /// `max_jobs`, and the job is put, together or not at all.
    async fn try_insert(&self, job: &Job, max_jobs: u64) -> StoreResult<Transacted> {
        let bump = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::count_key(&job.team)))
            .update_expression("SET #n = #n + :one")
            .condition_expression("#n < :max")
            .expression_attribute_names("#n", COUNT_ID)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max_jobs))
            .build()
            .map_err(StoreError::backend)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&JobRecord::from(job))?))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(StoreError::backend)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(bump).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        transacted(result)
    }

    /// One try of a counted delete: the job goes, and the count down by one, together.
    async fn try_delete(&self, team: &TeamId, id: JobId) -> StoreResult<Transacted> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(team, id)))
            .condition_expression("attribute_exists(id)")
            .build()
            .map_err(StoreError::backend)?;
        let drop = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::count_key(team)))
            .update_expression("SET #n = #n - :one")
            .condition_expression("attribute_exists(#n)")
            .expression_attribute_names("#n", COUNT_ID)
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(StoreError::backend)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().update(drop).build())
            .send()
            .await;
        transacted(result)
    }

    /// One conditional marker change (see `JobStore::swap_run_markers`).
    async fn swap_one(&self, swap: &MarkerSwap) -> StoreResult<UpdateOutcome> {
        let w = MarkerWrite::new(&swap.expected, Some(&swap.new));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&swap.team, swap.job_id)))
            .update_expression(w.update.unwrap_or_default())
            .condition_expression(format!("attribute_exists(id) AND {}", w.condition))
            .set_expression_attribute_values(Some(w.values).filter(|v| !v.is_empty()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(UpdateOutcome::Updated),
            Err(e) if is_condition_failed(&e) => {
                Ok(match self.get_item(&swap.team, swap.job_id).await {
                    Ok(Some(_)) | Err(StoreError::Corrupt(_)) => UpdateOutcome::Conflict,
                    Ok(None) => UpdateOutcome::NotFound,
                    Err(e) => return Err(e),
                })
            }
            Err(e) => Err(backend(e)),
        }
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

/// The `(team, id)` cursor of a scan, from DynamoDB's `LastEvaluatedKey`; `None` when the
/// scan stopped on a count item.
fn scan_cursor(key: &Item) -> StoreResult<Option<(TeamId, JobId)>> {
    if string(key, "team").is_some_and(|t| t.starts_with(COUNT_PARTITION)) {
        return Ok(None);
    }
    let team = string(key, "team").and_then(|t| TeamId::parse(t).ok());
    let id = string(key, "id").and_then(|i| i.parse().ok());
    match (team, id) {
        (Some(team), Some(id)) => Ok(Some((team, id))),
        _ => Err(StoreError::Corrupt(format!("scan position {key:?}"))),
    }
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn insert(&self, job: &Job, max_jobs: u64) -> StoreResult<InsertOutcome> {
        // At most twice: the second try follows creating a missing count item.
        for _ in 0..2 {
            match self.try_insert(job, max_jobs).await? {
                Transacted::Done => return Ok(InsertOutcome::Inserted),
                Transacted::Refused(reasons) if reasons.first() == Some(&true) => {
                    if self.stored_count(&job.team).await?.is_some() {
                        return Ok(InsertOutcome::QuotaExceeded);
                    }
                    self.start_count(&job.team).await?;
                }
                Transacted::Refused(reasons) => {
                    return Err(StoreError::Corrupt(format!(
                        "job {} could not be inserted: {reasons:?}",
                        job.id
                    )));
                }
            }
        }
        Err(StoreError::Corrupt(format!(
            "team {}'s job count could not be created",
            job.team
        )))
    }

    async fn get(&self, team: &TeamId, id: JobId) -> StoreResult<Option<Job>> {
        self.get_item(team, id).await
    }

    async fn list(
        &self,
        team: &TeamId,
        page: PageRequest<JobId>,
        filter: &JobFilter,
    ) -> StoreResult<Page<Job, JobId>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":t", s(team.as_str()));
        let query = newest_first(query, "team = :t", "id", page.after.map(|a| a.to_string()));
        query_page(
            query,
            page,
            decode::<JobRecord, Job>,
            |j| filter.matches(j),
            !filter.is_empty(),
            |j| j.id,
        )
        .await
    }

    async fn count(&self, team: &TeamId) -> StoreResult<u64> {
        match self.stored_count(team).await? {
            Some(n) => Ok(n),
            None => self.counted(team).await,
        }
    }

    async fn update(&self, job: &Job, expected_version: u64) -> StoreResult<UpdateOutcome> {
        let item = to_item(&JobRecord::from(job))?;
        let updated: Vec<&str> = job_updated_fields().collect();
        let (expr, names, values) = set_or_remove(&item, &updated);
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
        match self.try_delete(team, id).await? {
            Transacted::Done => Ok(true),
            Transacted::Refused(reasons) if reasons.first() == Some(&true) => Ok(false),
            // No count item (a team whose jobs predate it): a plain delete.
            Transacted::Refused(_) => {
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
        }
    }

    async fn swap_run_markers(&self, swaps: &[MarkerSwap]) -> StoreResult<Vec<UpdateOutcome>> {
        let mut out = Vec::with_capacity(swaps.len());
        for chunk in swaps.chunks(16) {
            for r in futures_util::future::join_all(chunk.iter().map(|s| self.swap_one(s))).await {
                out.push(r?);
            }
        }
        Ok(out)
    }

    async fn record_run_results(&self, results: &[RunResult]) -> StoreResult<Vec<RecordedRun>> {
        // In order: a later result for the same job must see the earlier one applied.
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            // The streak changes as the core says (`StreakChange`), in the same write.
            let streak = match r.streak {
                StreakChange::Extend => {
                    "consecutive_failures = if_not_exists(consecutive_failures, :zero) + :one"
                }
                StreakChange::Reset => "consecutive_failures = :zero",
                StreakChange::Keep => {
                    "consecutive_failures = if_not_exists(consecutive_failures, :zero)"
                }
            };
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(&r.team, r.job_id)))
                .update_expression(format!(
                    "SET last_status = :s, last_run_at = :at, last_run_id = :run, {streak}"
                ))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":run", s(r.run_id.to_string()));
            if r.streak == StreakChange::Extend {
                update = update.expression_attribute_values(":one", n(1));
            }
            let result = update
                // A later run's end recorded already wins; the same run is recorded once.
                .condition_expression(
                    "attribute_exists(id) AND (attribute_not_exists(last_run_at) \
                     OR last_run_at < :at OR (last_run_at = :at AND \
                     (attribute_not_exists(last_run_id) OR last_run_id <> :run)))",
                )
                .expression_attribute_values(":s", s(r.status.as_str()))
                .expression_attribute_values(":at", n(r.scheduled_at.timestamp()))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            out.push(match result {
                Ok(o) => RecordedRun::Applied {
                    previous: o
                        .attributes
                        .as_ref()
                        .and_then(|a| string(a, "last_status"))
                        .and_then(RunStatus::parse),
                    previous_failures: o
                        .attributes
                        .as_ref()
                        .and_then(|a| number(a, "consecutive_failures"))
                        .map_or(0, |n| n.max(0) as u32),
                },
                Err(e) if is_condition_failed(&e) => RecordedRun::Ignored,
                Err(e) => return Err(backend(e)),
            });
        }
        Ok(out)
    }

    async fn scan(
        &self,
        page: PageRequest<(TeamId, JobId)>,
    ) -> StoreResult<Page<Job, (TeamId, JobId)>> {
        // The count items are not jobs: filtered out. (A filter applies after the limit, so
        // a page may come back short; one that stopped on a count item goes on from it, so
        // that a cursor always names a job.)
        let query = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression("NOT begins_with(team, :count)")
            .expression_attribute_values(":count", s(COUNT_PARTITION));
        let mut items = Vec::new();
        let mut start = page.after.as_ref().map(|(team, id)| Self::key(team, *id));
        loop {
            let mut q = query.clone().set_exclusive_start_key(start.take());
            if let Some(limit) = page.limit {
                q = q.limit((limit as usize - items.len()).max(1) as i32);
            }
            let out = q.send().await.map_err(backend)?;
            for item in out.items.unwrap_or_default() {
                items.push(decode::<JobRecord, Job>(item)?);
            }
            let Some(last) = out.last_evaluated_key else {
                return Ok(Page { items, next: None });
            };
            match scan_cursor(&last)? {
                Some(cursor) => {
                    return Ok(Page {
                        items,
                        next: Some(cursor),
                    });
                }
                None => start = Some(last),
            }
        }
    }
}
