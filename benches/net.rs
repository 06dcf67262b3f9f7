//! `cargo bench --bench net`: the network frontend (`xen::netfront`, the `xl-net` domU) against Linux's
//! `xen-netfront` in a Linux domU of the same kernel, both on netback in one boot of the real toolstack
//! under QEMU: round trips per second and MiB/s for 64-byte and 1500-byte frames, notifications and
//! hypercalls per round trip. Prints a markdown table; the logic is in `xtask::xl::netbench`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match xtask::xl::netbench::run() {
        Ok(table) => {
            println!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("net bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
