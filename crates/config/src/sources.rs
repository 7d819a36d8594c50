//! Reading key/value pairs out of the places a broker config can come from: Java
//! properties text, YAML text and environment variables. No validation happens here.

use crate::error::ConfigError;

/// Parses Java `.properties` text as `java.util.Properties.load` does: `#`/`!` comments,
/// `key=value`, `key: value` or `key value`, backslash line continuations and escapes
/// (`\t \n \r \f \uXXXX`, and `\x` for any other x). Later duplicates win when the pairs
/// are collected into a map.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((idx, first)) = lines.next() {
        let line_no = idx + 1;
        let trimmed = first.trim_start_matches([' ', '\t', '\x0c']);
        // Comments are never continued, even when they end in a backslash.
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let mut logical = String::from(trimmed);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                // A continuation line's leading blanks are not part of the value.
                Some((_, next)) => logical.push_str(next.trim_start_matches([' ', '\t', '\x0c'])),
                None => break,
            }
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key).map_err(|reason| ConfigError::Parse { line: line_no, reason })?;
        let value = unescape(raw_value).map_err(|reason| ConfigError::Parse { line: line_no, reason })?;
        out.push((key, value));
    }
    Ok(out)
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped `=`, `:` or blank; blanks around the
/// separator belong to neither side.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut key_end = bytes.len();
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(bytes.len());
    let mut j = key_end;
    while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\x0c') {
        j += 1;
    }
    if j < bytes.len() && matches!(bytes[j], b'=' | b':') {
        j += 1;
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\x0c') {
            j += 1;
        }
    }
    (&line[..key_end], &line[j..])
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4).then(|| u32::from_str_radix(&hex, 16).ok()).flatten();
                let c = code.and_then(char::from_u32).ok_or_else(|| format!("malformed \\u escape \\u{hex}"))?;
                out.push(c);
            }
            Some(other) => out.push(other),
            // A lone trailing backslash (end of file mid-continuation) means nothing.
            None => {}
        }
    }
    Ok(out)
}

/// Parses YAML: a map whose nested maps are joined with '.', so `log: {retention: {hours: 1}}`
/// and `log.retention.hours: 1` are the same key. Scalars become text, sequences of
/// scalars become comma-separated lists, null becomes the empty value.
pub fn parse_yaml(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| ConfigError::Parse { line: e.location().map(|l| l.line()).unwrap_or(0), reason: e.to_string() })?;
    let mut out = Vec::new();
    match doc {
        // An empty file is an empty configuration.
        serde_yaml::Value::Null => {}
        serde_yaml::Value::Mapping(map) => flatten("", &map, &mut out)?,
        _ => return Err(ConfigError::Parse { line: 1, reason: "the document must be a map of keys".into() }),
    }
    Ok(out)
}

fn flatten(prefix: &str, map: &serde_yaml::Mapping, out: &mut Vec<(String, String)>) -> Result<(), ConfigError> {
    for (k, v) in map {
        let part = scalar_text(k)
            .ok_or_else(|| ConfigError::Parse { line: 0, reason: format!("key under {prefix:?} is not a scalar") })?;
        let key = if prefix.is_empty() { part } else { format!("{prefix}.{part}") };
        match v {
            serde_yaml::Value::Mapping(inner) => flatten(&key, inner, out)?,
            serde_yaml::Value::Sequence(items) => {
                let texts: Option<Vec<String>> = items.iter().map(scalar_text).collect();
                let texts = texts.ok_or_else(|| ConfigError::Parse {
                    line: 0,
                    reason: format!("{key}: list elements must be plain values"),
                })?;
                out.push((key, texts.join(",")));
            }
            other => {
                let text = scalar_text(other)
                    .ok_or_else(|| ConfigError::Parse { line: 0, reason: format!("{key}: unsupported value") })?;
                out.push((key, text));
            }
        }
    }
    Ok(())
}

fn scalar_text(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::Null => Some(String::new()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Tagged(t) => scalar_text(&t.value),
        _ => None,
    }
}

/// `KAFKA_*` variables the apache/kafka image and scripts use for the JVM and tools,
/// not for broker settings.
const NOT_BROKER_CONFIGS: &[&str] = &[
    "KAFKA_HEAP_OPTS",
    "KAFKA_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_DEBUG",
    "KAFKA_HOME",
    "KAFKA_VERSION",
    "KAFKA_MODE",
    "KAFKA_CLUSTER_ID",
];
const NOT_BROKER_PREFIXES: &[&str] = &["KAFKA_JMX_", "KAFKA_LOG4J_", "KAFKA_TOOLS_"];

