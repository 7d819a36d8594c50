//! What the listeners enforce when they accept, as Kafka's connection quotas do:
//! `max.connections` (accepting waits for a free slot, against the limit the
//! dynamic config has now), `max.connections.per.ip` with its per-host overrides (a connection beyond the
//! limit is accepted, then closed at once), `max.connection.creation.rate` (accepting
//! waits), and a backoff when accept itself fails (out of file descriptors).
//!
//! These run once per connection, never per request.

use gregor_config::BrokerConfig;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often a listener waiting at `max.connections` looks again: a raised limit
/// frees no slot, so nothing else would wake it.
const CONNECTION_LIMIT_RECHECK: Duration = Duration::from_secs(1);

/// The open client connections, counted against `max.connections`.
#[derive(Debug, Default)]
pub struct ConnectionSlots {
    open: AtomicUsize,
    freed: Notify,
}

/// One open connection's slot; dropping it frees the slot.
pub struct ConnectionSlot(Arc<ConnectionSlots>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_waiters();
    }
}

impl ConnectionSlots {
    fn try_take(self: &Arc<Self>, limit: usize) -> Option<ConnectionSlot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < limit).then_some(open + 1))
            .ok()
            .map(|_| ConnectionSlot(Arc::clone(self)))
    }

    /// Waits for a slot under `limit()`, read again on every try because
    /// `max.connections` may change while the broker runs.
    pub async fn take(self: &Arc<Self>, limit: impl Fn() -> usize) -> ConnectionSlot {
        loop {
            // Registered before the check, so a slot freed in between is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_take(limit()) {
                return slot;
            }
            tokio::select! {
                () = freed => {}
                () = tokio::time::sleep(CONNECTION_LIMIT_RECHECK) => {}
            }
        }
    }
}

/// The broker's connection counts and creation-rate bucket, shared by every listener.
#[derive(Default)]
pub struct ConnectionQuotas {
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    overrides: Mutex<ResolvedOverrides>,
    creation: Mutex<CreationBucket>,
}

/// `max.connections.per.ip.overrides` with host names resolved, for the text it came from.
#[derive(Default)]
struct ResolvedOverrides {
    source: BTreeMap<String, i32>,
    by_ip: HashMap<IpAddr, i32>,
}

/// A token bucket of connection creations: `rate` a second, bursts of up to one
/// second's worth, so that M connections take at least (M - rate) / rate seconds.
#[derive(Default)]
struct CreationBucket {
    rate: i32,
    tokens: f64,
    refilled: Option<Instant>,
}

/// One admitted connection's place in its address's count; dropping it frees the place.
pub struct IpSlot {
    quotas: Arc<ConnectionQuotas>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut counts = self.quotas.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl ConnectionQuotas {
    /// How long to wait before accepting the next connection under
    /// `max.connection.creation.rate`; the connection's token is taken now.
    pub fn creation_delay(&self, config: &BrokerConfig) -> Duration {
        let rate = config.max_connection_creation_rate;
        if rate == i32::MAX {
            return Duration::ZERO;
        }
        let mut bucket = self.creation.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if bucket.rate != rate || bucket.refilled.is_none() {
            *bucket = CreationBucket { rate, tokens: f64::from(rate), refilled: Some(now) };
        }
        if rate <= 0 {
            // A rate of 0 admits nothing new; look again later in case it is raised.
            bucket.refilled = None;
            return Duration::from_secs(1);
        }
        let per_second = f64::from(rate);
        let elapsed = bucket.refilled.map_or(0.0, |at| now.duration_since(at).as_secs_f64());
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(per_second);
        bucket.refilled = Some(now);
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / per_second)
        }
    }

    /// Counts a new connection from `ip`, or says why it is refused: its address
    /// already has as many as `max.connections.per.ip` (or its override) allows.
    pub async fn admit(self: &Arc<Self>, ip: IpAddr, config: &BrokerConfig) -> Result<IpSlot, String> {
        let limit = self.limit_for(ip, config).await;
        let mut counts = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if i64::from(*count) >= i64::from(limit) {
            if *count == 0 {
                counts.remove(&ip);
            }
            return Err(format!(
                "rejected connection from {ip}: the address already has the configured maximum of {limit} connections"
            ));
        }
        *count += 1;
        Ok(IpSlot { quotas: Arc::clone(self), ip })
    }

    async fn limit_for(&self, ip: IpAddr, config: &BrokerConfig) -> i32 {
        if config.max_connections_per_ip_overrides.is_empty() {
            return config.max_connections_per_ip;
        }
        let stale = {
            let overrides = self.overrides.lock().unwrap_or_else(PoisonError::into_inner);
            overrides.source != config.max_connections_per_ip_overrides
        };
        if stale {
            let by_ip = resolve_overrides(&config.max_connections_per_ip_overrides).await;
            let mut overrides = self.overrides.lock().unwrap_or_else(PoisonError::into_inner);
            *overrides = ResolvedOverrides { source: config.max_connections_per_ip_overrides.clone(), by_ip };
        }
        let overrides = self.overrides.lock().unwrap_or_else(PoisonError::into_inner);
        overrides.by_ip.get(&ip).copied().unwrap_or(config.max_connections_per_ip)
    }
}

