//! Limits that hold under abuse, tried with raw sockets: what a well-behaved HTTP client
//! would never send.

use std::time::{Duration, Instant};

use krafter_shared::embedded::ServerLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the peer closes or `within` passes; returns what arrived and whether the
/// connection was closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = TestApp::spawn_with(|c| {
        c.server_limits = ServerLimits {
            header_read_timeout: Duration::from_millis(500),
            ..ServerLimits::default()
        }
    })
    .await;
    let mut slow = connect(&app).await;
    slow.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        .await
        .unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "the slow connection is closed");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Others are served meanwhile and after.
    assert_eq!(app.get("/jobs").await.status, 200);
}

#[tokio::test]
async fn a_body_announced_over_256_kib_is_refused_without_being_read() {
    let app = TestApp::spawn().await;
    let mut s = connect(&app).await;
    let head = format!(
        "POST /api/v1/cron/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{{\"name\":",
        app.key
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // 100 MB announced, a few bytes sent: the answer comes anyway.
    let (response, _) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(status_line(&response).contains("413"), "{response}");
    assert!(response.contains("Payload too large"), "{response}");
}

#[tokio::test]
async fn a_body_that_trickles_in_too_slowly_gets_408() {
    let app = TestApp::spawn().await;
    let mut s = connect(&app).await;
    let head = format!(
        "POST /api/v1/cron/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 100\r\n\r\n{{\"na",
        app.key
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (response, _) = read_until_closed(&mut s, Duration::from_secs(15)).await;
    assert!(status_line(&response).contains("408"), "{response}");
    assert!(response.contains("request_timeout"), "{response}");
    assert_eq!(app.get("/jobs").await.body["data"], serde_json::json!([]));
}

#[tokio::test]
async fn oversized_or_too_many_headers_get_431() {
    let app = TestApp::spawn().await;
    let mut s = connect(&app).await;
    let big = "a".repeat(40 * 1024);
    s.write_all(
        format!("GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let (response, _) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(status_line(&response).contains("431"), "{response}");

    let mut s = connect(&app).await;
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    s.write_all(format!("GET /api/v1/health HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes())
        .await
        .unwrap();
    let (response, _) = read_until_closed(&mut s, Duration::from_secs(3)).await;
    assert!(status_line(&response).contains("431"), "{response}");
}

#[tokio::test]
async fn a_uri_over_8_kib_gets_414_and_a_long_one_under_it_is_served() {
    let app = TestApp::spawn().await;
    let long = format!("/jobs?limit=10&pad={}", "x".repeat(9 * 1024));
    let r = app.get(&long).await;
    r.assert_error(414, "URI too long");
    assert!(r.header("x-ratelimit-limit").is_some());
    let r = app
        .get(&format!("/jobs?limit=10&cursor={}", "x".repeat(7 * 1024)))
        .await;
    assert_ne!(r.status, 414, "{}", r.body);
}
