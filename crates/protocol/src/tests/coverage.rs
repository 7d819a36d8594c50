//! The API table covers what the protocol crate promises: every key 0-92 but the
//! ZooKeeper-era 4-7, each from version 0, with Kafka's flexible thresholds.

use crate::ApiKey;

#[test]
fn every_api_key_but_zookeeper_ones_is_known() {
    let keys: Vec<i16> = ApiKey::ALL.iter().map(|k| k.key()).collect();
    let expected: Vec<i16> = (0..=92).filter(|k| !(4..=7).contains(k)).collect();
    assert_eq!(keys, expected);
    for key in expected {
        assert_eq!(ApiKey::from_i16(key).map(ApiKey::key), Some(key));
    }
    assert_eq!(ApiKey::from_i16(4), None);
    assert_eq!(ApiKey::from_i16(93), None);
}

#[test]
fn newest_versions_and_flexible_thresholds_match_kafka() {
    // (API, newest version of Kafka 4.2, first flexible version)
    let table = [
        (ApiKey::Produce, 13, 9),
        (ApiKey::Fetch, 18, 12),
        (ApiKey::ListOffsets, 11, 6),
        (ApiKey::Metadata, 13, 9),
        (ApiKey::OffsetCommit, 10, 8),
        (ApiKey::OffsetFetch, 10, 6),
        (ApiKey::FindCoordinator, 6, 3),
        (ApiKey::JoinGroup, 9, 6),
        (ApiKey::SyncGroup, 5, 4),
        (ApiKey::ApiVersions, 4, 3),
        (ApiKey::CreateTopics, 7, 5),
        (ApiKey::InitProducerId, 6, 2),
        (ApiKey::ConsumerGroupHeartbeat, 1, 0),
        (ApiKey::ShareFetch, 2, 0),
    ];
    for (api, newest, flexible) in table {
        assert_eq!(api.versions().min, 0, "{api:?} keeps the versions old clients send");
        assert_eq!(api.versions().max, newest, "{api:?}");
        assert_eq!(api.flexible_versions().min, flexible, "{api:?}");
    }
    assert!(ApiKey::SaslHandshake.flexible_versions().is_empty());
}
