//! Golden request frames captured from real clients (kafka-python and
//! librdkafka, see `tests/golden/README.md`): every fixture must decode, carry
//! the header and body values its `manifest.json` entry records, and re-encode
//! to exactly the bytes the client sent.
//!
//! The manifests hold kafka-python's decoding of each body under Kafka's field
//! names in snake_case, which are also the names of the generated Rust fields.
//! [`to_json::ToJson`] renders a decoded body in the same shape (record batches parsed
//! and decompressed, consumer-protocol bytes decoded) and [`manifest::compare`] checks
//! every value the manifest lists, so a field that decodes wrongly is reported
//! by its path. The `scenario_*` tests then assert what the clients were asked
//! to send, with typed access, so a regression reads as a broken scenario.
//!
//! Expected values come from the manifests and the README, never from hashes
//! or compressed bytes: the fixtures are regenerated from time to time.
//!
//! This file holds the shared constants and the header and bookkeeping checks
//! of every fixture; [`fixtures`] loads the fixtures and manifests,
//! [`to_json`] renders decoded bodies, [`mod@manifest`] compares them with the
//! manifests, [`reencode`] checks the byte-exact re-encoding and [`scenarios`]
//! holds the per-API typed assertions.

mod fixtures;
mod manifest;
mod reencode;
mod scenarios;
mod to_json;

use std::collections::BTreeSet;

use gregor_protocol::frame::{decode_request, request_header_version};
use gregor_protocol::ApiKey;

use fixtures::{golden_dir, int_field, manifest, raw_fixtures, snake_case, str_field};

const CLIENTS: [&str; 2] = ["kafka-python", "librdkafka"];
const TOPIC: &str = "golden-topic";
const GROUP: &str = "golden-group";
/// librdkafka's `rdk-fetch` consumer needs a group id to `assign`.
const FETCH_GROUP: &str = "golden-fetch-group";
const RECORD_COUNT: usize = 10;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;
/// Far above the 462 bytes the golden batches decompress to.
const DECOMPRESSED_BYTES_MAX: usize = 1 << 20;

#[test]
fn every_fixture_file_has_a_manifest_entry_and_back() {
    let mut total = 0;
    for client in CLIENTS {
        let listed: BTreeSet<String> = manifest(client)["fixtures"]
            .as_array()
            .expect("fixtures array")
            .iter()
            .map(|entry| str_field(entry, "file").to_owned())
            .collect();
        let on_disk: BTreeSet<String> = std::fs::read_dir(golden_dir().join(client))
            .expect("fixture directory")
            .map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".bin"))
            .collect();
        assert_eq!(listed, on_disk, "{client}: manifest entries and .bin files differ");
        assert!(on_disk.len() >= 30, "{client}: only {} fixtures", on_disk.len());
        total += on_disk.len();

        // The APIs the capture covers (see the README tables).
        let mut apis: BTreeSet<&str> = BTreeSet::new();
        for entry in manifest(client)["fixtures"].as_array().expect("fixtures array") {
            let key = ApiKey::from_i16(int_field(entry, "api_key") as i16).expect("known api key");
            apis.insert(key.name());
        }
        let mut expected: BTreeSet<&str> = [
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::Produce,
            ApiKey::ListOffsets,
            ApiKey::Fetch,
            ApiKey::FindCoordinator,
            ApiKey::JoinGroup,
            ApiKey::SyncGroup,
            ApiKey::Heartbeat,
            ApiKey::OffsetFetch,
            ApiKey::OffsetCommit,
            ApiKey::LeaveGroup,
        ]
        .iter()
        .map(|key| key.name())
        .collect();
        if client == "kafka-python" {
            // Only kafka-python's producer is idempotent.
            expected.insert(ApiKey::InitProducerId.name());
        }
        assert_eq!(apis, expected, "{client}: APIs covered");
    }
    assert!(total >= 60, "only {total} fixtures in all");
}

/// Header fields, manifest bookkeeping and decoding, for every fixture at once.
#[test]
fn every_fixture_decodes_with_the_manifest_header() {
    let mut failures = Vec::new();
    let fixtures = raw_fixtures();
    for raw in &fixtures {
        let entry = &raw.entry;
        let name = raw.name();
        let file = str_field(entry, "file");
        let mut fail = |what: String| failures.push(format!("{name}: {what}"));

        let api_key_raw = int_field(entry, "api_key");
        let version = int_field(entry, "api_version");
        if int_field(entry, "request_api_key") != api_key_raw || int_field(entry, "request_api_version") != version {
            fail("manifest api_key/api_version disagree with request_api_key/request_api_version".into());
        }
        if int_field(entry, "size") != raw.frame.len() as i64 {
            fail(format!("manifest size {} but the file has {} bytes", entry["size"], raw.frame.len()));
        }
        let Some(api_key) = ApiKey::from_i16(api_key_raw as i16) else {
            fail(format!("unknown api key {api_key_raw}"));
            continue;
        };
        let version = version as i16;
        if str_field(entry, "api") != api_key.name() {
            fail(format!("manifest api {} but key {api_key_raw} is {}", entry["api"], api_key.name()));
        }
        let file_prefix = format!("{}_v{version}_", snake_case(api_key.name()));
        if !file.starts_with(&file_prefix) {
            fail(format!("file name does not start with {file_prefix}"));
        }
        let header_version = request_header_version(api_key, version);
        if int_field(entry, "request_header_version") != i64::from(header_version) {
            fail(format!(
                "the client used request header v{} but Gregor expects v{header_version} for {} v{version}",
                entry["request_header_version"],
                api_key.name()
            ));
        }

        let decoded = match decode_request(raw.frame.clone()) {
            Ok(decoded) => decoded,
            Err(error) => {
                fail(format!("does not decode: {error}"));
                continue;
            }
        };
        let header = &decoded.header;
        if decoded.api_key != api_key || decoded.body.api_key() != api_key {
            fail(format!("decoded as {} / {}", decoded.api_key.name(), decoded.body.api_key().name()));
        }
        if header.request_api_key != api_key.key() || header.request_api_version != version {
            fail(format!("header key/version {}/{}", header.request_api_key, header.request_api_version));
        }
        if i64::from(header.correlation_id) != int_field(entry, "correlation_id") {
            fail(format!("correlation id {} but manifest {}", header.correlation_id, entry["correlation_id"]));
        }
        if header.client_id.as_deref() != entry["client_id"].as_str() {
            fail(format!("client id {:?} but manifest {}", header.client_id, entry["client_id"]));
        }
        if header.client_id.as_deref() != Some(str_field(entry, "scenario")) {
            fail(format!("client id {:?} is not the scenario {}", header.client_id, entry["scenario"]));
        }
        if !header.unknown_tagged_fields.is_empty() {
            fail(format!("header has unknown tagged fields {:?}", header.unknown_tagged_fields));
        }
        // The clients set no tagged field Gregor does not know.
        if format!("{:?}", decoded.body).contains("RawTaggedField") {
            fail(format!("body kept unknown tagged fields: {:?}", decoded.body));
        }
    }
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{} golden fixtures decoded", fixtures.len());
}
