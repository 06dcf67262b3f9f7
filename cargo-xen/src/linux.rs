//! A real Linux dom0 with Xen's toolstack, from Debian bookworm's arm64 packages: the dom0 kernel (an
//! uncompressed arm64 `Image`) and its Xen modules, `xl`, `xenstored`, `xenconsoled`, `xen-init-dom0`,
//! their libraries and busybox, packed into an initramfs whose `/init` is a busybox shell script.
//!
//! - [`fetch`]: the packages, downloaded with `apt-get download` into a directory of the caller's (a
//!   private apt state there: the system's Debian sources ([`debian_sources`]), an arm64 architecture, no
//!   installed-package state; the system's apt configuration is never touched), and unpacked there once:
//!   the toolstack's tree, and only the kernel's `Image` and the modules listed here from the kernel
//!   package. About 65 MB of downloads; the commands' output goes to the set-up log ([`cmd::log_path`]).
//!   [`fetch_arch`] does the same for another [`Arch`]: [`AMD64`], a 64-bit PV dom0 on x86-64 Xen (about
//!   79 MB, its kernel a bzImage), whose machine the caller builds.
//! - [`Cpio`]: a `newc` cpio archive written in memory; [`base_cpio`] the dom0's tree in it (the unpacked
//!   packages, whose programs are checked to find every library they need, [`check_libraries`], and the
//!   modules asked for); [`gzip`] compresses it.
//! - [`init_prelude`]: the start of dom0's `/init`: mounts, modules, xenfs, `xenstored`, `xen-init-dom0`,
//!   `xenconsoled`, every wait bounded, each step reported as `ok STEP` or `FAIL STEP: …` after a marker.
//! - [`command`]: the QEMU command that boots Xen with that kernel and initramfs (dom0 [`DOM0_MEMORY`] of
//!   [`MACHINE_MEMORY`], the kernel and initrd placed after the device tree); [`crash_line`] and
//!   [`finished`] read its console ([`dom0_off`]: ARM's and x86's Xen end a dom0 poweroff differently).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cmd, qemu, setup, xensrc};

/// The Debian packages besides the kernel: the toolstack, the 19 libraries its programs need (by
/// `DT_NEEDED`), `libgcc-s1` (glibc loads it at run time for `pthread_cancel`), busybox as `/init`'s
/// shell and tools, a static bash (for `/dev/udp` in the project's network checks), and `dmsetup` with
/// the libraries it needs (for device-mapper disks exported to domUs).
pub const PACKAGES: [&str; 27] = [
    "xen-utils-4.17",
    "xen-utils-common",
    "xenstore-utils",
    "libxenmisc4.17",
    "libxenstore4",
    "libxentoolcore1",
    "libxencall1",
    "libxenevtchn1",
    "libxenforeignmemory1",
    "libxengnttab1",
    "libxentoollog1",
    "libxendevicemodel1",
    "libxenhypfs1",
    "libyajl2",
    "libfdt1",
    "libuuid1",
    "zlib1g",
    "libc6",
    "libgcc-s1",
    "busybox-static",
    // For `/dev/udp` in the project's network checks: busybox's `nc` has no UDP.
    "bash-static",
    // For device-mapper disks (a disk with failing sectors): `dmsetup` and the libraries it needs.
    "dmsetup",
    "libdevmapper1.02.1",
    "libselinux1",
    "libudev1",
    "libpcre2-8-0",
    // Resolved to `linux-image-6.1.0-<N>-arm64` by apt.
    "linux-image-arm64",
];

/// The kernel modules `/init` loads, in order (xenfs needs xen-privcmd), under `kernel/drivers/`.
pub const MODULES: [&str; 5] = [
    "xen/xen-evtchn",
    "xen/xen-privcmd",
    "xen/xenfs/xenfs",
    "xen/xen-gntdev",
    "xen/xen-gntalloc",
];

