//! The code-size audit: every hypercall site of a 32-bit ARM or AArch64 ELF file (executable, relocatable
//! object or static archive), of any Xen ARM guest.
//!
//! A site is
//! - an inline `hvc` (A32, T32 or A64; the Xen tag `0xEA1` or any other, which is flagged), outside a stub;
//! - a call to a *generic* stub, which takes the call number as its first argument (Linux's `privcmd_call`
//!   shape, this crate's per-arity `xen_hypercall::outline::hypercallN`);
//! - a call to a *per-hypercall* stub, whose number is built in (`mov x16|r12, #nr; hvc #0xEA1; ret`/`bx lr`:
//!   Linux's and Unikraft's `HYPERVISOR_<name>`, this crate's `outline::per_call`).
//!
//! Stubs are recognised by their code (one `hvc #0xEA1`, no call, a few instructions; the number register
//! holds a constant at the trap, or the first argument), and this crate's per-arity stubs also by name. Each
//! site is attributed to its function; the call number and the first argument (the sub-operation of the
//! multiplexed hypercalls) are recovered when they are constants (symbolic trace of the function,
//! [`crate::flow`]) and named ([`crate::names`]: `event_channel_op/send`). Per function: sites, bytes of the
//! function, bytes spent on register set-up for the calls (the `mov`-class instructions that last write a
//! register the call consumes: the number register and the argument registers of Xen's declared arity for
//! inline sites, the argument registers of the stub for calls), and the bytes of its stack frame. The stubs
//! themselves are listed apart.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::{Result, bail};

use crate::elf::{self, Function, Isa, Op, Reg};
use crate::flow::{self, Val};

/// How a site reaches the hypervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SiteKind {
    /// An `hvc` in the function itself, with its immediate.
    Inline {
        /// The `hvc` immediate (`0xEA1` for Xen).
        tag: u16,
    },
    /// A call to a generic stub of this arity (the number is the first argument).
    Outline {
        /// The stub's arity (hypercall arguments, the number not counted).
        arity: usize,
    },
    /// A call to a per-hypercall stub (the number is built into the stub).
    PerCall,
    /// An x86-64 trap (`syscall`, `vmcall`, `vmmcall`) in the function itself ([`crate::x86`]).
    Trap(crate::x86::Trap),
    /// An x86-64 call or jump into Xen's hypercall page, entry `page + nr * 32` ([`crate::x86`]).
    Page,
}

/// The architecture of a function's code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Arch {
    /// 32-bit ARM or AArch64: [`FnReport::isa`] says which instruction set.
    #[default]
    Arm,
    /// x86-64 ([`crate::x86`]).
    X86_64,
}

/// What kind of stub a function is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StubKind {
    /// The number comes in the first argument register, the hypercall's arguments in the next ones.
    Generic {
        /// Hypercall arguments it passes on.
        arity: usize,
    },
    /// The number is a constant of the stub; the arguments arrive where Xen wants them.
    PerCall {
        /// The call number.
        number: u64,
    },
}

/// One hypercall site.
#[derive(Clone, Debug)]
pub struct Site {
    /// Address of the `hvc` or the call.
    pub addr: u64,
    /// Inline or through a stub.
    pub kind: SiteKind,
    /// The call number, when it is a constant.
    pub number: Option<u64>,
    /// The first argument of the hypercall (the sub-operation of multiplexed ones), when it is a constant.
    pub first_arg: Option<u64>,
    /// Bytes of the instructions that set up the call's registers.
    pub setup_bytes: u64,
    /// The stub called, for calls.
    pub stub: Option<String>,
}

impl Site {
    /// `event_channel_op/send`, `xen_version`, `?`.
    pub fn name(&self) -> String {
        crate::names::describe(self.number, self.first_arg)
    }
}

/// One function with hypercall sites, or a stub.
#[derive(Clone, Debug)]
pub struct FnReport {
    /// Demangled name, without the hash.
    pub name: String,
    /// Instruction set, for ARM code (x86-64 code, see [`FnReport::arch`], reads `Isa::A64`: a 64-bit
    /// placeholder; [`FnReport::isa_name`] names both).
    pub isa: Isa,
    /// ARM or x86-64.
    pub arch: Arch,
    /// Size in bytes.
    pub bytes: u64,
    /// Stack frame in bytes.
    pub frame: u64,
    /// Its sites (a stub's own `hvc` for stubs).
    pub sites: Vec<Site>,
    /// Whether it is a stub (generic or per-hypercall).
    pub is_stub: bool,
    /// Which kind of stub.
    pub stub: Option<StubKind>,
}

