//! The architecture-neutral part of the audit: what a report is (functions, their hypercall sites, the
//! stubs), its table, JSON, `--diff` and `--max-…` limits. The instruction sets fill it in: ARM
//! ([`super::arm`]) and x86-64 ([`crate::x86`]); neither is named here.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::elf::Isa;

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
    Trap(Trap),
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

impl Report {
    /// Adds a function audited in address order, unless it has no site and is no stub; `is_stub`
    /// follows `stub`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add(
        &mut self,
        name: String,
        isa: Isa,
        arch: Arch,
        bytes: u64,
        frame: u64,
        sites: Vec<Site>,
        stub: Option<StubKind>,
    ) {
        if sites.is_empty() && stub.is_none() {
            return;
        }
        self.functions.push(FnReport {
            name,
            isa,
            arch,
            bytes,
            frame,
            sites,
            is_stub: stub.is_some(),
            stub,
        });
    }

    /// The report once every function is added: the stubs after the functions with sites (a stable
    /// sort: address order within each group).
    pub(crate) fn stubs_last(mut self) -> Report {
        self.functions.sort_by_key(|f| f.is_stub);
        self
    }
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

/// An x86-64 trap into Xen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// `syscall`: a 64-bit PV guest.
    Syscall,
    /// `vmcall`: an HVM/PVH guest on Intel.
    Vmcall,
    /// `vmmcall`: an HVM/PVH guest on AMD.
    Vmmcall,
}

impl Trap {
    /// The mnemonic.
    pub fn name(self) -> &'static str {
        match self {
            Trap::Syscall => "syscall",
            Trap::Vmcall => "vmcall",
            Trap::Vmmcall => "vmmcall",
        }
    }
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

/// A per-arity stub of this crate defined in another file (an object calling it), known by its symbol
/// only: its demangled name and kind.
pub(crate) fn external_stub(symbol: &str) -> Option<(String, StubKind)> {
    let name = demangle(symbol);
    let arity = stub_arity(&name)?;
    Some((name, StubKind::Generic { arity }))
}

/// A file's functions, their indices by address (what a call reaches in an executable) and by symbol name
/// (what a relocation names in an object or an archive member).
pub(crate) struct FnIndex<'a> {
    pub by_addr: HashMap<u64, usize>,
    pub by_name: HashMap<&'a str, usize>,
}

impl<'a> FnIndex<'a> {
    /// The index of the functions given as (address, symbol name), in order.
    pub(crate) fn new(functions: impl Iterator<Item = (u64, &'a str)>) -> FnIndex<'a> {
        let mut index = FnIndex {
            by_addr: HashMap::new(),
            by_name: HashMap::new(),
        };
        for (i, (addr, name)) in functions.enumerate() {
            index.by_addr.insert(addr, i);
            index.by_name.insert(name, i);
        }
        index
    }
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
