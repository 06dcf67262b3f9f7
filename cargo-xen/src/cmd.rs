//! Running external commands (apt-get, make, dtc, QEMU) with the command line in every error.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};

static LOG: OnceLock<PathBuf> = OnceLock::new();

/// Whether [`run`] echoes its command line (on unless [`set_echo`] turned it off).
static ECHO: AtomicBool = AtomicBool::new(true);

/// Turns the echo of [`run`]'s command lines on or off (a tool whose console shows results, not steps).
pub fn set_echo(on: bool) {
    ECHO.store(on, Ordering::Relaxed);
}

/// Sends the output of the set-up commands ([`run_logged`]: apt-get, make) to `path` from now on (the first
/// call wins). Without it they go to `cargo-xen-setup.log` in the system's temporary directory.
pub fn log_to(path: PathBuf) {
    let _ = LOG.set(path);
}

/// Where [`run_logged`] writes.
pub fn log_path() -> &'static Path {
    LOG.get_or_init(|| std::env::temp_dir().join("cargo-xen-setup.log"))
}

/// Runs a set-up command (apt-get, make) with its output appended to the set-up log ([`log_path`]) and one
/// line on stderr when it is done: `what` and the time it took. On failure the error holds the command line
/// and the log's last lines.
pub fn run_logged(what: &str, cmd: &mut Command) -> Result<()> {
    let start = Instant::now();
    run_quiet(cmd)?;
    eprintln!("  {what} ({:.1} s)", start.elapsed().as_secs_f64());
    Ok(())
}

/// [`run_logged`] without the line on stderr: a command whose success is not worth a line (a build of a
/// tool whose console shows results).
pub fn run_quiet(cmd: &mut Command) -> Result<()> {
    let path = log_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the set-up log {}", path.display()))?;
    let start_len = log.seek(SeekFrom::End(0))?;
    use std::io::Write;
    writeln!(log, "$ {}", show(cmd))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .status()
        .with_context(|| format!("cannot start {}", show(cmd)))?;
    if !status.success() {
        bail!(
            "`{}` failed ({status}); the end of its output ({}):\n{}",
            show(cmd),
            path.display(),
            tail(path, start_len, 30)
        );
    }
    Ok(())
}

/// The last `n` lines written to `path` after byte `from`.
fn tail(path: &Path, from: u64, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(from));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `cmd`, echoing it (see [`set_echo`]), and fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    if ECHO.load(Ordering::Relaxed) {
        eprintln!("$ {}", show(cmd));
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {}", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout; fails unless it exits 0 (stderr is kept in the error).
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {}", show(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}):\n{}",
            show(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A command line as text, for messages.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Whether the process runs as root (then missing Debian packages are installed).
pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|s| s.trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_command_writes_the_log_and_a_failure_shows_its_end() {
        let log =
            std::env::temp_dir().join(format!("cargo-xen-cmd-test-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        log_to(log.clone());
        // Another test of this process may have set the log first: use whichever won.
        let log = log_path().to_path_buf();
        run_logged("ok", Command::new("sh").args(["-c", "echo quiet-line"])).unwrap();
        assert!(
            std::fs::read_to_string(&log)
                .unwrap()
                .contains("quiet-line")
        );
        let e = run_logged(
            "fails",
            Command::new("sh").args(["-c", "echo first; echo last-words; exit 3"]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("last-words") && e.contains("exit status: 3"),
            "{e}"
        );
        assert!(!e.contains("quiet-line"), "only this command's output: {e}");
    }
}