/// The audit of one file.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Functions with sites, then the stubs, in address order within each group.
    pub functions: Vec<FnReport>,
}

/// Totals over the functions with sites (the stubs apart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Functions with at least one site.
    pub functions: usize,
    /// Hypercall sites.
    pub sites: usize,
    /// Bytes of those functions.
    pub bytes: u64,
    /// Bytes of register set-up for the calls.
    pub setup_bytes: u64,
    /// Bytes of their stack frames.
    pub frame: u64,
}

impl FnReport {
    /// `a32`, `t32`, `a64`, or `x64`.
    pub fn isa_name(&self) -> &'static str {
        match self.arch {
            Arch::Arm => self.isa.name(),
            Arch::X86_64 => "x64",
        }
    }
}

impl Report {
    /// Totals over the functions with sites.
    pub fn totals(&self) -> Totals {
        self.callers().fold(Totals::default(), |t, f| Totals {
            functions: t.functions + 1,
            sites: t.sites + f.sites.len(),
            bytes: t.bytes + f.bytes,
            setup_bytes: t.setup_bytes + f.sites.iter().map(|s| s.setup_bytes).sum::<u64>(),
            frame: t.frame + f.frame,
        })
    }

    /// Functions that are not stubs.
    pub fn callers(&self) -> impl Iterator<Item = &FnReport> {
        self.functions.iter().filter(|f| !f.is_stub)
    }

    /// Total bytes of the stubs present.
    pub fn stub_bytes(&self) -> u64 {
        self.functions
            .iter()
            .filter(|f| f.is_stub)
            .map(|f| f.bytes)
            .sum()
    }

    /// The largest set-up of one site (callers only), with its function.
    pub fn worst_site(&self) -> Option<(&FnReport, &Site)> {
        self.callers()
            .flat_map(|f| f.sites.iter().map(move |s| (f, s)))
            .max_by_key(|(_, s)| s.setup_bytes)
    }
}

/// The arity Xen's ARM hypercall table declares for a hypercall number (`xen/include/public/xen.h`
/// numbers; arities of Xen's generated ARM table).
pub fn xen_arity(number: u64) -> Option<usize> {
    Some(match number {
        7 | 27 | 35 | 36 => 1,
        12 | 13 | 17 | 21 | 29 | 32 | 33 | 34 => 2,
        18 | 20 | 24 | 41 => 3,
        39 | 42 => 5,
        _ => return None,
    })
}

/// Demangles a Rust symbol name (without the hash); other names are returned as they are.
pub fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// The arity of one of this crate's per-arity out-of-line stubs, from its demangled name.
pub(crate) fn stub_arity(demangled: &str) -> Option<usize> {
    let rest = demangled.strip_prefix("xen_hypercall::outline::hypercall")?;
    let n: usize = rest.parse().ok()?;
    (n <= 6).then_some(n)
}

fn writes(op: &Op) -> Vec<Reg> {
    match op {
        Op::MovImm { rd, .. }
        | Op::MovKeep { rd, .. }
        | Op::MovReg { rd, .. }
        | Op::AddImm { rd, .. } => {
            vec![*rd]
        }
        Op::Mem {
            access: elf::Access::Load,
            regs,
            ..
        } => regs.clone(),
        Op::Other { writes: Some(r) } => vec![*r],
        _ => Vec::new(),
    }
}

fn is_setup(op: &Op) -> bool {
    matches!(
        op,
        Op::MovImm { .. } | Op::MovKeep { .. } | Op::MovReg { .. }
    )
}

/// Bytes of the set-up instructions for `inputs` between `from` and the site at `at` (exclusive): for each
/// input register, the `mov`-class instructions that write it after its last other write. (Public: the
/// bench's call-site sizes are this reading too.)
pub fn setup_bytes(f: &Function, from: usize, at: usize, inputs: &[Reg]) -> u64 {
    let mut bytes = 0;
    for &r in inputs {
        for insn in f.insns[from..at].iter().rev() {
            if writes(&insn.op).contains(&r) {
                if is_setup(&insn.op) {
                    bytes += insn.len as u64;
                    // `movt`/`movk` complete an earlier `mov` of the same register: keep walking.
                    if matches!(insn.op, Op::MovKeep { .. }) {
                        continue;
                    }
                }
                break;
            }
        }
    }
    bytes
}

