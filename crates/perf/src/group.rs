//! `consume --group`: one member per consumer in a KIP-848 consumer group
//! (ConsumerGroupHeartbeat v0-v1). The coordinator assigns partitions; the
//! member adopts each new assignment at once, gives revoked partitions back to
//! the shared position table, and says so in its next heartbeat, sent right
//! away so a rebalance does not wait a heartbeat interval. Nothing is committed.

use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use gregor_protocol::messages::ConsumerGroupHeartbeatRequest;
use gregor_protocol::{ApiKey, ErrorCode, ResponseBody, Uuid};
use tokio::sync::watch;

use crate::batch::SplitMix64;
use crate::cluster;
use crate::conn::Connection;
use crate::consume::Shared;
use crate::error::{error_name, PerfError};

/// How long the coordinator lets a member take to give up revoked partitions.
const REBALANCE_TIMEOUT_MS: i32 = 30_000;
/// Heartbeats at least this often, whatever interval the coordinator asks
/// for: a new assignment then arrives within this, not within five seconds.
const HEARTBEAT_INTERVAL_MS_MAX: u64 = 500;
const RETRY_BACKOFF_MS: u64 = 100;
/// Retriable coordinator errors in a row after which the member gives up.
const CONSECUTIVE_FAILURES_MAX: u32 = 300;
/// The member epoch that leaves the group.
const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;

/// A member id in the form the Java client uses (a random UUID, base64 without padding).
fn new_member_id() -> String {
    let mut random = SplitMix64::new(SplitMix64::seed_from_clock());
    let bits = (u128::from(random.next_u64()) << 64) | u128::from(random.next_u64());
    Uuid::from_u128(bits).to_string()
}

/// The partitions of `topic_id` in an assignment, sorted.
fn partitions_of<'a>(topic_id: Uuid, assigned: impl IntoIterator<Item = (Uuid, &'a [i32])>) -> Vec<i32> {
    let mut partitions: Vec<i32> = assigned
        .into_iter()
        .filter(|(id, _)| *id == topic_id)
        .flat_map(|(_, partitions)| partitions.iter().copied())
        .collect();
    partitions.sort_unstable();
    partitions.dedup();
    partitions
}

async fn coordinator(shared: &Shared, group_id: &str) -> Result<Connection, PerfError> {
    let mut bootstrap = Connection::connect(&shared.args.bootstrap).await?;
    let address = cluster::find_group_coordinator(&mut bootstrap, group_id).await?;
    Connection::connect(&address).await
}

