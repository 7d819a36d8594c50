use super::*;

fn dirs(root: &Path, names: &[&str]) -> Vec<PathBuf> {
    names.iter().map(|name| root.join(name)).collect()
}

/// Every file under `root` with its bytes, to show a refusal changed nothing.
fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

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
    let dirs = dirs(dir.path(), &["a"]);
    let (first, formatted) = MetaProperties::load_or_format(&dirs, 1, None).expect("format");
    assert!(formatted);
    let (again, formatted_again) = MetaProperties::load_or_format(&dirs, 1, None).expect("reload");
    assert!(!formatted_again);
    assert_eq!(first, again);
    let error = MetaProperties::load_or_format(&dirs, 2, None).expect_err("another node");
    assert!(error.to_string().contains("formatted for node.id 1, but this node's node.id is 2"), "{error}");
    assert!(error.to_string().contains("set node.id=1"), "{error}");
}

#[test]
fn every_log_dir_gets_the_same_identity_and_its_own_directory_id() {
    let root = tempfile::tempdir().expect("tempdir");
    let dirs = dirs(root.path(), &["a", "b", "meta"]);
    let (meta, formatted) = MetaProperties::load_or_format(&dirs, 3, Some("MkU3OEVBNTcwNTJENDM2Qk")).expect("format");
    assert!(formatted);
    assert_eq!(meta.cluster_id, "MkU3OEVBNTcwNTJENDM2Qk");
    let ensemble = Ensemble::load(&dirs).expect("load");
    let metas: Vec<&MetaProperties> = ensemble.formatted().map(|(_, m)| m).collect();
    assert_eq!(metas.len(), 3);
    assert!(metas.iter().all(|m| m.cluster_id == meta.cluster_id && m.node_id == 3));
    assert!(metas[0].directory_id != metas[1].directory_id && metas[1].directory_id != metas[2].directory_id);
    let text = std::fs::read_to_string(root.path().join("b").join(FILE_NAME)).expect("read");
    assert!(text.contains("version=1\n") && text.contains("node.id=3\n") && text.contains("directory.id="), "{text}");
    // An added log dir joins the node's cluster.
    let more = [dirs.clone(), vec![root.path().join("c")]].concat();
    let (_, formatted) = MetaProperties::load_or_format(&more, 3, None).expect("added dir");
    assert!(formatted);
    let added = Ensemble::load(&more[3..]).expect("load");
    assert_eq!(added.formatted().next().map(|(_, m)| m.cluster_id.clone()), Some(meta.cluster_id));
}

#[test]
fn a_different_cluster_id_refuses_and_changes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let dirs = dirs(root.path(), &["a", "b"]);
    MetaProperties::load_or_format(&dirs, 1, Some("clusterA")).expect("format");
    std::fs::write(root.path().join("a").join("partition-data"), b"keep").expect("write");
    let before = snapshot(root.path());
    let error = MetaProperties::load_or_format(&dirs, 1, Some("clusterB")).expect_err("other cluster");
    let message = error.to_string();
    assert!(message.contains("belongs to cluster clusterA, but CLUSTER_ID is clusterB"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(snapshot(root.path()), before);
    // The same id, or none, starts.
    MetaProperties::load_or_format(&dirs, 1, Some("clusterA")).expect("same id");
    MetaProperties::load_or_format(&dirs, 1, None).expect("no id");
}

#[test]
fn dirs_of_two_clusters_refuse() {
    let root = tempfile::tempdir().expect("tempdir");
    MetaProperties::load_or_format(&dirs(root.path(), &["a"]), 1, Some("one")).expect("a");
    MetaProperties::load_or_format(&dirs(root.path(), &["b"]), 1, Some("two")).expect("b");
    let before = snapshot(root.path());
    let error = MetaProperties::load_or_format(&dirs(root.path(), &["a", "b", "c"]), 1, None).expect_err("mixed");
    assert!(error.to_string().contains("must all belong to one cluster"), "{error}");
    assert_eq!(snapshot(root.path()), before, "the empty dir c is not formatted either");
}

#[test]
fn a_file_without_directory_id_gets_one() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("a");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(FILE_NAME), "cluster.id=abc\nnode.id=1\nversion=1\n").expect("write");
    let (meta, formatted) = MetaProperties::load_or_format(std::slice::from_ref(&dir), 1, None).expect("start");
    assert!(!formatted);
    assert_eq!(meta.cluster_id, "abc");
    assert_ne!(meta.directory_id, Uuid::ZERO);
}

#[test]
fn cluster_ids_are_checked() {
    assert!(validate_cluster_id(&random_uuid().to_string()).is_ok());
    assert!(validate_cluster_id("MkU3OEVBNTcwNTJENDM2Qk").is_ok());
    for bad in ["", "a b", "a=b", "a\nb", "ü"] {
        assert!(validate_cluster_id(bad).is_err(), "{bad:?}");
    }
    let root = tempfile::tempdir().expect("tempdir");
    assert!(MetaProperties::load_or_format(&dirs(root.path(), &["a"]), 1, Some("bad id")).is_err());
    assert!(!root.path().join("a").exists(), "nothing is created for a refused id");
}

#[test]
fn a_second_formatter_never_replaces_the_first() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("a");
    let first = MetaProperties { cluster_id: "first".into(), node_id: 1, directory_id: random_uuid() };
    let second = MetaProperties { cluster_id: "second".into(), node_id: 1, directory_id: random_uuid() };
    assert!(first.create(&dir).expect("create"));
    assert!(!second.create(&dir).expect("create"));
    let (meta, _) = MetaProperties::load_or_format(std::slice::from_ref(&dir), 1, None).expect("load");
    assert_eq!(meta, first);
    assert_eq!(std::fs::read_dir(&dir).expect("read_dir").count(), 1, "no temporary file is left");
}

/// Unlike the storage caches, a damaged meta.properties refuses the start and
/// is never formatted over.
#[test]
fn a_damaged_file_refuses_the_start_and_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dirs = vec![dir.path().to_path_buf()];
    let path = dir.path().join(FILE_NAME);
    let damaged: [&[u8]; 4] =
        [b"\xff\xfe\x00garbage", b"", b"cluster.id=abc\nnode.i", b"version=7\ncluster.id=a\nnode.id=1\n"];
    for bytes in damaged {
        std::fs::write(&path, bytes).expect("write");
        let error = MetaProperties::load_or_format(&dirs, 1, None).expect_err("a damaged file must refuse");
        assert!(matches!(error, BrokerError::MetaProperties { .. }), "{error}");
        assert!(error.to_string().contains(FILE_NAME), "{error}");
        assert_eq!(std::fs::read(&path).expect("read"), bytes, "never reformatted");
    }
}
