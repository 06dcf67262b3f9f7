//! Installs what the tasks need: the pinned toolchain's targets and components, and Debian packages.
//!
//! Run as root, missing Debian packages are installed with `apt-get`; otherwise the exact command is printed
//! and the task fails. Nothing is ever skipped because a tool is missing.

use std::path::Path;
use std::process::Command;
use std::sync::Once;

use anyhow::{Result, bail};

use crate::util::{self, output, run};

/// The cross targets every task builds for.
pub const TARGETS: [&str; 2] = ["armv7a-none-eabi", "aarch64-unknown-none"];
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

fn toolchain_inner() -> Result<()> {
    let sysroot = sysroot()?;
    let wanted: Vec<&str> = TARGETS.iter().copied().chain([M_PROFILE]).collect();
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

/// A Debian package and the file whose presence shows it is installed.
pub struct Package {
    /// The Debian package name.
    pub name: &'static str,
    /// A file the package provides.
    pub provides: &'static str,
}

/// QEMU for ARM (`qemu-system-aarch64` and `qemu-system-arm`).
pub const QEMU: Package = Package {
    name: "qemu-system-arm",
    provides: "/usr/bin/qemu-system-aarch64",
};
/// QEMU for x86 (`qemu-system-x86_64`), for the x86-64 guests on Xen.
pub const QEMU_X86: Package = Package {
    name: "qemu-system-x86",
    provides: "/usr/bin/qemu-system-x86_64",
};
/// The native C compiler, for building the x86-64 debug Xen from source.
pub const GCC: Package = Package {
    name: "gcc",
    provides: "/usr/bin/gcc",
};
/// The device-tree compiler, for the dom0less configurations (`/chosen` domU nodes).
pub const DTC: Package = Package {
    name: "device-tree-compiler",
    provides: "/usr/bin/dtc",
};
/// clang, for compiling Xen's public headers for ARM in the layout probes.
pub const CLANG: Package = Package {
    name: "clang",
    provides: "/usr/bin/clang",
};
/// Xen's public headers (`/usr/include/xen/`).
pub const LIBXEN_DEV: Package = Package {
    name: "libxen-dev",
    provides: "/usr/include/xen/xen.h",
};

/// The AArch64 cross compiler, for building Xen from source.
pub const GCC_AARCH64: Package = Package {
    name: "gcc-aarch64-linux-gnu",
    provides: "/usr/bin/aarch64-linux-gnu-gcc",
};
/// The AArch64 cross binutils.
pub const BINUTILS_AARCH64: Package = Package {
    name: "binutils-aarch64-linux-gnu",
    provides: "/usr/bin/aarch64-linux-gnu-ld",
};
/// flex, for Xen's Kconfig.
pub const FLEX: Package = Package {
    name: "flex",
    provides: "/usr/bin/flex",
};
/// bison, for Xen's Kconfig.
pub const BISON: Package = Package {
    name: "bison",
    provides: "/usr/bin/bison",
};
/// GNU make.
pub const MAKE: Package = Package {
    name: "make",
    provides: "/usr/bin/make",
};
/// `dpkg-source`, to unpack a Debian source package.
pub const DPKG_DEV: Package = Package {
    name: "dpkg-dev",
    provides: "/usr/bin/dpkg-source",
};
/// Python 3, which Xen's build runs.
pub const PYTHON3: Package = Package {
    name: "python3",
    provides: "/usr/bin/python3",
};

/// Installs the packages whose files are missing (as root), or fails with the command to run.
pub fn debian(packages: &[Package]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|p| !Path::new(p.provides).exists())
        .map(|p| p.name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = output(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false);
    let cmd = format!("apt-get update && apt-get install -y {}", missing.join(" "));
    if !is_root {
        bail!("missing Debian packages {missing:?}; install them as root with:\n  {cmd}");
    }
    apt_update()?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["-oAPT::Sandbox::User=root", "install", "-y", "-q"])
        .args(&missing))?;
    for p in packages {
        if !Path::new(p.provides).exists() {
            bail!(
                "`apt-get install {}` did not provide {}",
                p.name,
                p.provides
            );
        }
    }
    Ok(())
}

/// `apt-get update`, once per process.
pub fn apt_update() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = run(Command::new("apt-get").args(["-oAPT::Sandbox::User=root", "update", "-q"]))
    });
    result
}
