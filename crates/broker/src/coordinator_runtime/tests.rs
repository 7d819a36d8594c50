//! The runtime with a fake shard over real partition logs, led and unled by
//! images built from the records a controller writes (TopicRecord, PartitionRecord,
//! PartitionChangeRecord), as leadership will move in a cluster.

use super::*;
use gregor_metadata::MetadataRecord;
use gregor_protocol::messages::heartbeat_response::HeartbeatResponse;
use gregor_protocol::messages::partition_change_record::PartitionChangeRecord;
use gregor_protocol::messages::partition_record::PartitionRecord;
use gregor_protocol::messages::topic_record::TopicRecord;
use gregor_protocol::Uuid;
use gregor_storage::io::OsFileIo;
use gregor_storage::{Log, LogConfig, OpenOptions, TopicPartition};
use std::sync::atomic::AtomicUsize;

const TOPIC: &str = "__fake_state";
const TOPIC_ID: Uuid = Uuid([3; 16]);
const THIS_NODE: i32 = 1;
const OTHER_NODE: i32 = 2;

impl<S: CoordinatorShard> CoordinatorRuntime<S> {
    /// Hosts `partition` as a loading context without starting its load, for tests
    /// that drive [`ShardContext::load_for_test`] themselves.
    pub(crate) fn host_for_test(
        &self,
        partition: Arc<Partition>,
        leader_epoch: i32,
        config: S::Config,
    ) -> Arc<ShardContext<S>> {
        let context = Arc::new(ShardContext::new(partition, leader_epoch, config));
        if let Ok(mut contexts) = self.contexts.write() {
            contexts.insert(context.index(), Arc::clone(&context));
        }
        context
    }
}

impl<S: CoordinatorShard> ShardContext<S> {
    /// Loads the context on this thread; `on_step` runs before each read of the log.
    pub(crate) fn load_for_test(&self, on_step: impl FnMut()) -> Result<(usize, Vec<S::FollowUp>), String> {
        log::load(self, on_step).map_err(|error| format!("{error:?}"))
    }
}

/// Keeps the values it replayed; a decision appends values and answers or parks
/// its request; a timer appends one value and hands back a follow-up.
#[derive(Default)]
struct FakeShard {
    leader_epoch: i32,
    values: Vec<i64>,
    deadline_ms: Option<i64>,
}

#[derive(Default)]
struct FakeEffects {
    records: Vec<i64>,
    replies: Vec<ReplyId>,
    follow_ups: Vec<i64>,
}

impl CoordinatorShard for FakeShard {
    type Config = ();
    type Record = i64;
    type Effects = FakeEffects;
    type FollowUp = i64;
    const KIND: &'static str = "fake";
    const TOPIC: &'static str = TOPIC;
    const TOPIC_MISSING: ErrorCode = ErrorCode::CoordinatorNotAvailable;

    fn new(_partition: i32, leader_epoch: i32, _config: ()) -> Self {
        FakeShard { leader_epoch, ..FakeShard::default() }
    }

    fn config(&self) -> &() {
        &()
    }

    fn set_config(&mut self, _config: ()) {}

    fn encode(record: &i64) -> Result<(Bytes, Option<Bytes>), String> {
        Ok((Bytes::from_static(b"v"), Some(Bytes::copy_from_slice(&record.to_be_bytes()))))
    }

    fn decode(_key: Bytes, value: Option<Bytes>) -> Result<Option<i64>, String> {
        let value = value.ok_or("no value")?;
        let bytes: [u8; 8] = value.as_ref().try_into().map_err(|_| "not 8 bytes".to_string())?;
        Ok(Some(i64::from_be_bytes(bytes)))
    }

    fn replay(&mut self, _producer_id: Option<i64>, record: i64) {
        self.values.push(record);
    }

    fn finish_load(&mut self, _now_ms: i64) -> FakeEffects {
        FakeEffects::default()
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        self.deadline_ms
    }

    fn poll_timers(&mut self, now_ms: i64) -> FakeEffects {
        match self.deadline_ms {
            Some(deadline) if deadline <= now_ms => {
                self.deadline_ms = None;
                FakeEffects { records: vec![-1], follow_ups: vec![-1], ..FakeEffects::default() }
            }
            _ => FakeEffects::default(),
        }
    }

