//! The `gregor` binary.
fn main() {}
