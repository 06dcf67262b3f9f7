//! Debian packages the tool needs (QEMU, `dtc`, the cross compiler for the debug Xen): run as root, the
//! missing ones are installed with `apt-get`; otherwise the exact command is printed and the step fails.
//! Nothing is skipped because a tool is missing.

use std::path::Path;
use std::process::Command;
use std::sync::Once;

use anyhow::{Result, bail};

use crate::cmd::{output, run_logged};

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
    let cmd = format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root {
        bail!("missing Debian packages {missing:?}; install them as root with:\n  {cmd}");
    }
    apt_update()?;
    // Simulate first: an install that would remove a package the machine has is left to a person.
    let plan = output(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(APT_INSTALL)
            .arg("-s")
            .args(&missing),
    )?;
    let removed = removals(&plan);
    if !removed.is_empty() {
        bail!(
            "installing {missing:?} would remove {removed:?}; nothing was changed. If that is what you want, \
             run as root:\n  {cmd}"
        );
    }
    run_logged(
        &format!("installed Debian packages {}", missing.join(" ")),
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(APT_INSTALL)
            .args(&missing),
    )?;
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

/// `apt-get install`'s options: no recommended packages (they pulled GUI and media packages in with QEMU).
const APT_INSTALL: &[&str] = &[
    "-oAPT::Sandbox::User=root",
    "install",
    "-y",
    "-q",
    "--no-install-recommends",
];

/// The packages an `apt-get -s install` plan removes (its `Remv NAME …` lines).
pub fn removals(plan: &str) -> Vec<String> {
    plan.lines()
        .filter_map(|l| l.strip_prefix("Remv "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `apt-get update`, once per process.
pub fn apt_update() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = run_logged(
            "apt-get update",
            Command::new("apt-get").args(["-oAPT::Sandbox::User=root", "update", "-q"]),
        )
    });
    result
}

#[cfg(test)]
mod tests {
    use super::removals;

    #[test]
    fn a_plan_that_removes_a_package_is_seen() {
        // The shape of `apt-get -s install qemu-system-arm` on a machine whose qemu-utils it replaces.
        let plan = "NOTE: This is only a simulation!\n\
                    Remv qemu-utils [1:10.0.2+ds-2+deb13u1~bpo12+1]\n\
                    Inst qemu-system-arm (1:7.2+dfsg-7+deb12u16 Debian:12.13/stable [amd64])\n\
                    Conf qemu-system-arm (1:7.2+dfsg-7+deb12u16 Debian:12.13/stable [amd64])\n";
        assert_eq!(removals(plan), ["qemu-utils"]);
        let clean = "Inst dtc (1.6.1-4+b1 Debian:12.13/stable [amd64])\nConf dtc (1.6.1-4+b1)\n";
        assert!(removals(clean).is_empty());
    }
}
