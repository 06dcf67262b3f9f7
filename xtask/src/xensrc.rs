//! Xen's own source from Debian, under `target/xen-src/`: the debug hypervisor and Xen's hypercall tables
//! (the logic is `cargo_xen::xensrc`, shared with `cargo xen run --debug-xen`).

use std::path::PathBuf;

use anyhow::Result;

use crate::util;

/// Where the source, the private apt configuration and the debug build live.
pub fn dir() -> PathBuf {
    util::target_dir().join("xen-src")
}

/// Fetches and unpacks Debian's `xen` source package unless it is there; returns the tree.
pub fn source() -> Result<PathBuf> {
    cargo_xen::xensrc::source(&dir())
}

/// The debug hypervisor, built from the source unless it is there.
pub fn debug_xen() -> Result<PathBuf> {
    cargo_xen::xensrc::debug_xen(&dir())
}

/// Builds the hypervisor in `tree` with `CONFIG_DEBUG=y` (`make` given `arch_args`) and copies `xen/xen` to
/// `image`.
pub use cargo_xen::xensrc::build_debug;

/// Unpacks the downloaded source package as a tree (see [`cargo_xen::xensrc::unpack`]).
pub use cargo_xen::xensrc::unpack;
