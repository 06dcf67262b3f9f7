//! Installs what the tasks need: the pinned toolchain's targets and components, and Debian packages.
//!
//! Run as root, missing Debian packages are installed with `apt-get`; otherwise the exact command is printed
//! and the task fails. Nothing is ever skipped because a tool is missing.

use std::path::Path;
use std::process::Command;
use std::sync::Once;

use anyhow::{Result, bail};

use crate::util::{self, output, run};

pub use cargo_xen::setup::*;

/// The ARM targets every task builds for.
pub const TARGETS: [&str; 2] = ["armv7a-none-eabi", "aarch64-unknown-none"];
/// The x86-64 target (the x86 guests, the library's PV and PVH builds).
pub const X86_64: &str = "x86_64-unknown-none";
/// The toolchain components the tasks use.
pub const COMPONENTS: [&str; 3] = ["clippy", "rustfmt", "llvm-tools"];

/// The sysroot of the toolchain `cargo` runs with.
fn sysroot() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Ok(output(
        Command::new(rustc)
            .current_dir(util::root())
            .args(["--print", "sysroot"]),
    )?
    .trim()
    .to_string())
}

fn target_installed(sysroot: &str, target: &str) -> bool {
    Path::new(sysroot)
        .join("lib/rustlib")
        .join(target)
        .join("lib")
        .is_dir()
}

/// Makes sure the pinned toolchain has the cross targets and components (`rust-toolchain.toml`).
pub fn toolchain() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| result = toolchain_inner());
    result
}

/// An M-profile target, installed so that the test can show the library refuses it.
pub const M_PROFILE: &str = "thumbv7m-none-eabi";

/// Every target the tasks install: `rust-toolchain.toml`'s and the M-profile one.
fn wanted_targets() -> Vec<&'static str> {
    TARGETS.iter().copied().chain([X86_64, M_PROFILE]).collect()
}

fn toolchain_inner() -> Result<()> {
    let sysroot = sysroot()?;
    let wanted = wanted_targets();
    let missing = |sysroot: &str| -> Vec<&str> {
        wanted
            .iter()
            .copied()
            .filter(|t| !target_installed(sysroot, t))
            .collect()
    };
    let tools_ok = || {
        let ok = |c: &mut Command| c.output().is_ok_and(|o| o.status.success());
        ok(util::cargo().args(["clippy", "--version"]))
            && ok(util::cargo().args(["fmt", "--version"]))
    };
    if missing(&sysroot).is_empty() && tools_ok() {
        return Ok(());
    }
    // `rustup toolchain install` with no name reads rust-toolchain.toml (targets and components included).
    let _ = run(Command::new("rustup")
        .current_dir(util::root())
        .args(["toolchain", "install"]));
    // Where the pinned name is a link to another toolchain, rustup refuses to add to it: try the target.
    for channel in ["1.95.0", "stable"] {
        let m = missing(&sysroot);
        if !m.is_empty() {
            let _ = run(Command::new("rustup")
                .args(["target", "add", "--toolchain", channel])
                .args(&m));
        }
        if !tools_ok() {
            let _ = run(Command::new("rustup")
                .args(["component", "add", "--toolchain", channel])
                .args(COMPONENTS));
        }
    }
    let still = missing(&sysroot);
    if !still.is_empty() {
        bail!(
            "the Rust targets {still:?} are missing from {sysroot}; install them with\n  \
             rustup target add --toolchain 1.95.0 {}",
            still.join(" ")
        );
    }
    if !tools_ok() {
        bail!(
            "clippy or rustfmt is missing; install them with\n  rustup component add clippy rustfmt"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `rust-toolchain.toml` pins is what the fallback (`rustup target add`) installs: where the pinned
    /// name is a link to `stable`, `rustup toolchain install` adds nothing, and a target missing from the
    /// list would fail the first build for it on a fresh machine.
    #[test]
    fn installs_every_pinned_target() {
        let toml = std::fs::read_to_string(util::root().join("rust-toolchain.toml")).unwrap();
        let line = toml
            .lines()
            .find(|l| l.starts_with("targets"))
            .expect("rust-toolchain.toml lists its targets");
        let pinned: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        assert!(pinned.len() >= 3, "{pinned:?}");
        let wanted = wanted_targets();
        for t in pinned {
            assert!(
                wanted.contains(&t),
                "{t} is pinned but not installed by the tasks"
            );
        }
    }
}
