//! Xen's own source, from Debian's `xen` source package: a debug build of the hypervisor for arm64, and the
//! tables (`hypercall-defs.c`, `public/xen.h`) the library's hypercall numbers and arities are checked against.
//!
//! Everything lives in one directory (`target/xen-src/` in this workspace, `xen-src/` in `cargo xen`'s
//! cache otherwise): a private apt configuration (a `deb-src` sources file made from
//! the system's sources, private lists and cache; the system's apt configuration is never touched), the
//! downloaded source package, its unpacked tree and the debug image. Each step is skipped when its result is
//! already there.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd as util;
use crate::setup;

/// The unpacked source tree (Debian's patches applied).
fn tree(d: &Path) -> PathBuf {
    d.join("src")
}

/// The debug hypervisor, copied out of the tree once built.
fn debug_image(d: &Path) -> PathBuf {
    d.join("xen-debug")
}

/// The tools the fetch and the build need.
const TOOLS: [setup::Package; 7] = [
    setup::GCC_AARCH64,
    setup::BINUTILS_AARCH64,
    setup::FLEX,
    setup::BISON,
    setup::MAKE,
    setup::DPKG_DEV,
    setup::PYTHON3,
];

/// Turns the system's apt sources into `deb-src` entries: deb822 stanzas (`*.sources`) with `Types: deb`
/// become `Types: deb-src`; one-line `deb …` entries (`sources.list`) become `deb-src …`. Comments and
/// disabled stanzas (`Enabled: no`) are dropped. Returns the deb822 text and the one-line list.
pub fn deb_src_entries(deb822: &[String], one_line: &[String]) -> (String, String) {
    let out = deb822_stanzas(deb822, "deb-src", &[], |_| true);
    let mut list = String::new();
    for text in one_line {
        for l in text.lines().map(str::trim) {
            if let Some(rest) = l.strip_prefix("deb ") {
                list.push_str("deb-src ");
                list.push_str(rest.trim());
                list.push('\n');
            }
        }
    }
    (out, list)
}

/// The enabled deb822 stanzas (`*.sources`) of `Types: deb` in `deb822` whose `URIs` field `keep` accepts,
/// each rewritten with `Types: TYPES` and without the fields named in `drop`; comments, blank lines and
/// disabled stanzas (`Enabled: no`) are left out. Each stanza ends with a blank line.
pub fn deb822_stanzas(
    deb822: &[String],
    types: &str,
    drop: &[&str],
    keep: impl Fn(Option<&str>) -> bool,
) -> String {
    let mut out = String::new();
    for text in deb822 {
        for stanza in text.split("\n\n") {
            let lines: Vec<&str> = stanza
                .lines()
                .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
                .collect();
            let key = |l: &str| {
                l.split_once(':')
                    .map(|(k, _)| k.trim().to_ascii_lowercase())
            };
            let field = |name: &str| {
                lines.iter().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
                })
            };
            let is_deb = field("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
            let enabled = field("Enabled").is_none_or(|e| !e.eq_ignore_ascii_case("no"));
            if !is_deb || !enabled || !keep(field("URIs")) {
                continue;
            }
            for l in &lines {
                match key(l) {
                    Some(k) if k == "types" => {
                        let _ = writeln!(out, "Types: {types}");
                    }
                    Some(k) if drop.iter().any(|d| d.eq_ignore_ascii_case(&k)) => {}
                    _ => {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
            }
            out.push('\n');
        }
    }
    out
}

/// The `-o` options of a private apt configuration under `d` (lists, cache and sources of its own, so that
/// the system's apt configuration is never touched).
pub fn apt_options(d: &Path) -> Vec<String> {
    vec![
        format!("-oDir::State::Lists={}", d.join("lists").display()),
        format!("-oDir::Cache={}", d.join("cache").display()),
        format!(
            "-oDir::Etc::SourceParts={}",
            d.join("sources.list.d").display()
        ),
        format!(
            "-oDir::Etc::SourceList={}",
            d.join("sources.list").display()
        ),
        "-oAPT::Sandbox::User=root".to_string(),
    ]
}

/// Writes the private apt configuration from the system's sources.
fn write_apt_config(d: &Path) -> Result<()> {
    let mut deb822 = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|e| e == "sources") {
                deb822.push(
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?,
                );
            }
        }
    }
    let one_line: Vec<String> = std::fs::read_to_string("/etc/apt/sources.list")
        .into_iter()
        .collect();
    let (stanzas, list) = deb_src_entries(&deb822, &one_line);
    if stanzas.trim().is_empty() && list.trim().is_empty() {
        bail!(
            "no `deb` entry in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list to make deb-src entries from"
        );
    }
    write_apt_state(d, "xen-src.sources", &stanzas, &list)
}

