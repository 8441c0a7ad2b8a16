//! Creates the hosted backend's AWS resources as `template.yaml` declares them (tables with
//! their keys, index and TTL; the run queue with its dead-letter queue; the schedule group),
//! for a local AWS emulator: the hosted-path tests and `krafter aws init` use it. In AWS the
//! template creates them; `template_and_provisioning_declare_the_same_tables` keeps the two
//! in step.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use krafter_shared::adapters::dynamodb::Tables;
use krafter_shared::hosted::{AwsClients, HostedResources};
use krafter_shared::ports::{StoreError, StoreResult};

/// One table as declared: key, optional local index on `pk` + another attribute, optional
/// global keys-only index on one attribute, TTL, stream (new and old images).
pub struct TableSpec {
    pub hash: &'static str,
    pub range: Option<&'static str>,
    pub global_index: Option<(&'static str, &'static str)>,
    pub ttl: Option<&'static str>,
    pub stream: bool,
}

pub const JOBS: TableSpec = TableSpec {
    hash: "team",
    range: Some("id"),
    global_index: None,
    ttl: None,
    stream: true,
};
pub const EXECUTIONS: TableSpec = TableSpec {
    hash: "pk",
    range: Some("sk"),
    global_index: None,
    ttl: Some("expires_at"),
    stream: false,
};
pub const KEYS: TableSpec = TableSpec {
    hash: "hash",
    range: None,
    global_index: None,
    ttl: None,
    stream: false,
};
pub const TEAMS: TableSpec = TableSpec {
    hash: "team",
    range: None,
    global_index: None,
    ttl: None,
    stream: false,
};
pub const RATE_LIMITS: TableSpec = TableSpec {
    hash: "bucket",
    range: None,
    global_index: None,
    ttl: Some("expires_at"),
    stream: false,
};

pub const IDEMPOTENCY: TableSpec = TableSpec {
    hash: "pk",
    range: None,
    global_index: None,
    ttl: Some("expires_at"),
    stream: false,
};

pub const AUDIT: TableSpec = TableSpec {
    hash: "team",
    range: Some("id"),
    global_index: None,
    ttl: Some("expires_at"),
    stream: false,
};

/// The run queue's visibility timeout: 6 × the executor function's timeout (330 s).
pub const RUN_QUEUE_VISIBILITY_SECS: u32 = 1980;
/// Deliveries of a run message before it goes to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;

fn key(name: &str, kind: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(StoreError::backend)
}

fn string_attribute(name: &str) -> StoreResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(StoreError::backend)
}

async fn create_table(
    c: &aws_sdk_dynamodb::Client,
    name: &str,
    spec: &TableSpec,
) -> StoreResult<()> {
    let mut attributes = vec![string_attribute(spec.hash)?];
    let mut req = c
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.hash, KeyType::Hash)?);
    if let Some(range) = spec.range {
        attributes.push(string_attribute(range)?);
        req = req.key_schema(key(range, KeyType::Range)?);
    }
    if let Some((index, attribute)) = spec.global_index {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(key(attribute, KeyType::Hash)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .map_err(StoreError::backend)?,
        );
    }
    if spec.stream {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .map_err(StoreError::backend)?,
        );
    }
    req.set_attribute_definitions(Some(attributes))
        .send()
        .await
        .map_err(StoreError::backend)?;
    if let Some(ttl) = spec.ttl {
        c.update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl)
                    .enabled(true)
                    .build()
                    .map_err(StoreError::backend)?,
            )
            .send()
            .await
            .map_err(StoreError::backend)?;
    }
    Ok(())
}

async fn create_queue(
    c: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> StoreResult<(String, String)> {
    let mut req = c.create_queue().queue_name(name);
    for (k, v) in attributes {
        req = req.attributes(k.clone(), v.clone());
    }
    let url = req
        .send()
        .await
        .map_err(StoreError::backend)?
        .queue_url
        .ok_or_else(|| StoreError::Corrupt("CreateQueue returned no URL".into()))?;
    let arn = c
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(StoreError::backend)?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| StoreError::Corrupt("the queue has no ARN".into()))?;
    Ok((url, arn))
}

