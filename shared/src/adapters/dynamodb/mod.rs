//! DynamoDB adapters for the hosted backend. Each receives its client and table names; none
//! builds a client. Items are the core's stored records (`domain::record`) through
//! `serde_dynamo`, plus the key attributes each table needs. Every query is keyed by team.
//!
//! | table | key | holds |
//! |---|---|---|
//! | jobs | `team` + `id` | one item per job (job ids are UUIDv7: `id` order is creation order) |
//! | executions | `pk` = `<team>#<job id>` + `sk` = the execution id (`ExecutionId::of` the run and attempt: key order is planned time, then attempt); no index | one item per attempt; TTL `expires_at` |
//! | keys | `hash` | one item per API key (SHA-256 of the secret) |
//! | teams | `team` | one item per team: its webhook signing secrets |
//! | rate limits | `bucket` = `<caller>#<window start>` | one counter per window; TTL `expires_at` |
//! | idempotency | `pk` = `<team>#<key>` | one item per idempotency key, with its response; TTL `expires_at` |
//! | audit | `team` + `id` | one item per audit entry (UUIDv7 ids: time order); TTL `expires_at` |

mod audit;
mod executions;
mod idempotency;
mod jobs;
mod keys;
mod rate_limiter;
mod teams;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use audit::DynamoAuditStore;
pub use executions::DynamoExecutionStore;
pub use idempotency::DynamoIdempotencyStore;
pub use jobs::DynamoJobStore;
pub use keys::DynamoKeyStore;
pub use rate_limiter::DynamoRateLimiter;
pub use teams::DynamoTeamStore;

use crate::domain::RunMarker;
use crate::domain::record::RecordError;
use crate::ports::{Page, PageRequest, StoreError, StoreResult, paginate};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The hosted store's table names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    pub jobs: String,
    pub executions: String,
    pub keys: String,
    pub teams: String,
    pub rate_limits: String,
    pub idempotency: String,
    pub audit: String,
}

/// The DynamoDB stores, sharing one client.
#[derive(Clone)]
pub struct DynamoStores {
    pub jobs: DynamoJobStore,
    pub executions: DynamoExecutionStore,
    pub keys: DynamoKeyStore,
    pub teams: DynamoTeamStore,
    pub idempotency: DynamoIdempotencyStore,
    pub audit: DynamoAuditStore,
}

impl DynamoStores {
    /// `retention`: how long finished executions are kept (their TTL), see
    /// [`DynamoExecutionStore`]; `audit_retention`: how long audit entries are.
    pub fn new(
        client: Client,
        tables: &Tables,
        retention: std::time::Duration,
        audit_retention: std::time::Duration,
    ) -> Self {
        Self {
            jobs: DynamoJobStore::new(client.clone(), &tables.jobs),
            executions: DynamoExecutionStore::new(
                client.clone(),
                &tables.jobs,
                &tables.executions,
                retention,
            ),
            keys: DynamoKeyStore::new(client.clone(), &tables.keys),
            teams: DynamoTeamStore::new(client.clone(), &tables.teams),
            idempotency: DynamoIdempotencyStore::new(client.clone(), &tables.idempotency),
            audit: DynamoAuditStore::new(client, &tables.audit, audit_retention),
        }
    }
}

/// An SDK failure, keeping its source (with the service's error code) for the logs.
pub(crate) fn backend<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::backend(e)
}

/// A conditional write's result: whether it was applied (false: its condition failed).
pub(crate) fn applied<T, E, R>(result: Result<T, SdkError<E, R>>) -> StoreResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(backend(e)),
    }
}

/// How a `TransactWriteItems` call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Transacted {
    Done,
    /// Cancelled: per item in order, whether its condition was the one that failed.
    Refused(Vec<bool>),
}

/// Reads a transaction's result: done, refused by conditions (which ones), or failed.
pub(crate) fn transacted<T, R>(
    result: Result<T, SdkError<TransactWriteItemsError, R>>,
) -> StoreResult<Transacted>
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(Transacted::Done),
        Err(e) => match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                Ok(Transacted::Refused(
                    c.cancellation_reasons()
                        .iter()
                        .map(|r| r.code() == Some("ConditionalCheckFailed"))
                        .collect(),
                ))
            }
            _ => Err(backend(e)),
        },
    }
}

/// Whether an SDK error is the service's `ConditionalCheckFailedException`.
pub(crate) fn is_condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

pub(crate) fn to_item<T: Serialize>(value: &T) -> StoreResult<Item> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(value).map_err(StoreError::backend)
}

