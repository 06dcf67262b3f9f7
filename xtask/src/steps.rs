//! The composite steps on real Xen for ARM, above the scenarios they run: `cargo xtask xen` (the example
//! guests, the multi-domain runs, the two-vCPU runs) and `cargo xtask demo` (the same, shown, then the
//! x86-64 guests and the code-size tables). Each scenario module runs and reports its own runs; this module
//! only puts them in order.

use anyhow::{Result, bail};

use crate::{domains, setup, smp, tool, util, x86, xen};

/// `cargo xtask xen`: boots every guest on release and debug Xen, then the multi-domain and two-vCPU
/// scenarios, and fails unless all pass.
pub fn xen() -> Result<()> {
    let runs = xen::run_all()?;
    let failed = xen::report(&runs);
    // Several domains talking: a frontend domU and its backend (dom0less), and their controls.
    let domains = domains::run_all(&domains::Config::all(), true)?;
    let domains_failed = domains::report(&domains);
    println!(
        "multi-domain runs: {} passed, {domains_failed} failed",
        domains.len() - domains_failed
    );
    // A dom0 with two vCPUs: PSCI, Xen detection, a second vCPU.
    let smp = smp::run_all()?;
    let smp_failed = smp::report(&smp);
    println!(
        "two-vCPU runs: {} passed, {smp_failed} failed",
        smp.len() - smp_failed
    );
    if smp_failed > 0 {
        bail!("{smp_failed} two-vCPU run(s) on Xen failed");
    }
    if failed > 0 {
        bail!("{failed} guest run(s) on Xen failed");
    }
    if domains_failed > 0 {
        bail!("{domains_failed} multi-domain run(s) on Xen failed");
    }
    Ok(())
}

/// `cargo xtask demo`: every guest booted on Xen and what it printed, the multi-domain and two-vCPU
/// scenarios, the code-size table; then the x86-64 guests and their table. Builds are quiet (a failed one
/// shows the end of its output): the console shows what the guests did.
pub fn demo() -> Result<()> {
    util::quiet_builds();
    setup::toolchain()?;
    let runs = xen::run_all()?;
    xen::demo(&runs);
    println!();
    domains::demo()?;
    println!();
    let smp = smp::run_all()?;
    let smp_failed = smp::demo(&smp);
    println!();
    println!("{}", xen::demo_sizes(&runs)?);
    let failed = xen::failures(&runs);
    if failed > 0 {
        bail!("{failed} guest run(s) on Xen failed");
    }
    if smp_failed > 0 {
        bail!("{smp_failed} two-vCPU run(s) on Xen failed");
    }
    println!();
    x86::demo()?;
    println!();
    print!("{}", tool::x86_code_size()?);
    Ok(())
}
