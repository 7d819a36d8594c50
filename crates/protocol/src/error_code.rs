//! The Kafka protocol error codes.
//!
//! Every response carries `int16` error codes; [`ErrorCode`] names each code Kafka
//! defines, with Kafka's upper-case name, whether a client may retry the failed
//! request as it stands, and a short default message of our own wording.
//!
//! The codes, names and retriability follow the error-code table of the Kafka
//! protocol documentation (codes -1 to 128, as of October 2024), plus the codes
//! later Kafka releases up to 4.2 added (129 to 133). A code is retriable when Kafka's
//! exception for it is a `RetriableException`.

/// Defines [`ErrorCode`] and its lookups from one table, so that every code,
/// name, retriability flag and message is written exactly once.
macro_rules! error_codes {
    ($($variant:ident = $code:literal, $name:literal, $retriable:literal, $message:literal;)+) => {
        /// A Kafka protocol error code.
        ///
        /// `ErrorCode::None` (0) means success. Codes this table does not know
        /// are not representable; [`ErrorCode::from_code`] returns `None` for them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $(
                #[doc = concat!("`", $name, "` (", stringify!($code), "): ", $message)]
                $variant = $code,
            )+
        }

        impl ErrorCode {
            /// Every error code, in ascending order of code.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The numeric code sent on the wire.
            pub const fn code(self) -> i16 {
                self as i16
            }

            /// The error code for a wire value, or `None` if Kafka defines no such code.
            pub fn from_code(code: i16) -> Option<ErrorCode> {
                match code {
                    $($code => Some(ErrorCode::$variant),)+
                    _ => Option::None,
                }
            }

            /// Kafka's name for the code, e.g. `"UNKNOWN_TOPIC_OR_PARTITION"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }

            /// Whether a client may retry the request that failed with this code
            /// (possibly after refreshing metadata) and expect it to succeed.
            pub fn is_retriable(self) -> bool {
                match self {
                    $(ErrorCode::$variant => $retriable,)+
                }
            }

            /// A one-line default description of the code.
            pub fn message(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $message,)+
                }
            }
        }
    };
}

