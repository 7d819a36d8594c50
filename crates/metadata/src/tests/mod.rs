//! Tests of the crate, sharing one harness.

mod controller;
mod image;
mod limits;
mod prop;
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

/// Runs `f` with a context over `alive` brokers whose ids count up from 100.
pub(crate) fn with_ctx<T>(alive: &[i32], next_id: &mut u128, f: impl FnOnce(&mut ControllerContext<'_>) -> T) -> T {
    let mut new_uuid = || {
        *next_id += 1;
        Uuid::from_u128(*next_id + 100)
    };
    let mut ctx = ControllerContext {
        node_id: 1,
        alive_brokers: alive,
        default_num_partitions: 1,
        default_replication_factor: 1,
        validate_topic_config: &validate,
        validate_broker_config: &validate,
        validate_group_configs: &|_| Ok(()),
        is_list_config: &is_list,
        default_value: &|_, _| None,
        new_uuid: &mut new_uuid,
    };
    f(&mut ctx)
}

/// Replays records into `image`, panicking on the first error (tests only).
pub(crate) fn apply(image: &mut MetadataImage, records: &[MetadataRecord]) {
    for record in records {
        image.replay(record).unwrap_or_else(|error| panic!("replay of {record:?} failed: {error}"));
    }
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