/// Lays out the private apt state of [`apt_options`] under `d`: its directories, the deb822 `stanzas` as
/// `sources.list.d/NAME` and the one-line entries `list` as `sources.list`.
pub fn write_apt_state(d: &Path, name: &str, stanzas: &str, list: &str) -> Result<()> {
    std::fs::create_dir_all(d.join("sources.list.d"))?;
    std::fs::create_dir_all(d.join("lists/partial"))?;
    std::fs::create_dir_all(d.join("cache/archives/partial"))?;
    std::fs::write(d.join("sources.list.d").join(name), stanzas)?;
    std::fs::write(d.join("sources.list"), list)?;
    Ok(())
}

/// The versions in `apt-cache showsrc` output, in the order given, without duplicates.
pub fn showsrc_versions(text: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for l in text.lines() {
        if let Some(ver) = l.strip_prefix("Version:") {
            let ver = ver.trim().to_string();
            if !ver.is_empty() && !v.contains(&ver) {
                v.push(ver);
            }
        }
    }
    v
}

/// Sorts Debian versions newest first with `dpkg --compare-versions` (an insertion sort: a handful of them).
fn newest_first(mut versions: Vec<String>) -> Vec<String> {
    let newer = |a: &str, b: &str| {
        Command::new("dpkg")
            .args(["--compare-versions", a, "gt", b])
            .status()
            .is_ok_and(|s| s.success())
    };
    for i in 1..versions.len() {
        let mut j = i;
        while j > 0 && newer(&versions[j], &versions[j - 1]) {
            versions.swap(j, j - 1);
            j -= 1;
        }
    }
    versions
}

/// Fetches and unpacks Debian's `xen` source package under `d/src` unless it is there; returns the tree
/// (the directory holding `xen/`).
pub fn source(d: &Path) -> Result<PathBuf> {
    let d = d.to_path_buf();
    let tree = tree(&d);
    if tree.join("xen/include/hypercall-defs.c").is_file() {
        return Ok(tree);
    }
    if !util::is_root() {
        bail!(
            "Xen's source is missing from {} and fetching it needs root (apt-get): run this again as root",
            tree.display()
        );
    }
    setup::debian(&TOOLS)?;
    eprintln!(
        "xen-src: fetching Debian's xen source package into {}",
        d.display()
    );
    write_apt_config(&d)?;
    let opts = apt_options(&d);
    util::run_logged(
        "apt-get update (source packages)",
        Command::new("apt-get").args(&opts).args(["-q", "update"]),
    )?;
    let showsrc = util::output(
        Command::new("apt-cache")
            .args(&opts)
            .args(["showsrc", "xen"]),
    )?;
    let versions = newest_first(showsrc_versions(&showsrc));
    if versions.is_empty() {
        bail!("`apt-cache showsrc xen` lists no version");
    }
    let dl = d.join("download");
    let mut got = None;
    for v in &versions {
        let _ = std::fs::remove_dir_all(&dl);
        std::fs::create_dir_all(&dl)?;
        let ok = util::run_logged(
            &format!("downloaded the source of xen={v}"),
            Command::new("apt-get")
                .current_dir(&dl)
                .args(&opts)
                .args(["-q", "source", "--download-only"])
                .arg(format!("xen={v}")),
        )
        .is_ok();
        if ok {
            got = Some(v.clone());
            break;
        }
    }
    let Some(version) = got else {
        bail!("no version of Debian's xen source package could be downloaded (tried {versions:?})");
    };
    unpack(&dl, &tree, "apt-get source produced no .dsc")?;
    if !tree.join("xen/include/hypercall-defs.c").is_file() {
        bail!("{} has no xen/include/hypercall-defs.c", tree.display());
    }
    std::fs::write(d.join("version"), &version)?;
    eprintln!("xen-src: unpacked xen {version}");
    Ok(tree)
}

