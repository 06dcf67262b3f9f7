//! The real-Xen runner: fetches Debian's Xen 4.17 for arm64 (the release build) and builds a debug Xen from
//! Debian's source ([`xensrc`]), builds the example dom0 (`guests/`) for AArch64, A32 and Thumb-2 with the
//! inline and the out-of-line stubs, boots each on both hypervisors under QEMU, and judges what it printed.
//!
//! A run passes only if every expected `ok <check>` line is there, no `FAIL` line is, the guest's summary says
//! all checks passed, Xen reports dom0 halted, and Xen's banner says `debug=n` or `debug=y` as expected, and
//! the MMU's own translations the guest prints (`PAR_…`, [`par`]) show its RAM and the pages it shares with
//! Xen Normal Write-Back Inner Shareable and its devices Device. The debug build poisons the registers a
//! hypercall may clobber, so the guest's pairs of identical calls (`guests/src/pairs.rs`) fail there if a stub
//! declares too little; the ELF is read to show the compiler really keeps the pairs' arguments in registers
//! across the first call. A negative control guest with a deliberately under-declared stub must pass on
//! release Xen and be caught on debug Xen. A guest that stops talking (for example one whose `hvc` has the
//! wrong tag: Xen injects an undefined-instruction exception, and the guest has no vectors) is killed at a
//! time-out and reported as a failure with the last lines it printed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

pub use cargo_xen::qemu::{Boot, dom0_command, fetch_package, flat_image, run_qemu};
// The runner's vocabulary, where the scenarios have always found it.
pub use crate::scenario::{XenBuild, banner, missing_checks, print_failure, select_named, tail};

use crate::audit;
use crate::elf::Isa;
use crate::elf::{self, Function, Op, Reg};
use crate::{par, setup, util, xensrc};

/// How long one boot may take before it counts as hung.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The checks every guest must report as `ok`.
pub const CHECKS: [&str; 19] = [
    "version",
    "evtchn::alloc_unbound",
    "evtchn::send",
    "evtchn::status",
    "evtchn::close",
    "evtchn::send after close",
    "grant_table::query_size",
    "hvm::get_param(CALLBACK_IRQ)",
    "vcpu::register_vcpu_info",
    "vcpu::register_vcpu_info again",
    "multicall [version, pagesize, unknown]",
    "raw hypercall 63",
    "pair1 sysctl (raw)",
    "pair2 xen_version extraversion (raw)",
    "pair2 version::extraversion (typed)",
    "pair3 grant_table_op query_size (raw)",
    "pair3 grant_table::query_size (typed)",
    "pair4 grant_table_op query_size, 4-argument stub (raw)",
    "pair5 hypfs_op get_version (raw)",
];

/// The negative control's check (guest feature `underdeclared`): `ok` on release Xen, `FAIL` on debug Xen.
pub const CONTROL_CHECK: &str = "pair3 under-declared stub (control)";

/// The pair functions of the guest whose two `hvc`s are checked, with the stub's arity.
pub const PAIR_FUNCTIONS: [(&str, usize); 5] = [
    ("pair1_sysctl", 1),
    ("pair2_xen_version", 2),
    ("pair3_grant_table_op", 3),
    ("pair4_grant_table_op", 4),
    ("pair5_hypfs_op", 5),
];

/// The negative control's pair function and the argument register (by index) it declares preserved.
pub const CONTROL_FUNCTION: (&str, usize) = ("pair3_underdeclared", 2);

/// One guest build.
#[derive(Clone, Copy, Debug)]
pub struct Guest {
    /// The guest's instruction set.
    pub isa: Isa,
    /// Whether the typed API uses the out-of-line stubs.
    pub outline: bool,
    /// The negative control: adds a pair through a deliberately under-declared stub.
    pub underdeclared: bool,
}

impl Guest {
    /// Every guest: three states, inline and out-of-line.
    pub fn all() -> Vec<Guest> {
        let mut v = Vec::new();
        for outline in [false, true] {
            for isa in [Isa::A64, Isa::A32, Isa::T32] {
                v.push(Guest {
                    isa,
                    outline,
                    underdeclared: false,
                });
            }
        }
        v
    }

    /// The negative controls: inline, with the under-declared pair, for AArch64 and A32.
    pub fn controls() -> Vec<Guest> {
        [Isa::A64, Isa::A32]
            .into_iter()
            .map(|isa| Guest {
                isa,
                outline: false,
                underdeclared: true,
            })
            .collect()
    }

    /// A short name, e.g. `t32-outline`, `a64-underdeclared`.
    pub fn name(&self) -> String {
        format!(
            "{}-{}",
            self.isa.name(),
            if self.underdeclared {
                "underdeclared"
            } else if self.outline {
                "outline"
            } else {
                "inline"
            }
        )
    }

