//! `cargo bench`: this crate's hypercall shapes (inline, fixed max-arity, per-arity and per-hypercall
//! out-of-line, the typed API) against the peers' (Linux and Unikraft stubs with C callers, the `xen-sys`
//! shape), on A32, T32 and A64: code size read from the ELF and executed guest instructions counted under
//! QEMU (`xtask::insns`); on x86-64 as a PV and an HVM/PVH guest, inline trap against the hypercall page
//! (per-arity and per-hypercall stubs, Linux's and Mini-OS's macros), counted the same way
//! (`xtask::bench_x86`); the typed API against the raw stub, with a control that fails the bench; the
//! cost of a hypercall on real Xen (`benches/xen-cost`, A64 and A32 dom0s; `benches/xen-cost-x86`, PV and
//! PVH dom0s, inline and through the page); the example guest, inline vs
//! out-of-line, as `cargo xtask audit` reads it.
//!
//! Prints markdown tables and writes `target/bench/strategies.json`. The logic is in `xtask`.

use std::process::ExitCode;

use xtask::xen::{self, Guest};

fn report() -> anyhow::Result<()> {
    let mut results = xtask::bench_arm::run()?;
    let (counts, errnos) = xtask::insns::measure()?;
    results.add_counts(
        xtask::insns::OPT,
        counts
            .into_iter()
            .map(|c| (c.isa.name(), c.site, c.instructions)),
    );
    for (isa, f, errno) in errnos {
        results.errnos.insert((isa, f), errno);
    }
    // x86-64: PV (`syscall`) and HVM/PVH (`vmmcall`) images, inline against the hypercall page.
    xtask::bench_x86::measure(&mut results)?;
    println!("{}", xtask::bench_arm::markdown(&results));
    println!("{}", xtask::bench_x86::markdown(&results));

    // Real Xen: what one hypercall costs, guest and hypervisor together.
    let costs = xtask::bench_arm::xen_cost()?;
    println!("{}", xtask::bench_arm::xen_cost_markdown(&costs, &results));
    let costs_x86 = xtask::bench_x86::xen_cost()?;
    println!("{}", xtask::bench_x86::xen_cost_markdown(&costs_x86));

    // The example guest: the same numbers `cargo xtask audit` gives for each build.
    let mut guests = Vec::new();
    for g in Guest::all() {
        guests.push((g, xen::build(&g)?));
    }
    println!(
        "### The example guest (`guests/`, opt-level s)\n\n```\n{}```",
        xen::size_table(&guests)?
    );

    let dir = xtask::util::target_dir().join("bench");
    let path = dir.join("strategies.json");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        &path,
        xtask::bench::json(
            &results,
            &xtask::bench_arm::xen_cost_json(&costs),
            &xtask::bench_x86::xen_cost_json(&costs_x86),
        ),
    )?;
    println!("\nJSON: {}", path.display());
    // Last, so that every table is printed even when a control fails.
    let page_path = xtask::bench_x86::check_page_path(&results);
    xtask::bench::check_typed(&results)?;
    page_path
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; a filter argument is not meaningful for a fixed table.
    match report() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
