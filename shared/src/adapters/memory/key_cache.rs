use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{ApiKey, KeyHash, KeyPrefix, TeamId};
use crate::ports::{Clock, KeyStore, StoreResult};

/// Caches key lookups by hash for a short time in front of another key store, so that an
/// API instance does not read the store on every request. A revocation takes effect within
/// `ttl`; unknown hashes are cached too (a burst of bad keys costs one read each per `ttl`).
/// Everything but `find_by_hash` goes straight to the store.
pub struct CachedKeyStore {
    inner: Arc<dyn KeyStore>,
    ttl: chrono::Duration,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<KeyHash, Cached>>,
}

/// A lookup's result and when it was made.
type Cached = (DateTime<Utc>, Option<ApiKey>);

/// Entries kept at most; past it, expired entries are dropped, then everything.
const MAX_ENTRIES: usize = 10_000;

impl CachedKeyStore {
    pub fn new(inner: Arc<dyn KeyStore>, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner,
            ttl: chrono::Duration::from_std(ttl).unwrap_or_default(),
            clock,
            entries: Mutex::new(HashMap::new()),
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
        if let Some((at, key)) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            && now - *at < self.ttl
        {
            return Ok(key.clone());
        }
        let key = self.inner.find_by_hash(hash).await?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| now - *at < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(*hash, (now, key.clone()));
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
}