/// Maps an environment variable to a config key the way the apache/kafka image does:
/// strip `KAFKA_`, lower-case, then `___` → `-`, `__` → `_`, `_` → `.`. Returns `None`
/// for variables that are not broker configs.
pub fn env_var_to_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix("KAFKA_")?;
    if rest.is_empty() || NOT_BROKER_CONFIGS.contains(&name) || NOT_BROKER_PREFIXES.iter().any(|p| name.starts_with(p))
    {
        return None;
    }
    let mut key = String::with_capacity(rest.len());
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            key.push(c.to_ascii_lowercase());
            continue;
        }
        let mut run = 1;
        while chars.peek() == Some(&'_') {
            chars.next();
            run += 1;
        }
        // Runs longer than three are read greedily as groups of three, then the rest.
        while run > 0 {
            let take = run.min(3);
            key.push_str(match take {
                3 => "-",
                2 => "_",
                _ => ".",
            });
            run -= take;
        }
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> Vec<(String, String)> {
        parse_properties(text).expect("valid properties")
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn separators_and_comments() {
        let got = props("# c\n! c2\n\n a=1\nb: 2\nc 3\nd\t=\t4\ne\nf=\ng = x = y\n");
        assert_eq!(
            got,
            vec![
                pair("a", "1"),
                pair("b", "2"),
                pair("c", "3"),
                pair("d", "4"),
                pair("e", ""),
                pair("f", ""),
                pair("g", "x = y")
            ]
        );
    }

    #[test]
    fn continuations_and_escapes() {
        let got = props("list=a,\\\n    b,\\\n  c\nk\\=ey=v\\u00e9\\t\\\\\n# comment \\\nz=1\nwin=1\r\n");
        assert_eq!(got[0], pair("list", "a,b,c"));
        assert_eq!(got[1], pair("k=ey", "vé\t\\"));
        assert_eq!(got[2], pair("z", "1"));
        assert_eq!(got[3], pair("win", "1"));
        // An even number of trailing backslashes is an escaped backslash, not a continuation.
        assert_eq!(props("a=x\\\\\nb=y"), vec![pair("a", "x\\"), pair("b", "y")]);
        assert!(matches!(parse_properties("a=\\u12"), Err(ConfigError::Parse { line: 1, .. })));
    }

    #[test]
    fn yaml_flat_and_nested() {
        let got =
            parse_yaml("log.retention.hours: 1\nlog:\n  dirs: [/a, /b]\n  cleaner:\n    enable: false\nx:\n").unwrap();
        assert_eq!(
            got,
            vec![
                pair("log.retention.hours", "1"),
                pair("log.dirs", "/a,/b"),
                pair("log.cleaner.enable", "false"),
                pair("x", "")
            ]
        );
        assert!(parse_yaml("").unwrap().is_empty());
        assert!(parse_yaml("- a\n- b\n").is_err());
        assert!(parse_yaml("a: [{b: 1}]").is_err());
    }

    #[test]
    fn env_names() {
        assert_eq!(env_var_to_key("KAFKA_LOG_DIRS").as_deref(), Some("log.dirs"));
        assert_eq!(env_var_to_key("KAFKA_NODE_ID").as_deref(), Some("node.id"));
        assert_eq!(env_var_to_key("KAFKA_A__B").as_deref(), Some("a_b"));
        assert_eq!(env_var_to_key("KAFKA_A___B").as_deref(), Some("a-b"));
        assert_eq!(env_var_to_key("KAFKA_LISTENER_NAME_X___Y_SSL").as_deref(), Some("listener.name.x-y.ssl"));
        assert_eq!(env_var_to_key("KAFKA_HEAP_OPTS"), None);
        assert_eq!(env_var_to_key("KAFKA_JMX_PORT"), None);
        assert_eq!(env_var_to_key("KAFKA_LOG4J_ROOT_LOGLEVEL"), None);
        assert_eq!(env_var_to_key("PATH"), None);
        assert_eq!(env_var_to_key("KAFKA_"), None);
    }
}
