use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    ConditionCheck, DeleteRequest, Put, TransactWriteItem, Update, WriteRequest,
};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use tracing::error;

use super::{
    Item, MarkerWrite, Transacted, applied, backend, decode, n, newest_first, number, query_items,
    query_page, s, string, to_item, transacted,
};
use crate::domain::record::{ExecutionRecord, OutcomeRecord};
use crate::domain::{
    Admission, AttemptOutcome, Execution, ExecutionFilter, ExecutionId, Job, JobId, RunMarker,
    RunMessage, TeamId,
};
use crate::ports::{
    AttemptStart, BeginOutcome, ExecutionStore, Page, PageRequest, StoreError, StoreResult,
};

/// Executions: one item per attempt. The table's key is the job (`pk`) and the attempt's
/// execution id (`sk`), which is derived from the run and attempt (`ExecutionId::of`), so
/// recording an attempt conditionally ("not there yet") is what makes a duplicate delivery
/// find it, and the key's order is the listing's (the run's planned time, then the attempt).
/// No index: each write is one write unit.
///
/// Every item carries a TTL (`expires_at`, `retention` after its start), so DynamoDB expires
/// executions without a sweep. [`ExecutionStore::prune`] is the sweep that keeps each job's
/// most recent executions past that: it clears the TTL of a job's newest `keep_latest`
/// attempts when it is near, and deletes what the TTL did not.
#[derive(Clone)]
pub struct DynamoExecutionStore {
    client: Client,
    jobs_table: String,
    table: String,
    retention: Duration,
}

/// How often an attempt's begin reads its job again when the job changed meanwhile (a
/// pause, or another run taking its overlap marker).
const MARKER_TRIES: usize = 8;
/// The condition that records an attempt once per (run, attempt).
const NOT_RECORDED: &str = "attribute_not_exists(pk)";
/// Attempts begun at once (each a conditional put, or a small transaction under an overlap
/// policy).
const CONCURRENCY: usize = 16;

/// The item: the stored record plus the table's key and TTL.
#[derive(Serialize, Deserialize)]
struct ExecutionItem {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(flatten)]
    record: ExecutionRecord,
}

fn pk(team: &TeamId, job: JobId) -> String {
    format!("{}#{job}", team.as_str())
}

fn sk(id: ExecutionId) -> String {
    id.to_string()
}

