//! Broker lifecycle decisions of a multi-broker cluster, as Kafka's
//! `ClusterControlManager`, `BrokerHeartbeatManager` and `ReplicationControlManager`
//! make them: registration, heartbeats (unfencing once caught up, fencing, controlled
//! shutdown), fencing on session expiry, unregistration and preferred-leader balance.
//!
//! Sessions are soft state of the active controller, as in Kafka: [`BrokerSessions`]
//! holds when each broker was last heard from, as data; the caller owns the clock
//! and the timer that calls [`BrokerSessions::expired`].

use std::collections::{BTreeMap, BTreeSet};

use gregor_protocol::messages::{
    broker_registration_change_record::BrokerRegistrationChangeRecord,
    register_broker_record::{BrokerEndpoint as EndpointRecord, BrokerFeature, RegisterBrokerRecord},
    unregister_broker_record::UnregisterBrokerRecord,
};
use gregor_protocol::{ErrorCode, Uuid};

use super::partition_change::{is_active, leader_and_isr_updates, Election, PartitionChange, PartitionsWith};
use super::{ApiError, METADATA_VERSION_FEATURE};
use crate::image::{BrokerEndpoint, MetadataImage};
use crate::record::MetadataRecord;

/// `BrokerRegistrationChangeRecord.fenced`: 1 fences, -1 unfences.
const FENCE: i8 = 1;
const UNFENCE: i8 = -1;
/// `BrokerRegistrationChangeRecord.in_controlled_shutdown`: 1 enters it.
const IN_CONTROLLED_SHUTDOWN: i8 = 1;
/// The metadata.version a broker that sends no range for it is assumed to run
/// (3.0-IV1, the first KRaft level).
const METADATA_VERSION_ASSUMED: i16 = 1;
/// From this metadata.version (3.7-IV2) registrations carry log directories.
const DIRECTORY_ASSIGNMENT_VERSION: i16 = 17;
/// From this metadata.version (4.0-IV1) a new incarnation's old replicas leave ISRs
/// at registration (KIP-966's unclean-shutdown handling).
const ELR_SUPPORTED_VERSION: i16 = 23;
/// Directory ids Kafka reserves (unassigned, lost, migrating...): all below 100.
const RESERVED_DIRECTORY_MAX: u128 = 100;
/// Kafka's bound on leader elections per automatic balance round.
pub const ELECTIONS_PER_BALANCE_MAX: usize = 1000;

/// One broker's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSession {
    pub last_contact_ms: i64,
    /// The metadata offset its last heartbeat reported; -1 before any.
    pub metadata_offset: i64,
    pub fenced: bool,
    /// The metadata log end offset when it entered controlled shutdown.
    pub controlled_shutdown_offset: Option<i64>,
}

/// The active controller's broker sessions, by broker id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerSessions {
    sessions: BTreeMap<i32, BrokerSession>,
}

