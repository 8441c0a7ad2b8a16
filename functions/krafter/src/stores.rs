//! Where the operator commands find keys and teams: the embedded SQLite file or the hosted
//! DynamoDB tables.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use krafter_shared::adapters::dynamodb::{DynamoKeyStore, DynamoTeamStore};
use krafter_shared::adapters::sqlite::{SqliteDb, SqliteKeyStore, SqliteTeamStore};
use krafter_shared::embedded::TimerScheduleSync;
use krafter_shared::hosted::AwsClients;
use krafter_shared::ports::{KeyStore, ScheduleSync, TeamStore};
use krafter_shared::settings;

use crate::AnyError;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The embedded server's SQLite file (`--db`).
    Sqlite,
    /// The hosted deployment's DynamoDB keys table (`--keys-table`), through the usual AWS
    /// configuration (profile, region, `AWS_ENDPOINT_URL`).
    Dynamodb,
}

/// Where the keys and teams are.
#[derive(Args)]
pub struct KeyStoreArgs {
    #[arg(long, env = "KRAFTER_BACKEND", value_enum, default_value = "sqlite")]
    backend: Backend,
    #[command(flatten)]
    db: DbArg,
    /// The hosted keys table (with --backend dynamodb).
    #[arg(long, env = "KRAFTER_KEYS_TABLE")]
    keys_table: Option<String>,
    /// The hosted teams table (with --backend dynamodb), for teams' signing secrets.
    #[arg(long, env = "KRAFTER_TEAMS_TABLE")]
    teams_table: Option<String>,
}

#[derive(Args)]
pub struct DbArg {
    /// The SQLite database file.
    #[arg(long, env = settings::DB.env, default_value = settings::DB.default)]
    pub db: PathBuf,
}

pub async fn team_store(store: &KeyStoreArgs) -> Result<Arc<dyn TeamStore>, AnyError> {
    Ok(match store.backend {
        Backend::Sqlite => Arc::new(SqliteTeamStore::new(SqliteDb::open(&store.db.db)?)),
        Backend::Dynamodb => {
            let table = store
                .teams_table
                .as_deref()
                .ok_or("--backend dynamodb needs --teams-table (or KRAFTER_TEAMS_TABLE)")?;
            Arc::new(DynamoTeamStore::new(aws_clients().await.dynamodb, table))
        }
    })
}

pub async fn key_store(store: &KeyStoreArgs) -> Result<Arc<dyn KeyStore>, AnyError> {
    Ok(match store.backend {
        Backend::Sqlite => Arc::new(SqliteKeyStore::new(SqliteDb::open(&store.db.db)?)),
        Backend::Dynamodb => {
            let table = store
                .keys_table
                .as_deref()
                .ok_or("--backend dynamodb needs --keys-table (or KRAFTER_KEYS_TABLE)")?;
            Arc::new(DynamoKeyStore::new(aws_clients().await.dynamodb, table))
        }
    })
}

/// Clients from the usual AWS configuration (profile, region, `AWS_ENDPOINT_URL`).
pub async fn aws_clients() -> AwsClients {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    AwsClients::new(&config)
}

/// The schedule sync of a command that writes the embedded store beside (or without) a
/// server: none is needed, the server's scheduler reads the store (new jobs within its 30 s
/// sleep).
pub fn embedded_schedule_sync() -> Arc<dyn ScheduleSync> {
    Arc::new(TimerScheduleSync::new(Arc::new(tokio::sync::Notify::new())))
}
