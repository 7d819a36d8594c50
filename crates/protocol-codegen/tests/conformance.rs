//! Compares every spec of ours with Apache Kafka's own message definitions in
//! `../shared/kafka-reference` (when that folder exists): for every version each
//! reference file defines, the same fields in the same order with the same names,
//! types, nullability, tags and defaults, and the same flexible versions. Prints
//! every difference, then fails if there was any.

use anyhow::{anyhow, Context, Result};
use gregor_protocol_codegen::spec::{self, Field, FieldType, MessageSpec, SpecFile, Versions};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Fields Kafka renamed without changing the bytes; the reference has the old name.
const RENAMES: &[(&str, &str, &str)] = &[
    ("VoteRequest", "CandidateEpoch", "ReplicaEpoch"),
    ("VoteRequest", "CandidateId", "ReplicaId"),
    ("VoteRequest", "CandidateDirectoryId", "ReplicaDirectoryId"),
    ("ListClientMetricsResourcesResponse", "ClientMetricsResources", "ConfigResources"),
    ("ListClientMetricsResourcesResponse", "Name", "ResourceName"),
    ("ListClientMetricsResourcesResponse", "ClientMetricsResource", "ConfigResource"),
    ("ListClientMetricsResourcesResponse", "ListClientMetricsResourcesResponse", "ListConfigResourcesResponse"),
    ("ListClientMetricsResourcesRequest", "ListClientMetricsResourcesRequest", "ListConfigResourcesRequest"),
];

/// API keys Gregor leaves out on purpose: ZooKeeper-era inter-broker APIs that
/// Kafka 4.0 removed (LeaderAndIsr, StopReplica, UpdateMetadata, ControlledShutdown).
const EXCLUDED_API_KEYS: &[i64] = &[4, 5, 6, 7];

/// Reference definitions Gregor leaves out on purpose: Kafka Streams' own
/// client-side subscription data, which a broker never reads or writes.
const EXCLUDED_DEFINITIONS: &[&str] = &["SubscriptionInfoData"];

fn reference_dir() -> PathBuf {
    gregor_protocol_codegen::workspace_root().join("../shared/kafka-reference")
}

fn load_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)?;
    // The reference files carry comments; strip `//` line comments and `/* */` blocks.
    let mut cleaned = String::with_capacity(text.len());
    let mut in_block = false;
    for line in text.lines() {
        let mut rest = line;
        let mut kept = String::new();
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        rest = &rest[end + 2..];
                        in_block = false;
                    }
                    None => break,
                }
            } else if let Some(start) = rest.find("/*") {
                let before = &rest[..start];
                if let Some(comment) = before.find("//") {
                    kept.push_str(&before[..comment]);
                    break;
                }
                kept.push_str(before);
                rest = &rest[start + 2..];
                in_block = true;
            } else {
                match rest.find("//") {
                    Some(comment) => kept.push_str(&rest[..comment]),
                    None => kept.push_str(rest),
                }
                break;
            }
        }
        cleaned.push_str(&kept);
        cleaned.push('\n');
    }
    serde_json::from_str(&cleaned).with_context(|| format!("parsing {}", path.display()))
}

fn versions_of(value: Option<&Value>) -> Result<Versions> {
    match value.and_then(Value::as_str) {
        Some(text) => Versions::parse(text.trim()),
        None => Ok(Versions::NONE),
    }
}

/// A field as the reference defines it, reduced to the facts we compare.
struct RefField<'a> {
    json: &'a Value,
}

impl RefField<'_> {
    fn name(&self) -> &str {
        self.json["name"].as_str().unwrap_or("")
    }
    fn versions(&self) -> Result<Versions> {
        match self.json.get("versions") {
            Some(v) => versions_of(Some(v)),
            None => versions_of(self.json.get("taggedVersions")),
        }
    }
}

struct Comparison<'a> {
    differences: &'a mut Vec<String>,
    context: String,
    message: String,
}

