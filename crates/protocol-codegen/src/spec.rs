//! The in-memory model of `protocol-specs/` and its parser.

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// The newest version any message can have; `N+` ranges end here.
pub const VERSION_OPEN_END: i16 = i16::MAX;

/// An inclusive range of versions; empty when `min > max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    pub min: i16,
    pub max: i16,
}

impl Versions {
    pub const NONE: Versions = Versions { min: 1, max: 0 };

    pub fn parse(text: &str) -> Result<Versions> {
        if text == "none" {
            return Ok(Versions::NONE);
        }
        if let Some(min) = text.strip_suffix('+') {
            return Ok(Versions { min: min.parse()?, max: VERSION_OPEN_END });
        }
        if let Some((min, max)) = text.split_once('-') {
            let versions = Versions { min: min.parse()?, max: max.parse()? };
            if versions.is_empty() {
                bail!("empty version range {text}");
            }
            return Ok(versions);
        }
        let single = text.parse().with_context(|| format!("bad version range {text:?}"))?;
        Ok(Versions { min: single, max: single })
    }

    pub fn is_empty(&self) -> bool {
        self.min > self.max
    }

    pub fn contains(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    pub fn intersect(&self, other: &Versions) -> Versions {
        let out = Versions { min: self.min.max(other.min), max: self.max.min(other.max) };
        if out.is_empty() {
            Versions::NONE
        } else {
            out
        }
    }

    /// True when every version of `within` is in `self`.
    pub fn covers(&self, within: &Versions) -> bool {
        within.is_empty() || (self.min <= within.min && within.max <= self.max)
    }

    /// The versions in `self` but not in `other`, which must be one contiguous range.
    pub fn subtract(&self, other: &Versions) -> Result<Versions> {
        let overlap = self.intersect(other);
        if overlap.is_empty() {
            return Ok(*self);
        }
        if overlap == *self {
            return Ok(Versions::NONE);
        }
        if overlap.min == self.min {
            Ok(Versions { min: overlap.max + 1, max: self.max })
        } else if overlap.max == self.max {
            Ok(Versions { min: self.min, max: overlap.min - 1 })
        } else {
            bail!("{self} minus {other} is not contiguous")
        }
    }
}

impl std::fmt::Display for Versions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_empty() {
            write!(f, "none")
        } else if self.max == VERSION_OPEN_END {
            write!(f, "{}+", self.min)
        } else if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Primitive {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float64,
    Uuid,
    String,
    Bytes,
    Records,
}

impl Primitive {
    pub fn parse(name: &str) -> Option<Primitive> {
        Some(match name {
            "bool" => Primitive::Bool,
            "int8" => Primitive::Int8,
            "int16" => Primitive::Int16,
            "uint16" => Primitive::Uint16,
            "int32" => Primitive::Int32,
            "uint32" => Primitive::Uint32,
            "int64" => Primitive::Int64,
            "float64" => Primitive::Float64,
            "uuid" => Primitive::Uuid,
            "string" => Primitive::String,
            "bytes" => Primitive::Bytes,
            "records" => Primitive::Records,
            _ => return None,
        })
    }

