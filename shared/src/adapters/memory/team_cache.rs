use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::ttl_cache::TtlCache;
use crate::domain::{SigningSecret, TeamId, TeamSecrets};
use crate::ports::{Clock, StoreResult, TeamStore};

/// Caches teams' signing secrets for a short time, so that the executor does not read the
/// store on every call. A rotation made elsewhere (an operator command) is picked up within
/// `ttl`; the rotated-out secret signs beside the new one for 24 hours anyway.
pub struct CachedTeamStore {
    inner: Arc<dyn TeamStore>,
    clock: Arc<dyn Clock>,
    cache: TtlCache<TeamId, TeamSecrets>,
}

impl CachedTeamStore {
    pub fn new(inner: Arc<dyn TeamStore>, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner,
            clock,
            cache: TtlCache::new(ttl),
        }
    }
}

#[async_trait]
impl TeamStore for CachedTeamStore {
    async fn get(&self, team: &TeamId) -> StoreResult<Option<TeamSecrets>> {
        let now = self.clock.now();
        if let Some(secrets) = self.cache.get(team, now) {
            return Ok(Some(secrets));
        }
        let found = self.inner.get(team).await?;
        if let Some(secrets) = &found {
            self.cache.put(team.clone(), secrets.clone(), now);
        }
        Ok(found)
    }

    async fn insert(&self, secrets: &TeamSecrets) -> StoreResult<bool> {
        self.cache.forget(&secrets.team);
        self.inner.insert(secrets).await
    }

    async fn replace(&self, secrets: &TeamSecrets, expected: &SigningSecret) -> StoreResult<bool> {
        self.cache.forget(&secrets.team);
        self.inner.replace(secrets, expected).await
    }
}