/// The modules a dom0 loads after [`MODULES`] for RAM disks exported to domUs, in order:
/// the RAM disk driver (`brd`, loaded with `rd_nr` and `rd_size` from the declarations) and the block
/// backend (`xen-blkback`), under `kernel/drivers/`; then, for disks over files and device-mapper disks
/// only, the loop driver and device-mapper (`dm-mod`, which needs `dax`).
pub const DISK_MODULES: [&str; 5] = [
    "block/brd",
    "block/xen-blkback/xen-blkback",
    "block/loop",
    "dax/dax",
    "md/dm-mod",
];

/// The modules a dom0 loads after [`MODULES`] (and [`DISK_MODULES`]) for domUs' network interfaces, in order, under `kernel/` (not `kernel/drivers/`): the bridge and its dependencies, and the
/// network backend (`xen-netback`).
pub const NET_MODULES: [&str; 4] = [
    "net/llc/llc",
    "net/802/stp",
    "net/bridge/bridge",
    "drivers/net/xen-netback/xen-netback",
];

/// Modules for a Linux domU's own initramfs, under `kernel/`: Linux's network frontend.
pub const DOMU_MODULES: [&str; 1] = ["drivers/net/xen-netfront"];

/// Every module the harness may load, dom0's and a Linux domU's ([`DOMU_MODULES`]), as paths under
/// `kernel/` of the kernel's module tree.
pub fn all_modules() -> Vec<String> {
    MODULES
        .iter()
        .chain(&DISK_MODULES)
        .map(|m| format!("drivers/{m}"))
        .chain(
            NET_MODULES
                .iter()
                .chain(&DOMU_MODULES)
                .map(|m| m.to_string()),
        )
        .collect()
}

/// The modules of the Linux domU the block benchmark compares with (its `xen-blkfront`), under
/// `kernel/drivers/`.
pub const LINUX_DOMU_MODULES: [&str; 1] = ["block/xen-blkfront"];

/// The toolstack's programs `/init` runs (every one is checked to find its libraries in the initramfs).
pub const PROGRAMS: [&str; 6] = [
    "usr/lib/xen-4.17/bin/xl",
    "usr/lib/xen-4.17/bin/xenstored",
    "usr/lib/xen-4.17/bin/xenconsoled",
    "usr/lib/xen-4.17/bin/xen-init-dom0",
    "usr/bin/xenstore",
    "sbin/dmsetup",
];

/// Parts of the unpacked packages left out of the initramfs: documentation, Python, character-set
/// converters, init scripts.
const LEFT_OUT: [&str; 5] = [
    "usr/share",
    "usr/lib/xen-4.17/lib/python",
    "usr/lib/aarch64-linux-gnu/gconv",
    "etc/init.d",
    "usr/lib/xen-4.17/lib/aarch64-linux-gnu/xenfsimage",
];

/// The system's Debian archive entries as a private apt source list: deb822 stanzas (`*.sources`) of
/// `Types: deb` and one-line `deb …` entries whose URI is on `debian.org` (other repositories, e.g. a
/// vendor's, are not Debian's archive and need not be reachable). Returns (deb822 text, one-line text).
pub fn debian_sources(deb822: &[String], one_line: &[String]) -> (String, String) {
    let debian = |uri: &str| {
        uri.split_whitespace().any(|u| {
            let host = u
                .split("://")
                .nth(1)
                .unwrap_or("")
                .split('/')
                .next()
                .unwrap_or("");
            host == "debian.org" || host.ends_with(".debian.org")
        })
    };
    // The private state is arm64 only: an `Architectures` restriction would hide it.
    let out = xensrc::deb822_stanzas(deb822, "deb", &["Architectures"], |u| u.is_some_and(debian));
    let mut list = String::new();
    for text in one_line {
        for l in text.lines().map(str::trim) {
            if let Some(rest) = l.strip_prefix("deb ")
                && debian(rest)
                && !rest.trim_start().starts_with('[')
            {
                list.push_str(l);
                list.push('\n');
            }
        }
    }
    (out, list)
}

