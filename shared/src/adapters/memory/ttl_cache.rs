use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

/// Values remembered for `ttl`, bounded: past `MAX_ENTRIES`, expired entries are dropped,
/// then everything. The caches in front of shared stores use it.
pub(crate) struct TtlCache<K, V> {
    ttl: chrono::Duration,
    entries: Mutex<HashMap<K, (DateTime<Utc>, V)>>,
}

const MAX_ENTRIES: usize = 10_000;

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl: chrono::Duration::from_std(ttl).unwrap_or_default(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, (DateTime<Utc>, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value stored less than `ttl` before `now`.
    pub fn get(&self, key: &K, now: DateTime<Utc>) -> Option<V> {
        self.entries()
            .get(key)
            .filter(|(at, _)| now - *at < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: K, value: V, now: DateTime<Utc>) {
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| now - *at < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (now, value));
    }

    /// Changes a remembered value in place (its age stays).
    pub fn update(&self, key: &K, change: impl FnOnce(&mut V)) {
        if let Some((_, v)) = self.entries().get_mut(key) {
            change(v);
        }
    }

    pub fn forget(&self, key: &K) {
        self.entries().remove(key);
    }
}
