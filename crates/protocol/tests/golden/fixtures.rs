//! Loading the fixtures and manifests, and small helpers the tests share.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::Value;

use gregor_protocol::frame::{decode_request, DecodedRequest};
use gregor_protocol::{ApiKey, Uuid};

use crate::{CLIENTS, TOPIC};

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("golden")
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("parsing {}: {error}", path.display()))
}

pub fn manifest(client: &str) -> Value {
    read_json(&golden_dir().join(client).join("manifest.json"))
}

/// One manifest entry and the frame bytes of its file, not yet decoded.
pub struct RawFixture {
    pub client: &'static str,
    pub entry: Value,
    pub frame: Bytes,
}

impl RawFixture {
    pub fn name(&self) -> String {
        format!("{}/{}", self.client, str_field(&self.entry, "file"))
    }
}

pub fn raw_fixtures() -> Vec<RawFixture> {
    let mut fixtures = Vec::new();
    for client in CLIENTS {
        let manifest = manifest(client);
        let entries = manifest["fixtures"].as_array().unwrap_or_else(|| panic!("{client}: manifest has no fixtures"));
        for entry in entries {
            let file = str_field(entry, "file");
            let path = golden_dir().join(client).join(file);
            let frame = std::fs::read(&path).unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
            fixtures.push(RawFixture { client, entry: entry.clone(), frame: Bytes::from(frame) });
        }
    }
    fixtures
}

/// A fixture whose frame decoded.
pub struct Fixture {
    pub client: &'static str,
    pub entry: Value,
    pub decoded: DecodedRequest,
}

impl Fixture {
    pub fn name(&self) -> String {
        format!("{}/{}", self.client, str_field(&self.entry, "file"))
    }

    pub fn version(&self) -> i16 {
        self.decoded.header.request_api_version
    }

    pub fn client_id(&self) -> &str {
        self.decoded.header.client_id.as_deref().unwrap_or_default()
    }

    pub fn profile(&self) -> &str {
        str_field(&self.entry, "broker_profile")
    }

    pub fn correlation_id(&self) -> i32 {
        self.decoded.header.correlation_id
    }

    pub fn body_json(&self) -> &Value {
        &self.entry["body"]
    }

    pub fn is_kafka_python(&self) -> bool {
        self.client == "kafka-python"
    }
}

/// Every fixture, decoded; panics naming the first that does not decode (the
/// `every_fixture_*` tests report all of them).
fn fixtures() -> Vec<Fixture> {
    raw_fixtures()
        .into_iter()
        .map(|raw| {
            let decoded = decode_request(raw.frame.clone())
                .unwrap_or_else(|error| panic!("{}: does not decode: {error}", raw.name()));
            Fixture { client: raw.client, entry: raw.entry, decoded }
        })
        .collect()
}

pub fn fixtures_of(api_key: ApiKey) -> Vec<Fixture> {
    let selected: Vec<Fixture> = fixtures().into_iter().filter(|fixture| fixture.decoded.api_key == api_key).collect();
    assert!(!selected.is_empty(), "no {} fixtures", api_key.name());
    selected
}

pub fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("manifest: {key} is not a string in {value}"))
}

pub fn int_field(value: &Value, key: &str) -> i64 {
    value[key].as_i64().unwrap_or_else(|| panic!("manifest: {key} is not an integer in {value}"))
}

/// `ApiVersions` -> `api_versions`, as in the fixture file names.
pub fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (index, character) in name.chars().enumerate() {
        if character.is_ascii_uppercase() && index > 0 {
            out.push('_');
        }
        out.push(character.to_ascii_lowercase());
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub fn unhex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .filter(|pair| pair.len() == 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .unwrap_or_else(|| panic!("bad hex {text:?}"))
        })
        .collect()
}

fn parse_uuid(text: &str) -> Uuid {
    let digits: String = text.chars().filter(|character| *character != '-').collect();
    Uuid::from_u128(u128::from_str_radix(&digits, 16).unwrap_or_else(|_| panic!("bad uuid {text:?}")))
}

pub fn golden_topic_id(client: &str) -> Uuid {
    parse_uuid(str_field(&manifest(client)["topic_ids"], TOPIC))
}
