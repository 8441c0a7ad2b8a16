//! Signed webhooks: every team has a signing secret, and every outgoing request carries
//! `X-Krafter-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` keyed by it.
//!
//! Rotation keeps the previous secret valid for [`ROTATION_GRACE`]: while it is, requests
//! carry one `v1=` per valid secret (newest first), so a receiver that checks either secret
//! keeps accepting them while it switches over.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::TeamId;

/// How long a rotated-out secret keeps signing requests.
pub const ROTATION_GRACE: Duration = Duration::hours(24);

/// `whsec_` + 43 URL-safe base64 characters (32 random bytes). The HMAC key is the whole
/// string as UTF-8, so receivers use it as they see it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    pub const PREFIX: &'static str = "whsec_";

    pub fn generate() -> Self {
        Self(super::token::generate(Self::PREFIX))
    }

    pub fn parse(s: &str) -> Option<Self> {
        super::token::is_valid(s, Self::PREFIX).then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Hex HMAC-SHA256 of `"<t>.<body>"`.
    pub fn sign(&self, t: i64, body: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.as_bytes()).expect("HMAC takes any key length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

/// A team's signing secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamSecrets {
    pub team: TeamId,
    pub current: SigningSecret,
    /// The secret rotated out, and until when it still signs.
    pub previous: Option<(SigningSecret, DateTime<Utc>)>,
    pub created_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
}

impl TeamSecrets {
    pub fn new(team: TeamId, now: DateTime<Utc>) -> Self {
        Self {
            team,
            current: SigningSecret::generate(),
            previous: None,
            created_at: now,
            rotated_at: None,
        }
    }

    /// A new current secret; the old one keeps signing for [`ROTATION_GRACE`].
    pub fn rotated(&self, now: DateTime<Utc>) -> Self {
        Self {
            team: self.team.clone(),
            current: SigningSecret::generate(),
            previous: Some((self.current.clone(), now + ROTATION_GRACE)),
            created_at: self.created_at,
            rotated_at: Some(now),
        }
    }

    /// The secrets that sign at `now`, newest first.
    pub fn signing_at(&self, now: DateTime<Utc>) -> impl Iterator<Item = &SigningSecret> {
        let previous = self
            .previous
            .as_ref()
            .filter(|(_, until)| now < *until)
            .map(|(s, _)| s);
        std::iter::once(&self.current).chain(previous)
    }

    /// The `X-Krafter-Signature` value for a request sent at `now` with `body`.
    pub fn signature_header(&self, now: DateTime<Utc>, body: &[u8]) -> String {
        let t = now.timestamp();
        let mut header = format!("t={t}");
        for secret in self.signing_at(now) {
            header.push_str(",v1=");
            header.push_str(&secret.sign(t, body));
        }
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team() -> TeamId {
        TeamId::parse("alpha").unwrap()
    }

    #[test]
    fn a_signature_is_the_hmac_of_the_timestamp_a_dot_and_the_body() {
        // Independent reference: RFC 4231-style HMAC computed over "1700000000.{}".
        let secret = SigningSecret::parse(&format!("whsec_{}", "A".repeat(43))).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_str().as_bytes()).unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            secret.sign(1_700_000_000, b"{}"),
            hex::encode(mac.finalize().into_bytes())
        );
        assert_ne!(
            secret.sign(1_700_000_001, b"{}"),
            secret.sign(1_700_000_000, b"{}")
        );
        assert_eq!(secret.sign(1, b"").len(), 64);
    }

    #[test]
    fn generated_secrets_have_their_published_form() {
        let s = SigningSecret::generate();
        assert_eq!(SigningSecret::parse(s.as_str()), Some(s.clone()));
        assert_eq!(s.as_str().len(), 6 + 43);
        assert_ne!(SigningSecret::generate(), s);
        assert!(SigningSecret::parse("whsec_short").is_none());
        assert_eq!(format!("{s:?}"), "SigningSecret(..)", "never logged");
    }

    #[test]
    fn a_rotated_out_secret_signs_beside_the_new_one_for_24_hours() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let first = TeamSecrets::new(team(), t0);
        let header = first.signature_header(t0, b"x");
        assert_eq!(
            header,
            format!(
                "t=1700000000,v1={}",
                first.current.sign(1_700_000_000, b"x")
            )
        );

        let rotated = first.rotated(t0);
        let at = t0 + Duration::hours(23);
        let header = rotated.signature_header(at, b"x");
        let t = at.timestamp();
        assert_eq!(
            header,
            format!(
                "t={t},v1={},v1={}",
                rotated.current.sign(t, b"x"),
                first.current.sign(t, b"x")
            )
        );
        let later = t0 + ROTATION_GRACE;
        assert_eq!(rotated.signing_at(later).count(), 1, "the old one expired");
    }
}