fn renamed<'n>(message: &str, name: &'n str) -> &'n str {
    RENAMES.iter().find(|(m, from, _)| *m == message && *from == name).map(|(_, _, to)| *to).unwrap_or(name)
}

fn normalize_default(ty: &str, default: &Value) -> String {
    let text = match default {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let ty = ty.trim_start_matches("[]");
    match ty {
        "bool" => text.to_lowercase(),
        "int8" | "int16" | "uint16" | "int32" | "uint32" | "int64" => {
            let parsed = if let Some(hex) = text.strip_prefix("0x") {
                i128::from_str_radix(hex, 16).ok()
            } else {
                text.parse::<i128>().ok()
            };
            parsed.map(|v| v.to_string()).unwrap_or(text)
        }
        "string" if text != "null" => format!("{text:?}"),
        _ if text == "None" => "null".into(),
        _ => text,
    }
}

fn type_shape(message: &str, ty: &str) -> String {
    match ty.strip_prefix("[]") {
        Some(element) => format!("[]{}", renamed(message, element)),
        None => renamed(message, ty).to_string(),
    }
}

impl Comparison<'_> {
    fn diff(&mut self, text: String) {
        self.differences.push(format!("{}: {text}", self.context));
    }

    /// Compares the fields present at `version` of a reference struct and ours.
    fn fields(
        &mut self,
        version: i16,
        path: &str,
        reference: &[Value],
        ref_structs: &BTreeMap<String, &Vec<Value>>,
        ours: &[Field],
        our_structs: &BTreeMap<String, &Vec<Field>>,
    ) -> Result<()> {
        let ref_present: Vec<RefField> = reference
            .iter()
            .map(|json| RefField { json })
            .filter(|f| f.versions().map(|v| v.contains(version)).unwrap_or(false))
            .collect();
        let our_present: Vec<&Field> = ours.iter().filter(|f| f.versions.contains(version)).collect();
        let ref_names: Vec<String> = ref_present.iter().map(|f| renamed(&self.message, f.name()).to_string()).collect();
        let our_names: Vec<String> = our_present.iter().map(|f| f.name.clone()).collect();
        if ref_names != our_names {
            self.diff(format!("v{version} {path}: fields {ref_names:?} in the reference, {our_names:?} in ours"));
            return Ok(());
        }
        for (r, o) in ref_present.iter().zip(our_present) {
            let field_path = format!("{path}.{}", o.name);
            let ref_type = r.json["type"].as_str().unwrap_or("");
            if type_shape(&self.message, ref_type) != o.ty.to_string() {
                self.diff(format!("v{version} {field_path}: type {ref_type} in the reference, {} in ours", o.ty));
            }
            let ref_nullable = versions_of(r.json.get("nullableVersions"))?.contains(version);
            if ref_nullable != o.nullable.contains(version) {
                self.diff(format!("v{version} {field_path}: nullable {ref_nullable} in the reference"));
            }
            let ref_tagged = versions_of(r.json.get("taggedVersions"))?.contains(version);
            // A few reference files write the tag as a string.
            let ref_tag = r.json.get("tag").and_then(|t| t.as_u64().or_else(|| t.as_str()?.parse().ok()));
            let our_tagged = o.tagged.contains(version);
            if ref_tagged != our_tagged || (ref_tagged && ref_tag != o.tag.map(u64::from)) {
                self.diff(format!("v{version} {field_path}: tag {ref_tag:?} (tagged {ref_tagged}) in the reference, {:?} (tagged {our_tagged}) in ours", o.tag));
            }
            let ref_default = r.json.get("default").map(|d| normalize_default(ref_type, d));
            if ref_default != o.default {
                self.diff(format!(
                    "v{version} {field_path}: default {ref_default:?} in the reference, {:?} in ours",
                    o.default
                ));
            }
            let ref_flexible_none = r.json.get("flexibleVersions").and_then(Value::as_str) == Some("none");
            let our_flexible_none = o.flexible_override.is_some_and(|v| v.is_empty());
            if ref_flexible_none != our_flexible_none {
                self.diff(format!("{field_path}: flexibleVersions override differs"));
            }
            // Recurse into struct fields: inline children or a common struct.
            if let Some(struct_name) = o.ty.struct_name() {
                let ref_children: Option<&Vec<Value>> = r.json.get("fields").and_then(Value::as_array).or_else(|| {
                    let ref_struct = ref_type.trim_start_matches("[]");
                    ref_structs.get(ref_struct).copied()
                });
                let our_children: Option<&Vec<Field>> =
                    if o.fields.is_empty() { our_structs.get(struct_name).copied() } else { Some(&o.fields) };
                match (ref_children, our_children) {
                    (Some(r), Some(c)) => self.fields(version, &field_path, r, ref_structs, c, our_structs)?,
                    _ => self.diff(format!("{field_path}: struct {struct_name} not found on both sides")),
                }
            }
        }
        Ok(())
    }
}