    /// A title for people.
    pub fn title(&self) -> String {
        let state = match self.isa {
            Isa::A64 => "AArch64 dom0",
            Isa::A32 => "32-bit dom0, A32",
            Isa::T32 => "32-bit dom0, Thumb-2",
        };
        format!(
            "{state} ({} stubs)",
            if self.outline {
                "out-of-line"
            } else {
                "inline"
            }
        )
    }

    /// The Rust target it is built for.
    pub fn target(&self) -> &'static str {
        match self.isa {
            Isa::A64 => "aarch64-unknown-none",
            _ => "armv7a-none-eabi",
        }
    }

    /// The code-generation flags its state needs.
    pub fn rustflags(&self) -> &'static str {
        // Xen places an AArch64 dom0 wherever dom0's memory is: position-independent, self-relocating.
        match self.isa {
            Isa::A64 => "-Crelocation-model=pie",
            Isa::A32 => "",
            Isa::T32 => "-Ctarget-feature=+thumb-mode",
        }
    }
}

/// Downloads and unpacks Debian's Xen under `target/xen/` unless it is there; returns the hypervisor's path.
pub fn fetch_xen() -> Result<PathBuf> {
    cargo_xen::qemu::fetch_xen(&util::target_dir().join("xen"))
}

/// Builds a guest; returns its ELF file (copied out of cargo's output so builds do not overwrite it).
pub fn build(g: &Guest) -> Result<PathBuf> {
    let dir = util::target_dir().join("guests");
    let mut features = Vec::new();
    if g.outline {
        features.push("outline");
    }
    if g.underdeclared {
        features.push("underdeclared");
    }
    util::cross_build(
        &dir,
        "xen-hypercall-guests",
        g.target(),
        "s",
        g.rustflags(),
        &features,
    )?;
    let built = dir.join(g.target()).join("release/dom0");
    let out = dir.join(format!("dom0-{}.elf", g.name()));
    std::fs::copy(&built, &out).with_context(|| format!("copying {}", built.display()))?;
    Ok(out)
}

/// Boots `image` as dom0 on `xen` under QEMU, as `cargo xen run` does.
pub fn boot(xen: &Path, image: &Path) -> Result<Boot> {
    cargo_xen::run::boot_dom0(xen, image, TIMEOUT, false)
}

/// The judgement of one boot.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Checks reported `ok`.
    pub passed: usize,
    /// Problems found; empty when the run passed.
    pub problems: Vec<String>,
}

/// How the example dom0's MMU must map what it reports as `PAR_<NAME>` (`guests/src/main.rs`): a page
/// shared with Xen (its `vcpu_info`, a static), its stack, and the grant-table region (from dom0's device
/// tree; it must start where Xen's log says it put it: `Grant table range: 0x…-0x…`) Normal Write-Back
/// Inner Shareable, QEMU virt's GIC distributor and PL011 (the host's, 1:1 in dom0) Device.
pub fn par_checks(output: &str) -> Vec<(&'static str, par::Expect, Option<u64>)> {
    let grant_table = output.lines().find_map(|l| {
        let range = l.split("Grant table range: 0x").nth(1)?;
        u64::from_str_radix(range.split('-').next()?, 16).ok()
    });
    vec![
        ("STATIC", par::Expect::Shared, None),
        ("STACK", par::Expect::Shared, None),
        ("GNTTAB", par::Expect::Shared, grant_table),
        ("GIC", par::Expect::Device, Some(0x0800_0000)),
        ("UART", par::Expect::Device, Some(0x0900_0000)),
    ]
}

/// Judges a boot's output.
pub fn judge(output: &str, timed_out: bool) -> Verdict {
    let lines: Vec<&str> = output.lines().collect();
    let mut problems = Vec::new();
    let missing = missing_checks(&lines, CHECKS);
    let passed = CHECKS.len() - missing.len();
    if passed == 0 {
        problems.push("the guest reported no check".to_string());
    } else if !missing.is_empty() {
        problems.push(format!("no `ok` line for {}", missing.join(", ")));
    }
    for l in lines.iter().filter(|l| l.starts_with("FAIL")) {
        problems.push(l.to_string());
    }
    if !lines.iter().any(|l| l.starts_with("summary: all ")) {
        problems.push("no `summary: all …` line".into());
    }
    problems.extend(par::problems(&lines, &par_checks(output)));
    if !output.contains("Hardware Dom0 halted") {
        problems.push("Xen did not report dom0 halted".into());
    }
    if timed_out {
        problems.push(format!(
            "timed out after {} s: the guest hung (an `hvc` Xen does not accept, e.g. a wrong tag, makes Xen \
             inject an undefined-instruction exception, which a guest without vectors cannot survive)",
            TIMEOUT.as_secs()
        ));
    }
    Verdict { passed, problems }
}

