//! `gregor perf sink`: a fake broker that accepts everything a producer sends
//! and keeps nothing, so the load generator can be measured without a broker.
//!
//! It answers ApiVersions, Metadata (itself as node 1 and the leader of every
//! partition), CreateTopics (it remembers partition counts) and Produce (success,
//! offsets counting up per partition, read from batch headers alone). Any other
//! request closes the connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gregor_protocol::frame::{decode_request, encode_response_frame, peek_request_prefix};
use gregor_protocol::messages::api_versions_response::ApiVersion;
use gregor_protocol::messages::create_topics_response::CreatableTopicResult;
use gregor_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use gregor_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use gregor_protocol::messages::{
    ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse,
};
use gregor_protocol::records::{RecordBatchHeader, BATCH_HEADER_BYTES};
use gregor_protocol::{ApiKey, ErrorCode, RequestBody, ResponseBody, Uuid};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use crate::cli::SinkArgs;
use crate::conn::FrameReader;
use crate::error::PerfError;
use crate::stats::Meter;

const NODE_ID: i32 = 1;
const CLUSTER_ID: &str = "gregor-perf-sink";
/// The largest request the sink reads, as Kafka's socket.request.max.bytes.
const REQUEST_BYTES_MAX: usize = 100 * 1024 * 1024;
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
const PROGRESS_INTERVAL_MS: u64 = 1000;

/// Every API the sink serves, with its versions. Produce stops at v12 and
/// Metadata at v12 so topics are named, not identified, on the produce path.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] =
    &[(ApiKey::Produce, 3, 12), (ApiKey::Metadata, 0, 12), (ApiKey::ApiVersions, 0, 4), (ApiKey::CreateTopics, 2, 7)];

#[derive(Debug)]
struct SinkTopic {
    id: Uuid,
    next_offsets: Vec<i64>,
}

/// The topics the sink pretends to hold.
#[derive(Debug)]
pub struct SinkState {
    host: String,
    port: i32,
    topics: HashMap<String, SinkTopic>,
    next_topic_id: u128,
}

/// Records in a partition's record set, from batch headers; `None` if it is not v2 batches.
fn count_records(records: &[u8]) -> Option<u64> {
    let mut count = 0u64;
    let mut at = 0usize;
    while let Some(rest) = records.get(at..).filter(|rest| !rest.is_empty()) {
        if rest.len() < BATCH_HEADER_BYTES {
            return None;
        }
        let header = RecordBatchHeader::parse(rest).ok()?;
        count += u64::try_from(header.records_count).ok()?;
        at = at.checked_add(header.size_bytes())?;
        if at > records.len() {
            return None;
        }
    }
    Some(count)
}

impl SinkState {
    pub fn new(address: SocketAddr) -> Self {
        Self {
            host: address.ip().to_string(),
            port: i32::from(address.port()),
            topics: HashMap::new(),
            next_topic_id: 1,
        }
    }

    fn create(&mut self, name: &str, partitions: i32) -> &SinkTopic {
        let id = Uuid::from_u128(self.next_topic_id);
        self.next_topic_id += 1;
        let count = usize::try_from(partitions.max(1)).unwrap_or(1);
        self.topics.entry(name.to_owned()).or_insert(SinkTopic { id, next_offsets: vec![0; count] })
    }

    /// The answer to one request; `None` for acks=0 produce, which gets none.
    /// Also returns the records and bytes a Produce request carried.
    pub fn answer(&mut self, body: RequestBody, version: i16) -> Result<(Option<ResponseBody>, u64, u64), ApiKey> {
        Ok(match body {
            RequestBody::ApiVersions(_) => (Some(ResponseBody::ApiVersions(api_versions(ErrorCode::None))), 0, 0),
            RequestBody::Metadata(request) => (Some(ResponseBody::Metadata(self.metadata(request, version))), 0, 0),
            RequestBody::CreateTopics(request) => (Some(ResponseBody::CreateTopics(self.create_topics(request))), 0, 0),
            RequestBody::Produce(request) => {
                let acks = request.acks;
                let (answer, records, bytes) = self.produce(request);
                ((acks != 0).then_some(ResponseBody::Produce(answer)), records, bytes)
            }
            other => return Err(other.api_key()),
        })
    }