/// The `-o` options of the private apt state under `d`: `cargo-xen`'s private configuration, for `arch`
/// only and with no package installed (apt must not reason about the host's own).
fn apt_options(d: &Path, arch: Arch) -> Vec<String> {
    let mut o = vec![
        format!("-oAPT::Architecture={}", arch.debian),
        format!("-oAPT::Architectures={}", arch.debian),
        "-oDir::State::Status=/dev/null".to_string(),
    ];
    o.extend(xensrc::apt_options(d));
    o
}

/// Writes the private apt configuration from the system's sources.
fn write_apt_config(d: &Path) -> Result<()> {
    let mut deb822 = Vec::new();
    let mut one_line = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let text = || std::fs::read_to_string(&p).with_context(|| format!("{}", p.display()));
            match p.extension().and_then(|e| e.to_str()) {
                Some("sources") => deb822.push(text()?),
                Some("list") => one_line.push(text()?),
                _ => {}
            }
        }
    }
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        one_line.push(t);
    }
    let (stanzas, list) = debian_sources(&deb822, &one_line);
    if stanzas.is_empty() && list.is_empty() {
        bail!(
            "the system's apt sources name no Debian archive (deb.debian.org or another debian.org host)"
        );
    }
    xensrc::write_apt_state(d, "debian.sources", &stanzas, &list)
}

/// A Debian architecture a dom0 is made for: the packages' architecture and what differs with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arch {
    /// Debian's name of it (`arm64`, `amd64`): the packages', and the kernel metapackage's suffix
    /// (`linux-image-arm64`).
    pub debian: &'static str,
    /// Its multiarch directory (`aarch64-linux-gnu`): where the libraries are (`lib/…`, `usr/lib/…`).
    pub triplet: &'static str,
    /// Packages its toolstack needs beyond [`PACKAGES`].
    pub extra: &'static [&'static str],
    /// Modules of [`all_modules`] that its kernel has built in (no `.ko` in the package).
    pub builtin: &'static [&'static str],
}

impl Arch {
    /// The `.ko` files to unpack: [`all_modules`] and the Linux domU's, less those built in.
    pub fn module_files(&self) -> Vec<String> {
        all_modules()
            .into_iter()
            .chain(LINUX_DOMU_MODULES.iter().map(|m| format!("drivers/{m}")))
            .filter(|m| !self.builtin.contains(&m.as_str()))
            .collect()
    }
}

/// arm64: the dom0 of [`fetch`].
pub const ARM64: Arch = Arch {
    debian: "arm64",
    triplet: "aarch64-linux-gnu",
    extra: &[],
    builtin: &[],
};

/// amd64: a 64-bit PV dom0 on x86-64 Xen. libxenguest is linked with liblzma and libzstd there; `dax`
/// is built in (`CONFIG_DAX=y`).
pub const AMD64: Arch = Arch {
    debian: "amd64",
    triplet: "x86_64-linux-gnu",
    extra: &["liblzma5", "libzstd1"],
    builtin: &["drivers/dax/dax"],
};

/// What [`fetch`] provides.
#[derive(Clone, Debug)]
pub struct Dom0 {
    /// The packages' architecture.
    pub arch: Arch,
    /// The kernel: an uncompressed `Image` on arm64, a bzImage on amd64.
    pub kernel: PathBuf,
    /// The kernel's release (`6.1.0-<N>-arm64`): the modules' directory name.
    pub release: String,
    /// The unpacked kernel package (its `boot/` and the modules [`MODULES`] only).
    pub kernel_tree: PathBuf,
    /// The unpacked toolstack, libraries and busybox.
    pub root: PathBuf,
    /// Bytes of the downloaded packages.
    pub download_bytes: u64,
}

/// Downloads and unpacks the packages under `d` unless they are there (`d/fetched` records the kernel's
/// release and the package list once everything is unpacked). One progress line on stderr while it
/// fetches; the commands' output goes to the set-up log ([`cmd::log_path`]).
pub fn fetch(d: &Path) -> Result<Dom0> {
    fetch_arch(d, ARM64)
}