/// What kind of stub `f` is, from its name (this crate's per-arity stubs) or its code: exactly one
/// `hvc #0xEA1`, no call, at most 12 instructions, and at the trap either a constant in the number register
/// with the first argument register untouched (per-hypercall), or the first argument in the number register
/// (generic; its arity is how many of the following arguments it moves into place).
pub fn classify(f: &Function, demangled: &str) -> Option<StubKind> {
    if let Some(arity) = stub_arity(demangled) {
        return Some(StubKind::Generic { arity });
    }
    let hvcs = f
        .insns
        .iter()
        .filter(|i| matches!(i.op, Op::Hvc(_)))
        .count();
    let calls = f.insns.iter().any(|i| matches!(i.op, Op::Call(_)));
    if hvcs != 1 || calls || f.insns.len() > 12 {
        return None;
    }
    let t = flow::trace(f, 7);
    let trap = t.traps.first()?;
    if trap.imm != 0xEA1 {
        return None;
    }
    match trap.reg(f.isa.number_reg()) {
        Val::Const(number) if trap.reg(0) == Val::Param(1) => Some(StubKind::PerCall { number }),
        Val::Param(1) => {
            let arity = (0..6u8)
                .take_while(|&i| trap.reg(i) == Val::Param(i + 2))
                .count();
            Some(StubKind::Generic { arity })
        }
        _ => None,
    }
}

/// Audits ELF bytes (an executable, a relocatable object or a static archive): ARM, or x86-64
/// ([`crate::x86::analyze`]).
pub fn analyze(data: &[u8]) -> Result<Report> {
    if crate::x86::is_x86_64(data) {
        return crate::x86::analyze(data);
    }
    analyze_with(data, |_, number| number.and_then(xen_arity))
}

fn constant(v: Option<Val>) -> Option<u64> {
    match v {
        Some(Val::Const(n)) => Some(n),
        _ => None,
    }
}

/// [`analyze`], with the arity of each inline site given by `arity_of(function, number)` (`None`: five,
/// the most Xen reads).
pub fn analyze_with(
    data: &[u8],
    arity_of: impl Fn(&str, Option<u64>) -> Option<usize>,
) -> Result<Report> {
    let functions = elf::read_functions(data)?;
    if functions.is_empty() {
        bail!("no function symbols: the file is stripped or has no code");
    }
    let names: Vec<String> = functions.iter().map(|f| demangle(&f.name)).collect();
    let kinds: Vec<Option<StubKind>> = functions
        .iter()
        .zip(&names)
        .map(|(f, n)| classify(f, n))
        .collect();
    // Stubs by address (executables) and by symbol name (relocatable objects, archives).
    let by_addr: HashMap<u64, usize> = functions
        .iter()
        .enumerate()
        .map(|(i, f)| (f.addr, i))
        .collect();
    let by_name: HashMap<&str, usize> = functions
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();
    let mut report = Report::default();
    for (fi, f) in functions.iter().enumerate() {
        let name = names[fi].clone();
        let stub = kinds[fi];
        let t = flow::trace(f, 0);
        let mut sites = Vec::new();
        let mut prev = 0usize;
        let (mut ti, mut ci) = (0usize, 0usize);
        for (i, insn) in f.insns.iter().enumerate() {
            match &insn.op {
                Op::Hvc(tag) => {
                    let state = t.traps.get(ti);
                    ti += 1;
                    let number = constant(state.map(|s| s.reg(f.isa.number_reg())));
                    let first_arg = constant(state.map(|s| s.reg(0)));
                    let arity = arity_of(&name, number).unwrap_or(5).min(6);
                    let inputs: Vec<Reg> = std::iter::once(f.isa.number_reg())
                        .chain(0..arity as Reg)
                        .collect();
                    let setup = setup_bytes(f, prev, i, &inputs);
                    sites.push(Site {
                        addr: insn.addr,
                        kind: SiteKind::Inline { tag: *tag },
                        number: match stub {
                            Some(StubKind::PerCall { number }) => Some(number),
                            _ => number,
                        },
                        first_arg,
                        setup_bytes: setup,
                        stub: None,
                    });
                    prev = i + 1;
                }
                Op::Call(target) => {
                    let state = t.calls.get(ci);
                    ci += 1;
                    // A relocation names the callee in objects (where `bl`'s own target is meaningless).
                    // (Where there is a relocation, the address is not the callee's: never fall back.)
                    let reloc = f.relocs.iter().find(|(at, _)| *at == insn.addr);
                    let callee = match reloc {
                        Some((_, n)) => by_name.get(n.as_str()),
                        None => target.and_then(|a| by_addr.get(&a)),
                    }
                    .copied();
                    // A stub defined in another file (an object calling this crate's per-arity stubs)
                    // is known by its name only.
                    let external = || {
                        let (_, n) = f.relocs.iter().find(|(at, _)| *at == insn.addr)?;
                        let name = demangle(n);
                        let arity = stub_arity(&name)?;
                        Some((name, StubKind::Generic { arity }))
                    };
                    let Some((callee, kind)) = callee
                        .and_then(|c| Some((names[c].clone(), kinds[c]?)))
                        .or_else(external)
                    else {
                        continue;
                    };
                    let c_regs: Reg = if f.isa == Isa::A64 { 8 } else { 4 };
                    let reg = |r: Reg| constant(state.map(|s| s.reg(r)));
                    let (kind, number, first_arg, inputs) = match kind {
                        StubKind::Generic { arity } => (
                            SiteKind::Outline { arity },
                            reg(0),
                            reg(1),
                            (0..=(arity as Reg).min(c_regs - 1)).collect::<Vec<Reg>>(),
                        ),
                        StubKind::PerCall { number } => {
                            let arity = xen_arity(number).unwrap_or(5) as Reg;
                            (
                                SiteKind::PerCall,
                                Some(number),
                                reg(0),
                                (0..arity.min(c_regs)).collect(),
                            )
                        }
                    };
                    let setup = setup_bytes(f, prev, i, &inputs);
                    sites.push(Site {
                        addr: insn.addr,
                        kind,
                        number,
                        first_arg,
                        setup_bytes: setup,
                        stub: Some(callee),
                    });
                    prev = i + 1;
                }
                _ => {}
            }
        }
        if sites.is_empty() && stub.is_none() {
            continue;
        }
        report.functions.push(FnReport {
            name,
            isa: f.isa,
            arch: Arch::Arm,
            bytes: f.size,
            frame: t.min_sp.unsigned_abs(),
            sites,
            is_stub: stub.is_some(),
            stub,
        });
    }
    report.functions.sort_by_key(|f| f.is_stub);
    Ok(report)
}

