//! The two-vCPU dom0 on real Xen (`guests/src/bin/smp.rs`): Xen detection by the SMCCC hypervisor UID,
//! PSCI, a second vCPU started with `psci::cpu_on`, an IPI event channel from vCPU 1 to vCPU 0, `CPU_OFF`,
//! `CPU_ON` of a vCPU that does not exist, and `psci::system_off`. Booted under QEMU `-smp 2` with Xen's
//! `dom0_max_vcpus=2`, AArch64, A32 and Thumb-2, on release and debug Xen.
//!
//! A run passes when the guest printed every check as `ok`, no `FAIL`, its summary, Xen reported
//! "Hardware Dom0 halted" (the domain ended by `SYSTEM_OFF`, which the guest calls only when every check
//! passed) and Xen's banner names the expected build; a time-out is a failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::el2::Isa;
use crate::scenario::{self, Boot, Layout, Machine, XenBuild};
use crate::xen;
use crate::{par, setup, util, xensrc};

/// How long one boot may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The guest's checks (`ok <check>:`), in its order.
pub const CHECKS: [&str; 17] = [
    "smccc::is_xen",
    "smccc::version",
    "smccc::hypervisor call count, revision",
    "psci::version",
    "psci::features CPU_ON, SYSTEM_RESET2",
    "psci::migrate_info_type",
    "memory::map_shared_info",
    "psci::affinity_info(1) before CPU_ON",
    "psci::cpu_on(1)",
    "psci::cpu_on(7), no such vCPU",
    "vCPU 1 entered Rust on its own stack",
    "psci::affinity_info(1) after CPU_ON",
    "vcpu::register_vcpu_info on vCPU 1",
    "evtchn::bind_ipi on vCPU 1, event received on vCPU 0",
    "vCPU 0 drains after register_vcpu_info, vCPU 1's IPI stays pending",
    "vCPU 1 takes its IPI with its own drain",
    "psci::affinity_info(1) after vCPU 1's CPU_OFF",
];

/// The instruction sets the two-vCPU dom0 is built for.
pub const ISAS: [Isa; 3] = [Isa::A64, Isa::A32, Isa::T32];

fn isa_name(isa: Isa) -> &'static str {
    match isa {
        Isa::A64 => "a64",
        Isa::A32 => "a32",
        Isa::T32 => "t32",
    }
}

/// Builds the two-vCPU dom0 for `isa`; returns the flat image Xen loads.
pub fn build(isa: Isa) -> Result<PathBuf> {
    let dir = util::target_dir().join("guests-smp");
    let (target, flags) = match isa {
        Isa::A64 => ("aarch64-unknown-none", "-Crelocation-model=pie"),
        Isa::A32 => ("armv7a-none-eabi", ""),
        Isa::T32 => ("armv7a-none-eabi", "-Ctarget-feature=+thumb-mode"),
    };
    // The Thumb build gets a directory of its own: the same target with other flags.
    let dir = if isa == Isa::T32 {
        dir.join("t32")
    } else {
        dir
    };
    util::cross_build(&dir, "xen-hypercall-guests", target, "s", flags, &[])?;
    let elf = dir.join(target).join("release/smp");
    let data = std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
    let image = dir.join(format!("smp-{}.bin", isa_name(isa)));
    std::fs::write(&image, xen::flat_image(&data)?)?;
    Ok(image)
}

/// The machine: two CPUs, and Xen gives dom0 two vCPUs; the run is over when Xen reports dom0's end.
pub fn machine(image: &Path) -> Machine<'static> {
    Machine {
        layout: Layout::Dom0(image.to_path_buf()),
        xen_args: "dom0_max_vcpus=2",
        cpus: 2,
        timeout: TIMEOUT,
        done: &|o: &str| o.contains("Hardware Dom0 halted") || o.contains("Hardware Dom0 crashed"),
        qemu_args: &[],
    }
}

/// Judges one run's console; returns the problems (none: passed) and the number of `ok` checks.
pub fn judge(output: &str, timed_out: bool, xen: XenBuild) -> (usize, Vec<String>) {
    let lines: Vec<&str> = output.lines().collect();
    let mut problems = Vec::new();
    let missing = scenario::missing_checks(&lines, CHECKS);
    if !missing.is_empty() {
        problems.push(format!("no `ok` line for {}", missing.join(", ")));
    }
    for l in lines.iter().filter(|l| l.starts_with("FAIL")) {
        problems.push(l.to_string());
    }
    if !lines.iter().any(|l| l.starts_with("summary: all ")) {
        problems.push("no `summary: all …` line".into());
    }
    // Both vCPUs' stacks Normal Write-Back Inner Shareable: vCPU 1 turned its MMU on too.
    problems.extend(par::problems(
        &lines,
        &[
            ("STACK", par::Expect::Shared, None),
            ("VCPU1_STACK", par::Expect::Shared, None),
        ],
    ));
    if !output.contains("Hardware Dom0 halted") {
        problems.push("Xen did not report dom0 halted (SYSTEM_OFF)".into());
    }
    if !scenario::banner(output).is_some_and(|b| b.contains(xen.banner_flag())) {
        problems.push(format!("Xen's banner does not say {}", xen.banner_flag()));
    }
    if timed_out {
        problems.push(format!("timed out after {} s", TIMEOUT.as_secs()));
    }
    (CHECKS.len() - missing.len(), problems)
}

/// One run.
pub struct Run {
    /// The guest's instruction set.
    pub isa: Isa,
    /// The Xen build.
    pub xen: XenBuild,
    /// What QEMU printed.
    pub boot: Boot,
    /// Checks reported `ok`.
    pub passed: usize,
    /// Why it failed (empty: passed).
    pub problems: Vec<String>,
}

