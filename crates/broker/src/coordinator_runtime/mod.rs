//! The one runtime both coordinators run on (groups over `__consumer_offsets`,
//! transactions over `__transaction_state`), after Kafka's `CoordinatorRuntime`: one
//! [`ShardContext`] (Kafka's `CoordinatorContext`) per partition of the topic this
//! node leads, each with its own lock and timer task. A decision's records are
//! appended to the partition's log, then replayed into the shard (state changes only
//! in replay), then its answers are released.
//!
//! Leadership drives it ([`CoordinatorRuntime::on_metadata_update`]): a partition
//! newly led is loaded, one led at a new leader epoch (or with a new log) is loaded
//! again, one no longer led is unloaded: its parked requests answer NOT_COORDINATOR,
//! its timers and follow-up tasks stop, its state is dropped. A load replays the log
//! into a fresh shard on a blocking thread without the lock (requests answer
//! COORDINATOR_LOAD_IN_PROGRESS meanwhile) and swaps it in under the lock.
//!
//! Answers are addressed by [`ReplyId`]: one may be released by a later decision or
//! a timer (a JoinGroup waits for the other members), so the caller parks a oneshot
//! under its id. A failed append drops the decision's answers; their requests answer
//! NOT_COORDINATOR, as Kafka does when the coordinator's partition goes away.

use crate::partitions::Partition;
use crate::time::now_ms;
use bytes::Bytes;
use gregor_metadata::MetadataImage;
use gregor_protocol::{ErrorCode, ResponseBody};
use gregor_storage::AppendError;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify};

mod log;
#[cfg(test)]
mod tests;

/// Identifies one outstanding request (the group and transaction shards' `ReplyId`).
pub type ReplyId = u64;

/// A coordinator's state machine over one partition of its topic (Kafka's
/// `CoordinatorShard`).
pub trait CoordinatorShard: Sized + Send + 'static {
    type Config: Clone + Send + Sync + 'static;
    type Record: Send + 'static;
    type Effects: Send + 'static;
    /// Work a decision hands back for the coordinator's own tasks (markers to write).
    type FollowUp: Send + 'static;
    /// What the shard coordinates, for logs ("group", "transaction").
    const KIND: &'static str;
    /// The coordinator's internal topic.
    const TOPIC: &'static str;
    /// The answer for a key while the coordinator's topic does not exist.
    const TOPIC_MISSING: ErrorCode;

    /// An empty shard for partition `partition` led at `leader_epoch`.
    fn new(partition: i32, leader_epoch: i32, config: Self::Config) -> Self;
    fn config(&self) -> &Self::Config;
    fn set_config(&mut self, config: Self::Config);
    fn encode(record: &Self::Record) -> Result<(Bytes, Option<Bytes>), String>;
    /// `Ok(None)` for a record the shard does not keep (an unknown key version).
    fn decode(key: Bytes, value: Option<Bytes>) -> Result<Option<Self::Record>, String>;
    /// Applies one durable record, of `producer_id`'s transaction when given.
    fn replay(&mut self, producer_id: Option<i64>, record: Self::Record);
    /// A COMMIT (`commit`) or ABORT marker of `producer_id` in the partition.
    fn replay_end_transaction(&mut self, _producer_id: i64, _commit: bool) {}
    /// Called once the log is replayed, before the shard serves requests.
    fn finish_load(&mut self, now_ms: i64) -> Self::Effects;
    fn next_deadline_ms(&self) -> Option<i64>;
    fn poll_timers(&mut self, now_ms: i64) -> Self::Effects;
    fn into_writes(effects: Self::Effects) -> Writes<Self>;
    /// What a decision answers when its records cannot be written (`None`: encoding).
    fn write_error(append: Option<&AppendError>, transactional: bool) -> ErrorCode;
}

/// A decision's outcome as the runtime applies it.
pub struct Writes<S: CoordinatorShard> {
    pub records: Vec<S::Record>,
    pub replies: Vec<(ReplyId, ResponseBody)>,
    /// `Some((producer id, producer epoch))`: the records are one transactional batch.
    pub transactional: Option<(i64, i16)>,
    pub follow_ups: Vec<S::FollowUp>,
}

