//! Replica placement for new partitions, striped across racks as Kafka's
//! `StripedReplicaPlacer` does: the first replica (the leader) is always an unfenced
//! broker and walks the racks round-robin from a random start, so leadership spreads;
//! the followers continue over the other racks, fenced brokers only when a rack has
//! no unfenced one left. After as many partitions as there are unfenced brokers, the
//! rack and broker orders are reshuffled so the same lists do not repeat forever.
//!
//! The random source is the controller context's, so that tests are deterministic;
//! draws follow `java.util.Random.nextInt`'s rejection sampling over the top 31 bits,
//! so a generator that yields `java.util.Random`'s raw states reproduces Kafka's lists.

use std::collections::BTreeMap;

use gregor_protocol::ErrorCode;

use super::ApiError;
use crate::image::MetadataImage;

/// A broker that may receive replicas: registered and not in controlled shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableBroker {
    pub id: i32,
    pub rack: Option<String>,
    pub fenced: bool,
}

/// The brokers new replicas may go to, by id, as Kafka's heartbeat manager lists them:
/// every registration that is not shutting down, fenced ones marked.
pub fn usable_brokers(image: &MetadataImage) -> Vec<UsableBroker> {
    image
        .brokers()
        .filter(|broker| !broker.in_controlled_shutdown)
        .map(|broker| UsableBroker { id: broker.id, rack: broker.rack.clone(), fenced: broker.fenced })
        .collect()
}

/// A uniform draw in `0..bound` (`bound > 0`), as `java.util.Random.nextInt(bound)`
/// computes it from 31-bit draws; here a draw is the top 31 bits of `random()`.
fn next_below(random: &mut dyn FnMut() -> u64, bound: usize) -> usize {
    let bound = i32::try_from(bound).unwrap_or(i32::MAX).max(1);
    let mut draw = || i32::try_from(random() >> 33).unwrap_or(0);
    if bound & (bound - 1) == 0 {
        let scaled = (i64::from(bound) * i64::from(draw())) >> 31;
        return usize::try_from(scaled).unwrap_or(0);
    }
    loop {
        let bits = draw();
        let value = bits % bound;
        // Rejects the last, partial stripe of the 31-bit range (Java's overflow test).
        if bits.wrapping_sub(value).wrapping_add(bound - 1) >= 0 {
            return usize::try_from(value).unwrap_or(0);
        }
    }
}

/// `Collections.shuffle`: Fisher-Yates from the end.
fn shuffle(items: &mut [impl Sized], random: &mut dyn FnMut() -> u64) {
    for index in (1..items.len()).rev() {
        let other = next_below(random, index + 1);
        items.swap(index, other);
    }
}

/// The brokers of one rack and kind (fenced or not), iterated from a moving offset.
#[derive(Debug, Default)]
struct BrokerList {
    brokers: Vec<i32>,
    /// How many brokers this iteration epoch has handed out.
    index: usize,
    offset: usize,
    epoch: usize,
}

impl BrokerList {
    fn initialize(&mut self, random: &mut dyn FnMut() -> u64) {
        if !self.brokers.is_empty() {
            self.brokers.sort_unstable();
            self.offset = next_below(random, self.brokers.len());
        }
    }

    /// The next broker of this epoch, or `None` once every broker was handed out.
    fn next(&mut self, epoch: usize) -> Option<i32> {
        if self.brokers.is_empty() {
            return None;
        }
        if self.epoch != epoch {
            self.epoch = epoch;
            self.index = 0;
            self.offset = (self.offset + 1) % self.brokers.len();
        }
        if self.index >= self.brokers.len() {
            return None;
        }
        let broker = self.brokers[(self.index + self.offset) % self.brokers.len()];
        self.index += 1;
        Some(broker)
    }
}

#[derive(Debug, Default)]
struct Rack {
    fenced: BrokerList,
    unfenced: BrokerList,
}

impl Rack {
    fn next(&mut self, epoch: usize) -> Option<i32> {
        self.unfenced.next(epoch).or_else(|| self.fenced.next(epoch))
    }
}

/// Kafka's message for a non-positive factor.
fn non_positive(replication_factor: i32) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidReplicationFactor,
        format!("Invalid replication factor {replication_factor}: the replication factor must be positive."),
    )
}

/// The racks, iterated round-robin from a moving offset.
struct RackList<'r> {
    random: &'r mut dyn FnMut() -> u64,
    /// Rack name to its brokers; `None` is the rack of brokers without one.
    racks: BTreeMap<Option<String>, Rack>,
    /// The order racks are visited in: sorted at first, reshuffled later.
    rack_names: Vec<Option<String>>,
    total_brokers: usize,
    unfenced_brokers: usize,
    epoch: usize,
    offset: usize,
}

