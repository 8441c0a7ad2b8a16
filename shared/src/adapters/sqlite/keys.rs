use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};

use super::{SqliteDb, corrupt};
use crate::domain::{ApiKey, KeyHash, KeyPrefix, TeamId, record::KeyRecord};
use crate::ports::{KeyStore, StoreResult};

pub struct SqliteKeyStore {
    db: SqliteDb,
}

impl SqliteKeyStore {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

column_list!(KEY_COLUMNS, KEY_FIELDS:
    "hash", "prefix", "team", "scopes", "created_at", "expires_at", "revoked_at", "last_used_at");

/// `position(KEY_FIELDS, name)`, evaluated when compiling.
macro_rules! col {
    ($name:literal) => {
        const { super::position(KEY_FIELDS, $name) }
    };
}

fn key_from_row(r: &Row<'_>) -> StoreResult<ApiKey> {
    let record = KeyRecord {
        hash: r.get(col!("hash"))?,
        prefix: r.get(col!("prefix"))?,
        team: r.get(col!("team"))?,
        scopes: r.get(col!("scopes"))?,
        created_at: r.get(col!("created_at"))?,
        expires_at: r.get(col!("expires_at"))?,
        revoked_at: r.get(col!("revoked_at"))?,
        last_used_at: r.get(col!("last_used_at"))?,
    };
    ApiKey::try_from(record).map_err(|e| corrupt("key row", e))
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn insert(&self, key: &ApiKey) -> StoreResult<()> {
        let key = key.clone();
        self.db
            .write(move |tx| {
                tx.prepare_cached(&format!(
                    "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ))?
                .execute(params![
                    key.hash.to_hex(),
                    key.prefix.as_str(),
                    key.team.as_str(),
                    key.scopes.to_text(),
                    key.created_at.timestamp(),
                    key.expires_at.map(|t| t.timestamp()),
                    key.revoked_at.map(|t| t.timestamp()),
                    key.last_used_at.map(|t| t.timestamp()),
                ])?;
                Ok(())
            })
            .await
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let hash = hash.to_hex();
        self.db
            .lookup(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = ?1"
                ))?;
                let mut rows = stmt.query([hash])?;
                match rows.next()? {
                    Some(r) => Ok(Some(key_from_row(r)?)),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn list(&self, team: Option<&TeamId>) -> StoreResult<Vec<ApiKey>> {
        let team = team.map(|t| t.as_str().to_owned());
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE ?1 IS NULL OR team = ?1 \
                     ORDER BY created_at, prefix"
                ))?;
                let mut rows = stmt.query([team])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(key_from_row(r)?);
                }
                Ok(out)
            })
            .await
    }

    async fn revoke(&self, prefix: &KeyPrefix, at: DateTime<Utc>) -> StoreResult<Vec<ApiKey>> {
        let prefix = prefix.as_str().to_owned();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE api_keys SET revoked_at = ?2 WHERE prefix = ?1 AND revoked_at IS NULL",
                )?
                .execute(params![prefix, at.timestamp()])?;
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = ?1"
                ))?;
                let mut rows = stmt.query([prefix])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(key_from_row(r)?);
                }
                Ok(out)
            })
            .await
    }

    async fn touch(&self, hash: &KeyHash, at: DateTime<Utc>) -> StoreResult<()> {
        let hash = hash.to_hex();
        self.db
            .write(move |tx| {
                tx.prepare_cached(
                    "UPDATE api_keys SET last_used_at = ?2 \
                     WHERE hash = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                )?
                .execute(params![hash, at.timestamp()])?;
                Ok(())
            })
            .await
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        self.db
            .read(|c| {
                let n: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM api_keys")?
                    .query_row([], |r| r.get(0))?;
                Ok(n == 0)
            })
            .await
    }
}
