//! Dispatch: one exhaustive `match` from a decoded request to its handler. The
//! compiler's exhaustiveness check is the list of APIs still to build: an API without
//! a handler is named in the last arm, is not advertised, and a client that sends it
//! anyway is disconnected, as Kafka does for APIs it has not enabled.

use crate::broker::Broker;
use crate::handlers;
use crate::request_context::{ConnectionContext, RequestContext};
use gregor_protocol::frame::DecodedRequest;
use gregor_protocol::{ApiKey, RequestBody, ResponseBody};
use std::sync::Arc;

/// What the connection does after a request.
#[derive(Debug)]
pub enum Outcome {
    /// Send this response.
    Respond(ResponseBody),
    /// Send this response, with these file regions in place of its placeholder
    /// chunks, in order (see [`crate::zero_copy`]).
    RespondWithRegions(ResponseBody, Vec<gregor_storage::FileRegion>),
    /// Send this response frame, encoded elsewhere (by the active controller, for
    /// a forwarded request), size prefix included.
    RespondEncoded(gregor_protocol::codec::WriteBuf),
    /// Send nothing (a Produce with acks=0 that succeeded).
    NoResponse,
    /// Close the connection, for this reason (logged by the connection).
    Close(String),
    /// The answer comes from this task; the connection goes on with the next
    /// requests meanwhile and sends answers in request order. Produce uses it to wait
    /// for an fdatasync, so that one sync can cover several pipelined requests.
    Deferred(tokio::task::JoinHandle<Outcome>),
}