impl BrokerSessions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sessions for every registered broker, as a newly active controller starts them:
    /// fenced as the image says, last heard from `now_ms`.
    pub fn from_image(image: &MetadataImage, now_ms: i64) -> Self {
        let mut sessions = Self::new();
        for broker in image.brokers() {
            sessions.register(broker.id, broker.fenced, now_ms);
        }
        sessions
    }

    pub fn get(&self, broker_id: i32) -> Option<&BrokerSession> {
        self.sessions.get(&broker_id)
    }

    /// Starts tracking a registered broker (keeps an existing session's contact time).
    pub fn register(&mut self, broker_id: i32, fenced: bool, now_ms: i64) {
        let session = self.sessions.entry(broker_id).or_insert(BrokerSession {
            last_contact_ms: now_ms,
            metadata_offset: -1,
            fenced,
            controlled_shutdown_offset: None,
        });
        session.fenced = fenced;
    }

    pub fn remove(&mut self, broker_id: i32) {
        self.sessions.remove(&broker_id);
    }

    /// Records contact from a broker (a heartbeat), creating its session if needed.
    pub fn touch(&mut self, broker_id: i32, now_ms: i64) {
        let session = self.sessions.entry(broker_id).or_insert(BrokerSession {
            last_contact_ms: now_ms,
            metadata_offset: -1,
            fenced: true,
            controlled_shutdown_offset: None,
        });
        session.last_contact_ms = now_ms;
    }

    /// Marks a broker fenced (its session expired); a fenced broker leaves controlled
    /// shutdown, so its next heartbeat is told to shut down at once.
    pub fn fence(&mut self, broker_id: i32) {
        if let Some(session) = self.sessions.get_mut(&broker_id) {
            session.fenced = true;
            session.controlled_shutdown_offset = None;
        }
    }

    /// Called once the batch of a heartbeat that answered `in_controlled_shutdown`
    /// is written, with the metadata log end offset after it: the broker may stop
    /// once every active broker has caught up with that offset.
    pub fn enter_controlled_shutdown(&mut self, broker_id: i32, log_end_offset: i64) {
        if let Some(session) = self.sessions.get_mut(&broker_id) {
            if !session.fenced && session.controlled_shutdown_offset.is_none() {
                session.controlled_shutdown_offset = Some(log_end_offset);
            }
        }
    }

    /// Whether a broker holds a live session: unfenced and heard from within the timeout.
    pub fn has_valid_session(&self, broker_id: i32, now_ms: i64, session_timeout_ms: i64) -> bool {
        self.sessions.get(&broker_id).is_some_and(|session| {
            !session.fenced && session.last_contact_ms.saturating_add(session_timeout_ms) >= now_ms
        })
    }

    /// Unfenced brokers whose session has timed out, longest silent first. Kafka fences
    /// them one at a time ([`fence_broker`], then [`Self::fence`]) so that each fencing's
    /// leader moves are visible before the next.
    pub fn expired(&self, now_ms: i64, session_timeout_ms: i64) -> Vec<i32> {
        let mut stale: Vec<(i64, i32)> = self
            .sessions
            .iter()
            .filter(|(_, session)| {
                !session.fenced && session.last_contact_ms.saturating_add(session_timeout_ms) < now_ms
            })
            .map(|(id, session)| (session.last_contact_ms, *id))
            .collect();
        stale.sort_unstable();
        stale.into_iter().map(|(_, id)| id).collect()
    }

    /// The lowest metadata offset among brokers that are unfenced and not shutting down.
    fn lowest_active_offset(&self) -> i64 {
        self.sessions
            .values()
            .filter(|session| !session.fenced && session.controlled_shutdown_offset.is_none())
            .map(|session| session.metadata_offset)
            .min()
            .unwrap_or(i64::MAX)
    }
}

/// A BrokerRegistration request, as the controller needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistrationRequest {
    pub broker_id: i32,
    pub incarnation_id: Uuid,
    /// Listeners, each with its security protocol id.
    pub listeners: Vec<BrokerEndpoint>,
    /// Supported features: (name, min level, max level).
    pub features: Vec<(String, i16, i16)>,
    pub rack: Option<String>,
    pub log_dirs: Vec<Uuid>,
}

fn stale_epoch(message: String) -> ApiError {
    ApiError::new(ErrorCode::StaleBrokerEpoch, message)
}

/// Kafka's `checkBrokerEpoch`.
fn check_broker_epoch(image: &MetadataImage, broker_id: i32, broker_epoch: i64) -> Result<(), ApiError> {
    match image.broker(broker_id) {
        None => Err(stale_epoch(format!("No broker registration found for broker id {broker_id}"))),
        Some(broker) if broker.epoch != broker_epoch => {
            Err(stale_epoch(format!("Expected broker epoch {}, but got broker epoch {broker_epoch}", broker.epoch)))
        }
        Some(_) => Ok(()),
    }
}

fn check_feature(image: &MetadataImage, name: &str, min: i16, max: i16) -> Result<(), ApiError> {
    let default = if name == METADATA_VERSION_FEATURE { METADATA_VERSION_ASSUMED } else { 0 };
    let finalized = image.features().get(name).copied().unwrap_or(default);
    if (min..=max).contains(&finalized) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::UnsupportedVersion,
        format!(
            "Unable to register because the broker does not support finalized version {finalized} of {name}. The \
             broker wants a version between {min} and {max}, inclusive."
        ),
    ))
}

fn check_log_dirs(image: &MetadataImage, request: &BrokerRegistrationRequest) -> Result<(), ApiError> {
    let invalid = |message: String| Err(ApiError::new(ErrorCode::InvalidRegistration, message));
    if request.log_dirs.is_empty() {
        return invalid("No directories specified in request".to_string());
    }
    if request.log_dirs.iter().any(|dir| dir.as_u128() < RESERVED_DIRECTORY_MAX) {
        return invalid("Reserved directory ID in request".to_string());
    }
    if request.log_dirs.iter().collect::<BTreeSet<_>>().len() != request.log_dirs.len() {
        return invalid("Duplicate directory ID in request".to_string());
    }
    for dir in &request.log_dirs {
        if let Some(other) =
            image.brokers().find(|broker| broker.id != request.broker_id && broker.log_dirs.contains(dir))
        {
            return invalid(format!("Broker {} is already registered with directory {dir}", other.id));
        }
    }
    Ok(())
}

