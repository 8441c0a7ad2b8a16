//! The web console in a real browser (headless Chromium, `browser`), against the embedded
//! application with a real webhook receiver; and its sessions and defences over plain HTTP.

use std::time::Duration;

use axum::http::Method;
use krafter_shared::domain::Scope;
use serde_json::json;

use crate::browser::Browser;
use crate::helpers::{Receiver, TestApp};

fn console_job(receiver: &Receiver, name: &str) -> serde_json::Value {
    json!({"name": name, "schedule_type": "cron", "schedule": "0 3 * * *",
           "url": receiver.url("/console"), "max_retries": 0})
}

#[tokio::test]
async fn a_person_signs_in_creates_a_job_previews_triggers_pauses_resumes_and_deletes_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let b = Browser::open(&app.base).await;
    b.go("/").await;
    b.wait_for_path("/sign-in").await;
    b.screenshots("sign-in").await;
    b.sign_in(&app.key).await;
    assert!(b.text(".empty").await.contains("No jobs"));

    // A create with a bad schedule shows the API's message beside the field.
    b.click("a[href='/jobs/new']").await;
    b.fill("#f-name", "Nightly report").await;
    b.select("#f-schedule_type", "cron").await;
    b.fill("#f-schedule", "61 * * * *").await;
    b.fill("#f-url", &receiver.url("/console")).await;
    b.click("form.job-form button[type=submit]:not([name])")
        .await;
    b.wait_for_text(
        ".field.invalid .field-error",
        "is not a valid cron expression",
        Duration::from_secs(10),
    )
    .await;
    b.screenshots("new-job-error").await;
    b.readme_shot("new-job-error").await;

    // The preview follows the schedule as it is typed.
    b.fill("#f-schedule", "*/5 * * * *").await;
    b.wait_for_text("#preview li", ":", Duration::from_secs(10))
        .await;
    let every_five = b.texts("#preview li").await;
    assert_eq!(every_five.len(), 5, "{every_five:?}");
    b.fill("#f-schedule", "0 9 * * 1-5").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while b.texts("#preview li").await == every_five {
        assert!(
            std::time::Instant::now() < deadline,
            "the preview did not change"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.screenshots("new-job").await;
    b.click("form.job-form button[type=submit]:not([name])")
        .await;
    let id = b.wait_for_job_page().await;
    assert_eq!(b.text("h1").await, "Nightly report");

    b.go("/jobs").await;
    b.wait_for_text(
        "table.jobs td",
        "at 09:00 on Monday–Friday, UTC",
        Duration::from_secs(5),
    )
    .await;
    b.screenshots("jobs").await;
    b.readme_shot("jobs").await;

    // Run now: the execution appears without a reload.
    b.go(&format!("/jobs/{id}")).await;
    b.click(&format!("form[action='/jobs/{id}/trigger'] button"))
        .await;
    b.wait_for_path(&format!("/jobs/{id}?done=trigger")).await;
    b.eval("window.__same_page = true; return true;").await;
    b.wait_for_text("tr.execution .badge", "success", Duration::from_secs(15))
        .await;
    assert_eq!(
        b.eval("return window.__same_page === true;").await,
        json!(true),
        "reloaded"
    );
    assert_eq!(receiver.received("/console").len(), 1);
    let first_run = b.count("tr.execution").await;
    assert_eq!(first_run, 1);
    // A few more runs, one failing, for the chart and the pictures.
    let replies = [200, 500, 200, 200]
        .map(crate::helpers::Scripted::status)
        .to_vec();
    receiver.script("/console", replies);
    for _ in 0..4 {
        app.post_empty(&format!("/jobs/{id}/trigger")).await;
    }
    app.wait_for_executions(&id, 5, Duration::from_secs(10))
        .await;
    b.go(&format!("/jobs/{id}")).await;
    b.wait_for_text("tr.execution .badge", "failed", Duration::from_secs(10))
        .await;
    assert_eq!(b.count("figure.chart rect").await, 5);
    b.screenshots("job").await;
    b.readme_shot("job").await;

    // Pause with a reason, resume.
    b.fill("#reason", "maintenance window").await;
    b.click(&format!("form[action='/jobs/{id}/pause'] button"))
        .await;
    b.wait_for_text(
        ".heading .badge",
        "paused: maintenance window",
        Duration::from_secs(5),
    )
    .await;
    b.click(&format!("form[action='/jobs/{id}/resume'] button"))
        .await;
    b.wait_for_text(".heading .badge", "enabled", Duration::from_secs(5))
        .await;

    // Editing: the form holds the job, and the preview follows the edit.
    b.go(&format!("/jobs/{id}/edit")).await;
    assert_eq!(
        b.find("#f-schedule")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("0 9 * * 1-5")
    );
    b.fill("#f-schedule", "every_1h").await;
    b.select("#f-schedule_type", "interval").await;
    b.wait_for_text("#preview li", ":", Duration::from_secs(10))
        .await;
    b.screenshots("edit-job").await;
    b.click("form.job-form button[type=submit]:not([name])")
        .await;
    b.wait_for_text("p.schedule", "every hour", Duration::from_secs(5))
        .await;

    // Delete, once confirmed.
    b.click("#confirm").await;
    b.click(&format!("form[action='/jobs/{id}/delete'] button"))
        .await;
    b.wait_for_exact_path("/jobs").await;
    assert_eq!(app.get(&format!("/jobs/{id}")).await.status, 404);

    b.go("/team").await;
    b.click("form[action='/team/secret'] button").await;
    let secret = b
        .find("#secret")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    b.screenshots("team").await;
    b.close().await;
}

#[tokio::test]
async fn a_read_only_key_sees_no_controls_and_is_refused_if_it_forces_them() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let job = app.create_job(console_job(&receiver, "Read me")).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let reader = app.new_key("alpha", &[Scope::Read]).await;
    let b = Browser::open(&app.base).await;
    b.sign_in(&reader).await;
    b.wait_for_text("table.jobs a", "Read me", Duration::from_secs(5))
        .await;
    assert_eq!(b.count("a[href='/jobs/new']").await, 0);
    b.go(&format!("/jobs/{id}")).await;
    assert_eq!(b.count("main form").await, 0, "no control on a job");
    b.go("/team").await;
    assert_eq!(b.count("main form").await, 0, "no control on the team");
    // Forcing a change from the page itself: the API's refusal, and nothing happens.
    let status = b
        .client
        .execute_async(
            &format!("const done = arguments[0]; fetch('/jobs/{id}/trigger', {{method: 'POST'}}).then(r => done(r.status));"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received("/console").is_empty());
    assert!(app.executions(&id).await.is_empty());
    b.close().await;
}

#[tokio::test]
async fn hostile_names_and_header_values_render_as_text_and_run_no_script() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let name = "<img src=x onerror=\"window.__xss=1\">";
    let mut body = console_job(&receiver, name);
    body["headers"] = json!({"X-Evil": "<script>window.__xss=2</script>"});
    body["tags"] = json!(["x"]);
    let id = app.create_job(body).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = Browser::open(&app.base).await;
    b.sign_in(&app.key).await;
    for path in [
        "/jobs".to_owned(),
        format!("/jobs/{id}"),
        format!("/jobs/{id}/edit"),
    ] {
        b.go(&path).await;
        b.find("main").await;
        assert_eq!(
            b.eval("return window.__xss === undefined;").await,
            json!(true),
            "{path}"
        );
        assert_eq!(b.count("main img").await, 0, "{path}");
    }
    b.go(&format!("/jobs/{id}")).await;
    assert_eq!(b.text("h1").await, name);
    assert!(
        b.text("dl.definition")
            .await
            .contains("X-Evil: <script>window.__xss=2</script>")
    );
    b.close().await;
}

