//! `cargo xen …` (cargo runs `cargo-xen xen …`) or `cargo-xen …`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("xen") {
        args.remove(0);
    }
    ExitCode::from(cargo_xen::cli::main(&args))
}
