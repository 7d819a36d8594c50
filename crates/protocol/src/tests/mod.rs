//! Property tests over every generated message (inside the crate so they can use
//! the test-only `Arbitrary` impls of the generated code).

mod arbitrary_input;
mod coverage;
mod cross_check;
mod round_trip;
