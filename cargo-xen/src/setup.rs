//! Debian packages the tool needs (QEMU, `dtc`, the cross compiler for the debug Xen): run as root, the
//! missing ones are installed with `apt-get`; otherwise the exact command is printed and the step fails.
//! Nothing is skipped because a tool is missing.
//!
//! An install that would remove a package the machine has is never made. QEMU is then unpacked instead:
//! Debian's packages for it and for the libraries the machine lacks are fetched (`apt-get download`) and
//! unpacked (`dpkg -x`) into a directory of the tool's own ([`private_root`]), nothing installed; [`qemu`]
//! runs the binary from there with those libraries (QEMU finds its firmware beside its binary). This is the
//! case of a machine with `qemu-utils` from bookworm-backports, which breaks bookworm's `qemu-system-*`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, Once, OnceLock};

use anyhow::{Context, Result, bail};

use crate::cmd::{output, run_logged, run_quiet};

/// A Debian package and the file whose presence shows it is installed.
pub struct Package {
    /// The Debian package name.
    pub name: &'static str,
    /// A file the package provides.
    pub provides: &'static str,
    /// Whether it may be unpacked into [`private_root`] where installing it would remove a package.
    pub unpack: bool,
}

impl Package {
    /// A package that is installed, never unpacked.
    pub const fn new(name: &'static str, provides: &'static str) -> Package {
        Package {
            name,
            provides,
            unpack: false,
        }
    }

    /// Whether its file is on the machine or in [`private_root`].
    fn present(&self) -> bool {
        Path::new(self.provides).exists()
            || (self.unpack
                && private_root()
                    .join(self.provides.trim_start_matches('/'))
                    .exists())
    }
}

/// QEMU for ARM (`qemu-system-aarch64` and `qemu-system-arm`).
pub const QEMU: Package = Package {
    unpack: true,
    ..Package::new("qemu-system-arm", "/usr/bin/qemu-system-aarch64")
};
/// QEMU for x86 (`qemu-system-x86_64`), for the x86-64 guests on Xen.
pub const QEMU_X86: Package = Package {
    unpack: true,
    ..Package::new("qemu-system-x86", "/usr/bin/qemu-system-x86_64")
};
/// QEMU's network cards' option ROMs (`efi-virtio.rom`: QEMU refuses to start the `virt` machine's
/// default card without it), which Debian only recommends: installed (or unpacked) with [`QEMU`] and
/// [`QEMU_X86`].
pub const IPXE: Package = Package {
    unpack: true,
    ..Package::new("ipxe-qemu", "/usr/lib/ipxe/qemu/efi-virtio.rom")
};
/// The native C compiler, for building the x86-64 debug Xen from source.
pub const GCC: Package = Package::new("gcc", "/usr/bin/gcc");
/// The device-tree compiler, for the dom0less configurations (`/chosen` domU nodes).
pub const DTC: Package = Package::new("device-tree-compiler", "/usr/bin/dtc");
/// clang, for compiling Xen's public headers for ARM in the layout probes.
pub const CLANG: Package = Package::new("clang", "/usr/bin/clang");
/// Xen's public headers (`/usr/include/xen/`).
pub const LIBXEN_DEV: Package = Package::new("libxen-dev", "/usr/include/xen/xen.h");

/// The AArch64 cross compiler, for building Xen from source.
pub const GCC_AARCH64: Package =
    Package::new("gcc-aarch64-linux-gnu", "/usr/bin/aarch64-linux-gnu-gcc");
/// The AArch64 cross binutils.
pub const BINUTILS_AARCH64: Package = Package::new(
    "binutils-aarch64-linux-gnu",
    "/usr/bin/aarch64-linux-gnu-ld",
);
/// flex, for Xen's Kconfig.
pub const FLEX: Package = Package::new("flex", "/usr/bin/flex");
/// bison, for Xen's Kconfig.
pub const BISON: Package = Package::new("bison", "/usr/bin/bison");
/// GNU make.
pub const MAKE: Package = Package::new("make", "/usr/bin/make");
/// `dpkg-source`, to unpack a Debian source package.
pub const DPKG_DEV: Package = Package::new("dpkg-dev", "/usr/bin/dpkg-source");
/// Python 3, which Xen's build runs.
pub const PYTHON3: Package = Package::new("python3", "/usr/bin/python3");

/// Where Xen, its source and the converted images are kept: `$CARGO_XEN_CACHE`, else
/// `$XDG_CACHE_HOME/cargo-xen`, else `~/.cache/cargo-xen`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("CARGO_XEN_CACHE") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(d).join("cargo-xen"));
    }
    let home = std::env::var_os("HOME").context("neither CARGO_XEN_CACHE nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/cargo-xen"))
}

