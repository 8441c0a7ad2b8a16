//! A local stand-in for Lambda's DynamoDB stream event source, for an emulator (moto): reads
//! a table's stream shard by shard, from its oldest record, and hands the records on as the
//! sync function's event; a reported failure rewinds the shard to that record, as Lambda
//! retries a batch from its first failed record. It speaks the DynamoDB Streams JSON protocol
//! to the emulator directly (the records come back in the event's own attribute format), so
//! nothing a Lambda links carries it.

use std::collections::BTreeMap;

use krafter_shared::ports::{StoreError, StoreResult};
use serde_json::{Value, json};

/// Records handed over at most at once (the sync function's batch size in the template).
const BATCH: usize = 100;

/// One table's stream, and where each of its shards has been read to.
pub struct StreamSource {
    endpoint: String,
    http: reqwest::Client,
    stream_arn: String,
    /// Per shard: where the next read starts. Each read takes a fresh iterator from there
    /// (iterators expire; and moto's stop seeing a table restored by a cancelled
    /// transaction).
    positions: BTreeMap<String, Position>,
}

#[derive(Clone, Debug)]
enum Position {
    Oldest,
    After(String),
    At(String),
}

/// A batch read from one shard: the sync function's event, and the shard it came from.
pub struct StreamBatch {
    pub shard: String,
    pub event: Value,
}

impl StreamSource {
    /// The stream of `table` on the emulator at `endpoint`, every shard from its oldest
    /// record.
    pub async fn open(endpoint: &str, table: &str) -> StoreResult<Self> {
        let mut source = Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            stream_arn: String::new(),
            positions: BTreeMap::new(),
        };
        let described = source
            .call(
                "DynamoDB_20120810.DescribeTable",
                json!({"TableName": table}),
            )
            .await?;
        source.stream_arn = described["Table"]["LatestStreamArn"]
            .as_str()
            .ok_or_else(|| StoreError::Corrupt(format!("table {table} has no stream")))?
            .to_owned();
        source.discover().await?;
        Ok(source)
    }

    /// Starts reading, from their oldest record, the shards not known yet (a stream opens
    /// new shards as it goes).
    async fn discover(&mut self) -> StoreResult<()> {
        let stream = self
            .call(
                "DynamoDBStreams_20120810.DescribeStream",
                json!({"StreamArn": self.stream_arn}),
            )
            .await?;
        let shards: Vec<String> = stream["StreamDescription"]["Shards"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["ShardId"].as_str().map(str::to_owned))
            .collect();
        for shard in shards {
            self.positions.entry(shard).or_insert(Position::Oldest);
        }
        Ok(())
    }

    /// The records written since the last read, a batch per shard that has any (a shard
    /// is read until it returns nothing more, up to `BATCH` records).
    pub async fn read(&mut self) -> StoreResult<Vec<StreamBatch>> {
        self.discover().await?;
        let mut batches = Vec::new();
        let shards: Vec<(String, Position)> = self.positions.clone().into_iter().collect();
        for (shard, position) in shards {
            let mut records: Vec<Value> = Vec::new();
            let mut iterator = Some(match &position {
                Position::Oldest => self.iterator(&shard, "TRIM_HORIZON", None).await?,
                Position::After(seq) => {
                    self.iterator(&shard, "AFTER_SEQUENCE_NUMBER", Some(seq))
                        .await?
                }
                Position::At(seq) => {
                    self.iterator(&shard, "AT_SEQUENCE_NUMBER", Some(seq))
                        .await?
                }
            });
            while records.len() < BATCH {
                let Some(it) = iterator.take() else {
                    break;
                };
                let out = self
                    .call(
                        "DynamoDBStreams_20120810.GetRecords",
                        json!({"ShardIterator": it, "Limit": BATCH - records.len()}),
                    )
                    .await?;
                iterator = out["NextShardIterator"].as_str().map(str::to_owned);
                let got = out["Records"].as_array().cloned().unwrap_or_default();
                if got.is_empty() {
                    break;
                }
                records.extend(got.into_iter().map(|mut r| {
                    r["eventSourceARN"] = json!(self.stream_arn);
                    r
                }));
            }
            if let Some(last) = records
                .last()
                .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
            {
                self.positions
                    .insert(shard.clone(), Position::After(last.to_owned()));
            }
            if !records.is_empty() {
                batches.push(StreamBatch {
                    shard,
                    event: json!({ "Records": records }),
                });
            }
        }
        Ok(batches)
    }

    /// The function reported `sequence` failed: the shard is read again from it.
    pub fn rewind(&mut self, shard: &str, sequence: &str) {
        self.positions
            .insert(shard.to_owned(), Position::At(sequence.to_owned()));
    }

    async fn iterator(
        &self,
        shard: &str,
        kind: &str,
        sequence: Option<&str>,
    ) -> StoreResult<String> {
        let mut request = json!({
            "StreamArn": self.stream_arn, "ShardId": shard, "ShardIteratorType": kind,
        });
        if let Some(sequence) = sequence {
            request["SequenceNumber"] = json!(sequence);
        }
        let out = self
            .call("DynamoDBStreams_20120810.GetShardIterator", request)
            .await?;
        out["ShardIterator"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Corrupt(format!("no iterator for shard {shard}")))
    }

    async fn call(&self, target: &str, body: Value) -> StoreResult<Value> {
        let response = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            // The emulator reads the region from the credential scope.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(StoreError::backend)?;
        let status = response.status();
        let text = response.text().await.map_err(StoreError::backend)?;
        if !status.is_success() {
            return Err(StoreError::backend(std::io::Error::other(format!(
                "{target}: {status} {text}"
            ))));
        }
        serde_json::from_str(&text).map_err(StoreError::backend)
    }
}
