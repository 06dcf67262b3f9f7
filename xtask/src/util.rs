//! Small helpers shared by the tasks: locating the workspace, running commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// `cargo` as invoked by the user (the toolchain of `rust-toolchain.toml`).
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

pub use cargo_xen::cmd::{output, run, show};

/// Whether builds are quiet ([`quiet_builds`]).
static QUIET: AtomicBool = AtomicBool::new(false);

/// From now on, [`cross_build`] and [`run`] print nothing when they succeed: a build's output goes to the
/// set-up log (`target/setup.log`), and a failed build's error ends with the log's tail. For a task whose
/// console is what it shows (`cargo xtask demo`).
pub fn quiet_builds() {
    QUIET.store(true, Ordering::Relaxed);
    cargo_xen::cmd::set_echo(false);
}

/// Builds `package` in release mode for `target` at `opt` (an opt-level), with `extra` rustflags (e.g.
/// `-Ctarget-feature=+thumb-mode`) and cargo `features`, in the target directory `dir`. The flags reach only
/// the target's crates (not build scripts or proc-macros), so one directory serves several configurations
/// with one host build.
pub fn cross_build(
    dir: &Path,
    package: &str,
    target: &str,
    opt: &str,
    extra: &str,
    features: &[&str],
) -> Result<()> {
    let mut cmd = cross_build_command(dir, package, target, opt, extra, features);
    if QUIET.load(Ordering::Relaxed) {
        return cargo_xen::cmd::run_quiet(&mut cmd);
    }
    eprintln!("$ {}", show(&cmd));
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start {}", show(&cmd)))?;
    eprint!(
        "{}",
        without_thumb_mode_warning(&String::from_utf8_lossy(&out.stderr))
    );
    if !out.status.success() {
        bail!("`{}` failed ({})", show(&cmd), out.status);
    }
    Ok(())
}

/// The `cargo build` command of [`cross_build`], for a caller that judges its outcome itself (a build that
/// must fail).
pub fn cross_build_command(
    dir: &Path,
    package: &str,
    target: &str,
    opt: &str,
    extra: &str,
    features: &[&str],
) -> Command {
    let mut flags = format!("-Copt-level={opt}");
    if !extra.is_empty() {
        flags = format!("{flags}\x1f{extra}");
    }
    let mut cmd = cargo();
    cmd.env("CARGO_TARGET_DIR", dir)
        .env("CARGO_ENCODED_RUSTFLAGS", &flags)
        .env_remove("RUSTFLAGS")
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            package,
            "--target",
            target,
        ]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd
}

/// `stderr` without rustc's warning that `thumb-mode` is not a stable target feature: the T32 builds
/// ask for it on purpose (it is how a whole crate is compiled to Thumb-2 on `armv7a-none-eabi`), and
/// the warning, repeated for every T32 build, would bury what matters.
pub fn without_thumb_mode_warning(stderr: &str) -> String {
    let mut kept = String::new();
    let mut skipping = false;
    for line in stderr.lines() {
        if line
            .starts_with("warning: unstable feature specified for `-Ctarget-feature`: `thumb-mode`")
        {
            skipping = true;
            continue;
        }
        if skipping {
            // The warning's body is indented (`  |`, `  = note`); a blank line ends it.
            if line.trim().is_empty() {
                skipping = false;
            }
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::without_thumb_mode_warning;

    #[test]
    fn only_the_thumb_mode_warning_is_dropped() {
        let stderr = "warning: unstable feature specified for `-Ctarget-feature`: `thumb-mode`\n  |\n  = \
                      note: this feature is not stably supported; its behavior can change in the future\n\n\
                      warning: unused variable: `x`\n --> src/lib.rs:1:5\n\nerror: could not compile\n";
        assert_eq!(
            without_thumb_mode_warning(stderr),
            "warning: unused variable: `x`\n --> src/lib.rs:1:5\n\nerror: could not compile\n"
        );
        assert_eq!(without_thumb_mode_warning("error: x\n"), "error: x\n");
    }
}
