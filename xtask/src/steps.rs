//! The composite steps on real Xen, above the scenarios they run: `cargo xtask xen` (the example guests,
//! the multi-domain runs, the two-vCPU runs on ARM), `cargo xtask demo` (the same, shown, with one `xl`
//! run from a Linux dom0, then the x86-64 guests and the code-size tables) and `cargo xtask xl` (the real
//! toolstack's scenarios, ARM's then x86-64's). Each scenario module runs and reports its own runs; this
//! module only puts them in order.

use anyhow::{Result, bail};

use crate::{domains, setup, smp, tool, util, x86, xen, xl, xl_x86};

/// `cargo xtask xl [SCENARIO…]`: the real toolstack's scenarios named (every one when none is), the ARM
/// ones ([`xl::test`]) then the x86-64 ones ([`xl_x86::test`]); fails unless all pass.
pub fn xl(names: &[String]) -> Result<()> {
    let all = xl::Scenario::all()
        .into_iter()
        .chain(xl_x86::scenarios())
        .collect();
    let chosen = xen::select_named(all, names, |s| s.name, "scenario")?;
    let (x86, arm): (Vec<xl::Scenario>, Vec<xl::Scenario>) =
        chosen.into_iter().partition(xl_x86::is_x86);
    let arm_names: Vec<String> = arm.iter().map(|s| s.name.to_string()).collect();
    let arm_result = if arm.is_empty() {
        Ok(())
    } else {
        xl::test(&arm_names)
    };
    let x86_result = if x86.is_empty() {
        Ok(())
    } else {
        xl_x86::test(&x86)
    };
    arm_result.and(x86_result)
}

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
    // A Linux dom0 and Xen's toolstack: one xl run.
    let xl_good = xl::demo()?;
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
    if !xl_good {
        bail!("the xl run failed");
    }
    println!();
    x86::demo()?;
    println!();
    print!("{}", tool::x86_code_size()?);
    Ok(())
}