/// [`fetch`] for the packages of `arch`.
pub fn fetch_arch(d: &Path, arch: Arch) -> Result<Dom0> {
    let meta = format!("linux-image-{}", arch.debian);
    let debs = d.join("debs");
    let root = d.join("root");
    let kernel_tree = d.join("kernel");
    let stamp = d.join("fetched");
    let done = |release: String| -> Result<Dom0> {
        let mut bytes = 0;
        for e in std::fs::read_dir(&debs)? {
            bytes += e?.metadata()?.len();
        }
        Ok(Dom0 {
            arch,
            kernel: kernel_tree.join(format!("boot/vmlinuz-{release}")),
            release,
            kernel_tree: kernel_tree.clone(),
            root: root.clone(),
            download_bytes: bytes,
        })
    };
    // The stamp names the kernel's release and the packages: a changed list is fetched again.
    let wanted_list = PACKAGES
        .iter()
        .filter(|p| !p.starts_with("linux-image-"))
        .chain(arch.extra)
        .chain([&meta.as_str()])
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    if let Ok(text) = std::fs::read_to_string(&stamp)
        && let Some((release, packages)) = text.split_once('\n')
        && packages.trim() == wanted_list
    {
        let release = release.trim().to_string();
        // A module added to the lists since: unpacked again from the kernel package kept in `debs`.
        let missing = arch.module_files().into_iter().any(|m| {
            !kernel_tree
                .join(format!("lib/modules/{release}/kernel/{m}.ko"))
                .is_file()
        });
        let deb = std::fs::read_dir(&debs)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("linux-image-{release}_")))
            });
        match (missing, deb) {
            (false, _) => return done(release),
            (true, Some(deb)) => {
                setup::debian(&[DPKG, TAR])?;
                extract_kernel(&deb, &kernel_tree, &release, &arch)?;
                return done(release);
            }
            (true, None) => {} // fetched again
        }
    }
    setup::debian(&[APT, DPKG, TAR])?;
    let apt = d.join("apt");
    let opts = apt_options(&apt, arch);
    if !cmd::is_root() {
        bail!(
            "Debian's {} packages for the Linux dom0 are missing from {}: run this again as root (it runs \
             apt-get {} update, then download)",
            arch.debian,
            d.display(),
            opts.join(" ")
        );
    }
    let start = Instant::now();
    eprint!(
        "cargo-xen: fetching Debian's {} Linux dom0 and Xen toolstack (65-80 MB, once) into {} (log: {})...",
        arch.debian,
        d.display(),
        cmd::log_path().display()
    );
    let _ = std::io::stderr().flush();
    write_apt_config(&apt)?;
    cmd::run_quiet(Command::new("apt-get").args(&opts).args(["-q", "update"]))?;
    // The kernel: the metapackage names the current ABI's image.
    let depends = cmd::output(
        Command::new("apt-cache")
            .args(&opts)
            .args(["depends", &meta]),
    )?;
    let image = kernel_package(&depends, arch)
        .with_context(|| format!("`apt-cache depends {meta}` named no image:\n{depends}"))?;
    let release = image
        .strip_prefix("linux-image-")
        .unwrap_or(&image)
        .to_string();
    let _ = std::fs::remove_dir_all(&debs);
    std::fs::create_dir_all(&debs)?;
    let wanted: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| !p.starts_with("linux-image-"))
        .chain(arch.extra.iter().copied())
        .chain([image.as_str()])
        .collect();
    cmd::run_quiet(
        Command::new("apt-get")
            .current_dir(&debs)
            .args(&opts)
            .args(["-q", "download"])
            .args(&wanted),
    )?;
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&kernel_tree);
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(&kernel_tree)?;
    for e in std::fs::read_dir(&debs)? {
        let deb = e?.path();
        let name = deb.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("linux-image-") {
            extract_kernel(&deb, &kernel_tree, &release, &arch)?;
        } else {
            cmd::run_quiet(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
        }
    }
    std::fs::write(&stamp, format!("{release}\n{wanted_list}\n"))?;
    let dom0 = done(release)?;
    eprintln!(
        " {} MB in {:.1} s",
        dom0.download_bytes / 1_000_000,
        start.elapsed().as_secs_f64()
    );
    Ok(dom0)
}

