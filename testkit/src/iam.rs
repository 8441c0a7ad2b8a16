//! Least privilege, checked: every AWS call a function makes, recorded as IAM sees it (the
//! action and the template resource it is on), and each function's policy in template.yaml,
//! so a test can fail when a policy lacks an action its function uses, or grants one it
//! never uses.
//!
//! A `Recorder` is an SDK interceptor: `recording_clients` gives the clients of one
//! function, whose calls land in the process-wide record under that function's name.
//! Physical names (tables, queues, the schedule group, the scheduler role) are mapped back
//! to the template's logical ids through the `HostedResources` they were made with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use krafter_shared::hosted::{AwsClients, HostedResources};
use serde_json::Value;

/// One permission a call needs: `dynamodb:GetItem` on `JobsTable`, `scheduler:GetSchedule`
/// on `ScheduleGroup/<name>`, `sqs:SendMessage` on `RunQueue`, `scheduler:ListSchedules` on
/// `*`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub action: String,
    pub resource: String,
}

type Record = BTreeMap<String, BTreeSet<Call>>;

/// Every call recorded in this process, by function (its logical id in the template).
pub fn recorded() -> Record {
    record().lock().unwrap().clone()
}

fn record() -> &'static Mutex<Record> {
    static RECORD: OnceLock<Mutex<Record>> = OnceLock::new();
    RECORD.get_or_init(Mutex::default)
}

/// The interceptor of one function's clients.
#[derive(Clone, Debug)]
pub struct Recorder {
    function: Arc<str>,
    names: Arc<BTreeMap<String, &'static str>>,
}

impl Recorder {
    /// Records for `function` (`ApiFunction`, `ExecutorFunction`, `ReconcileFunction`), on
    /// the resources `resources` names.
    pub fn new(function: &str, resources: &HostedResources) -> Self {
        let t = &resources.tables;
        let names = [
            (t.jobs.clone(), "JobsTable"),
            (t.executions.clone(), "ExecutionsTable"),
            (t.keys.clone(), "KeysTable"),
            (t.teams.clone(), "TeamsTable"),
            (t.rate_limits.clone(), "RateLimitsTable"),
            (t.idempotency.clone(), "IdempotencyTable"),
            (t.audit.clone(), "AuditTable"),
            (resources.run_queue_url.clone(), "RunQueue"),
            (resources.dead_letter_queue_url.clone(), "DeadLetterQueue"),
            (resources.schedule_group.clone(), "ScheduleGroup"),
            (resources.scheduler_role_arn.clone(), "SchedulerRole"),
        ];
        Self {
            function: function.into(),
            names: Arc::new(names.into_iter().collect()),
        }
    }

    fn logical(&self, physical: &str) -> String {
        self.names
            .get(physical)
            .map_or_else(|| format!("unknown:{physical}"), |l| (*l).to_owned())
    }

    fn calls(&self, service: &str, operation: &str, body: &Value, uri: &str) -> Vec<Call> {
        let call = |action: String, resource: String| Call { action, resource };
        match service.to_ascii_lowercase().as_str() {
            "dynamodb" => self.dynamodb(operation, body),
            "sqs" => {
                let action = operation.trim_end_matches("Batch");
                let queue = self.logical(body["QueueUrl"].as_str().unwrap_or_default());
                vec![call(format!("sqs:{action}"), queue)]
            }
            "scheduler" => self.scheduler(operation, body, uri),
            other => vec![call(format!("{other}:{operation}"), "*".into())],
        }
    }

    fn dynamodb(&self, operation: &str, body: &Value) -> Vec<Call> {
        let on = |table: &Value, index: &Value| {
            let table = self.logical(table.as_str().unwrap_or_default());
            match index.as_str() {
                Some(i) => format!("{table}/index/{i}"),
                None => table,
            }
        };
        let call = |action: &str, resource: String| Call {
            action: format!("dynamodb:{action}"),
            resource,
        };
        match operation {
            "TransactWriteItems" | "TransactGetItems" => body["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item.as_object()?.iter().next())
                .map(|(kind, part)| {
                    let action = match kind.as_str() {
                        "ConditionCheck" => "ConditionCheckItem".to_owned(),
                        other => format!("{other}Item"),
                    };
                    call(&action, on(&part["TableName"], &Value::Null))
                })
                .collect(),
            "BatchWriteItem" | "BatchGetItem" => body["RequestItems"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(table, _)| call(operation, self.logical(table)))
                .collect(),
            _ => vec![call(operation, on(&body["TableName"], &body["IndexName"]))],
        }
    }

    fn scheduler(&self, operation: &str, body: &Value, uri: &str) -> Vec<Call> {
        let call = |action: &str, resource: String| Call {
            action: format!("scheduler:{action}"),
            resource,
        };
        if operation == "ListSchedules" {
            return vec![call(operation, "*".into())];
        }
        let group = body["GroupName"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| query_value(uri, "groupName"))
            .unwrap_or_else(|| "default".into());
        let mut calls = vec![call(operation, format!("{}/*", self.logical(&group)))];
        if let Some(role) = body["Target"]["RoleArn"].as_str() {
            calls.push(Call {
                action: "iam:PassRole".into(),
                resource: self.logical(role),
            });
        }
        calls
    }
}

fn query_value(uri: &str, name: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "krafter-iam-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let request = context.request();
        let body = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let calls = self.calls(meta.service(), meta.name(), &body, request.uri());
        let mut record = record().lock().unwrap();
        record
            .entry(self.function.to_string())
            .or_default()
            .extend(calls);
        Ok(())
    }
}