/// Builds the guest for every instruction set and boots it on release and debug Xen.
pub fn run_all() -> Result<Vec<Run>> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU])?;
    let release = xen::fetch_xen()?;
    let debug = xensrc::debug_xen()?;
    let mut runs = Vec::new();
    for isa in ISAS {
        let image = build(isa)?;
        for (build, path) in [(XenBuild::Release, &release), (XenBuild::Debug, &debug)] {
            let boot = machine(&image).boot(path)?;
            let (passed, problems) = judge(&boot.output, boot.timed_out, build);
            runs.push(Run {
                isa,
                xen: build,
                boot,
                passed,
                problems,
            });
        }
    }
    Ok(runs)
}

/// Prints one line per run (and what went wrong); returns how many failed.
pub fn report(runs: &[Run]) -> usize {
    let mut failed = 0;
    for r in runs {
        let ok = r.problems.is_empty();
        println!(
            "{:<5} xen {:<7} smp-{}: {}/{} checks, {} ({:.1} s)",
            if ok { "ok" } else { "FAIL" },
            r.xen.name(),
            isa_name(r.isa),
            r.passed,
            CHECKS.len(),
            if ok {
                "dom0 halted by psci::system_off"
            } else {
                "failed"
            },
            r.boot.elapsed.as_secs_f64()
        );
        if !ok {
            failed += 1;
            for p in &r.problems {
                println!("      {p}");
            }
            println!("      last output:\n{}", scenario::tail(&r.boot.output, 15));
        }
    }
    failed
}

/// `cargo xtask smp`: the two-vCPU runs alone.
pub fn test() -> Result<()> {
    let runs = run_all()?;
    let failed = report(&runs);
    println!(
        "two-vCPU runs: {} passed, {failed} failed",
        runs.len() - failed
    );
    if failed > 0 {
        anyhow::bail!("{failed} two-vCPU run(s) on Xen failed");
    }
    Ok(())
}

/// What the demo shows: the AArch64 run's guest lines on release Xen, then one line per run. Returns how
/// many runs failed.
pub fn demo(runs: &[Run]) -> usize {
    println!(
        "A dom0 with two vCPUs (guests/src/bin/smp.rs): Xen detection, PSCI, vCPU 1 started with cpu_on:\n"
    );
    if let Some(r) = runs
        .iter()
        .find(|r| r.isa == Isa::A64 && r.xen == XenBuild::Release)
    {
        println!("== AArch64 dom0, 2 vCPUs (release Xen) ==");
        for l in xen::guest_lines(&r.boot.output) {
            println!("[guest] {l}");
        }
        if let Some(l) = r
            .boot
            .output
            .lines()
            .find(|l| l.contains("Hardware Dom0 halted"))
        {
            println!("[xen]   {}", l.trim_start_matches("(XEN) ").trim());
        }
        println!();
    }
    report(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_has_two_cpus_and_xen_gives_dom0_two_vcpus() {
        let cmd = machine(Path::new("smp.bin"))
            .command(Path::new("xen"))
            .unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let after = |opt: &str| {
            let i = args.iter().position(|a| a == opt).unwrap();
            args[i + 1].as_str()
        };
        assert!(std::path::Path::new(cmd.get_program()).ends_with("qemu-system-aarch64"));
        assert_eq!(after("-smp"), "2");
        assert_eq!(after("-machine"), "virt,virtualization=on,gic-version=3");
        assert_eq!(
            after("-append"),
            "dom0_mem=64M console=dtuart dtuart=/pl011@9000000 loglvl=all guest_loglvl=all noreboot \
             dom0_max_vcpus=2"
        );
        assert_eq!(
            after("-device"),
            "guest-loader,addr=0x49000000,kernel=smp.bin,bootargs=console=hvc0"
        );
    }

    fn output(checks: &[&str], tail: &str) -> String {
        let mut s = String::from("(XEN) Xen version 4.17.7 (Debian) debug=n\n");
        for c in checks {
            s += &format!("ok {c}: fine\n");
        }
        s + tail
    }

    #[test]
    fn a_full_run_passes_and_each_missing_piece_fails() {
        let good = output(
            &CHECKS,
            "PAR_STACK = 0xff00000078015b80\nPAR_VCPU1_STACK = 0xff0000007801bb80\n\
             summary: all 17/17 checks passed\n(XEN) Hardware Dom0 halted: halting machine\n",
        );
        assert_eq!(judge(&good, false, XenBuild::Release), (17, vec![]));
        // Wrong build, time-out, a FAIL line, no halt, a missing check: each is caught.
        assert_eq!(judge(&good, false, XenBuild::Debug).1.len(), 1);
        assert_eq!(judge(&good, true, XenBuild::Release).1.len(), 1);
        let failed = good.replace(
            "ok psci::cpu_on(7), no such vCPU: fine",
            "FAIL psci::cpu_on(7), no such vCPU: 0",
        );
        let (passed, problems) = judge(&failed, false, XenBuild::Release);
        assert_eq!(passed, 16);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let crashed = good.replace("Hardware Dom0 halted", "Hardware Dom0 crashed");
        assert_eq!(judge(&crashed, false, XenBuild::Release).1.len(), 1);
        // A check, the summary, the halt and both MMU lines missing.
        assert_eq!(
            judge(&output(&CHECKS[1..], ""), false, XenBuild::Release)
                .1
                .len(),
            5
        );
        // vCPU 1 with its MMU off: a translation fault.
        let off = good.replace(
            "PAR_VCPU1_STACK = 0xff0000007801bb80",
            "PAR_VCPU1_STACK = 0x809",
        );
        let problems = judge(&off, false, XenBuild::Release).1;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("PAR_VCPU1_STACK: translation fault"));
    }
}