/// Judges a boot of guest `g` on the `xen` build: [`judge`], plus Xen's banner must say which build it is.
/// The negative control is judged the other way round on debug Xen: every check passes except the control,
/// which must be caught (a `FAIL` line), and dom0 then reports the failure by crashing.
pub fn judge_boot(g: &Guest, xen: XenBuild, output: &str, timed_out: bool) -> Verdict {
    let lines: Vec<&str> = output.lines().collect();
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    let control_ok = format!("ok {CONTROL_CHECK}:");
    let control_fail = format!("FAIL {CONTROL_CHECK}:");
    let mut v = if g.underdeclared && xen == XenBuild::Debug {
        let mut problems = Vec::new();
        let missing = missing_checks(&lines, CHECKS);
        if !missing.is_empty() {
            problems.push(format!("no `ok` line for {}", missing.join(", ")));
        }
        for l in lines
            .iter()
            .filter(|l| l.starts_with("FAIL") && !l.starts_with(&control_fail))
        {
            problems.push(l.to_string());
        }
        if !has(&control_fail) {
            problems.push(format!(
                "debug Xen did not catch the under-declared stub: no `{control_fail}` line"
            ));
        }
        if !output.contains("Hardware Dom0 crashed") {
            problems.push("dom0 did not report its failed check by crashing".into());
        }
        if timed_out {
            problems.push(format!("timed out after {} s", TIMEOUT.as_secs()));
        }
        Verdict {
            passed: CHECKS.len() - missing.len(),
            problems,
        }
    } else {
        let mut v = judge(output, timed_out);
        if g.underdeclared && !has(&control_ok) {
            v.problems.push(format!(
                "the control pair must pass on release Xen: no `{control_ok}` line"
            ));
        }
        v
    };
    match banner(output) {
        Some(b) if b.contains(xen.banner_flag()) => {}
        Some(b) => v.problems.push(format!(
            "{} Xen expected ({} in the banner), booted: {b}",
            xen.name(),
            xen.banner_flag()
        )),
        None => v.problems.push("no Xen banner".into()),
    }
    v
}

/// The registers an instruction writes; `None` when unknown (a call).
fn written(op: &Op) -> Option<Vec<Reg>> {
    Some(match op {
        Op::Hvc(_) => vec![0],
        Op::MovImm { rd, .. }
        | Op::MovKeep { rd, .. }
        | Op::MovReg { rd, .. }
        | Op::AddImm { rd, .. } => vec![*rd],
        Op::Mem {
            access,
            regs,
            base,
            writeback,
            ..
        } => {
            let mut w = if *access == elf::Access::Load {
                regs.clone()
            } else {
                Vec::new()
            };
            if *writeback {
                w.push(*base);
            }
            w
        }
        Op::Other { writes } => writes.iter().copied().collect(),
        Op::Call(_) | Op::Undecodable => return None,
    })
}

/// The last instruction in `from..to` that writes `r` (`Err` if an instruction there has unknown effects).
fn last_write(f: &Function, r: Reg, from: usize, to: usize) -> Result<Option<usize>, String> {
    let mut last = None;
    for i in from..to {
        match written(&f.insns[i].op) {
            Some(w) if w.contains(&r) => last = Some(i),
            Some(_) => {}
            None => return Err(format!("`{}` between the calls", f.insns[i].mnemonic)),
        }
    }
    Ok(last)
}

/// The two `hvc`s of a pair function.
fn two_hvcs(f: &Function) -> Result<(usize, usize), String> {
    let hvcs: Vec<usize> = f
        .insns
        .iter()
        .enumerate()
        .filter(|(_, i)| matches!(i.op, Op::Hvc(_)))
        .map(|(n, _)| n)
        .collect();
    match hvcs[..] {
        [a, b] => Ok((a, b)),
        _ => Err(format!("{}: {} hvc, expected 2", f.name, hvcs.len())),
    }
}