/// The clients of one function: `config`'s, with `recorder` on every call.
pub fn recording_clients(config: &aws_types::SdkConfig, recorder: &Recorder) -> AwsClients {
    recording_clients_failing(config, recorder, None)
}

/// As `recording_clients`, with `fault` making some of the calls fail.
pub fn recording_clients_failing(
    config: &aws_types::SdkConfig,
    recorder: &Recorder,
    fault: Option<Fault>,
) -> AwsClients {
    let mut dynamodb =
        aws_sdk_dynamodb::config::Builder::from(config).interceptor(recorder.clone());
    let mut sqs = aws_sdk_sqs::config::Builder::from(config).interceptor(recorder.clone());
    let mut scheduler =
        aws_sdk_scheduler::config::Builder::from(config).interceptor(recorder.clone());
    if let Some(f) = fault {
        dynamodb = dynamodb.interceptor(f.clone());
        sqs = sqs.interceptor(f.clone());
        scheduler = scheduler.interceptor(f);
    }
    AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
        sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
        scheduler: aws_sdk_scheduler::Client::from_conf(scheduler.build()),
    }
}

/// An injected fault: the next `times` calls of `operation` (`TransactWriteItems`, ...; its
/// batch form too: `SendMessage` covers `SendMessageBatch`) fail before they are sent, as a
/// throttled or unreachable service would make them fail.
#[derive(Clone, Debug)]
pub struct Fault {
    operation: &'static str,
    left: Arc<std::sync::atomic::AtomicUsize>,
}

impl Fault {
    pub fn new(operation: &'static str, times: usize) -> Self {
        Self {
            operation,
            left: Arc::new(times.into()),
        }
    }
}

impl Intercept for Fault {
    fn name(&self) -> &'static str {
        "krafter-injected-fault"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use std::sync::atomic::Ordering;
        let hit = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name().strip_suffix("Batch").unwrap_or(m.name()) == self.operation);
        let fire = hit
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if fire {
            return Err(format!("injected fault: {} failed", self.operation).into());
        }
        Ok(())
    }
}

/// A function's policy in the template: each (action, resource pattern) it allows.
pub fn policy(template: &str, function: &str) -> BTreeSet<Call> {
    let doc: serde_yaml::Value = serde_yaml::from_str(template).expect("template.yaml is YAML");
    let mut allowed = BTreeSet::new();
    let policies = &doc["Resources"][function]["Properties"]["Policies"];
    for statement in policies
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|p| p["Statement"].as_sequence())
        .flatten()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
    {
        let actions = strings(&statement["Action"]);
        let resources: Vec<String> = match &statement["Resource"] {
            serde_yaml::Value::Sequence(items) => items.iter().map(resource).collect(),
            one => vec![resource(one)],
        };
        for action in &actions {
            for r in &resources {
                allowed.insert(Call {
                    action: action.clone(),
                    resource: r.clone(),
                });
            }
        }
    }
    allowed
}

fn strings(v: &serde_yaml::Value) -> Vec<String> {
    match v {
        serde_yaml::Value::Sequence(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        other => other.as_str().map(str::to_owned).into_iter().collect(),
    }
}

/// A policy resource as a pattern on logical ids: `!GetAtt JobsTable.Arn` → `JobsTable`,
/// `!Sub ${ExecutionsTable.Arn}/index/*` → `ExecutionsTable/index/*`, a schedule ARN in
/// `${ScheduleGroup}` → `ScheduleGroup/*`, `"*"` → `*`.
fn resource(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::Tagged(t) if t.tag == "GetAtt" => {
            let target = t.value.as_str().unwrap_or_default();
            target.split('.').next().unwrap_or_default().to_owned()
        }
        serde_yaml::Value::Tagged(t) if t.tag == "Sub" => {
            let text = t.value.as_str().unwrap_or_default();
            if let Some((_, rest)) = text.split_once(":schedule/") {
                return rest.replace("${ScheduleGroup}", "ScheduleGroup");
            }
            text.replace("${", "").replace(".Arn}", "")
        }
        serde_yaml::Value::Tagged(t) if t.tag == "Ref" => {
            t.value.as_str().unwrap_or_default().to_owned()
        }
        other => other.as_str().unwrap_or_default().to_owned(),
    }
}

/// Whether `allowed` grants `call` (a pattern ending in `*` matches any rest).
fn grants(allowed: &BTreeSet<Call>, call: &Call) -> bool {
    allowed.iter().any(|a| {
        a.action == call.action
            && match a.resource.strip_suffix('*') {
                Some(prefix) => call.resource.starts_with(prefix),
                None => a.resource == call.resource,
            }
    })
}

/// What is wrong with `function`'s policy for the `calls` it made: every call it was not
/// granted, and every grant it never used. Empty: least privilege.
pub fn policy_problems(template: &str, function: &str, calls: &BTreeSet<Call>) -> Vec<String> {
    let allowed = policy(template, function);
    let mut problems: Vec<String> = calls
        .iter()
        .filter(|c| !grants(&allowed, c))
        .map(|c| {
            format!(
                "{function} calls {} on {} without a grant",
                c.action, c.resource
            )
        })
        .collect();
    let one = |a: &Call| BTreeSet::from([a.clone()]);
    problems.extend(
        allowed
            .iter()
            .filter(|a| !calls.iter().any(|c| grants(&one(a), c)))
            .map(|a| {
                format!(
                    "{function} is granted {} on {} and never uses it",
                    a.action, a.resource
                )
            }),
    );
    problems
}
