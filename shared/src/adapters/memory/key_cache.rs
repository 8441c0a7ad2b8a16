use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::ttl_cache::TtlCache;
use crate::domain::{ApiKey, KeyHash, KeyPrefix, TeamId};
use crate::ports::{Clock, KeyStore, StoreResult};

/// Caches key lookups by hash for a short time in front of another key store, so that an
/// API instance does not read the store on every request. A revocation takes effect within
/// `ttl`; unknown hashes are cached too (a burst of bad keys costs one read each per `ttl`).
/// Everything but `find_by_hash` goes straight to the store.
pub struct CachedKeyStore {
    inner: Arc<dyn KeyStore>,
    clock: Arc<dyn Clock>,
    cache: TtlCache<KeyHash, Option<ApiKey>>,
}

impl CachedKeyStore {
    pub fn new(inner: Arc<dyn KeyStore>, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner,
            clock,
            cache: TtlCache::new(ttl),
        }
    }
}

#[async_trait]
impl KeyStore for CachedKeyStore {
    async fn insert(&self, key: &ApiKey) -> StoreResult<()> {
        self.inner.insert(key).await
    }

    async fn find_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let now = self.clock.now();
        if let Some(key) = self.cache.get(hash, now) {
            return Ok(key);
        }
        let key = self.inner.find_by_hash(hash).await?;
        self.cache.put(*hash, key.clone(), now);
        Ok(key)
    }

    async fn list(&self, team: Option<&TeamId>) -> StoreResult<Vec<ApiKey>> {
        self.inner.list(team).await
    }

    async fn revoke(&self, prefix: &KeyPrefix, at: DateTime<Utc>) -> StoreResult<Vec<ApiKey>> {
        self.inner.revoke(prefix, at).await
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        self.inner.is_empty().await
    }

    async fn touch(&self, hash: &KeyHash, at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.touch(hash, at).await?;
        self.cache.update(hash, |key| {
            if let Some(key) = key {
                key.last_used_at = Some(at);
            }
        });
        Ok(())
    }
}
