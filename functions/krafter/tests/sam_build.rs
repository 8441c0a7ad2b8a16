//! A real `sam build` (`infra/sam-build`: cargo-lambda, release, x86_64), then each built
//! `bootstrap` started as Lambda starts it, against a local Lambda Runtime API, with its
//! AWS calls going to moto: the API function answers `GET /api/v1/health` from an API
//! Gateway (HTTP API) event, the executor reports an unreadable SQS message as a failed batch
//! item, the reconcile function runs its pass and returns its report, and the sync function
//! handles a job's deletion from the jobs table's stream.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// What a function sent back for its invocation: `response` or `error`, and the body.
#[derive(Debug)]
struct Outcome {
    kind: &'static str,
    body: Value,
}

#[derive(Clone)]
struct Runtime {
    /// The one event to hand out; later `next` calls wait, as with no traffic.
    event: Arc<Mutex<Option<Value>>>,
    done: mpsc::UnboundedSender<Outcome>,
}

async fn next(State(rt): State<Runtime>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(event) = rt.event.lock().unwrap().take() else {
        return std::future::pending().await;
    };
    let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
    let headers = [
        ("lambda-runtime-aws-request-id", "req-1".to_owned()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:krafter".to_owned(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".to_owned(),
        ),
    ];
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(k, v.parse().unwrap());
    }
    (StatusCode::OK, map, axum::Json(event)).into_response()
}

fn reply(
    kind: &'static str,
) -> impl Fn(State<Runtime>, axum::body::Bytes) -> std::future::Ready<StatusCode> + Clone {
    move |State(rt): State<Runtime>, body: axum::body::Bytes| {
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let _ = rt.done.send(Outcome { kind, body });
        std::future::ready(StatusCode::ACCEPTED)
    }
}

/// Starts a Runtime API that hands out `event` once; returns its address and the outcome.
async fn runtime_api(event: Value) -> (String, mpsc::UnboundedReceiver<Outcome>) {
    let (done, outcomes) = mpsc::unbounded_channel();
    let rt = Runtime {
        event: Arc::new(Mutex::new(Some(event))),
        done,
    };
    let base = "/2018-06-01/runtime";
    let app = axum::Router::new()
        .route(&format!("{base}/invocation/next"), get(next))
        .route(
            &format!("{base}/invocation/{{id}}/response"),
            post(|s, UrlPath(_): UrlPath<String>, b| reply("response")(s, b)),
        )
        .route(
            &format!("{base}/invocation/{{id}}/error"),
            post(|s, UrlPath(_): UrlPath<String>, b| reply("error")(s, b)),
        )
        .route(&format!("{base}/init/error"), post(reply("init error")))
        .with_state(rt);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, outcomes)
}

/// Runs `bootstrap` as Lambda would, with `env`, until it answers `event`.
async fn invoke(bootstrap: &Path, env: &[(String, String)], event: Value) -> Outcome {
    let (api, mut outcomes) = runtime_api(event).await;
    let mut child = Command::new(bootstrap)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "krafter")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/krafter")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", bootstrap.display()));
    let outcome = tokio::time::timeout(Duration::from_secs(60), outcomes.recv()).await;
    let _ = child.kill();
    let _ = child.wait();
    outcome
        .unwrap_or_else(|_| panic!("{} took no invocation within 60 s", bootstrap.display()))
        .expect("an outcome")
}

/// The environment of a deployed function: the resources `krafter aws init` made on moto
/// (what the template declares), the AWS endpoint, dummy credentials.
fn deployed_env() -> Vec<(String, String)> {
    let moto = krafter_testkit::moto().to_owned();
    let prefix = krafter_testkit::unique("sam");
    let aws = [
        ("AWS_ENDPOINT_URL", moto.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_krafter"))
        .args(["aws", "init", "--prefix", &prefix])
        .envs(aws)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut env: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect();
    env.extend(aws.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

fn health_request() -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/api/v1/health",
        "rawQueryString": "", "headers": {"host": "abc.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc", "domainName": "abc.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc", "requestId": "r-1", "routeKey": "$default", "stage": "$default",
            "time": "01/Dec/2026:10:00:00 +0000", "timeEpoch": 1796119200000_i64,
            "http": {"method": "GET", "path": "/api/v1/health", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "sam-build-test"}
        },
        "isBase64Encoded": false
    })
}

fn unreadable_sqs_message() -> Value {
    json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "rh-1", "body": "not a run",
        "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:runs", "awsRegion": "us-east-1",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1796119200000",
                       "SenderId": "x", "ApproximateFirstReceiveTimestamp": "1796119200000"},
        "messageAttributes": {}
    }]})
}

#[tokio::test]
async fn sam_build_makes_bootstraps_that_each_take_their_first_invocation() {
    let out = Command::new("bash")
        .arg("infra/sam-build")
        .current_dir(ROOT)
        .output()
        .expect("bash runs infra/sam-build");
    assert!(
        out.status.success(),
        "sam build failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let built = Path::new(ROOT).join("target/sam-build");
    let template = std::fs::read_to_string(built.join("template.yaml")).unwrap();
    assert!(template.contains("x86_64"), "built for x86_64");
    let env = deployed_env();

    let api = invoke(&built.join("ApiFunction/bootstrap"), &env, health_request()).await;
    assert_eq!(api.kind, "response", "{api:?}");
    assert_eq!(api.body["statusCode"], 200, "{api:?}");
    assert_eq!(
        serde_json::from_str::<Value>(api.body["body"].as_str().unwrap()).unwrap(),
        json!({"ok": true})
    );

    let executor = invoke(
        &built.join("ExecutorFunction/bootstrap"),
        &env,
        unreadable_sqs_message(),
    )
    .await;
    assert_eq!(executor.kind, "response", "{executor:?}");
    assert_eq!(
        executor.body,
        json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]})
    );

    let scheduled =
        json!({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}});
    let reconcile = invoke(&built.join("ReconcileFunction/bootstrap"), &env, scheduled).await;
    assert_eq!(reconcile.kind, "response", "{reconcile:?}");
    assert_eq!(reconcile.body["jobs"], 0, "{reconcile:?}");

    let sync = invoke(&built.join("SyncFunction/bootstrap"), &env, job_removed()).await;
    assert_eq!(sync.kind, "response", "{sync:?}");
    assert_eq!(sync.body, json!({"batchItemFailures": []}), "{sync:?}");
}

/// A jobs table stream event: a job deleted (its schedules, none here, are deleted).
fn job_removed() -> Value {
    let keys = json!({"team": {"S": "alpha"}, "id": {"S": "0190a0b0-0000-7000-8000-000000000001"}});
    json!({"Records": [{
        "eventID": "1", "eventName": "REMOVE", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/jobs/stream/1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1767225600.0, "Keys": keys, "OldImage": keys,
            "SequenceNumber": "100", "SizeBytes": 60, "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }]})
}