    fn metadata(&mut self, request: MetadataRequest, version: i16) -> MetadataResponse {
        // v0 asks for every topic with an empty list, later versions with null.
        let names: Vec<String> = match request.topics {
            Some(topics) if !(version == 0 && topics.is_empty()) => {
                topics.into_iter().filter_map(|topic| topic.name).collect()
            }
            _ => self.topics.keys().cloned().collect(),
        };
        let mut topics = Vec::new();
        for name in names {
            if !self.topics.contains_key(&name) && !request.allow_auto_topic_creation {
                topics.push(MetadataResponseTopic {
                    error_code: ErrorCode::UnknownTopicOrPartition.code(),
                    name: Some(name),
                    ..Default::default()
                });
                continue;
            }
            let topic = match self.topics.get(&name) {
                Some(topic) => topic,
                None => self.create(&name, 1),
            };
            let partitions = (0..topic.next_offsets.len())
                .map(|index| MetadataResponsePartition {
                    partition_index: i32::try_from(index).unwrap_or(i32::MAX),
                    leader_id: NODE_ID,
                    leader_epoch: 0,
                    replica_nodes: vec![NODE_ID],
                    isr_nodes: vec![NODE_ID],
                    ..Default::default()
                })
                .collect();
            topics.push(MetadataResponseTopic {
                name: Some(name),
                topic_id: topic.id,
                partitions,
                ..Default::default()
            });
        }
        MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: NODE_ID,
                host: self.host.clone(),
                port: self.port,
                ..Default::default()
            }],
            cluster_id: Some(CLUSTER_ID.to_owned()),
            controller_id: NODE_ID,
            topics,
            ..Default::default()
        }
    }

    fn create_topics(&mut self, request: CreateTopicsRequest) -> CreateTopicsResponse {
        let mut results = Vec::new();
        for topic in request.topics {
            let mut result =
                CreatableTopicResult { name: topic.name.clone(), error_message: None, ..Default::default() };
            if self.topics.contains_key(&topic.name) {
                result.error_code = ErrorCode::TopicAlreadyExists.code();
            } else if !request.validate_only {
                let created = self.create(&topic.name, topic.num_partitions);
                result.topic_id = created.id;
                result.num_partitions = i32::try_from(created.next_offsets.len()).unwrap_or(i32::MAX);
                result.replication_factor = 1;
            }
            results.push(result);
        }
        CreateTopicsResponse { topics: results, ..Default::default() }
    }

    fn produce(&mut self, request: ProduceRequest) -> (ProduceResponse, u64, u64) {
        let (mut total_records, mut total_bytes) = (0u64, 0u64);
        let mut responses = Vec::new();
        for topic_data in request.topic_data {
            let topic = self.topics.get_mut(&topic_data.name);
            let mut partition_responses = Vec::new();
            let mut topic = topic;
            for partition in topic_data.partition_data {
                let records = partition.records.as_deref().unwrap_or_default();
                let slot = topic.as_mut().and_then(|topic| {
                    usize::try_from(partition.index).ok().and_then(|index| topic.next_offsets.get_mut(index))
                });
                let mut response = PartitionProduceResponse { index: partition.index, ..Default::default() };
                match (slot, count_records(records)) {
                    (None, _) => response.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                    (Some(_), None) => response.error_code = ErrorCode::CorruptMessage.code(),
                    (Some(next_offset), Some(count)) => {
                        response.base_offset = *next_offset;
                        *next_offset += i64::try_from(count).unwrap_or(i64::MAX);
                        total_records += count;
                        total_bytes += records.len() as u64;
                    }
                }
                partition_responses.push(response);
            }
            responses.push(TopicProduceResponse { name: topic_data.name, partition_responses, ..Default::default() });
        }
        (ProduceResponse { responses, ..Default::default() }, total_records, total_bytes)
    }
}