    pub fn spec_name(&self) -> &'static str {
        match self {
            Primitive::Bool => "bool",
            Primitive::Int8 => "int8",
            Primitive::Int16 => "int16",
            Primitive::Uint16 => "uint16",
            Primitive::Int32 => "int32",
            Primitive::Uint32 => "uint32",
            Primitive::Int64 => "int64",
            Primitive::Float64 => "float64",
            Primitive::Uuid => "uuid",
            Primitive::String => "string",
            Primitive::Bytes => "bytes",
            Primitive::Records => "records",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldType {
    Primitive(Primitive),
    Struct(String),
    Array(Box<FieldType>),
}

impl FieldType {
    pub fn parse(text: &str) -> Result<FieldType> {
        if let Some(element) = text.strip_prefix("[]") {
            let element = FieldType::parse(element)?;
            if matches!(element, FieldType::Array(_)) {
                bail!("arrays of arrays are not part of the protocol: {text}");
            }
            return Ok(FieldType::Array(Box::new(element)));
        }
        if let Some(primitive) = Primitive::parse(text) {
            return Ok(FieldType::Primitive(primitive));
        }
        if !text.starts_with(|c: char| c.is_ascii_uppercase()) {
            bail!("unknown type {text:?}");
        }
        Ok(FieldType::Struct(text.to_string()))
    }

    /// The struct this type names, directly or as an array element.
    pub fn struct_name(&self) -> Option<&str> {
        match self {
            FieldType::Struct(name) => Some(name),
            FieldType::Array(element) => element.struct_name(),
            FieldType::Primitive(_) => None,
        }
    }
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldType::Primitive(p) => write!(f, "{}", p.spec_name()),
            FieldType::Struct(name) => write!(f, "{name}"),
            FieldType::Array(element) => write!(f, "[]{element}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub versions: Versions,
    pub nullable: Versions,
    pub tag: Option<u32>,
    pub tagged: Versions,
    pub default: Option<String>,
    pub ignorable: bool,
    pub map_key: bool,
    pub entity: Option<String>,
    /// `Some(NONE)` keeps the non-compact encoding in flexible versions.
    pub flexible_override: Option<Versions>,
    pub zero_copy: bool,
    /// A secret (SASL bytes, token HMACs, SCRAM salts and keys): printed redacted.
    pub sensitive: bool,
    /// The fields of the struct this field defines inline.
    pub fields: Vec<Field>,
}

#[derive(Clone, Debug)]
pub struct StructDef {
    pub name: String,
    pub versions: Versions,
    pub fields: Vec<Field>,
}

#[derive(Clone, Debug)]
pub struct MessageSpec {
    pub name: String,
    /// request, response, header, data or metadata.
    pub kind: String,
    /// The API key of a request or response, the record type of a metadata record.
    pub api_key: Option<i16>,
    pub versions: Versions,
    pub flexible: Versions,
    pub fields: Vec<Field>,
    pub common_structs: Vec<StructDef>,
}

#[derive(Clone, Debug)]
pub struct ApiSpec {
    pub name: String,
    pub key: i16,
    pub versions: Versions,
    pub flexible: Versions,
    pub listeners: Vec<String>,
    pub request: MessageSpec,
    pub response: MessageSpec,
}

#[derive(Clone, Debug)]
pub enum SpecFile {
    Api(Box<ApiSpec>),
    Records(Vec<MessageSpec>),
}

#[derive(Clone, Debug)]
pub struct LoadedSpec {
    /// Relative to the specs directory, with `/` separators.
    pub path: String,
    pub file: SpecFile,
}

/// Reads every `*.spec` under `dir`, sorted by path.
pub fn load_dir(dir: &Path) -> Result<Vec<LoadedSpec>> {
    let mut paths = Vec::new();
    collect_specs(dir, &mut paths)?;
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let rel = path.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
        let file = parse_file(&text).with_context(|| format!("in {}", path.display()))?;
        out.push(LoadedSpec { path: rel, file });
    }
    Ok(out)
}

fn collect_specs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_specs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "spec") {
            out.push(path);
        }
    }
    Ok(())
}

/// Key=value attributes and bare flags after the positional words of a line.
struct Attributes<'a> {
    words: Vec<&'a str>,
}

impl<'a> Attributes<'a> {
    fn value(&self, key: &str) -> Option<&'a str> {
        self.words.iter().find_map(|w| w.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
    }

    fn flag(&self, key: &str) -> bool {
        self.words.contains(&key)
    }

    fn check_known(&self, known: &[&str]) -> Result<()> {
        for word in &self.words {
            let key = word.split('=').next().unwrap_or(word);
            if !known.contains(&key) {
                bail!("unknown attribute {word:?}");
            }
        }
        Ok(())
    }