/// apt (`apt-get download` into a private state).
pub const APT: setup::Package = setup::Package::new("apt", "/usr/bin/apt-get");
/// dpkg (`dpkg -x`, `dpkg-deb --fsys-tarfile`).
pub const DPKG: setup::Package = setup::Package::new("dpkg", "/usr/bin/dpkg-deb");
/// tar, to take only the kernel and its Xen modules out of the kernel package.
pub const TAR: setup::Package = setup::Package::new("tar", "/usr/bin/tar");

/// The kernel image package `apt-cache depends linux-image-<arch>` names.
pub fn kernel_package(depends: &str, arch: Arch) -> Option<String> {
    let suffix = format!("-{}", arch.debian);
    depends.lines().find_map(|l| {
        let p = l.trim().strip_prefix("Depends: ")?.trim();
        (p.starts_with("linux-image-") && p.ends_with(&suffix)).then(|| p.to_string())
    })
}

/// Unpacks only the kernel's `Image` and the modules [`MODULES`] from the kernel package (350 MB unpacked
/// in full): `dpkg-deb --fsys-tarfile` into `tar`.
fn extract_kernel(deb: &Path, into: &Path, release: &str, arch: &Arch) -> Result<()> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start dpkg-deb")?;
    let mut tar = Command::new("tar");
    tar.arg("-x").arg("-C").arg(into);
    tar.arg(format!("./boot/vmlinuz-{release}"));
    for m in arch.module_files() {
        tar.arg(format!("./lib/modules/{release}/kernel/{m}.ko"));
    }
    let status = tar
        .stdin(dpkg.stdout.take().context("no pipe")?)
        .status()
        .context("cannot start tar")?;
    let dpkg_status = dpkg.wait()?;
    if !status.success() || !dpkg_status.success() {
        bail!(
            "unpacking the kernel and its Xen modules from {} failed",
            deb.display()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// The initramfs
// ---------------------------------------------------------------------------------------------------

/// A `newc` cpio archive, written in memory.
#[derive(Default)]
pub struct Cpio {
    data: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

/// File types for the `mode` field.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, body: &[u8]) {
        self.ino += 1;
        let _ = write!(
            ByteWriter(&mut self.data),
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            if mode & S_IFDIR == S_IFDIR { 2 } else { 1 },
            0,
            body.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(body);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    /// A directory, and its parents (once each).
    pub fn dir(&mut self, path: &str) {
        let path = path.trim_matches('/');
        if path.is_empty() || self.dirs.contains(path) {
            return;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.dirs.insert(path.to_string());
        self.entry(path, S_IFDIR | 0o755, &[]);
    }

    fn parent(&mut self, path: &str) {
        if let Some((parent, _)) = path.trim_matches('/').rsplit_once('/') {
            self.dir(parent);
        }
    }

    /// A regular file with permission bits `perm`.
    pub fn file(&mut self, path: &str, perm: u32, body: &[u8]) {
        self.parent(path);
        self.entry(path.trim_matches('/'), S_IFREG | (perm & 0o7777), body);
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) {
        self.parent(path);
        self.entry(path.trim_matches('/'), S_IFLNK | 0o777, target.as_bytes());
    }

    /// The archive, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.data
    }
}

/// `write!` into a byte vector (the cpio headers are ASCII).
struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Adds the tree under `root` to `cpio` (files with their permissions, symbolic links as they are),
/// leaving out [`LEFT_OUT`]; returns the archive paths of regular files.
fn add_tree(cpio: &mut Cpio, root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    let mut entries = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("{}", d.display()))? {
            let p = e?.path();
            let rel = p
                .strip_prefix(root)?
                .to_str()
                .context("non-UTF-8 path")?
                .to_string();
            if LEFT_OUT
                .iter()
                .any(|l| rel == *l || rel.starts_with(&format!("{l}/")))
            {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p)?;
            if meta.is_dir() {
                stack.push(p);
            } else {
                entries.push((rel, p, meta));
            }
        }
    }
    // Sorted: the archive is the same from one build to the next.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (rel, p, meta) in entries {
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&p)?;
            cpio.symlink(&rel, target.to_str().context("non-UTF-8 link")?);
        } else if meta.is_file() {
            use std::os::unix::fs::PermissionsExt;
            cpio.file(&rel, meta.permissions().mode(), &std::fs::read(&p)?);
            files.push(rel);
        }
    }
    Ok(files)
}

