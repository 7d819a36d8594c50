//! A test driver that plays the broker: it sends requests with a fake clock, appends
//! the records (encoding and decoding each one), replays them, collects the answers
//! (checking they encode at the request's version), keeps the marker requests and
//! acknowledges them on demand through `markers_written`.

use crate::config::TxnConfig;
use crate::record::TxnRecord;
use crate::shard::{Effects, MarkerRequest, ReplyId, RequestContext, TxnCoordinatorShard};
use gregor_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use gregor_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use gregor_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use gregor_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResponse;
use gregor_protocol::messages::end_txn_request::EndTxnRequest;
use gregor_protocol::messages::end_txn_response::EndTxnResponse;
use gregor_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use gregor_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use gregor_protocol::{ErrorCode, Message, ResponseBody};
use std::collections::HashMap;

pub(crate) struct Harness {
    pub shard: TxnCoordinatorShard,
    pub now: i64,
    /// Every record appended, in order (the partition's log).
    pub log: Vec<TxnRecord>,
    /// Markers handed out and not yet acknowledged.
    pub markers: Vec<MarkerRequest>,
    /// Every marker request ever handed out.
    pub all_markers: Vec<MarkerRequest>,
    replies: HashMap<ReplyId, ResponseBody>,
    next_reply: ReplyId,
    next_producer_id: i64,
    pub config: TxnConfig,
}

pub(crate) fn topics(list: &[(&str, &[i32])]) -> Vec<AddPartitionsToTxnTopic> {
    list.iter()
        .map(|(name, partitions)| AddPartitionsToTxnTopic {
            name: name.to_string(),
            partitions: partitions.to_vec(),
            ..Default::default()
        })
        .collect()
}