fn site_label(s: &Site) -> String {
    let n = s.name();
    match s.kind {
        SiteKind::Inline { tag: 0xEA1 } => n,
        SiteKind::Inline { tag } => format!("{n}(tag {tag:#x}!)"),
        SiteKind::Outline { .. } | SiteKind::PerCall => format!("{n}→stub"),
        SiteKind::Trap(_) => n,
        SiteKind::Page => format!("{n}→page"),
    }
}

fn labels(f: &FnReport) -> String {
    f.sites.iter().map(site_label).collect::<Vec<_>>().join(" ")
}

/// The human-readable table.
pub fn render_table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} {:>3} {:>5} {:>6} {:>7} {:>6}  hypercalls",
        "function", "isa", "sites", "bytes", "set-up", "frame"
    );
    for f in r.callers() {
        let s: u64 = f.sites.iter().map(|s| s.setup_bytes).sum();
        let _ = writeln!(
            out,
            "{:<44} {:>3} {:>5} {:>6} {:>7} {:>6}  {}",
            truncate(&f.name, 44),
            f.isa_name(),
            f.sites.len(),
            f.bytes,
            s,
            f.frame,
            labels(f)
        );
    }
    let t = r.totals();
    let _ = writeln!(
        out,
        "{:<44} {:>3} {:>5} {:>6} {:>7} {:>6}",
        "total", "", t.sites, t.bytes, t.setup_bytes, t.frame
    );
    let stubs: Vec<&FnReport> = r.functions.iter().filter(|f| f.is_stub).collect();
    if !stubs.is_empty() {
        let list: Vec<String> = stubs
            .iter()
            .map(|f| {
                let what = match f.stub {
                    Some(StubKind::PerCall { number }) => {
                        crate::names::describe(Some(number), None)
                    }
                    Some(StubKind::Generic { arity }) => format!("generic, arity {arity}"),
                    None => String::new(),
                };
                format!("{} ({} B, {what})", short(&f.name), f.bytes)
            })
            .collect();
        let _ = writeln!(out, "stubs: {} bytes: {}", r.stub_bytes(), list.join(", "));
    }
    out
}

