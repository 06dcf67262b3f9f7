//! The strategy benchmark behind `cargo bench`: inline per-arity stubs, one fixed maximum-arity inline
//! stub, and out-of-line stubs, compiled from the same caller code (`benches/sites/`) for A32, T32 and A64.
//!
//! Code size comes from the ELF (the audit's reading of the built objects); executed instructions from the
//! EL2 bench image under QEMU with `-icount` ([`crate::icount`]). Both are deterministic.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::audit::{self, SiteKind};
use crate::elf::Isa;
use crate::{setup, util};

/// The strategies, in table order.
pub const STRATEGIES: [&str; 3] = ["inline", "maxarity", "outline"];
/// The arities measured (Xen reads at most five arguments).
pub const ARITIES: std::ops::RangeInclusive<usize> = 0..=5;
/// Opt-levels the sizes are measured at.
pub const OPT_LEVELS: [&str; 2] = ["s", "3"];

/// Sizes of one site function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Size {
    /// Bytes of the whole function.
    pub function: u64,
    /// Bytes of the call site: register set-up plus the `hvc` or `bl`.
    pub call_site: u64,
    /// Bytes of its stack frame.
    pub frame: u64,
}

/// Sizes for one instruction set and opt-level.
#[derive(Clone, Debug, Default)]
pub struct IsaSizes {
    /// `(strategy, arity)` → sizes of `site_{strategy}_{arity}`.
    pub sites: BTreeMap<(String, usize), Size>,
    /// strategy → sizes of `work_{strategy}` (nine hypercalls).
    pub work: BTreeMap<String, Size>,
    /// Bytes of each out-of-line stub, by arity.
    pub stubs: BTreeMap<usize, u64>,
    /// The arities of the stubs the work loop calls.
    pub work_stub_arities: Vec<usize>,
}

impl IsaSizes {
    /// The work loop's `.text` under `strategy`: the function, plus the out-of-line stubs it needs.
    pub fn work_text(&self, strategy: &str) -> u64 {
        let f = self.work.get(strategy).map_or(0, |s| s.function);
        if strategy == "outline" {
            f + self
                .work_stub_arities
                .iter()
                .map(|a| self.stubs.get(a).copied().unwrap_or(0))
                .sum::<u64>()
        } else {
            f
        }
    }

    /// The smallest number of call sites of `arity` from which out-of-line code is smaller than inline
    /// code, counting the stub once: `None` when an out-of-line call site is not smaller than an inline one.
    pub fn crossover(&self, arity: usize) -> Option<u64> {
        let i = self.sites.get(&("inline".to_string(), arity))?.function;
        let o = self.sites.get(&("outline".to_string(), arity))?.function;
        let stub = *self.stubs.get(&arity)?;
        (o < i).then(|| stub / (i - o) + 1)
    }
}

/// The arity of a bench site from its name (`site_inline_3` → 3; `site_maxarity_*` binds all six).
fn site_arity(function: &str, number: Option<u64>) -> Option<usize> {
    if function.starts_with("site_maxarity") || function.starts_with("work_maxarity") {
        return Some(6);
    }
    match number {
        Some(n @ 0x30..=0x36) => Some((n - 0x30) as usize),
        n => n.and_then(audit::xen_arity),
    }
}

/// A build configuration: instruction set, target, extra flags.
fn configs() -> [(Isa, &'static str, &'static str); 3] {
    [
        (Isa::A32, "armv7a-none-eabi", ""),
        (Isa::T32, "armv7a-none-eabi", "-Ctarget-feature=+thumb-mode"),
        (Isa::A64, "aarch64-unknown-none", ""),
    ]
}