/// Checks one correct pair: every register the stub declares clobbered that Xen poisons (the number
/// register and arguments 2..=arity) is set again before the second `hvc` by a move from a register that
/// already held the value before the first `hvc` (the compiler reuses a register live across the call
/// rather than re-materialising the value). Returns a description, or the problem.
pub fn check_pair(f: &Function, arity: usize) -> Result<String, String> {
    let (h1, h2) = two_hvcs(f)?;
    let isa = f.isa;
    let mut regs = vec![isa.number_reg()];
    regs.extend((1..arity).map(|r| r as Reg));
    let mut held = Vec::new();
    for r in regs {
        let name = isa.reg_name(r);
        let Some(w) = last_write(f, r, h1 + 1, h2).map_err(|e| format!("{}: {e}", f.name))? else {
            return Err(format!(
                "{}: {name} is not set again before the second hvc although the stub declares it clobbered",
                f.name
            ));
        };
        match f.insns[w].op {
            Op::MovReg { rs, .. }
                if last_write(f, rs, h1, w)
                    .map_err(|e| format!("{}: {e}", f.name))?
                    .is_none() =>
            {
                held.push(format!("{name}<-{}", isa.reg_name(rs)));
            }
            // Short of registers (32-bit ARM at arity 4 and 5) the value is kept in a stack slot
            // stored before the first call: reloaded, not re-materialised.
            Op::Mem {
                access: elf::Access::Load,
                ref regs,
                base,
                offset: Some(off),
                ..
            } if regs.len() == 1 && base == isa.sp() && stored_before(f, base, off, h1, w) => {
                held.push(format!("{name}<-[sp+{off}]"));
            }
            _ => {
                return Err(format!(
                    "{}: {name} is re-materialised between the calls (`{}`), not reused from a register \
                     or a stack slot held across the first hvc",
                    f.name, f.insns[w].mnemonic
                ));
            }
        }
    }
    Ok(held.join(" "))
}

/// Whether the stack slot `[base + off]` is stored before instruction `h1` and not stored again in
/// `h1..to`, with `base` unchanged from the store to `to`.
fn stored_before(f: &Function, base: Reg, off: i64, h1: usize, to: usize) -> bool {
    let store_at = |i: usize| {
        matches!(&f.insns[i].op, Op::Mem { access: elf::Access::Store, base: b, offset: Some(o), .. }
            if *b == base && *o == off)
    };
    let Some(s) = (0..h1).rev().find(|&i| store_at(i)) else {
        return false;
    };
    !(h1..to).any(store_at) && matches!(last_write(f, base, s + 1, to), Ok(None))
}

/// Checks the negative control's pair: the register its stub declares preserved is set before the first
/// `hvc` and not touched before the second: the second call really relies on it.
pub fn check_control_pair(f: &Function, reg: usize) -> Result<String, String> {
    let (h1, h2) = two_hvcs(f)?;
    let r = reg as Reg;
    let name = f.isa.reg_name(r);
    let before = last_write(f, r, 0, h1).map_err(|e| format!("{}: {e}", f.name))?;
    let between = last_write(f, r, h1 + 1, h2).map_err(|e| format!("{}: {e}", f.name))?;
    match (before, between) {
        (Some(_), None) => Ok(format!(
            "{name} set once, before the first hvc, reused by the second"
        )),
        (_, Some(w)) => Err(format!(
            "{}: {name} is set again between the calls (`{}`): the control would not exercise a wrong clobber",
            f.name, f.insns[w].mnemonic
        )),
        (None, None) => Err(format!("{}: {name} is never set", f.name)),
    }
}

/// The disassembly checks of the pairs of an inline guest; returns (summary, problems). Out-of-line guests
/// call the stubs, which the procedure-call standard already makes clobber every argument register.
pub fn check_pairs(g: &Guest, data: &[u8]) -> Result<(String, Vec<String>)> {
    if g.outline {
        return Ok((String::new(), Vec::new()));
    }
    let functions = elf::read_functions(data)?;
    let find = |name: &str| functions.iter().find(|f| f.name == name);
    let mut problems = Vec::new();
    let mut summary = Vec::new();
    for (name, arity) in PAIR_FUNCTIONS {
        match find(name).map(|f| check_pair(f, arity)) {
            None => problems.push(format!("no function {name} in the guest")),
            Some(Ok(s)) => summary.push(format!("{name}: {s}")),
            Some(Err(e)) => problems.push(e),
        }
    }
    if g.underdeclared {
        let (name, reg) = CONTROL_FUNCTION;
        match find(name).map(|f| check_control_pair(f, reg)) {
            None => problems.push(format!("no function {name} in the guest")),
            Some(Ok(s)) => summary.push(format!("{name}: {s}")),
            Some(Err(e)) => problems.push(e),
        }
    }
    Ok((summary.join("; "), problems))
}

/// The lines the guest printed (not Xen's).
pub fn guest_lines(output: &str) -> Vec<&str> {
    let start = output.find("*** Serial input to DOM0").map_or(0, |i| i);
    output[start..]
        .lines()
        .skip(1)
        .filter(|l| {
            !l.starts_with("(XEN)") && !l.trim().is_empty() && !l.starts_with("qemu-system")
        })
        .collect()
}

