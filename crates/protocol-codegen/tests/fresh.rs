//! The checked-in generated code must be exactly what the specs produce.

#[test]
fn generated_code_is_up_to_date() {
    let root = gregor_protocol_codegen::workspace_root();
    let stale = gregor_protocol_codegen::stale_files(&root).expect("generating from protocol-specs");
    assert!(
        stale.is_empty(),
        "crates/protocol/src/generated is stale; run `cargo run -p gregor-protocol-codegen`. Stale files: {stale:?}"
    );
}