/// Registers a broker, as Kafka's `registerBroker`. A new incarnation gets
/// `new_broker_epoch` (the caller passes the offset the record will have, as Kafka
/// does) and starts fenced; it first leaves the ISRs and leadership its previous
/// incarnation held. The same incarnation registering again amends its registration
/// and keeps epoch and state. Answers the broker epoch.
pub fn register_broker(
    image: &MetadataImage,
    sessions: &mut BrokerSessions,
    request: &BrokerRegistrationRequest,
    new_broker_epoch: i64,
    now_ms: i64,
    session_timeout_ms: i64,
) -> (Vec<MetadataRecord>, Result<i64, ApiError>) {
    let broker_id = request.broker_id;
    let existing = image.broker(broker_id);
    if existing.is_some_and(|existing| existing.incarnation_id != request.incarnation_id)
        && sessions.has_valid_session(broker_id, now_ms, session_timeout_ms)
    {
        return (
            Vec::new(),
            Err(ApiError::new(
                ErrorCode::DuplicateBrokerRegistration,
                "Another broker is registered with that broker id.",
            )),
        );
    }
    let metadata_version = image.metadata_version().unwrap_or(METADATA_VERSION_ASSUMED);
    if metadata_version >= DIRECTORY_ASSIGNMENT_VERSION {
        if let Err(error) = check_log_dirs(image, request) {
            return (Vec::new(), Err(error));
        }
    }
    let mut features = Vec::with_capacity(request.features.len() + 1);
    for (name, min, max) in &request.features {
        if let Err(error) = check_feature(image, name, *min, *max) {
            return (Vec::new(), Err(error));
        }
        features.push(BrokerFeature {
            name: name.clone(),
            min_supported_version: *min,
            max_supported_version: *max,
            ..Default::default()
        });
    }
    let sent = |feature: &str| request.features.iter().any(|(name, _, _)| name == feature);
    if !sent(METADATA_VERSION_FEATURE) {
        if let Err(error) =
            check_feature(image, METADATA_VERSION_FEATURE, METADATA_VERSION_ASSUMED, METADATA_VERSION_ASSUMED)
        {
            return (Vec::new(), Err(error));
        }
        features.push(BrokerFeature {
            name: METADATA_VERSION_FEATURE.to_string(),
            min_supported_version: METADATA_VERSION_ASSUMED,
            max_supported_version: METADATA_VERSION_ASSUMED,
            ..Default::default()
        });
    }
    // Every finalized feature the broker did not name must be one it can run at level 0.
    for (name, level) in image.features() {
        if *level != 0 && !sent(name) && name != METADATA_VERSION_FEATURE {
            if let Err(error) = check_feature(image, name, 0, 0) {
                return (Vec::new(), Err(error));
            }
        }
    }
    let mut record = RegisterBrokerRecord {
        broker_id,
        is_migrating_zk_broker: false,
        incarnation_id: request.incarnation_id,
        end_points: request
            .listeners
            .iter()
            .map(|listener| EndpointRecord {
                name: listener.name.clone(),
                host: listener.host.clone(),
                port: listener.port,
                security_protocol: listener.security_protocol,
                ..Default::default()
            })
            .collect(),
        features,
        rack: request.rack.clone(),
        log_dirs: if metadata_version >= DIRECTORY_ASSIGNMENT_VERSION { request.log_dirs.clone() } else { Vec::new() },
        ..Default::default()
    };
    let mut records = Vec::new();
    let same_incarnation = existing.filter(|existing| existing.incarnation_id == request.incarnation_id);
    match same_incarnation {
        Some(existing) => {
            record.fenced = existing.fenced;
            record.in_controlled_shutdown = existing.in_controlled_shutdown;
            record.broker_epoch = existing.epoch;
        }
        None => {
            if existing.is_some() && metadata_version >= ELR_SUPPORTED_VERSION {
                records.extend(leader_and_isr_updates(
                    image,
                    Some(broker_id),
                    None,
                    PartitionsWith::BrokerInIsr(broker_id),
                ));
            }
            record.fenced = true;
            record.in_controlled_shutdown = false;
            record.broker_epoch = new_broker_epoch;
            sessions.remove(broker_id);
        }
    }
    let epoch = record.broker_epoch;
    sessions.register(broker_id, record.fenced, now_ms);
    records.push(MetadataRecord::RegisterBroker(record));
    (records, Ok(epoch))
}