/// One guest's boot on one Xen build.
pub struct Run {
    guest: Guest,
    xen: XenBuild,
    elf: PathBuf,
    boot: Boot,
    verdict: Verdict,
    /// What the disassembly shows about the pairs (inline guests).
    pairs: String,
}

/// Builds every guest (and the negative control), reads its ELF, and boots it on release and debug Xen.
pub fn run_all() -> Result<Vec<Run>> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU])?;
    let release = fetch_xen()?;
    let debug = xensrc::debug_xen()?;
    let mut runs = Vec::new();
    for guest in Guest::all().into_iter().chain(Guest::controls()) {
        let elf = build(&guest)?;
        let data = std::fs::read(&elf)?;
        let image = elf.with_extension("bin");
        std::fs::write(&image, flat_image(&data)?)?;
        let mut static_problems = check_sites(&guest, &data)?;
        let (pairs, pair_problems) = check_pairs(&guest, &data)?;
        static_problems.extend(pair_problems);
        for (xen, path) in [(XenBuild::Release, &release), (XenBuild::Debug, &debug)] {
            let boot = boot(path, &image)?;
            let mut verdict = judge_boot(&guest, xen, &boot.output, boot.timed_out);
            verdict.problems.extend(static_problems.iter().cloned());
            runs.push(Run {
                guest,
                xen,
                elf: elf.clone(),
                boot,
                verdict,
                pairs: pairs.clone(),
            });
        }
    }
    Ok(runs)
}

/// Reads the guest's ELF: every `hvc` must be Xen's, in the guest's instruction set (for Thumb-2 guests, the
/// 4-byte T32 encoding inside Thumb code), and an out-of-line guest must reach Xen only through the stubs.
pub fn check_sites(g: &Guest, elf: &[u8]) -> Result<Vec<String>> {
    let report = audit::analyze(elf)?;
    let mut problems = Vec::new();
    let mut hvcs = 0;
    for f in &report.functions {
        for site in &f.sites {
            if let audit::SiteKind::Inline { tag } = site.kind {
                hvcs += 1;
                if tag != 0xEA1 || f.isa != g.isa {
                    problems.push(format!(
                        "{}: hvc #{tag:#x} in {} code, expected hvc #0xea1 in {} code",
                        f.name,
                        f.isa.name(),
                        g.isa.name()
                    ));
                }
                // The per-hypercall stubs (`outline::per_call`) are out-of-line stubs too.
                let stub = f.is_stub || f.name.starts_with("xen_hypercall::outline::");
                if g.outline && !stub {
                    problems.push(format!("{}: an inline hvc in an out-of-line guest", f.name));
                }
            }
        }
    }
    if hvcs == 0 {
        problems.push("no hvc found in the guest".into());
    }
    Ok(problems)
}

fn verdict_line(r: &Run) -> String {
    if !r.verdict.problems.is_empty() {
        return format!("FAIL: {}", r.verdict.problems.join("; "));
    }
    if r.guest.underdeclared {
        return match r.xen {
            XenBuild::Release => format!(
                "PASS: the under-declared pair passes on release Xen ({:.1} s)",
                r.boot.elapsed.as_secs_f64()
            ),
            XenBuild::Debug => format!(
                "PASS: debug Xen caught the under-declared pair, {}/{} other checks ok ({:.1} s)",
                r.verdict.passed,
                CHECKS.len(),
                r.boot.elapsed.as_secs_f64()
            ),
        };
    }
    format!(
        "PASS: {}/{} checks, dom0 halted cleanly ({:.1} s)",
        r.verdict.passed,
        CHECKS.len(),
        r.boot.elapsed.as_secs_f64()
    )
}

/// The guest's line for `check`, if it printed one.
fn check_line<'a>(output: &'a str, check: &str) -> Option<&'a str> {
    output.lines().find(|l| {
        l.starts_with(&format!("ok {check}:")) || l.starts_with(&format!("FAIL {check}:"))
    })
}

/// Prints a line per guest run (the negative control's line, a failure's last output), what the
/// disassembly shows of the pairs, and the total; returns how many runs failed.
pub fn report(runs: &[Run]) -> usize {
    let mut failed = 0;
    for r in runs {
        println!(
            "{:<5} xen {:<7} {}: {}",
            if r.verdict.problems.is_empty() {
                "ok"
            } else {
                "FAIL"
            },
            r.xen.name(),
            r.guest.name(),
            verdict_line(r)
        );
        if r.guest.underdeclared
            && let Some(l) = check_line(&r.boot.output, CONTROL_CHECK)
        {
            println!("      guest: {l}");
        }
        if !r.verdict.problems.is_empty() {
            failed += 1;
            println!("      last output:\n{}", tail(&r.boot.output, 15));
        }
    }
    for r in runs
        .iter()
        .filter(|r| r.xen == XenBuild::Release && !r.pairs.is_empty())
    {
        println!("pairs in {} (disassembly): {}", r.guest.name(), r.pairs);
    }
    println!(
        "real Xen: {} passed, {} failed",
        runs.len() - failed,
        failed
    );
    failed
}