/// Runs the handler of `request`, sent on the connection `connection` describes, and
/// returns what to send back.
pub async fn dispatch(broker: &Arc<Broker>, request: DecodedRequest, connection: &Arc<ConnectionContext>) -> Outcome {
    let DecodedRequest { header, body, .. } = request;
    let context = RequestContext::new(Arc::clone(connection), &header);
    let respond = Outcome::Respond;
    match body {
        RequestBody::Produce(body) => handlers::produce::handle(broker, &header, &context, body).await,
        RequestBody::Fetch(body) => {
            let (response, regions) = handlers::fetch::handle_zero_copy(broker, &header, &context, body).await;
            Outcome::RespondWithRegions(ResponseBody::Fetch(response), regions)
        }
        RequestBody::ListOffsets(body) => {
            respond(ResponseBody::ListOffsets(handlers::list_offsets::handle(broker, &header, &context, body).await))
        }
        RequestBody::Metadata(body) => {
            respond(ResponseBody::Metadata(handlers::metadata::handle(broker, &header, &context, body).await))
        }
        RequestBody::ApiVersions(body) => {
            respond(ResponseBody::ApiVersions(handlers::api_versions::handle(broker, &header, body).await))
        }
        RequestBody::CreateTopics(body) => {
            respond(ResponseBody::CreateTopics(handlers::create_topics::handle(broker, &header, &context, body).await))
        }
        RequestBody::DeleteTopics(body) => {
            respond(ResponseBody::DeleteTopics(handlers::delete_topics::handle(broker, &header, &context, body).await))
        }
        RequestBody::DeleteRecords(body) => respond(ResponseBody::DeleteRecords(
            handlers::delete_records::handle(broker, &header, &context, body).await,
        )),
        RequestBody::InitProducerId(body) => respond(ResponseBody::InitProducerId(
            handlers::init_producer_id::handle(broker, &header, &context, body).await,
        )),
        RequestBody::OffsetForLeaderEpoch(body) => respond(ResponseBody::OffsetForLeaderEpoch(
            handlers::offset_for_leader_epoch::handle(broker, &header, &context, body).await,
        )),
        RequestBody::DescribeConfigs(body) => respond(ResponseBody::DescribeConfigs(
            handlers::describe_configs::handle(broker, &header, &context, body).await,
        )),
        RequestBody::AlterConfigs(body) => {
            respond(ResponseBody::AlterConfigs(handlers::alter_configs::handle(broker, &header, &context, body).await))
        }
        RequestBody::DescribeLogDirs(body) => respond(ResponseBody::DescribeLogDirs(
            handlers::describe_log_dirs::handle(broker, &header, &context, body).await,
        )),
        RequestBody::CreatePartitions(body) => respond(ResponseBody::CreatePartitions(
            handlers::create_partitions::handle(broker, &header, &context, body).await,
        )),
        RequestBody::AlterPartitionReassignments(body) => respond(ResponseBody::AlterPartitionReassignments(
            handlers::alter_partition_reassignments::handle(broker, &header, &context, body).await,
        )),
        RequestBody::ListPartitionReassignments(body) => respond(ResponseBody::ListPartitionReassignments(
            handlers::list_partition_reassignments::handle(broker, &header, &context, body).await,
        )),
        RequestBody::UnregisterBroker(body) => respond(ResponseBody::UnregisterBroker(
            handlers::unregister_broker::handle(broker, &header, &context, body).await,
        )),
        RequestBody::ElectLeaders(body) => {
            respond(ResponseBody::ElectLeaders(handlers::elect_leaders::handle(broker, &header, &context, body).await))
        }
        RequestBody::IncrementalAlterConfigs(body) => respond(ResponseBody::IncrementalAlterConfigs(
            handlers::incremental_alter_configs::handle(broker, &header, &context, body).await,
        )),
        RequestBody::DescribeCluster(body) => respond(ResponseBody::DescribeCluster(
            handlers::describe_cluster::handle(broker, &header, &context, body).await,
        )),
        RequestBody::DescribeProducers(body) => respond(ResponseBody::DescribeProducers(
            handlers::describe_producers::handle(broker, &header, &context, body).await,
        )),
        RequestBody::DescribeTopicPartitions(body) => respond(ResponseBody::DescribeTopicPartitions(
            handlers::describe_topic_partitions::handle(broker, &header, &context, body).await,
        )),
        RequestBody::FindCoordinator(body) => respond(ResponseBody::FindCoordinator(
            handlers::find_coordinator::handle(broker, &header, &context, body).await,
        )),
        RequestBody::JoinGroup(body) => respond(handlers::join_group::handle(broker, &header, &context, body).await),
        RequestBody::SyncGroup(body) => respond(handlers::sync_group::handle(broker, &header, &context, body).await),
        RequestBody::Heartbeat(body) => respond(handlers::heartbeat::handle(broker, &header, &context, body).await),
        RequestBody::LeaveGroup(body) => respond(handlers::leave_group::handle(broker, &header, &context, body).await),
        RequestBody::OffsetCommit(body) => {
            respond(handlers::offset_commit::handle(broker, &header, &context, body).await)
        }
        RequestBody::OffsetFetch(body) => {
            respond(ResponseBody::OffsetFetch(handlers::offset_fetch::handle(broker, &header, &context, body).await))
        }
        RequestBody::DescribeGroups(body) => respond(ResponseBody::DescribeGroups(
            handlers::describe_groups::handle(broker, &header, &context, body).await,
        )),
        RequestBody::ListGroups(body) => {
            respond(ResponseBody::ListGroups(handlers::list_groups::handle(broker, &header, &context, body).await))
        }
        RequestBody::DeleteGroups(body) => {
            respond(ResponseBody::DeleteGroups(handlers::delete_groups::handle(broker, &header, &context, body).await))
        }
        RequestBody::OffsetDelete(body) => {
            respond(handlers::offset_delete::handle(broker, &header, &context, body).await)
        }
        RequestBody::TxnOffsetCommit(body) => {
            respond(handlers::txn_offset_commit::handle(broker, &header, &context, body).await)
        }
        RequestBody::ConsumerGroupHeartbeat(body) => {
            respond(handlers::consumer_group_heartbeat::handle(broker, &header, &context, body).await)
        }
        RequestBody::ConsumerGroupDescribe(body) => respond(ResponseBody::ConsumerGroupDescribe(
            handlers::consumer_group_describe::handle(broker, &header, &context, body).await,
        )),
        RequestBody::AddPartitionsToTxn(body) => respond(ResponseBody::AddPartitionsToTxn(
            handlers::add_partitions_to_txn::handle(broker, &header, &context, body).await,
        )),
        RequestBody::AddOffsetsToTxn(body) => respond(ResponseBody::AddOffsetsToTxn(
            handlers::add_offsets_to_txn::handle(broker, &header, &context, body).await,
        )),
        RequestBody::EndTxn(body) => {
            respond(ResponseBody::EndTxn(handlers::end_txn::handle(broker, &header, &context, body).await))
        }
        RequestBody::WriteTxnMarkers(body) => respond(ResponseBody::WriteTxnMarkers(
            handlers::write_txn_markers::handle(broker, &header, &context, body).await,
        )),
        RequestBody::DescribeTransactions(body) => respond(ResponseBody::DescribeTransactions(
            handlers::describe_transactions::handle(broker, &header, &context, body).await,
        )),
        RequestBody::ListTransactions(body) => respond(ResponseBody::ListTransactions(
            handlers::list_transactions::handle(broker, &header, &context, body).await,
        )),
        RequestBody::DescribeAcls(body) => {
            respond(ResponseBody::DescribeAcls(handlers::describe_acls::handle(broker, &header, &context, body).await))
        }
        RequestBody::CreateAcls(body) => {
            respond(ResponseBody::CreateAcls(handlers::create_acls::handle(broker, &header, &context, body).await))
        }
        RequestBody::DeleteAcls(body) => {
            respond(ResponseBody::DeleteAcls(handlers::delete_acls::handle(broker, &header, &context, body).await))
        }
        RequestBody::DescribeUserScramCredentials(body) => respond(ResponseBody::DescribeUserScramCredentials(
            handlers::describe_user_scram_credentials::handle(broker, &header, &context, body).await,
        )),
        RequestBody::AlterUserScramCredentials(body) => respond(ResponseBody::AlterUserScramCredentials(
            handlers::alter_user_scram_credentials::handle(broker, &header, &context, body).await,
        )),
        RequestBody::DescribeQuorum(body) => {
            respond(ResponseBody::DescribeQuorum(handlers::describe_quorum::handle(broker, &header, body).await))
        }
        RequestBody::Envelope(body) => respond(ResponseBody::Envelope(handlers::envelope::handle(broker, body).await)),
        RequestBody::BrokerRegistration(body) => {
            respond(ResponseBody::BrokerRegistration(handlers::broker_registration::handle(broker, body).await))
        }
        RequestBody::UpdateFeatures(body) => respond(ResponseBody::UpdateFeatures(
            handlers::update_features::handle(broker, &header, &context, body).await,
        )),
        RequestBody::AllocateProducerIds(body) => {
            respond(ResponseBody::AllocateProducerIds(handlers::allocate_producer_ids::handle(broker, body).await))
        }
        RequestBody::BrokerHeartbeat(body) => {
            respond(ResponseBody::BrokerHeartbeat(handlers::broker_heartbeat::handle(broker, body).await))
        }
        RequestBody::SaslHandshake(_)
        | RequestBody::AlterReplicaLogDirs(_)
        | RequestBody::SaslAuthenticate(_)
        | RequestBody::CreateDelegationToken(_)
        | RequestBody::RenewDelegationToken(_)
        | RequestBody::ExpireDelegationToken(_)
        | RequestBody::DescribeDelegationToken(_)
        | RequestBody::DescribeClientQuotas(_)
        | RequestBody::AlterClientQuotas(_)
        | RequestBody::Vote(_)
        | RequestBody::BeginQuorumEpoch(_)
        | RequestBody::EndQuorumEpoch(_)
        | RequestBody::AlterPartition(_)
        | RequestBody::FetchSnapshot(_)
        | RequestBody::ControllerRegistration(_)
        | RequestBody::GetTelemetrySubscriptions(_)
        | RequestBody::PushTelemetry(_)
        | RequestBody::AssignReplicasToDirs(_)
        | RequestBody::ListConfigResources(_)
        | RequestBody::ShareGroupHeartbeat(_)
        | RequestBody::ShareGroupDescribe(_)
        | RequestBody::ShareFetch(_)
        | RequestBody::ShareAcknowledge(_)
        | RequestBody::AddRaftVoter(_)
        | RequestBody::RemoveRaftVoter(_)
        | RequestBody::UpdateRaftVoter(_)
        | RequestBody::InitializeShareGroupState(_)
        | RequestBody::ReadShareGroupState(_)
        | RequestBody::WriteShareGroupState(_)
        | RequestBody::DeleteShareGroupState(_)
        | RequestBody::ReadShareGroupStateSummary(_)
        | RequestBody::StreamsGroupHeartbeat(_)
        | RequestBody::StreamsGroupDescribe(_)
        | RequestBody::DescribeShareGroupOffsets(_)
        | RequestBody::AlterShareGroupOffsets(_)
        | RequestBody::DeleteShareGroupOffsets(_) => {
            Outcome::Close(format!("API {} is not enabled on this broker", header.request_api_key))
        }
    }
}

