//! Debian packages the tool needs (QEMU, `dtc`, the cross compiler for the debug Xen): run as root, the
//! missing ones are installed with `apt-get`; otherwise the exact command is printed and the step fails.
//! Nothing is skipped because a tool is missing.

use std::path::Path;
use std::process::Command;
use std::sync::Once;

use anyhow::{Result, bail};

use crate::cmd::{output, run};

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