pub(crate) fn code(error: ErrorCode) -> i16 {
    error.code()
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(TxnConfig::default())
    }

    pub fn with_config(config: TxnConfig) -> Self {
        let mut shard = TxnCoordinatorShard::new(0, 5, config.clone());
        let effects = shard.finish_load(0);
        assert!(effects.is_empty());
        Harness {
            shard,
            now: 0,
            log: Vec::new(),
            markers: Vec::new(),
            all_markers: Vec::new(),
            replies: HashMap::new(),
            next_reply: 1,
            next_producer_id: 1000,
            config,
        }
    }

    pub fn ctx(&mut self, api_version: i16) -> RequestContext {
        let reply = self.next_reply;
        self.next_reply += 1;
        RequestContext { api_version, now_ms: self.now, reply }
    }

    pub fn fresh_producer_id(&mut self) -> i64 {
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        id
    }

    /// Applies effects as the broker does: append (encode → decode), replay, then
    /// release the answers and hand out the markers.
    pub fn apply(&mut self, effects: Effects, versions: &HashMap<ReplyId, i16>) {
        let Effects { records, replies, markers } = effects;
        for record in records {
            let (key, value) = record.encode().expect("record encodes");
            let decoded = TxnRecord::decode(key, value).expect("record decodes");
            self.log.push(decoded.clone());
            self.shard.replay(decoded);
        }
        for (reply, response) in replies {
            if let Some(version) = versions.get(&reply) {
                assert_response_encodes(&response, *version);
            }
            assert!(self.replies.insert(reply, response).is_none(), "one answer per request");
        }
        self.all_markers.extend(markers.iter().cloned());
        self.markers.extend(markers);
    }

    fn run(&mut self, ctx: &RequestContext, effects: Effects) -> ResponseBody {
        let versions = HashMap::from([(ctx.reply, ctx.api_version)]);
        self.apply(effects, &versions);
        self.replies.remove(&ctx.reply).expect("answered")
    }

    pub fn advance(&mut self, ms: i64) {
        self.now += ms;
        while let Some(deadline) = self.shard.next_deadline_ms() {
            if deadline > self.now {
                break;
            }
            let effects = self.shard.poll_timers(deadline.max(0));
            self.apply(effects, &HashMap::new());
        }
    }

    /// Acknowledges every outstanding marker request as written.
    pub fn ack_markers(&mut self) {
        let markers = std::mem::take(&mut self.markers);
        for marker in markers {
            let ctx = self.ctx(0);
            let effects = self.shard.markers_written(
                &ctx,
                &marker.transactional_id,
                marker.producer_id,
                marker.producer_epoch,
                Ok(()),
            );
            self.apply(effects, &HashMap::new());
        }
    }

    pub fn init_with(&mut self, version: i16, request: InitProducerIdRequest) -> InitProducerIdResponse {
        let ctx = self.ctx(version);
        let fresh = self.fresh_producer_id();
        let effects = self.shard.init_producer_id(&ctx, request, fresh);
        match self.run(&ctx, effects) {
            ResponseBody::InitProducerId(response) => response,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn init(&mut self, id: &str, timeout_ms: i32) -> InitProducerIdResponse {
        self.init_with(
            4,
            InitProducerIdRequest {
                transactional_id: Some(id.to_string()),
                transaction_timeout_ms: timeout_ms,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            },
        )
    }

    pub fn add_partitions_with(
        &mut self,
        version: i16,
        request: AddPartitionsToTxnRequest,
    ) -> AddPartitionsToTxnResponse {
        let ctx = self.ctx(version);
        let exists = |topic: &str, partition: i32| topic != "missing" && (0..8).contains(&partition);
        let effects = self.shard.add_partitions_to_txn(&ctx, request, &exists);
        match self.run(&ctx, effects) {
            ResponseBody::AddPartitionsToTxn(response) => response,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// AddPartitionsToTxn v`version` (0-3) for one transaction; the error of every
    /// partition, which must agree.
    pub fn add_partitions(
        &mut self,
        version: i16,
        id: &str,
        producer_id: i64,
        epoch: i16,
        list: &[(&str, &[i32])],
    ) -> ErrorCode {
        let response = self.add_partitions_with(
            version,
            AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: id.to_string(),
                v3_and_below_producer_id: producer_id,
                v3_and_below_producer_epoch: epoch,
                v3_and_below_topics: topics(list),
                ..Default::default()
            },
        );
        let codes: Vec<i16> = response
            .results_by_topic_v3_and_below
            .iter()
            .flat_map(|topic| topic.results_by_partition.iter().map(|partition| partition.partition_error_code))
            .collect();
        assert!(!codes.is_empty());
        assert!(codes.iter().all(|c| *c == codes[0]), "{codes:?}");
        ErrorCode::from_code(codes[0]).expect("known code")
    }

    pub fn transaction(
        id: &str,
        producer_id: i64,
        epoch: i16,
        verify_only: bool,
        list: &[(&str, &[i32])],
    ) -> AddPartitionsToTxnTransaction {
        AddPartitionsToTxnTransaction {
            transactional_id: id.to_string(),
            producer_id,
            producer_epoch: epoch,
            verify_only,
            topics: topics(list),
            ..Default::default()
        }
    }

    pub fn add_offsets(&mut self, version: i16, id: &str, producer_id: i64, epoch: i16, group: &str) -> ErrorCode {
        let ctx = self.ctx(version);
        let request = AddOffsetsToTxnRequest {
            transactional_id: id.to_string(),
            producer_id,
            producer_epoch: epoch,
            group_id: group.to_string(),
            ..Default::default()
        };
        let effects = self.shard.add_offsets_to_txn(&ctx, request, ("__consumer_offsets".to_string(), 7));
        match self.run(&ctx, effects) {
            ResponseBody::AddOffsetsToTxn(AddOffsetsToTxnResponse { error_code, .. }) => {
                ErrorCode::from_code(error_code).expect("known code")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn end_txn_with(
        &mut self,
        version: i16,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        transaction_version: i16,
    ) -> EndTxnResponse {
        let ctx = self.ctx(version);
        let request = EndTxnRequest {
            transactional_id: id.to_string(),
            producer_id,
            producer_epoch: epoch,
            committed: commit,
            ..Default::default()
        };
        let fresh = self.fresh_producer_id();
        let effects = self.shard.end_txn(&ctx, request, transaction_version, fresh);
        match self.run(&ctx, effects) {
            ResponseBody::EndTxn(response) => response,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn end_txn(&mut self, id: &str, producer_id: i64, epoch: i16, commit: bool) -> ErrorCode {
        let response = self.end_txn_with(3, id, producer_id, epoch, commit, 0);
        ErrorCode::from_code(response.error_code).expect("known code")
    }

    /// A fresh shard that loads this one's log, as after a failover.
    pub fn reload(&self) -> (TxnCoordinatorShard, Effects) {
        let mut shard = TxnCoordinatorShard::new(0, 6, self.config.clone());
        for record in &self.log {
            let (key, value) = record.encode().expect("encodes");
            shard.replay(TxnRecord::decode(key, value).expect("decodes"));
        }
        let effects = shard.finish_load(self.now);
        (shard, effects)
    }
}

fn assert_response_encodes(response: &ResponseBody, version: i16) {
    let result = match response {
        ResponseBody::InitProducerId(r) => r.encode_to_bytes(version).map(|_| ()),
        ResponseBody::AddPartitionsToTxn(r) => r.encode_to_bytes(version).map(|_| ()),
        ResponseBody::AddOffsetsToTxn(r) => r.encode_to_bytes(version).map(|_| ()),
        ResponseBody::EndTxn(r) => r.encode_to_bytes(version).map(|_| ()),
        _ => Ok(()),
    };
    result.unwrap_or_else(|error| panic!("response does not encode at v{version}: {error} ({response:?})"));
}
