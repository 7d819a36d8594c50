//! ConsumerGroupHeartbeat: join (epoch 0), heartbeat (epoch > 0), leave (-1, and -2
//! for a static member leaving temporarily), plus the session and rebalance timers.

use super::group::{compile_regex, ConsumerGroup, ConsumerMember};
use super::reconcile::Reconciler;
use super::target::{compute_subscription_metadata, compute_target_assignment, members_after};
use super::{records, MemberState, LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH};
use crate::assignor::{Assignment, AssignorKind};
use crate::classic::ClassicGroup;
use crate::record::CoordinatorRecord;
use crate::shard::{Effects, Group, GroupCoordinatorShard, RequestContext, TopicsView};
use crate::timer::TimerKey;
use gregor_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use gregor_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as ResponseAssignment, ConsumerGroupHeartbeatResponse, TopicPartitions as ResponseTopicPartitions,
};
use gregor_protocol::messages::group_metadata_key::GroupMetadataKey;
use gregor_protocol::{ErrorCode, Uuid};

/// An error answer: the code and Kafka's message.
#[derive(Debug)]
pub(crate) struct HeartbeatError {
    pub code: ErrorCode,
    pub message: Option<String>,
}

fn err(code: ErrorCode, message: impl Into<String>) -> HeartbeatError {
    HeartbeatError { code, message: Some(message.into()) }
}

/// The in-memory deadline changes a handler decided on, applied when it succeeds.
enum TimerOp {
    Schedule(TimerKey, i64),
    Cancel(TimerKey),
}

/// The outcome of a successful handler run.
struct Outcome {
    records: Vec<CoordinatorRecord>,
    response: ConsumerGroupHeartbeatResponse,
    timers: Vec<TimerOp>,
}

/// Whether a classic group may be replaced by a consumer group: Kafka converts only
/// empty classic groups when the upgrade policy is off.
fn classic_group_is_empty(group: &ClassicGroup) -> bool {
    group.is_empty()
}

fn session_key(group: &str, member: &str) -> TimerKey {
    TimerKey::ConsumerSession { group: group.to_string(), member: member.to_string() }
}

fn rebalance_key(group: &str, member: &str) -> TimerKey {
    TimerKey::ConsumerRebalance { group: group.to_string(), member: member.to_string() }
}

fn is_blank(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|value| value.trim().is_empty())
}

