//! The ARM leaf of the strategy benchmark: this crate's hypercall shapes against the peers', compiled from
//! the same caller code (`benches/sites/`) for A32, T32 and A64, measured into [`crate::bench`]'s results.
//!
//! - This crate: per-arity inline stubs, the fixed maximum-arity inline shape, per-arity out-of-line stubs,
//!   per-hypercall out-of-line stubs, and the typed API.
//! - Peers: Linux's and Unikraft's per-hypercall stubs with C callers (clang -Os), and the rust-vmm
//!   `xen-sys` crate's inline shape (AArch64).
//!
//! Code size comes from the ELF; executed instructions from the EL2 bench image under QEMU with `-icount`
//! ([`crate::insns`]); both are deterministic. The cost of a hypercall on real Xen is measured by
//! `benches/xen-cost` ([`xen_cost`]).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::audit::{demangle, setup_bytes, xen_arity};
use crate::bench::{
    ARITIES, CHECKED_WORK, CostLines, IsaSizes, OPT_LEVELS, Results, SHAPES, STRATEGIES, Size,
    TYPED_WORK, crossover, limit, ratio, typed_table, work_limit,
};
use crate::elf::{self, Function, Isa, Op, Reg};
use crate::scenario::{Layout, Machine};
use crate::{flow, setup, util};

/// The arity of an out-of-line stub, from its (demangled) name: this crate's per-arity
/// (`outline::hypercallN`) and per-hypercall (`per_call::hypercallN::<NR>`) stubs, and the peers'
/// `<peer>_HYPERVISOR_<name>`.
pub fn stub_arity(name: &str) -> Option<usize> {
    if let Some((_, rest)) = name.split_once("HYPERVISOR_") {
        return Some(match rest {
            "console_io" | "grant_table_op" | "vcpu_op" => 3,
            "xen_version" | "event_channel_op" | "hvm_op" | "sched_op" => 2,
            r => r.strip_prefix("arch_")?.parse().ok()?,
        });
    }
    let rest = name
        .strip_prefix("xen_hypercall::outline::per_call::hypercall")
        .or_else(|| name.strip_prefix("xen_hypercall::outline::hypercall"))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&n| n <= 6)
}

/// The arity an inline `hvc` of `function` binds, by the function's shape and the call number.
fn hvc_arity(function: &str, number: Option<u64>) -> usize {
    if function.contains("maxarity") {
        return 6;
    }
    if function.contains("xensys") {
        return 5;
    }
    match number {
        Some(n @ 0x30..=0x36) => (n - 0x30) as usize,
        n => n.and_then(xen_arity).unwrap_or(5),
    }
}

