//! `meta.properties`: the file in each log dir that says which cluster and node the
//! data belongs to. Writing it is what "formatting the storage" means; a data dir
//! of another cluster or node is refused rather than mixed with ours.
//!
//! Every directory of a node (each of `log.dirs`, and `metadata.log.dir` when set)
//! holds one, as Kafka 3.7+ writes them: version 1, `node.id`, `cluster.id` and a
//! `directory.id` of its own. A refused start changes nothing on disk.

use crate::error::BrokerError;
use gregor_config::BrokerConfig;
use gregor_protocol::Uuid;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "meta.properties";

/// The environment variable of the apache/kafka image that names the cluster a node
/// formats its storage for.
pub const CLUSTER_ID_ENV: &str = "CLUSTER_ID";

/// The identity stored in `meta.properties` (version 1, the KRaft layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    pub directory_id: Uuid,
}

/// What one storage directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirState {
    /// No `meta.properties` (or no directory yet): formatting writes one.
    Empty,
    Formatted(MetaProperties),
}

/// The directories of a node, in config order, and what each holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensemble {
    pub dirs: Vec<(PathBuf, DirState)>,
}

/// A random id the way Kafka makes them: never the reserved all-zero or one ids,
/// and never one whose text starts with '-', which command-line tools misread.
pub fn random_uuid() -> Uuid {
    loop {
        let mut bytes = [0u8; 16];
        if getrandom::fill(&mut bytes).is_err() {
            // No entropy source means no safe ids; fall back to time-derived bits,
            // which are unique enough for a single node.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_nanos())
                .unwrap_or(1);
            bytes = (nanos ^ (u128::from(std::process::id()) << 64)).to_be_bytes();
        }
        let id = Uuid::from_u128(u128::from_be_bytes(bytes));
        if id.as_u128() > 1 && !id.to_string().starts_with('-') {
            return id;
        }
    }
}

/// The directories a node keeps `meta.properties` in: every log dir, then
/// `metadata.log.dir` when it is set and not one of them (Kafka formats both).
pub fn storage_dirs(config: &BrokerConfig) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in config.log_dirs.iter().chain(config.metadata_log_dir.as_ref()) {
        if !dirs.contains(dir) {
            dirs.push(dir.clone());
        }
    }
    dirs
}

/// The cluster id the apache/kafka image's `CLUSTER_ID` asks for, if set and not blank.
pub fn cluster_id_from_env() -> Option<String> {
    std::env::var(CLUSTER_ID_ENV).ok().map(|id| id.trim().to_owned()).filter(|id| !id.is_empty())
}

/// A cluster id must survive a properties file and a command line unescaped; Kafka's
/// own ids (`storage random-uuid`) are 22 URL-safe base64 characters.
pub fn validate_cluster_id(cluster_id: &str) -> Result<(), String> {
    if cluster_id.is_empty() {
        return Err("the cluster id is empty".to_owned());
    }
    if cluster_id.len() > 255 {
        return Err("the cluster id is longer than 255 characters".to_owned());
    }
    if let Some(bad) = cluster_id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!(
            "the cluster id {cluster_id:?} contains {bad:?}; use letters, digits, '-', '_' or '.' \
             (`gregor storage random-uuid` prints a new one)"
        ));
    }
    Ok(())
}

fn refuse(path: &Path, reason: String) -> BrokerError {
    BrokerError::MetaProperties { path: path.join(FILE_NAME), reason }
}