fn short(name: &str) -> &str {
    // `xen_hypercall::outline::per_call::hypercall2::<32>`: keep the last path segment and its generics.
    let base = name.split("::<").next().unwrap_or(name);
    let from = base.rfind("::").map_or(0, |i| i + 2);
    &name[from..]
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_opt(v: Option<u64>) -> String {
    v.map_or("null".to_string(), |n| n.to_string())
}

/// The version of the JSON format (`"version"`); it changes when a field changes meaning or goes away.
pub const JSON_VERSION: u32 = 1;

/// One file's report as a JSON object (`path`, `functions`, `totals`).
pub fn render_json_file(path: &str, r: &Report) -> String {
    let mut out = format!("{{\"path\":{},\"functions\":[", json_str(path));
    for (i, f) in r.functions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let stub = match f.stub {
            None => "null".to_string(),
            Some(StubKind::Generic { arity }) => {
                format!("{{\"kind\":\"generic\",\"arity\":{arity}}}")
            }
            Some(StubKind::PerCall { number }) => {
                format!("{{\"kind\":\"per_call\",\"number\":{number}}}")
            }
        };
        let _ = write!(
            out,
            "{{\"name\":{},\"isa\":\"{}\",\"bytes\":{},\"frame\":{},\"stub\":{stub},\"setup_bytes\":{},\"sites\":[",
            json_str(&f.name),
            f.isa_name(),
            f.bytes,
            f.frame,
            f.sites.iter().map(|s| s.setup_bytes).sum::<u64>()
        );
        for (j, s) in f.sites.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let (kind, extra) = match s.kind {
                SiteKind::Inline { tag } => ("inline", format!("\"tag\":{tag}")),
                SiteKind::Outline { arity } => ("generic_stub", format!("\"arity\":{arity}")),
                SiteKind::PerCall => ("per_call_stub", String::new()),
                SiteKind::Trap(t) => ("inline", format!("\"trap\":\"{}\"", t.name())),
                SiteKind::Page => ("hypercall_page", String::new()),
            };
            let callee = s.stub.as_deref().map_or("null".to_string(), json_str);
            let sep = if extra.is_empty() { "" } else { "," };
            let _ = write!(
                out,
                "{{\"addr\":{},\"kind\":\"{kind}\"{sep}{extra},\"number\":{},\"first_arg\":{},\"name\":{},\"stub\":{callee},\"setup_bytes\":{}}}",
                s.addr,
                json_opt(s.number),
                json_opt(s.first_arg),
                json_str(&s.name()),
                s.setup_bytes
            );
        }
        out.push_str("]}");
    }
    let t = r.totals();
    let _ = write!(
        out,
        "],\"totals\":{{\"functions\":{},\"sites\":{},\"bytes\":{},\"setup_bytes\":{},\"frame\":{},\"stub_bytes\":{}}}}}",
        t.functions,
        t.sites,
        t.bytes,
        t.setup_bytes,
        t.frame,
        r.stub_bytes()
    );
    out
}

/// The report of one file as the JSON document `cargo xen audit --json` prints for it.
pub fn render_json(r: &Report) -> String {
    format!(
        "{{\"version\":{JSON_VERSION},\"files\":[{}],\"violations\":[]}}",
        render_json_file("", r)
    )
}

/// Per-function and total change between two audits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// Function (or `total`).
    pub name: String,
    /// Bytes before and after (0 when absent).
    pub bytes: (u64, u64),
    /// Sites before and after.
    pub sites: (usize, usize),
    /// Set-up bytes before and after.
    pub setup_bytes: (u64, u64),
}

impl Delta {
    fn changed(&self) -> bool {
        self.bytes.0 != self.bytes.1
            || self.sites.0 != self.sites.1
            || self.setup_bytes.0 != self.setup_bytes.1
    }
}