/// Reads an item back into a stored record, then into a domain value.
pub(crate) fn decode<R, T>(item: Item) -> StoreResult<T>
where
    R: DeserializeOwned,
    T: TryFrom<R, Error = RecordError>,
{
    let record: R = serde_dynamo::aws_sdk_dynamodb_1::from_item(item)
        .map_err(|e| StoreError::Corrupt(format!("item: {e}")))?;
    T::try_from(record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A number attribute of an item, if present and numeric.
pub(crate) fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub(crate) fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// `SET #a = :a, ... REMOVE #b, ...` for the named attributes of `item`: those present are
/// set, those absent removed. Returns the expression, its names and its values.
pub(crate) fn set_or_remove(
    item: &Item,
    attributes: &[&str],
) -> (String, HashMap<String, String>, Item) {
    let mut set = Vec::new();
    let mut remove = Vec::new();
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    for (i, a) in attributes.iter().enumerate() {
        let name = format!("#a{i}");
        names.insert(name.clone(), (*a).to_owned());
        match item.get(*a) {
            Some(v) if !matches!(v, AttributeValue::Null(_)) => {
                let value = format!(":a{i}");
                set.push(format!("{name} = {value}"));
                values.insert(value, v.clone());
            }
            _ => remove.push(name),
        }
    }
    let mut expr = String::new();
    if !set.is_empty() {
        expr.push_str("SET ");
        expr.push_str(&set.join(", "));
    }
    if !remove.is_empty() {
        expr.push_str(" REMOVE ");
        expr.push_str(&remove.join(", "));
    }
    (expr, names, values)
}

/// A conditional change of a job item's overlap marker (`run_marker`): the condition that
/// it is still `expected`, and the update to `new` (`None`: the marker is not changed).
pub(crate) struct MarkerWrite {
    pub condition: &'static str,
    pub update: Option<&'static str>,
    pub values: Item,
}

impl MarkerWrite {
    pub fn new(expected: &RunMarker, new: Option<&RunMarker>) -> Self {
        let mut values = HashMap::new();
        let condition = match expected.to_stored() {
            None => "attribute_not_exists(run_marker)",
            Some(old) => {
                values.insert(":old_marker".to_owned(), s(old));
                "run_marker = :old_marker"
            }
        };
        let update = new.map(|m| match m.to_stored() {
            None => "REMOVE run_marker",
            Some(text) => {
                values.insert(":new_marker".to_owned(), s(text));
                "SET run_marker = :new_marker"
            }
        });
        Self {
            condition,
            update,
            values,
        }
    }
}

/// A newest-first listing of one partition: `partition` is its key condition, and `after`
/// (exclusive) continues below a cursor on the sort attribute `sort`.
pub(crate) fn newest_first(
    query: QueryFluentBuilder,
    partition: &str,
    sort: &str,
    after: Option<String>,
) -> QueryFluentBuilder {
    let query = query.consistent_read(true).scan_index_forward(false);
    match after {
        Some(after) => query
            .key_condition_expression(format!("{partition} AND {sort} < :after"))
            .expression_attribute_values(":after", s(after)),
        None => query.key_condition_expression(partition),
    }
}

/// A page of `query`'s items that `keep` accepts, after the ones `query` starts past: one
/// more than `page.limit` read to tell whether another page follows, and the next page's
/// cursor when one does (the DynamoDB side of `ports::filtered_page`).
pub(crate) async fn query_page<T, C: Copy>(
    query: QueryFluentBuilder,
    page: PageRequest<C>,
    decode: impl Fn(Item) -> StoreResult<T>,
    keep: impl Fn(&T) -> bool,
    filtered: bool,
    cursor: impl Fn(&T) -> C,
) -> StoreResult<Page<T, C>> {
    let want = page.limit.map(|l| l as usize + 1);
    let items = query_matching(query, want, decode, keep, filtered).await?;
    Ok(paginate(items, page.limit, cursor))
}

/// Runs `query` page after page, decoding each item and keeping those `keep` accepts,
/// until `want` are kept (all of them when `None`). Each request asks only for what is
/// still missing when nothing is filtered here; a filter (DynamoDB's, or `keep`) applies
/// after DynamoDB's limit, so a page cut short by it goes on.
pub(crate) async fn query_matching<T>(
    query: QueryFluentBuilder,
    want: Option<usize>,
    decode: impl Fn(Item) -> StoreResult<T>,
    keep: impl Fn(&T) -> bool,
    filtered: bool,
) -> StoreResult<Vec<T>> {
    let mut kept = Vec::new();
    let mut start = None;
    loop {
        let mut q = query.clone().set_exclusive_start_key(start.take());
        if let Some(want) = want {
            let missing = want - kept.len();
            q = q.limit(if filtered { missing.max(100) } else { missing } as i32);
        }
        let out = q.send().await.map_err(backend)?;
        for item in out.items.unwrap_or_default() {
            let value = decode(item)?;
            if keep(&value) {
                kept.push(value);
                if want.is_some_and(|w| kept.len() >= w) {
                    // Stopped inside a page: the caller's cursor is the last item kept.
                    return Ok(kept);
                }
            }
        }
        match out.last_evaluated_key {
            Some(k) if want.is_none_or(|w| kept.len() < w) => start = Some(k),
            _ => return Ok(kept),
        }
    }
}

/// Runs `query` page after page until it has returned `want` items (all of them when
/// `None`). Each request asks only for what is still missing; a filter applies after
/// DynamoDB's limit, so a page cut short by it goes on.
pub(crate) async fn query_items(
    query: QueryFluentBuilder,
    want: Option<usize>,
) -> StoreResult<Vec<Item>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let mut q = query.clone().set_exclusive_start_key(start.take());
        if let Some(want) = want {
            q = q.limit((want - items.len()) as i32);
        }
        let out = q.send().await.map_err(backend)?;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(k) if want.is_none_or(|w| items.len() < w) => start = Some(k),
            _ => return Ok(items),
        }
    }
}
