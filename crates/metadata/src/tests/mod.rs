//! Tests of the crate, sharing one harness.

mod brokers;
mod controller;
mod image;
mod limits;
mod placement;
mod prop;
mod reassignment;
mod records;
mod snapshot;
mod snapshot_gen;

use gregor_protocol::Uuid;

use crate::controller::ControllerContext;
use crate::image::MetadataImage;
use crate::record::MetadataRecord;

/// Config rules for tests: "bad" values are invalid, names ending in ".list" are lists.
pub(crate) fn validate(_name: &str, value: &str) -> Result<(), String> {
    if value == "bad" {
        Err(format!("Invalid value {value}"))
    } else {
        Ok(())
    }
}

pub(crate) fn is_list(name: &str) -> bool {
    name.ends_with(".list")
}

/// `java.util.Random`'s generator as Kafka's tests seed it (`MockRandom`, state 17):
/// each call yields the next raw 64-bit state, whose top 31 bits are Java's `next(31)`.
pub(crate) fn mock_random() -> impl FnMut() -> u64 {
    let mut state: u64 = 17;
    move || {
        state = state.wrapping_mul(2862933555777941757).wrapping_add(3037000493);
        state
    }
}

/// Runs `f` with a context whose topic ids count up from 100 and whose random source
/// is [`mock_random`]; which brokers may host replicas comes from the image.
pub(crate) fn with_ctx<T>(next_id: &mut u128, f: impl FnOnce(&mut ControllerContext<'_>) -> T) -> T {
    let mut new_uuid = || {
        *next_id += 1;
        Uuid::from_u128(*next_id + 100)
    };
    let mut random = mock_random();
    let mut ctx = ControllerContext {
        node_id: 1,
        default_num_partitions: 1,
        default_replication_factor: 1,
        validate_topic_config: &validate,
        validate_broker_config: &validate,
        validate_group_configs: &|_| Ok(()),
        is_list_config: &is_list,
        default_value: &|_, _| None,
        new_uuid: &mut new_uuid,
        random: &mut random,
    };
    f(&mut ctx)
}

/// Replays records into `image`, panicking on the first error (tests only).
pub(crate) fn apply(image: &mut MetadataImage, records: &[MetadataRecord]) {
    for record in records {
        image.replay(record).unwrap_or_else(|error| panic!("replay of {record:?} failed: {error}"));
    }
}

/// Sets a broker's fenced and controlled-shutdown state in `image` by replaying the
/// record Kafka writes for it.
pub(crate) fn set_broker_state(image: &mut MetadataImage, broker_id: i32, fenced: bool, shutting_down: bool) {
    use gregor_protocol::messages::broker_registration_change_record::BrokerRegistrationChangeRecord;
    let epoch = image.broker(broker_id).map(|broker| broker.epoch).unwrap_or_default();
    let record = BrokerRegistrationChangeRecord {
        broker_id,
        broker_epoch: epoch,
        fenced: if fenced { 1 } else { -1 },
        in_controlled_shutdown: i8::from(shutting_down),
        ..Default::default()
    };
    apply(image, &[MetadataRecord::BrokerRegistrationChange(record)]);
}

/// An image with brokers 1..=n registered and unfenced.
pub(crate) fn cluster(brokers: i32) -> MetadataImage {
    let mut image = MetadataImage::empty();
    apply(&mut image, &crate::controller::bootstrap(1, &[("PLAINTEXT".into(), "localhost".into(), 9092)], 5));
    for id in 2..=brokers {
        apply(&mut image, &crate::controller::register_broker(id, Uuid::from_u128(id as u128), &[], 7));
    }
    image
}

/// Registers broker `id` as a new incarnation (fenced, as Kafka registers it) with one
/// log directory and the given rack, at epoch `100 + id`.
pub(crate) fn register(image: &mut MetadataImage, id: i32, rack: Option<&str>) {
    use crate::controller::brokers::{register_broker, BrokerRegistrationRequest, BrokerSessions};
    let request = BrokerRegistrationRequest {
        broker_id: id,
        incarnation_id: Uuid::from_u128(5000 + id as u128),
        listeners: vec![crate::image::BrokerEndpoint {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9000 + id as u16,
            security_protocol: 0,
        }],
        features: crate::controller::supported_features()
            .iter()
            .map(|feature| (feature.name.to_string(), feature.min_level, feature.max_level))
            .collect(),
        rack: rack.map(str::to_string),
        log_dirs: vec![Uuid::from_u128(7000 + id as u128)],
    };
    let (records, epoch) = register_broker(image, &mut BrokerSessions::new(), &request, 100 + i64::from(id), 0, 9000);
    assert_eq!(epoch, Ok(100 + i64::from(id)));
    apply(image, &records);
}