    fn into_writes(effects: FakeEffects) -> Writes<Self> {
        let replies = effects
            .replies
            .into_iter()
            .map(|reply| (reply, ResponseBody::Heartbeat(HeartbeatResponse::default())))
            .collect();
        Writes { records: effects.records, replies, transactional: None, follow_ups: effects.follow_ups }
    }

    fn write_error(_append: Option<&AppendError>, _transactional: bool) -> ErrorCode {
        ErrorCode::NotCoordinator
    }
}

fn open_partition(dir: &std::path::Path, index: i32) -> Arc<Partition> {
    let options = OpenOptions { recovery_point: 0, log_start_offset: None, clean_shutdown: true, now_ms: now_ms() };
    let tp = TopicPartition::new(TOPIC, index);
    let log = Log::open(Arc::new(OsFileIo), &dir.join(format!("{TOPIC}-{index}")), tp, LogConfig::default(), options)
        .expect("log opens");
    Arc::new(Partition::new(TOPIC.into(), index, TOPIC_ID, Arc::new(log), 0))
}

/// The image after the controller created the topic with `leaders[i]` leading
/// partition `i`, then applied `changes` (partition, new leader).
fn image(leaders: &[i32], changes: &[(i32, i32)]) -> MetadataImage {
    let mut records =
        vec![MetadataRecord::Topic(TopicRecord { name: TOPIC.into(), topic_id: TOPIC_ID, ..Default::default() })];
    for (index, &leader) in leaders.iter().enumerate() {
        records.push(MetadataRecord::Partition(PartitionRecord {
            partition_id: i32::try_from(index).expect("small"),
            topic_id: TOPIC_ID,
            replicas: vec![THIS_NODE, OTHER_NODE],
            isr: vec![THIS_NODE, OTHER_NODE],
            leader,
            leader_epoch: 0,
            ..Default::default()
        }));
    }
    for &(partition_id, leader) in changes {
        records.push(MetadataRecord::PartitionChange(PartitionChangeRecord {
            partition_id,
            topic_id: TOPIC_ID,
            leader,
            ..Default::default()
        }));
    }
    let mut image = MetadataImage::empty();
    for record in &records {
        image.replay(record).expect("replays");
    }
    image
}

