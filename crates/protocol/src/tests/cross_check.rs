//! An independent cross-check with the `kafka-protocol` crate: for every message
//! and version both crates cover, a random value encoded by us decodes in
//! kafka-protocol, and kafka-protocol's re-encoding of it is byte-for-byte what we
//! wrote and decodes back to the same value in ours. Both directions meet at the
//! bytes, so no mapping between the two crates' types is needed.

use crate::codec::Message;
use crate::testing::{Arbitrary, Gen};
use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::{Decodable, Encodable, Message as TheirMessage};
use proptest::prelude::*;

/// Messages kafka-protocol 0.18 cannot decode correctly, with the reason.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    // Both have a field named `Version`; kafka-protocol's decoder reads it into the
    // same variable as the message version and then decodes the nested voters with
    // the field's value, so it rejects or misreads valid input.
    ("LeaderChangeMessage", "kafka-protocol: field `Version` shadows the message version"),
    ("VotersRecord", "kafka-protocol: field `Version` shadows the message version"),
];

fn cross_check<Ours, Theirs>(seed: u64) -> Result<(), TestCaseError>
where
    Ours: Message + Arbitrary,
    Theirs: Encodable + Decodable + TheirMessage,
{
    let mut g = Gen::new(seed);
    let min = Ours::VERSIONS.min.max(Theirs::VERSIONS.min);
    let max = Ours::VERSIONS.max.min(Theirs::VERSIONS.max);
    if KNOWN_DIFFERENCES.iter().any(|(name, _)| *name == Ours::NAME) {
        return Ok(());
    }
    for version in min..=max {
        let value = Ours::arbitrary(&mut g, version, Ours::FLEXIBLE_VERSIONS.contains(version));
        let ours = value.encode_to_bytes(version).map_err(|e| TestCaseError::fail(format!("{}: {e}", Ours::NAME)))?;
        let mut input = ours.clone();
        let theirs = Theirs::decode(&mut input, version).map_err(|e| {
            TestCaseError::fail(format!("{} v{version}: kafka-protocol cannot decode ours: {e}", Ours::NAME))
        })?;
        prop_assert!(input.is_empty(), "{} v{}: kafka-protocol left {} bytes", Ours::NAME, version, input.len());
        let mut reencoded = BytesMut::new();
        theirs.encode(&mut reencoded, version).map_err(|e| {
            TestCaseError::fail(format!("{} v{version}: kafka-protocol cannot encode: {e}", Ours::NAME))
        })?;
        let reencoded: Bytes = reencoded.freeze();
        prop_assert_eq!(&reencoded, &ours, "{} v{}: bytes differ", Ours::NAME, version);
        let back = Ours::decode(&mut reencoded.clone(), version)
            .map_err(|e| TestCaseError::fail(format!("{} v{version}: we cannot decode theirs: {e}", Ours::NAME)))?;
        prop_assert_eq!(&back, &value);
    }
    Ok(())
}

macro_rules! cross_check_test {
    ($module:ident, $ty:ident) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $module(seed in any::<u64>()) {
                cross_check::<crate::generated::$module::$ty, kafka_protocol::messages::$module::$ty>(seed)?;
            }
        }
    };
}