/// Measures one function: size, frame, call sites (inline `hvc`s and calls of stubs) and stubs called.
pub fn measure_function(f: &Function, funcs: &[Function]) -> Size {
    let name = demangle(&f.name);
    let t = flow::trace(f, 0);
    let mut size = Size {
        function: f.size,
        frame: t.min_sp.unsigned_abs(),
        ..Size::default()
    };
    let (mut prev, mut ti) = (0usize, 0usize);
    for (i, insn) in f.insns.iter().enumerate() {
        match insn.op {
            Op::Hvc(_) => {
                let number = match t.traps.get(ti).map(|s| s.reg(f.isa.number_reg())) {
                    Some(flow::Val::Const(n)) => Some(n),
                    _ => None,
                };
                ti += 1;
                let arity = hvc_arity(&name, number);
                let inputs: Vec<Reg> = std::iter::once(f.isa.number_reg())
                    .chain(0..arity as Reg)
                    .collect();
                size.call_site += setup_bytes(f, prev, i, &inputs) + u64::from(insn.len);
                size.inline_hvc = true;
                prev = i + 1;
            }
            Op::Call(target) => {
                // A relocatable object's call is named by its relocation (every section starts at 0);
                // a linked image's by its target.
                let callee = f
                    .relocs
                    .iter()
                    .find(|(at, _)| *at == insn.addr)
                    .map(|(_, n)| {
                        let bytes = funcs.iter().find(|g| &g.name == n).map_or(0, |g| g.size);
                        (n.clone(), bytes)
                    })
                    .or_else(|| {
                        target
                            .and_then(|a| crate::insns::callee_at(funcs, a))
                            .map(|g| (g.name.clone(), g.size))
                    });
                // Keyed by the symbol: the demangled names of a generic stub's instances are equal.
                let Some((symbol, bytes)) = callee else {
                    continue;
                };
                let callee = demangle(&symbol);
                let Some(arity) = stub_arity(&callee) else {
                    continue;
                };
                // This crate's per-arity stubs take the number in the first register.
                let args = if callee.starts_with("xen_hypercall::outline::hypercall") {
                    arity + 1
                } else {
                    arity
                };
                let c_regs: usize = if f.isa == Isa::A64 { 8 } else { 4 };
                let inputs: Vec<Reg> = (0..args.min(c_regs) as Reg).collect();
                size.call_site += setup_bytes(f, prev, i, &inputs) + u64::from(insn.len);
                size.stubs.insert(symbol, bytes);
                prev = i + 1;
            }
            _ => {}
        }
    }
    size
}

/// Whether a function is one the bench measures.
fn measured(name: &str) -> bool {
    ["site_", "work_", "typed_", "raw_"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// A build configuration: instruction set, target, extra flags.
fn configs() -> [(Isa, &'static str, &'static str); 3] {
    [
        (Isa::A32, "armv7a-none-eabi", ""),
        (Isa::T32, "armv7a-none-eabi", "-Ctarget-feature=+thumb-mode"),
        (Isa::A64, "aarch64-unknown-none", ""),
    ]
}

/// Builds the bench sites (and with them the library and the peers' C code) for one configuration;
/// returns the two rlibs.
pub fn build(target: &str, flags: &str, opt: &str, isa: Isa) -> Result<(PathBuf, PathBuf)> {
    let dir = util::target_dir()
        .join("bench")
        .join(format!("{}-O{opt}", isa.name()));
    util::cross_build(&dir, "xen-hypercall-bench-sites", target, opt, flags, &[])?;
    let deps = dir.join(target).join("release/deps");
    let find = |prefix: &str| -> Result<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&deps)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".rlib"))
            })
            .collect();
        v.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        v.pop()
            .with_context(|| format!("no {prefix}*.rlib in {}", deps.display()))
    };
    Ok((
        find("libxen_hypercall_bench_sites-")?,
        find("libxen_hypercall-")?,
    ))
}

/// The peers' functions a configuration must contain (the C code is built by clang in `build.rs`).
fn expected_peers(isa: Isa) -> Vec<String> {
    let mut peers = vec!["linux"];
    if isa != Isa::T32 {
        peers.push("unikraft");
    }
    peers
        .iter()
        .flat_map(|p| {
            ARITIES
                .map(move |n| format!("site_{p}_{n}"))
                .chain([format!("work_{p}")])
        })
        .collect()
}

/// Measures the sizes for one configuration.
pub fn sizes(isa: Isa, target: &str, flags: &str, opt: &str) -> Result<IsaSizes> {
    let (sites, lib) = build(target, flags, opt, isa)?;
    let mut funcs = elf::read_functions(&std::fs::read(&sites)?)?;
    funcs.extend(elf::read_functions(&std::fs::read(&lib)?)?);
    let mut out = IsaSizes::new();
    for f in funcs.iter().filter(|f| measured(&f.name)) {
        out.insert(f.name.clone(), measure_function(f, &funcs));
    }
    let missing: Vec<String> = expected_peers(isa)
        .into_iter()
        .filter(|n| !out.contains_key(n))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} {}: the peers' C code is missing ({}): is clang installed?",
            isa.name(),
            sites.display(),
            missing.join(", ")
        );
    }
    Ok(out)
}