#[tokio::test]
async fn a_forged_cross_site_post_is_refused() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let id = app.create_job(console_job(&receiver, "Target")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another site (another port: the same site for cookies, so SameSite alone would not
    // stop it) whose page posts a delete to the console as soon as it loads.
    let page = format!(
        "<form id=f method=post action='{}/jobs/{id}/delete'><input name=confirm value=yes></form>\
         <script>document.getElementById('f').submit()</script>",
        app.base
    );
    let evil = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, evil).await.unwrap() });

    let b = Browser::open(&app.base).await;
    b.sign_in(&app.key).await;
    b.client.goto(&evil_url).await.unwrap();
    b.wait_for_text("h1", "Refused", Duration::from_secs(10))
        .await;
    assert_eq!(
        app.get(&format!("/jobs/{id}")).await.status,
        200,
        "the job is still there"
    );
    b.close().await;
}

#[tokio::test]
async fn every_page_passes_axe_core_without_a_serious_or_critical_violation() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let id = app.create_job(console_job(&receiver, "Accessible")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post_empty(&format!("/jobs/{id}/trigger")).await;
    app.wait_for_executions(&id, 1, Duration::from_secs(10))
        .await;
    let b = Browser::open(&app.base).await;
    b.go("/sign-in").await;
    let mut found = Vec::new();
    found.extend(
        b.serious_accessibility_violations()
            .await
            .into_iter()
            .map(|v| format!("/sign-in: {v}")),
    );
    b.sign_in(&app.key).await;
    for path in [
        "/jobs".to_owned(),
        format!("/jobs/{id}"),
        format!("/jobs/{id}/edit"),
        "/jobs/new".into(),
        "/team".into(),
    ] {
        for (w, h) in [crate::browser::DESKTOP, crate::browser::PHONE] {
            b.client.set_window_size(w, h).await.unwrap();
            b.go(&path).await;
            b.find("main").await;
            let v = b.serious_accessibility_violations().await;
            found.extend(v.into_iter().map(|v| format!("{path} at {w} px: {v}")));
        }
    }
    assert!(found.is_empty(), "axe-core found:\n{}", found.join("\n"));
    b.close().await;
}

