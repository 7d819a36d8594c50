//! # gregor-protocol-codegen
//!
//! Reads Gregor's own protocol descriptions in `protocol-specs/` and writes the
//! message code of `gregor-protocol` under `crates/protocol/src/generated/`, which is
//! checked in. `--check` (and this crate's tests) fail when that code is stale.
//!
//! **Owns:** the spec format's parser and the code generator.
//! **Never:** a runtime dependency of any other crate; it only writes source files.

pub mod gen;
pub mod spec;

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The workspace root, found from this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn specs_dir(root: &Path) -> PathBuf {
    root.join("protocol-specs")
}

pub fn generated_dir(root: &Path) -> PathBuf {
    root.join("crates/protocol/src/generated")
}

/// Parses the specs under `root` and returns the generated files by name.
pub fn generate_all(root: &Path) -> Result<BTreeMap<String, String>> {
    let specs = spec::load_dir(&specs_dir(root))?;
    gen::generate(&specs)
}

/// The generated files that differ from what is on disk (missing, changed or extra).
pub fn stale_files(root: &Path) -> Result<Vec<String>> {
    let wanted = generate_all(root)?;
    let dir = generated_dir(root);
    let mut stale = Vec::new();
    for (name, code) in &wanted {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if &on_disk != code {
            stale.push(name.clone());
        }
    }
    if dir.exists() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let name = entry?.file_name().to_string_lossy().to_string();
            if !wanted.contains_key(&name) {
                stale.push(name);
            }
        }
    }
    stale.sort();
    Ok(stale)
}

/// Writes the generated files, removing files the specs no longer produce.
pub fn write_all(root: &Path) -> Result<usize> {
    let wanted = generate_all(root)?;
    let dir = generated_dir(root);
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if !wanted.contains_key(&name) {
            std::fs::remove_file(&path)?;
        }
    }
    for (name, code) in &wanted {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(code.as_str()) {
            std::fs::write(&path, code)?;
        }
    }
    Ok(wanted.len())
}