/// Every message both crates have.
macro_rules! for_each_shared_message {
    ($m:ident) => {
        $m!(add_offsets_to_txn_request, AddOffsetsToTxnRequest);
        $m!(add_offsets_to_txn_response, AddOffsetsToTxnResponse);
        $m!(add_partitions_to_txn_request, AddPartitionsToTxnRequest);
        $m!(add_partitions_to_txn_response, AddPartitionsToTxnResponse);
        $m!(add_raft_voter_request, AddRaftVoterRequest);
        $m!(add_raft_voter_response, AddRaftVoterResponse);
        $m!(allocate_producer_ids_request, AllocateProducerIdsRequest);
        $m!(allocate_producer_ids_response, AllocateProducerIdsResponse);
        $m!(alter_client_quotas_request, AlterClientQuotasRequest);
        $m!(alter_client_quotas_response, AlterClientQuotasResponse);
        $m!(alter_configs_request, AlterConfigsRequest);
        $m!(alter_configs_response, AlterConfigsResponse);
        $m!(alter_partition_reassignments_request, AlterPartitionReassignmentsRequest);
        $m!(alter_partition_reassignments_response, AlterPartitionReassignmentsResponse);
        $m!(alter_partition_request, AlterPartitionRequest);
        $m!(alter_partition_response, AlterPartitionResponse);
        $m!(alter_replica_log_dirs_request, AlterReplicaLogDirsRequest);
        $m!(alter_replica_log_dirs_response, AlterReplicaLogDirsResponse);
        $m!(alter_share_group_offsets_request, AlterShareGroupOffsetsRequest);
        $m!(alter_share_group_offsets_response, AlterShareGroupOffsetsResponse);
        $m!(alter_user_scram_credentials_request, AlterUserScramCredentialsRequest);
        $m!(alter_user_scram_credentials_response, AlterUserScramCredentialsResponse);
        $m!(api_versions_request, ApiVersionsRequest);
        $m!(api_versions_response, ApiVersionsResponse);
        $m!(assign_replicas_to_dirs_request, AssignReplicasToDirsRequest);
        $m!(assign_replicas_to_dirs_response, AssignReplicasToDirsResponse);
        $m!(begin_quorum_epoch_request, BeginQuorumEpochRequest);
        $m!(begin_quorum_epoch_response, BeginQuorumEpochResponse);
        $m!(broker_heartbeat_request, BrokerHeartbeatRequest);
        $m!(broker_heartbeat_response, BrokerHeartbeatResponse);
        $m!(broker_registration_request, BrokerRegistrationRequest);
        $m!(broker_registration_response, BrokerRegistrationResponse);
        $m!(consumer_group_describe_request, ConsumerGroupDescribeRequest);
        $m!(consumer_group_describe_response, ConsumerGroupDescribeResponse);
        $m!(consumer_group_heartbeat_request, ConsumerGroupHeartbeatRequest);
        $m!(consumer_group_heartbeat_response, ConsumerGroupHeartbeatResponse);
        $m!(consumer_protocol_assignment, ConsumerProtocolAssignment);
        $m!(consumer_protocol_subscription, ConsumerProtocolSubscription);
        $m!(controller_registration_request, ControllerRegistrationRequest);
        $m!(controller_registration_response, ControllerRegistrationResponse);
        $m!(create_acls_request, CreateAclsRequest);
        $m!(create_acls_response, CreateAclsResponse);
        $m!(create_delegation_token_request, CreateDelegationTokenRequest);
        $m!(create_delegation_token_response, CreateDelegationTokenResponse);
        $m!(create_partitions_request, CreatePartitionsRequest);
        $m!(create_partitions_response, CreatePartitionsResponse);
        $m!(create_topics_request, CreateTopicsRequest);
        $m!(create_topics_response, CreateTopicsResponse);
        $m!(default_principal_data, DefaultPrincipalData);
        $m!(delete_acls_request, DeleteAclsRequest);
        $m!(delete_acls_response, DeleteAclsResponse);
        $m!(delete_groups_request, DeleteGroupsRequest);
        $m!(delete_groups_response, DeleteGroupsResponse);
        $m!(delete_records_request, DeleteRecordsRequest);
        $m!(delete_records_response, DeleteRecordsResponse);
        $m!(delete_share_group_offsets_request, DeleteShareGroupOffsetsRequest);
        $m!(delete_share_group_offsets_response, DeleteShareGroupOffsetsResponse);
        $m!(delete_share_group_state_request, DeleteShareGroupStateRequest);
        $m!(delete_share_group_state_response, DeleteShareGroupStateResponse);
        $m!(delete_topics_request, DeleteTopicsRequest);
        $m!(delete_topics_response, DeleteTopicsResponse);
        $m!(describe_acls_request, DescribeAclsRequest);
        $m!(describe_acls_response, DescribeAclsResponse);
        $m!(describe_client_quotas_request, DescribeClientQuotasRequest);
        $m!(describe_client_quotas_response, DescribeClientQuotasResponse);
        $m!(describe_cluster_request, DescribeClusterRequest);
        $m!(describe_cluster_response, DescribeClusterResponse);
        $m!(describe_configs_request, DescribeConfigsRequest);
        $m!(describe_configs_response, DescribeConfigsResponse);
        $m!(describe_delegation_token_request, DescribeDelegationTokenRequest);
        $m!(describe_delegation_token_response, DescribeDelegationTokenResponse);
        $m!(describe_groups_request, DescribeGroupsRequest);
        $m!(describe_groups_response, DescribeGroupsResponse);
        $m!(describe_log_dirs_request, DescribeLogDirsRequest);
        $m!(describe_log_dirs_response, DescribeLogDirsResponse);
        $m!(describe_producers_request, DescribeProducersRequest);
        $m!(describe_producers_response, DescribeProducersResponse);
        $m!(describe_quorum_request, DescribeQuorumRequest);
        $m!(describe_quorum_response, DescribeQuorumResponse);
        $m!(describe_share_group_offsets_request, DescribeShareGroupOffsetsRequest);
        $m!(describe_share_group_offsets_response, DescribeShareGroupOffsetsResponse);
        $m!(describe_topic_partitions_request, DescribeTopicPartitionsRequest);
        $m!(describe_topic_partitions_response, DescribeTopicPartitionsResponse);
        $m!(describe_transactions_request, DescribeTransactionsRequest);
        $m!(describe_transactions_response, DescribeTransactionsResponse);
        $m!(describe_user_scram_credentials_request, DescribeUserScramCredentialsRequest);
        $m!(describe_user_scram_credentials_response, DescribeUserScramCredentialsResponse);
        $m!(elect_leaders_request, ElectLeadersRequest);
        $m!(elect_leaders_response, ElectLeadersResponse);
        $m!(end_quorum_epoch_request, EndQuorumEpochRequest);
        $m!(end_quorum_epoch_response, EndQuorumEpochResponse);
        $m!(end_txn_request, EndTxnRequest);
        $m!(end_txn_response, EndTxnResponse);
        $m!(envelope_request, EnvelopeRequest);
        $m!(envelope_response, EnvelopeResponse);
        $m!(expire_delegation_token_request, ExpireDelegationTokenRequest);
        $m!(expire_delegation_token_response, ExpireDelegationTokenResponse);
        $m!(fetch_request, FetchRequest);
        $m!(fetch_response, FetchResponse);
        $m!(fetch_snapshot_request, FetchSnapshotRequest);
        $m!(fetch_snapshot_response, FetchSnapshotResponse);
        $m!(find_coordinator_request, FindCoordinatorRequest);
        $m!(find_coordinator_response, FindCoordinatorResponse);
        $m!(get_telemetry_subscriptions_request, GetTelemetrySubscriptionsRequest);
        $m!(get_telemetry_subscriptions_response, GetTelemetrySubscriptionsResponse);
        $m!(heartbeat_request, HeartbeatRequest);
        $m!(heartbeat_response, HeartbeatResponse);
        $m!(incremental_alter_configs_request, IncrementalAlterConfigsRequest);
        $m!(incremental_alter_configs_response, IncrementalAlterConfigsResponse);
        $m!(init_producer_id_request, InitProducerIdRequest);
        $m!(init_producer_id_response, InitProducerIdResponse);
        $m!(initialize_share_group_state_request, InitializeShareGroupStateRequest);
        $m!(initialize_share_group_state_response, InitializeShareGroupStateResponse);
        $m!(join_group_request, JoinGroupRequest);
        $m!(join_group_response, JoinGroupResponse);
        $m!(k_raft_version_record, KRaftVersionRecord);
        $m!(leader_change_message, LeaderChangeMessage);
        $m!(leave_group_request, LeaveGroupRequest);
        $m!(leave_group_response, LeaveGroupResponse);
        $m!(list_config_resources_request, ListConfigResourcesRequest);
        $m!(list_config_resources_response, ListConfigResourcesResponse);
        $m!(list_groups_request, ListGroupsRequest);
        $m!(list_groups_response, ListGroupsResponse);
        $m!(list_offsets_request, ListOffsetsRequest);
        $m!(list_offsets_response, ListOffsetsResponse);
        $m!(list_partition_reassignments_request, ListPartitionReassignmentsRequest);
        $m!(list_partition_reassignments_response, ListPartitionReassignmentsResponse);
        $m!(list_transactions_request, ListTransactionsRequest);
        $m!(list_transactions_response, ListTransactionsResponse);
        $m!(metadata_request, MetadataRequest);
        $m!(metadata_response, MetadataResponse);
        $m!(offset_commit_request, OffsetCommitRequest);
        $m!(offset_commit_response, OffsetCommitResponse);
        $m!(offset_delete_request, OffsetDeleteRequest);
        $m!(offset_delete_response, OffsetDeleteResponse);
        $m!(offset_fetch_request, OffsetFetchRequest);
        $m!(offset_fetch_response, OffsetFetchResponse);
        $m!(offset_for_leader_epoch_request, OffsetForLeaderEpochRequest);
        $m!(offset_for_leader_epoch_response, OffsetForLeaderEpochResponse);
        $m!(produce_request, ProduceRequest);
        $m!(produce_response, ProduceResponse);
        $m!(push_telemetry_request, PushTelemetryRequest);
        $m!(push_telemetry_response, PushTelemetryResponse);
        $m!(read_share_group_state_request, ReadShareGroupStateRequest);
        $m!(read_share_group_state_response, ReadShareGroupStateResponse);
        $m!(read_share_group_state_summary_request, ReadShareGroupStateSummaryRequest);
        $m!(read_share_group_state_summary_response, ReadShareGroupStateSummaryResponse);
        $m!(remove_raft_voter_request, RemoveRaftVoterRequest);
        $m!(remove_raft_voter_response, RemoveRaftVoterResponse);
        $m!(renew_delegation_token_request, RenewDelegationTokenRequest);
        $m!(renew_delegation_token_response, RenewDelegationTokenResponse);
        $m!(request_header, RequestHeader);
        $m!(response_header, ResponseHeader);
        $m!(sasl_authenticate_request, SaslAuthenticateRequest);
        $m!(sasl_authenticate_response, SaslAuthenticateResponse);
        $m!(sasl_handshake_request, SaslHandshakeRequest);
        $m!(sasl_handshake_response, SaslHandshakeResponse);
        $m!(share_acknowledge_request, ShareAcknowledgeRequest);
        $m!(share_acknowledge_response, ShareAcknowledgeResponse);
        $m!(share_fetch_request, ShareFetchRequest);
        $m!(share_fetch_response, ShareFetchResponse);
        $m!(share_group_describe_request, ShareGroupDescribeRequest);
        $m!(share_group_describe_response, ShareGroupDescribeResponse);
        $m!(share_group_heartbeat_request, ShareGroupHeartbeatRequest);
        $m!(share_group_heartbeat_response, ShareGroupHeartbeatResponse);
        $m!(snapshot_footer_record, SnapshotFooterRecord);
        $m!(snapshot_header_record, SnapshotHeaderRecord);
        $m!(sync_group_request, SyncGroupRequest);
        $m!(sync_group_response, SyncGroupResponse);
        $m!(txn_offset_commit_request, TxnOffsetCommitRequest);
        $m!(txn_offset_commit_response, TxnOffsetCommitResponse);
        $m!(unregister_broker_request, UnregisterBrokerRequest);
        $m!(unregister_broker_response, UnregisterBrokerResponse);
        $m!(update_features_request, UpdateFeaturesRequest);
        $m!(update_features_response, UpdateFeaturesResponse);
        $m!(update_raft_voter_request, UpdateRaftVoterRequest);
        $m!(update_raft_voter_response, UpdateRaftVoterResponse);
        $m!(vote_request, VoteRequest);
        $m!(vote_response, VoteResponse);
        $m!(voters_record, VotersRecord);
        $m!(write_share_group_state_request, WriteShareGroupStateRequest);
        $m!(write_share_group_state_response, WriteShareGroupStateResponse);
        $m!(write_txn_markers_request, WriteTxnMarkersRequest);
        $m!(write_txn_markers_response, WriteTxnMarkersResponse);
    };
}

for_each_shared_message!(cross_check_test);
