//! Every typed wrapper driven through the recording mock (`xen_api/api.rs`).
//!
//! On the host the typed API exists with the `mock` backend only: without the feature these tests cannot
//! run, and say so as one ignored test instead of passing with nothing run. `cargo test --features mock` (and
//! `cargo xtask test`) runs them.

#[cfg(feature = "mock")]
#[path = "xen_api/api.rs"]
mod api;

#[cfg(feature = "mock")]
#[path = "xen_api/blkfront.rs"]
mod blkfront;

#[cfg(feature = "mock")]
#[path = "xen_api/interdomain.rs"]
mod interdomain;

#[cfg(feature = "mock")]
#[path = "xen_api/netfront.rs"]
mod netfront;

#[cfg(feature = "mock")]
#[path = "xen_api/ring.rs"]
mod ring;

#[cfg(feature = "mock")]
#[path = "xen_api/xenstore.rs"]
mod xenstore;

#[cfg(feature = "mock")]
#[path = "xen_api/xenbus.rs"]
mod xenbus;

#[cfg(feature = "mock")]
#[path = "xen_api/xs_daemon.rs"]
mod xs_daemon;

#[cfg(feature = "mock")]
#[path = "xen_api/time.rs"]
mod time;

#[cfg(feature = "mock")]
#[path = "xen_api/x86.rs"]
mod x86;

#[cfg(not(feature = "mock"))]
#[test]
#[ignore = "needs the mock backend: run `cargo test --features mock` (cargo xtask test does)"]
fn needs_feature_mock() {}
