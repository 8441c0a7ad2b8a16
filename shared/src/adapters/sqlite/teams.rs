use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{SqliteDb, corrupt};
use crate::domain::{SigningSecret, TeamId, TeamSecrets, record::TeamRecord};
use crate::ports::{StoreResult, TeamStore};

pub struct SqliteTeamStore {
    db: SqliteDb,
}

impl SqliteTeamStore {
    pub fn new(db: SqliteDb) -> Self {
        Self { db }
    }
}

const COLUMNS: &str = "team, secret, previous_secret, previous_until, created_at, rotated_at";

#[async_trait]
impl TeamStore for SqliteTeamStore {
    async fn get(&self, team: &TeamId) -> StoreResult<Option<TeamSecrets>> {
        let team = team.as_str().to_owned();
        let record = self
            .db
            .lookup(move |c| {
                Ok(
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM teams WHERE team = ?1"))?
                        .query_row([team], |r| {
                            Ok(TeamRecord {
                                team: r.get("team")?,
                                secret: r.get("secret")?,
                                previous_secret: r.get("previous_secret")?,
                                previous_until: r.get("previous_until")?,
                                created_at: r.get("created_at")?,
                                rotated_at: r.get("rotated_at")?,
                            })
                        })
                        .optional()?,
                )
            })
            .await?;
        record
            .map(|r| TeamSecrets::try_from(r).map_err(|e| corrupt("team row", e)))
            .transpose()
    }

    async fn insert(&self, secrets: &TeamSecrets) -> StoreResult<bool> {
        let record = TeamRecord::from(secrets);
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached(&format!(
                        "INSERT INTO teams ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                         ON CONFLICT (team) DO NOTHING"
                    ))?
                    .execute(params![
                        record.team,
                        record.secret,
                        record.previous_secret,
                        record.previous_until,
                        record.created_at,
                        record.rotated_at,
                    ])?;
                Ok(n == 1)
            })
            .await
    }

    async fn replace(&self, secrets: &TeamSecrets, expected: &SigningSecret) -> StoreResult<bool> {
        let record = TeamRecord::from(secrets);
        let expected = expected.as_str().to_owned();
        self.db
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE teams SET secret = ?2, previous_secret = ?3, previous_until = ?4, \
                         created_at = ?5, rotated_at = ?6 WHERE team = ?1 AND secret = ?7",
                    )?
                    .execute(params![
                        record.team,
                        record.secret,
                        record.previous_secret,
                        record.previous_until,
                        record.created_at,
                        record.rotated_at,
                        expected
                    ])?;
                Ok(n == 1)
            })
            .await
    }
}
