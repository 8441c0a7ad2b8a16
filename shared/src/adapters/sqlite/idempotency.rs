//! Idempotency keys in the embedded store: one row per team and key; a claim is an insert
//! that does nothing when the key is taken, in the write transaction (SQLite's one writer
//! makes concurrent claims agree).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteDb, corrupt};
use crate::domain::record::IdempotencyRow;
use crate::domain::{IdempotencyKey, IdempotencyRecord, StoredResponse, TeamId};
use crate::ports::{IdempotencyClaim, IdempotencyStore, StoreResult};

pub struct SqliteIdempotencyStore {
    db: SqliteDb,
}

impl SqliteIdempotencyStore {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

fn row(r: &Row<'_>) -> rusqlite::Result<IdempotencyRow> {
    Ok(IdempotencyRow {
        team: r.get("team")?,
        key: r.get("key")?,
        fingerprint: r.get("fingerprint")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        status: r.get("status")?,
        location: r.get("location")?,
        body: r.get("body")?,
    })
}

#[async_trait]
impl IdempotencyStore for SqliteIdempotencyStore {
    async fn claim(&self, record: &IdempotencyRecord) -> StoreResult<IdempotencyClaim> {
        let r = IdempotencyRow::from(record);
        let now = record.created_at.timestamp();
        let existing = self
            .db
            .write(move |tx| {
                tx.prepare_cached(
                    "DELETE FROM idempotency_keys WHERE team = ?1 AND key = ?2 AND expires_at <= ?3",
                )?
                .execute(params![r.team, r.key, now])?;
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO idempotency_keys (team, key, fingerprint, created_at, \
                         expires_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![r.team, r.key, r.fingerprint, r.created_at, r.expires_at])?;
                if inserted == 1 {
                    return Ok(None);
                }
                Ok(tx
                    .prepare_cached("SELECT * FROM idempotency_keys WHERE team = ?1 AND key = ?2")?
                    .query_row(params![r.team, r.key], row)
                    .optional()?)
            })
            .await?;
        match existing {
            None => Ok(IdempotencyClaim::Claimed),
            Some(row) => IdempotencyRecord::try_from(row)
                .map(IdempotencyClaim::Existing)
                .map_err(|e| corrupt("idempotency row", e)),
        }
    }

    async fn complete(
        &self,
        team: &TeamId,
        key: &IdempotencyKey,
        response: &StoredResponse,
    ) -> StoreResult<()> {
        let (team, key, response) = (team.to_string(), key.as_str().to_owned(), response.clone());
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE idempotency_keys SET status = ?3, location = ?4, body = ?5 \
                     WHERE team = ?1 AND key = ?2",
                )?
                .execute(params![
                    team,
                    key,
                    response.status,
                    response.location,
                    response.body
                ])?;
                Ok(())
            })
            .await
    }

    async fn release(&self, team: &TeamId, key: &IdempotencyKey) -> StoreResult<()> {
        let (team, key) = (team.to_string(), key.as_str().to_owned());
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "DELETE FROM idempotency_keys WHERE team = ?1 AND key = ?2 AND status IS NULL",
                )?
                .execute(params![team, key])?;
                Ok(())
            })
            .await
    }

    async fn prune(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let now = now.timestamp();
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached("DELETE FROM idempotency_keys WHERE expires_at <= ?1")?
                    .execute([now])?;
                Ok(n as u64)
            })
            .await
    }
}
