//! `gregor storage`: Kafka's `kafka-storage.sh` for Gregor's directories. `format`
//! writes `meta.properties` into every directory of a node before its first start (so
//! every node of a cluster carries the same cluster id), `info` shows what the
//! directories hold, `random-uuid` prints a new cluster id.

use crate::error::BrokerError;
use crate::meta_properties::{random_uuid, storage_dirs, validate_cluster_id, DirState, Ensemble, MetaProperties};
use gregor_config::BrokerConfig;
use std::fmt::Write as _;
use std::path::Path;

/// Why `storage format` or `storage info` failed: the message for stderr.
#[derive(Debug, thiserror::Error)]
pub enum StorageToolError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// A new cluster id, in Kafka's 22-character URL-safe base64 form.
pub fn random_cluster_id() -> String {
    random_uuid().to_string()
}

/// Formats every directory of the node `config` describes for `cluster_id`, and
/// returns what it printed. Directories already formatted for this cluster and node
/// are an error unless `ignore_formatted`; formatted for another cluster or node they
/// are always an error, and then nothing is written.
pub fn format(config: &BrokerConfig, cluster_id: &str, ignore_formatted: bool) -> Result<String, StorageToolError> {
    validate_cluster_id(cluster_id).map_err(StorageToolError::Refused)?;
    let dirs = storage_dirs(config);
    if dirs.is_empty() {
        return Err(StorageToolError::Refused("no log directory is configured (log.dirs)".into()));
    }
    let ensemble = Ensemble::load(&dirs)?;
    ensemble.verify(config.node_id, Some(cluster_id), "--cluster-id")?;
    if let Some((dir, _)) = ensemble.formatted().next() {
        if !ignore_formatted {
            return Err(StorageToolError::Refused(format!(
                "log directory {} is already formatted; use --ignore-formatted to leave formatted directories as \
                 they are and format the others",
                dir.display()
            )));
        }
    }
    let mut out = String::new();
    let empty: Vec<_> = ensemble.empty().cloned().collect();
    if empty.is_empty() {
        out.push_str("All of the log directories are already formatted.\n");
        return Ok(out);
    }
    let mut taken: Vec<_> = ensemble.formatted().map(|(_, meta)| meta.directory_id).collect();
    for dir in empty {
        let directory_id = loop {
            let id = random_uuid();
            if !taken.contains(&id) {
                break id;
            }
        };
        taken.push(directory_id);
        let meta = MetaProperties { cluster_id: cluster_id.to_owned(), node_id: config.node_id, directory_id };
        let kind = if config.metadata_log_dir.as_deref() == Some(dir.as_path()) { "metadata" } else { "data" };
        let _ = writeln!(out, "Formatting {kind} directory {} with cluster.id {cluster_id}.", dir.display());
        if !meta.create(&dir)? {
            return Err(StorageToolError::Refused(format!(
                "{} was formatted by another process while this one ran",
                dir.display()
            )));
        }
    }
    Ok(out)
}