/// Where a hosted partition is (Kafka's `CoordinatorState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadState {
    /// The log is replayed into a fresh shard; the context's holds the config.
    Loading,
    Active,
    /// The log could not be read: nothing served until a new leader epoch.
    Failed,
    /// No longer led, or shut down.
    Unloaded,
}

impl LoadState {
    /// Whether the shard may serve a request, or the code its clients retry on.
    pub fn ready(self) -> Result<(), ErrorCode> {
        match self {
            LoadState::Loading => Err(ErrorCode::CoordinatorLoadInProgress),
            LoadState::Failed | LoadState::Unloaded => Err(ErrorCode::NotCoordinator),
            LoadState::Active => Ok(()),
        }
    }
}

pub struct ShardState<S> {
    pub shard: S,
    pub load: LoadState,
    waiting: HashMap<ReplyId, oneshot::Sender<ResponseBody>>,
}

/// One partition this node leads at one leader epoch, and the shard built from it.
pub struct ShardContext<S: CoordinatorShard> {
    partition: Arc<Partition>,
    leader_epoch: i32,
    state: Mutex<ShardState<S>>,
    /// Wakes the timer task when a decision may have moved the next deadline.
    timers_changed: Notify,
    /// Set on unload: the timer and follow-up tasks of this context stop.
    unloaded: watch::Sender<bool>,
}

impl<S: CoordinatorShard> ShardContext<S> {
    fn new(partition: Arc<Partition>, leader_epoch: i32, config: S::Config) -> Self {
        let shard = S::new(partition.index, leader_epoch, config);
        ShardContext {
            partition,
            leader_epoch,
            state: Mutex::new(ShardState { shard, load: LoadState::Loading, waiting: HashMap::new() }),
            timers_changed: Notify::new(),
            unloaded: watch::channel(false).0,
        }
    }

    pub fn index(&self) -> i32 {
        self.partition.index
    }

    pub fn partition(&self) -> &Arc<Partition> {
        &self.partition
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn lock(&self) -> MutexGuard<'_, ShardState<S>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Resolves once the context is unloaded (at once if it is already).
    pub async fn wait_unloaded(&self) {
        let mut unloaded = self.unloaded.subscribe();
        let _ = unloaded.wait_for(|unloaded| *unloaded).await;
    }

    pub fn is_unloaded(&self) -> bool {
        *self.unloaded.borrow()
    }

    /// Runs `read` on the active shard. Blocking: the lock may be held by a
    /// decision and its append (never by a load).
    pub fn read<T>(&self, read: impl FnOnce(&S) -> T) -> Result<T, ErrorCode> {
        let state = self.lock();
        state.load.ready().map(|()| read(&state.shard))
    }

    /// Runs `write` on the active shard and applies its effects; returns the
    /// follow-ups for the caller to start. Blocking.
    pub fn write<T>(&self, write: impl FnOnce(&mut S) -> (S::Effects, T)) -> Result<(T, Vec<S::FollowUp>), ErrorCode> {
        self.park_and_write(None, write)
    }

    /// [`write`](Self::write), first parking the answer channel of `reply`.
    fn park_and_write<T>(
        &self,
        park: Option<(ReplyId, oneshot::Sender<ResponseBody>)>,
        write: impl FnOnce(&mut S) -> (S::Effects, T),
    ) -> Result<(T, Vec<S::FollowUp>), ErrorCode> {
        let mut state = self.lock();
        state.load.ready()?;
        state.waiting.extend(park);
        let (effects, value) = write(&mut state.shard);
        let follow_ups = log::apply(&mut state, &self.partition, effects)?;
        self.timers_changed.notify_one();
        Ok((value, follow_ups))
    }

    /// Parked requests answer NOT_COORDINATOR (their senders are dropped), timers,
    /// follow-ups and a load in progress stop, the shard's state is dropped.
    fn unload(&self) {
        let _ = self.unloaded.send(true);
        let mut state = self.lock();
        state.load = LoadState::Unloaded;
        state.waiting.clear();
        let config = state.shard.config().clone();
        state.shard = S::new(self.partition.index, self.leader_epoch, config);
    }
}

/// Starts a coordinator's follow-ups (its marker writers) for a context.
pub type FollowUpHandler<S> = Arc<dyn Fn(&Arc<ShardContext<S>>, Vec<<S as CoordinatorShard>::FollowUp>) + Send + Sync>;

/// Every partition of one coordinator's topic this node leads.
pub struct CoordinatorRuntime<S: CoordinatorShard> {
    contexts: RwLock<HashMap<i32, Arc<ShardContext<S>>>>,
    next_reply: AtomicU64,
    /// Set by [`start`](Self::start); leadership is followed only from then on.
    follow_ups: OnceLock<FollowUpHandler<S>>,
    closed: AtomicBool,
}

impl<S: CoordinatorShard> std::fmt::Debug for CoordinatorRuntime<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordinatorRuntime").field("topic", &S::TOPIC).finish_non_exhaustive()
    }
}