/// Keeps consumer `consumer` in the group until the run stops, publishing its
/// partitions on `assignment`; leaves the group at the end.
pub(crate) async fn membership(
    consumer: usize,
    group_id: String,
    shared: Arc<Shared>,
    assignment: watch::Sender<Vec<i32>>,
) -> Result<(), PerfError> {
    let topic_id = shared.topic.id;
    let mut connection: Option<Connection> = None;
    let mut member_id = String::new();
    let mut member_epoch = 0;
    let mut owned: Vec<i32> = Vec::new();
    let mut failures = 0u32;
    while !shared.is_stopping() {
        let current = match connection.as_mut() {
            Some(current) => current,
            None => match coordinator(&shared, &group_id).await {
                Ok(found) => connection.insert(found),
                Err(PerfError::Broker { code, .. }) if is_retriable(code) => {
                    failures = note_failure(failures, &group_id, code)?;
                    tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
                    continue;
                }
                Err(other) => return Err(other),
            },
        };
        let version = current.versions().pick(ApiKey::ConsumerGroupHeartbeat, 0, 1)?;
        // v1 members name themselves; v0 members get their id from the coordinator.
        if version >= 1 && member_id.is_empty() {
            member_id = new_member_id();
        }
        let joining = member_epoch == 0;
        let request = ConsumerGroupHeartbeatRequest {
            group_id: group_id.clone(),
            member_id: member_id.clone(),
            member_epoch,
            rebalance_timeout_ms: if joining { REBALANCE_TIMEOUT_MS } else { -1 },
            subscribed_topic_names: joining.then(|| vec![shared.topic.name.clone()]),
            topic_partitions: Some(if owned.is_empty() {
                Vec::new()
            } else {
                vec![TopicPartitions { topic_id, partitions: owned.clone(), ..Default::default() }]
            }),
            ..Default::default()
        };
        let ResponseBody::ConsumerGroupHeartbeat(answer) = current.call(request, version).await? else {
            return Err(PerfError::protocol(current.address(), "ConsumerGroupHeartbeat answered with another API"));
        };
        let code = answer.error_code;
        if code != ErrorCode::None.code() {
            let fenced = [ErrorCode::FencedMemberEpoch.code(), ErrorCode::UnknownMemberId.code()];
            if fenced.contains(&code) {
                // Give everything up and join again, as a fenced member must.
                shared.release(consumer, &owned);
                owned.clear();
                assignment.send_replace(Vec::new());
                member_epoch = 0;
                if version == 0 {
                    member_id.clear();
                }
            } else if is_retriable(code) {
                connection = None;
            } else {
                return Err(PerfError::broker(format!("ConsumerGroupHeartbeat for group {group_id}"), code));
            }
            failures = note_failure(failures, &group_id, code)?;
            tokio::time::sleep(Duration::from_millis(RETRY_BACKOFF_MS)).await;
            continue;
        }
        failures = 0;
        if let Some(id) = answer.member_id.filter(|id| !id.is_empty()) {
            member_id = id;
        }
        member_epoch = answer.member_epoch;
        let mut changed = false;
        if let Some(given) = answer.assignment {
            let assigned = given.topic_partitions.iter().map(|entry| (entry.topic_id, entry.partitions.as_slice()));
            let partitions = partitions_of(topic_id, assigned);
            let revoked: Vec<i32> = owned.iter().copied().filter(|p| !partitions.contains(p)).collect();
            shared.release(consumer, &revoked);
            changed = partitions != owned;
            owned = partitions;
            assignment.send_replace(owned.clone());
        }
        if !changed {
            let interval_ms =
                u64::try_from(answer.heartbeat_interval_ms).unwrap_or_default().min(HEARTBEAT_INTERVAL_MS_MAX);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(interval_ms)) => {}
                _ = shared.stopped() => {}
            }
        }
    }
    if let Some(current) = connection.as_mut().filter(|_| member_epoch > 0) {
        leave(current, &group_id, &member_id).await;
    }
    Ok(())
}

fn is_retriable(code: i16) -> bool {
    ErrorCode::from_code(code).is_some_and(ErrorCode::is_retriable)
}

/// Group hiccups (a coordinator loading or moving) are not errors of the data
/// path, so they are noted on stderr rather than counted; too many in a row end the run.
fn note_failure(failures: u32, group_id: &str, code: i16) -> Result<u32, PerfError> {
    if failures == 0 {
        eprintln!("note: group {group_id}: {}, retrying", error_name(code));
    }
    if failures + 1 >= CONSECUTIVE_FAILURES_MAX {
        return Err(PerfError::broker(format!("joining group {group_id}"), code));
    }
    Ok(failures + 1)
}

/// Leaves the group so the coordinator need not wait for the session to expire.
async fn leave(connection: &mut Connection, group_id: &str, member_id: &str) {
    let Ok(version) = connection.versions().pick(ApiKey::ConsumerGroupHeartbeat, 0, 1) else { return };
    let request = ConsumerGroupHeartbeatRequest {
        group_id: group_id.to_owned(),
        member_id: member_id.to_owned(),
        member_epoch: LEAVE_GROUP_MEMBER_EPOCH,
        ..Default::default()
    };
    // The run is over either way: a failed leave only delays the group's cleanup.
    if let Err(error) = connection.call(request, version).await {
        eprintln!("note: leaving group {group_id}: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_keep_only_the_topic() {
        let ours = Uuid::from_u128(1);
        let assigned = [(ours, &[3, 1][..]), (Uuid::from_u128(2), &[0][..]), (ours, &[1, 2][..])];
        assert_eq!(partitions_of(ours, assigned), vec![1, 2, 3]);
    }

    #[test]
    fn member_ids_are_uuids_in_base64() {
        let id = new_member_id();
        assert_eq!(id.len(), 22);
        assert_ne!(id, new_member_id());
    }
}