/// `cargo xtask demo`'s part: what each guest printed on the release build, a summary of the debug build's
/// runs and the negative control.
pub fn demo(runs: &[Run]) {
    println!(
        "The example unikernel (guests/src/main.rs) runs as dom0 on Xen 4.17 (Debian's arm64 build), under"
    );
    println!(
        "QEMU: greets, asks Xen its version, exercises event channels, the grant table, an HVM parameter,"
    );
    println!(
        "vCPU registration, a multicall batch and a raw hypercall, makes the same call twice for each arity"
    );
    println!("1 to 5, checks every answer, and powers off.\n");
    let main = |r: &&Run| !r.guest.underdeclared;
    for r in runs
        .iter()
        .filter(main)
        .filter(|r| r.xen == XenBuild::Release)
    {
        println!("== {} ==", r.guest.title());
        if let Some(b) = banner(&r.boot.output) {
            println!("[xen]   {b}");
        }
        for l in guest_lines(&r.boot.output) {
            println!("[guest] {l}");
        }
        println!("=> {}\n", verdict_line(r));
    }
    println!(
        "The same guests on a debug Xen built from Debian's source (it writes 0xdeadbeef into every register a"
    );
    println!("hypercall may clobber, so a stub that declares too little fails the pairs):");
    for r in runs
        .iter()
        .filter(main)
        .filter(|r| r.xen == XenBuild::Debug)
    {
        println!("  {:<14} {}", r.guest.name(), verdict_line(r));
    }
    if let Some(b) = runs
        .iter()
        .find(|r| r.xen == XenBuild::Debug)
        .and_then(|r| banner(&r.boot.output))
    {
        println!("  [xen] {b}");
    }
    println!(
        "\nThe negative control: a guest stub that declares the count register of grant_table_op preserved:"
    );
    for r in runs.iter().filter(|r| r.guest.underdeclared) {
        println!(
            "  {:<7} Xen, {:<18} {}",
            r.xen.name(),
            r.guest.name(),
            verdict_line(r)
        );
        if let Some(l) = check_line(&r.boot.output, CONTROL_CHECK) {
            println!("          [guest] {l}");
        }
    }
}

/// The code-size table of the guests that `demo` showed (release Xen, not the control).
pub fn demo_sizes(runs: &[Run]) -> Result<String> {
    size_table(
        &runs
            .iter()
            .filter(|r| !r.guest.underdeclared && r.xen == XenBuild::Release)
            .map(|r| (r.guest, r.elf.clone()))
            .collect::<Vec<_>>(),
    )
}

/// How many guest runs failed.
pub fn failures(runs: &[Run]) -> usize {
    runs.iter()
        .filter(|r| !r.verdict.problems.is_empty())
        .count()
}

/// The code-size table of the guests: inline vs out-of-line stubs, per instruction set, from the audit.
pub fn size_table(guests: &[(Guest, PathBuf)]) -> Result<String> {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Code size of the example guest (cargo xtask audit on each ELF), inline vs out-of-line stubs:\n"
    );
    let _ = writeln!(
        o,
        "{:<8} {:>12} {:>12} {:>8} {:>12} {:>12} {:>12}",
        "guest", "stubs", "code bytes", "sites", "set-up B", "frames B", "stub bytes"
    );
    for (g, elf) in guests {
        let data = std::fs::read(elf)?;
        let r = audit::analyze(&data)?;
        let text: u64 = elf_text_bytes(&data)?;
        let t = r.totals();
        let _ = writeln!(
            o,
            "{:<8} {:>12} {:>12} {:>8} {:>12} {:>12} {:>12}",
            g.isa.name(),
            if g.outline { "out-of-line" } else { "inline" },
            text,
            t.sites,
            t.setup_bytes,
            t.frame,
            r.stub_bytes()
        );
    }
    let _ = writeln!(
        o,
        "\ncode bytes: the executable sections; sites: hypercall sites in the guest (an `hvc`, or a call to an\n\
         out-of-line stub); set-up B: bytes of the register moves for those calls; frames B: stack frames of\n\
         the functions with sites; stub bytes: the out-of-line stubs linked in. `cargo bench` compares the\n\
         strategies call site by call site, with executed instruction counts."
    );
    Ok(o)
}