fn api_versions(error: ErrorCode) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: error.code(),
        api_keys: SUPPORTED_APIS
            .iter()
            .map(|&(api, min_version, max_version)| ApiVersion {
                api_key: api.key(),
                min_version,
                max_version,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn supports(api_key: i16, version: i16) -> bool {
    SUPPORTED_APIS.iter().any(|&(api, min, max)| api.key() == api_key && (min..=max).contains(&version))
}

pub async fn run(args: SinkArgs) -> Result<(), PerfError> {
    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|error| PerfError::io(format!("listening on {}", args.listen), error))?;
    let address = listener.local_addr().map_err(|error| PerfError::io("the listener's address", error))?;
    // The one stdout line, for scripts that started the sink on port 0.
    println!("gregor perf sink listening on {address}");
    let state = Arc::new(Mutex::new(SinkState::new(address)));
    let meter = Meter::new();
    let progress = tokio::spawn(report(Arc::clone(&meter)));
    let accepting = async {
        loop {
            let (stream, peer) =
                listener.accept().await.map_err(|error| PerfError::io("accepting a connection", error))?;
            let state = Arc::clone(&state);
            let meter = Arc::clone(&meter);
            tokio::spawn(async move {
                if let Err(error) = serve(stream, peer, state, meter).await {
                    eprintln!("sink: connection from {peer}: {error}");
                }
            });
        }
    };
    let outcome = tokio::select! {
        result = accepting => result,
        result = shutdown_signal() => result,
    };
    progress.abort();
    let snapshot = meter.snapshot();
    eprintln!(
        "sink: received {} records, {} bytes in {:.1} s",
        snapshot.records,
        snapshot.bytes,
        snapshot.elapsed.as_secs_f64()
    );
    outcome
}

async fn shutdown_signal() -> Result<(), PerfError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).map_err(|error| PerfError::io("SIGTERM handler", error))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|error| PerfError::io("SIGINT handler", error))?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