impl<S: CoordinatorShard> Default for CoordinatorRuntime<S> {
    fn default() -> Self {
        CoordinatorRuntime {
            contexts: RwLock::new(HashMap::new()),
            next_reply: AtomicU64::new(1),
            follow_ups: OnceLock::new(),
            closed: AtomicBool::new(false),
        }
    }
}

impl<S: CoordinatorShard> CoordinatorRuntime<S> {
    /// Starts following leadership, with `follow_ups` starting the follow-ups that
    /// loads, timers and decisions hand back. Later calls keep the first handler.
    pub fn start(&self, follow_ups: FollowUpHandler<S>) {
        let _ = self.follow_ups.set(follow_ups);
    }

    /// Loads the partitions of the topic `image` makes `node_id` the leader of and
    /// `hosted` has the log of, with `config`, and unloads the others (see the
    /// module documentation). Needs a tokio runtime: loads and timers are tasks.
    pub fn on_metadata_update(
        &self,
        image: &MetadataImage,
        node_id: i32,
        config: &S::Config,
        hosted: impl Fn(i32) -> Option<Arc<Partition>>,
    ) {
        let Some(follow_ups) = self.follow_ups.get() else { return };
        let Ok(tasks) = tokio::runtime::Handle::try_current() else {
            tracing::error!(topic = S::TOPIC, "coordinator leadership not followed: no tokio runtime");
            return;
        };
        let closed = self.closed.load(Ordering::Acquire);
        let partitions = image.topic(S::TOPIC).filter(|_| !closed).map(|topic| topic.partitions.iter());
        let led: HashMap<i32, (i32, Arc<Partition>)> = (partitions.into_iter().flatten())
            .filter(|(_, state)| state.leader == node_id)
            .filter_map(|(&index, state)| Some((index, (state.leader_epoch, hosted(index)?))))
            .collect();
        let mut unloaded = Vec::new();
        let mut loading = Vec::new();
        {
            let mut contexts = self.contexts.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            contexts.retain(|index, context| {
                let current = led.get(index).is_some_and(|(epoch, partition)| {
                    *epoch == context.leader_epoch && Arc::ptr_eq(partition, &context.partition)
                });
                if !current {
                    unloaded.push(Arc::clone(context));
                }
                current
            });
            for (index, (leader_epoch, partition)) in led {
                if contexts.contains_key(&index) {
                    continue;
                }
                let context = Arc::new(ShardContext::new(partition, leader_epoch, config.clone()));
                contexts.insert(index, Arc::clone(&context));
                loading.push(context);
            }
        }
        // Outside the map's lock: an unload waits for a decision's append.
        for context in unloaded {
            tracing::info!(topic = S::TOPIC, partition = context.index(), "unloading epoch {}", context.leader_epoch);
            context.unload();
        }
        for context in loading {
            tracing::info!(topic = S::TOPIC, partition = context.index(), "loading at epoch {}", context.leader_epoch);
            tasks.spawn(run_context(context, Arc::clone(follow_ups)));
        }
    }