/// The shared libraries an ELF file names (`DT_NEEDED`).
pub fn needed(elf: &[u8]) -> Result<Vec<String>> {
    use object::elf::{DT_NEEDED, FileHeader64};
    use object::read::elf::{Dyn, FileHeader};
    let header = FileHeader64::<object::Endianness>::parse(elf)?;
    let endian = header.endian()?;
    let sections = header.sections(endian, elf)?;
    let Some((dynamic, link)) = sections.dynamic(endian, elf)? else {
        return Ok(Vec::new());
    };
    let strings = sections.strings(endian, elf, link)?;
    let mut out = Vec::new();
    for d in dynamic {
        if d.tag32(endian) == Some(DT_NEEDED) {
            let name = d.string(endian, strings)?;
            out.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(out)
}

/// Checks that every library [`PROGRAMS`] need, and the libraries those need, is in the unpacked tree
/// `root` of `arch` (in Debian's multiarch directories, `lib/<triplet>` and `usr/lib/<triplet>`, following
/// symbolic links inside the tree); returns the libraries found.
pub fn check_libraries(root: &Path, arch: Arch) -> Result<Vec<String>> {
    let lib_dirs = [
        format!("lib/{}", arch.triplet),
        format!("usr/lib/{}", arch.triplet),
    ];
    let resolve = |p: &Path| -> Option<PathBuf> {
        // A link's target, relative to its directory or absolute inside the tree.
        let mut p = p.to_path_buf();
        for _ in 0..8 {
            let meta = std::fs::symlink_metadata(&p).ok()?;
            if !meta.file_type().is_symlink() {
                return meta.is_file().then_some(p);
            }
            let t = std::fs::read_link(&p).ok()?;
            p = if t.is_absolute() {
                root.join(t.strip_prefix("/").ok()?)
            } else {
                p.parent()?.join(t)
            };
        }
        None
    };
    let mut seen = BTreeSet::new();
    let mut missing = Vec::new();
    let mut todo: Vec<(String, PathBuf)> = PROGRAMS
        .iter()
        .map(|p| (p.to_string(), root.join(p)))
        .collect();
    while let Some((name, path)) = todo.pop() {
        let file = resolve(&path).with_context(|| format!("{name} is not in the initramfs"))?;
        let data = std::fs::read(&file)?;
        for lib in needed(&data).with_context(|| format!("reading {name}"))? {
            if !seen.insert(lib.clone()) {
                continue;
            }
            match lib_dirs
                .iter()
                .map(|d| root.join(d).join(&lib))
                .find(|p| resolve(p).is_some())
            {
                Some(p) => todo.push((lib, p)),
                None => missing.push(format!("{lib} (needed by {name})")),
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "libraries missing from the initramfs: {}",
            missing.join(", ")
        );
    }
    Ok(seen.into_iter().collect())
}

/// Single-quotes `s` for the shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The start of dom0's `/init` (a busybox shell script): shell functions, mounts, the [`MODULES`], then
/// `extra` (shell lines: more modules, a bridge), xenfs, `xenstored` (answering within 15 s),
/// `xen-init-dom0`, `xenconsoled` logging each guest's console to `/var/log/xen/console/guest-NAME.log`.
/// `comment` is the script's second line (after `# `); every report line starts with `mark` (the shell's
/// `$M`): `ok STEP`, `FAIL STEP` (then dom0 powers off at once), and the times dom0's clock gave. The
/// functions it defines for what follows: `ok`, `fail`, `show FILE` (a command's output under its report),
/// `finish` (powers dom0 off), `wait_for SECONDS COMMAND…`, `gone NAME` (no such domain), `is_key PATH
/// VALUE`.
pub fn init_prelude(comment: &str, mark: &str, extra: &str) -> String {
    let m = mark;
    format!(
        r#"#!/bin/busybox sh
# {comment}
/bin/busybox --install -s
export PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
M='{m}'
ok() {{ echo "$M ok $*"; }}
fail() {{ echo "$M FAIL $*"; }}
# show FILE: a command's output, under the line that reports it.
show() {{ sed "s/^/$M   | /" "$1"; }}
finish() {{ echo "$M done"; sync; poweroff -f; sleep 10; echo "$M FAIL poweroff"; }}
# wait_for SECONDS COMMAND…: runs COMMAND every 0.1 s until it succeeds, for at most SECONDS by the clock
# (a command as slow as `xl` under emulation takes a good part of a second itself).
wait_for() {{ wait_end=$(($(cut -d. -f1 /proc/uptime) + $1)); shift; while ! "$@" >/dev/null 2>&1; do [ "$(cut -d. -f1 /proc/uptime)" -ge $wait_end ] && return 1; sleep 0.1; done; }}
# gone NAME: `xl domid` says there is no such domain (exit status 1; a time-out is 143).
gone() {{ timeout 5 xl domid "$1"; [ $? -eq 1 ]; }}
# is_key PATH VALUE: xenstore's PATH reads VALUE.
is_key() {{ [ "$(timeout 5 xenstore-read "$1" 2>/dev/null)" = "$2" ]; }}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /var/log/xen/console /var/lib/xen /var/lib/xenstored
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mkdir -p /run/xen
ln -s /run /var/run
echo "$M dom0 up: $(uname -r), $(cut -d' ' -f1 /proc/uptime) s"
K=/lib/modules/$(uname -r)/kernel/drivers
for mod in {modules}; do
  insmod $K/$mod.ko || {{ fail "insmod $mod"; finish; }}
done
ok modules
{extra}mount -t xenfs xenfs /proc/xen || {{ fail "mount xenfs"; finish; }}
ok xenfs
mkdir -p /run/xenstored
XENSTORED_ROOTDIR=/run/xenstored xenstored --pid-file /run/xenstored.pid || {{ fail "xenstored did not start"; finish; }}
wait_for 15 timeout 2 xenstore-read -s / || {{ fail "xenstored: no answer in 15 s"; finish; }}
ok xenstored
echo "$M xenstored is $(readlink /proc/$(cat /run/xenstored.pid)/exe)"
timeout 15 xen-init-dom0 > /tmp/init-dom0.log 2>&1 || {{ fail "xen-init-dom0"; show /tmp/init-dom0.log; finish; }}
ok xen-init-dom0
xenconsoled --log=guest --log-dir=/var/log/xen/console || {{ fail "xenconsoled did not start"; finish; }}
ok xenconsoled
echo "$M toolstack up: $(cut -d' ' -f1 /proc/uptime) s"
"#,
        modules = MODULES.join(" "),
    )
}

/// The dom0's initramfs without its `/init`: the directories `/init` needs, the unpacked packages (their
/// programs checked to find every library they need), and the kernel modules `modules` (paths under the
/// release's `kernel/`, without `.ko`).
pub fn base_cpio<'a>(dom0: &Dom0, modules: impl IntoIterator<Item = &'a str>) -> Result<Cpio> {
    check_libraries(&dom0.root, dom0.arch)?;
    let mut cpio = Cpio::default();
    for d in [
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
        "sbin",
        "var/log/xen/console",
        "etc/xen",
    ] {
        cpio.dir(d);
    }
    add_tree(&mut cpio, &dom0.root)?;
    for m in modules {
        let rel = format!("lib/modules/{}/kernel/{m}.ko", dom0.release);
        let data = std::fs::read(dom0.kernel_tree.join(&rel))
            .with_context(|| format!("the kernel module {rel}"))?;
        cpio.file(&rel, 0o644, &data);
    }
    Ok(cpio)
}

/// `data` compressed by `gzip -n -6` (no name or time stamp: the same input gives the same bytes).
pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    setup::debian(&[GZIP])?;
    let mut gz = Command::new("gzip")
        .args(["-n", "-6", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start gzip")?;
    let mut stdin = gz.stdin.take().context("no pipe")?;
    let owned = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&owned));
    let out = gz.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("gzip writer panicked"))??;
    if !out.status.success() {
        bail!("gzip failed");
    }
    Ok(out.stdout)
}

