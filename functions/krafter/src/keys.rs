//! `krafter keys`: issue, list and revoke API keys.

use clap::Subcommand;
use krafter_shared::domain::{ApiKey, KeyPrefix, Scope, Scopes, TeamId, time};
use krafter_shared::embedded::{create_key, ensure_team};

use crate::stores::{KeyStoreArgs, key_store, team_store};
use crate::{AnyError, say};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints it (once) alone on the last line of stdout.
    Create {
        /// The team the key belongs to: 1 to 64 of A-Z a-z 0-9 . _ - (created on first use).
        #[arg(long)]
        team: String,
        /// cron:read or cron:write (repeatable); cron:write also allows reads.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// The key stops working after this many days (default: never).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        store: KeyStoreArgs,
    },
    /// List keys (prefix, team, scopes, dates, state); never the secrets.
    List {
        /// Only this team's keys.
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        store: KeyStoreArgs,
    },
    /// Revoke the key whose first 12 characters are PREFIX.
    Revoke {
        /// The key's first 12 characters, as `keys list` shows them (kr_live_ + 4).
        prefix: String,
        #[command(flatten)]
        store: KeyStoreArgs,
    },
}

pub async fn keys(cmd: KeysCommand) -> Result<(), AnyError> {
    match cmd {
        KeysCommand::Create {
            team,
            scopes,
            expires_in_days,
            store,
        } => create(&team, &scopes, expires_in_days, &store).await,
        KeysCommand::List { team, store } => list(team.as_deref(), &store).await,
        KeysCommand::Revoke { prefix, store } => revoke(&prefix, &store).await,
    }
}

async fn create(
    team: &str,
    scopes: &[String],
    expires_in_days: Option<u32>,
    store: &KeyStoreArgs,
) -> Result<(), AnyError> {
    let team = TeamId::parse(team)?;
    let scopes = scopes
        .iter()
        .map(|s| {
            Scope::parse(s)
                .ok_or_else(|| format!("unknown scope {s:?} (use cron:read or cron:write)"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let keys = key_store(store).await?;
    let now = chrono::Utc::now();
    let ensured = ensure_team(team_store(store).await?.as_ref(), &team, now).await?;
    let secrets = ensured.secrets;
    if ensured.created {
        say(format_args!(
            "created team {team}; its webhook signing secret (also shown by \
             `krafter teams show-secret --team {team}`): {}",
            secrets.current.as_str()
        ));
    }
    let expires = expires_in_days.map(|d| chrono::Duration::days(i64::from(d)));
    let (plain, key) = create_key(keys.as_ref(), team, Scopes::new(scopes), expires, now).await?;
    say(format_args!(
        "created key {} for team {} ({}){}; it is shown only this once:",
        key.prefix.as_str(),
        key.team,
        key.scopes.to_text(),
        key.expires_at
            .map(|t| format!(", expires {}", time::format(t)))
            .unwrap_or_default()
    ));
    println!("{}", plain.as_str());
    Ok(())
}

async fn list(team: Option<&str>, store: &KeyStoreArgs) -> Result<(), AnyError> {
    let team = team.map(TeamId::parse).transpose()?;
    let keys = key_store(store).await?.list(team.as_ref()).await?;
    println!(
        "PREFIX        TEAM                 SCOPES                CREATED               EXPIRES               LAST USED             STATE"
    );
    for k in &keys {
        print_key(k);
    }
    say(format_args!("{} key(s)", keys.len()));
    Ok(())
}

async fn revoke(prefix: &str, store: &KeyStoreArgs) -> Result<(), AnyError> {
    let prefix = KeyPrefix::parse(prefix)
        .ok_or("a key prefix is the key's first 12 characters (kr_live_ + 4)")?;
    let revoked = key_store(store)
        .await?
        .revoke(&prefix, time::whole_seconds(chrono::Utc::now()))
        .await?;
    if revoked.is_empty() {
        return Err(format!("no key starts with {}", prefix.as_str()).into());
    }
    for k in &revoked {
        say(format_args!(
            "revoked {} (team {})",
            k.prefix.as_str(),
            k.team
        ));
    }
    Ok(())
}

fn print_key(k: &ApiKey) {
    let now = chrono::Utc::now();
    let state = if k.revoked_at.is_some() {
        "revoked"
    } else if !k.is_usable_at(now) {
        "expired"
    } else {
        "active"
    };
    println!(
        "{:<13} {:<20} {:<21} {:<21} {:<21} {:<21} {}",
        k.prefix.as_str(),
        k.team.as_str(),
        k.scopes.to_text(),
        time::format(k.created_at),
        k.expires_at
            .map(time::format)
            .unwrap_or_else(|| "never".into()),
        k.last_used_at
            .map(time::format)
            .unwrap_or_else(|| "never".into()),
        state
    );
}
