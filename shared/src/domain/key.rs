//! API keys: `kr_live_` + 43 URL-safe base64 characters (32 random bytes). Stored only as a
//! SHA-256 hash; identified afterwards by their first 12 characters.

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::TeamId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cron:read" => Some(Self::Read),
            "cron:write" => Some(Self::Write),
            _ => None,
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Read => "cron:read",
            Self::Write => "cron:write",
        }
    }
}

/// The scopes a key carries. `cron:write` also allows reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn new(mut scopes: Vec<Scope>) -> Self {
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }
    pub fn allows(&self, needed: Scope) -> bool {
        match needed {
            Scope::Read => !self.0.is_empty(),
            Scope::Write => self.0.contains(&Scope::Write),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
    /// `cron:read cron:write`
    pub fn to_text(&self) -> String {
        self.0
            .iter()
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
    pub fn from_text(s: &str) -> Option<Self> {
        s.split_whitespace()
            .map(Scope::parse)
            .collect::<Option<Vec<_>>>()
            .map(Self::new)
    }
}

/// A key in the clear: exists only when created (shown once) and when presented by a client.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainKey(String);

impl PlainKey {
    const PREFIX: &'static str = "kr_live_";

    pub fn generate() -> Self {
        Self(super::token::generate(Self::PREFIX))
    }

    /// Accepts exactly `kr_live_` + 43 URL-safe base64 characters.
    pub fn parse(s: &str) -> Option<Self> {
        super::token::is_valid(s, Self::PREFIX).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.0.as_bytes()).into())
    }
    pub fn prefix(&self) -> KeyPrefix {
        KeyPrefix(self.0[..KeyPrefix::LEN].to_owned())
    }
}

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainKey({}…)", &self.0[..KeyPrefix::LEN])
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash(pub [u8; 32]);

impl KeyHash {
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).ok()?;
            out[i] = u8::from_str_radix(hex, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({}…)", &self.to_hex()[..8])
    }
}

/// The first 12 characters of a key: how operators name it after creation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    pub const LEN: usize = 12;
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == Self::LEN && s.starts_with(PlainKey::PREFIX)).then(|| Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored key (never the secret itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    pub prefix: KeyPrefix,
    pub hash: KeyHash,
    pub team: TeamId,
    pub scopes: Scopes,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request (kept to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl ApiKey {
    pub fn is_usable_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_published_form() {
        let k = PlainKey::generate();
        assert!(k.as_str().starts_with("kr_live_"));
        assert_eq!(k.as_str().len(), 8 + 43);
        assert_eq!(PlainKey::parse(k.as_str()), Some(k.clone()));
        assert_eq!(k.prefix().as_str(), &k.as_str()[..12]);
        assert_ne!(PlainKey::generate(), k);
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(PlainKey::parse("kr_live_abc123def456").is_none());
        assert!(PlainKey::parse(&format!("kr_test_{}", "a".repeat(43))).is_none());
        assert!(PlainKey::parse(&format!("kr_live_{}", "a".repeat(42))).is_none());
        assert!(PlainKey::parse(&format!("kr_live_{}+", "a".repeat(42))).is_none());
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        let h = PlainKey::generate().hash();
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
    }

    #[test]
    fn write_scope_allows_reads_but_read_scope_does_not_allow_writes() {
        let w = Scopes::new(vec![Scope::Write]);
        let r = Scopes::new(vec![Scope::Read]);
        assert!(w.allows(Scope::Read) && w.allows(Scope::Write));
        assert!(r.allows(Scope::Read) && !r.allows(Scope::Write));
        assert_eq!(Scopes::from_text(&w.to_text()), Some(w));
    }
}