impl Ensemble {
    /// Reads `meta.properties` from each dir without changing anything. A file that
    /// cannot be read or parsed is an error: it is never formatted over.
    pub fn load(dirs: &[PathBuf]) -> Result<Ensemble, BrokerError> {
        let mut out = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let path = dir.join(FILE_NAME);
            let state = match std::fs::read_to_string(&path) {
                Ok(text) => DirState::Formatted(
                    MetaProperties::parse(&text).map_err(|reason| BrokerError::MetaProperties { path, reason })?,
                ),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => DirState::Empty,
                Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(BrokerError::MetaProperties {
                        path,
                        reason: "unreadable (not text); it is not rewritten over existing data: restore it".to_owned(),
                    })
                }
                Err(source) => return Err(BrokerError::Io { path, source }),
            };
            out.push((dir.clone(), state));
        }
        Ok(Ensemble { dirs: out })
    }

    /// The formatted dirs and their identity.
    pub fn formatted(&self) -> impl Iterator<Item = (&PathBuf, &MetaProperties)> {
        self.dirs.iter().filter_map(|(dir, state)| match state {
            DirState::Formatted(meta) => Some((dir, meta)),
            DirState::Empty => None,
        })
    }

    /// The dirs without `meta.properties`.
    pub fn empty(&self) -> impl Iterator<Item = &PathBuf> {
        self.dirs.iter().filter(|(_, state)| *state == DirState::Empty).map(|(dir, _)| dir)
    }

    /// Checks that every formatted dir belongs to one cluster and to `node_id`, and to
    /// `expected_cluster_id` when one is given; `cluster_id_source` names where that
    /// id came from, for the message. Returns the cluster id found, if any dir is
    /// formatted.
    pub fn verify(
        &self,
        node_id: i32,
        expected_cluster_id: Option<&str>,
        cluster_id_source: &str,
    ) -> Result<Option<String>, BrokerError> {
        let mut first: Option<(&PathBuf, &MetaProperties)> = None;
        let mut directory_ids: Vec<(Uuid, &PathBuf)> = Vec::new();
        for (dir, meta) in self.formatted() {
            if let Some((first_dir, first_meta)) = first {
                if meta.cluster_id != first_meta.cluster_id {
                    return Err(refuse(
                        dir,
                        format!(
                            "this directory belongs to cluster {}, but {} belongs to cluster {}; a node's \
                             directories must all belong to one cluster: move the directory of the other cluster \
                             out of log.dirs",
                            meta.cluster_id,
                            first_dir.display(),
                            first_meta.cluster_id
                        ),
                    ));
                }
            } else {
                first = Some((dir, meta));
            }
            if meta.node_id != node_id {
                return Err(refuse(
                    dir,
                    format!(
                        "this directory was formatted for node.id {}, but this node's node.id is {node_id}; nothing \
                         was changed. To start with this data, set node.id={}; to make a new node {node_id}, point \
                         log.dirs at an empty directory (or move this one away)",
                        meta.node_id, meta.node_id
                    ),
                ));
            }
            if let Some(expected) = expected_cluster_id {
                if meta.cluster_id != expected {
                    return Err(refuse(
                        dir,
                        format!(
                            "this directory belongs to cluster {}, but {cluster_id_source} is {expected}; nothing \
                             was changed. To use this data, give {cluster_id_source} {}{}; to make a new node of \
                             cluster {expected}, point log.dirs at an empty directory (or move this one away)",
                            meta.cluster_id,
                            meta.cluster_id,
                            if cluster_id_source == CLUSTER_ID_ENV { " or unset it" } else { "" }
                        ),
                    ));
                }
            }
            if meta.directory_id != Uuid::ZERO {
                if let Some((_, other)) = directory_ids.iter().find(|(id, _)| *id == meta.directory_id) {
                    return Err(refuse(
                        dir,
                        format!(
                            "directory.id {} is also the id of {}; each directory needs its own: remove the \
                             directory.id line from one of the two files and a new id is written at the next start",
                            meta.directory_id,
                            other.display()
                        ),
                    ));
                }
                directory_ids.push((meta.directory_id, dir));
            }
        }
        Ok(first.map(|(_, meta)| meta.cluster_id.clone()))
    }

    /// A directory id no dir of this node has yet.
    fn new_directory_id(&self) -> Uuid {
        loop {
            let id = random_uuid();
            if self.formatted().all(|(_, meta)| meta.directory_id != id) {
                return id;
            }
        }
    }
}