    fn versions(&self, key: &str) -> Result<Option<Versions>> {
        self.value(key).map(Versions::parse).transpose()
    }
}

struct Line<'a> {
    number: usize,
    indent: usize,
    words: Vec<&'a str>,
}

pub fn parse_file(text: &str) -> Result<SpecFile> {
    let mut lines = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let content = raw.split('#').next().unwrap_or("");
        if content.trim().is_empty() {
            continue;
        }
        let spaces = content.len() - content.trim_start().len();
        if spaces % 2 != 0 {
            bail!("line {}: indentation must be a multiple of two spaces", index + 1);
        }
        lines.push(Line { number: index + 1, indent: spaces / 2, words: content.split_whitespace().collect() });
    }
    let mut cursor = 0;
    let first = lines.first().ok_or_else(|| anyhow!("empty spec file"))?;
    if first.words[0] == "api" {
        let api = parse_api(&lines, &mut cursor)?;
        if cursor != lines.len() {
            bail!("line {}: unexpected content after the response", lines[cursor].number);
        }
        return Ok(SpecFile::Api(Box::new(api)));
    }
    let mut records = Vec::new();
    while cursor < lines.len() {
        let line = &lines[cursor];
        let (kind_word, name) = match line.words.as_slice() {
            [kind @ ("record" | "header"), name, ..] => (*kind, *name),
            _ => bail!("line {}: expected `record` or `header`", line.number),
        };
        let attrs = Attributes { words: line.words[2..].to_vec() };
        attrs.check_known(&["kind", "key", "versions", "flexible"])?;
        let kind = if kind_word == "header" { "header" } else { attrs.value("kind").unwrap_or("data") };
        cursor += 1;
        let (fields, common_structs) = parse_body(&lines, &mut cursor, 1)?;
        records.push(MessageSpec {
            name: name.to_string(),
            kind: kind.to_string(),
            api_key: attrs.value("key").map(str::parse).transpose()?,
            versions: attrs.versions("versions")?.ok_or_else(|| anyhow!("{name}: versions missing"))?,
            flexible: attrs.versions("flexible")?.unwrap_or(Versions::NONE),
            fields,
            common_structs,
        });
    }
    Ok(SpecFile::Records(records))
}

fn parse_api(lines: &[Line], cursor: &mut usize) -> Result<ApiSpec> {
    let line = &lines[*cursor];
    let name = line.words.get(1).ok_or_else(|| anyhow!("api without a name"))?.to_string();
    let attrs = Attributes { words: line.words[2..].to_vec() };
    attrs.check_known(&["key", "versions", "flexible", "listeners"])?;
    let key: i16 = attrs.value("key").ok_or_else(|| anyhow!("api key missing"))?.parse()?;
    let versions = attrs.versions("versions")?.ok_or_else(|| anyhow!("api versions missing"))?;
    let flexible = attrs.versions("flexible")?.unwrap_or(Versions::NONE);
    let listeners = attrs.value("listeners").map(|l| l.split(',').map(str::to_string).collect()).unwrap_or_default();
    *cursor += 1;
    let mut messages = Vec::new();
    for expected in ["request", "response"] {
        let line = lines.get(*cursor).ok_or_else(|| anyhow!("{expected} section missing"))?;
        match line.words.as_slice() {
            [kind, message_name] if *kind == expected && line.indent == 0 => {
                *cursor += 1;
                let (fields, common_structs) = parse_body(lines, cursor, 1)?;
                messages.push(MessageSpec {
                    name: message_name.to_string(),
                    kind: expected.to_string(),
                    api_key: Some(key),
                    versions,
                    flexible,
                    fields,
                    common_structs,
                });
            }
            _ => bail!("line {}: expected `{expected} <Name>`", line.number),
        }
    }
    let response = messages.pop().ok_or_else(|| anyhow!("response missing"))?;
    let request = messages.pop().ok_or_else(|| anyhow!("request missing"))?;
    Ok(ApiSpec { name, key, versions, flexible, listeners, request, response })
}