/// What `storage info` prints for the node `config` describes, and whether it found
/// no problem (exit status 0).
pub fn info(config: &BrokerConfig) -> (String, bool) {
    let dirs = storage_dirs(config);
    let mut problems: Vec<String> = Vec::new();
    let mut found: Vec<&Path> = Vec::new();
    let mut metadata: Option<MetaProperties> = None;
    for dir in &dirs {
        if !dir.is_dir() {
            problems.push(match dir.exists() {
                true => format!("{} is not a directory", dir.display()),
                false => format!("{} does not exist", dir.display()),
            });
            continue;
        }
        found.push(dir);
        match Ensemble::load(std::slice::from_ref(dir)) {
            Ok(ensemble) => match ensemble.dirs.into_iter().next().map(|(_, state)| state) {
                Some(DirState::Formatted(meta)) => match &metadata {
                    None => metadata = Some(meta),
                    Some(first) if first.cluster_id != meta.cluster_id => {
                        problems.push("Mismatched cluster IDs between storage directories.".into())
                    }
                    Some(first) if first.node_id != meta.node_id => {
                        problems.push("Mismatched node IDs between storage directories.".into())
                    }
                    Some(_) => {}
                },
                _ => problems.push(format!("{} is not formatted.", dir.display())),
            },
            Err(error) => problems.push(format!("Error loading {error}")),
        }
    }
    if let Some(meta) = &metadata {
        if meta.node_id != config.node_id {
            problems.push(format!(
                "The directories belong to node.id {}, but node.id is {}.",
                meta.node_id, config.node_id
            ));
        }
    }
    let mut out = String::new();
    if dirs.is_empty() {
        out.push_str("No directories specified.\n");
        return (out, true);
    }
    if !found.is_empty() {
        out.push_str(if found.len() == 1 { "Found log directory:\n" } else { "Found log directories:\n" });
        for dir in &found {
            let _ = writeln!(out, "  {}", dir.display());
        }
        out.push('\n');
    }
    if let Some(meta) = &metadata {
        let _ = writeln!(
            out,
            "Found metadata: {{cluster.id={}, directory.id={}, node.id={}, version=1}}\n",
            meta.cluster_id, meta.directory_id, meta.node_id
        );
    }
    if !problems.is_empty() {
        out.push_str(if problems.len() == 1 { "Found problem:\n" } else { "Found problems:\n" });
        for problem in &problems {
            let _ = writeln!(out, "  {problem}");
        }
        out.push('\n');
    }
    (out, problems.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dirs: &[&Path]) -> BrokerConfig {
        let joined = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(",");
        BrokerConfig::from_pairs(&[("log.dirs", &joined), ("node.id", "2")]).expect("config").config
    }

    #[test]
    fn format_then_info_then_start() {
        let root = tempfile::tempdir().expect("tempdir");
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        let c = config(&[&a, &b]);
        let (text, ok) = info(&c);
        assert!(!ok && text.contains("does not exist"), "{text}");
        let printed = format(&c, "MkU3OEVBNTcwNTJENDM2Qk", false).expect("format");
        assert!(printed.contains("Formatting data directory") && printed.contains("MkU3OEVBNTcwNTJENDM2Qk"));
        let (text, ok) = info(&c);
        assert!(ok, "{text}");
        assert!(
            text.contains("Found log directories:") && text.contains("cluster.id=MkU3OEVBNTcwNTJENDM2Qk"),
            "{text}"
        );
        assert!(text.contains("node.id=2"), "{text}");
        // Formatted: refused without --ignore-formatted, a no-op with it.
        let error = format(&c, "MkU3OEVBNTcwNTJENDM2Qk", false).expect_err("already formatted");
        assert!(error.to_string().contains("--ignore-formatted"), "{error}");
        let printed = format(&c, "MkU3OEVBNTcwNTJENDM2Qk", true).expect("ignore formatted");
        assert!(printed.contains("already formatted"), "{printed}");
        // Another cluster id is refused even with --ignore-formatted.
        let error = format(&c, "other", true).expect_err("other cluster");
        assert!(error.to_string().contains("--cluster-id is other"), "{error}");
        // The first start uses the formatted identity.
        let (meta, formatted) = MetaProperties::load_or_format(&storage_dirs(&c), 2, None).expect("start after format");
        assert!(!formatted);
        assert_eq!(meta.cluster_id, "MkU3OEVBNTcwNTJENDM2Qk");
    }

    #[test]
    fn format_refuses_bad_ids_and_writes_nothing() {
        let root = tempfile::tempdir().expect("tempdir");
        let a = root.path().join("a");
        let c = config(&[&a]);
        assert!(format(&c, "", false).is_err());
        assert!(format(&c, "no spaces", false).is_err());
        assert!(!a.exists());
        assert_eq!(random_cluster_id().len(), 22);
    }

    #[test]
    fn info_reports_an_unformatted_dir() {
        let root = tempfile::tempdir().expect("tempdir");
        let c = config(&[root.path()]);
        let (text, ok) = info(&c);
        assert!(!ok && text.contains("is not formatted."), "{text}");
    }
}
