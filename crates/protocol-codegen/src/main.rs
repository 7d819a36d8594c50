//! `cargo run -p gregor-protocol-codegen [-- --check]`

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let root = gregor_protocol_codegen::workspace_root();
    let check = std::env::args().any(|a| a == "--check");
    if check {
        let stale = gregor_protocol_codegen::stale_files(&root)?;
        if !stale.is_empty() {
            bail!("generated code is stale, run `cargo run -p gregor-protocol-codegen`: {stale:?}");
        }
        println!("generated code is up to date");
    } else {
        let count = gregor_protocol_codegen::write_all(&root)?;
        println!("wrote {count} files to crates/protocol/src/generated");
    }
    Ok(())
}