impl MetaProperties {
    /// Reads `meta.properties` from `dirs` at start, verifies it belongs to `node_id`
    /// (and to `cluster_id` when given, the image's `CLUSTER_ID`), and formats the
    /// dirs that have none: all of them with `cluster_id` (or a new id) on a first
    /// start, an added one with the cluster id of the others. A refusal changes
    /// nothing. Returns the identity of the first dir and whether any dir was
    /// formatted now.
    pub fn load_or_format(
        dirs: &[PathBuf],
        node_id: i32,
        cluster_id: Option<&str>,
    ) -> Result<(Self, bool), BrokerError> {
        let first_dir = dirs.first().ok_or_else(|| BrokerError::MetaProperties {
            path: PathBuf::from(FILE_NAME),
            reason: "no log directory is configured (log.dirs)".to_owned(),
        })?;
        if let Some(id) = cluster_id {
            validate_cluster_id(id).map_err(|reason| refuse(first_dir, format!("{CLUSTER_ID_ENV}: {reason}")))?;
        }
        // A second node starting on the same fresh dirs may format them first: then
        // read again and verify against what it wrote.
        for _ in 0..3 {
            let ensemble = Ensemble::load(dirs)?;
            let found = ensemble.verify(node_id, cluster_id, CLUSTER_ID_ENV)?;
            let cluster_id = match (found, cluster_id) {
                (Some(found), _) => found,
                (None, Some(given)) => given.to_owned(),
                (None, None) => random_uuid().to_string(),
            };
            let mut formatted_now = false;
            let mut raced = false;
            for dir in ensemble.empty() {
                let meta = MetaProperties {
                    cluster_id: cluster_id.clone(),
                    node_id,
                    directory_id: ensemble.new_directory_id(),
                };
                if meta.create(dir)? {
                    formatted_now = true;
                } else {
                    raced = true;
                }
            }
            // Files written before directory.id existed get one, as Kafka rewrites them.
            for (dir, meta) in ensemble.formatted() {
                if meta.directory_id == Uuid::ZERO {
                    let with_id = MetaProperties { directory_id: ensemble.new_directory_id(), ..meta.clone() };
                    with_id.replace(dir)?;
                }
            }
            if raced {
                continue;
            }
            let reloaded = Ensemble::load(std::slice::from_ref(first_dir))?;
            if let Some((_, DirState::Formatted(meta))) = reloaded.dirs.into_iter().next() {
                return Ok((meta, formatted_now));
            }
        }
        Err(refuse(
            first_dir,
            "another process keeps formatting these directories; is a second node using them?".into(),
        ))
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut cluster_id = None;
        let mut node_id = None;
        let mut directory_id = Uuid::ZERO;
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
            let Some((key, value)) = line.split_once('=') else { continue };
            match key.trim() {
                "cluster.id" => cluster_id = Some(value.trim().to_owned()),
                "node.id" => {
                    node_id =
                        Some(value.trim().parse::<i32>().map_err(|_| format!("node.id {value:?} is not a number"))?)
                }
                "directory.id" => directory_id = parse_uuid(value.trim()).unwrap_or(Uuid::ZERO),
                "version" if value.trim() != "1" => return Err(format!("unsupported version {value}")),
                _ => {}
            }
        }
        Ok(MetaProperties {
            cluster_id: cluster_id.ok_or("no cluster.id")?,
            node_id: node_id.ok_or("no node.id")?,
            directory_id,
        })
    }

    /// The file's text, keys sorted as Kafka writes them.
    pub fn to_text(&self) -> String {
        format!(
            "#\n#Written by gregor when it formatted this directory\ncluster.id={}\ndirectory.id={}\nnode.id={}\nversion=1\n",
            self.cluster_id, self.directory_id, self.node_id
        )
    }

    /// Writes `meta.properties` into `dir` (created if missing) unless one appeared
    /// there meanwhile: false then, and the other file is left as it is.
    pub fn create(&self, dir: &Path) -> Result<bool, BrokerError> {
        let path = dir.join(FILE_NAME);
        let io = |source| BrokerError::Io { path: path.clone(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let temporary = self.write_temporary(dir)?;
        // A hard link never replaces an existing file, so of two formatters only one wins.
        let linked = std::fs::hard_link(&temporary, &path);
        let _ = std::fs::remove_file(&temporary);
        match linked {
            Ok(()) => {
                sync_dir(dir).map_err(io)?;
                Ok(true)
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(source) => Err(io(source)),
        }
    }

    /// Replaces the `meta.properties` of `dir` atomically.
    fn replace(&self, dir: &Path) -> Result<(), BrokerError> {
        let path = dir.join(FILE_NAME);
        let io = |source| BrokerError::Io { path: path.clone(), source };
        let temporary = self.write_temporary(dir)?;
        std::fs::rename(&temporary, &path).map_err(io)?;
        sync_dir(dir).map_err(io)
    }

    fn write_temporary(&self, dir: &Path) -> Result<PathBuf, BrokerError> {
        let temporary = dir.join(format!("{FILE_NAME}.{}.tmp", std::process::id()));
        let io = |source| BrokerError::Io { path: temporary.clone(), source };
        std::fs::write(&temporary, self.to_text()).map_err(io)?;
        std::fs::File::open(&temporary).and_then(|file| file.sync_all()).map_err(io)?;
        Ok(temporary)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Parses Kafka's 22-character URL-safe base64 form of a UUID.
pub fn parse_uuid(text: &str) -> Option<Uuid> {
    if text.len() != 22 {
        return None;
    }
    let mut bits: u128 = 0;
    for (index, byte) in text.bytes().enumerate() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        if index < 21 {
            bits = (bits << 6) | u128::from(sextet);
        } else {
            // The last character carries the 2 remaining bits in its top bits.
            bits = (bits << 2) | u128::from(sextet >> 4);
        }
    }
    Some(Uuid::from_u128(bits))
}

#[cfg(test)]
#[path = "meta_properties_tests.rs"]
mod tests;
