//! The strategy benchmark behind `cargo bench`: this crate's hypercall shapes against the peers', compiled
//! from the same caller code (`benches/sites/`) for A32, T32 and A64.
//!
//! - This crate: per-arity inline stubs, the fixed maximum-arity inline shape, per-arity out-of-line stubs,
//!   per-hypercall out-of-line stubs, and the typed API.
//! - Peers: Linux's and Unikraft's per-hypercall stubs with C callers (clang -Os), and the rust-vmm
//!   `xen-sys` crate's inline shape (AArch64).
//!
//! Code size comes from the ELF; executed instructions from the EL2 bench image under QEMU with `-icount`
//! ([`crate::insns`]); both are deterministic. [`check_typed`] fails the bench when a typed call is not
//! inlined or costs more than the raw stub plus [`TYPED_SLACK`] instructions. The cost of a hypercall on
//! real Xen is measured by `benches/xen-cost` ([`xen_cost`]). The x86-64 rows are [`crate::bench_x86`]'s.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::audit::{demangle, setup_bytes, xen_arity};
use crate::elf::{self, Function, Isa, Op, Reg};
use crate::{flow, setup, util};

/// The strategies measured on the per-arity sites and the work loop: key (the `site_<key>_N` and
/// `work_<key>` names) and title.
pub const STRATEGIES: [(&str, &str); 7] = [
    ("inline", "inline (ours)"),
    ("maxarity", "fixed max-arity inline"),
    ("xensys", "xen-sys shape (inline, x0–x4 bound)"),
    ("outline", "per-arity out-of-line (ours)"),
    ("percall", "per-hypercall out-of-line (ours)"),
    ("linux", "Linux hypercall.S + C (clang -Os)"),
    ("unikraft", "Unikraft hypercalls*.S + C (clang -Os)"),
];
/// Work-loop only: the typed API.
pub const TYPED_WORK: (&str, &str) = ("typed", "typed API (ours)");
/// The shapes modelled, as the report states them.
pub const SHAPES: &str = "### The shapes compared\n\n\
- inline (ours): `xen_hypercall::hypercallN`, only the registers of the call's arity bound and clobbered.\n\
- fixed max-arity inline: every argument register bound (unused ones zeroed) and clobbered.\n\
- xen-sys shape (A64 only, as the rust-vmm crate): inline `asm!` binding `x16` and `x0`–`x4` on every \
call, all of `x0`–`x4` `inlateout` (clobbered) whatever the arity, unused ones zero, memory clobbered.\n\
- per-arity out-of-line (ours): `outline::hypercallN(nr, …)`, the number passed in the first register.\n\
- per-hypercall out-of-line (ours): `outline::per_call::hypercallN::<NR>(…)`, the number built in.\n\
- Linux: stubs written to `arch/arm64/xen/hypercall.S` (`mov x16, #nr; hvc #0xEA1; ret`) and \
`arch/arm/xen/hypercall.S` (`mov r12, #nr; hvc #0xEA1; bx lr`; HYPERCALL5 `stmdb sp!, {r4}; \
ldr r4, [sp, #4]` … `ldm sp!, {r4}`; Thumb-2 in a Thumb-2 kernel), C callers with Linux's prototypes, \
clang -Os.\n\
- Unikraft: stubs written to `plat/xen/arm/hypercalls64.S` (as Linux's) and `hypercalls32.S` (as Linux's, \
returning with `mov pc, lr`; A32 only, no Thumb-2 build), the same C callers, clang -Os.\n\
- typed API (ours, work loop): the same nine calls through `xen_hypercall::xen`.\n";

