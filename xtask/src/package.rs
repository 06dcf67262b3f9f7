//! The published crates build their own tests: `cargo package` of each and `cargo publish --dry-run` of all
//! three, then `cargo test --no-run` in
//! each unpacked `.crate`, with the workspace's other published crates (the generator) taken from their
//! unpacked packages instead of the registry.
//!
//! This catches what `cargo package` silently drops: path-only dev-dependencies (a test or bench that
//! uses one no longer compiles from the `.crate`) and files left out of the package.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::util;

/// The published members, in dependency order: `(package name, version)`.
pub const PUBLISHED: [(&str, &str); 5] = [
    ("xen-hypercall-macros", "0.1.0"),
    ("xen-hypercall", "0.1.0"),
    ("xen-test-macros", "0.1.0"),
    ("xen-test", "0.1.0"),
    ("cargo-xen", "0.1.0"),
];

/// `cargo package` of the published crates, then builds each unpacked crate's tests.
pub fn run() -> Result<()> {
    let dir = util::target_dir().join("package");
    let mut package = util::cargo();
    package.args(["package", "--allow-dirty", "--no-verify"]);
    for (name, _) in PUBLISHED {
        package.args(["-p", name]);
    }
    util::run(&mut package)?;
    // What crates.io would take: `cargo publish --dry-run` of the three together (each one's dependency on
    // the generator resolved from the others); the build was checked by the step below.
    let mut publish = util::cargo();
    publish.args(["publish", "--dry-run", "--allow-dirty", "--no-verify"]);
    for (name, _) in PUBLISHED {
        publish.args(["-p", name]);
    }
    util::run(&mut publish)?;
    // Outside the workspace, so that cargo treats each as the stand-alone package a user downloads; one
    // directory per checkout (named after its target directory), so that two checkouts never share it.
    let tag: String = dir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let unpacked = std::env::temp_dir().join(format!("xen-hypercall-package{tag}"));
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked)?;
    }
    std::fs::create_dir_all(&unpacked)?;
    let mut roots = Vec::new();
    for (name, version) in PUBLISHED {
        let krate = dir.join(format!("{name}-{version}.crate"));
        if !krate.is_file() {
            bail!("cargo package made no {}", krate.display());
        }
        util::run(
            // `-m`: the files get the time of unpacking, not the archive's, so that the build below never
            // takes an earlier unpacking's artifacts for up to date.
            std::process::Command::new("tar")
                .arg("-xmzf")
                .arg(&krate)
                .arg("-C")
                .arg(&unpacked),
        )?;
        roots.push((name, unpacked.join(format!("{name}-{version}"))));
    }
    for (i, (name, root)) in roots.iter().enumerate() {
        let mut cmd = util::cargo();
        cmd.current_dir(root)
            .env("CARGO_TARGET_DIR", dir.join("target"))
            .args(["test", "--no-run", "--all-features"]);
        // The published crates it depends on come before it in `PUBLISHED`.
        for (dep, path) in &roots[..i] {
            cmd.args(["--config", &patch(dep, path)]);
        }
        util::run(&mut cmd)
            .with_context(|| format!("the tests of the packaged {name} do not build"))?;
        eprintln!("{name}: the packaged crate builds its tests");
    }
    Ok(())
}

/// A `--config` value that takes crate `name` from `path` instead of the registry.
fn patch(name: &str, path: &Path) -> String {
    format!(
        "patch.crates-io.{name}.path={:?}",
        PathBuf::from(path).display().to_string()
    )
}
