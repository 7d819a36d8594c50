//! Incremental fetch sessions (KIP-227).
//!
//! A consumer that fetches the same partitions again and again opens a session with
//! a full fetch (session id 0, epoch 0); later requests (that id, the next epoch)
//! list only the partitions whose position changed and name the ones to forget, and
//! the answer lists only partitions with something new: records, a moved high
//! watermark, last stable offset or log start offset, or an error. Epoch -1 closes a
//! session (or, with id 0, asks for a full fetch without one).
//!
//! The cache is bounded by `max.incremental.fetch.session.cache.slots`; when it is
//! full, a new session takes the place of the least recently used one that has been
//! idle for a while, or is not created (the client then keeps sending full fetches).

use gregor_protocol::{ErrorCode, Uuid};
use std::collections::HashMap;
use std::sync::Mutex;

/// A session idle this long may be evicted for a new one.
const EVICTABLE_AFTER_IDLE_MS: i64 = 2 * 60 * 1000;
/// A session idle this long is dropped by the periodic sweep.
const EXPIRE_AFTER_IDLE_MS: i64 = 10 * 60 * 1000;

/// The key of one partition in a session: by name before v13, by id from v13.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionPartitionKey {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

/// What the session remembers of a partition: the client's position, and what the
/// last answer told it, so the next answer can leave out what has not changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPartition {
    pub key: SessionPartitionKey,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
    pub sent_high_watermark: i64,
    pub sent_last_stable_offset: i64,
    pub sent_log_start_offset: i64,
}

#[derive(Debug)]
struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    partitions: Vec<SessionPartition>,
    last_used_ms: i64,
}

/// What a request asks of the session layer.
#[derive(Debug)]
pub enum SessionRequest {
    /// Epoch -1 with id 0: a full fetch, no session.
    Sessionless,
    /// Epoch 0: a full fetch that opens a session (closing `close`, if not 0).
    Open { close: i32 },
    /// Epoch -1 with an id: close that session, then a full fetch without one.
    Close { session_id: i32 },
    /// An incremental fetch in session `session_id` at `epoch`.
    Incremental { session_id: i32, epoch: i32 },
}

impl SessionRequest {
    pub fn classify(session_id: i32, epoch: i32) -> Result<Self, ErrorCode> {
        match (session_id, epoch) {
            (0, -1) => Ok(SessionRequest::Sessionless),
            (close, 0) => Ok(SessionRequest::Open { close }),
            (0, _) => Err(ErrorCode::InvalidFetchSessionEpoch),
            (session_id, -1) => Ok(SessionRequest::Close { session_id }),
            (session_id, epoch) if epoch > 0 => Ok(SessionRequest::Incremental { session_id, epoch }),
            _ => Err(ErrorCode::InvalidFetchSessionEpoch),
        }
    }
}

/// Every open session of this node.
#[derive(Debug)]
pub struct FetchSessionCache {
    slots_max: usize,
    inner: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    sessions: HashMap<i32, Session>,
    next_id: i32,
}

impl FetchSessionCache {
    pub fn new(slots_max: i32) -> Self {
        FetchSessionCache {
            slots_max: usize::try_from(slots_max).unwrap_or(0),
            inner: Mutex::new(CacheState { sessions: HashMap::new(), next_id: 1 }),
        }
    }

    /// Opens a session holding `partitions`; returns its id, or 0 when there is no
    /// room (the client then fetches without a session).
    pub fn open(&self, partitions: Vec<SessionPartition>, now_ms: i64) -> i32 {
        let Ok(mut state) = self.inner.lock() else { return 0 };
        if self.slots_max == 0 {
            return 0;
        }
        if state.sessions.len() >= self.slots_max {
            let evictable = state
                .sessions
                .iter()
                .filter(|(_, session)| now_ms - session.last_used_ms >= EVICTABLE_AFTER_IDLE_MS)
                .min_by_key(|(_, session)| session.last_used_ms)
                .map(|(id, _)| *id);
            match evictable {
                Some(id) => {
                    state.sessions.remove(&id);
                }
                None => return 0,
            }
        }
        let mut id = state.next_id;
        while id == 0 || state.sessions.contains_key(&id) {
            id = id.wrapping_add(1).max(1);
        }
        state.next_id = id.wrapping_add(1).max(1);
        state.sessions.insert(id, Session { next_epoch: 1, partitions, last_used_ms: now_ms });
        id
    }

    pub fn close(&self, session_id: i32) {
        if let Ok(mut state) = self.inner.lock() {
            state.sessions.remove(&session_id);
        }
    }