/// Fences a broker (its session expired, or it asked to be): its partitions elect
/// other active ISR members and it leaves their ISRs, except as the last member, where
/// the partition goes leaderless and keeps it in the ISR. Then the fence record.
pub fn fence_broker(image: &MetadataImage, broker_id: i32) -> (Vec<MetadataRecord>, Result<(), ApiError>) {
    let Some(broker) = image.broker(broker_id) else {
        return (Vec::new(), Err(broker_not_registered(broker_id)));
    };
    let mut records = leader_and_isr_updates(image, Some(broker_id), None, PartitionsWith::BrokerInIsr(broker_id));
    records.push(MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        broker_id,
        broker_epoch: broker.epoch,
        fenced: FENCE,
        ..Default::default()
    }));
    (records, Ok(()))
}

/// Unfences a broker and elects it for the leaderless partitions whose ISR holds it.
pub fn unfence_broker(image: &MetadataImage, broker_id: i32) -> (Vec<MetadataRecord>, Result<(), ApiError>) {
    let Some(broker) = image.broker(broker_id) else {
        return (Vec::new(), Err(broker_not_registered(broker_id)));
    };
    let mut records = vec![MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        broker_id,
        broker_epoch: broker.epoch,
        fenced: UNFENCE,
        ..Default::default()
    })];
    records.extend(leader_and_isr_updates(image, None, Some(broker_id), PartitionsWith::NoLeader));
    (records, Ok(()))
}

/// Puts a broker in controlled shutdown: marked so (once), and its leaderships and
/// ISR places move to the other active ISR members.
fn enter_controlled_shutdown(image: &MetadataImage, broker_id: i32, broker_epoch: i64) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    if image.broker(broker_id).is_some_and(|broker| !broker.in_controlled_shutdown) {
        records.push(MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
            broker_id,
            broker_epoch,
            in_controlled_shutdown: IN_CONTROLLED_SHUTDOWN,
            ..Default::default()
        }));
    }
    records.extend(leader_and_isr_updates(image, Some(broker_id), None, PartitionsWith::BrokerInIsr(broker_id)));
    records
}

fn broker_not_registered(broker_id: i32) -> ApiError {
    ApiError::new(ErrorCode::BrokerIdNotRegistered, format!("Broker ID {broker_id} is not currently registered"))
}

/// UnregisterBroker: the broker leaves every ISR and leadership, then its registration.
pub fn unregister_broker(image: &MetadataImage, broker_id: i32) -> (Vec<MetadataRecord>, Result<(), ApiError>) {
    let Some(broker) = image.broker(broker_id) else {
        return (Vec::new(), Err(broker_not_registered(broker_id)));
    };
    let mut records = leader_and_isr_updates(image, Some(broker_id), None, PartitionsWith::BrokerInIsr(broker_id));
    records.push(MetadataRecord::UnregisterBroker(UnregisterBrokerRecord {
        broker_id,
        broker_epoch: broker.epoch,
        ..Default::default()
    }));
    (records, Ok(()))
}

/// A BrokerHeartbeat request's fields the controller decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatRequest {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub current_metadata_offset: i64,
    pub want_fence: bool,
    pub want_shut_down: bool,
}

/// The heartbeat's answer. When `in_controlled_shutdown`, the caller reports the log
/// end offset after the batch to [`BrokerSessions::enter_controlled_shutdown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub in_controlled_shutdown: bool,
    pub should_shut_down: bool,
}

/// Kafka's `BrokerControlState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrokerState {
    Fenced,
    Unfenced,
    ControlledShutdown,
    ShutdownNow,
}

impl BrokerState {
    fn fenced(self) -> bool {
        matches!(self, BrokerState::Fenced | BrokerState::ShutdownNow)
    }
}

fn has_leaderships(image: &MetadataImage, broker_id: i32) -> bool {
    image.topics().any(|topic| topic.partitions.values().any(|partition| partition.leader == broker_id))
}

