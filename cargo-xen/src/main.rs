//! `cargo xen …` (cargo runs `cargo-xen xen …`) or `cargo-xen …`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("xen") {
        args.remove(0);
    }
    // apt-get's and make's output goes to a log beside the cache; the console gets one line per stage.
    if let Ok(dir) = cargo_xen::run::cache_dir() {
        cargo_xen::cmd::log_to(dir.join("setup.log"));
    }
    ExitCode::from(cargo_xen::cli::main(&args))
}