/// A progress line each second in which records arrived.
async fn report(meter: Arc<Meter>) {
    let mut previous = meter.snapshot();
    let mut ticks = tokio::time::interval(Duration::from_millis(PROGRESS_INTERVAL_MS));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = meter.snapshot();
        if now.records != previous.records {
            let seconds = now.elapsed.saturating_sub(previous.elapsed).as_secs_f64().max(1e-9);
            let records = now.records - previous.records;
            let bytes = now.bytes.saturating_sub(previous.bytes);
            eprintln!("sink: {:.0} records/s, {:.2} MB/s", records as f64 / seconds, bytes as f64 / 1e6 / seconds);
        }
        previous = now;
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<Mutex<SinkState>>,
    meter: Arc<Meter>,
) -> Result<(), PerfError> {
    stream.set_nodelay(true).map_err(|error| PerfError::io("TCP_NODELAY", error))?;
    let (read, write) = stream.into_split();
    let mut reader = FrameReader::new(read, REQUEST_BYTES_MAX, peer.to_string());
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write);
    while let Some(frame) = reader.next_frame().await? {
        let prefix =
            peek_request_prefix(&frame).map_err(|error| PerfError::protocol(&peer.to_string(), error.to_string()))?;
        let response = if prefix.api_key == ApiKey::ApiVersions.key() && !supports(prefix.api_key, prefix.api_version) {
            // Kafka answers an ApiVersions it does not know in v0, so any client can read it.
            Some((0, ResponseBody::ApiVersions(api_versions(ErrorCode::UnsupportedVersion))))
        } else if !supports(prefix.api_key, prefix.api_version) {
            return Err(PerfError::protocol(
                &peer.to_string(),
                format!("API key {} v{} is not served by the sink", prefix.api_key, prefix.api_version),
            ));
        } else {
            let request =
                decode_request(frame).map_err(|error| PerfError::protocol(&peer.to_string(), error.to_string()))?;
            let answered =
                state.lock().unwrap_or_else(PoisonError::into_inner).answer(request.body, prefix.api_version);
            let (response, records, bytes) = answered
                .map_err(|api| PerfError::protocol(&peer.to_string(), format!("{api:?} is not served by the sink")))?;
            meter.add(records, bytes);
            response.map(|response| (prefix.api_version, response))
        };
        if let Some((version, body)) = response {
            let frame = encode_response_frame(prefix.correlation_id, version, &body)
                .map_err(|source| PerfError::Encode { api: body.api_key(), version, source })?;
            for chunk in frame.into_chunks() {
                writer.write_all(&chunk).await.map_err(|error| PerfError::io(format!("answering {peer}"), error))?;
            }
        }
        // Pipelined requests get their answers in one write once none is left to read.
        if !reader.has_buffered_frame() {
            writer.flush().await.map_err(|error| PerfError::io(format!("answering {peer}"), error))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::messages::create_topics_request::CreatableTopic;
    use gregor_protocol::messages::metadata_request::MetadataRequestTopic;
    use gregor_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use gregor_protocol::records::RecordBatchBuilder;

    fn state() -> SinkState {
        SinkState::new("127.0.0.1:9099".parse().unwrap())
    }

    fn metadata(state: &mut SinkState, topic: &str, auto_create: bool) -> MetadataResponse {
        let request = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic { name: Some(topic.into()), ..Default::default() }]),
            allow_auto_topic_creation: auto_create,
            ..Default::default()
        };
        state.metadata(request, 12)
    }

    fn produce(topic: &str, partition: i32, batches: &[usize], acks: i16) -> ProduceRequest {
        let mut records = Vec::new();
        for &count in batches {
            let mut builder = RecordBatchBuilder::new(0);
            for _ in 0..count {
                builder.append(1, None, Some(vec![1u8; 10].into()), Vec::new()).unwrap();
            }
            records.extend(builder.build().unwrap());
        }
        ProduceRequest {
            acks,
            timeout_ms: 1000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(records.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn created_topics_keep_their_partition_count_and_unknown_ones_are_refused_or_made() {
        let mut state = state();
        assert_eq!(metadata(&mut state, "t", false).topics[0].error_code, ErrorCode::UnknownTopicOrPartition.code());
        let created = state.create_topics(CreateTopicsRequest {
            topics: vec![CreatableTopic { name: "t".into(), num_partitions: 3, ..Default::default() }],
            ..Default::default()
        });
        assert_eq!(created.topics[0].error_code, 0);
        let answer = metadata(&mut state, "t", false);
        assert_eq!(answer.topics[0].partitions.len(), 3);
        assert!(answer.topics[0].partitions.iter().all(|partition| partition.leader_id == NODE_ID));
        assert_eq!((answer.brokers[0].host.as_str(), answer.brokers[0].port), ("127.0.0.1", 9099));
        assert_eq!(metadata(&mut state, "auto", true).topics[0].partitions.len(), 1);
    }

    #[test]
    fn produce_counts_offsets_up_per_partition() {
        let mut state = state();
        state.create("t", 2);
        let (first, records, _) = state.produce(produce("t", 1, &[3, 2], 1));
        assert_eq!(records, 5);
        assert_eq!(first.responses[0].partition_responses[0].base_offset, 0);
        let (second, _, _) = state.produce(produce("t", 1, &[4], 1));
        assert_eq!(second.responses[0].partition_responses[0].base_offset, 5);
        let (missing, records, _) = state.produce(produce("t", 2, &[1], 1));
        assert_eq!(records, 0);
        assert_eq!(missing.responses[0].partition_responses[0].error_code, ErrorCode::UnknownTopicOrPartition.code());
        let (silent, _, _) = state.answer(produce("t", 0, &[1], 0).into(), 9).unwrap();
        assert!(silent.is_none());
    }

    #[test]
    fn record_sets_that_are_not_whole_batches_are_refused() {
        assert_eq!(count_records(&[]), Some(0));
        assert_eq!(count_records(&[0u8; 30]), None);
    }
}