    /// Applies an incremental request: checks the epoch, updates the positions of
    /// `updated`, drops `forgotten`, and returns every partition of the session to
    /// read, in the session's order.
    pub fn update(
        &self,
        session_id: i32,
        epoch: i32,
        updated: Vec<SessionPartition>,
        forgotten: &[SessionPartitionKey],
        now_ms: i64,
    ) -> Result<Vec<SessionPartition>, ErrorCode> {
        let Ok(mut state) = self.inner.lock() else { return Err(ErrorCode::FetchSessionIdNotFound) };
        let session = state.sessions.get_mut(&session_id).ok_or(ErrorCode::FetchSessionIdNotFound)?;
        if session.next_epoch != epoch {
            return Err(ErrorCode::InvalidFetchSessionEpoch);
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used_ms = now_ms;
        session.partitions.retain(|partition| !forgotten.contains(&partition.key));
        for update in updated {
            match session.partitions.iter_mut().find(|existing| existing.key == update.key) {
                Some(existing) => {
                    existing.fetch_offset = update.fetch_offset;
                    existing.partition_max_bytes = update.partition_max_bytes;
                    existing.current_leader_epoch = update.current_leader_epoch;
                    existing.last_fetched_epoch = update.last_fetched_epoch;
                }
                None => session.partitions.push(update),
            }
        }
        Ok(session.partitions.clone())
    }

    /// Records what the answer told the client, so the next incremental answer can
    /// leave out unchanged partitions, and moves the partitions that returned records
    /// to the back, so that one busy partition cannot starve the others of the
    /// response's size budget.
    pub fn record_sent(&self, session_id: i32, sent: &[SessionPartition], returned_records: &[SessionPartitionKey]) {
        let Ok(mut state) = self.inner.lock() else { return };
        let Some(session) = state.sessions.get_mut(&session_id) else { return };
        for partition in &mut session.partitions {
            if let Some(new) = sent.iter().find(|new| new.key == partition.key) {
                partition.sent_high_watermark = new.sent_high_watermark;
                partition.sent_last_stable_offset = new.sent_last_stable_offset;
                partition.sent_log_start_offset = new.sent_log_start_offset;
            }
        }
        if !returned_records.is_empty() {
            let (moved, mut kept): (Vec<_>, Vec<_>) =
                std::mem::take(&mut session.partitions).into_iter().partition(|p| returned_records.contains(&p.key));
            kept.extend(moved);
            session.partitions = kept;
        }
    }

    /// Drops sessions idle for longer than the expiry time.
    pub fn expire(&self, now_ms: i64) {
        if let Ok(mut state) = self.inner.lock() {
            state.sessions.retain(|_, session| now_ms - session.last_used_ms < EXPIRE_AFTER_IDLE_MS);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|state| state.sessions.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Epochs count up from 1 and wrap past i32::MAX back to 1, never to 0 or -1,
/// which mean "open" and "close".
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(topic: &str, index: i32, offset: i64) -> SessionPartition {
        SessionPartition {
            key: SessionPartitionKey { topic: topic.to_owned(), topic_id: Uuid::ZERO, partition: index },
            fetch_offset: offset,
            partition_max_bytes: 1024,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
            sent_high_watermark: -1,
            sent_last_stable_offset: -1,
            sent_log_start_offset: -1,
        }
    }

    #[test]
    fn classify_follows_kip_227() {
        assert!(matches!(SessionRequest::classify(0, -1), Ok(SessionRequest::Sessionless)));
        assert!(matches!(SessionRequest::classify(0, 0), Ok(SessionRequest::Open { close: 0 })));
        assert!(matches!(SessionRequest::classify(7, 0), Ok(SessionRequest::Open { close: 7 })));
        assert!(matches!(SessionRequest::classify(7, -1), Ok(SessionRequest::Close { session_id: 7 })));
        assert!(matches!(SessionRequest::classify(7, 3), Ok(SessionRequest::Incremental { session_id: 7, epoch: 3 })));
        assert_eq!(SessionRequest::classify(0, 5).err(), Some(ErrorCode::InvalidFetchSessionEpoch));
    }

    #[test]
    fn incremental_updates_check_epochs_and_forget() {
        let cache = FetchSessionCache::new(10);
        let id = cache.open(vec![partition("a", 0, 0), partition("a", 1, 0)], 0);
        assert_ne!(id, 0);
        assert_eq!(cache.update(id, 2, vec![], &[], 1), Err(ErrorCode::InvalidFetchSessionEpoch));
        let all = cache.update(id, 1, vec![partition("a", 1, 5)], &[], 1).expect("epoch 1");
        assert_eq!(all.iter().map(|p| p.fetch_offset).collect::<Vec<_>>(), vec![0, 5]);
        let forgotten = [partition("a", 0, 0).key];
        let all = cache.update(id, 2, vec![partition("b", 0, 9)], &forgotten, 2).expect("epoch 2");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].key.topic, "a");
        assert_eq!(all[1].key.topic, "b");
        assert_eq!(cache.update(99, 1, vec![], &[], 3), Err(ErrorCode::FetchSessionIdNotFound));
    }

    #[test]
    fn a_full_cache_evicts_only_idle_sessions() {
        let cache = FetchSessionCache::new(1);
        let first = cache.open(vec![partition("a", 0, 0)], 0);
        assert_ne!(first, 0);
        assert_eq!(cache.open(vec![partition("b", 0, 0)], 1000), 0, "busy session kept");
        let second = cache.open(vec![partition("b", 0, 0)], EVICTABLE_AFTER_IDLE_MS + 1);
        assert_ne!(second, 0);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn partitions_that_returned_records_go_last() {
        let cache = FetchSessionCache::new(10);
        let id = cache.open(vec![partition("a", 0, 0), partition("a", 1, 0), partition("a", 2, 0)], 0);
        cache.record_sent(id, &[], &[partition("a", 0, 0).key]);
        let order = cache.update(id, 1, vec![], &[], 1).expect("epoch 1");
        assert_eq!(order.iter().map(|p| p.key.partition).collect::<Vec<_>>(), vec![1, 2, 0]);
    }

    #[test]
    fn epochs_wrap_to_one() {
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(4), 5);
    }
}
