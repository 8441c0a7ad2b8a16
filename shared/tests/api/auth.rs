//! Keys, scopes, tenancy and the rate limit.

use axum::http::Method;
use chrono::Utc;
use krafter_shared::domain::{KeyPrefix, PlainKey, Scope, Scopes, TeamId, time::whole_seconds};
use krafter_shared::embedded::create_key;
use serde_json::json;

use crate::helpers::{TestApp, health_check};

#[tokio::test]
async fn missing_malformed_unknown_revoked_and_expired_keys_are_refused() {
    let app = TestApp::spawn().await;
    let keys = app.app.as_ref().unwrap().keys();
    let (expired, _) = create_key(
        keys.as_ref(),
        TeamId::parse("alpha").unwrap(),
        Scopes::new(vec![Scope::Write]),
        Some(chrono::Duration::seconds(-1)),
        Utc::now(),
    )
    .await
    .unwrap();
    let revoked = app.new_key("alpha", &[Scope::Write]).await;
    keys.revoke(
        &KeyPrefix::parse(&revoked[..12]).unwrap(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let unknown = PlainKey::generate();
    for key in [
        None,
        Some("kr_live_abc123def456"),
        Some("not-a-key"),
        Some(unknown.as_str()),
        Some(revoked.as_str()),
        Some(expired.as_str()),
    ] {
        let r = app.call_as(key, Method::GET, "/jobs", None).await;
        r.assert_error(401, "Invalid or missing API key");
        assert!(r.header("x-ratelimit-limit").is_some());
        assert!(
            r.header("x-request-id").is_some(),
            "errors carry a request id too"
        );
    }
    let r = app
        .client
        .get(app.url("/jobs"))
        .header("authorization", format!("Basic {}", app.key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "only Bearer");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::spawn().await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = app
            .client
            .get(app.url("/jobs"))
            .header("authorization", format!("{scheme} {}", app.key))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
    for refused in [format!("Bearer{}", app.key), format!("Bearerx {}", app.key)] {
        let r = app
            .client
            .get(app.url("/jobs"))
            .header("authorization", refused.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{refused}");
    }
}

#[tokio::test]
async fn a_read_key_reads_but_cannot_write() {
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check("https://example.com/")).await;
    let id = job["id"].as_str().unwrap();
    let read = app.new_key("alpha", &[Scope::Read]).await;
    for path in [
        "/jobs".to_owned(),
        format!("/jobs/{id}"),
        format!("/jobs/{id}/executions"),
    ] {
        let r = app.call_as(Some(&read), Method::GET, &path, None).await;
        assert_eq!(r.status, 200, "{path}");
    }
    let writes = [
        (
            Method::POST,
            "/jobs".to_owned(),
            Some(health_check("https://example.com/")),
        ),
        (
            Method::PATCH,
            format!("/jobs/{id}"),
            Some(json!({"name": "x"})),
        ),
        (Method::DELETE, format!("/jobs/{id}"), None),
        (Method::POST, format!("/jobs/{id}/trigger"), None),
        (Method::POST, format!("/jobs/{id}/pause"), None),
        (Method::POST, format!("/jobs/{id}/resume"), None),
    ];
    for (method, path, body) in writes {
        let r = app
            .call_as(Some(&read), method.clone(), &path, body.as_ref())
            .await;
        r.assert_error(403, "Insufficient scope");
    }
    assert_eq!(
        app.get(&format!("/jobs/{id}")).await.body["data"],
        job,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_team_never_sees_or_touches_another_teams_jobs() {
    let app = TestApp::spawn().await;
    let job = app.create_job(health_check("https://example.com/")).await;
    let id = job["id"].as_str().unwrap();
    let other = app.new_key("beta", &[Scope::Write]).await;
    let r = app.call_as(Some(&other), Method::GET, "/jobs", None).await;
    assert_eq!(r.body["data"], json!([]));
    for (method, path, body) in [
        (Method::GET, format!("/jobs/{id}"), None),
        (
            Method::PATCH,
            format!("/jobs/{id}"),
            Some(json!({"name": "stolen"})),
        ),
        (Method::DELETE, format!("/jobs/{id}"), None),
        (Method::POST, format!("/jobs/{id}/trigger"), None),
        (Method::POST, format!("/jobs/{id}/pause"), None),
        (Method::POST, format!("/jobs/{id}/resume"), None),
        (Method::GET, format!("/jobs/{id}/executions"), None),
        (
            Method::GET,
            format!("/jobs/{id}/executions/{}", uuid::Uuid::new_v4()),
            None,
        ),
    ] {
        let r = app
            .call_as(Some(&other), method, &path, body.as_ref())
            .await;
        r.assert_error(404, "Not found");
    }
    assert_eq!(app.get(&format!("/jobs/{id}")).await.body["data"], job);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let app = TestApp::spawn().await;
    for path in [
        format!("/jobs/{}", uuid::Uuid::new_v4()),
        "/jobs/123".to_owned(),
        "/jobs/not-a-uuid/executions".to_owned(),
        "/jobs/%FF".to_owned(),
        format!("/jobs/{}/executions/%FF", uuid::Uuid::new_v4()),
    ] {
        app.get(&path).await.assert_error(404, "Not found");
    }
}

#[tokio::test]
async fn the_rate_limit_is_per_team_with_headers_and_retry_after() {
    // A day-long window: the test never straddles a window boundary.
    let app = TestApp::spawn_with(|c| {
        c.settings.rate_limit = 3;
        c.settings.rate_window_secs = 86_400;
    })
    .await;
    let other = app.new_key("beta", &[Scope::Read]).await;
    for remaining in [2, 1, 0] {
        let r = app.get("/jobs").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        assert_eq!(
            r.header("x-ratelimit-remaining"),
            Some(remaining.to_string().as_str())
        );
        let reset: u32 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=86_400).contains(&reset));
    }
    let r = app.get("/jobs").await;
    r.assert_error(429, "Rate limit exceeded");
    let retry_after: u32 = r.header("retry-after").unwrap().parse().unwrap();
    assert_eq!(r.body["retry_after"], retry_after);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    let r = app
        .post("/jobs", &health_check("https://example.com/"))
        .await;
    assert_eq!(r.status, 429, "a refused request changes nothing");
    let r = app.call_as(Some(&other), Method::GET, "/jobs", None).await;
    assert_eq!(r.status, 200, "another team has its own budget");
    assert_eq!(r.body["data"], json!([]));
}

#[tokio::test]
async fn a_keys_last_use_is_recorded_to_the_minute() {
    let app = TestApp::spawn().await;
    let keys = app.app.as_ref().unwrap().keys();
    let last_use = |prefix: KeyPrefix| {
        let keys = keys.clone();
        async move {
            keys.list(None)
                .await
                .unwrap()
                .into_iter()
                .find(|k| k.prefix == prefix)
                .unwrap()
                .last_used_at
        }
    };
    let alpha = PlainKey::parse(&app.key).unwrap().prefix();
    let before = whole_seconds(chrono::Utc::now());
    assert_eq!(last_use(alpha.clone()).await, None);
    assert_eq!(app.get("/jobs").await.status, 200);
    let used = last_use(alpha).await.expect("recorded");
    assert!(used >= before, "{used}");

    // Used 30 s ago: not written again. Used 90 s ago: written.
    let team = TeamId::parse("alpha").unwrap();
    let scopes = Scopes::new(vec![Scope::Read]);
    let (recent, mut stored) = create_key(
        keys.as_ref(),
        team.clone(),
        scopes.clone(),
        None,
        Utc::now(),
    )
    .await
    .unwrap();
    let (stale, _) = create_key(keys.as_ref(), team, scopes, None, Utc::now())
        .await
        .unwrap();
    stored.last_used_at = Some(before - chrono::Duration::seconds(30));
    keys.touch(&stored.hash, stored.last_used_at.unwrap())
        .await
        .unwrap();
    keys.touch(&stale.hash(), before - chrono::Duration::seconds(90))
        .await
        .unwrap();
    for key in [&recent, &stale] {
        let r = app
            .call_as(Some(key.as_str()), Method::GET, "/jobs", None)
            .await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(last_use(recent.prefix()).await, stored.last_used_at);
    assert!(last_use(stale.prefix()).await.unwrap() >= before);

    // A refused key is not a use.
    let (revoked, _) = create_key(
        keys.as_ref(),
        TeamId::parse("alpha").unwrap(),
        Scopes::new(vec![Scope::Read]),
        None,
        Utc::now(),
    )
    .await
    .unwrap();
    keys.revoke(&revoked.prefix(), chrono::Utc::now())
        .await
        .unwrap();
    let r = app
        .call_as(Some(revoked.as_str()), Method::GET, "/jobs", None)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(last_use(revoked.prefix()).await, None);
}