/// Measures the code sizes for every configuration.
pub fn run() -> Result<Results> {
    setup::toolchain()?;
    setup::debian(&[setup::CLANG])?;
    let mut r = Results::default();
    for (isa, target, flags) in configs() {
        for opt in OPT_LEVELS {
            r.sizes
                .insert((isa.name(), opt), sizes(isa, target, flags, opt)?);
        }
    }
    Ok(r)
}

const ISAS: [&str; 3] = ["a64", "a32", "t32"];

/// The markdown report.
pub fn markdown(r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{SHAPES}");
    let _ = writeln!(
        o,
        "### One hypercall of arity N with eight values live across it (opt-level s)\n\n\
         Per cell: function bytes / call-site bytes (register set-up + trap or call) / stack frame bytes / \
         executed guest instructions per call (opt-level {}), and their ratio to the physical limit \
         (N + 2: the number register, N argument registers, the trap). Out-of-line figures exclude the \
         stub (see the crossover table). Empty: the shape does not exist on that instruction set.\n",
        r.icount_opt
    );
    for isa in ISAS {
        let Some(s) = r.sizes.get(&(isa, "s")) else {
            continue;
        };
        let _ = writeln!(o, "**{isa}**\n");
        let _ = writeln!(
            o,
            "| strategy | {} |",
            ARITIES
                .map(|n| format!("arity {n}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(o, "|---|{}", "---|".repeat(ARITIES.count()));
        for (key, title) in STRATEGIES {
            if !ARITIES
                .clone()
                .any(|n| s.contains_key(&format!("site_{key}_{n}")))
            {
                if key == "percall" {
                    let _ = writeln!(
                        o,
                        "| {title} | TODO: the per-hypercall stubs (`outline::per_call`) had not landed when \
                         this bench was written |{}",
                        " |".repeat(ARITIES.count() - 1)
                    );
                }
                continue;
            }
            let cells: Vec<String> = ARITIES
                .map(|n| {
                    let f = format!("site_{key}_{n}");
                    let z = s.get(&f).cloned().unwrap_or_default();
                    let i = r
                        .insns(isa, &f)
                        .map_or("–".into(), |c| format!("{c} ({})", ratio(c, limit(n))));
                    format!("{} / {} / {} / {i}", z.function, z.call_site, z.frame)
                })
                .collect();
            let _ = writeln!(o, "| {title} | {} |", cells.join(" | "));
        }
        let _ = writeln!(o);
    }

    let _ = writeln!(
        o,
        "### Work loop: nine hypercalls of the example guest, results feeding later calls\n\n\
         `.text` = the function plus the stubs it calls (each once). Physical limit: {} instructions \
         (9 number registers, 21 argument registers, 9 traps). The typed API's loops write a fixed 6-byte \
         console message (the others pass a length and pointer).\n",
        work_limit()
    );
    let _ = writeln!(
        o,
        "| isa | strategy | function B | call sites B | frame B | stubs B | .text s | .text 3 | insns | ratio |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for isa in ISAS {
        let (Some(s), s3) = (r.sizes.get(&(isa, "s")), r.sizes.get(&(isa, "3"))) else {
            continue;
        };
        for (key, title) in STRATEGIES.iter().chain([&CHECKED_WORK, &TYPED_WORK]) {
            let f = format!("work_{key}");
            let Some(z) = s.get(&f) else {
                continue;
            };
            let t3 = s3
                .and_then(|s3| s3.get(&f))
                .map_or("–".into(), |z| z.text().to_string());
            let (i, q) = r.insns(isa, &f).map_or(("–".into(), "–".into()), |c| {
                (c.to_string(), ratio(c, work_limit()))
            });
            let _ = writeln!(
                o,
                "| {isa} | {title} | {} | {} | {} | {} | {} | {t3} | {i} | {q} |",
                z.function,
                z.call_site,
                z.frame,
                z.stub_bytes(),
                z.text()
            );
        }
    }

    let _ = writeln!(
        o,
        "\n### Out-of-line: stubs and the crossover (opt-level s)\n\n\
         Per cell: stub bytes / inline site − out-of-line site (bytes) / the number of call sites of that \
         arity from which out-of-line code is smaller than inline code (stub counted once), \"never\" \
         where an out-of-line call site is not smaller.\n"
    );
    let outline: Vec<(&str, &str)> = STRATEGIES
        .iter()
        .copied()
        .filter(|(k, _)| ["outline", "percall", "linux", "unikraft"].contains(k))
        .collect();
    let _ = writeln!(
        o,
        "| isa | arity | {} |",
        outline
            .iter()
            .map(|(_, t)| *t)
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(o, "|---|---|{}", "---|".repeat(outline.len()));
    for isa in ISAS {
        let Some(s) = r.sizes.get(&(isa, "s")) else {
            continue;
        };
        for n in ARITIES {
            let i = s.get(&format!("site_inline_{n}")).map_or(0, |z| z.function) as i64;
            let cells: Vec<String> = outline
                .iter()
                .map(|(k, _)| match s.get(&format!("site_{k}_{n}")) {
                    None => "–".into(),
                    Some(z) => format!(
                        "{} / {} / {}",
                        z.stub_bytes(),
                        i - z.function as i64,
                        crossover(s, k, n).map_or("never".into(), |c| format!("{c} sites"))
                    ),
                })
                .collect();
            let _ = writeln!(o, "| {isa} | {n} | {} |", cells.join(" | "));
        }
    }
    let _ = writeln!(o, "\n{}", typed_table(r));
    o
}

/// Instructions per tick of the generic timer under QEMU with `-icount shift=0`: 1 ns per instruction,
/// a 62.5 MHz counter.
pub const INSNS_PER_TICK: u64 = 16;

/// The cost of hypercalls on real Xen, for one dom0 instruction set (`benches/xen-cost`).
#[derive(Clone, Debug, PartialEq)]
pub struct XenCost {
    /// Instruction set of the dom0.
    pub isa: Isa,
    /// Ticks of 1,024 `xen_version` calls, and of the same loop without the call.
    pub calls: (u64, u64),
    /// Iterations of the loops above.
    pub calls_n: u64,
    /// Ticks of the eight-separate-calls and the multicall-of-eight loops.
    pub separate8: u64,
    /// See `separate8`.
    pub multicall8: u64,
    /// Iterations of those two loops.
    pub reps: u64,
}

impl XenCost {
    /// Instructions (guest and Xen) per `xen_version` call, the loop's own cost taken off.
    pub fn per_call(&self) -> f64 {
        (self.calls.0.saturating_sub(self.calls.1) * INSNS_PER_TICK) as f64 / self.calls_n as f64
    }

    /// Instructions per eight separate calls.
    pub fn per_separate8(&self) -> f64 {
        (self.separate8 * INSNS_PER_TICK) as f64 / self.reps as f64
    }

    /// Instructions per multicall of eight.
    pub fn per_multicall8(&self) -> f64 {
        (self.multicall8 * INSNS_PER_TICK) as f64 / self.reps as f64
    }
}

/// Parses the guest's console: `xen-cost <name> <n> <ticks>` lines and `xen-cost done`; fails unless the
/// guest finished and its calls returned Xen's version.
pub fn parse_xen_cost(isa: Isa, console: &str) -> Result<XenCost> {
    let lines = CostLines::parse("the xen-cost guest", console)?;
    if lines.get("version-ok")?.1 != 1 {
        bail!(
            "xen_version did not return Xen's version, or the multicall's results differ:\n{console}"
        );
    }
    let (calls_n, calls) = lines.get("calls")?;
    let (_, empty) = lines.get("empty")?;
    let (reps, separate8) = lines.get("separate8")?;
    let (_, multicall8) = lines.get("multicall8")?;
    if calls_n == 0 || reps == 0 || calls <= empty || separate8 == 0 || multicall8 == 0 {
        bail!("implausible xen-cost figures:\n{console}");
    }
    Ok(XenCost {
        isa,
        calls: (calls, empty),
        calls_n,
        separate8,
        multicall8,
        reps,
    })
}

/// Boots `image` as dom0 on `xen` under QEMU with `-icount shift=0`; returns the console, or fails on a
/// time-out.
fn boot_icount(xen: &std::path::Path, image: &std::path::Path) -> Result<String> {
    let boot = Machine {
        layout: Layout::Dom0(image.to_path_buf()),
        xen_args: "",
        cpus: 1,
        timeout: std::time::Duration::from_secs(60),
        done: &|_| false,
        qemu_args: &["-icount", "shift=0"],
    }
    .boot(xen)?;
    if boot.timed_out {
        bail!("{} timed out on Xen:\n{}", image.display(), boot.output);
    }
    Ok(boot.output)
}

/// Builds `benches/xen-cost` for A64 and A32, boots each as dom0 on Xen under QEMU with `-icount`, and
/// returns the figures.
pub fn xen_cost() -> Result<Vec<XenCost>> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU])?;
    let xen = crate::xen::fetch_xen()?;
    let dir = util::target_dir().join("xen-cost");
    let mut out = Vec::new();
    for (isa, target, flags) in [
        (Isa::A64, "aarch64-unknown-none", "-Crelocation-model=pie"),
        (Isa::A32, "armv7a-none-eabi", ""),
    ] {
        util::cross_build(
            &dir,
            "xen-hypercall-bench-xen-cost",
            target,
            "s",
            flags,
            &[],
        )?;
        let elf = std::fs::read(dir.join(target).join("release/xen-cost"))?;
        let image = dir.join(format!("xen-cost-{}.bin", isa.name()));
        std::fs::write(&image, crate::xen::flat_image(&elf)?)?;
        let console = boot_icount(&xen, &image)?;
        out.push(parse_xen_cost(isa, &console).with_context(|| format!("{} dom0", isa.name()))?);
    }
    Ok(out)
}

/// The real-Xen table, with what the inline stub saves per call (the work loops' difference per call)
/// as a share of a call's total.
pub fn xen_cost_markdown(costs: &[XenCost], r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### The cost of a hypercall on real Xen (Xen 4.17 arm64 under QEMU, `-icount shift=0`)\n\n\
         Instructions executed by guest and Xen together, from the generic timer (one tick = \
         {INSNS_PER_TICK} instructions; ±1 tick per measurement, ±{:.2} instructions per call of the \
         1,024-call loop). `xen_version(XENVER_version)` with the raw inline stub; the loop's own cost \
         is taken off. \"Saved inline\": the work loop's instructions per call out-of-line (per-arity \
         stubs) minus inline, as a share of one call's total.\n",
        INSNS_PER_TICK as f64 / 1024.0
    );
    let _ = writeln!(
        o,
        "| dom0 | insns per call | 8 separate calls | multicall of 8 | multicall / separate | saved inline |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for c in costs {
        let isa = c.isa.name();
        let saved = match (r.insns(isa, "work_outline"), r.insns(isa, "work_inline")) {
            (Some(ol), Some(il)) if ol >= il => {
                let per = (ol - il) as f64 / 9.0;
                format!("{per:.1} insns = {:.1} %", 100.0 * per / c.per_call())
            }
            _ => "–".into(),
        };
        let _ = writeln!(
            o,
            "| {isa} | {:.0} | {:.0} | {:.0} | {:.2}× | {saved} |",
            c.per_call(),
            c.per_separate8(),
            c.per_multicall8(),
            c.per_multicall8() / c.per_separate8()
        );
    }
    o
}