/// Builds the bench sites (and with them the library) for one configuration; returns the two rlibs.
fn build(target: &str, flags: &str, opt: &str, isa: Isa) -> Result<(PathBuf, PathBuf)> {
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

/// Measures the sizes for one configuration.
pub fn sizes(isa: Isa, target: &str, flags: &str, opt: &str) -> Result<IsaSizes> {
    let (sites, lib) = build(target, flags, opt, isa)?;
    let report = audit::analyze_with(&std::fs::read(&sites)?, site_arity)?;
    let mut out = IsaSizes::default();
    for f in report.callers() {
        let site_bytes = |k: &SiteKind| match k {
            SiteKind::Inline { .. } | SiteKind::Outline { .. } => 4,
        };
        let call_site: u64 = f
            .sites
            .iter()
            .map(|s| s.setup_bytes + site_bytes(&s.kind))
            .sum();
        let size = Size {
            function: f.bytes,
            call_site,
            frame: f.frame,
        };
        if let Some(rest) = f.name.strip_prefix("site_") {
            let (strategy, arity) = rest.rsplit_once('_').context("site name")?;
            out.sites
                .insert((strategy.to_string(), arity.parse()?), size);
        } else if let Some(strategy) = f.name.strip_prefix("work_") {
            out.work.insert(strategy.to_string(), size);
            if strategy == "outline" {
                let mut a: Vec<usize> = f
                    .sites
                    .iter()
                    .filter_map(|s| match s.kind {
                        SiteKind::Outline { arity } => Some(arity),
                        _ => None,
                    })
                    .collect();
                a.sort_unstable();
                a.dedup();
                out.work_stub_arities = a;
            }
        }
    }
    let lib_report = audit::analyze(&std::fs::read(&lib)?)?;
    for f in lib_report.functions.iter().filter(|f| f.is_stub) {
        if let Some(n) = f
            .name
            .rsplit("hypercall")
            .next()
            .and_then(|n| n.parse().ok())
        {
            out.stubs.insert(n, f.bytes);
        }
    }
    Ok(out)
}

/// Everything the benchmark measured.
#[derive(Default)]
pub struct Results {
    /// `(isa, opt-level)` → sizes.
    pub sizes: BTreeMap<(&'static str, &'static str), IsaSizes>,
    /// `(isa, site)` → executed guest instructions per call.
    pub icount: BTreeMap<(&'static str, String), u64>,
    /// The opt-level of the executed-instruction figures.
    pub icount_opt: String,
}

/// Measures the code sizes for every configuration.
pub fn run() -> Result<Results> {
    setup::toolchain()?;
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
    /// Adds executed-instruction counts measured at opt-level `opt`: `(isa, site, instructions)`.
    pub fn add_counts(&mut self, opt: &str, counts: impl IntoIterator<Item = (Isa, String, u64)>) {
        self.icount_opt = opt.to_string();
        for (isa, site, n) in counts {
            self.icount.insert((isa.name(), site), n);
        }
    }
}

/// The markdown report.
pub fn markdown(r: &Results) -> String {
    let mut o = String::new();
    let isas = ["a32", "t32", "a64"];
    let _ = writeln!(
        o,
        "### One hypercall with eight values live across it (opt-level s)\n"
    );
    let _ = writeln!(
        o,
        "Per cell: whole-function bytes / call-site bytes (register set-up + trap or call) / stack frame \
         bytes / executed guest instructions per call (opt-level {}). Out-of-line figures exclude the stub: \
         see the stub and crossover table.\n",
        r.icount_opt
    );
    let _ = writeln!(
        o,
        "| isa | arity | inline (ours) | fixed max-arity inline | out-of-line |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|");
    for isa in isas {
        let Some(s) = r.sizes.get(&(isa, "s")) else {
            continue;
        };
        for n in ARITIES {
            let cell = |strategy: &str| {
                let z = s
                    .sites
                    .get(&(strategy.to_string(), n))
                    .copied()
                    .unwrap_or_default();
                let i = r
                    .icount
                    .get(&(isa, format!("site_{strategy}_{n}")))
                    .map_or("–".to_string(), |c| c.to_string());
                format!("{} / {} / {} / {}", z.function, z.call_site, z.frame, i)
            };
            let _ = writeln!(
                o,
                "| {isa} | {n} | {} | {} | {} |",
                cell("inline"),
                cell("maxarity"),
                cell("outline")
            );
        }
    }
    let _ = writeln!(
        o,
        "\n### Work loop: nine hypercalls of the example guest, results feeding later calls\n"
    );
    let _ = writeln!(
        o,
        "`.text` bytes (out-of-line: the function plus the stubs it calls, and that total per call site) and \
         executed guest instructions per loop.\n"
    );
    let _ = writeln!(
        o,
        "| isa | opt | inline (ours) | fixed max-arity inline | out-of-line (+stubs, per site) |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|");
    for isa in isas {
        for opt in OPT_LEVELS {
            let Some(s) = r.sizes.get(&(isa, opt)) else {
                continue;
            };
            let ins = |strategy: &str| {
                if opt == r.icount_opt {
                    r.icount
                        .get(&(isa, format!("work_{strategy}")))
                        .map_or(String::new(), |c| format!(", {c} insns"))
                } else {
                    String::new()
                }
            };
            let outline = s.work_text("outline");
            let _ = writeln!(
                o,
                "| {isa} | {opt} | {} B{} | {} B{} | {} B ({} + {} stubs), {:.1} B/site{} |",
                s.work_text("inline"),
                ins("inline"),
                s.work_text("maxarity"),
                ins("maxarity"),
                outline,
                s.work.get("outline").map_or(0, |w| w.function),
                outline - s.work.get("outline").map_or(0, |w| w.function),
                outline as f64 / 9.0,
                ins("outline"),
            );
        }
    }
    let _ = writeln!(
        o,
        "\n### Out-of-line stubs and the crossover (opt-level s)\n"
    );
    let _ = writeln!(
        o,
        "Stub bytes, and the number of call sites of one arity from which out-of-line code is smaller than \
         inline code (stub counted once); \"never\" where an out-of-line call site is not smaller.\n"
    );
    let _ = writeln!(
        o,
        "| isa | arity | stub bytes | inline site − out-of-line site | crossover |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|");
    for isa in isas {
        let Some(s) = r.sizes.get(&(isa, "s")) else {
            continue;
        };
        for n in ARITIES {
            let i = s
                .sites
                .get(&("inline".to_string(), n))
                .map_or(0, |z| z.function) as i64;
            let ol = s
                .sites
                .get(&("outline".to_string(), n))
                .map_or(0, |z| z.function) as i64;
            let _ = writeln!(
                o,
                "| {isa} | {n} | {} | {} B | {} |",
                s.stubs.get(&n).copied().unwrap_or(0),
                i - ol,
                s.crossover(n)
                    .map_or("never".to_string(), |k| format!("{k} sites"))
            );
        }
    }
    o
}

/// The results as JSON.
pub fn json(r: &Results) -> String {
    let mut o = String::from("{\"sizes\":[");
    let mut first = true;
    for ((isa, opt), s) in &r.sizes {
        for ((strategy, arity), z) in &s.sites {
            if !first {
                o.push(',');
            }
            first = false;
            let _ = write!(
                o,
                "{{\"isa\":\"{isa}\",\"opt\":\"{opt}\",\"site\":\"site_{strategy}_{arity}\",\"function\":{},\
                 \"call_site\":{},\"frame\":{}}}",
                z.function, z.call_site, z.frame
            );
        }
        for strategy in STRATEGIES {
            let _ = write!(
                o,
                ",{{\"isa\":\"{isa}\",\"opt\":\"{opt}\",\"site\":\"work_{strategy}\",\"text\":{}}}",
                s.work_text(strategy)
            );
        }
        for (n, b) in &s.stubs {
            let _ = write!(
                o,
                ",{{\"isa\":\"{isa}\",\"opt\":\"{opt}\",\"stub\":{n},\"bytes\":{b}}}"
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
            "{{\"isa\":\"{isa}\",\"site\":\"{site}\",\"instructions\":{c}}}"
        );
    }
    o.push_str("]}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossover_counts_the_stub_once() {
        let mut s = IsaSizes::default();
        s.sites.insert(
            ("inline".into(), 2),
            Size {
                function: 40,
                ..Size::default()
            },
        );
        s.sites.insert(
            ("outline".into(), 2),
            Size {
                function: 30,
                ..Size::default()
            },
        );
        s.stubs.insert(2, 20);
        // 10 bytes saved per site, 20-byte stub: 3 sites are the first where out-of-line is smaller
        // (3·30 + 20 = 110 < 120), 2 sites tie at best (2·30 + 20 = 80 = 80).
        assert_eq!(s.crossover(2), Some(3));
        s.sites.insert(
            ("outline".into(), 2),
            Size {
                function: 44,
                ..Size::default()
            },
        );
        assert_eq!(s.crossover(2), None);
    }

    #[test]
    fn site_arity_from_names_and_numbers() {
        assert_eq!(site_arity("site_inline_3", Some(0x33)), Some(3));
        assert_eq!(site_arity("site_maxarity_1", Some(0x31)), Some(6));
        assert_eq!(site_arity("work_inline", Some(18)), Some(3));
    }
}