/// The lines of `output` that hold `mark`, each from just after it (anything Xen printed before it on
/// the same line is dropped).
pub fn marked_lines<'a>(output: &'a str, mark: &str) -> Vec<&'a str> {
    output
        .lines()
        .filter_map(|l| l.find(mark).map(|at| &l[at + mark.len()..]))
        .collect()
}

/// gzip, for the initramfs.
pub const GZIP: setup::Package = setup::Package::new("gzip", "/usr/bin/gzip");

/// QEMU's memory: dom0 gets [`DOM0_MEMORY`] of it, the domUs and Xen the rest.
pub const MACHINE_MEMORY: &str = "512M";
/// dom0's memory (`dom0_mem`; on ARM a plain size, and the 1:1 allocation wants a power-of-two-friendly one).
pub const DOM0_MEMORY: &str = "192M";
/// Where the dom0 kernel is loaded: after the device tree QEMU puts at RAM + 128 MiB.
pub const KERNEL_ADDR: u64 = 0x4820_0000;

/// Where the initrd goes: right after the kernel, on a 2 MiB boundary.
pub fn initrd_addr(kernel_size: u64) -> u64 {
    (KERNEL_ADDR + kernel_size).div_ceil(0x20_0000) * 0x20_0000
}

/// The QEMU command that boots `xen` with the dom0 `kernel` and `initrd`.
pub fn command(xen: &Path, kernel: &Path, initrd: &Path) -> Result<Command> {
    let size = std::fs::metadata(kernel)
        .with_context(|| format!("{}", kernel.display()))?
        .len();
    let mut c = crate::setup::qemu("qemu-system-aarch64");
    c.args(["-machine", qemu::MACHINE])
        .args(["-cpu", "cortex-a57", "-smp", "1", "-m", MACHINE_MEMORY])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(xen)
        .arg("-append")
        .arg(format!(
            "dom0_mem={DOM0_MEMORY} dom0_max_vcpus=1 console=dtuart dtuart=/pl011@9000000 loglvl=all \
             guest_loglvl=all noreboot"
        ))
        .arg("-device")
        .arg(format!(
            "guest-loader,addr=0x{KERNEL_ADDR:x},kernel={},bootargs=console=hvc0 earlycon=xenboot \
             rdinit=/init quiet panic=-1 cma=0",
            kernel.display()
        ))
        .arg("-device")
        .arg(format!(
            "guest-loader,addr=0x{:x},initrd={}",
            initrd_addr(size),
            initrd.display()
        ));
    Ok(c)
}

/// A line that shows Xen or dom0 died.
pub fn crash_line(output: &str) -> Option<&str> {
    output.lines().find(|l| {
        qemu::xen_died(l)
            || l.contains("Kernel panic")
            || l.contains("Internal error: Oops")
            || l.contains("Unable to handle kernel")
            || l.contains("Hardware Dom0 crashed")
    })
}

/// Whether the run is over: dom0 halted the machine, or something died.
pub fn finished(output: &str) -> bool {
    dom0_off(output) || crash_line(output).is_some()
}

/// Whether Xen reported dom0's poweroff: ARM's Xen halts the machine; x86's enters ACPI S5 (dom0's
/// `poweroff -f` through ACPI), after which QEMU exits.
pub fn dom0_off(output: &str) -> bool {
    output.contains("Hardware Dom0 halted") || output.contains("(XEN) Entering ACPI S5 state")
}

#[cfg(test)]
mod tests;