/// The real-Xen figures as a JSON array, for [`crate::bench::json`].
pub fn xen_cost_json(costs: &[XenCost]) -> String {
    let mut o = String::new();
    o.push('[');
    for (i, c) in costs.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "{{\"isa\":\"{}\",\"insns_per_call\":{:.1},\"separate8\":{:.1},\"multicall8\":{:.1}}}",
            c.isa.name(),
            c.per_call(),
            c.per_separate8(),
            c.per_multicall8()
        );
    }
    o.push(']');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_arities_from_names() {
        assert_eq!(stub_arity("xen_hypercall::outline::hypercall3"), Some(3));
        assert_eq!(
            stub_arity("xen_hypercall::outline::per_call::hypercall5::<18>"),
            Some(5)
        );
        assert_eq!(stub_arity("linux_HYPERVISOR_console_io"), Some(3));
        assert_eq!(stub_arity("unikraft_HYPERVISOR_arch_4"), Some(4));
        assert_eq!(stub_arity("linux_HYPERVISOR_sched_op"), Some(2));
        assert_eq!(stub_arity("xen_hypercall::xen::evtchn::send"), None);
        assert_eq!(stub_arity("linux_HYPERVISOR_unknown"), None);
    }

    #[test]
    fn measures_call_sites_of_hvc_and_stubs() {
        // A64: mov x16, #17; mov x0, #0; mov x1, #0; hvc; bl stub; ret — and the stub.
        let words = [
            0xD280_0230u32, // mov x16, #17
            0xD280_0000,    // mov x0, #0
            0xD280_0001,    // mov x1, #0
            0xD401_D422,    // hvc #0xea1
            0x9400_0002,    // bl +8 (the stub at 0x118)
            0xD65F_03C0,    // ret
        ];
        let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let f = Function {
            name: "site_inline_2".into(),
            isa: Isa::A64,
            addr: 0x100,
            size: code.len() as u64,
            insns: elf::decode(Isa::A64, &code, 0x100),
            origin: String::new(),
            relocs: Vec::new(),
        };
        let stub_code: Vec<u8> = [0xD280_0230u32, 0xD401_D422, 0xD65F_03C0]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let stub = Function {
            name: "linux_HYPERVISOR_xen_version".into(),
            isa: Isa::A64,
            addr: 0x118,
            size: 12,
            insns: elf::decode(Isa::A64, &stub_code, 0x118),
            origin: String::new(),
            relocs: Vec::new(),
        };
        let z = measure_function(&f, &[f.clone(), stub]);
        assert!(z.inline_hvc);
        // hvc site: 3 movs + hvc = 16; stub call: its two argument registers were written before the
        // previous site, so only the bl = 4.
        assert_eq!(z.call_site, 20);
        assert_eq!(z.stub_bytes(), 12);
        assert_eq!(z.function, 24);
    }

    #[test]
    fn xen_cost_is_parsed_and_a_failed_run_is_an_error() {
        let out = "xen-cost version-ok 1 1\nxen-cost calls 1024 27200\nxen-cost empty 1024 384\n\
                   xen-cost separate8 128 27112\nxen-cost multicall8 128 48984\nxen-cost done\n";
        let c = parse_xen_cost(Isa::A64, out).unwrap();
        assert_eq!(c.per_call(), (27200.0 - 384.0) * 16.0 / 1024.0);
        assert!((c.per_multicall8() / c.per_separate8() - 48984.0 / 27112.0).abs() < 1e-9);
        assert!(parse_xen_cost(Isa::A64, &out.replace("xen-cost done\n", "")).is_err());
        assert!(
            parse_xen_cost(Isa::A64, &out.replace("version-ok 1 1", "version-ok 1 0")).is_err()
        );
        assert!(parse_xen_cost(Isa::A64, &out.replace("xen-cost empty 1024 384\n", "")).is_err());
    }
}
