//! `krafter teams`: a team's webhook signing secret, shown or rotated.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use krafter_shared::domain::{TeamId, time};
use krafter_shared::embedded::rotate_signing_secret;

use crate::stores::{KeyStoreArgs, team_store};
use crate::{AnyError, say};

#[derive(Subcommand)]
pub enum TeamsCommand {
    /// Print the team's webhook signing secret (and the previous one while it still signs).
    ShowSecret {
        #[arg(long)]
        team: String,
        #[command(flatten)]
        store: KeyStoreArgs,
    },
    /// Give the team a new signing secret, printed alone on the last line of stdout. The
    /// previous one keeps signing beside it for 24 hours, so receivers can switch over.
    RotateSecret {
        #[arg(long)]
        team: String,
        #[command(flatten)]
        store: KeyStoreArgs,
    },
}

pub async fn teams(cmd: TeamsCommand) -> Result<(), AnyError> {
    let now = Utc::now();
    match cmd {
        TeamsCommand::ShowSecret { team, store } => show_secret(&team, &store, now).await,
        TeamsCommand::RotateSecret { team, store } => rotate_secret(&team, &store, now).await,
    }
}

async fn show_secret(team: &str, store: &KeyStoreArgs, now: DateTime<Utc>) -> Result<(), AnyError> {
    let team = TeamId::parse(team)?;
    let secrets = team_store(store)
        .await?
        .get(&team)
        .await?
        .ok_or_else(|| format!("team {team} has no signing secret yet (create a key)"))?;
    if let Some((previous, until)) = &secrets.previous
        && now < *until
    {
        say(format_args!(
            "previous secret, signing beside the current one until {}: {}",
            time::format(*until),
            previous.as_str()
        ));
    }
    say(format_args!("current secret of team {team}:"));
    println!("{}", secrets.current.as_str());
    Ok(())
}

async fn rotate_secret(
    team: &str,
    store: &KeyStoreArgs,
    now: DateTime<Utc>,
) -> Result<(), AnyError> {
    let team = TeamId::parse(team)?;
    let secrets = rotate_signing_secret(team_store(store).await?.as_ref(), &team, now).await?;
    match &secrets.previous {
        Some((_, until)) => say(format_args!(
            "team {team} has a new signing secret; the previous one keeps signing \
             until {} (requests carry both signatures until then):",
            time::format(*until)
        )),
        None => say(format_args!(
            "team {team} was created with this signing secret:"
        )),
    }
    println!("{}", secrets.current.as_str());
    Ok(())
}