fn form_body(key: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("key", key)
        .finish()
}

/// Signs in over HTTP at `base`; returns the session cookie (`name=value`).
pub async fn session_cookie(base: &str, key: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(format!("{base}/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age=43200", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_owned()
}

pub async fn page_status(base: &str, cookie: &str, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status().as_u16(), location)
}

#[tokio::test]
async fn a_session_ends_when_its_key_is_revoked_and_is_refused_when_forged() {
    let app = TestApp::spawn().await;
    let key = app.new_key("alpha", &[Scope::Write]).await;
    let cookie = session_cookie(&app.base, &key).await;
    assert_eq!(page_status(&app.base, &cookie, "/jobs").await.0, 200);
    let forged = format!("{}x", cookie);
    assert_eq!(
        page_status(&app.base, &forged, "/jobs").await,
        (303, "/sign-in".into())
    );
    let keys = app.app.as_ref().unwrap().keys();
    let prefix = krafter_shared::domain::PlainKey::parse(&key)
        .unwrap()
        .prefix();
    keys.revoke(&prefix, chrono::Utc::now()).await.unwrap();
    assert_eq!(
        page_status(&app.base, &cookie, "/jobs").await,
        (303, "/sign-in".into())
    );
}

#[tokio::test]
async fn sign_in_refuses_a_bad_key_is_rate_limited_and_never_echoes_the_key() {
    // A long window: the test cannot straddle two of them.
    let app = TestApp::spawn_with(|c| {
        c.settings.rate_limit = 5;
        c.settings.rate_window_secs = 3600;
    })
    .await;
    let client = reqwest::Client::new();
    let guess = "kr_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = client
            .post(format!("{}/sign-in", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(guess))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        let page = r.text().await.unwrap();
        assert!(!page.contains(guess), "the key is echoed");
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
}

#[tokio::test]
async fn signing_out_drops_the_session_cookie() {
    let app = TestApp::spawn().await;
    let cookie = session_cookie(&app.base, &app.key).await;
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/sign-out", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/sign-in");
    let dropped = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        dropped.starts_with("krafter_session=;") && dropped.contains("Max-Age=0"),
        "{dropped}"
    );
    // The API is untouched by the console's session: a REST call still needs its key.
    assert_eq!(
        app.call_as(None, Method::GET, "/jobs", None).await.status,
        401
    );
}

#[tokio::test]
async fn every_console_response_carries_a_strict_content_security_policy() {
    let app = TestApp::spawn().await;
    let r = reqwest::get(format!("{}/sign-in", app.base)).await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("<script>") && !page.contains(" style="),
        "nothing inline"
    );
    let css = page
        .split("/assets/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let asset = reqwest::get(format!("{}/assets/{css}", app.base))
        .await
        .unwrap();
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
}