// Columns: variant = code, Kafka name, retriable, default message.
error_codes! {
    UnknownServerError = -1, "UNKNOWN_SERVER_ERROR", false, "An unexpected error occurred on the server while handling the request.";
    None = 0, "NONE", false, "No error.";
    OffsetOutOfRange = 1, "OFFSET_OUT_OF_RANGE", false, "The requested offset lies outside the range of offsets the server holds.";
    CorruptMessage = 2, "CORRUPT_MESSAGE", true, "The message is corrupt: bad CRC, invalid size, null key on a compacted topic, or similar.";
    UnknownTopicOrPartition = 3, "UNKNOWN_TOPIC_OR_PARTITION", true, "This server does not host the requested topic or partition.";
    InvalidFetchSize = 4, "INVALID_FETCH_SIZE", false, "The fetch request asks for an invalid maximum size.";
    LeaderNotAvailable = 5, "LEADER_NOT_AVAILABLE", true, "The partition has no leader right now because a leader election is in progress.";
    NotLeaderOrFollower = 6, "NOT_LEADER_OR_FOLLOWER", true, "This broker is not the leader (or not a replica) for the partition.";
    RequestTimedOut = 7, "REQUEST_TIMED_OUT", true, "The request did not complete in time.";
    BrokerNotAvailable = 8, "BROKER_NOT_AVAILABLE", false, "The broker is down or cannot be reached.";
    ReplicaNotAvailable = 9, "REPLICA_NOT_AVAILABLE", true, "The replica for the requested partition is unavailable.";
    MessageTooLarge = 10, "MESSAGE_TOO_LARGE", false, "The request contains a message bigger than the server accepts.";
    StaleControllerEpoch = 11, "STALE_CONTROLLER_EPOCH", false, "The controller has moved to a different broker.";
    OffsetMetadataTooLarge = 12, "OFFSET_METADATA_TOO_LARGE", false, "The metadata attached to the committed offset is too large.";
    NetworkException = 13, "NETWORK_EXCEPTION", true, "The connection was closed before a response arrived.";
    CoordinatorLoadInProgress = 14, "COORDINATOR_LOAD_IN_PROGRESS", true, "The coordinator is still loading and cannot serve requests yet.";
    CoordinatorNotAvailable = 15, "COORDINATOR_NOT_AVAILABLE", true, "No coordinator is available right now.";
    NotCoordinator = 16, "NOT_COORDINATOR", true, "This broker is not the coordinator for the request.";
    InvalidTopicException = 17, "INVALID_TOPIC_EXCEPTION", false, "The request refers to a topic that is not valid.";
    RecordListTooLarge = 18, "RECORD_LIST_TOO_LARGE", false, "The request contains a batch larger than the server's configured segment size.";
    NotEnoughReplicas = 19, "NOT_ENOUGH_REPLICAS", true, "Messages were rejected because fewer in-sync replicas exist than required.";
    NotEnoughReplicasAfterAppend = 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true, "The write was appended locally but reached fewer in-sync replicas than required.";
    InvalidRequiredAcks = 21, "INVALID_REQUIRED_ACKS", false, "The produce request has an invalid acks value.";
    IllegalGeneration = 22, "ILLEGAL_GENERATION", false, "The group generation id given is not valid.";
    InconsistentGroupProtocol = 23, "INCONSISTENT_GROUP_PROTOCOL", false, "The member's protocols do not match those of the group, or its protocol type or list is empty.";
    InvalidGroupId = 24, "INVALID_GROUP_ID", false, "The group id is not valid.";
    UnknownMemberId = 25, "UNKNOWN_MEMBER_ID", false, "The coordinator does not know this member.";
    InvalidSessionTimeout = 26, "INVALID_SESSION_TIMEOUT", false, "The session timeout is outside the range the broker allows.";
    RebalanceInProgress = 27, "REBALANCE_IN_PROGRESS", false, "The group is rebalancing; the member must rejoin.";
    InvalidCommitOffsetSize = 28, "INVALID_COMMIT_OFFSET_SIZE", false, "The size of the offset commit data is not valid.";
    TopicAuthorizationFailed = 29, "TOPIC_AUTHORIZATION_FAILED", false, "Not authorized to access the topic.";
    GroupAuthorizationFailed = 30, "GROUP_AUTHORIZATION_FAILED", false, "Not authorized to access the group.";
    ClusterAuthorizationFailed = 31, "CLUSTER_AUTHORIZATION_FAILED", false, "Not authorized to perform cluster operations.";
    InvalidTimestamp = 32, "INVALID_TIMESTAMP", false, "The message timestamp is outside the acceptable range.";
    UnsupportedSaslMechanism = 33, "UNSUPPORTED_SASL_MECHANISM", false, "The requested SASL mechanism is not enabled on this broker.";
    IllegalSaslState = 34, "ILLEGAL_SASL_STATE", false, "The request is not allowed in the current SASL state.";
    UnsupportedVersion = 35, "UNSUPPORTED_VERSION", false, "The broker does not support this API version.";
    TopicAlreadyExists = 36, "TOPIC_ALREADY_EXISTS", false, "The topic already exists.";
    InvalidPartitions = 37, "INVALID_PARTITIONS", false, "The number of partitions is not valid.";
    InvalidReplicationFactor = 38, "INVALID_REPLICATION_FACTOR", false, "The replication factor is not valid.";
    InvalidReplicaAssignment = 39, "INVALID_REPLICA_ASSIGNMENT", false, "The replica assignment is not valid.";
    InvalidConfig = 40, "INVALID_CONFIG", false, "The configuration is not valid.";
    NotController = 41, "NOT_CONTROLLER", true, "This broker is not the controller of the cluster.";
    InvalidRequest = 42, "INVALID_REQUEST", false, "The request is malformed or was sent to an incompatible broker.";
    UnsupportedForMessageFormat = 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false, "The broker's message format version does not support this request.";
    PolicyViolation = 44, "POLICY_VIOLATION", false, "The request parameters violate the configured policy.";
    OutOfOrderSequenceNumber = 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false, "The broker received a sequence number out of order.";
    DuplicateSequenceNumber = 46, "DUPLICATE_SEQUENCE_NUMBER", false, "The broker received a sequence number it has already seen.";
    InvalidProducerEpoch = 47, "INVALID_PRODUCER_EPOCH", false, "The producer used an epoch older than the current one.";
    InvalidTxnState = 48, "INVALID_TXN_STATE", false, "The transactional operation is not allowed in the current transaction state.";
    InvalidProducerIdMapping = 49, "INVALID_PRODUCER_ID_MAPPING", false, "The producer id is not the one currently assigned to this transactional id.";
    InvalidTransactionTimeout = 50, "INVALID_TRANSACTION_TIMEOUT", false, "The transaction timeout exceeds the maximum the broker allows.";
    ConcurrentTransactions = 51, "CONCURRENT_TRANSACTIONS", true, "Another operation on the same transaction is still in progress.";
    TransactionCoordinatorFenced = 52, "TRANSACTION_COORDINATOR_FENCED", false, "The transaction coordinator sending this marker is no longer the current one for the producer.";
    TransactionalIdAuthorizationFailed = 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false, "Not authorized to use the transactional id.";
    SecurityDisabled = 54, "SECURITY_DISABLED", false, "Security features are not enabled.";
    OperationNotAttempted = 55, "OPERATION_NOT_ATTEMPTED", false, "The broker did not attempt this operation because others in the batch failed.";
    KafkaStorageError = 56, "KAFKA_STORAGE_ERROR", true, "A disk error occurred while accessing a log file.";
    LogDirNotFound = 57, "LOG_DIR_NOT_FOUND", false, "The requested log directory is not in the broker's configuration.";
    SaslAuthenticationFailed = 58, "SASL_AUTHENTICATION_FAILED", false, "SASL authentication did not succeed.";
    UnknownProducerId = 59, "UNKNOWN_PRODUCER_ID", false, "The broker has no metadata for this producer id.";
    ReassignmentInProgress = 60, "REASSIGNMENT_IN_PROGRESS", false, "Another partition reassignment is under way.";
    DelegationTokenAuthDisabled = 61, "DELEGATION_TOKEN_AUTH_DISABLED", false, "Delegation tokens are not enabled.";
    DelegationTokenNotFound = 62, "DELEGATION_TOKEN_NOT_FOUND", false, "No such delegation token exists on the server.";
    DelegationTokenOwnerMismatch = 63, "DELEGATION_TOKEN_OWNER_MISMATCH", false, "The principal is not a valid owner or renewer of the delegation token.";
    DelegationTokenRequestNotAllowed = 64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false, "Delegation token requests are not allowed on this kind of connection.";
    DelegationTokenAuthorizationFailed = 65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false, "Not authorized to use the delegation token.";
    DelegationTokenExpired = 66, "DELEGATION_TOKEN_EXPIRED", false, "The delegation token has expired.";
    InvalidPrincipalType = 67, "INVALID_PRINCIPAL_TYPE", false, "The given principal type is not supported.";
    NonEmptyGroup = 68, "NON_EMPTY_GROUP", false, "The group still has members.";
    GroupIdNotFound = 69, "GROUP_ID_NOT_FOUND", false, "The group id was not found.";
    FetchSessionIdNotFound = 70, "FETCH_SESSION_ID_NOT_FOUND", true, "No fetch session with this id exists.";
    InvalidFetchSessionEpoch = 71, "INVALID_FETCH_SESSION_EPOCH", true, "The fetch session epoch is wrong or out of sequence.";
    ListenerNotFound = 72, "LISTENER_NOT_FOUND", true, "The leader has no listener matching the one the metadata request arrived on.";
    TopicDeletionDisabled = 73, "TOPIC_DELETION_DISABLED", false, "Deleting topics is disabled.";
    FencedLeaderEpoch = 74, "FENCED_LEADER_EPOCH", true, "The request's leader epoch is behind the broker's.";
    UnknownLeaderEpoch = 75, "UNKNOWN_LEADER_EPOCH", true, "The request's leader epoch is ahead of the broker's.";
    UnsupportedCompressionType = 76, "UNSUPPORTED_COMPRESSION_TYPE", false, "The client does not support the compression type of this partition.";
    StaleBrokerEpoch = 77, "STALE_BROKER_EPOCH", false, "The broker's epoch no longer matches.";
    OffsetNotAvailable = 78, "OFFSET_NOT_AVAILABLE", true, "Offsets are not available yet because the new leader's high watermark has not caught up.";
    MemberIdRequired = 79, "MEMBER_ID_REQUIRED", false, "The member must obtain a member id before joining the group.";
    PreferredLeaderNotAvailable = 80, "PREFERRED_LEADER_NOT_AVAILABLE", true, "The preferred replica cannot become leader right now.";
    GroupMaxSizeReached = 81, "GROUP_MAX_SIZE_REACHED", false, "The group has reached its maximum number of members.";
    FencedInstanceId = 82, "FENCED_INSTANCE_ID", false, "Another member with the same group instance id has replaced this static member.";
    EligibleLeadersNotAvailable = 83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true, "No eligible leaders are available for the partition.";
    ElectionNotNeeded = 84, "ELECTION_NOT_NEEDED", true, "No leader election is needed for the partition.";
    NoReassignmentInProgress = 85, "NO_REASSIGNMENT_IN_PROGRESS", false, "No reassignment is currently running for the partition.";
    GroupSubscribedToTopic = 86, "GROUP_SUBSCRIBED_TO_TOPIC", false, "Offsets of a topic cannot be deleted while the group is subscribed to it.";
    InvalidRecord = 87, "INVALID_RECORD", false, "The record failed validation on the broker and was rejected.";
    UnstableOffsetCommit = 88, "UNSTABLE_OFFSET_COMMIT", true, "Unstable offsets exist and must be resolved first.";
    ThrottlingQuotaExceeded = 89, "THROTTLING_QUOTA_EXCEEDED", true, "The request exceeded its throttling quota.";
    ProducerFenced = 90, "PRODUCER_FENCED", false, "A newer producer with the same transactional id has fenced this one.";
    ResourceNotFound = 91, "RESOURCE_NOT_FOUND", false, "The request refers to a resource that does not exist.";
    DuplicateResource = 92, "DUPLICATE_RESOURCE", false, "The request refers to the same resource more than once.";
    UnacceptableCredential = 93, "UNACCEPTABLE_CREDENTIAL", false, "The requested credential does not meet the acceptance criteria.";
    InconsistentVoterSet = 94, "INCONSISTENT_VOTER_SET", false, "The sender or receiver of a voter-only request is not an expected voter.";
    InvalidUpdateVersion = 95, "INVALID_UPDATE_VERSION", false, "The update version is not valid.";
    FeatureUpdateFailed = 96, "FEATURE_UPDATE_FAILED", false, "The finalized features could not be updated due to an unexpected server error.";
    PrincipalDeserializationFailure = 97, "PRINCIPAL_DESERIALIZATION_FAILURE", false, "The request principal could not be deserialized while forwarding.";
    SnapshotNotFound = 98, "SNAPSHOT_NOT_FOUND", false, "No snapshot matches the request.";
    PositionOutOfRange = 99, "POSITION_OUT_OF_RANGE", false, "The requested position is negative or beyond the end of the snapshot.";
    UnknownTopicId = 100, "UNKNOWN_TOPIC_ID", true, "This server does not host a topic with this id.";
    DuplicateBrokerRegistration = 101, "DUPLICATE_BROKER_REGISTRATION", false, "Another broker has already registered with this broker id.";
    BrokerIdNotRegistered = 102, "BROKER_ID_NOT_REGISTERED", false, "No broker is registered with the given broker id.";
    InconsistentTopicId = 103, "INCONSISTENT_TOPIC_ID", true, "The topic id of the log differs from the topic id in the request.";
    InconsistentClusterId = 104, "INCONSISTENT_CLUSTER_ID", false, "The cluster id in the request differs from the server's.";
    TransactionalIdNotFound = 105, "TRANSACTIONAL_ID_NOT_FOUND", false, "The transactional id was not found.";
    FetchSessionTopicIdError = 106, "FETCH_SESSION_TOPIC_ID_ERROR", true, "The fetch session used topic ids inconsistently.";
    IneligibleReplica = 107, "INELIGIBLE_REPLICA", false, "The proposed ISR includes a replica that is not eligible.";
    NewLeaderElected = 108, "NEW_LEADER_ELECTED", false, "The partition state was updated, but a new leader has been elected.";
    OffsetMovedToTieredStorage = 109, "OFFSET_MOVED_TO_TIERED_STORAGE", false, "The requested offset is only available from tiered storage.";
    FencedMemberEpoch = 110, "FENCED_MEMBER_EPOCH", false, "The member epoch is fenced; the member must give up its partitions and rejoin.";
    UnreleasedInstanceId = 111, "UNRELEASED_INSTANCE_ID", false, "Another member of the group still uses this instance id and must leave first.";
    UnsupportedAssignor = 112, "UNSUPPORTED_ASSIGNOR", false, "The group does not support this assignor or its version range.";
    StaleMemberEpoch = 113, "STALE_MEMBER_EPOCH", false, "The member epoch is stale; retry after receiving the current epoch from a heartbeat.";
    MismatchedEndpointType = 114, "MISMATCHED_ENDPOINT_TYPE", false, "The request was sent to the wrong type of endpoint.";
    UnsupportedEndpointType = 115, "UNSUPPORTED_ENDPOINT_TYPE", false, "The broker does not support this endpoint type yet.";
    UnknownControllerId = 116, "UNKNOWN_CONTROLLER_ID", false, "No controller with this id is known.";
    UnknownSubscriptionId = 117, "UNKNOWN_SUBSCRIPTION_ID", false, "The telemetry subscription id is unknown or outdated.";
    TelemetryTooLarge = 118, "TELEMETRY_TOO_LARGE", false, "The telemetry push is larger than the broker accepts.";
    InvalidRegistration = 119, "INVALID_REGISTRATION", false, "The controller rejected the broker registration as invalid.";
    TransactionAbortable = 120, "TRANSACTION_ABORTABLE", false, "The transaction hit an error; abort it to keep using this transactional id.";
    InvalidRecordState = 121, "INVALID_RECORD_STATE", false, "The record is in an invalid state; its delivery acknowledgement could not be completed.";
    ShareSessionNotFound = 122, "SHARE_SESSION_NOT_FOUND", true, "The share session does not exist.";
    InvalidShareSessionEpoch = 123, "INVALID_SHARE_SESSION_EPOCH", true, "The share session epoch is wrong or out of sequence.";
    FencedStateEpoch = 124, "FENCED_STATE_EPOCH", false, "The share-group state epoch did not match; the share coordinator rejected the request.";
    InvalidVoterKey = 125, "INVALID_VOTER_KEY", false, "The voter key differs from the receiving replica's own key.";
    DuplicateVoter = 126, "DUPLICATE_VOTER", false, "The voter is already in the voter set.";
    VoterNotFound = 127, "VOTER_NOT_FOUND", false, "The voter is not in the voter set.";
    InvalidRegularExpression = 128, "INVALID_REGULAR_EXPRESSION", false, "The regular expression is malformed.";
    // Added after the reference table (October 2024), by Kafka releases up to 4.2:
    // KIP-1102 (129), KIP-1071 streams groups (130-132), KIP-932 share groups (133).
    RebootstrapRequired = 129, "REBOOTSTRAP_REQUIRED", false, "The client's cluster metadata is out of date; it must bootstrap again.";
    StreamsInvalidTopology = 130, "STREAMS_INVALID_TOPOLOGY", false, "The topology given is not valid.";
    StreamsInvalidTopologyEpoch = 131, "STREAMS_INVALID_TOPOLOGY_EPOCH", false, "The topology epoch given is not valid.";
    StreamsTopologyFenced = 132, "STREAMS_TOPOLOGY_FENCED", false, "The topology epoch given is out of date.";
    ShareSessionLimitReached = 133, "SHARE_SESSION_LIMIT_REACHED", true, "The share session limit has been reached.";
}