    /// Unloads every partition and loads none from now on.
    pub fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        let mut contexts = self.contexts.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let contexts: Vec<_> = contexts.drain().collect();
        for (_, context) in contexts {
            context.unload();
        }
    }

    /// Applies a changed config to every hosted shard (a load takes it over).
    pub fn reconfigure(&self, config: &S::Config) {
        for (_, context) in self.contexts() {
            context.lock().shard.set_config(config.clone());
        }
    }

    /// The context of partition `index`, in whatever state it is.
    pub fn context(&self, index: i32) -> Option<Arc<ShardContext<S>>> {
        self.contexts.read().ok()?.get(&index).cloned()
    }

    /// Every hosted context, by partition.
    pub fn contexts(&self) -> Vec<(i32, Arc<ShardContext<S>>)> {
        let mut contexts: Vec<(i32, Arc<ShardContext<S>>)> = self
            .contexts
            .read()
            .map(|contexts| contexts.iter().map(|(index, context)| (*index, Arc::clone(context))).collect())
            .unwrap_or_default();
        contexts.sort_by_key(|(index, _)| *index);
        contexts
    }

    /// The context serving a key whose partition `partition_of` computes from the
    /// topic's partition count: NOT_COORDINATOR when this node does not lead that
    /// partition, COORDINATOR_LOAD_IN_PROGRESS when it does but has not opened its
    /// log yet (the image is published before the partition is).
    pub fn lookup(
        &self,
        image: &MetadataImage,
        node_id: i32,
        partition_of: impl FnOnce(i32) -> i32,
    ) -> Result<Arc<ShardContext<S>>, ErrorCode> {
        let Some(topic) = image.topic(S::TOPIC) else { return Err(S::TOPIC_MISSING) };
        let count = i32::try_from(topic.partitions.len()).map_err(|_| ErrorCode::CoordinatorNotAvailable)?;
        let index = partition_of(count);
        let leads = topic.partitions.get(&index).is_some_and(|partition| partition.leader == node_id);
        if !leads {
            return Err(ErrorCode::NotCoordinator);
        }
        self.context(index).ok_or(ErrorCode::CoordinatorLoadInProgress)
    }

    /// Runs one decision on `context`'s shard and waits for the answer addressed to
    /// the reply id it is given (which a later decision may release).
    pub async fn decide(
        &self,
        context: Arc<ShardContext<S>>,
        decide: impl FnOnce(&mut S, ReplyId) -> S::Effects + Send + 'static,
    ) -> Result<ResponseBody, ErrorCode> {
        let reply = self.next_reply.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        let write = move |shard: &mut S| (decide(shard, reply), ());
        self.run_write(context, Some((reply, sender)), write).await?;
        receiver.await.map_err(|_| ErrorCode::NotCoordinator)
    }

    /// Runs `write` on `context`'s shard when its answer is not a response.
    pub async fn write<T: Send + 'static>(
        &self,
        context: Arc<ShardContext<S>>,
        write: impl FnOnce(&mut S) -> (S::Effects, T) + Send + 'static,
    ) -> Result<T, ErrorCode> {
        self.run_write(context, None, write).await
    }

    async fn run_write<T: Send + 'static>(
        &self,
        context: Arc<ShardContext<S>>,
        park: Option<(ReplyId, oneshot::Sender<ResponseBody>)>,
        write: impl FnOnce(&mut S) -> (S::Effects, T) + Send + 'static,
    ) -> Result<T, ErrorCode> {
        let run = {
            let context = Arc::clone(&context);
            move || context.park_and_write(park, write)
        };
        let (value, follow_ups) =
            tokio::task::spawn_blocking(run).await.map_err(|_| ErrorCode::CoordinatorNotAvailable)??;
        if let Some(handler) = self.follow_ups.get().filter(|_| !follow_ups.is_empty()) {
            handler(&context, follow_ups);
        }
        Ok(value)
    }

    /// Reads `context`'s shard on a blocking thread (a decision may hold its lock).
    pub async fn read<T: Send + 'static>(
        &self,
        context: Arc<ShardContext<S>>,
        read: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T, ErrorCode> {
        tokio::task::spawn_blocking(move || context.read(read)).await.map_err(|_| ErrorCode::CoordinatorNotAvailable)?
    }

    /// Calls `visit` on every active shard, by partition, on a blocking thread;
    /// COORDINATOR_LOAD_IN_PROGRESS when some shard is loading. A failed shard is
    /// skipped, as Kafka skips a partition it does not coordinate.
    pub async fn visit_all<T: Send + 'static>(
        &self,
        visit: impl FnMut(&S) -> Vec<T> + Send + 'static,
    ) -> (Vec<T>, Option<ErrorCode>) {
        let contexts = self.contexts();
        tokio::task::spawn_blocking(move || visit_active(&contexts, visit))
            .await
            .unwrap_or((Vec::new(), Some(ErrorCode::CoordinatorNotAvailable)))
    }
}