/// Bytes of the executable sections of an ELF file (the code-size tables' "code bytes").
pub fn elf_text_bytes(data: &[u8]) -> Result<u64> {
    use object::{Object, ObjectSection, SectionFlags};
    let file = object::File::parse(data)?;
    Ok(file
        .sections()
        .filter(|s| match s.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0,
            _ => false,
        })
        .map(|s| s.size())
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_output() -> String {
        let mut s = String::from(
            "(XEN) Xen version 4.17.7 (Debian)\n(XEN) Grant table range: 0x00000040200000-0x00000040240000\n\
             (XEN) *** Serial input to DOM0\nHello\n",
        );
        for c in CHECKS {
            let _ = writeln!(s, "ok {c}: fine");
        }
        s.push_str(
            "PAR_STATIC = 0xff00000078017b80\nPAR_STACK = 0xff00000078015b80\n\
             PAR_GIC = 0x400000008000a00\nPAR_UART = 0x400000009000a00\n\
             PAR_GNTTAB = 0xff00000040200b80\n",
        );
        s.push_str(
            "summary: all 12/12 checks passed\n(XEN) Hardware Dom0 halted: halting machine\n",
        );
        s
    }

    #[test]
    fn the_mmu_attributes_are_judged() {
        assert!(judge(&good_output(), false).problems.is_empty());
        // The stack uncached, the UART Normal, a probe missing, the grant table elsewhere than Xen put it.
        let out = good_output()
            .replace("PAR_STACK = 0xff", "PAR_STACK = 0x44")
            .replace(
                "PAR_UART = 0x400000009000a00",
                "PAR_UART = 0xff00000009000b80",
            )
            .replace("PAR_GIC = 0x400000008000a00\n", "")
            .replace(
                "PAR_GNTTAB = 0xff00000040200b80",
                "PAR_GNTTAB = 0xff00000038000b80",
            );
        let v = judge(&out, false);
        assert_eq!(v.problems.len(), 4, "{:?}", v.problems);
        assert!(v.problems[0].starts_with("PAR_STACK: Normal outer NC / inner NC"));
        assert!(
            v.problems[1]
                .starts_with("PAR_GNTTAB: mapped to 0x38000000, not to itself (0x40200000")
        );
        assert!(v.problems[2].starts_with("PAR_GIC: no `PAR_GIC"));
        assert!(v.problems[3].starts_with("PAR_UART: Normal outer WB"));
    }

    #[test]
    fn a_complete_run_passes() {
        let v = judge(&good_output(), false);
        assert_eq!(
            v,
            Verdict {
                passed: CHECKS.len(),
                problems: vec![]
            }
        );
        assert_eq!(banner(&good_output()), Some("Xen version 4.17.7 (Debian)"));
        assert_eq!(guest_lines(&good_output())[0], "Hello");
    }

    #[test]
    fn a_missing_check_a_fail_line_a_hang_each_fail() {
        let out =
            good_output().replace("ok evtchn::close: fine\n", "FAIL evtchn::close: error 22\n");
        let v = judge(&out, false);
        assert!(
            v.problems
                .iter()
                .any(|p| p == "no `ok` line for evtchn::close")
        );
        assert!(
            v.problems
                .iter()
                .any(|p| p.starts_with("FAIL evtchn::close"))
        );
        let hung = "(XEN) Xen version 4.17.7\nHello from an AArch64 dom0\n";
        let v = judge(hung, true);
        assert!(v.problems.iter().any(|p| p.contains("timed out")));
        assert!(
            v.problems
                .iter()
                .any(|p| p == "the guest reported no check")
        );
        assert!(v.problems.iter().any(|p| p.contains("dom0 halted")));
        assert_eq!(v.passed, 0);
    }

    const A64_INLINE: Guest = Guest {
        isa: Isa::A64,
        outline: false,
        underdeclared: false,
    };
    const A64_CONTROL: Guest = Guest {
        isa: Isa::A64,
        outline: false,
        underdeclared: true,
    };

    fn on(flag: &str, out: &str) -> String {
        out.replace("(Debian)", &format!("(Debian) {flag}"))
    }

    #[test]
    fn the_banner_must_name_the_expected_build() {
        let rel = on("debug=n", &good_output());
        assert!(
            judge_boot(&A64_INLINE, XenBuild::Release, &rel, false)
                .problems
                .is_empty()
        );
        let v = judge_boot(&A64_INLINE, XenBuild::Debug, &rel, false);
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
        assert!(v.problems[0].starts_with("debug Xen expected (debug=y"));
        let dbg = on("debug=y", &good_output());
        assert!(
            judge_boot(&A64_INLINE, XenBuild::Debug, &dbg, false)
                .problems
                .is_empty()
        );
    }

    #[test]
    fn the_control_must_pass_on_release_and_be_caught_on_debug() {
        let ok = format!("ok {CONTROL_CHECK}: first 0, second 0\n");
        let fail = format!("FAIL {CONTROL_CHECK}: first 0, second -22\n");
        let halted = "(XEN) Hardware Dom0 halted: halting machine\n";
        let crashed = "(XEN) Hardware Dom0 crashed: 'noreboot' set - not rebooting.\n";
        // Release: the control's ok line is required on top of a normal run.
        let rel = on("debug=n", &good_output()).replace(halted, &format!("{ok}{halted}"));
        assert!(
            judge_boot(&A64_CONTROL, XenBuild::Release, &rel, false)
                .problems
                .is_empty()
        );
        let v = judge_boot(
            &A64_CONTROL,
            XenBuild::Release,
            &on("debug=n", &good_output()),
            false,
        );
        assert!(
            v.problems[0].contains("must pass on release Xen"),
            "{:?}",
            v.problems
        );
        // Debug: caught, every other check ok, dom0 crashed.
        let caught = on("debug=y", &good_output())
            .replace("summary: all", "summary: FAILED,")
            .replace(halted, &format!("{fail}{crashed}"));
        let v = judge_boot(&A64_CONTROL, XenBuild::Debug, &caught, false);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        assert_eq!(v.passed, CHECKS.len());
        // Not caught: the control passed on debug Xen.
        let missed = on("debug=y", &good_output()).replace(halted, &format!("{ok}{halted}"));
        let v = judge_boot(&A64_CONTROL, XenBuild::Debug, &missed, false);
        assert!(
            v.problems.iter().any(|p| p.contains("did not catch")),
            "{:?}",
            v.problems
        );
        // Another check failing on debug Xen is a failure too.
        let other = caught.replace("ok evtchn::close: fine", "FAIL evtchn::close: error 22");
        let v = judge_boot(&A64_CONTROL, XenBuild::Debug, &other, false);
        assert!(
            v.problems
                .iter()
                .any(|p| p.starts_with("FAIL evtchn::close"))
        );
    }

    fn insn(op: Op) -> crate::elf::Insn {
        crate::elf::Insn {
            addr: 0,
            len: 4,
            raw: 0,
            mnemonic: "x".into(),
            op,
        }
    }

    fn function(ops: Vec<Op>) -> Function {
        Function {
            name: "pair".into(),
            isa: Isa::A64,
            addr: 0,
            size: 4 * ops.len() as u64,
            insns: ops.into_iter().map(insn).collect(),
            origin: String::new(),
            relocs: Vec::new(),
        }
    }

    #[test]
    fn pair_check_wants_registers_reused_across_the_first_call() {
        let mov = |rd, rs| Op::MovReg { rd, rs };
        let imm = |rd, imm| Op::MovImm { rd, imm };
        // x8 (number) and x9 (argument 2) set once; each call copies them into x16 and x1.
        let good = function(vec![
            imm(8, 17),
            imm(9, 1),
            mov(16, 8),
            mov(1, 9),
            Op::Hvc(0xea1),
            mov(16, 8),
            mov(1, 9),
            Op::Hvc(0xea1),
        ]);
        assert_eq!(check_pair(&good, 2), Ok("x16<-x8 x1<-x9".into()));
        // The second call's argument re-materialised from a constant.
        let remat = function(vec![
            imm(8, 17),
            mov(16, 8),
            imm(1, 1),
            Op::Hvc(0xea1),
            mov(16, 8),
            imm(1, 1),
            Op::Hvc(0xea1),
        ]);
        assert!(
            check_pair(&remat, 2)
                .unwrap_err()
                .contains("x1 is re-materialised")
        );
        // The second call relies on x1 preserved: wrong for a correct stub, what the control needs.
        let reused = function(vec![
            imm(8, 17),
            mov(16, 8),
            imm(1, 1),
            Op::Hvc(0xea1),
            mov(16, 8),
            Op::Hvc(0xea1),
        ]);
        assert!(
            check_pair(&reused, 2)
                .unwrap_err()
                .contains("x1 is not set again")
        );
        assert!(check_control_pair(&reused, 1).is_ok());
        assert!(
            check_control_pair(&good, 1)
                .unwrap_err()
                .contains("set again")
        );
        // A call between the two traps makes the registers unknown.
        let call = function(vec![Op::Hvc(0xea1), Op::Call(None), Op::Hvc(0xea1)]);
        assert!(check_pair(&call, 1).is_err());
    }
}
