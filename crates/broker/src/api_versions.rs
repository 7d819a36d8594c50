//! The API versions this broker advertises, in one table. ApiVersions answers from
//! it, the connection refuses anything outside it, and a test checks that every
//! entry lies within the protocol crate's range for that API.
//!
//! The ranges are Kafka 4.2's, for the APIs implemented so far: clients such as
//! kafka-python infer the broker's release from the maxima, so a mix that matches no
//! release would make them fall back to old behaviour.

use gregor_protocol::ApiKey;

/// One advertised API: its key and the inclusive version range we serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported {
    pub api_key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

const fn supported(api_key: ApiKey, min_version: i16, max_version: i16) -> Supported {
    Supported { api_key, min_version, max_version }
}

/// Every API this broker serves. Produce starts at 0 as Kafka 4.x advertises it
/// (older librdkafka builds probe features on the Produce range, KAFKA-18659); we
/// also serve v0-v2 by converting their legacy message sets.
pub const SUPPORTED_APIS: &[Supported] = &[
    supported(ApiKey::Produce, 0, 13),
    supported(ApiKey::Fetch, 4, 18),
    supported(ApiKey::ListOffsets, 1, 11),
    supported(ApiKey::Metadata, 0, 13),
    supported(ApiKey::ApiVersions, 0, 4),
    supported(ApiKey::CreateTopics, 2, 7),
    supported(ApiKey::DeleteTopics, 1, 6),
    supported(ApiKey::DeleteRecords, 0, 2),
    supported(ApiKey::InitProducerId, 0, 5),
    supported(ApiKey::OffsetForLeaderEpoch, 2, 4),
    supported(ApiKey::DescribeConfigs, 1, 4),
    supported(ApiKey::AlterConfigs, 0, 2),
    supported(ApiKey::DescribeLogDirs, 1, 5),
    supported(ApiKey::CreatePartitions, 0, 3),
    supported(ApiKey::ElectLeaders, 0, 2),
    // Reassignments (KIP-455) without v1's AllowReplicationFactorChange (KIP-860).
    supported(ApiKey::AlterPartitionReassignments, 0, 0),
    supported(ApiKey::ListPartitionReassignments, 0, 0),
    supported(ApiKey::UnregisterBroker, 0, 0),
    supported(ApiKey::IncrementalAlterConfigs, 0, 1),
    supported(ApiKey::DescribeCluster, 0, 2),
    supported(ApiKey::DescribeProducers, 0, 0),
    supported(ApiKey::DescribeTopicPartitions, 0, 0),
    // ACLs (KIP-140; prefixed patterns from v1, KIP-290; Kafka 4 removed v0).
    supported(ApiKey::DescribeAcls, 1, 3),
    supported(ApiKey::CreateAcls, 1, 3),
    supported(ApiKey::DeleteAcls, 1, 3),
    // SCRAM credentials (KIP-554).
    supported(ApiKey::DescribeUserScramCredentials, 0, 0),
    supported(ApiKey::AlterUserScramCredentials, 0, 0),
    // Groups: every version the protocol has, oldest clients included.
    supported(ApiKey::FindCoordinator, 0, 6),
    supported(ApiKey::JoinGroup, 0, 9),
    supported(ApiKey::SyncGroup, 0, 5),
    supported(ApiKey::Heartbeat, 0, 4),
    supported(ApiKey::LeaveGroup, 0, 5),
    supported(ApiKey::OffsetCommit, 0, 10),
    supported(ApiKey::OffsetFetch, 0, 10),
    supported(ApiKey::DescribeGroups, 0, 6),
    supported(ApiKey::ListGroups, 0, 5),
    supported(ApiKey::DeleteGroups, 0, 2),
    supported(ApiKey::OffsetDelete, 0, 0),
    supported(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    supported(ApiKey::ConsumerGroupDescribe, 0, 1),
    // Transactions (KIP-98, KIP-447; KIP-890 part 1). WriteTxnMarkers starts at 1
    // as in Kafka 4.x, which removed v0.
    supported(ApiKey::AddPartitionsToTxn, 0, 5),
    supported(ApiKey::AddOffsetsToTxn, 0, 4),
    supported(ApiKey::EndTxn, 0, 5),
    supported(ApiKey::TxnOffsetCommit, 0, 5),
    supported(ApiKey::WriteTxnMarkers, 1, 2),
    supported(ApiKey::DescribeTransactions, 0, 0),
    supported(ApiKey::ListTransactions, 0, 2),
    // The metadata quorum, for kafka-metadata-quorum.sh, and finalized features
    // for kafka-features.sh.
    supported(ApiKey::DescribeQuorum, 0, 2),
    supported(ApiKey::UpdateFeatures, 0, 2),
];

/// APIs served on the controller listener only, between the nodes of a cluster:
/// brokers register and heartbeat, and forward controller requests in envelopes.
pub const CONTROLLER_LISTENER_APIS: &[Supported] = &[
    supported(ApiKey::Envelope, 0, 0),
    supported(ApiKey::BrokerRegistration, 0, 4),
    supported(ApiKey::BrokerHeartbeat, 0, 1),
    supported(ApiKey::ApiVersions, 0, 4),
    supported(ApiKey::DescribeQuorum, 0, 2),
    // A broker's own requests to the controller: topics it creates itself
    // (automatic creation, internal topics) and blocks of producer ids.
    supported(ApiKey::CreateTopics, 2, 7),
    supported(ApiKey::AllocateProducerIds, 0, 0),
];

/// The range we serve for `api_key`, if we serve it at all.
pub fn supported_range(api_key: ApiKey) -> Option<Supported> {
    SUPPORTED_APIS.iter().copied().find(|entry| entry.api_key == api_key)
}

/// Whether a request at `api_version` of `api_key` is one we serve.
pub fn is_supported(api_key: ApiKey, api_version: i16) -> bool {
    supported_range(api_key).is_some_and(|entry| (entry.min_version..=entry.max_version).contains(&api_version))
}

/// The table of a listener: the client APIs, or those between the nodes.
pub fn table(controller_listener: bool) -> &'static [Supported] {
    if controller_listener {
        CONTROLLER_LISTENER_APIS
    } else {
        SUPPORTED_APIS
    }
}

/// Whether a listener serves a request at `api_version` of `api_key`. The controller
/// listener serves only what is between the nodes.
pub fn is_supported_on(controller_listener: bool, api_key: ApiKey, api_version: i16) -> bool {
    table(controller_listener)
        .iter()
        .any(|entry| entry.api_key == api_key && (entry.min_version..=entry.max_version).contains(&api_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_lies_within_the_protocol_range_and_appears_once() {
        for entry in SUPPORTED_APIS {
            let range = entry.api_key.versions();
            assert!(
                range.contains(entry.min_version) && range.contains(entry.max_version),
                "{:?} {}-{} outside the protocol's range",
                entry.api_key,
                entry.min_version,
                entry.max_version
            );
            assert!(entry.min_version <= entry.max_version);
            let count = SUPPORTED_APIS.iter().filter(|other| other.api_key == entry.api_key).count();
            assert_eq!(count, 1, "{:?} listed twice", entry.api_key);
        }
    }

    #[test]
    fn every_entry_has_a_handler() {
        for entry in SUPPORTED_APIS.iter().chain(CONTROLLER_LISTENER_APIS) {
            assert!(
                crate::dispatch::has_handler(entry.api_key),
                "{:?} is advertised but has no handler",
                entry.api_key
            );
        }
    }
}
