//! `cargo xtask audit <ELF> [--json]`: every hypercall site of a 32-bit ARM or AArch64 ELF file.
//!
//! A site is an `hvc` (A32, T32 or A64; the Xen tag `0xEA1` or any other, which is flagged) or a call to one
//! of the out-of-line stubs (`xen_hypercall::outline::hypercallN`). Each is attributed to its function; the
//! call number is recovered when it is a constant (symbolic trace of the function, [`crate::flow`]). Per
//! function: sites, bytes of the function, bytes spent on register set-up for the calls (the `mov`-class
//! instructions that last write a register the call consumes: the number register and the argument
//! registers of Xen's declared arity for inline sites, `r0`.. / `x0`.. of the stub's arity for out-of-line
//! calls), and the bytes of its stack frame. The out-of-line stubs themselves are listed apart.

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
    /// A call to an out-of-line stub of this arity.
    Outline {
        /// The stub's arity.
        arity: usize,
    },
}

/// One hypercall site.
#[derive(Clone, Debug)]
pub struct Site {
    /// Address of the `hvc` or the call.
    pub addr: u64,
    /// Inline or out-of-line.
    pub kind: SiteKind,
    /// The call number, when it is a constant.
    pub number: Option<u64>,
    /// Bytes of the instructions that set up the call's registers.
    pub setup_bytes: u64,
}

/// One function with hypercall sites, or an out-of-line stub.
#[derive(Clone, Debug)]
pub struct FnReport {
    /// Demangled name, without the hash.
    pub name: String,
    /// Instruction set.
    pub isa: Isa,
    /// Size in bytes.
    pub bytes: u64,
    /// Stack frame in bytes.
    pub frame: u64,
    /// Its sites.
    pub sites: Vec<Site>,
    /// Whether it is one of the out-of-line stubs.
    pub is_stub: bool,
}

/// The audit of one file.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Functions with sites, then the out-of-line stubs, in address order within each group.
    pub functions: Vec<FnReport>,
}