async fn page(base: &str, cookie: &str, path: &str) -> String {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The names of the jobs a list page shows, in order.
fn listed(html: &str) -> Vec<String> {
    html.split("<td data-label=\"Name\"><a href=\"/jobs/")
        .skip(1)
        .map(|rest| {
            rest.split('>')
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_jobs_list_filters_searches_and_pages_with_the_apis_cursors() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    for i in 0..30 {
        let mut body = console_job(&receiver, &format!("job {i:02}"));
        if i % 10 == 0 {
            body["tags"] = json!(["tenth"]);
        }
        app.create_job(body).await;
    }
    let paused = app.create_job(console_job(&receiver, "sleepy")).await;
    let id = paused["id"].as_str().unwrap();
    app.post(&format!("/jobs/{id}/pause"), &json!({"reason": "night"}))
        .await;
    let cookie = session_cookie(&app.base, &app.key).await;

    let first = page(&app.base, &cookie, "/jobs").await;
    assert_eq!(listed(&first).len(), 25, "a page holds 25");
    assert_eq!(listed(&first)[0], "sleepy", "newest first");
    let next = first
        .split("href=\"/jobs?")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let second = page(
        &app.base,
        &cookie,
        &format!("/jobs?{}", next.replace("&amp;", "&")),
    )
    .await;
    assert_eq!(listed(&second).len(), 6);
    assert!(!second.contains("rel=\"next\""));

    let tagged = listed(&page(&app.base, &cookie, "/jobs?tag=tenth").await);
    assert_eq!(tagged, ["job 20", "job 10", "job 00"]);
    let searched = listed(&page(&app.base, &cookie, "/jobs?q=job+1").await);
    assert_eq!(searched.len(), 10, "{searched:?}");
    let paused_page = page(&app.base, &cookie, "/jobs?state=paused").await;
    assert_eq!(listed(&paused_page), ["sleepy"]);
    assert!(paused_page.contains("paused: night"));
    let refused = page(&app.base, &cookie, "/jobs?last_status=sometimes").await;
    assert!(
        refused.contains("class=\"error\""),
        "the API's message is shown"
    );
}

/// A reverse proxy on 127.0.0.1 serving `upstream` under `prefix`, which it strips (as
/// `cargo lambda watch` does with `/lambda-url/<function>`, or an ingress with a path). It
/// keeps the browser's `Host`, as such proxies do. Returns the console's URL through it.
async fn stripping_proxy(upstream: String, prefix: &'static str) -> String {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::IntoResponse;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let app = axum::Router::new().fallback(move |request: Request| {
        let (client, upstream) = (client.clone(), upstream.clone());
        async move {
            let (parts, body) = request.into_parts();
            let Some(path) = parts
                .uri
                .path_and_query()
                .and_then(|p| p.as_str().strip_prefix(prefix))
            else {
                return axum::http::StatusCode::NOT_FOUND.into_response();
            };
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut ask = client
                .request(parts.method, format!("{upstream}{path}"))
                .body(body);
            for (name, value) in &parts.headers {
                ask = ask.header(name, value);
            }
            let answer = ask.send().await.unwrap();
            let mut response = axum::http::Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                response = response.header(name, value);
            }
            response
                .body(Body::from(answer.bytes().await.unwrap()))
                .unwrap()
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{prefix}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn behind_a_proxy_that_strips_a_path_every_link_form_and_script_keeps_it() {
    let app = TestApp::spawn_with(|c| c.settings.console_base = "/lambda-url/api".into()).await;
    let receiver = Receiver::start().await;
    let console = stripping_proxy(app.base.clone(), "/lambda-url/api").await;
    let b = Browser::open(&console).await;
    b.go("/").await;
    b.wait_for_path("/sign-in").await;
    b.sign_in(&app.key).await;
    let styled = b
        .eval("return getComputedStyle(document.querySelector('.top')).display;")
        .await;
    assert_eq!(
        styled,
        json!("flex"),
        "the stylesheet loads through the proxy"
    );
    b.click("a.button").await;
    b.fill("#f-name", "Through a proxy").await;
    b.fill("#f-schedule", "@daily").await;
    b.wait_for_text("#preview li", ":", Duration::from_secs(10))
        .await;
    b.fill("#f-url", &receiver.url("/proxied")).await;
    b.click("form.job-form button[type=submit]:not([name])")
        .await;
    b.wait_for_job_page().await;
    b.click("form[action$='/trigger'] button").await;
    b.wait_for_text("tr.execution .badge", "success", Duration::from_secs(15))
        .await;
    let links = b.eval("return [...document.querySelectorAll('a[href], form[action]')].map(e => e.getAttribute('href') || e.getAttribute('action'));").await;
    for link in links.as_array().unwrap().iter().filter_map(|l| l.as_str()) {
        let in_page = link.starts_with('#');
        assert!(in_page || link.starts_with("/lambda-url/api/"), "{link}");
    }
    b.click("form.pause button").await;
    b.wait_for_text(".heading .badge", "paused", Duration::from_secs(5))
        .await;
    b.close().await;
}
