//! Helpers shared by the rdkafka consumer-group tests: the broker settings that
//! make groups fast and deterministic, and what librdkafka knows about its member.

use crate::BrokerProcess;
use anyhow::Result;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::TopicPartitionList;
use std::time::Duration;

/// How long a rebalance may take: a session timeout (10 s at most here) plus
/// the join and sync rounds of every member.
pub const REBALANCE_TIMEOUT: Duration = Duration::from_secs(45);

/// Broker overrides for fast, deterministic groups: no initial rebalance delay,
/// KIP-848 sessions of 10 s with 1 s heartbeats (the defaults are 45 s and 5 s).
pub const GROUP_OVERRIDES: [(&str, &str); 6] = [
    ("group.initial.rebalance.delay.ms", "0"),
    ("group.consumer.min.session.timeout.ms", "5000"),
    ("group.consumer.session.timeout.ms", "10000"),
    ("group.consumer.min.heartbeat.interval.ms", "500"),
    ("group.consumer.heartbeat.interval.ms", "1000"),
    ("offsets.topic.num.partitions", "10"),
];

pub fn start_broker() -> Result<BrokerProcess> {
    BrokerProcess::start(&GROUP_OVERRIDES)
}

/// The member id librdkafka currently holds (empty before the first join).
pub fn member_id<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> String {
    let native = consumer.client().native_ptr();
    // SAFETY: rd_kafka_memberid returns a string owned by the caller (or null),
    // freed with rd_kafka_mem_free on the same handle.
    unsafe {
        let ptr = rdkafka::bindings::rd_kafka_memberid(native);
        if ptr.is_null() {
            return String::new();
        }
        let id = std::ffi::CStr::from_ptr(ptr).to_string_lossy().into_owned();
        rdkafka::bindings::rd_kafka_mem_free(native, ptr.cast());
        id
    }
}

pub fn partitions_of(list: &TopicPartitionList, topic: &str) -> Vec<i32> {
    let mut partitions: Vec<i32> =
        list.elements().iter().filter(|e| e.topic() == topic).map(|e| e.partition()).collect();
    partitions.sort_unstable();
    partitions
}