/// Creates every resource, named `<prefix>-jobs`, `<prefix>-runs`, ... Fails if one exists.
pub async fn provision(clients: &AwsClients, prefix: &str) -> StoreResult<HostedResources> {
    let tables = Tables {
        jobs: format!("{prefix}-jobs"),
        executions: format!("{prefix}-executions"),
        keys: format!("{prefix}-keys"),
        teams: format!("{prefix}-teams"),
        rate_limits: format!("{prefix}-rate-limits"),
        idempotency: format!("{prefix}-idempotency"),
        audit: format!("{prefix}-audit"),
    };
    for (name, spec) in [
        (&tables.jobs, &JOBS),
        (&tables.executions, &EXECUTIONS),
        (&tables.keys, &KEYS),
        (&tables.teams, &TEAMS),
        (&tables.rate_limits, &RATE_LIMITS),
        (&tables.idempotency, &IDEMPOTENCY),
        (&tables.audit, &AUDIT),
    ] {
        create_table(&clients.dynamodb, name, spec).await?;
    }
    let (dead_letter_queue_url, dead_letter_queue_arn) =
        create_queue(&clients.sqs, &format!("{prefix}-dead-letters"), &[]).await?;
    let redrive = format!(
        r#"{{"deadLetterTargetArn":"{dead_letter_queue_arn}","maxReceiveCount":"{MAX_RECEIVE_COUNT}"}}"#
    );
    let (run_queue_url, run_queue_arn) = create_queue(
        &clients.sqs,
        &format!("{prefix}-runs"),
        &[
            (
                QueueAttributeName::VisibilityTimeout,
                RUN_QUEUE_VISIBILITY_SECS.to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive),
        ],
    )
    .await?;
    let schedule_group = format!("{prefix}-schedules");
    clients
        .scheduler
        .create_schedule_group()
        .name(&schedule_group)
        .send()
        .await
        .map_err(StoreError::backend)?;
    Ok(HostedResources {
        tables,
        run_queue_url,
        run_queue_arn,
        dead_letter_queue_url,
        dead_letter_queue_arn,
        schedule_group,
        // The emulator does not check roles; in AWS the template creates this one.
        scheduler_role_arn: "arn:aws:iam::123456789012:role/krafter-scheduler".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A top-level resource's block of `template.yaml`, one normalised line per YAML line
    /// (no indentation, no list dashes, no comments), joined by `|`.
    fn resource(template: &str, name: &str) -> String {
        let start = template
            .find(&format!("\n  {name}:\n"))
            .unwrap_or_else(|| panic!("template.yaml declares {name}"));
        template[start + 1..]
            .lines()
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with("   ") || l.trim_start().starts_with('#'))
            .map(|l| l.trim().trim_start_matches("- ").to_owned())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("|")
    }

    fn key_schema(hash: &str, range: Option<&str>) -> String {
        let mut s = format!("KeySchema:|AttributeName: {hash}|KeyType: HASH");
        if let Some(range) = range {
            s.push_str(&format!("|AttributeName: {range}|KeyType: RANGE"));
        }
        s
    }

    #[test]
    fn template_and_provisioning_declare_the_same_tables_and_queue() {
        let template = include_str!("../../template.yaml");
        for (name, spec) in [
            ("JobsTable", &JOBS),
            ("ExecutionsTable", &EXECUTIONS),
            ("KeysTable", &KEYS),
            ("TeamsTable", &TEAMS),
            ("RateLimitsTable", &RATE_LIMITS),
            ("IdempotencyTable", &IDEMPOTENCY),
            ("AuditTable", &AUDIT),
        ] {
            let block = resource(template, name);
            let want = key_schema(spec.hash, spec.range);
            assert!(block.contains(&want), "{name}: want {want} in {block}");
            let indexes = block.matches("IndexName:").count();
            let declared = [spec.global_index.map(|(index, attribute)| {
                format!("GlobalSecondaryIndexes:|IndexName: {index}|{}|Projection:|ProjectionType: KEYS_ONLY",
                    key_schema(attribute, None))
            })];
            for want in declared.iter().flatten() {
                assert!(block.contains(want), "{name}: want {want} in {block}");
            }
            assert_eq!(
                indexes,
                declared.iter().flatten().count(),
                "{name}: its indexes"
            );
            let stream = "StreamSpecification:|StreamViewType: NEW_AND_OLD_IMAGES";
            assert_eq!(block.contains(stream), spec.stream, "{name}: its stream");
            match spec.ttl {
                Some(ttl) => {
                    let want =
                        format!("TimeToLiveSpecification:|AttributeName: {ttl}|Enabled: true");
                    assert!(block.contains(&want), "{name}: want {want} in {block}");
                }
                None => assert!(!block.contains("TimeToLive"), "{name} has no TTL"),
            }
            assert!(block.contains("BillingMode: PAY_PER_REQUEST"), "{name}");
        }
        let queue = resource(template, "RunQueue");
        assert!(
            queue.contains(&format!("VisibilityTimeout: {RUN_QUEUE_VISIBILITY_SECS}")),
            "{queue}"
        );
        assert!(
            queue.contains(&format!("maxReceiveCount: {MAX_RECEIVE_COUNT}")),
            "{queue}"
        );
    }
}