/// [`CoordinatorRuntime::visit_all`]'s work. Blocking.
pub fn visit_active<S: CoordinatorShard, T>(
    contexts: &[(i32, Arc<ShardContext<S>>)],
    mut visit: impl FnMut(&S) -> Vec<T>,
) -> (Vec<T>, Option<ErrorCode>) {
    let mut out = Vec::new();
    let mut error = None;
    for (_, context) in contexts {
        match context.read(&mut visit) {
            Ok(visited) => out.extend(visited),
            Err(ErrorCode::CoordinatorLoadInProgress) => error = Some(ErrorCode::CoordinatorLoadInProgress),
            Err(_) => {}
        }
    }
    (out, error)
}

/// Loads one context, then fires its timers until it is unloaded.
async fn run_context<S: CoordinatorShard>(context: Arc<ShardContext<S>>, follow_ups: FollowUpHandler<S>) {
    let loading = {
        let context = Arc::clone(&context);
        move || {
            let started = std::time::Instant::now();
            let loaded = log::load(&context, || {});
            let (topic, partition) = (&context.partition.topic, context.index());
            match loaded {
                Ok((replayed, follow_ups)) => {
                    let elapsed_ms = started.elapsed().as_millis();
                    tracing::info!(%topic, partition, "loaded {replayed} {} records in {elapsed_ms} ms", S::KIND);
                    follow_ups
                }
                Err(log::LoadError::Unloaded) => Vec::new(),
                Err(log::LoadError::Read(error)) => {
                    tracing::error!(%topic, partition, "loading the {} coordinator failed: {error}", S::KIND);
                    let mut state = context.lock();
                    if state.load == LoadState::Loading {
                        state.load = LoadState::Failed;
                    }
                    Vec::new()
                }
            }
        }
    };
    let Ok(loaded) = tokio::task::spawn_blocking(loading).await else { return };
    if !loaded.is_empty() {
        follow_ups(&context, loaded);
    }
    let mut unloaded = context.unloaded.subscribe();
    loop {
        if *unloaded.borrow_and_update() {
            return;
        }
        let deadline = context.read(|shard| shard.next_deadline_ms()).ok().flatten();
        let wait = match deadline {
            Some(deadline) => Duration::from_millis(u64::try_from(deadline - now_ms()).unwrap_or(0)),
            // Nothing scheduled (or not active): sleep until a decision changes that.
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = unloaded.changed() => return,
            _ = context.timers_changed.notified() => continue,
            _ = tokio::time::sleep(wait) => {}
        }
        let fire = {
            let context = Arc::clone(&context);
            // A failed append is logged by `apply`; the next poll tries again.
            move || context.write(|shard| (shard.poll_timers(now_ms()), ())).map(|((), follow_ups)| follow_ups)
        };
        match tokio::task::spawn_blocking(fire).await {
            Ok(Ok(fired)) if !fired.is_empty() => follow_ups(&context, fired),
            Ok(_) => {}
            Err(_) => return,
        }
    }
}