fn parse_body(lines: &[Line], cursor: &mut usize, indent: usize) -> Result<(Vec<Field>, Vec<StructDef>)> {
    let mut fields = Vec::new();
    let mut structs = Vec::new();
    while let Some(line) = lines.get(*cursor) {
        if line.indent < indent {
            break;
        }
        if line.indent > indent {
            bail!("line {}: unexpected indentation", line.number);
        }
        if line.words[0] == "struct" {
            let name = line.words.get(1).ok_or_else(|| anyhow!("line {}: struct name missing", line.number))?;
            let versions = match line.words.get(2) {
                Some(v) => Versions::parse(v)?,
                None => Versions { min: 0, max: VERSION_OPEN_END },
            };
            *cursor += 1;
            let (struct_fields, nested) = parse_body(lines, cursor, indent + 1)?;
            if !nested.is_empty() {
                bail!("line {}: common structs cannot nest common structs", line.number);
            }
            structs.push(StructDef { name: name.to_string(), versions, fields: struct_fields });
        } else {
            *cursor += 1;
            let mut field = parse_field(line).with_context(|| format!("line {}", line.number))?;
            let (children, nested) = parse_body(lines, cursor, indent + 1)?;
            if !nested.is_empty() {
                bail!("line {}: common structs belong at the top of a message", line.number);
            }
            if !children.is_empty() && field.ty.struct_name().is_none() {
                bail!("line {}: only struct fields have children", line.number);
            }
            field.fields = children;
            fields.push(field);
        }
    }
    Ok((fields, structs))
}

fn parse_field(line: &Line) -> Result<Field> {
    let [name, ty, versions, rest @ ..] = line.words.as_slice() else {
        bail!("a field needs a name, a type and versions");
    };
    let attrs = Attributes { words: rest.to_vec() };
    attrs.check_known(&[
        "nullable",
        "default",
        "tag",
        "tagged",
        "ignorable",
        "mapkey",
        "entity",
        "flexible",
        "zerocopy",
        "sensitive",
    ])?;
    let tag = attrs.value("tag").map(str::parse).transpose()?;
    let tagged = attrs.versions("tagged")?.unwrap_or(Versions::NONE);
    if tag.is_some() == tagged.is_empty() {
        bail!("field {name}: `tag` and `tagged` go together");
    }
    Ok(Field {
        name: name.to_string(),
        ty: FieldType::parse(ty)?,
        versions: Versions::parse(versions)?,
        nullable: attrs.versions("nullable")?.unwrap_or(Versions::NONE),
        tag,
        tagged,
        default: attrs.value("default").map(str::to_string),
        ignorable: attrs.flag("ignorable"),
        map_key: attrs.flag("mapkey"),
        entity: attrs.value("entity").map(str::to_string),
        flexible_override: attrs.versions("flexible")?,
        zero_copy: attrs.flag("zerocopy"),
        sensitive: attrs.flag("sensitive"),
        fields: Vec::new(),
    })
}

/// Kafka's PascalCase field and message names as Rust snake_case.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_kafka_names() {
        assert_eq!(snake_case("ThrottleTimeMs"), "throttle_time_ms");
        assert_eq!(snake_case("TopicId"), "topic_id");
        assert_eq!(snake_case("KRaftVersionRecord"), "k_raft_version_record");
        assert_eq!(snake_case("group"), "group");
    }

    #[test]
    fn versions_parse_and_print() {
        for text in ["none", "3", "0-12", "9+"] {
            assert_eq!(Versions::parse(text).unwrap().to_string(), text);
        }
        let all = Versions::parse("0+").unwrap();
        assert_eq!(all.subtract(&Versions::parse("3+").unwrap()).unwrap().to_string(), "0-2");
    }
}
