//! The typed API's structures against Xen's own public headers (`layout/probe.rs`).
//!
//! On the host the typed API exists with the `mock` backend only: without the feature these tests cannot
//! run, and say so as one ignored test instead of passing with nothing run. `cargo test --features mock` (and
//! `cargo xtask test`) runs them.

#[cfg(feature = "mock")]
#[path = "layout/probe.rs"]
mod probe;

#[cfg(not(feature = "mock"))]
#[test]
#[ignore = "needs the mock backend: run `cargo test --features mock` (cargo xtask test does)"]
fn needs_feature_mock() {}