/// The arities measured (Xen reads at most five arguments).
pub const ARITIES: std::ops::RangeInclusive<usize> = 0..=5;
/// Opt-levels the sizes are measured at.
pub const OPT_LEVELS: [&str; 2] = ["s", "3"];
/// The arities of the work loop's nine hypercalls (console_io, xen_version, event_channel_op ×2,
/// grant_table_op, hvm_op, vcpu_op, event_channel_op, sched_op).
pub const WORK_ARITIES: [usize; 9] = [3, 2, 2, 2, 3, 2, 3, 2, 2];
/// The typed wrappers compared with the raw stub (`benches/sites/src/typed.rs`), with the call made.
pub const TYPED: [(&str, &str); 8] = [
    ("console", "console::write(b\"hello\\n\")"),
    ("sched", "sched::yield_now()"),
    ("evtchn", "evtchn::send(port)"),
    ("version", "version::version()"),
    ("grant_table", "grant_table::query_size(DomId::SELF)"),
    ("hvm", "hvm::get_param(DomId::SELF, Param::STORE_PFN)"),
    ("vcpu", "vcpu::register_vcpu_info(0, gfn, 0)"),
    ("memory", "memory::current_reservation(DomId::SELF)"),
];
/// How many more instructions than the raw stub a typed call may execute on its success path.
pub const TYPED_SLACK: u64 = 3;
/// [`TYPED_SLACK`] on x86-64, one more: x86 has no zero register and no three-operand select, so a result
/// tested against 0 costs `xor r, r` before its `cmov` (`version::version().map_or(0, …)`) or a `mov`
/// at the join of the cold path (`console::write(…).is_ok()`), where ARM uses `csel …, xzr` / `cset`.
pub const TYPED_SLACK_X86: u64 = 4;

/// The values the typed work loop (`work_typed`) checks: the results of console_io, xen_version,
/// alloc_unbound, send, grant_table_op and its status, hvm_op, vcpu_op and close.
pub const WORK_CHECKED: u64 = 9;
/// How many more instructions than its raw equivalent (`raw_work`: the same hypercalls, structures and
/// values, nothing checked) the typed work loop may execute per checked value.
pub const WORK_SLACK_PER_CHECK: u64 = 2;

/// How many more instructions than `raw_work` the typed work loop of an instruction set may execute. The
/// goal is [`WORK_SLACK_PER_CHECK`] per checked value everywhere, met on A64. On A32, T32 and x86-64 the
/// loop is not there yet (the checks' selects, T32's `it` blocks, `query_size`'s result and status kept
/// apart until the loop's end, and spills): their bound is the figure reached so far, so that a
/// regression still fails the bench, until the goal is met there too.
pub fn work_slack(isa: &str) -> u64 {
    match isa {
        "a32" => 22,
        "t32" => 24,
        "x86-pv" => 23,
        "x86-hvm" => 28,
        _ => WORK_CHECKED * WORK_SLACK_PER_CHECK,
    }
}

/// The most instructions the typed work loop of `isa` may execute: `raw_work`'s plus [`work_slack`].
pub fn work_bound(isa: &str, raw: u64) -> u64 {
    raw + work_slack(isa)
}

/// The typed-API slack of an instruction set (a row key of [`Results`]).
pub fn typed_slack(isa: &str) -> u64 {
    if isa.starts_with("x86") {
        TYPED_SLACK_X86
    } else {
        TYPED_SLACK
    }
}

/// The physical limit of a call of arity `n`: the number register, `n` argument registers, the trap.
pub fn limit(n: usize) -> u64 {
    n as u64 + 2
}

/// The physical limit of the work loop.
pub fn work_limit() -> u64 {
    WORK_ARITIES.iter().map(|&n| limit(n)).sum()
}

/// Sizes of one measured function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Size {
    /// Bytes of the whole function.
    pub function: u64,
    /// Bytes of its call sites: register set-up plus the `hvc` or the call of a stub.
    pub call_site: u64,
    /// Bytes of its stack frame.
    pub frame: u64,
    /// The out-of-line stubs it calls (name → bytes), each once.
    pub stubs: BTreeMap<String, u64>,
    /// Whether an `hvc` is in the function itself.
    pub inline_hvc: bool,
}

