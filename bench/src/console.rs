//! The web console's jobs list on a team of 1,000 jobs: the page's weight (HTML, CSS, JS)
//! and how long the server takes to answer it (sequential requests on loopback, signed in,
//! with the newest 25 jobs' strips of latest runs full), and a walk through every page.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::Settings;
use crate::server::{self, Server};
use crate::sink::Sink;
use crate::stats::Summary;

const JOBS: usize = 1_000;
const SAMPLES: usize = 200;

pub async fn run(settings: &Settings, sink: &Sink) -> String {
    eprintln!("console: the jobs list with {JOBS} jobs");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(settings, dir.path());
    let ids = fill(&server, sink).await;
    let origin = server.base.trim_end_matches("/api/v1/cron").to_owned();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = sign_in(&client, &origin, &server.key).await;
    let get = |path: String| {
        let (client, cookie) = (client.clone(), cookie.clone());
        async move {
            let started = Instant::now();
            let r = client
                .get(path)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            let body = r.text().await.unwrap();
            (started.elapsed(), body)
        }
    };
    let (_, html) = get(format!("{origin}/jobs")).await;
    let asset = |ext: &str| {
        let name = html
            .split("/assets/")
            .find(|s| s.split('"').next().unwrap().ends_with(ext));
        format!(
            "{origin}/assets/{}",
            name.unwrap().split('"').next().unwrap()
        )
    };
    let css = get(asset(".css")).await.1.len();
    let js = get(asset(".js")).await.1.len();
    let mut times = Vec::new();
    for _ in 0..SAMPLES {
        times.push(get(format!("{origin}/jobs")).await.0.as_secs_f64());
    }
    let first_page = Summary::new(times);
    let (walk, pages) = walk(&get, &origin, &html).await;
    let job_page = get(format!("{origin}/jobs/{}", ids[ids.len() - 1])).await;
    server.stop();
    format!(
        "## Web console: the jobs list with {JOBS} jobs (25 a page, each with a strip of its \
         latest 10 runs)\n\n\
         | | |\n|---|---|\n\
         | page weight: HTML / CSS / JS (uncompressed) | {} / {css} / {js} bytes ({} in all) |\n\
         | the first page, answered in (p50 / p99 of {SAMPLES}, sequential, loopback) | {} / {} |\n\
         | every page, one after another ({pages} pages) | {} |\n\
         | a job's page with 10 runs: HTML, answered in | {} bytes, {} |\n",
        html.len(),
        html.len() + css + js,
        millis(first_page.pct(0.5)),
        millis(first_page.pct(0.99)),
        millis(walk.as_secs_f64()),
        job_page.1.len(),
        millis(job_page.0.as_secs_f64()),
    )
}

/// The team's 1,000 jobs; the newest 25 run 10 times each (their strips full). Returns the
/// ids, oldest first.
async fn fill(server: &Server, sink: &Sink) -> Vec<String> {
    let job = |i: usize| {
        json!({"name": format!("report {i:04}"), "schedule_type": "cron",
               "schedule": "0 9 * * 1-5", "timezone": "Europe/Berlin", "tags": ["bench"],
               "url": format!("{}/console/{i}", sink.base)})
    };
    let ids = server.create_jobs((0..JOBS).map(job).collect()).await;
    for id in ids.iter().rev().take(25) {
        for _ in 0..10 {
            server
                .call(reqwest::Method::POST, &format!("/jobs/{id}/trigger"), None)
                .await;
        }
    }
    for _ in 0..1000 {
        if server::succeeded(&server.db, None) >= 250 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ids
}

/// Seconds as "4.2 ms".
fn millis(secs: f64) -> String {
    format!("{:.1} ms", secs * 1000.0)
}

async fn sign_in(client: &reqwest::Client, origin: &str, key: &str) -> String {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("key", key)
        .finish();
    let r = client
        .post(format!("{origin}/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// Follows the "Next page" links from the first page to the last.
async fn walk<F, Fut>(get: &F, origin: &str, first: &str) -> (Duration, usize)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = (Duration, String)>,
{
    let started = Instant::now();
    let mut html = first.to_owned();
    let mut pages = 1;
    while let Some(next) = html
        .split("href=\"/jobs?")
        .nth(1)
        .filter(|_| html.contains("rel=\"next\""))
    {
        let query = next.split('"').next().unwrap().replace("&amp;", "&");
        html = get(format!("{origin}/jobs?{query}")).await.1;
        pages += 1;
    }
    (started.elapsed(), pages)
}