fn compare(
    reference: &Value,
    ours: &MessageSpec,
    source: &str,
    unstable_version: Option<i16>,
    differences: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let ref_name = reference["name"].as_str().unwrap_or("");
    let mut cmp = Comparison { differences, context: format!("{source} vs {}", ours.name), message: ref_name.into() };
    if renamed(ref_name, ref_name) != ours.name {
        cmp.diff(format!("name {ref_name} in the reference"));
    }
    let ref_versions = versions_of(reference.get("validVersions"))?;
    if !ours.versions.covers(&ref_versions) {
        cmp.diff(format!("versions {ref_versions} in the reference, {} in ours", ours.versions));
    }
    let ref_flexible = versions_of(reference.get("flexibleVersions"))?;
    let empty = Vec::new();
    let ref_fields = reference.get("fields").and_then(Value::as_array).unwrap_or(&empty);
    let mut ref_structs = BTreeMap::new();
    for common in reference.get("commonStructs").and_then(Value::as_array).unwrap_or(&empty) {
        if let (Some(name), Some(fields)) = (common["name"].as_str(), common["fields"].as_array()) {
            ref_structs.insert(renamed(ref_name, name).to_string(), fields);
            ref_structs.insert(name.to_string(), fields);
        }
    }
    let our_structs: BTreeMap<String, &Vec<Field>> =
        ours.common_structs.iter().map(|s| (s.name.clone(), &s.fields)).collect();
    for version in ref_versions.min..=ref_versions.max {
        if ref_versions.is_empty() {
            break;
        }
        if unstable_version == Some(version) {
            // The reference marks this version unstable (still being designed when it
            // was copied); ours follows the definition Kafka later released.
            let mut scratch = Vec::new();
            let mut unstable =
                Comparison { differences: &mut scratch, context: cmp.context.clone(), message: cmp.message.clone() };
            unstable.fields(version, &ours.name, ref_fields, &ref_structs, &ours.fields, &our_structs)?;
            notes.extend(scratch.into_iter().map(|d| format!("{d} (unstable in the reference)")));
            continue;
        }
        if ref_flexible.contains(version) != ours.flexible.contains(version) {
            cmp.diff(format!("v{version}: flexible {} in the reference", ref_flexible.contains(version)));
        }
        cmp.fields(version, &ours.name, ref_fields, &ref_structs, &ours.fields, &our_structs)?;
    }
    Ok(())
}

