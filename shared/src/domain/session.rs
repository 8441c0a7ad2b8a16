//! Console sessions: a signed, expiring token naming the API key a person signed in with.
//! The token holds the key's SHA-256 (never the key) and an expiry, signed with HMAC-SHA256
//! under the deployment's console secret (one secret for every instance, kept in the team
//! store under a team id no key can have). Each use looks the key up again, so revoking or
//! expiring the key ends its sessions at once; signing out drops the cookie.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{KeyHash, SigningSecret, TeamId};

/// How long a session lasts.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// The team id the console secret is kept under: `#` is not allowed in a team id, so no
/// key belongs to it and no API call reaches it.
pub fn console_secret_team() -> TeamId {
    TeamId::console_secret()
}

/// A session's contents once its signature and expiry are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub key: KeyHash,
    pub expires_at: DateTime<Utc>,
}

impl Session {
    pub fn new(key: KeyHash, now: DateTime<Utc>) -> Self {
        Self {
            key,
            expires_at: super::time::whole_seconds(now + SESSION_LIFETIME),
        }
    }

    /// `v1.<key hash hex>.<expiry, unix seconds>.<signature>`.
    pub fn token(&self, secret: &SigningSecret) -> String {
        let body = format!("v1.{}.{}", self.key.to_hex(), self.expires_at.timestamp());
        let signature = B64.encode(mac(secret, &body).finalize().into_bytes());
        format!("{body}.{signature}")
    }

    /// The session `token` names, if one of `secrets` signed it and it has not expired.
    pub fn verify(token: &str, secrets: &[&SigningSecret], now: DateTime<Utc>) -> Option<Self> {
        let (body, signature) = token.rsplit_once('.')?;
        let signature = B64.decode(signature).ok()?;
        secrets
            .iter()
            .find(|s| mac(s, body).verify_slice(&signature).is_ok())?;
        let mut parts = body.split('.');
        let (Some("v1"), Some(key), Some(expiry), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let expires_at = DateTime::from_timestamp(expiry.parse().ok()?, 0)?;
        (expires_at > now).then_some(Self {
            key: KeyHash::from_hex(key)?,
            expires_at,
        })
    }
}

fn mac(secret: &SigningSecret, body: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_str().as_bytes()).expect("HMAC takes any key");
    mac.update(b"krafter-console-session\n");
    mac.update(body.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PlainKey;

    #[test]
    fn a_session_verifies_until_it_expires_and_only_under_its_secret() {
        let secret = SigningSecret::generate();
        let now = Utc::now();
        let session = Session::new(PlainKey::generate().hash(), now);
        let token = session.token(&secret);
        assert_eq!(
            Session::verify(&token, &[&secret], now),
            Some(session.clone())
        );
        let later = now + SESSION_LIFETIME + Duration::seconds(1);
        assert_eq!(Session::verify(&token, &[&secret], later), None);
        assert_eq!(
            Session::verify(&token, &[&SigningSecret::generate()], now),
            None
        );
        let forged = token.replacen("v1.", "v1.0", 1);
        assert_eq!(Session::verify(&forged, &[&secret], now), None);
        let rotated = SigningSecret::generate();
        assert!(Session::verify(&token, &[&rotated, &secret], now).is_some());
    }

    #[test]
    fn the_console_secret_team_is_no_team_a_key_can_name() {
        assert!(TeamId::parse(console_secret_team().as_str()).is_err());
    }
}