/// A member id for a v0 join without one: derived from the request so the shard stays
/// deterministic, rendered like Kafka's `Uuid.toString()`.
fn generate_member_id(group: &ConsumerGroup, ctx: &RequestContext, salt: u64) -> String {
    let mut state: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |bytes: &[u8]| {
        for byte in bytes {
            state ^= u64::from(*byte);
            state = state.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    mix(group.group_id.as_bytes());
    mix(ctx.client_id.as_bytes());
    mix(ctx.client_host.as_bytes());
    mix(&ctx.now_ms.to_be_bytes());
    mix(&ctx.reply.to_be_bytes());
    mix(&salt.to_be_bytes());
    let splitmix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let high = splitmix(state);
    let low = splitmix(high ^ state.rotate_left(17));
    Uuid::from_u128((u128::from(high) << 64) | u128::from(low)).to_string()
}

/// Whether `owned` is a subset of `assigned` (a member may heartbeat with its previous
/// epoch if the response that bumped it was lost).
fn is_subset(owned: Option<&[(Uuid, Vec<i32>)]>, assigned: &Assignment) -> bool {
    let Some(owned) = owned else { return false };
    owned.iter().all(|(topic, partitions)| {
        partitions.is_empty() || assigned.get(topic).is_some_and(|set| partitions.iter().all(|p| set.contains(p)))
    })
}

fn check_member_epoch(
    member: &ConsumerMember,
    received: i32,
    owned: Option<&[(Uuid, Vec<i32>)]>,
) -> Result<(), HeartbeatError> {
    if received > member.member_epoch {
        return Err(err(
            ErrorCode::FencedMemberEpoch,
            format!(
                "The consumer group member has a greater member epoch ({received}) than the one known by the group \
                 coordinator ({}). The member must abandon all its partitions and rejoin.",
                member.member_epoch
            ),
        ));
    }
    if received < member.member_epoch
        && (received != member.previous_member_epoch || !is_subset(owned, &member.assigned))
    {
        return Err(err(
            ErrorCode::FencedMemberEpoch,
            format!(
                "The consumer group member has a smaller member epoch ({received}) than the one known by the group \
                 coordinator ({}). The member must abandon all its partitions and rejoin.",
                member.member_epoch
            ),
        ));
    }
    Ok(())
}

fn response_assignment(member: &ConsumerMember) -> ResponseAssignment {
    ResponseAssignment {
        topic_partitions: member
            .assigned
            .iter()
            .map(|(topic, partitions)| ResponseTopicPartitions {
                topic_id: *topic,
                partitions: partitions.iter().copied().collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

impl GroupCoordinatorShard {
    /// ConsumerGroupHeartbeat (v0 and v1). The answer goes to `ctx.reply` once the
    /// records are durable.
    pub fn consumer_group_heartbeat(
        &mut self,
        ctx: &RequestContext,
        request: ConsumerGroupHeartbeatRequest,
        topics: &dyn TopicsView,
    ) -> Effects {
        let mut effects = Effects::default();
        match self.consumer_heartbeat_outcome(ctx, &request, topics) {
            Ok(outcome) => {
                for op in outcome.timers {
                    match op {
                        TimerOp::Schedule(key, deadline) => self.timers.schedule(key, deadline),
                        TimerOp::Cancel(key) => self.timers.cancel(&key),
                    }
                }
                effects.records = outcome.records;
                effects.reply(ctx.reply, outcome.response);
            }
            Err(error) => effects.reply(
                ctx.reply,
                ConsumerGroupHeartbeatResponse {
                    error_code: error.code.code(),
                    error_message: error.message,
                    ..Default::default()
                },
            ),
        }
        effects
    }

    fn supported_assignors(&self) -> Vec<AssignorKind> {
        self.config.consumer_assignors.iter().filter_map(|name| AssignorKind::from_name(name)).collect()
    }

    fn default_assignor(&self) -> AssignorKind {
        self.supported_assignors().first().copied().unwrap_or(AssignorKind::Uniform)
    }

    /// Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid.
    fn validate_heartbeat(
        &self,
        ctx: &RequestContext,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Result<(), HeartbeatError> {
        let epoch = request.member_epoch;
        if (ctx.api_version >= 1
            || epoch > 0
            || epoch == LEAVE_GROUP_MEMBER_EPOCH
            || epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH)
            && request.member_id.trim().is_empty()
        {
            return Err(err(ErrorCode::InvalidRequest, "MemberId can't be empty."));
        }
        if request.group_id.trim().is_empty() {
            return Err(err(ErrorCode::InvalidRequest, "GroupId can't be empty."));
        }
        if is_blank(&request.instance_id) {
            return Err(err(ErrorCode::InvalidRequest, "InstanceId can't be empty."));
        }
        if is_blank(&request.rack_id) {
            return Err(err(ErrorCode::InvalidRequest, "RackId can't be empty."));
        }
        if epoch == 0 {
            if request.rebalance_timeout_ms == -1 {
                return Err(err(ErrorCode::InvalidRequest, "RebalanceTimeoutMs must be provided in first request."));
            }
            if !matches!(&request.topic_partitions, Some(owned) if owned.is_empty()) {
                return Err(err(ErrorCode::InvalidRequest, "TopicPartitions must be empty when (re-)joining."));
            }
            if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                ));
            }
        } else if epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            if request.instance_id.is_none() {
                return Err(err(ErrorCode::InvalidRequest, "InstanceId can't be null."));
            }
        } else if epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return Err(err(ErrorCode::InvalidRequest, "MemberEpoch is invalid."));
        }
        if let Some(regex) = &request.subscribed_topic_regex {
            if let Err(error) = compile_regex(regex) {
                return Err(err(
                    ErrorCode::InvalidRegularExpression,
                    format!("SubscribedTopicRegex `{regex}` is not a valid regular expression: {error}."),
                ));
            }
        }
        if let Some(name) = &request.server_assignor {
            let supported = self.supported_assignors();
            if !AssignorKind::from_name(name).is_some_and(|kind| supported.contains(&kind)) {
                let names: Vec<&str> = supported.iter().map(|kind| kind.name()).collect();
                return Err(err(
                    ErrorCode::UnsupportedAssignor,
                    format!("ServerAssignor {name} is not supported. Supported assignors: {}.", names.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn consumer_heartbeat_outcome(
        &self,
        ctx: &RequestContext,
        request: &ConsumerGroupHeartbeatRequest,
        topics: &dyn TopicsView,
    ) -> Result<Outcome, HeartbeatError> {
        if !self.config.consumer_enabled {
            return Err(err(ErrorCode::UnsupportedVersion, "The consumer group protocol is not enabled."));
        }
        self.validate_heartbeat(ctx, request)?;
        if request.member_epoch == LEAVE_GROUP_MEMBER_EPOCH || request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return self.consumer_leave(request, topics);
        }
        let group_id = request.group_id.as_str();
        let joining = request.member_epoch == 0;
        let mut records = Vec::new();
        let fresh;
        let group: &ConsumerGroup = match self.groups.get(group_id) {
            Some(Group::Consumer(group)) => group,
            None if joining => {
                fresh = ConsumerGroup::new(group_id);
                &fresh
            }
            None => return Err(err(ErrorCode::GroupIdNotFound, format!("Consumer group {group_id} not found."))),
            Some(Group::Classic(classic)) if joining && classic_group_is_empty(classic) => {
                // The empty classic group is deleted and a consumer group takes the id.
                records.push(CoordinatorRecord::GroupMetadata {
                    key: GroupMetadataKey { group: group_id.to_string(), ..Default::default() },
                    value: None,
                });
                fresh = ConsumerGroup::new(group_id);
                &fresh
            }
            Some(Group::Classic(_)) => {
                return Err(err(ErrorCode::GroupIdNotFound, format!("Group {group_id} is not a consumer group.")))
            }
        };
        let max_size = usize::try_from(self.config.consumer_max_size.max(0)).unwrap_or(usize::MAX);
        if group.member_count() >= max_size && (request.member_id.is_empty() || !group.has_member(&request.member_id)) {
            return Err(err(
                ErrorCode::GroupMaxSizeReached,
                format!("The consumer group has reached its maximum capacity of {max_size} members."),
            ));
        }

        let mut member_id = request.member_id.clone();
        let mut salt = 0;
        while member_id.is_empty() || (request.member_id.is_empty() && group.has_member(&member_id)) {
            member_id = generate_member_id(group, ctx, salt);
            salt += 1;
        }
        let owned: Option<Vec<(Uuid, Vec<i32>)>> = request
            .topic_partitions
            .as_ref()
            .map(|owned| owned.iter().map(|tp| (tp.topic_id, tp.partitions.clone())).collect());
        let owned = owned.as_deref();

        // The member as it is now, and the static member it replaces, if any.
        let mut replaced: Option<&ConsumerMember> = None;
        let member: ConsumerMember = match &request.instance_id {
            None => match group.members.get(&member_id) {
                Some(member) => {
                    // A rejoin (epoch 0) of a known member is accepted: the client has
                    // dropped its partitions (it reports none) and gets its assignment
                    // again, instead of being fenced over and over.
                    if !joining {
                        check_member_epoch(member, request.member_epoch, owned)?;
                    }
                    member.clone()
                }
                None if joining => ConsumerMember::new(&member_id),
                None => {
                    return Err(err(
                        ErrorCode::UnknownMemberId,
                        format!("Member {member_id} is not a member of group {group_id}."),
                    ))
                }
            },
            Some(instance_id) => {
                let existing = group.static_member(instance_id);
                if joining {
                    match existing {
                        None => {
                            group.members.get(&member_id).cloned().unwrap_or_else(|| ConsumerMember::new(&member_id))
                        }
                        // As in Kafka, a (re)join with an instance id in use is refused
                        // unless its member left temporarily (epoch -2), even under
                        // the same member id; then the member is replaced.
                        Some(existing) => {
                            if existing.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                                return Err(err(
                                    ErrorCode::UnreleasedInstanceId,
                                    format!(
                                        "Static member {member_id} with instance id {instance_id} cannot join the group \
                                         because the instance id is owned by {} member.",
                                        existing.member_id
                                    ),
                                ));
                            }
                            // The new member takes over the old one's assignment.
                            let mut copy = existing.clone();
                            copy.member_id = member_id.clone();
                            copy.member_epoch = 0;
                            copy.previous_member_epoch = 0;
                            let old_target = group.target.get(&existing.member_id).cloned().unwrap_or_default();
                            records.push(records::current_assignment_tombstone(group_id, &existing.member_id));
                            records.push(records::target_member_tombstone(group_id, &existing.member_id));
                            records.push(records::member_metadata_tombstone(group_id, &existing.member_id));
                            records.push(records::member_metadata(group_id, &copy));
                            records.push(records::target_member(group_id, &member_id, &old_target));
                            records.push(records::current_assignment(group_id, &copy));
                            replaced = Some(existing);
                            copy
                        }
                    }
                } else {
                    let Some(existing) = existing else {
                        return Err(err(ErrorCode::UnknownMemberId, format!("Instance id {instance_id} is unknown.")));
                    };
                    if existing.member_id != member_id {
                        return Err(err(
                            ErrorCode::FencedInstanceId,
                            format!(
                                "Static member {member_id} with instance id {instance_id} was fenced by member {}.",
                                existing.member_id
                            ),
                        ));
                    }
                    check_member_epoch(existing, request.member_epoch, owned)?;
                    existing.clone()
                }
            }
        };

        // 1. The member's subscription.
        let mut updated = member.clone();
        if request.instance_id.is_some() {
            updated.instance_id = request.instance_id.clone();
        }
        if request.rack_id.is_some() {
            updated.rack_id = request.rack_id.clone();
        }
        if request.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if let Some(name) = &request.server_assignor {
            updated.server_assignor =
                Some(AssignorKind::from_name(name).map(|kind| kind.name().to_string()).unwrap_or_else(|| name.clone()));
        }
        if let Some(names) = &request.subscribed_topic_names {
            updated.subscribed_topic_names = names.clone();
        }
        if let Some(regex) = &request.subscribed_topic_regex {
            // An empty regex means no regex subscription.
            updated.subscribed_topic_regex = if regex.is_empty() { None } else { Some(regex.clone()) };
        }
        updated.client_id = ctx.client_id.clone();
        updated.client_host = ctx.client_host.clone();

        let is_new = !group.has_member(&member_id) && replaced.is_none();
        let mut bump = false;
        if is_new || updated.metadata_differs(&member) {
            records.push(records::member_metadata(group_id, &updated));
            bump = updated.subscribed_topic_names != member.subscribed_topic_names
                || updated.subscribed_topic_regex != member.subscribed_topic_regex;
        }

        // A regex is resolved asynchronously, as in Kafka: the heartbeat that brings a
        // regex no other member of the group holds is answered as if the member had no
        // regex (its literal topics first), and the regex's topics join the target from
        // the group's next heartbeat on, once the member's record holds the regex.
        // After that the subscribed topics are re-resolved on every heartbeat, so new
        // topics matching a regex and partition count changes are noticed within a
        // heartbeat interval.
        let regex_pending = updated.subscribed_topic_regex.is_some()
            && updated.subscribed_topic_regex != member.subscribed_topic_regex
            && !group.members.values().any(|other| {
                other.member_id != member_id && other.subscribed_topic_regex == updated.subscribed_topic_regex
            });
        let mut effective = updated.clone();
        if regex_pending {
            effective.subscribed_topic_regex = None;
        }
        let removed = replaced.map(|old| old.member_id.as_str());
        let members = members_after(group, Some(&effective), removed);
        let metadata = compute_subscription_metadata(members.values().copied(), topics);
        if metadata != group.subscription_metadata {
            records.push(records::partition_metadata(group_id, &metadata));
            bump = true;
        }
        let mut group_epoch = group.group_epoch();
        if bump {
            group_epoch += 1;
            records.push(records::group_epoch(group_id, group_epoch));
        }

        // 2. The target assignment, recomputed when the group epoch moved past it.
        let (target_epoch, target) = if group_epoch > group.assignment_epoch() {
            let mut preferred =
                members.values().filter_map(|member| member.server_assignor.clone()).collect::<Vec<_>>();
            preferred.sort();
            let default = self.default_assignor();
            let assignor = preferred_assignor(&preferred).unwrap_or(default);
            let targets = compute_target_assignment(
                group,
                group_epoch,
                &members,
                &metadata,
                assignor,
                replaced.map(|old| (member_id.as_str(), old.member_id.as_str())),
                topics,
                &mut records,
            );
            (group_epoch, targets.get(&member_id).cloned().unwrap_or_default())
        } else {
            let target = group
                .target
                .get(&member_id)
                .or_else(|| replaced.and_then(|old| group.target.get(&old.member_id)))
                .cloned()
                .unwrap_or_default();
            (group.assignment_epoch(), target)
        };

        // 3. Reconciliation towards the target.
        let mut timers = Vec::new();
        let mut reconciled = updated.clone();
        if !updated.is_reconciled_to(target_epoch) {
            let epochs = |topic: Uuid, partition: i32| group.current_partition_epoch(topic, partition);
            let next = Reconciler {
                member: &updated,
                target_epoch,
                target: &target,
                partition_epoch: &epochs,
                owned,
            }
            .build()
            .map_err(|_| {
                err(
                    ErrorCode::FencedMemberEpoch,
                    "The consumer group member is in a unknown state. The member must abandon all its partitions and rejoin.",
                )
            })?;
            if next.assignment_differs(&updated) || is_new {
                records.push(records::current_assignment(group_id, &next));
                if next.state == MemberState::UnrevokedPartitions {
                    timers.push(TimerOp::Schedule(
                        rebalance_key(group_id, &member_id),
                        ctx.now_ms + i64::from(next.rebalance_timeout_ms.max(0)),
                    ));
                } else {
                    timers.push(TimerOp::Cancel(rebalance_key(group_id, &member_id)));
                }
            }
            reconciled = next;
        } else if is_new {
            records.push(records::current_assignment(group_id, &updated));
        }
        timers.push(TimerOp::Schedule(
            session_key(group_id, &member_id),
            ctx.now_ms + i64::from(self.config.consumer_session_timeout_ms_of(group_id)),
        ));

        // The assignment is sent on a full request (join, or every field a client sends
        // after an error) and whenever it changed.
        let full_request = joining
            || (request.rebalance_timeout_ms != -1
                && (request.subscribed_topic_names.is_some() || request.subscribed_topic_regex.is_some())
                && request.topic_partitions.is_some());
        let response = ConsumerGroupHeartbeatResponse {
            member_id: Some(member_id.clone()),
            member_epoch: reconciled.member_epoch,
            heartbeat_interval_ms: self.config.consumer_heartbeat_interval_ms_of(group_id),
            assignment: (full_request || reconciled.assigned != member.assigned)
                .then(|| response_assignment(&reconciled)),
            ..Default::default()
        };
        Ok(Outcome { records, response, timers })
    }

    /// A member leaves (epoch -1), or a static member leaves temporarily (epoch -2).
    fn consumer_leave(
        &self,
        request: &ConsumerGroupHeartbeatRequest,
        topics: &dyn TopicsView,
    ) -> Result<Outcome, HeartbeatError> {
        let group_id = request.group_id.as_str();
        let group = match self.groups.get(group_id) {
            Some(Group::Consumer(group)) => group,
            Some(Group::Classic(_)) => {
                return Err(err(ErrorCode::GroupIdNotFound, format!("Group {group_id} is not a consumer group.")))
            }
            None => return Err(err(ErrorCode::GroupIdNotFound, format!("Group {group_id} not found."))),
        };
        let member_id = request.member_id.as_str();
        let response = ConsumerGroupHeartbeatResponse {
            member_id: Some(member_id.to_string()),
            member_epoch: request.member_epoch,
            ..Default::default()
        };
        let member = match &request.instance_id {
            None => group.members.get(member_id).ok_or_else(|| {
                err(ErrorCode::UnknownMemberId, format!("Member {member_id} is not a member of group {group_id}."))
            })?,
            Some(instance_id) => {
                let member = group
                    .static_member(instance_id)
                    .ok_or_else(|| err(ErrorCode::UnknownMemberId, format!("Instance id {instance_id} is unknown.")))?;
                if member.member_id != member_id {
                    return Err(err(
                        ErrorCode::FencedInstanceId,
                        format!(
                            "Static member {member_id} with instance id {instance_id} was fenced by member {}.",
                            member.member_id
                        ),
                    ));
                }
                if request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                    // It keeps its partitions until its session expires or it comes back.
                    let mut leaving = member.clone();
                    leaving.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                    leaving.pending_revocation.clear();
                    return Ok(Outcome {
                        records: vec![records::current_assignment(group_id, &leaving)],
                        response: ConsumerGroupHeartbeatResponse {
                            member_epoch: LEAVE_GROUP_STATIC_MEMBER_EPOCH,
                            ..response
                        },
                        timers: vec![TimerOp::Cancel(rebalance_key(group_id, member_id))],
                    });
                }
                member
            }
        };
        let (records, timers) = fence_member(group, member, topics);
        Ok(Outcome { records, response, timers })
    }

    /// A session or rebalance deadline passed.
    pub(crate) fn consumer_timer(&mut self, key: TimerKey, _now_ms: i64, effects: &mut Effects) {
        let (group_id, member_id, rebalance) = match &key {
            TimerKey::ConsumerSession { group, member } => (group, member, false),
            TimerKey::ConsumerRebalance { group, member } => (group, member, true),
            _ => return,
        };
        let Some(Group::Consumer(group)) = self.groups.get(group_id) else { return };
        let Some(member) = group.members.get(member_id) else { return };
        // A rebalance deadline only matters while the member still has to revoke.
        if rebalance && member.state != MemberState::UnrevokedPartitions {
            return;
        }
        let (records, timers) = fence_member(group, member, group);
        effects.records.extend(records);
        for op in timers {
            if let TimerOp::Cancel(key) = op {
                self.timers.cancel(&key);
            }
        }
    }
}

/// The most requested assignor among the members' preferences (sorted names).
fn preferred_assignor(names: &[String]) -> Option<AssignorKind> {
    let mut best: Option<(&String, usize)> = None;
    let mut index = 0;
    while index < names.len() {
        let name = &names[index];
        let count = names[index..].iter().take_while(|other| *other == name).count();
        if !matches!(best, Some((_, best_count)) if best_count >= count) {
            best = Some((name, count));
        }
        index += count;
    }
    best.and_then(|(name, _)| AssignorKind::from_name(name))
}

/// A view of the topics a group last recorded (used when a timer fences a member).
impl TopicsView for ConsumerGroup {
    fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.subscription_metadata.get(name).map(|topic| topic.id)
    }
    fn topic_name(&self, id: Uuid) -> Option<String> {
        self.subscription_metadata.values().find(|topic| topic.id == id).map(|topic| topic.name.clone())
    }
    fn partition_count(&self, name: &str) -> Option<i32> {
        self.subscription_metadata.get(name).map(|topic| topic.partitions)
    }
    fn topic_names(&self) -> Vec<String> {
        self.subscription_metadata.keys().cloned().collect()
    }
}

/// Kafka's consumerGroupFenceMember: tombstones for the member, the subscription
/// metadata without it, and a group epoch bump (the target is recomputed by the next
/// heartbeat of any member).
fn fence_member(
    group: &ConsumerGroup,
    member: &ConsumerMember,
    topics: &dyn TopicsView,
) -> (Vec<CoordinatorRecord>, Vec<TimerOp>) {
    let group_id = group.group_id();
    let mut records = vec![
        records::current_assignment_tombstone(group_id, &member.member_id),
        records::target_member_tombstone(group_id, &member.member_id),
        records::member_metadata_tombstone(group_id, &member.member_id),
    ];
    let remaining = members_after(group, None, Some(&member.member_id));
    let metadata = compute_subscription_metadata(remaining.values().copied(), topics);
    if metadata != group.subscription_metadata {
        records.push(records::partition_metadata(group_id, &metadata));
    }
    records.push(records::group_epoch(group_id, group.group_epoch() + 1));
    let timers = vec![
        TimerOp::Cancel(session_key(group_id, &member.member_id)),
        TimerOp::Cancel(rebalance_key(group_id, &member.member_id)),
    ];
    (records, timers)
}