#[test]
fn specs_match_kafka_reference() -> Result<()> {
    let reference = reference_dir();
    if !reference.exists() {
        eprintln!("skipped: {} not present", reference.display());
        return Ok(());
    }
    let root = gregor_protocol_codegen::workspace_root();
    let specs = spec::load_dir(&gregor_protocol_codegen::specs_dir(&root))?;
    let mut by_api: BTreeMap<(i64, String), &MessageSpec> = BTreeMap::new();
    let mut by_name: BTreeMap<String, &MessageSpec> = BTreeMap::new();
    for loaded in &specs {
        match &loaded.file {
            SpecFile::Api(api) => {
                by_api.insert((i64::from(api.key), "request".into()), &api.request);
                by_api.insert((i64::from(api.key), "response".into()), &api.response);
            }
            SpecFile::Records(list) => {
                for record in list {
                    by_name.insert(record.name.clone(), record);
                }
            }
        }
    }
    let mut files = Vec::new();
    for dir in ["message-specs", "message-specs-newer"] {
        files.extend(json_files(&reference.join(dir))?);
    }
    let internal = reference.join("internal-records");
    for entry in std::fs::read_dir(&internal)? {
        files.extend(json_files(&entry?.path())?);
    }
    // Request files flag a latest version that was still unstable; it covers the
    // response of the same API version too.
    let mut unstable: BTreeMap<(String, i64), i16> = BTreeMap::new();
    for path in &files {
        let json = load_json(path)?;
        if json.get("latestVersionUnstable").and_then(Value::as_bool) == Some(true) {
            if let Some(key) = json.get("apiKey").and_then(Value::as_i64) {
                let dir = path.parent().map(|p| p.display().to_string()).unwrap_or_default();
                unstable.insert((dir, key), versions_of(json.get("validVersions"))?.max);
            }
        }
    }
    let mut differences = Vec::new();
    let mut notes = Vec::new();
    let mut compared = 0;
    for path in &files {
        let json = load_json(path)?;
        let source = path.strip_prefix(&reference)?.display().to_string();
        if EXCLUDED_DEFINITIONS.contains(&json["name"].as_str().unwrap_or("")) {
            continue;
        }
        let kind = json.get("type").and_then(Value::as_str).unwrap_or("data");
        let ours = match (kind, json.get("apiKey").and_then(Value::as_i64)) {
            ("request" | "response", Some(key)) => {
                if EXCLUDED_API_KEYS.contains(&key) {
                    continue;
                }
                by_api.get(&(key, kind.to_string())).copied()
            }
            _ => by_name.get(json["name"].as_str().unwrap_or("")).copied(),
        };
        match ours {
            Some(ours) => {
                let dir = path.parent().map(|p| p.display().to_string()).unwrap_or_default();
                let unstable_version =
                    json.get("apiKey").and_then(Value::as_i64).and_then(|key| unstable.get(&(dir, key)).copied());
                compare(&json, ours, &source, unstable_version, &mut differences, &mut notes)?;
                compared += 1;
            }
            None => differences.push(format!("{source}: no spec of ours")),
        }
    }
    for note in &notes {
        println!("note: {note}");
    }
    for difference in &differences {
        println!("{difference}");
    }
    println!("compared {compared} reference definitions, {} differences", differences.len());
    if !differences.is_empty() {
        return Err(anyhow!("{} differences from the Kafka reference", differences.len()));
    }
    Ok(())
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn parser_rejects_malformed_specs() {
    for bad in [
        "api Foo key=1 versions=0-1\n\nrequest FooRequest\n  X int32\n\nresponse FooResponse\n",
        "api Foo key=1 versions=0-1\n\nrequest FooRequest\n  X int99 0+\n\nresponse FooResponse\n",
        "api Foo key=1 versions=0-1\n\nrequest FooRequest\n  X int32 0+ bogus=1\n\nresponse FooResponse\n",
        "api Foo key=1 versions=0-1\n\nrequest FooRequest\n   X int32 0+\n\nresponse FooResponse\n",
        "api Foo key=1 versions=0-1\n\nrequest FooRequest\n  X int32 0+ tag=1\n\nresponse FooResponse\n",
    ] {
        assert!(spec::parse_file(bad).is_err(), "accepted: {bad}");
    }
    let _ = FieldType::parse("[]int32").unwrap();
}