impl Size {
    /// Bytes of the stubs it calls.
    pub fn stub_bytes(&self) -> u64 {
        self.stubs.values().sum()
    }

    /// The function plus its stubs.
    pub fn text(&self) -> u64 {
        self.function + self.stub_bytes()
    }
}

/// Sizes for one instruction set and opt-level: function name → sizes.
pub type IsaSizes = BTreeMap<String, Size>;

/// The smallest number of call sites of one arity from which `strategy` (out-of-line: its sites call a
/// stub, counted once) is smaller than inline code; `None` when its call site is not smaller.
pub fn crossover(s: &IsaSizes, strategy: &str, arity: usize) -> Option<u64> {
    let i = s.get(&format!("site_inline_{arity}"))?.function;
    let o = s.get(&format!("site_{strategy}_{arity}"))?;
    (o.function < i).then(|| o.stub_bytes() / (i - o.function) + 1)
}

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

/// Everything the benchmark measured.
#[derive(Default)]
pub struct Results {
    /// `(isa, opt-level)` → sizes.
    pub sizes: BTreeMap<(&'static str, &'static str), IsaSizes>,
    /// `(isa, function)` → executed guest instructions per call.
    pub icount: BTreeMap<(&'static str, String), u64>,
    /// The opt-level of the executed-instruction figures.
    pub icount_opt: String,
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

impl Results {
    /// Adds executed-instruction counts measured at opt-level `opt`: `(isa, function, instructions)`.
    pub fn add_counts(&mut self, opt: &str, counts: impl IntoIterator<Item = (Isa, String, u64)>) {
        self.icount_opt = opt.to_string();
        for (isa, site, n) in counts {
            self.icount.insert((isa.name(), site), n);
        }
    }

    fn insns(&self, isa: &str, function: &str) -> Option<u64> {
        self.icount.get(&(isa, function.to_string())).copied()
    }
}

const ISAS: [&str; 3] = ["a64", "a32", "t32"];

/// The rows of the typed-API table and control: ARM's, then x86-64's (the names `bench_x86` measures
/// under; this table names them, it does not depend on that module).
pub const TYPED_ISAS: [&str; 5] = ["a64", "a32", "t32", "x86-pv", "x86-hvm"];

fn typed_isas() -> impl Iterator<Item = &'static str> {
    TYPED_ISAS.into_iter()
}

fn ratio(n: u64, limit: u64) -> String {
    format!("{:.2}×", n as f64 / limit as f64)
}

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
         (9 number registers, 21 argument registers, 9 traps). The typed API's loop writes a fixed 6-byte \
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
        for (key, title) in STRATEGIES.iter().chain([&TYPED_WORK]) {
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

/// One row of the typed-vs-raw comparison.
struct TypedRow {
    wrapper: &'static str,
    call: &'static str,
    typed: Size,
    raw: Size,
    typed_insns: Option<u64>,
    raw_insns: Option<u64>,
}

fn typed_rows(r: &Results, isa: &'static str) -> Vec<TypedRow> {
    let Some(s) = r.sizes.get(&(isa, "s")) else {
        return Vec::new();
    };
    TYPED
        .iter()
        .map(|&(wrapper, call)| TypedRow {
            wrapper,
            call,
            typed: s
                .get(&format!("typed_{wrapper}"))
                .cloned()
                .unwrap_or_default(),
            raw: s
                .get(&format!("raw_{wrapper}"))
                .cloned()
                .unwrap_or_default(),
            typed_insns: r.insns(isa, &format!("typed_{wrapper}")),
            raw_insns: r.insns(isa, &format!("raw_{wrapper}")),
        })
        .collect()
}

/// What is wrong with a typed row, if anything.
fn typed_problem(isa: &str, row: &TypedRow) -> Option<String> {
    let slack = typed_slack(isa);
    if !row.typed.inline_hvc {
        return Some(format!(
            "not inlined (no hvc in typed_{}; calls {})",
            row.wrapper,
            if row.typed.stubs.is_empty() {
                "no stub".to_string()
            } else {
                row.typed
                    .stubs
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    match (row.typed_insns, row.raw_insns) {
        (Some(t), Some(w)) if t > w + slack => Some(format!(
            "{t} instructions on the success path, raw {w} + {slack} allowed"
        )),
        (Some(_), Some(_)) => None,
        _ => Some("not measured".into()),
    }
}

/// What is wrong with the typed work loop of an instruction set, if anything.
fn work_problem(r: &Results, isa: &str) -> Option<String> {
    match (r.insns(isa, "work_typed"), r.insns(isa, "raw_work")) {
        (Some(t), Some(w)) if t > work_bound(isa, w) => Some(format!(
            "the typed work loop executes {t} instructions, raw_work {w} + {} = {} allowed (the goal: \
             {WORK_CHECKED} checked values × {WORK_SLACK_PER_CHECK})",
            work_slack(isa),
            work_bound(isa, w)
        )),
        (Some(_), Some(_)) => None,
        _ => Some("the typed work loop or raw_work not measured".into()),
    }
}

fn typed_table(r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### Typed API vs raw stub (opt-level s, no LTO)\n\n\
         One representative call per wrapper, written as a user would, next to the same hypercall with the \
         raw inline stub and the same argument structure. Per side: function bytes / call-site bytes / \
         executed instructions on the success path. The bench fails unless the typed call's `hvc` is in the \
         calling function and it executes at most raw + {TYPED_SLACK} instructions (x86-64: \
         {TYPED_SLACK_X86}, see `TYPED_SLACK_X86`). The work loop: `work_typed` against `raw_work`, the \
         same nine hypercalls with the same structures and nothing checked; the goal is at most raw + \
         {WORK_SLACK_PER_CHECK} instructions per checked value ({WORK_CHECKED}), met on A64; A32, T32 and \
         x86-64 are held to the figures reached so far (`work_slack`), which the bench enforces.\n"
    );
    let _ = writeln!(o, "| isa | call | typed | raw | verdict |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    for isa in typed_isas() {
        for row in typed_rows(r, isa) {
            let cell = |z: &Size, i: Option<u64>| {
                format!(
                    "{} / {} / {}",
                    z.function,
                    z.call_site,
                    i.map_or("–".into(), |i| i.to_string())
                )
            };
            let _ = writeln!(
                o,
                "| {isa} | `{}` | {} | {} | {} |",
                row.call,
                cell(&row.typed, row.typed_insns),
                cell(&row.raw, row.raw_insns),
                typed_problem(isa, &row).map_or("ok".into(), |p| format!("**FAIL**: {p}"))
            );
        }
        if r.sizes.contains_key(&(isa, "s")) {
            let s = &r.sizes[&(isa, "s")];
            let cell = |f: &str| {
                let z = s.get(f).cloned().unwrap_or_default();
                format!(
                    "{} / {} / {}",
                    z.function,
                    z.call_site,
                    r.insns(isa, f).map_or("–".into(), |i| i.to_string())
                )
            };
            let _ = writeln!(
                o,
                "| {isa} | work loop (`work_typed` / `raw_work`) | {} | {} | {} |",
                cell("work_typed"),
                cell("raw_work"),
                work_problem(r, isa).map_or("ok".into(), |p| format!("**FAIL**: {p}"))
            );
        }
    }
    o
}

/// The typed-API control: fails when a typed call is not inlined into its caller or its success path
/// executes more than the raw stub's plus [`TYPED_SLACK`] instructions, or when the typed work loop
/// executes more than [`work_bound`] of its raw equivalent's, on any instruction set.
pub fn check_typed(r: &Results) -> Result<()> {
    let mut bad = Vec::new();
    for isa in typed_isas() {
        let rows = typed_rows(r, isa);
        if rows.is_empty() {
            bad.push(format!("{isa}: not measured"));
            continue;
        }
        for row in rows {
            if let Some(p) = typed_problem(isa, &row) {
                bad.push(format!("{isa} {}: {p}", row.call));
            }
        }
        if let Some(p) = work_problem(r, isa) {
            bad.push(format!("{isa}: {p}"));
        }
    }
    if !bad.is_empty() {
        bail!(
            "the typed API is not as cheap as the raw stub:\n  {}",
            bad.join("\n  ")
        );
    }
    Ok(())
}

/// The results as JSON, with the real-Xen figures: ARM's `costs`, and x86-64's JSON array
/// `xen_cost_x86` (from `bench_x86::xen_cost_json`).
pub fn json(r: &Results, costs: &[XenCost], xen_cost_x86: &str) -> String {
    let mut o = String::from("{\"sizes\":[");
    let mut first = true;
    for ((isa, opt), s) in &r.sizes {
        for (f, z) in s {
            if !first {
                o.push(',');
            }
            first = false;
            let _ = write!(
                o,
                "{{\"isa\":\"{isa}\",\"opt\":\"{opt}\",\"function\":\"{f}\",\"bytes\":{},\"call_site\":{},\
                 \"frame\":{},\"stubs\":{},\"inline_hvc\":{}}}",
                z.function,
                z.call_site,
                z.frame,
                z.stub_bytes(),
                z.inline_hvc
            );
        }
    }
    let _ = write!(o, "],\"icount_opt\":\"{}\",\"icount\":[", r.icount_opt);
    for (i, ((isa, site), c)) in r.icount.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "{{\"isa\":\"{isa}\",\"function\":\"{site}\",\"instructions\":{c}}}"
        );
    }
    o.push_str("],\"xen_cost\":[");
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
    let _ = write!(o, "],\"xen_cost_x86\":{xen_cost_x86}}}");
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

/// The `xen-cost <name> <n> <ticks>` lines of a xen-cost guest's console (ARM and x86-64 alike), by name.
pub(crate) struct CostLines<'a> {
    m: BTreeMap<&'a str, (u64, u64)>,
    /// The guest, as the errors name it.
    who: &'static str,
}

impl<'a> CostLines<'a> {
    /// Reads every line; fails on a malformed one, or unless the guest printed `xen-cost done`.
    pub(crate) fn parse(who: &'static str, console: &'a str) -> Result<CostLines<'a>> {
        let mut m: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut done = false;
        for line in console.lines() {
            let Some(rest) = line.trim().strip_prefix("xen-cost ") else {
                continue;
            };
            if rest == "done" {
                done = true;
                continue;
            }
            let f: Vec<&str> = rest.split_whitespace().collect();
            let [name, n, v] = f[..] else {
                bail!("unexpected line {line:?}");
            };
            m.insert(name, (n.parse()?, v.parse()?));
        }
        if !done {
            bail!("{who} did not finish:\n{console}");
        }
        Ok(CostLines { m, who })
    }

    /// The `(n, ticks)` of line `k`; fails when the guest did not print it.
    pub(crate) fn get(&self, k: &str) -> Result<(u64, u64)> {
        self.m
            .get(k)
            .copied()
            .with_context(|| format!("{} printed no {k:?}", self.who))
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
    let mut cmd = crate::xen::dom0_command(xen, image);
    cmd.args(["-icount", "shift=0"]);
    let boot = crate::xen::run_qemu(&mut cmd, std::time::Duration::from_secs(60), |_| false)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn size(function: u64, stub: u64) -> Size {
        let mut z = Size {
            function,
            ..Size::default()
        };
        if stub > 0 {
            z.stubs.insert("stub".into(), stub);
        }
        z
    }

    #[test]
    fn crossover_counts_the_stub_once() {
        let mut s = IsaSizes::new();
        s.insert("site_inline_2".into(), size(40, 0));
        s.insert("site_outline_2".into(), size(30, 20));
        // 10 bytes saved per site, 20-byte stub: 3 sites are the first where out-of-line is smaller
        // (3·30 + 20 = 110 < 120), 2 sites tie at best (2·30 + 20 = 80 = 80).
        assert_eq!(crossover(&s, "outline", 2), Some(3));
        s.insert("site_outline_2".into(), size(44, 20));
        assert_eq!(crossover(&s, "outline", 2), None);
        assert_eq!(crossover(&s, "linux", 2), None);
    }

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
    fn limits() {
        assert_eq!(limit(0), 2);
        assert_eq!(limit(5), 7);
        assert_eq!(work_limit(), 39);
    }

    fn typed_results(typed_hvc: bool, typed: u64, raw: u64) -> Results {
        let mut r = Results::default();
        for isa in typed_isas() {
            r.icount.insert((isa, "work_typed".into()), 100 + 18);
            r.icount.insert((isa, "raw_work".into()), 100);
            let mut s = IsaSizes::new();
            for (w, _) in TYPED {
                s.insert(
                    format!("typed_{w}"),
                    Size {
                        inline_hvc: typed_hvc,
                        ..size(40, 0)
                    },
                );
                s.insert(
                    format!("raw_{w}"),
                    Size {
                        inline_hvc: true,
                        ..size(30, 0)
                    },
                );
                r.icount.insert((isa, format!("typed_{w}")), typed);
                r.icount.insert((isa, format!("raw_{w}")), raw);
            }
            r.sizes.insert((isa, "s"), s);
        }
        r
    }

    #[test]
    fn the_typed_control_passes_within_the_slack() {
        check_typed(&typed_results(true, 15, 12)).unwrap();
    }

    #[test]
    fn the_typed_control_catches_a_slow_work_loop() {
        let mut r = typed_results(true, 15, 12);
        assert_eq!(work_bound("a64", 100), 118);
        // One instruction over raw_work + 2 per checked value on A64, the goal met there.
        r.icount.insert(("a64", "work_typed".into()), 119);
        let e = check_typed(&r).unwrap_err().to_string();
        assert!(
            e.contains("a64: the typed work loop executes 119 instructions, raw_work 100 + 18 = 118 allowed"),
            "{e}"
        );
        assert!(!e.contains("t32") && !e.contains("x86"), "{e}");
        r.icount.insert(("a64", "work_typed".into()), 118);
        // One over the ceiling reached on T32.
        r.icount.insert(("t32", "work_typed".into()), 125);
        let e = check_typed(&r).unwrap_err().to_string();
        assert!(
            e.contains("t32: the typed work loop executes 125 instructions, raw_work 100 + 24 = 124 allowed"),
            "{e}"
        );
        // Not measured is a failure, not a pass.
        r.icount.insert(("t32", "work_typed".into()), 124);
        check_typed(&r).unwrap();
        r.icount.remove(&("x86-pv", "raw_work".to_string()));
        let e = check_typed(&r).unwrap_err().to_string();
        assert!(
            e.contains("x86-pv: the typed work loop or raw_work not measured"),
            "{e}"
        );
    }

    #[test]
    fn the_typed_control_catches_a_slow_or_outlined_call() {
        // Negative controls: one instruction over the slack; a typed call whose hvc is elsewhere.
        let e = check_typed(&typed_results(true, 16, 12))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("16 instructions on the success path, raw 12 + 3"),
            "{e}"
        );
        // x86-64 allows one more (`TYPED_SLACK_X86`), and no more than that.
        assert!(!e.contains("x86"), "{e}");
        let e = check_typed(&typed_results(true, 17, 12))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x86-pv") && e.contains("17 instructions on the success path, raw 12 + 4"),
            "{e}"
        );
        let e = check_typed(&typed_results(false, 12, 12))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not inlined"), "{e}");
        let e = check_typed(&Results::default()).unwrap_err().to_string();
        assert!(e.contains("not measured"), "{e}");
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