/// Unpacks the source package downloaded into `dl` (its `.dsc`, with Debian's patches applied) as `tree`,
/// replacing whatever is there; `no_dsc` is the error when `dl` holds no `.dsc`.
pub fn unpack(dl: &Path, tree: &Path, no_dsc: &'static str) -> Result<()> {
    let dsc = std::fs::read_dir(dl)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "dsc"))
        .context(no_dsc)?;
    let _ = std::fs::remove_dir_all(tree);
    util::run_logged(
        "unpacked Xen's source",
        Command::new("dpkg-source")
            .current_dir(dl)
            .arg("-x")
            .arg(&dsc)
            .arg(tree),
    )
}

/// The Debian version of the unpacked source, if recorded.
pub fn version(d: &Path) -> Option<String> {
    std::fs::read_to_string(d.join("version"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Builds the hypervisor from the source in `d` with `CONFIG_DEBUG=y` unless the image is there; returns its
/// path.
pub fn debug_xen(d: &Path) -> Result<PathBuf> {
    let image = debug_image(d);
    if image.is_file() {
        return Ok(image);
    }
    let start = std::time::Instant::now();
    eprintln!(
        "cargo-xen: building a debug Xen from Debian's source in {} (once; a few minutes on 2 cores)",
        d.display()
    );
    let tree = source(d)?;
    setup::debian(&TOOLS)?;
    build_debug(
        &tree,
        &["XEN_TARGET_ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"],
        &image,
    )?;
    eprintln!(
        "cargo-xen: debug Xen at {} ({} s)",
        image.display(),
        start.elapsed().as_secs()
    );
    Ok(image)
}

/// Builds the hypervisor in `tree` with `CONFIG_DEBUG=y` (`make` given `arch_args`, e.g.
/// `XEN_TARGET_ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-`) and copies `xen/xen` to `image`.
pub fn build_debug(tree: &Path, arch_args: &[&str], image: &Path) -> Result<()> {
    let make = |args: &[&str]| -> Result<()> {
        util::run_logged(
            &format!("make {}", args.join(" ")),
            Command::new("make")
                .arg("-C")
                .arg(tree.join("xen"))
                .args(arch_args)
                .args(args),
        )
    };
    make(&["defconfig"])?;
    let config = tree.join("xen/.config");
    let text = std::fs::read_to_string(&config).context("defconfig wrote no xen/.config")?;
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("CONFIG_DEBUG=") && *l != "# CONFIG_DEBUG is not set")
        .map(str::to_string)
        .collect();
    lines.push("CONFIG_DEBUG=y".into());
    std::fs::write(&config, lines.join("\n") + "\n")?;
    make(&["olddefconfig"])?;
    let after = std::fs::read_to_string(&config)?;
    if !after.lines().any(|l| l == "CONFIG_DEBUG=y") {
        bail!(
            "olddefconfig dropped CONFIG_DEBUG=y from {}",
            config.display()
        );
    }
    make(&["-j2"])?;
    let built = tree.join("xen/xen");
    if !built.is_file() {
        bail!("the build produced no {}", built.display());
    }
    std::fs::copy(&built, image)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb_src_entries_from_both_formats() {
        let deb822 = vec![
            "Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\n\
             Types: deb\nURIs: http://x\nSuites: s\nComponents: main\nEnabled: no\n\n\
             Types: deb-src\nURIs: http://y\nSuites: s\nComponents: main\n"
                .to_string(),
        ];
        let one = vec!["# c\ndeb http://z bookworm main\ndeb-src http://w s main\n".to_string()];
        let (stanzas, list) = deb_src_entries(&deb822, &one);
        assert_eq!(
            stanzas,
            "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n\n"
        );
        assert_eq!(list, "deb-src http://z bookworm main\n");
    }

    #[test]
    fn versions_from_showsrc() {
        let text = "Package: xen\nVersion: 4.17.5+72-g01140da4e8-1\nBinary: a\n\nPackage: xen\n\
                    Version: 4.17.7-1~deb12u1\n\nPackage: xen\nVersion: 4.17.5+72-g01140da4e8-1\n";
        assert_eq!(
            showsrc_versions(text),
            vec!["4.17.5+72-g01140da4e8-1", "4.17.7-1~deb12u1"]
        );
    }
}