fn decode_item(item: Item) -> StoreResult<Execution> {
    let item: ExecutionItem = serde_dynamo::aws_sdk_dynamodb_1::from_item(item)
        .map_err(|e| StoreError::Corrupt(format!("execution item: {e}")))?;
    Execution::try_from(item.record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl DynamoExecutionStore {
    pub fn new(client: Client, jobs_table: &str, table: &str, retention: Duration) -> Self {
        Self {
            client,
            jobs_table: jobs_table.to_owned(),
            table: table.to_owned(),
            retention,
        }
    }

    fn job_key(m: &RunMessage) -> Item {
        Item::from([
            ("team".to_owned(), s(m.team.as_str())),
            ("id".to_owned(), s(m.job_id.to_string())),
        ])
    }

    fn key(team: &TeamId, job: JobId, id: ExecutionId) -> Item {
        Item::from([
            ("pk".to_owned(), s(pk(team, job))),
            ("sk".to_owned(), s(sk(id))),
        ])
    }

    async fn get_item(&self, key: Item) -> StoreResult<Option<Execution>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        out.item.map(decode_item).transpose()
    }

    async fn recorded(&self, m: &RunMessage) -> StoreResult<Option<Execution>> {
        self.get_item(Self::key(&m.team, m.job_id, m.execution_id()))
            .await
    }

    async fn job(&self, m: &RunMessage) -> StoreResult<Option<Job>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.jobs_table)
            .set_key(Some(Self::job_key(m)))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        match out
            .item
            .map(decode::<crate::domain::record::JobRecord, Job>)
        {
            None => Ok(None),
            Some(Ok(job)) => Ok(Some(job)),
            // An unreadable job drops its run rather than every run of the batch.
            Some(Err(e @ StoreError::Corrupt(_))) => {
                error!(job_id = %m.job_id, error = %e, "a stored job could not be read: its run is dropped");
                Ok(None)
            }
            Some(Err(e)) => Err(e),
        }
    }

    async fn known_or_read(&self, known: Option<Job>, m: &RunMessage) -> StoreResult<Option<Job>> {
        match known {
            Some(job) => Ok(Some(job)),
            None => self.job(m).await,
        }
    }

    async fn begin_one(&self, start: &AttemptStart) -> StoreResult<BeginOutcome> {
        let m = &start.message;
        // The job may change between reading it and recording the attempt; the transaction
        // re-checks its generation (and its overlap marker): a change means reading it again.
        // The first time, the job as its driver just read it, if it did.
        let mut known = start.job_read.as_deref().cloned();
        for _ in 0..MARKER_TRIES {
            let job = match self.known_or_read(known.take(), m).await? {
                Some(job) if job.generation == m.generation => job,
                _ => {
                    return Ok(match self.recorded(m).await? {
                        Some(prior) => BeginOutcome::AlreadyRecorded(Box::new(prior)),
                        None => BeginOutcome::JobGone,
                    });
                }
            };
            let guarded = job.spec.firing.guards_overlap();
            if !guarded {
                match self.begin_unguarded(start, job).await? {
                    Some(prior) => return Ok(prior),
                    None => continue,
                }
            }
            let expected = guarded.then_some(&job.run_marker);
            let (marker, outcome) = match job.admit(m, start.started_at) {
                Admission::Start(marker) => (marker, None),
                Admission::Skip { running } => (
                    None,
                    Some(AttemptOutcome::skipped(running, start.started_at)),
                ),
                Admission::Buffer(marker) => match self.buffer(m, &job, &marker).await? {
                    true => return Ok(BeginOutcome::Buffered),
                    false => continue,
                },
                Admission::Wait(wait) => return Ok(BeginOutcome::Wait(wait)),
            };
            let skipped = outcome.is_some();
            let job_write = self.job_write(m, expected, marker.as_ref())?;
            let put = self.attempt_put(start, outcome)?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(job_write)
                .transact_items(TransactWriteItem::builder().put(put).build())
                .send()
                .await;
            let reasons = match transacted(result)? {
                Transacted::Done if skipped => return Ok(BeginOutcome::Skipped(Box::new(job))),
                Transacted::Done => {
                    let mut job = job;
                    if let Some(marker) = marker {
                        job.run_marker = marker;
                    }
                    return Ok(BeginOutcome::Started(Box::new(job)));
                }
                Transacted::Refused(reasons) => reasons,
            };
            match reasons[..] {
                [_, true] => {
                    if let Some(prior) = self.recorded(m).await? {
                        return Ok(BeginOutcome::AlreadyRecorded(Box::new(prior)));
                    }
                }
                [true, _] => continue,
                // Another transaction on the job at the same moment (runs of one job
                // racing for its marker): read it again.
                [false, false] if guarded => continue,
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "attempt transaction cancelled for another reason: {reasons:?}"
                    )));
                }
            }
        }
        // Redelivered later rather than dropped.
        Err(StoreError::backend(std::io::Error::other(
            "the job kept changing while its attempt began",
        )))
    }

    /// An attempt of a job without an overlap policy, just read at the message's generation:
    /// one conditional put, the attempt recorded once per (run, attempt), a single write unit
    /// where a transaction with the job costs four. A pause or change landing between the read
    /// and the put finds the attempt begun, as one landing just after a transaction would: it
    /// is in flight and finishes. `None` when the record was there and is gone again (pruned
    /// meanwhile): read the job again.
    async fn begin_unguarded(
        &self,
        start: &AttemptStart,
        job: Job,
    ) -> StoreResult<Option<BeginOutcome>> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.attempt_item(start, None)?))
            .condition_expression(NOT_RECORDED)
            .send()
            .await;
        if applied(result)? {
            return Ok(Some(BeginOutcome::Started(Box::new(job))));
        }
        Ok(self
            .recorded(&start.message)
            .await?
            .map(|prior| BeginOutcome::AlreadyRecorded(Box::new(prior))))
    }

    /// The job's part of an attempt's transaction: its generation is still the message's
    /// (and its marker still `expected`, when given), and the marker becomes `new`.
    fn job_write(
        &self,
        m: &RunMessage,
        expected: Option<&RunMarker>,
        new: Option<&RunMarker>,
    ) -> StoreResult<TransactWriteItem> {
        let marker = expected.map(|e| MarkerWrite::new(e, new));
        let mut condition = "generation = :g".to_owned();
        let mut values = marker
            .as_ref()
            .map(|w| w.values.clone())
            .unwrap_or_default();
        values.insert(":g".to_owned(), n(m.generation));
        if let Some(w) = &marker {
            condition = format!("{condition} AND {}", w.condition);
        }
        let key = Self::job_key(m);
        Ok(match marker.and_then(|w| w.update) {
            Some(update) => TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.jobs_table)
                        .set_key(Some(key))
                        .update_expression(update)
                        .condition_expression(condition)
                        .set_expression_attribute_values(Some(values))
                        .build()
                        .map_err(StoreError::backend)?,
                )
                .build(),
            None => TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.jobs_table)
                        .set_key(Some(key))
                        .condition_expression(condition)
                        .set_expression_attribute_values(Some(values))
                        .build()
                        .map_err(StoreError::backend)?,
                )
                .build(),
        })
    }

    /// The attempt's record: in flight, or with its `outcome` when it ended without being
    /// sent (skipped).
    fn attempt_item(
        &self,
        start: &AttemptStart,
        outcome: Option<AttemptOutcome>,
    ) -> StoreResult<Item> {
        let m = &start.message;
        let execution = Execution {
            id: start.execution_id(),
            team: m.team.clone(),
            job_id: m.job_id,
            run_id: m.run_id,
            trigger: m.trigger,
            scheduled_at: m.scheduled_at,
            attempt: m.attempt,
            started_at: start.started_at,
            outcome,
        };
        to_item(&ExecutionItem {
            pk: pk(&m.team, m.job_id),
            sk: sk(start.execution_id()),
            expires_at: Some(start.started_at.timestamp() + self.retention.as_secs() as i64),
            record: ExecutionRecord::from(&execution),
        })
    }

    /// The attempt's record as a transaction's part, once per (run, attempt).
    fn attempt_put(
        &self,
        start: &AttemptStart,
        outcome: Option<AttemptOutcome>,
    ) -> StoreResult<Put> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(self.attempt_item(start, outcome)?))
            .condition_expression(NOT_RECORDED)
            .build()
            .map_err(StoreError::backend)
    }

    /// Puts the run in the job's marker to wait (`buffer_one`); false if the job changed.
    async fn buffer(&self, m: &RunMessage, job: &Job, marker: &RunMarker) -> StoreResult<bool> {
        let w = MarkerWrite::new(&job.run_marker, Some(marker));
        let result = self
            .client
            .update_item()
            .table_name(&self.jobs_table)
            .set_key(Some(Self::job_key(m)))
            .update_expression(w.update.unwrap_or_default())
            .condition_expression(format!("generation = :g AND {}", w.condition))
            .set_expression_attribute_values(Some(w.values))
            .expression_attribute_values(":g", n(m.generation))
            .send()
            .await;
        applied(result)
    }

    async fn finish_one(&self, start: &AttemptStart, outcome: &AttemptOutcome) -> StoreResult<()> {
        let m = &start.message;
        let o = to_item(&OutcomeRecord::from(outcome))?;
        let (expr, names, values) = super::set_or_remove(
            &o,
            &[
                "status",
                "http_status",
                "response_body",
                "error",
                "duration_ms",
                "finished_at",
            ],
        );
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&m.team, m.job_id, start.execution_id())))
            .update_expression(expr)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .expression_attribute_names("#st", "status")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(#st)")
            .send()
            .await;
        // Not applied: never begun, or finished already; left as it is.
        applied(result).map(drop)
    }

    /// Deletes items by key, 25 at a time, retrying what DynamoDB leaves unprocessed.
    async fn delete_keys(&self, keys: Vec<Item>) -> StoreResult<()> {
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    DeleteRequest::builder()
                        .set_key(Some(k.clone()))
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(StoreError::backend)
                })
                .collect::<StoreResult<_>>()?;
            for round in 0..8u32 {
                if requests.is_empty() {
                    break;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(backend)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if !requests.is_empty() {
                    tokio::time::sleep(Duration::from_millis(50 << round)).await;
                }
            }
            if !requests.is_empty() {
                return Err(StoreError::Corrupt(
                    "DynamoDB kept deletes unprocessed".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ExecutionStore for DynamoExecutionStore {
    async fn begin_attempts(&self, starts: &[AttemptStart]) -> StoreResult<Vec<BeginOutcome>> {
        // Jobs are begun concurrently, each job's starts one after the other in order: a
        // repeat of an attempt finds the first one recorded, and of a job's runs racing for
        // its overlap marker the first in order wins, as in one SQLite transaction.
        let mut by_job: Vec<(JobId, Vec<usize>)> = Vec::new();
        let mut index: HashMap<JobId, usize> = HashMap::new();
        for (i, s) in starts.iter().enumerate() {
            let group = *index.entry(s.message.job_id).or_insert_with(|| {
                by_job.push((s.message.job_id, Vec::new()));
                by_job.len() - 1
            });
            by_job[group].1.push(i);
        }
        let mut out: Vec<Option<BeginOutcome>> = vec![None; starts.len()];
        for chunk in by_job.chunks(CONCURRENCY) {
            let begun = join_all(chunk.iter().map(|(_, of_job)| async move {
                let mut outcomes = Vec::with_capacity(of_job.len());
                for &i in of_job {
                    outcomes.push((i, self.begin_one(&starts[i]).await?));
                }
                StoreResult::Ok(outcomes)
            }))
            .await;
            for outcomes in begun {
                for (i, o) in outcomes? {
                    out[i] = Some(o);
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every start has an outcome"))
            .collect())
    }

    async fn finish_attempts(&self, done: &[(AttemptStart, AttemptOutcome)]) -> StoreResult<()> {
        for chunk in done.chunks(CONCURRENCY) {
            for r in join_all(chunk.iter().map(|(s, o)| self.finish_one(s, o))).await {
                r?;
            }
        }
        Ok(())
    }

    async fn list(
        &self,
        team: &TeamId,
        job: JobId,
        page: PageRequest<ExecutionId>,
        filter: &ExecutionFilter,
    ) -> StoreResult<Page<Execution, ExecutionId>> {
        // Attempts in flight are filtered out (after DynamoDB's limit: `query_items` goes on
        // while a page is short).
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#st", "status")
            .filter_expression("attribute_exists(#st)")
            .expression_attribute_values(":pk", s(pk(team, job)));
        let query = newest_first(query, "pk = :pk", "sk", page.after.map(sk));
        query_page(
            query,
            page,
            decode_item,
            |e| filter.matches(e),
            !filter.is_empty(),
            |e| e.id,
        )
        .await
    }

    async fn get(
        &self,
        team: &TeamId,
        job: JobId,
        id: ExecutionId,
    ) -> StoreResult<Option<Execution>> {
        self.get_item(Self::key(team, job, id)).await
    }

    async fn delete_for_job(&self, team: &TeamId, job: JobId) -> StoreResult<()> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk(team, job)))
            .projection_expression("pk, sk");
        self.delete_keys(query_items(query, None).await?).await
    }

    async fn prune(&self, older_than: DateTime<Utc>, keep_latest: u32) -> StoreResult<u64> {
        // Every finished attempt, per job: (id, started_at, expires_at, key).
        type Entry = (String, i64, Option<i64>, Item);
        let mut per_job: HashMap<String, Vec<Entry>> = HashMap::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .expression_attribute_names("#st", "status")
                .filter_expression("attribute_exists(#st)")
                .projection_expression("pk, sk, id, started_at, expires_at")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(backend)?;
            for item in out.items.unwrap_or_default() {
                let (Some(pk), Some(sk), Some(id), Some(started)) = (
                    string(&item, "pk"),
                    string(&item, "sk"),
                    string(&item, "id"),
                    number(&item, "started_at"),
                ) else {
                    continue;
                };
                let key = Item::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))]);
                per_job.entry(pk.to_owned()).or_default().push((
                    id.to_owned(),
                    started,
                    number(&item, "expires_at"),
                    key,
                ));
            }
            match out.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        let cutoff = older_than.timestamp();
        // A kept execution whose TTL falls before this would expire before the next sweep.
        let soon = cutoff + self.retention.as_secs() as i64 + 2 * 86_400;
        let mut doomed = Vec::new();
        for entries in per_job.values_mut() {
            entries.sort_by(|a, b| b.0.cmp(&a.0));
            for (i, (_, started, expires, key)) in entries.drain(..).enumerate() {
                if i < keep_latest as usize {
                    if expires.is_some_and(|e| e < soon) {
                        self.client
                            .update_item()
                            .table_name(&self.table)
                            .set_key(Some(key))
                            .update_expression("REMOVE expires_at")
                            .send()
                            .await
                            .map_err(backend)?;
                    }
                } else if started < cutoff {
                    doomed.push(key);
                }
            }
        }
        let n = doomed.len() as u64;
        self.delete_keys(doomed).await?;
        Ok(n)
    }
}
