//! Signed webhooks, checked the way a receiver would: with its own HMAC code, not ours.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use krafter_shared::domain::TeamId;
use krafter_shared::embedded::rotate_signing_secret;
use serde_json::json;
use sha2::Sha256;

use crate::helpers::{Received, Receiver, Scripted, TestApp, idle_job};

/// How old a signature a receiver accepts.
const TOLERANCE_SECS: i64 = 300;

/// A receiver's check of `X-Krafter-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`: some `v1`
/// must be the HMAC-SHA256 of `"<t>.<body>"` under `secret`, and `t` recent.
pub fn verify(header: &str, body: &[u8], secret: &str, now: DateTime<Utc>) -> Result<(), String> {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v.to_owned()),
            _ => return Err(format!("unexpected part {part:?}")),
        }
    }
    let t = t.ok_or("no timestamp")?;
    if (now.timestamp() - t).abs() > TOLERANCE_SECS {
        return Err(format!("timestamp {t} is too old"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    if signatures.contains(&expected) {
        Ok(())
    } else {
        Err("no signature matches".into())
    }
}

fn signature(r: &Received) -> &str {
    r.headers
        .get("x-krafter-signature")
        .map(String::as_str)
        .expect("every request is signed")
}

async fn secret_of(app: &TestApp, team: &str) -> String {
    let teams = app.app.as_ref().unwrap().teams();
    let secrets = teams
        .get(&TeamId::parse(team).unwrap())
        .await
        .unwrap()
        .expect("the team has a signing secret");
    secrets.current.as_str().to_owned()
}

#[tokio::test]
async fn every_attempt_is_signed_and_a_run_keeps_one_idempotency_key() {
    let receiver = Receiver::start().await;
    receiver.script("/signed", vec![Scripted::status(500)]);
    let app = TestApp::spawn().await;
    let mut body = idle_job(&receiver.url("/signed"));
    body["method"] = json!("POST");
    body["body"] = json!(r#"{"report":"daily"}"#);
    body["max_retries"] = json!(2);
    let job = app.create_job(body).await;
    let id = job["id"].as_str().unwrap();
    app.post_empty(&format!("/jobs/{id}/trigger")).await;
    let got = receiver
        .wait_for("/signed", 2, Duration::from_secs(10))
        .await;

    let secret = secret_of(&app, "alpha").await;
    for r in &got {
        assert_eq!(r.body, r#"{"report":"daily"}"#);
        verify(signature(r), r.body.as_bytes(), &secret, r.at)
            .unwrap_or_else(|e| panic!("attempt {}: {e}", r.headers["x-krafter-attempt"]));
    }
    assert_eq!(got[0].headers["x-krafter-attempt"], "1");
    assert_eq!(got[1].headers["x-krafter-attempt"], "2");
    let key = &got[0].headers["idempotency-key"];
    assert_eq!(
        &got[1].headers["idempotency-key"], key,
        "the same across retries"
    );
    assert_ne!(
        got[0].headers["x-krafter-execution-id"],
        got[1].headers["x-krafter-execution-id"]
    );

    // A second run gets another key.
    app.post_empty(&format!("/jobs/{id}/trigger")).await;
    let got = receiver
        .wait_for("/signed", 3, Duration::from_secs(10))
        .await;
    assert_ne!(&got[2].headers["idempotency-key"], key);
}

#[tokio::test]
async fn a_tampered_body_an_old_timestamp_or_another_teams_secret_fails_verification() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    let mut body = idle_job(&receiver.url("/signed"));
    body["method"] = json!("PUT");
    body["body"] = json!("amount=10");
    let job = app.create_job(body).await;
    app.post_empty(&format!("/jobs/{}/trigger", job["id"].as_str().unwrap()))
        .await;
    let r = receiver
        .wait_for("/signed", 1, Duration::from_secs(10))
        .await
        .remove(0);
    let secret = secret_of(&app, "alpha").await;
    let header = signature(&r);
    verify(header, b"amount=10", &secret, r.at).expect("the genuine request verifies");

    assert_eq!(
        verify(header, b"amount=1000", &secret, r.at),
        Err("no signature matches".into())
    );
    let replayed_later = r.at + chrono::Duration::minutes(10);
    assert!(
        verify(header, b"amount=10", &secret, replayed_later)
            .unwrap_err()
            .contains("too old")
    );
    // A forged timestamp with the old signature does not verify either.
    let t: i64 = header[2..header.find(',').unwrap()].parse().unwrap();
    let forged = header.replacen(&format!("t={t}"), &format!("t={}", t + 600), 1);
    assert_eq!(
        verify(
            &forged,
            b"amount=10",
            &secret,
            r.at + chrono::Duration::minutes(10)
        ),
        Err("no signature matches".into())
    );
    // Another team's secret does not verify this team's request.
    let beta = krafter_shared::embedded::ensure_team(
        app.app.as_ref().unwrap().teams().as_ref(),
        &TeamId::parse("beta").unwrap(),
        Utc::now(),
    )
    .await
    .unwrap()
    .secrets;
    assert_ne!(beta.current.as_str(), secret);
    assert!(verify(header, b"amount=10", beta.current.as_str(), r.at).is_err());
}

#[tokio::test]
async fn after_a_rotation_requests_verify_with_the_new_secret_and_still_with_the_old_one() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(|c| c.signing_secret_cache = Duration::ZERO).await;
    let job = app.create_job(idle_job(&receiver.url("/rotated"))).await;
    let trigger = format!("/jobs/{}/trigger", job["id"].as_str().unwrap());
    app.post_empty(&trigger).await;
    receiver
        .wait_for("/rotated", 1, Duration::from_secs(10))
        .await;
    let old = secret_of(&app, "alpha").await;

    let teams = app.app.as_ref().unwrap().teams();
    let rotated =
        rotate_signing_secret(teams.as_ref(), &TeamId::parse("alpha").unwrap(), Utc::now())
            .await
            .unwrap();
    let new = rotated.current.as_str().to_owned();
    assert_ne!(new, old);
    app.post_empty(&trigger).await;
    let got = receiver
        .wait_for("/rotated", 2, Duration::from_secs(10))
        .await;
    let r = &got[1];
    assert_eq!(signature(r).matches("v1=").count(), 2, "{}", signature(r));
    verify(signature(r), b"", &new, r.at).expect("verifies with the new secret");
    verify(signature(r), b"", &old, r.at).expect("and, for 24 h, with the old one");
    // The request before the rotation knew only the old secret.
    assert!(verify(signature(&got[0]), b"", &new, got[0].at).is_err());
}