/// Totals over the functions with sites (the out-of-line stubs apart).
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

    /// Functions that are not out-of-line stubs.
    pub fn callers(&self) -> impl Iterator<Item = &FnReport> {
        self.functions.iter().filter(|f| !f.is_stub)
    }

    /// Total bytes of the out-of-line stubs present.
    pub fn stub_bytes(&self) -> u64 {
        self.functions
            .iter()
            .filter(|f| f.is_stub)
            .map(|f| f.bytes)
            .sum()
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

/// The arity of an out-of-line stub, from its demangled name.
fn stub_arity(demangled: &str) -> Option<usize> {
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
/// input register, the `mov`-class instructions that write it after its last other write.
fn setup_bytes(f: &Function, from: usize, at: usize, inputs: &[Reg]) -> u64 {
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

/// Audits ELF bytes (an executable, a relocatable object or a static archive).
pub fn analyze(data: &[u8]) -> Result<Report> {
    analyze_with(data, |_, number| number.and_then(xen_arity))
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
    let names: HashMap<u64, String> = functions
        .iter()
        .map(|f| (f.addr, demangle(&f.name)))
        .collect();
    let mut report = Report::default();
    for f in &functions {
        let name = demangle(&f.name);
        let is_stub = stub_arity(&name).is_some();
        let t = flow::trace(f, 0);
        let mut sites = Vec::new();
        let mut prev = 0usize;
        let (mut ti, mut ci) = (0usize, 0usize);
        for (i, insn) in f.insns.iter().enumerate() {
            match &insn.op {
                Op::Hvc(tag) => {
                    let state = t.traps.get(ti);
                    ti += 1;
                    let number = match state.map(|s| s.reg(f.isa.number_reg())) {
                        Some(Val::Const(n)) => Some(n),
                        _ => None,
                    };
                    let arity = arity_of(&name, number).unwrap_or(5).min(6);
                    let inputs: Vec<Reg> = std::iter::once(f.isa.number_reg())
                        .chain(0..arity as Reg)
                        .collect();
                    let setup = setup_bytes(f, prev, i, &inputs);
                    sites.push(Site {
                        addr: insn.addr,
                        kind: SiteKind::Inline { tag: *tag },
                        number,
                        setup_bytes: setup,
                    });
                    prev = i + 1;
                }
                Op::Call(target) => {
                    let state = t.calls.get(ci);
                    ci += 1;
                    let callee = target.and_then(|a| names.get(&a).cloned()).or_else(|| {
                        f.relocs
                            .iter()
                            .find(|(at, _)| *at == insn.addr)
                            .map(|(_, n)| demangle(n))
                    });
                    let Some(arity) = callee.as_deref().and_then(stub_arity) else {
                        continue;
                    };
                    let number = match state.map(|s| s.reg(0)) {
                        Some(Val::Const(n)) => Some(n),
                        _ => None,
                    };
                    let c_regs: Reg = if f.isa == Isa::A64 { 8 } else { 4 };
                    let inputs: Vec<Reg> = (0..=(arity as Reg).min(c_regs - 1)).collect();
                    let setup = setup_bytes(f, prev, i, &inputs);
                    sites.push(Site {
                        addr: insn.addr,
                        kind: SiteKind::Outline { arity },
                        number,
                        setup_bytes: setup,
                    });
                    prev = i + 1;
                }
                _ => {}
            }
        }
        if sites.is_empty() && !is_stub {
            continue;
        }
        report.functions.push(FnReport {
            name,
            isa: f.isa,
            bytes: f.size,
            frame: t.min_sp.unsigned_abs(),
            sites,
            is_stub,
        });
    }
    report.functions.sort_by_key(|f| f.is_stub);
    Ok(report)
}

fn numbers(f: &FnReport) -> String {
    let v: Vec<String> = f
        .sites
        .iter()
        .map(|s| {
            let n = s.number.map_or("?".to_string(), |n| n.to_string());
            match s.kind {
                SiteKind::Inline { tag: 0xEA1 } => n,
                SiteKind::Inline { tag } => format!("{n}(tag {tag:#x}!)"),
                SiteKind::Outline { .. } => format!("{n}→stub"),
            }
        })
        .collect();
    v.join(" ")
}

/// The human-readable table.
pub fn render_table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<44} {:>3} {:>5} {:>6} {:>7} {:>6}  numbers",
        "function", "isa", "sites", "bytes", "set-up", "frame"
    );
    for f in r.callers() {
        let s: u64 = f.sites.iter().map(|s| s.setup_bytes).sum();
        let _ = writeln!(
            out,
            "{:<44} {:>3} {:>5} {:>6} {:>7} {:>6}  {}",
            truncate(&f.name, 44),
            f.isa.name(),
            f.sites.len(),
            f.bytes,
            s,
            f.frame,
            numbers(f)
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
            .map(|f| format!("{} ({} B)", short(&f.name), f.bytes))
            .collect();
        let _ = writeln!(
            out,
            "out-of-line stubs: {} bytes: {}",
            r.stub_bytes(),
            list.join(", ")
        );
    }
    out
}

fn short(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
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

/// The report as JSON.
pub fn render_json(r: &Report) -> String {
    let mut out = String::from("{\"functions\":[");
    for (i, f) in r.functions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"name\":{},\"isa\":\"{}\",\"bytes\":{},\"frame\":{},\"stub\":{},\"setup_bytes\":{},\"sites\":[",
            json_str(&f.name),
            f.isa.name(),
            f.bytes,
            f.frame,
            f.is_stub,
            f.sites.iter().map(|s| s.setup_bytes).sum::<u64>()
        );
        for (j, s) in f.sites.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let (kind, extra) = match s.kind {
                SiteKind::Inline { tag } => ("inline", format!("\"tag\":{tag}")),
                SiteKind::Outline { arity } => ("outline", format!("\"arity\":{arity}")),
            };
            let number = s.number.map_or("null".to_string(), |n| n.to_string());
            let _ = write!(
                out,
                "{{\"addr\":{},\"kind\":\"{kind}\",{extra},\"number\":{number},\"setup_bytes\":{}}}",
                s.addr, s.setup_bytes
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

/// The `cargo xtask audit` entry point.
pub fn main(args: &[String]) -> Result<()> {
    let mut json = false;
    let mut path = None;
    for a in args {
        match a.as_str() {
            "--json" => json = true,
            s if s.starts_with('-') => {
                bail!("unknown option {s}; usage: cargo xtask audit <ELF> [--json]")
            }
            s if path.is_none() => path = Some(s.to_string()),
            _ => bail!("one ELF file at a time; usage: cargo xtask audit <ELF> [--json]"),
        }
    }
    let Some(path) = path else {
        bail!("usage: cargo xtask audit <ELF> [--json]")
    };
    let data = std::fs::read(&path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
    let report = analyze(&data).map_err(|e| anyhow::anyhow!("{path}: {e:#}"))?;
    if json {
        println!("{}", render_json(&report));
    } else {
        print!("{}", render_table(&report));
    }
    Ok(())
}