/// The functions whose bytes, sites or set-up bytes differ between `old` and `new` (by name; stubs as
/// one line `stubs`), and the totals (callers plus stubs in `bytes`) last.
pub fn diff(old: &Report, new: &Report) -> Vec<Delta> {
    use std::collections::BTreeMap;
    let mut map: BTreeMap<String, Delta> = BTreeMap::new();
    for (side, r) in [(0, old), (1, new)] {
        for f in r.callers() {
            let d = map.entry(f.name.clone()).or_insert_with(|| Delta {
                name: f.name.clone(),
                ..Delta::default()
            });
            let setup: u64 = f.sites.iter().map(|s| s.setup_bytes).sum();
            if side == 0 {
                d.bytes.0 += f.bytes;
                d.sites.0 += f.sites.len();
                d.setup_bytes.0 += setup;
            } else {
                d.bytes.1 += f.bytes;
                d.sites.1 += f.sites.len();
                d.setup_bytes.1 += setup;
            }
        }
    }
    let mut out: Vec<Delta> = map.into_values().filter(Delta::changed).collect();
    let stubs = Delta {
        name: "stubs".into(),
        bytes: (old.stub_bytes(), new.stub_bytes()),
        ..Delta::default()
    };
    if stubs.changed() {
        out.push(stubs);
    }
    let (a, b) = (old.totals(), new.totals());
    out.push(Delta {
        name: "total".into(),
        bytes: (a.bytes + old.stub_bytes(), b.bytes + new.stub_bytes()),
        sites: (a.sites, b.sites),
        setup_bytes: (a.setup_bytes, b.setup_bytes),
    });
    out
}

fn signed(a: u64, b: u64) -> String {
    let d = b as i128 - a as i128;
    if d > 0 {
        format!("+{d}")
    } else {
        d.to_string()
    }
}

/// The diff as a table.
pub fn render_diff(deltas: &[Delta]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} {:>16} {:>12} {:>16}",
        "function", "bytes", "sites", "set-up bytes"
    );
    for d in deltas {
        let cell = |a: u64, b: u64| format!("{a}→{b} ({})", signed(a, b));
        let _ = writeln!(
            out,
            "{:<44} {:>16} {:>12} {:>16}",
            truncate(&d.name, 44),
            cell(d.bytes.0, d.bytes.1),
            cell(d.sites.0 as u64, d.sites.1 as u64),
            cell(d.setup_bytes.0, d.setup_bytes.1)
        );
    }
    out
}