impl<'r> RackList<'r> {
    fn new(random: &'r mut dyn FnMut() -> u64, brokers: &[UsableBroker]) -> Self {
        let mut racks: BTreeMap<Option<String>, Rack> = BTreeMap::new();
        let mut unfenced_brokers = 0;
        for broker in brokers {
            let rack = racks.entry(broker.rack.clone()).or_default();
            if broker.fenced {
                rack.fenced.brokers.push(broker.id);
            } else {
                unfenced_brokers += 1;
                rack.unfenced.brokers.push(broker.id);
            }
        }
        for rack in racks.values_mut() {
            rack.fenced.initialize(random);
            rack.unfenced.initialize(random);
        }
        let rack_names: Vec<Option<String>> = racks.keys().cloned().collect();
        let offset = if rack_names.is_empty() { 0 } else { next_below(random, rack_names.len()) };
        Self { random, racks, rack_names, total_brokers: brokers.len(), unfenced_brokers, epoch: 0, offset }
    }

    fn check(&self, replication_factor: i32) -> Result<(), ApiError> {
        if replication_factor <= 0 {
            return Err(non_positive(replication_factor));
        }
        if self.unfenced_brokers == 0 {
            return Err(ApiError::new(ErrorCode::InvalidReplicationFactor, "All brokers are currently fenced."));
        }
        if usize::try_from(replication_factor).map_or(true, |factor| factor > self.total_brokers) {
            return Err(ApiError::new(
                ErrorCode::InvalidReplicationFactor,
                format!(
                    "The target replication factor of {replication_factor} cannot be reached because only {} \
                     broker(s) are registered.",
                    self.total_brokers
                ),
            ));
        }
        Ok(())
    }

    fn rack(&mut self, index: usize) -> Option<&mut Rack> {
        let name = self.rack_names.get(index)?;
        self.racks.get_mut(name)
    }

    /// One partition's replicas. [`Self::check`] must have passed: it guarantees an
    /// unfenced broker for the leader and enough brokers for the followers.
    fn place(&mut self, replication_factor: usize) -> Vec<i32> {
        if self.epoch == self.unfenced_brokers && self.unfenced_brokers > 1 {
            self.shuffle();
            self.epoch = 0;
        }
        let rack_count = self.rack_names.len();
        if self.offset == rack_count {
            self.offset = 0;
        }
        let epoch = self.epoch;
        let mut replicas = Vec::with_capacity(replication_factor);
        // The leader: the first unfenced broker, starting at the offset's rack.
        let mut first_rack = Some(self.offset);
        for step in 0..rack_count {
            let index = (self.offset + step) % rack_count;
            if let Some(broker) = self.rack(index).and_then(|rack| rack.unfenced.next(epoch)) {
                replicas.push(broker);
                first_rack = Some(index);
                break;
            }
        }
        // Followers: round-robin over the racks from the offset, skipping the leader's
        // rack on its first visit. Bounded by the brokers left, which check() made enough.
        let mut rack_index = self.offset;
        let mut visits_left = rack_count.saturating_mul(self.total_brokers.saturating_add(1));
        while replicas.len() < replication_factor && visits_left > 0 {
            visits_left -= 1;
            let mut found = None;
            if first_rack == Some(rack_index) {
                first_rack = None;
            } else {
                found = self.rack(rack_index).and_then(|rack| rack.next(epoch));
            }
            rack_index = (rack_index + 1) % rack_count;
            if let Some(broker) = found {
                replicas.push(broker);
            }
        }
        self.epoch += 1;
        self.offset += 1;
        replicas
    }

    fn shuffle(&mut self) {
        shuffle(&mut self.rack_names, &mut *self.random);
        for rack in self.racks.values_mut() {
            shuffle(&mut rack.fenced.brokers, &mut *self.random);
            shuffle(&mut rack.unfenced.brokers, &mut *self.random);
        }
    }
}

/// Replica lists for `partition_count` new partitions of `replication_factor` replicas
/// over `brokers`. Errors carry the placer's own message (CreateTopics prefixes it).
pub fn place_replicas(
    brokers: &[UsableBroker],
    partition_count: i32,
    replication_factor: i16,
    random: &mut dyn FnMut() -> u64,
) -> Result<Vec<Vec<i32>>, ApiError> {
    let factor = i32::from(replication_factor);
    let mut racks = RackList::new(random, brokers);
    racks.check(factor)?;
    let factor = usize::try_from(factor).unwrap_or(0);
    Ok((0..partition_count.max(0)).map(|_| racks.place(factor)).collect())
}
