//! API keys and teams' webhook signing secrets: the rules, for any store. A key is created
//! once and only its hash is kept; a team's secret is created once (a conditional insert,
//! so concurrent first uses agree) and rotated with a 24-hour overlap (a compare-and-swap
//! on the current secret). The stores only read and write conditionally.

use chrono::{DateTime, Duration, Utc};

use super::contention::{Attempt, until_done};
use crate::domain::{ApiKey, PlainKey, Scopes, TeamId, TeamSecrets, time::whole_seconds};
use crate::ports::{KeyStore, StoreError, TeamStore};

/// Creates a key and stores its hash. The plain key is returned once, never stored.
pub async fn create_key(
    keys: &dyn KeyStore,
    team: TeamId,
    scopes: Scopes,
    expires_in: Option<Duration>,
    now: DateTime<Utc>,
) -> Result<(PlainKey, ApiKey), StoreError> {
    let plain = PlainKey::generate();
    let now = whole_seconds(now);
    let key = ApiKey {
        prefix: plain.prefix(),
        hash: plain.hash(),
        team,
        scopes,
        created_at: now,
        expires_at: expires_in.map(|d| now + d),
        revoked_at: None,
        last_used_at: None,
    };
    keys.insert(&key).await?;
    Ok((plain, key))
}

/// A team's signing secrets, and whether they were created by this call.
#[derive(Clone, Debug)]
pub struct EnsuredTeam {
    pub secrets: TeamSecrets,
    pub created: bool,
}

/// The team's signing secrets, created if the team has none yet.
pub async fn ensure_team(
    teams: &dyn TeamStore,
    team: &TeamId,
    now: DateTime<Utc>,
) -> Result<EnsuredTeam, StoreError> {
    if let Some(secrets) = teams.get(team).await? {
        return Ok(EnsuredTeam {
            secrets,
            created: false,
        });
    }
    let fresh = TeamSecrets::new(team.clone(), whole_seconds(now));
    if teams.insert(&fresh).await? {
        return Ok(EnsuredTeam {
            secrets: fresh,
            created: true,
        });
    }
    // Created concurrently: use the winner's.
    let secrets = teams
        .get(team)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("team {team} was created and is gone again")))?;
    Ok(EnsuredTeam {
        secrets,
        created: false,
    })
}

/// A new signing secret for the team; the previous one keeps signing for 24 hours
/// (`ROTATION_GRACE`). Creates the team if it has no secret yet.
pub async fn rotate_signing_secret(
    teams: &dyn TeamStore,
    team: &TeamId,
    now: DateTime<Utc>,
) -> Result<TeamSecrets, StoreError> {
    let now = whole_seconds(now);
    let rotated = until_done(|| async move {
        let current = ensure_team(teams, team, now).await?;
        if current.created {
            return Ok::<_, StoreError>(Attempt::Done(current.secrets));
        }
        let rotated = current.secrets.rotated(now);
        Ok(
            match teams.replace(&rotated, &current.secrets.current).await? {
                true => Attempt::Done(rotated),
                false => Attempt::Conflict,
            },
        )
    })
    .await?;
    rotated.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "team {team}'s secret kept changing during rotation"
        ))
    })
}
