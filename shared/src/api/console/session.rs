//! Signing in and out, and who is signed in: the session cookie (`domain::session`) made,
//! checked on every page against the key it names, and dropped.

use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::net::SocketAddr;
use tracing::{info, warn};

use super::Console;
use super::view::{Page, SignIn};
use crate::api::gate::Caller;
use crate::api::inproc::Origin;
use crate::domain::session::{SESSION_LIFETIME, Session, console_secret_team};
use crate::domain::{ApiKey, PlainKey, SigningSecret, TeamSecrets};
use crate::service::teams::ensure_team;

const COOKIE: &str = "krafter_session";

/// The person signed in: the caller their key makes them, and from where they ask.
pub struct Viewer {
    pub origin: Origin,
    /// The console's base path, for links and redirects.
    pub base: String,
}

impl Viewer {
    pub fn caller(&self) -> &Caller {
        &self.origin.caller
    }

    pub fn can_write(&self) -> bool {
        self.caller().scopes.allows(crate::domain::Scope::Write)
    }
}

/// A page asked for without a valid session goes to the sign-in page (under the console's
/// base path).
pub struct SignedOut(pub String);

impl IntoResponse for SignedOut {
    fn into_response(self) -> Response {
        let mut r = Redirect::to(&format!("{}/sign-in", self.0)).into_response();
        r.headers_mut().insert(header::SET_COOKIE, expired(&self.0));
        r
    }
}

impl FromRequestParts<Console> for Viewer {
    type Rejection = SignedOut;

    async fn from_request_parts(parts: &mut Parts, c: &Console) -> Result<Self, SignedOut> {
        let out = || SignedOut(c.api.console_base.clone());
        let token = cookie(&parts.headers).ok_or_else(out)?;
        let now = c.api.clock.now();
        let secrets = console_secrets(c, now).await.ok_or_else(out)?;
        let valid: Vec<&SigningSecret> = secrets.signing_at(now).collect();
        let session = Session::verify(&token, &valid, now).ok_or_else(out)?;
        let key = c.api.keys.find_by_hash(&session.key).await.ok().flatten();
        let key = key.filter(|k| k.is_usable_at(now)).ok_or_else(out)?;
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned();
        Ok(Viewer {
            origin: Origin {
                caller: caller_of(&key),
                peer,
            },
            base: c.api.console_base.clone(),
        })
    }
}

fn caller_of(key: &ApiKey) -> Caller {
    Caller {
        team: key.team.clone(),
        scopes: key.scopes.clone(),
        key_prefix: key.prefix.clone(),
    }
}

/// The deployment's console secret (made on first use, the same for every instance).
async fn console_secrets(c: &Console, now: DateTime<Utc>) -> Option<TeamSecrets> {
    match ensure_team(c.api.teams.as_ref(), &console_secret_team(), now).await {
        Ok(t) => Some(t.secrets),
        Err(e) => {
            warn!(error = %e, "could not read the console secret");
            None
        }
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The cookie's path: the console's base (`/` when it has none).
fn cookie_path(base: &str) -> &str {
    if base.is_empty() { "/" } else { base }
}

/// The cookie that ends a session.
fn expired(base: &str) -> HeaderValue {
    let path = cookie_path(base);
    let value = format!("{COOKIE}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0");
    HeaderValue::from_str(&value).expect("a valid cookie")
}

/// The session cookie: not readable by scripts, never sent cross-site, `Secure` over https.
fn session_cookie(token: &str, base: &str, headers: &HeaderMap) -> HeaderValue {
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    let secure = if https { "; Secure" } else { "" };
    let age = SESSION_LIFETIME.num_seconds();
    let path = cookie_path(base);
    let value =
        format!("{COOKIE}={token}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={age}{secure}");
    HeaderValue::from_str(&value).expect("a token is cookie-safe")
}

pub async fn sign_in_form(State(c): State<Console>) -> Response {
    SignIn::new(&c.api.console_base, None).html()
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    key: String,
}

/// Checks the pasted key, and starts a session for it. The key is never logged or echoed.
pub async fn sign_in(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let now = c.api.clock.now();
    let refused = || {
        let error = "That key is not valid (or was revoked, or has expired).";
        let page = SignIn::new(&c.api.console_base, Some(error.into()));
        (axum::http::StatusCode::UNAUTHORIZED, page.html()).into_response()
    };
    let Some(plain) = PlainKey::parse(form.key.trim()) else {
        return refused();
    };
    let key = match c.api.keys.find_by_hash(&plain.hash()).await {
        Ok(Some(k)) if k.is_usable_at(now) => k,
        Ok(_) => return refused(),
        Err(e) => {
            warn!(error = %e, "sign-in: the key could not be checked");
            return refused();
        }
    };
    let Some(secrets) = console_secrets(&c, now).await else {
        return refused();
    };
    let token = Session::new(key.hash, now).token(&secrets.current);
    info!(team = %key.team, key = key.prefix.as_str(), "console sign-in");
    let base = &c.api.console_base;
    let mut r = Redirect::to(&format!("{base}/jobs")).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&token, base, &headers));
    r
}

pub async fn sign_out(State(c): State<Console>) -> Response {
    SignedOut(c.api.console_base.clone()).into_response()
}