/// A started runtime whose follow-ups are counted, over two partition logs.
struct Fixture {
    runtime: Arc<CoordinatorRuntime<FakeShard>>,
    partitions: Vec<Arc<Partition>>,
    follow_ups: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let partitions = vec![open_partition(dir.path(), 0), open_partition(dir.path(), 1)];
        let runtime = Arc::new(CoordinatorRuntime::default());
        let follow_ups = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&follow_ups);
        runtime.start(Arc::new(move |_, started: Vec<i64>| {
            counted.fetch_add(started.len(), Ordering::SeqCst);
        }));
        Fixture { runtime, partitions, follow_ups, _dir: dir }
    }

    fn publish(&self, image: &MetadataImage) {
        self.runtime.on_metadata_update(image, THIS_NODE, &(), |index| {
            usize::try_from(index).ok().and_then(|index| self.partitions.get(index)).cloned()
        });
    }

    /// The context serving partition `index` (keys map to partitions one to one).
    fn lookup(&self, image: &MetadataImage, index: i32) -> Result<Arc<ShardContext<FakeShard>>, ErrorCode> {
        self.runtime.lookup(image, THIS_NODE, |_| index)
    }

    async fn active(&self, image: &MetadataImage, index: i32) -> Arc<ShardContext<FakeShard>> {
        for _ in 0..500 {
            if let Ok(context) = self.lookup(image, index) {
                if context.lock().load == LoadState::Active {
                    return context;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("partition {index} never became active");
    }

    /// Appends `values` through a decision and waits for its answer.
    async fn append(&self, context: &Arc<ShardContext<FakeShard>>, values: Vec<i64>) -> Result<(), ErrorCode> {
        let decide = move |_: &mut FakeShard, reply| FakeEffects {
            records: values,
            replies: vec![reply],
            ..FakeEffects::default()
        };
        self.runtime.decide(Arc::clone(context), decide).await.map(|_| ())
    }

    /// Starts a request the shard parks (answered by nothing but an unload) and
    /// waits until it is parked.
    async fn park(&self, context: &Arc<ShardContext<FakeShard>>) -> tokio::task::JoinHandle<Result<(), ErrorCode>> {
        let (runtime, context) = (Arc::clone(&self.runtime), Arc::clone(context));
        let parked = {
            let context = Arc::clone(&context);
            move || context.lock().waiting.len()
        };
        let before = parked();
        let request =
            tokio::spawn(async move { runtime.decide(context, |_, _| FakeEffects::default()).await.map(|_| ()) });
        for _ in 0..500 {
            if parked() > before {
                return request;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the request was never parked");
    }
}

fn values(context: &ShardContext<FakeShard>) -> Vec<i64> {
    context.lock().shard.values.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_is_loaded_when_led_and_unloaded_when_leadership_moves() {
    let fixture = Fixture::new();
    let led = image(&[THIS_NODE, OTHER_NODE], &[]);
    // Led but not loaded yet: clients retry; another node's partition is not ours.
    assert_eq!(fixture.lookup(&led, 0).err(), Some(ErrorCode::CoordinatorLoadInProgress));
    assert_eq!(fixture.lookup(&led, 1).err(), Some(ErrorCode::NotCoordinator));
    assert_eq!(fixture.lookup(&MetadataImage::empty(), 0).err(), Some(ErrorCode::CoordinatorNotAvailable));

    fixture.publish(&led);
    let context = fixture.active(&led, 0).await;
    assert!(fixture.runtime.context(1).is_none(), "partition 1 is led by another node");
    fixture.append(&context, vec![1, 2]).await.expect("appended");
    assert_eq!(values(&context), vec![1, 2]);
    assert_eq!(fixture.partitions[0].log.log_end_offset(), 2);

    // A timer fires: its record is appended and replayed, its follow-up started.
    context
        .write(|shard| {
            shard.deadline_ms = Some(now_ms() + 20);
            (FakeEffects::default(), ())
        })
        .expect("active");
    for _ in 0..500 {
        if fixture.follow_ups.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(values(&context), vec![1, 2, -1]);
    assert_eq!(fixture.follow_ups.load(Ordering::SeqCst), 1);

    let parked = fixture.park(&context).await;
    // A timer armed now must not fire into the partition once it is unloaded.
    context
        .write(|shard| {
            shard.deadline_ms = Some(now_ms() + 200);
            (FakeEffects::default(), ())
        })
        .expect("active");
    let end = fixture.partitions[0].log.log_end_offset();

    // The controller moves leadership of partition 0 to the other node.
    let moved = image(&[THIS_NODE, OTHER_NODE], &[(0, OTHER_NODE)]);
    fixture.publish(&moved);
    assert_eq!(parked.await.expect("request task"), Err(ErrorCode::NotCoordinator));
    assert!(context.is_unloaded());
    assert_eq!(context.lock().load, LoadState::Unloaded);
    assert!(values(&context).is_empty(), "the unloaded shard's state is dropped");
    assert!(fixture.runtime.context(0).is_none());
    assert_eq!(fixture.lookup(&moved, 0).err(), Some(ErrorCode::NotCoordinator));
    // A request that found the context before the unload is refused.
    assert_eq!(fixture.append(&context, vec![3]).await, Err(ErrorCode::NotCoordinator));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(fixture.partitions[0].log.log_end_offset(), end, "nothing appended after the unload");

    // Leadership comes back (epoch 2): the partition is loaded again from its log.
    let back = image(&[THIS_NODE, OTHER_NODE], &[(0, OTHER_NODE), (0, THIS_NODE)]);
    fixture.publish(&back);
    let reloaded = fixture.active(&back, 0).await;
    assert_eq!(reloaded.leader_epoch(), 2);
    assert_eq!(values(&reloaded), vec![1, 2, -1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_epoch_reloads_the_partition() {
    let fixture = Fixture::new();
    let first = image(&[THIS_NODE, THIS_NODE], &[]);
    fixture.publish(&first);
    let context = fixture.active(&first, 0).await;
    let other = fixture.active(&first, 1).await;
    assert_eq!((context.leader_epoch(), context.lock().shard.leader_epoch), (0, 0));
    fixture.append(&context, vec![7]).await.expect("appended");
    let parked = fixture.park(&context).await;

    // The same image again changes nothing.
    fixture.publish(&first);
    assert!(Arc::ptr_eq(&fixture.runtime.context(0).expect("hosted"), &context));

    // This node missed the images in between: leadership went away and came back,
    // so it leads partition 0 at epoch 2 and reloads it, as a new coordinator epoch.
    let later = image(&[THIS_NODE, THIS_NODE], &[(0, OTHER_NODE), (0, THIS_NODE)]);
    fixture.publish(&later);
    assert_eq!(parked.await.expect("request task"), Err(ErrorCode::NotCoordinator));
    assert!(context.is_unloaded());
    let reloaded = fixture.active(&later, 0).await;
    assert!(!Arc::ptr_eq(&reloaded, &context));
    assert_eq!((reloaded.leader_epoch(), reloaded.lock().shard.leader_epoch), (2, 2));
    assert_eq!(values(&reloaded), vec![7]);
    fixture.append(&reloaded, vec![8]).await.expect("appended");
    assert_eq!(values(&reloaded), vec![7, 8]);
    // Partition 1 kept its leader epoch: untouched.
    assert!(Arc::ptr_eq(&fixture.runtime.context(1).expect("hosted"), &other));

    // The topic is gone from the image: everything is unloaded.
    fixture.publish(&MetadataImage::empty());
    assert!(fixture.runtime.contexts().is_empty());
    assert!(reloaded.is_unloaded() && other.is_unloaded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_whose_log_cannot_be_read_fails_and_is_unloaded_when_no_longer_led() {
    {
        let writer = Fixture::new();
        let led = image(&[THIS_NODE, OTHER_NODE], &[]);
        writer.publish(&led);
        let context = writer.active(&led, 0).await;
        writer.append(&context, vec![42]).await.expect("appended");
        writer.runtime.shutdown();
        assert!(context.is_unloaded());
        // The same log, hosted by the fixture's runtime below.
        let log_dir = writer.partitions[0].log.dir().to_path_buf();
        let segment = std::fs::read_dir(&log_dir)
            .expect("log dir")
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|extension| extension == "log"))
            .expect("a segment");
        // One flipped bit in the record's value: the batch's CRC no longer matches.
        let mut bytes = std::fs::read(&segment).expect("segment");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&segment, bytes).expect("corrupt");
        let damaged = Arc::clone(&writer.partitions[0]);
        let runtime: CoordinatorRuntime<FakeShard> = CoordinatorRuntime::default();
        runtime.start(Arc::new(|_, _| {}));
        runtime.on_metadata_update(&led, THIS_NODE, &(), |index| (index == 0).then(|| Arc::clone(&damaged)));
        let mut state = LoadState::Loading;
        for _ in 0..500 {
            state = runtime.context(0).map_or(LoadState::Loading, |context| context.lock().load);
            if state != LoadState::Loading {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(state, LoadState::Failed);
        let failed = runtime.lookup(&led, THIS_NODE, |_| 0).expect("hosted");
        assert_eq!(failed.read(|shard| shard.values.len()), Err(ErrorCode::NotCoordinator));
        let refused = runtime.decide(Arc::clone(&failed), |_, reply| FakeEffects {
            records: vec![1],
            replies: vec![reply],
            ..FakeEffects::default()
        });
        assert_eq!(refused.await.err(), Some(ErrorCode::NotCoordinator));
        // The same leadership again: no reload loop, the partition stays failed.
        runtime.on_metadata_update(&led, THIS_NODE, &(), |index| (index == 0).then(|| Arc::clone(&damaged)));
        assert!(Arc::ptr_eq(&runtime.context(0).expect("hosted"), &failed));
        assert_eq!(failed.lock().load, LoadState::Failed);
        // Losing leadership unloads it.
        let moved = image(&[THIS_NODE, OTHER_NODE], &[(0, OTHER_NODE)]);
        runtime.on_metadata_update(&moved, THIS_NODE, &(), |index| (index == 0).then(|| Arc::clone(&damaged)));
        assert!(failed.is_unloaded());
        assert!(runtime.contexts().is_empty());
    }
}
