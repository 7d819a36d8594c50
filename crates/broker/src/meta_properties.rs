//! `meta.properties`: the file in each log dir that says which cluster and node the
//! data belongs to. Writing it is what "formatting the storage" means; a data dir
//! of another cluster or node is refused rather than mixed with ours.

use crate::error::BrokerError;
use gregor_protocol::Uuid;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "meta.properties";

/// The identity stored in `meta.properties` (version 1, the KRaft layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    pub directory_id: Uuid,
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

impl MetaProperties {
    /// Reads `meta.properties` from `dir`, or formats the dir with a new one when
    /// it has none. Returns the identity and whether the dir was formatted now.
    pub fn load_or_format(dir: &Path, node_id: i32, cluster_id: Option<&str>) -> Result<(Self, bool), BrokerError> {
        let path = dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let loaded =
                    Self::parse(&text).map_err(|reason| BrokerError::MetaProperties { path: path.clone(), reason })?;
                if loaded.node_id != node_id {
                    return Err(BrokerError::MetaProperties {
                        path,
                        reason: format!("the data belongs to node.id {}, but node.id is {node_id}", loaded.node_id),
                    });
                }
                if let Some(expected) = cluster_id {
                    if loaded.cluster_id != expected {
                        return Err(BrokerError::MetaProperties {
                            path,
                            reason: format!("the data belongs to cluster {}, not {expected}", loaded.cluster_id),
                        });
                    }
                }
                Ok((loaded, false))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let formatted = MetaProperties {
                    cluster_id: cluster_id.map(str::to_owned).unwrap_or_else(|| random_uuid().to_string()),
                    node_id,
                    directory_id: random_uuid(),
                };
                formatted.write(&path)?;
                Ok((formatted, true))
            }
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => Err(BrokerError::MetaProperties {
                path,
                reason: "unreadable (not text); it is not rewritten over existing data: restore it".to_owned(),
            }),
            Err(source) => Err(BrokerError::Io { path, source }),
        }
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

    fn write(&self, path: &Path) -> Result<(), BrokerError> {
        let text = format!(
            "#\n#Written by gregor when it formatted this directory\ncluster.id={}\ndirectory.id={}\nnode.id={}\nversion=1\n",
            self.cluster_id, self.directory_id, self.node_id
        );
        let temporary: PathBuf = path.with_extension("properties.tmp");
        let io = |source| BrokerError::Io { path: path.to_owned(), source };
        std::fs::write(&temporary, text).map_err(io)?;
        std::fs::File::open(&temporary).and_then(|file| file.sync_all()).map_err(io)?;
        std::fs::rename(&temporary, path).map_err(io)?;
        Ok(())
    }
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
mod tests {
    use super::*;

    #[test]
    fn uuid_text_round_trips() {
        for _ in 0..100 {
            let id = random_uuid();
            assert_eq!(parse_uuid(&id.to_string()), Some(id));
        }
    }

    #[test]
    fn formats_once_then_reloads_and_refuses_another_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, formatted) = MetaProperties::load_or_format(dir.path(), 1, None).expect("format");
        assert!(formatted);
        let (again, formatted_again) = MetaProperties::load_or_format(dir.path(), 1, None).expect("reload");
        assert!(!formatted_again);
        assert_eq!(first, again);
        assert!(MetaProperties::load_or_format(dir.path(), 2, None).is_err());
    }

    /// Unlike the storage caches, a damaged meta.properties refuses the start and
    /// is never formatted over.
    #[test]
    fn a_damaged_file_refuses_the_start_and_is_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        let damaged: [&[u8]; 4] =
            [b"\xff\xfe\x00garbage", b"", b"cluster.id=abc\nnode.i", b"version=7\ncluster.id=a\nnode.id=1\n"];
        for bytes in damaged {
            std::fs::write(&path, bytes).expect("write");
            let error = MetaProperties::load_or_format(dir.path(), 1, None).expect_err("a damaged file must refuse");
            assert!(matches!(error, BrokerError::MetaProperties { .. }), "{error}");
            assert!(error.to_string().contains(FILE_NAME), "{error}");
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "never reformatted");
        }
    }
}