/// The diff as JSON: `{"version", "old", "new", "functions": [...], "total": {...}}`, each field an
/// `[old, new]` pair.
pub fn render_diff_json(old: &str, new: &str, deltas: &[Delta], violations: &[String]) -> String {
    let one = |d: &Delta| {
        format!(
            "{{\"name\":{},\"bytes\":[{},{}],\"sites\":[{},{}],\"setup_bytes\":[{},{}]}}",
            json_str(&d.name),
            d.bytes.0,
            d.bytes.1,
            d.sites.0,
            d.sites.1,
            d.setup_bytes.0,
            d.setup_bytes.1
        )
    };
    let (total, funcs) = deltas
        .split_last()
        .map_or((None, deltas), |(t, f)| (Some(t), f));
    format!(
        "{{\"version\":{JSON_VERSION},\"diff\":{{\"old\":{},\"new\":{},\"functions\":[{}],\"total\":{}}},\"violations\":[{}]}}",
        json_str(old),
        json_str(new),
        funcs.iter().map(one).collect::<Vec<_>>().join(","),
        total.map_or("null".to_string(), one),
        violations
            .iter()
            .map(|v| json_str(v))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Limits a report must stay within (`--max-…`); `None` is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// `--max-setup-per-site`: set-up bytes of the worst site.
    pub setup_per_site: Option<u64>,
    /// `--max-setup-bytes`: set-up bytes of all sites.
    pub setup_bytes: Option<u64>,
    /// `--max-sites`: hypercall sites.
    pub sites: Option<u64>,
    /// `--max-stub-bytes`: bytes of the stubs.
    pub stub_bytes: Option<u64>,
    /// `--max-hypercall-bytes`: set-up bytes of all sites plus the stubs' bytes: the code spent on
    /// hypercalls themselves.
    pub hypercall_bytes: Option<u64>,
}

impl Limits {
    /// The limits `r` exceeds, one line each.
    pub fn check(&self, r: &Report) -> Vec<String> {
        let t = r.totals();
        let mut v = Vec::new();
        let mut over = |flag: &str, limit: Option<u64>, value: u64, what: String| {
            if let Some(l) = limit
                && value > l
            {
                v.push(format!("{flag} {l} exceeded: {value} ({what})"));
            }
        };
        if let Some((f, s)) = r.worst_site() {
            over(
                "--max-setup-per-site",
                self.setup_per_site,
                s.setup_bytes,
                format!("{} in {} at {:#x}", s.name(), f.name, s.addr),
            );
        }
        over(
            "--max-setup-bytes",
            self.setup_bytes,
            t.setup_bytes,
            "set-up bytes of all sites".into(),
        );
        over(
            "--max-sites",
            self.sites,
            t.sites as u64,
            "hypercall sites".into(),
        );
        over(
            "--max-stub-bytes",
            self.stub_bytes,
            r.stub_bytes(),
            "bytes of the stubs".into(),
        );
        over(
            "--max-hypercall-bytes",
            self.hypercall_bytes,
            t.setup_bytes + r.stub_bytes(),
            "set-up bytes plus stub bytes".into(),
        );
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a64(words: &[u32]) -> Function {
        let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        Function {
            name: "f".into(),
            isa: Isa::A64,
            addr: 0,
            size: code.len() as u64,
            insns: elf::decode(Isa::A64, &code, 0),
            origin: String::new(),
            relocs: Vec::new(),
        }
    }

    const HVC: u32 = 0xD401_D422;
    const RET: u32 = 0xD65F_03C0;

    #[test]
    fn stubs_are_recognised_by_their_code() {
        // mov x16, #32 ; hvc #0xEA1 ; ret: Linux's HYPERVISOR_event_channel_op.
        assert_eq!(
            classify(&a64(&[0xD280_0410, HVC, RET]), "anything"),
            Some(StubKind::PerCall { number: 32 })
        );
        // mov x16, x0 ; mov x0, x1 ; mov x1, x2 ; hvc ; ret: privcmd_call's shape, two arguments.
        assert_eq!(
            classify(
                &a64(&[0xAA00_03F0, 0xAA01_03E0, 0xAA02_03E1, HVC, RET]),
                "anything"
            ),
            Some(StubKind::Generic { arity: 2 })
        );
        // Not stubs: a site that sets its first argument (a caller), another tag, two traps.
        assert_eq!(
            classify(&a64(&[0xD280_0410, 0xD280_0020, HVC, RET]), "f"),
            None
        );
        assert_eq!(classify(&a64(&[0xD280_0410, 0xD401_D402, RET]), "f"), None);
        assert_eq!(
            classify(&a64(&[0xD280_0410, HVC, 0xD280_0410, HVC, RET]), "f"),
            None
        );
        // This crate's per-arity stubs are also known by name.
        assert_eq!(
            classify(&a64(&[RET]), "xen_hypercall::outline::hypercall3"),
            Some(StubKind::Generic { arity: 3 })
        );
    }

    fn report(fns: Vec<(&str, u64, u64, bool)>) -> Report {
        Report {
            functions: fns
                .into_iter()
                .map(|(name, bytes, setup, is_stub)| FnReport {
                    name: name.into(),
                    isa: Isa::A64,
                    arch: Arch::Arm,
                    bytes,
                    frame: 0,
                    sites: vec![Site {
                        addr: 0,
                        kind: SiteKind::Inline { tag: 0xEA1 },
                        number: Some(32),
                        first_arg: Some(4),
                        setup_bytes: setup,
                        stub: None,
                    }],
                    is_stub,
                    stub: is_stub.then_some(StubKind::PerCall { number: 32 }),
                })
                .collect(),
        }
    }

    #[test]
    fn diff_and_limits() {
        let old = report(vec![("a", 100, 8, false), ("b", 50, 4, false)]);
        let new = report(vec![
            ("a", 90, 8, false),
            ("c", 10, 12, false),
            ("s", 12, 4, true),
        ]);
        let d = diff(&old, &new);
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "stubs", "total"]);
        assert_eq!(d[0].bytes, (100, 90));
        assert_eq!(d[1].sites, (1, 0));
        assert_eq!(d[2].setup_bytes, (0, 12));
        assert_eq!(d[3].bytes, (0, 12));
        assert_eq!(d[4].bytes, (150, 112));
        assert_eq!(d[4].sites, (2, 2));
        let limits = Limits {
            setup_per_site: Some(12),
            ..Limits::default()
        };
        assert!(limits.check(&new).is_empty());
        let limits = Limits {
            setup_per_site: Some(11),
            hypercall_bytes: Some(31),
            ..Limits::default()
        };
        let v = limits.check(&new);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].contains("event_channel_op/send in c"), "{v:?}");
        assert!(
            v[1].contains("--max-hypercall-bytes 31 exceeded: 32"),
            "{v:?}"
        );
    }
}