/// Kafka's `calculateNextBrokerState`.
fn next_state(
    image: &MetadataImage,
    session: &BrokerSession,
    lowest_active_offset: i64,
    request: &HeartbeatRequest,
    registration_offset: i64,
) -> (BrokerState, BrokerState) {
    let broker_id = request.broker_id;
    let current = match (session.controlled_shutdown_offset, session.fenced) {
        (Some(_), _) => BrokerState::ControlledShutdown,
        (None, true) => BrokerState::Fenced,
        (None, false) => BrokerState::Unfenced,
    };
    let next = match current {
        BrokerState::Fenced if request.want_shut_down => BrokerState::ShutdownNow,
        BrokerState::Fenced if !request.want_fence && request.current_metadata_offset >= registration_offset => {
            BrokerState::Unfenced
        }
        BrokerState::Fenced => BrokerState::Fenced,
        BrokerState::Unfenced if request.want_fence && request.want_shut_down => BrokerState::ShutdownNow,
        BrokerState::Unfenced if request.want_fence => BrokerState::Fenced,
        BrokerState::Unfenced if request.want_shut_down && has_leaderships(image, broker_id) => {
            BrokerState::ControlledShutdown
        }
        BrokerState::Unfenced if request.want_shut_down => BrokerState::ShutdownNow,
        BrokerState::Unfenced => BrokerState::Unfenced,
        BrokerState::ControlledShutdown if has_leaderships(image, broker_id) => BrokerState::ControlledShutdown,
        BrokerState::ControlledShutdown
            if session.controlled_shutdown_offset.is_some_and(|offset| offset <= lowest_active_offset) =>
        {
            BrokerState::ShutdownNow
        }
        BrokerState::ControlledShutdown => BrokerState::ControlledShutdown,
        BrokerState::ShutdownNow => BrokerState::ShutdownNow,
    };
    (current, next)
}

/// A broker heartbeat, as Kafka's `processBrokerHeartbeat`. `registration_offset` is
/// the metadata log offset of the broker's RegisterBrokerRecord (`None` before it
/// registered): a fenced broker is unfenced once its reported offset reaches it.
pub fn heartbeat(
    image: &MetadataImage,
    sessions: &mut BrokerSessions,
    request: &HeartbeatRequest,
    registration_offset: Option<i64>,
    now_ms: i64,
) -> (Vec<MetadataRecord>, Result<HeartbeatAnswer, ApiError>) {
    let broker_id = request.broker_id;
    let Some(registration_offset) = registration_offset else {
        return (
            Vec::new(),
            Err(stale_epoch(format!("Receive a heartbeat from broker {broker_id} before registration"))),
        );
    };
    if let Err(error) = check_broker_epoch(image, broker_id, request.broker_epoch) {
        return (Vec::new(), Err(error));
    }
    let fenced_now = image.broker(broker_id).is_none_or(|broker| broker.fenced);
    if sessions.get(broker_id).is_none() {
        sessions.register(broker_id, fenced_now, now_ms);
    }
    let lowest_active_offset = sessions.lowest_active_offset();
    let Some(session) = sessions.sessions.get_mut(&broker_id) else {
        return (Vec::new(), Err(stale_epoch(format!("No broker registration found for broker id {broker_id}"))));
    };
    let (current, next) = next_state(image, session, lowest_active_offset, request, registration_offset);
    let mut records = Vec::new();
    if current != next {
        records = match next {
            BrokerState::Fenced | BrokerState::ShutdownNow => fence_broker(image, broker_id).0,
            BrokerState::Unfenced => unfence_broker(image, broker_id).0,
            BrokerState::ControlledShutdown => enter_controlled_shutdown(image, broker_id, request.broker_epoch),
        };
    }
    session.last_contact_ms = now_ms;
    session.metadata_offset = request.current_metadata_offset;
    session.fenced = next.fenced();
    if session.fenced {
        session.controlled_shutdown_offset = None;
    }
    let answer = HeartbeatAnswer {
        is_caught_up: request.current_metadata_offset >= registration_offset,
        is_fenced: next.fenced(),
        in_controlled_shutdown: next == BrokerState::ControlledShutdown,
        should_shut_down: next == BrokerState::ShutdownNow,
    };
    (records, Ok(answer))
}

/// `auto.leader.rebalance.enable`'s round, as Kafka's KRaft controller runs it: a
/// preferred election for each partition whose leader is not its first replica, at
/// most [`ELECTIONS_PER_BALANCE_MAX`] records; the flag says more may be waiting.
/// A partition changes only when its preferred replica is active and in the ISR (or
/// it has no leader and another ISR member can take over).
pub fn balance_partition_leaders(image: &MetadataImage) -> (Vec<MetadataRecord>, bool) {
    let acceptable = |replica: i32| is_active(image, replica);
    let mut records = Vec::new();
    for topic in image.topics() {
        for (partition_id, partition) in &topic.partitions {
            if records.len() >= ELECTIONS_PER_BALANCE_MAX {
                return (records, true);
            }
            if partition.preferred_leader() == Some(partition.leader) || partition.replicas.is_empty() {
                continue;
            }
            let change = PartitionChange::new(partition, topic.id, *partition_id, &acceptable)
                .election(Election::Preferred)
                .build();
            records.extend(change.map(MetadataRecord::PartitionChange));
        }
    }
    let more = records.len() >= ELECTIONS_PER_BALANCE_MAX;
    (records, more)
}