impl ErrorCode {
    /// True for [`ErrorCode::None`], the code of success.
    pub const fn is_none(self) -> bool {
        matches!(self, ErrorCode::None)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.code(), self.message())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_ascending_and_contiguous() {
        let codes: Vec<i16> = ErrorCode::ALL.iter().map(|e| e.code()).collect();
        let unique: HashSet<i16> = codes.iter().copied().collect();
        assert_eq!(unique.len(), codes.len());
        let expected: Vec<i16> = (-1..=133).collect();
        assert_eq!(codes, expected);
    }

    #[test]
    fn from_code_round_trips() {
        for &e in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(e.code()), Some(e), "{e:?}");
        }
    }

    #[test]
    fn names_are_unique_and_match_variants() {
        let names: HashSet<&str> = ErrorCode::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for &e in ErrorCode::ALL {
            let camel: String = e
                .name()
                .split('_')
                .map(|word| {
                    let mut chars = word.chars();
                    let first = chars.next().expect("empty word in name");
                    first.to_string() + &chars.as_str().to_ascii_lowercase()
                })
                .collect();
            assert_eq!(format!("{e:?}"), camel);
        }
    }

    #[test]
    fn messages_are_single_sentences() {
        for &e in ErrorCode::ALL {
            let m = e.message();
            assert!(!m.is_empty() && !m.contains('\n') && m.ends_with('.'), "{e:?}: {m:?}");
        }
    }

    #[test]
    fn spot_checks() {
        assert_eq!(ErrorCode::None.code(), 0);
        assert!(ErrorCode::None.is_none());
        assert!(!ErrorCode::None.is_retriable());
        assert_eq!(ErrorCode::from_code(-1), Some(ErrorCode::UnknownServerError));
        assert_eq!(ErrorCode::UnknownServerError.name(), "UNKNOWN_SERVER_ERROR");
        assert!(!ErrorCode::UnknownServerError.is_retriable());

        let e = ErrorCode::from_code(3).unwrap();
        assert_eq!(e, ErrorCode::UnknownTopicOrPartition);
        assert_eq!(e.name(), "UNKNOWN_TOPIC_OR_PARTITION");
        assert!(e.is_retriable());

        let e = ErrorCode::from_code(35).unwrap();
        assert_eq!(e, ErrorCode::UnsupportedVersion);
        assert_eq!(e.name(), "UNSUPPORTED_VERSION");
        assert!(!e.is_retriable());

        let e = ErrorCode::from_code(87).unwrap();
        assert_eq!(e, ErrorCode::InvalidRecord);
        assert_eq!(e.name(), "INVALID_RECORD");
        assert!(!e.is_retriable());

        assert!(ErrorCode::NotLeaderOrFollower.is_retriable());
        assert!(ErrorCode::CorruptMessage.is_retriable());
        assert!(!ErrorCode::RebalanceInProgress.is_retriable());
        assert!(!ErrorCode::OffsetOutOfRange.is_retriable());
        assert_eq!(ErrorCode::ShareSessionLimitReached.code(), 133);
        assert!(ErrorCode::ShareSessionLimitReached.is_retriable());
        assert_eq!(ErrorCode::ALL.iter().filter(|e| e.is_retriable()).count(), 32);
    }

    #[test]
    fn unknown_codes_are_none() {
        for code in [-2, 134, 1000, i16::MIN, i16::MAX] {
            assert_eq!(ErrorCode::from_code(code), None, "{code}");
        }
    }

    #[test]
    fn display_shows_name_code_and_message() {
        let shown = ErrorCode::UnsupportedVersion.to_string();
        assert!(shown.starts_with("UNSUPPORTED_VERSION (35): "), "{shown}");
    }
}
