//! Where long-polling fetches wait. A waiting fetch registers one [`Waiter`] with
//! every partition it reads; an append to any of them wakes it. No timer polls:
//! the fetch sleeps until woken or until its `max_wait_ms` runs out.

use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The handle a waiting request sleeps on.
pub type Waiter = Arc<Notify>;

/// The waiters registered with one partition. Bounded by the number of requests
/// in flight, which the connection limit bounds.
#[derive(Debug, Default)]
pub struct WaitList {
    waiters: Mutex<Vec<Waiter>>,
}

impl WaitList {
    /// Registers `waiter` to be woken by the next append.
    pub fn register(&self, waiter: &Waiter) {
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.push(Arc::clone(waiter));
        }
    }

    /// Wakes every registered waiter and forgets them: each wakes once and
    /// registers again if it goes back to sleep. `notify_one` stores a permit, so a
    /// waiter woken just before it starts to sleep does not miss the append.
    pub fn wake_all(&self) {
        let woken = match self.waiters.lock() {
            Ok(mut waiters) if !waiters.is_empty() => std::mem::take(&mut *waiters),
            _ => return,
        };
        for waiter in woken {
            waiter.notify_one();
        }
    }

    /// Drops registrations of requests that have finished, so a partition nobody
    /// appends to does not keep them.
    pub fn forget(&self, waiter: &Waiter) {
        if let Ok(mut waiters) = self.waiters.lock() {
            waiters.retain(|registered| !Arc::ptr_eq(registered, waiter));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_append_before_the_sleep_is_not_lost() {
        let list = WaitList::default();
        let waiter: Waiter = Arc::new(Notify::new());
        list.register(&waiter);
        list.wake_all();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter.notified()).await.expect("woken");
    }

    #[test]
    fn forget_removes_only_that_waiter() {
        let list = WaitList::default();
        let first: Waiter = Arc::new(Notify::new());
        let second: Waiter = Arc::new(Notify::new());
        list.register(&first);
        list.register(&second);
        list.forget(&first);
        assert_eq!(list.waiters.lock().map(|waiters| waiters.len()).unwrap_or(0), 1);
    }
}
