//! `cargo bench --bench blk`: the library's block frontend against Linux's `xen-blkfront` in one boot of
//! the real toolstack (same dom0, blkback and disk size): time, requests, notifications per MiB and grant
//! operations per request for synchronous 4 KiB sequential and random transfers and 1 MiB ones. Prints a
//! markdown table. The logic is in `xtask::blkbench`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: nothing to run then.
    if !std::env::args().any(|a| a == "--bench") {
        return ExitCode::SUCCESS;
    }
    match xtask::blkbench::run() {
        Ok(f) => {
            println!("{}", xtask::blkbench::markdown(&f));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("blk bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
