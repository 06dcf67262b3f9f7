//! `cargo bench`: inline per-arity stubs vs a fixed maximum-arity inline stub vs out-of-line stubs, on A32,
//! T32 and A64: code size read from the ELF and executed guest instructions counted under QEMU
//! (`xtask::insns`).
//!
//! Prints markdown tables and writes `target/bench/strategies.json`. The logic is `xtask::bench`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; a filter argument is not meaningful for a fixed table.
    let measured = xtask::bench::run().and_then(|mut results| {
        let counts = xtask::insns::measure()?;
        results.add_counts(
            xtask::insns::OPT,
            counts.into_iter().map(|c| (c.isa, c.site, c.instructions)),
        );
        Ok(results)
    });
    match measured {
        Ok(results) => {
            println!("{}", xtask::bench::markdown(&results));
            let dir = xtask::util::target_dir().join("bench");
            let path = dir.join("strategies.json");
            if let Err(e) = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(&path, xtask::bench::json(&results)))
            {
                eprintln!("error: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("JSON: {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