/// Whether `api_key` has a handler above; the API-version table may list only these.
pub fn has_handler(api_key: ApiKey) -> bool {
    match api_key {
        ApiKey::Produce
        | ApiKey::Fetch
        | ApiKey::ListOffsets
        | ApiKey::Metadata
        | ApiKey::ApiVersions
        | ApiKey::CreateTopics
        | ApiKey::DeleteTopics
        | ApiKey::DeleteRecords
        | ApiKey::InitProducerId
        | ApiKey::OffsetForLeaderEpoch
        | ApiKey::DescribeConfigs
        | ApiKey::AlterConfigs
        | ApiKey::DescribeLogDirs
        | ApiKey::CreatePartitions
        | ApiKey::ElectLeaders
        | ApiKey::AlterPartitionReassignments
        | ApiKey::ListPartitionReassignments
        | ApiKey::UnregisterBroker
        | ApiKey::IncrementalAlterConfigs
        | ApiKey::DescribeCluster
        | ApiKey::DescribeProducers
        | ApiKey::DescribeTopicPartitions
        | ApiKey::OffsetCommit
        | ApiKey::OffsetFetch
        | ApiKey::FindCoordinator
        | ApiKey::JoinGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::SyncGroup
        | ApiKey::DescribeGroups
        | ApiKey::ListGroups
        | ApiKey::DeleteGroups
        | ApiKey::OffsetDelete
        | ApiKey::ConsumerGroupHeartbeat
        | ApiKey::ConsumerGroupDescribe
        | ApiKey::TxnOffsetCommit
        | ApiKey::AddPartitionsToTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::WriteTxnMarkers
        | ApiKey::DescribeTransactions
        | ApiKey::ListTransactions
        | ApiKey::DescribeAcls
        | ApiKey::CreateAcls
        | ApiKey::DeleteAcls
        | ApiKey::DescribeUserScramCredentials
        | ApiKey::AlterUserScramCredentials
        | ApiKey::DescribeQuorum
        | ApiKey::Envelope
        | ApiKey::BrokerRegistration
        | ApiKey::BrokerHeartbeat
        | ApiKey::AllocateProducerIds
        | ApiKey::UpdateFeatures => true,
        ApiKey::SaslHandshake
        | ApiKey::AlterReplicaLogDirs
        | ApiKey::SaslAuthenticate
        | ApiKey::CreateDelegationToken
        | ApiKey::RenewDelegationToken
        | ApiKey::ExpireDelegationToken
        | ApiKey::DescribeDelegationToken
        | ApiKey::DescribeClientQuotas
        | ApiKey::AlterClientQuotas
        | ApiKey::Vote
        | ApiKey::BeginQuorumEpoch
        | ApiKey::EndQuorumEpoch
        | ApiKey::AlterPartition
        | ApiKey::FetchSnapshot
        | ApiKey::ControllerRegistration
        | ApiKey::GetTelemetrySubscriptions
        | ApiKey::PushTelemetry
        | ApiKey::AssignReplicasToDirs
        | ApiKey::ListConfigResources
        | ApiKey::ShareGroupHeartbeat
        | ApiKey::ShareGroupDescribe
        | ApiKey::ShareFetch
        | ApiKey::ShareAcknowledge
        | ApiKey::AddRaftVoter
        | ApiKey::RemoveRaftVoter
        | ApiKey::UpdateRaftVoter
        | ApiKey::InitializeShareGroupState
        | ApiKey::ReadShareGroupState
        | ApiKey::WriteShareGroupState
        | ApiKey::DeleteShareGroupState
        | ApiKey::ReadShareGroupStateSummary
        | ApiKey::StreamsGroupHeartbeat
        | ApiKey::StreamsGroupDescribe
        | ApiKey::DescribeShareGroupOffsets
        | ApiKey::AlterShareGroupOffsets
        | ApiKey::DeleteShareGroupOffsets => false,
    }
}

/// The requests only the active controller decides: a broker that is not the
/// active controller forwards them to it in an Envelope, as Kafka's brokers do.
pub fn is_forwarded_to_controller(api_key: ApiKey) -> bool {
    matches!(
        api_key,
        ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
            | ApiKey::CreateAcls
            | ApiKey::DeleteAcls
            | ApiKey::AlterUserScramCredentials
            | ApiKey::ElectLeaders
            | ApiKey::AlterPartitionReassignments
            | ApiKey::ListPartitionReassignments
            | ApiKey::UpdateFeatures
            | ApiKey::UnregisterBroker
    )
}
