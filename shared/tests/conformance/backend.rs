//! The backends the suite runs against. A backend is the set of store ports one deployment
//! wires together (they share one database), plus a test-only probe to read the run queue,
//! whose port can only write.
//!
//! To add an adapter (DynamoDB/SQS), write an `async fn` that returns a [`Backend`] and add
//! one `conformance_suite!` line in `main.rs`.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use krafter_shared::adapters::sqlite::{
    SqliteAuditStore, SqliteDb, SqliteExecutionStore, SqliteIdempotencyStore, SqliteJobStore,
    SqliteKeyStore, SqliteRunQueue, SqliteTeamStore,
};
use krafter_shared::domain::RunMessage;
use krafter_shared::ports::{
    AuditStore, ExecutionStore, IdempotencyStore, JobStore, KeyStore, RunQueue, StoreResult,
    TeamStore,
};
use tempfile::TempDir;

/// Reads the run queue back in tests (the `RunQueue` port only enqueues).
#[async_trait]
pub trait QueueProbe: Send + Sync {
    /// Takes and acknowledges every message deliverable at `now`, in any order. A backend
    /// whose queue runs on the wall clock (SQS) may ignore `now`: every fixture time is past.
    async fn drain(&self, now: DateTime<Utc>) -> StoreResult<Vec<RunMessage>>;
}

/// One backend under test: every store port, sharing one database.
pub struct Backend {
    pub jobs: Arc<dyn JobStore>,
    pub executions: Arc<dyn ExecutionStore>,
    pub keys: Arc<dyn KeyStore>,
    pub teams: Arc<dyn TeamStore>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub audit: Arc<dyn AuditStore>,
    pub queue: Arc<dyn RunQueue>,
    pub probe: Arc<dyn QueueProbe>,
    /// Whatever must live as long as the stores (a temporary directory, a server).
    _resources: Option<Box<dyn Any + Send + Sync>>,
}

/// The embedded backend, with its concrete types for the SQLite-only tests.
pub struct SqliteBackend {
    pub db: SqliteDb,
    pub jobs: Arc<SqliteJobStore>,
    pub executions: Arc<SqliteExecutionStore>,
    pub keys: Arc<SqliteKeyStore>,
    pub teams: Arc<SqliteTeamStore>,
    pub queue: SqliteRunQueue,
    /// The directory of a file database; `None` for `:memory:`.
    pub dir: Option<TempDir>,
}

impl SqliteBackend {
    /// A fresh database file in a new temporary directory.
    pub async fn file() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = SqliteDb::open(&dir.path().join("krafter.db")).expect("open the database file");
        Self::with(db, Some(dir))
    }

    /// A fresh private `:memory:` database.
    pub async fn memory() -> Self {
        let db = SqliteDb::open_in_memory().expect("open an in-memory database");
        Self::with(db, None)
    }

    pub fn with(db: SqliteDb, dir: Option<TempDir>) -> Self {
        Self {
            jobs: Arc::new(SqliteJobStore::new(db.clone())),
            executions: Arc::new(SqliteExecutionStore::new(db.clone())),
            keys: Arc::new(SqliteKeyStore::new(db.clone())),
            teams: Arc::new(SqliteTeamStore::new(db.clone())),
            queue: SqliteRunQueue::new(db.clone()),
            db,
            dir,
        }
    }

    pub fn into_backend(self) -> Backend {
        let queue = Arc::new(self.queue);
        Backend {
            jobs: self.jobs,
            executions: self.executions,
            keys: self.keys,
            teams: self.teams,
            idempotency: Arc::new(SqliteIdempotencyStore::new(self.db.clone())),
            audit: Arc::new(SqliteAuditStore::new(self.db.clone())),
            queue: queue.clone(),
            probe: queue_probe(queue),
            _resources: self.dir.map(|d| Box::new(d) as Box<dyn Any + Send + Sync>),
        }
    }
}

fn queue_probe(queue: Arc<SqliteRunQueue>) -> Arc<dyn QueueProbe> {
    struct Probe(Arc<SqliteRunQueue>);

    #[async_trait]
    impl QueueProbe for Probe {
        async fn drain(&self, now: DateTime<Utc>) -> StoreResult<Vec<RunMessage>> {
            let taken = self.0.dequeue(now, 10_000, Duration::from_secs(60)).await?;
            let seqs: Vec<i64> = taken.iter().map(|d| d.seq).collect();
            self.0.ack(&seqs).await?;
            Ok(taken.into_iter().map(|d| d.message).collect())
        }
    }

    Arc::new(Probe(queue))
}

/// SQLite on a temporary file (WAL, separate read connections).
pub async fn sqlite_file() -> Backend {
    SqliteBackend::file().await.into_backend()
}

/// SQLite `:memory:` (one connection).
pub async fn sqlite_memory() -> Backend {
    SqliteBackend::memory().await.into_backend()
}

/// DynamoDB and SQS on a moto server started by the tests (see `krafter-testkit`), each
/// test with its own tables and queues.
pub async fn dynamo() -> Backend {
    use krafter_shared::adapters::dynamodb::DynamoStores;
    use krafter_shared::adapters::sqs::SqsRunQueue;
    use krafter_shared::ports::SystemClock;

    let clients = krafter_testkit::clients().await;
    let resources = krafter_testkit::provision(&clients).await;
    let stores = DynamoStores::new(
        clients.dynamodb.clone(),
        &resources.tables,
        Duration::from_secs(30 * 86_400),
        Duration::from_secs(90 * 86_400),
    );
    let queue = SqsRunQueue::new(
        clients.sqs.clone(),
        &resources.run_queue_url,
        Arc::new(SystemClock),
    );
    Backend {
        jobs: Arc::new(stores.jobs),
        executions: Arc::new(stores.executions),
        keys: Arc::new(stores.keys),
        teams: Arc::new(stores.teams),
        idempotency: Arc::new(stores.idempotency),
        audit: Arc::new(stores.audit),
        queue: Arc::new(queue),
        probe: Arc::new(SqsProbe {
            client: clients.sqs,
            url: resources.run_queue_url,
        }),
        _resources: None,
    }
}

struct SqsProbe {
    client: aws_sdk_sqs::Client,
    url: String,
}

#[async_trait]
impl QueueProbe for SqsProbe {
    async fn drain(&self, _now: DateTime<Utc>) -> StoreResult<Vec<RunMessage>> {
        use krafter_shared::domain::QueuedMessage;
        use krafter_shared::ports::StoreError;

        let mut runs = Vec::new();
        loop {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .send()
                .await
                .map_err(StoreError::backend)?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(runs);
            }
            for m in messages {
                let body = m.body.unwrap_or_default();
                match serde_json::from_str::<QueuedMessage>(&body) {
                    Ok(QueuedMessage::Run { run, .. }) => runs.push(run),
                    other => panic!("not a run message: {other:?} from {body}"),
                }
                self.client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(m.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .map_err(StoreError::backend)?;
            }
        }
    }
}
