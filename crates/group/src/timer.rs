//! Deadlines as data: the shard schedules keyed timers, the caller asks when the next
//! one is due and hands the current time back in. Scheduling a key again replaces its
//! deadline, so a heartbeat simply reschedules the member's session timer.

use std::collections::{BTreeSet, HashMap};

/// What a timer is for. Expiry is dispatched on this.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimerKey {
    /// A classic group's join phase ends (rebalance timeout, or the initial delay of
    /// `group.initial.rebalance.delay.ms`).
    ClassicJoin { group: String },
    /// A classic group waits for the leader's SyncGroup.
    ClassicSync { group: String },
    /// A classic member's session (heartbeat) deadline.
    ClassicSession { group: String, member: String },
    /// A classic member that joined with an empty id (v4+) must come back with its new
    /// id before this deadline.
    ClassicPendingMember { group: String, member: String },
    /// A KIP-848 member's session deadline.
    ConsumerSession { group: String, member: String },
    /// A KIP-848 member must revoke partitions before this deadline.
    ConsumerRebalance { group: String, member: String },
}

/// The set of pending deadlines.
#[derive(Debug, Default)]
pub struct Timers {
    by_key: HashMap<TimerKey, i64>,
    by_deadline: BTreeSet<(i64, TimerKey)>,
}

impl Timers {
    /// Schedules (or moves) `key` to fire at `deadline_ms`.
    pub fn schedule(&mut self, key: TimerKey, deadline_ms: i64) {
        if let Some(previous) = self.by_key.insert(key.clone(), deadline_ms) {
            self.by_deadline.remove(&(previous, key.clone()));
        }
        self.by_deadline.insert((deadline_ms, key));
    }

    /// Cancels `key`; a no-op when it is not scheduled.
    pub fn cancel(&mut self, key: &TimerKey) {
        if let Some(deadline) = self.by_key.remove(key) {
            self.by_deadline.remove(&(deadline, key.clone()));
        }
    }

    /// Whether `key` is scheduled, and when.
    pub fn deadline_of(&self, key: &TimerKey) -> Option<i64> {
        self.by_key.get(key).copied()
    }

    /// The earliest deadline.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.by_deadline.first().map(|(deadline, _)| *deadline)
    }

    /// Removes and returns every timer due at `now_ms`, earliest first.
    pub fn take_expired(&mut self, now_ms: i64) -> Vec<TimerKey> {
        let mut expired = Vec::new();
        while let Some((deadline, _)) = self.by_deadline.first() {
            if *deadline > now_ms {
                break;
            }
            if let Some((_, key)) = self.by_deadline.pop_first() {
                self.by_key.remove(&key);
                expired.push(key);
            }
        }
        expired
    }

    /// Cancels every timer of one group (the group was deleted or unloaded).
    pub fn cancel_group(&mut self, group_id: &str) {
        let keys: Vec<TimerKey> = self.by_key.keys().filter(|key| key.group() == group_id).cloned().collect();
        for key in keys {
            self.cancel(&key);
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

impl TimerKey {
    pub fn group(&self) -> &str {
        match self {
            TimerKey::ClassicJoin { group }
            | TimerKey::ClassicSync { group }
            | TimerKey::ClassicSession { group, .. }
            | TimerKey::ClassicPendingMember { group, .. }
            | TimerKey::ConsumerSession { group, .. }
            | TimerKey::ConsumerRebalance { group, .. } => group,
        }
    }
}