/// Where packages are unpacked instead of installed (see the module's docs): `debian-root` in the
/// directory given to [`use_private_root`] (a project's target directory), else in
/// [`cache_dir`].
pub fn private_root() -> PathBuf {
    PRIVATE_ROOT
        .get_or_init(|| {
            cache_dir()
                .unwrap_or_else(|_| std::env::temp_dir().join("cargo-xen"))
                .join("debian-root")
        })
        .clone()
}

static PRIVATE_ROOT: OnceLock<PathBuf> = OnceLock::new();

/// Unpacks into `dir/debian-root` (call before anything else of this module).
pub fn use_private_root(dir: &Path) {
    let _ = PRIVATE_ROOT.set(dir.join("debian-root"));
}

/// The command that runs QEMU's `bin` (`qemu-system-aarch64`, …): the machine's, or the one unpacked into
/// [`private_root`] with its libraries. Call [`debian`] with [`QEMU`] or [`QEMU_X86`] first.
pub fn qemu(bin: &str) -> Command {
    if Path::new("/usr/bin").join(bin).exists() {
        return Command::new(bin);
    }
    let root = private_root();
    let exe = root.join("usr/bin").join(bin);
    if !exe.exists() {
        return Command::new(bin);
    }
    let mut c = Command::new(exe);
    c.env("LD_LIBRARY_PATH", library_path(&root));
    c
}

/// The library directories of an unpacked root (`usr/lib/<triple>`, `lib/<triple>`), `:`-separated.
fn library_path(root: &Path) -> String {
    let mut dirs = Vec::new();
    for lib in ["usr/lib", "lib"] {
        if let Ok(entries) = std::fs::read_dir(root.join(lib)) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.ends_with("-linux-gnu"))
                })
                .collect();
            found.sort();
            dirs.extend(found);
        }
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// Installs the packages whose files are missing (as root), or fails with the command to run.
pub fn debian(packages: &[Package]) -> Result<()> {
    // With QEMU, its network cards' ROMs.
    let rom = packages.iter().any(|p| p.unpack).then_some(&IPXE);
    let packages: Vec<&Package> = packages.iter().chain(rom).collect();
    // One caller at a time: tasks run steps on threads, and apt holds a lock.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&str> = packages
        .iter()
        .filter(|p| !p.present())
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
    let unpackable = packages
        .iter()
        .filter(|p| missing.contains(&p.name))
        .all(|p| p.unpack);
    if !removed.is_empty() && unpackable {
        return unpack(&missing, &installs(&plan), &removed, &packages);
    }
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
        if !p.present() {
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

/// Fetches the packages an install would bring (`new`) and unpacks them into [`private_root`], instead of
/// installing `missing`, which would remove `removed`.
fn unpack(
    missing: &[&str],
    new: &[String],
    removed: &[String],
    packages: &[&Package],
) -> Result<()> {
    let root = private_root();
    let debs = root.join("debs");
    std::fs::create_dir_all(&debs).with_context(|| format!("cannot create {}", debs.display()))?;
    run_logged(
        &format!(
            "fetched {} Debian packages for {} (installing would remove {})",
            new.len(),
            missing.join(" "),
            removed.join(" ")
        ),
        Command::new("apt-get")
            .current_dir(&debs)
            .args(["-oAPT::Sandbox::User=root", "download", "-q"])
            .args(new),
    )?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&debs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    files.sort();
    let start = std::time::Instant::now();
    for f in &files {
        run_quiet(Command::new("dpkg").arg("-x").arg(f).arg(&root))?;
    }
    eprintln!(
        "  unpacked them into {} ({:.1} s)",
        root.display(),
        start.elapsed().as_secs_f64()
    );
    for p in packages {
        if !p.present() {
            bail!(
                "unpacking {} into {} did not provide {}",
                p.name,
                root.display(),
                p.provides
            );
        }
    }
    Ok(())
}

/// The packages an `apt-get -s install` plan installs (its `Inst NAME …` lines).
pub fn installs(plan: &str) -> Vec<String> {
    plan.lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

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
    use super::{installs, removals};

    #[test]
    fn a_plan_that_removes_a_package_is_seen() {
        // The shape of `apt-get -s install qemu-system-arm` on a machine whose qemu-utils it replaces.
        let plan = "NOTE: This is only a simulation!\n\
                    Remv qemu-utils [1:10.0.2+ds-2+deb13u1~bpo12+1]\n\
                    Inst qemu-system-arm (1:7.2+dfsg-7+deb12u16 Debian:12.13/stable [amd64])\n\
                    Conf qemu-system-arm (1:7.2+dfsg-7+deb12u16 Debian:12.13/stable [amd64])\n";
        assert_eq!(removals(plan), ["qemu-utils"]);
        assert_eq!(installs(plan), ["qemu-system-arm"]);
        let clean = "Inst dtc (1.6.1-4+b1 Debian:12.13/stable [amd64])\nConf dtc (1.6.1-4+b1)\n";
        assert!(removals(clean).is_empty());
    }
}