/// Overrides name addresses or host names, as in Kafka; a name stands for every
/// address it resolves to. A name that does not resolve is skipped with a warning.
async fn resolve_overrides(overrides: &BTreeMap<String, i32>) -> HashMap<IpAddr, i32> {
    let mut by_ip = HashMap::new();
    for (host, limit) in overrides {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            by_ip.insert(ip, *limit);
            continue;
        }
        match tokio::net::lookup_host((bare, 0)).await {
            Ok(addresses) => {
                for address in addresses {
                    by_ip.entry(address.ip()).or_insert(*limit);
                }
            }
            Err(error) => {
                tracing::warn!("max.connections.per.ip.overrides: cannot resolve {host}: {error}; ignoring it")
            }
        }
    }
    by_ip
}

/// The first wait after a failed accept, doubled on each failure in a row.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one warning about failing accepts per this interval.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Failed accepts (EMFILE when out of file descriptors): an exponential backoff, so
/// the loop neither spins nor floods the log, and a rate-limited warning that counts
/// the failures it did not print.
pub struct AcceptBackoff {
    next_wait: Duration,
    last_warning: Option<Instant>,
    unreported: u64,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff { next_wait: ACCEPT_BACKOFF_MIN, last_warning: None, unreported: 0 }
    }
}

impl AcceptBackoff {
    /// Records a failure and returns how long to wait before accepting again.
    pub fn failed(&mut self, error: &std::io::Error, listener: &str) -> Duration {
        let wait = self.next_wait;
        self.next_wait = (self.next_wait * 2).min(ACCEPT_BACKOFF_MAX);
        let now = Instant::now();
        let warn_now = match self.last_warning {
            None => true,
            Some(at) => now.duration_since(at) >= ACCEPT_WARNING_INTERVAL,
        };
        if warn_now {
            tracing::warn!(
                "accept failed on {listener}: {error}; retrying in {} ms ({} more failed accepts since the last warning)",
                wait.as_millis(),
                self.unreported
            );
            self.last_warning = Some(now);
            self.unreported = 0;
        } else {
            self.unreported += 1;
        }
        wait
    }

    /// Records a successful accept: the next failure starts the backoff over.
    pub fn succeeded(&mut self) {
        self.next_wait = ACCEPT_BACKOFF_MIN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BrokerConfig {
        BrokerConfig::from_pairs(pairs).map(|loaded| loaded.config).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn creation_rate_allows_a_burst_then_spaces_connections() {
        let quotas = ConnectionQuotas::default();
        let config = config(&[("max.connection.creation.rate", "4")]);
        let delays: Vec<Duration> = (0..6).map(|_| quotas.creation_delay(&config)).collect();
        assert!(delays[..4].iter().all(|d| d.is_zero()), "{delays:?}");
        assert!(delays[4] > Duration::from_millis(200) && delays[4] <= Duration::from_millis(250), "{delays:?}");
        assert!(delays[5] > Duration::from_millis(450) && delays[5] <= Duration::from_millis(500), "{delays:?}");
        assert!(ConnectionQuotas::default().creation_delay(&BrokerConfig::defaults()).is_zero());
    }

    #[tokio::test]
    async fn per_ip_limit_and_overrides() {
        let quotas = Arc::new(ConnectionQuotas::default());
        let config = config(&[("max.connections.per.ip", "2"), ("max.connections.per.ip.overrides", "10.0.0.9:3")]);
        let local: IpAddr = "127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"));
        let first = quotas.admit(local, &config).await;
        let second = quotas.admit(local, &config).await;
        assert!(first.is_ok() && second.is_ok());
        let refused = quotas.admit(local, &config).await.err().unwrap_or_default();
        assert!(refused.contains("maximum of 2 connections"), "{refused}");
        drop(first);
        assert!(quotas.admit(local, &config).await.is_ok(), "a closed connection frees its place");
        let other: IpAddr = "10.0.0.9".parse().unwrap_or_else(|e| panic!("{e}"));
        let mut slots = Vec::new();
        for _ in 0..4 {
            slots.push(quotas.admit(other, &config).await);
        }
        assert_eq!(slots.iter().filter(|slot| slot.is_ok()).count(), 3, "the override raises its address's limit");
    }

    #[test]
    fn accept_backoff_doubles_up_to_a_second_and_resets() {
        let mut backoff = AcceptBackoff::default();
        let error = std::io::Error::other("too many open files");
        let waits: Vec<Duration> = (0..10).map(|_| backoff.failed(&error, "test")).collect();
        assert_eq!(waits[0], ACCEPT_BACKOFF_MIN);
        assert_eq!(waits[1], ACCEPT_BACKOFF_MIN * 2);
        assert_eq!(waits[9], ACCEPT_BACKOFF_MAX);
        assert_eq!(backoff.unreported, 9, "one warning, nine failures counted for the next");
        backoff.succeeded();
        assert_eq!(backoff.failed(&error, "test"), ACCEPT_BACKOFF_MIN);
    }
}
