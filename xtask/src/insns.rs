//! Executed guest instructions per bench call site, counted under QEMU with `-icount shift=0` (where the
//! PMU cycle counter advances once per instruction) by the image in `benches/insns/`.
//!
//! The image prints raw counter deltas per call; this module turns them into instructions of the site:
//! `delta(site) − delta(site_empty) + instructions(site_empty) − hvcs(site)`, where `site_empty` (an empty
//! function of the same signature, counted in the ELF) cancels the calling sequence and the counter reads,
//! and `hvcs(site)` is the number of `hvc`s the site executes (its own and its callees', read from the ELF),
//! each followed by the `eret` of the image's trap handler (the trap's own fixed cost). A control keeps the
//! method honest: every function that is straight-line, following its direct calls (inline and
//! out-of-line sites, work loops, the C peers), must measure exactly its instruction count in the ELF, or
//! the bench fails.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::elf::{self, Function, Isa, Op};
use crate::{setup, util};

/// The opt-level the images are built at (that of the size tables' per-site figures).
pub const OPT: &str = "s";

/// One measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    /// Instruction set.
    pub isa: Isa,
    /// The site function (`site_inline_2`, `work_outline`, …).
    pub site: String,
    /// Guest instructions executed by one call of it, the `hvc` included, the trap handler excluded.
    pub instructions: u64,
    /// Whether the control checked it (it is straight-line, its callees included).
    pub checked: bool,
}

fn configs() -> [(Isa, &'static str, &'static str, &'static str); 3] {
    [
        (Isa::A64, "aarch64-unknown-none", "", "qemu-system-aarch64"),
        (Isa::A32, "armv7a-none-eabi", "", "qemu-system-arm"),
        (
            Isa::T32,
            "armv7a-none-eabi",
            "-Ctarget-feature=+thumb-mode",
            "qemu-system-arm",
        ),
    ]
}

fn build(isa: Isa, target: &str, flags: &str) -> Result<PathBuf> {
    let dir = util::target_dir().join("insns").join(isa.name());
    util::cross_build(&dir, "xen-hypercall-bench-insns", target, OPT, flags, &[])?;
    Ok(dir.join(target).join("release/insns"))
}

fn run_qemu(qemu: &str, image: &PathBuf) -> Result<String> {
    let cpu = if qemu.ends_with("aarch64") {
        "cortex-a57"
    } else {
        "cortex-a15"
    };
    let mut child = setup::qemu(qemu)
        .args([
            "-M",
            "virt,virtualization=on",
            "-cpu",
            cpu,
            "-nographic",
            "-semihosting",
        ])
        .args(["-icount", "shift=0", "-kernel"])
        .arg(image)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {qemu}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{qemu} timed out running {}", image.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Semihosting output reaches stdout or stderr depending on QEMU's console set-up: read both.
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out)?;
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut out)?;
    }
    if !status.success() {
        bail!("{} exited with {status}:\n{out}", image.display());
    }
    Ok(out)
}

/// Parses the image's `<site> <delta>` lines (its `errno` lines are [`crate::bench::errnos`]'); fails
/// unless it ends with `done`.
pub fn parse(out: &str) -> Result<BTreeMap<String, u64>> {
    let mut m = BTreeMap::new();
    let mut done = false;
    for line in out.lines() {
        if line.trim() == "done" {
            done = true;
            continue;
        }
        if crate::bench::errno_line(line).is_some() {
            continue;
        }
        let (name, v) = line
            .split_once(' ')
            .with_context(|| format!("unexpected line {line:?}"))?;
        let v: u64 = v
            .trim()
            .parse()
            .with_context(|| format!("{name}: not a count: {v:?}"))?;
        m.insert(name.to_string(), v);
    }
    if !done {
        bail!("the bench image did not finish:\n{out}");
    }
    Ok(m)
}

/// Whether an instruction transfers control other than by a direct call or the function's return.
fn branches(i: &elf::Insn) -> bool {
    let m = i.mnemonic.as_str();
    m == "b"
        || m == "br"
        || m.starts_with("bcc")
        || m.starts_with("cb")
        || m.starts_with("tb")
        || matches!(i.op, Op::Call(None))
}

/// What the ELF says one call of a function executes, following direct calls: `None` when the function or
/// a callee branches (the executed path is not the instruction count), or calls what is not in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Static {
    /// Instructions of the function and of every call it makes, when all are straight-line.
    pub instructions: Option<u64>,
    /// `hvc` instructions executed: those of the function and of the functions it calls (a straight-line
    /// path executes each once; a branching function's hot path is assumed to execute each once too).
    pub hvcs: u64,
}

/// The function a call to `target` enters: the one starting there, else the one containing it (the decoder
/// does not align a T32 `blx` target to 4).
pub fn callee_at(funcs: &[Function], target: u64) -> Option<&Function> {
    let t = target & !1;
    funcs
        .iter()
        .find(|g| g.addr == t)
        .or_else(|| funcs.iter().find(|g| g.addr < t && t < g.addr + g.size))
}

/// [`Static`] of `name`.
pub fn static_count(name: &str, funcs: &[Function]) -> Result<Static> {
    fn walk(f: &Function, funcs: &[Function], depth: usize) -> Result<Static> {
        if depth > 8 {
            bail!("{}: calls nested too deep", f.name);
        }
        let mut n = Some(f.insns.len() as u64);
        let mut hvcs = 0;
        for i in &f.insns {
            match i.op {
                Op::Hvc(_) => hvcs += 1,
                Op::Call(Some(target)) => {
                    let callee = callee_at(funcs, target)
                        .with_context(|| format!("{}: calls {target:#x}, no function", f.name))?;
                    let c = walk(callee, funcs, depth + 1)?;
                    hvcs += c.hvcs;
                    n = n.zip(c.instructions).map(|(a, b)| a + b);
                }
                _ => {}
            }
            if branches(i) {
                n = None;
            }
        }
        Ok(Static {
            instructions: n,
            hvcs,
        })
    }
    let f = funcs
        .iter()
        .find(|f| f.name == name)
        .with_context(|| format!("{name} is missing from the image"))?;
    walk(f, funcs, 0)
}

/// The instructions one call of `site` executes, from its counter delta `d`: `d − delta(site_empty) +
/// instructions(site_empty) − handler`, with `empty` = (instructions, delta) of `site_empty` and `handler`
/// the trap handler's instructions the call executed (the method of the ARM and the x86-64 counts).
pub(crate) fn net(site: &str, d: u64, empty: (u64, u64), handler: u64) -> Result<u64> {
    let (insns, delta) = empty;
    (d + insns)
        .checked_sub(delta + handler)
        .with_context(|| format!("{site}: delta {d} below the empty site's {delta}"))
}

/// The hypercalls one call of a branching function makes on the path measured, where its static count
/// says more: the typed calls (one) and the typed work loops (nine), whose `hvc`s in the ELF include
/// `console::write`'s second one, for the rest of a short write (inline on AArch64, in `write_rest` on
/// 32-bit ARM), which the trap handler's answer to the first (0, a whole write) never reaches.
/// `work_checked` reports any early return (`crate::bench::errnos`), so it made all nine.
pub fn success_hvcs(site: &str) -> Option<u64> {
    match site {
        "work_typed" | "work_checked" => Some(crate::bench::WORK_ARITIES.len() as u64),
        s if s.starts_with("typed_") => Some(1),
        _ => None,
    }
}

/// The `hvc`s taken off a function's count: its static count when it is straight-line, else what
/// [`success_hvcs`] declares (at most the static count), else the static count.
fn executed_hvcs(site: &str, st: Static) -> Result<u64> {
    match (st.instructions, success_hvcs(site)) {
        (None, Some(n)) if n > st.hvcs => {
            bail!(
                "{site}: {n} hypercalls declared on its path, {} hvc in its code",
                st.hvcs
            )
        }
        (None, Some(n)) => Ok(n),
        _ => Ok(st.hvcs),
    }
}

/// Turns raw deltas into instruction counts and applies the control: the trap handler's `eret` is taken
/// off once per executed `hvc` ([`executed_hvcs`]), and every function that is straight-line (its callees
/// included) must measure exactly its instruction count in the ELF.
pub fn counts(isa: Isa, deltas: &BTreeMap<String, u64>, funcs: &[Function]) -> Result<Vec<Count>> {
    let find = |name: &str| funcs.iter().find(|f| f.name == name);
    let empty = find("site_empty").context("site_empty is missing from the image")?;
    let empty_delta = *deltas
        .get("site_empty")
        .context("no site_empty measurement")?;
    let mut v = Vec::new();
    let mut wrong = Vec::new();
    for (site, &d) in deltas.iter().filter(|(s, _)| s.as_str() != "site_empty") {
        let st = static_count(site, funcs).with_context(|| isa.name())?;
        let hvcs = executed_hvcs(site, st).with_context(|| isa.name())?;
        let n = net(site, d, (empty.insns.len() as u64, empty_delta), hvcs)?;
        if let Some(expected) = st.instructions
            && n != expected
        {
            wrong.push(format!(
                "{} {site}: measured {n} instructions, but it is {expected} straight-line instructions \
                 ({} hvc)",
                isa.name(),
                st.hvcs
            ));
        }
        v.push(Count {
            isa,
            site: site.clone(),
            instructions: n,
            checked: st.instructions.is_some(),
        });
    }
    if !wrong.is_empty() {
        bail!("the count control failed:\n  {}", wrong.join("\n  "));
    }
    Ok(v)
}

/// What the ARM images report: every site's count, and the errno of each fallible function
/// (`(isa, function, errno)`, [`crate::bench::errnos`]).
pub type Measured = (Vec<Count>, Vec<(&'static str, String, u64)>);

/// Builds and runs the image for A64, A32 and T32; returns every site's count and the errnos reported.
pub fn measure() -> Result<Measured> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU])?;
    let mut all = Vec::new();
    let mut errnos = Vec::new();
    for (isa, target, flags, qemu) in configs() {
        let image = build(isa, target, flags)?;
        let out = run_qemu(qemu, &image)?;
        let deltas = parse(&out).with_context(|| format!("{} bench image", isa.name()))?;
        for (f, e) in crate::bench::errnos(&out)? {
            errnos.push((isa.name(), f, e));
        }
        let funcs = elf::read_functions(&std::fs::read(&image)?)?;
        let c = counts(isa, &deltas, &funcs)?;
        require_coverage(&c)?;
        all.extend(c);
    }
    Ok((all, errnos))
}

/// The functions whose code has no branch by construction: every per-arity site and work loop but the
/// typed API's (whose success path is what it measures). The control must have checked each, or it could
/// pass without checking anything.
fn must_be_checked(site: &str) -> bool {
    (site.starts_with("site_") || site.starts_with("work_"))
        && !matches!(site, "work_typed" | "work_checked")
}

/// Fails unless the control checked every function [`must_be_checked`] names.
pub fn require_coverage(counts: &[Count]) -> Result<()> {
    let missed: Vec<String> = counts
        .iter()
        .filter(|c| must_be_checked(&c.site) && !c.checked)
        .map(|c| format!("{} {}", c.isa.name(), c.site))
        .collect();
    if !missed.is_empty() {
        bail!(
            "the count control did not cover (a branch in the function or a callee): {}",
            missed.join(", ")
        );
    }
    if !counts.iter().any(|c| c.checked) {
        bail!("the count control checked nothing");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_lines_are_not_counts() {
        let d = parse(crate::bench::ERRNO_SAMPLE).unwrap();
        assert_eq!(d.len(), 2);
        assert!(!d.contains_key("errno"));
    }

    const NOP: u32 = 0xD503_201F;
    const HVC: u32 = 0xD401_D422; // hvc #0xea1
    const RET: u32 = 0xD65F_03C0;

    /// A64 function at `addr` from instruction words.
    fn func_at(name: &str, addr: u64, words: &[u32]) -> Function {
        let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        Function {
            name: name.into(),
            isa: Isa::A64,
            addr,
            size: code.len() as u64,
            insns: elf::decode(Isa::A64, &code, addr),
            origin: String::new(),
            relocs: Vec::new(),
        }
    }

    /// `n` instructions: `hvcs` traps, `nop`s, and a `ret`.
    fn func(name: &str, addr: u64, n: usize, hvcs: usize) -> Function {
        let mut w = vec![HVC; hvcs];
        w.resize(n - 1, NOP);
        w.push(RET);
        func_at(name, addr, &w)
    }

    /// `bl` from `from` to `to`.
    fn bl(from: u64, to: u64) -> u32 {
        0x9400_0000 | ((((to as i64 - from as i64) / 4) as u32) & 0x03FF_FFFF)
    }

    fn count(c: &[Count], site: &str) -> u64 {
        c.iter().find(|c| c.site == site).unwrap().instructions
    }

    #[test]
    fn subtracts_the_calling_sequence_and_one_eret_per_hvc() {
        // Empty site: 6 instructions, delta 12. A site of 29 with one hvc: 12 - 6 + 29 + 1 eret = 36.
        // A work loop of 40 with nine hvcs: 12 - 6 + 40 + 9 erets = 55.
        let d = parse("site_empty 12\nsite_inline_0 36\nwork_inline 55\ndone\n").unwrap();
        let funcs = [
            func("site_empty", 0x1000, 6, 0),
            func("site_inline_0", 0x2000, 29, 1),
            func("work_inline", 0x3000, 40, 9),
        ];
        let c = counts(Isa::A64, &d, &funcs).unwrap();
        assert_eq!(count(&c, "site_inline_0"), 29);
        assert_eq!(count(&c, "work_inline"), 40);
    }

    #[test]
    fn the_control_catches_a_wrong_count() {
        let d = parse("site_empty 12\nsite_inline_0 37\ndone\n").unwrap();
        let funcs = [
            func("site_empty", 0, 6, 0),
            func("site_inline_0", 0x100, 29, 1),
        ];
        let e = counts(Isa::A64, &d, &funcs).unwrap_err().to_string();
        assert!(e.contains("measured 30"), "{e}");
    }

    #[test]
    fn the_control_covers_work_loops_and_catches_one_eret_per_function() {
        // Negative control: a nine-hvc loop counted the old way (one eret per function) is 8 too many.
        let funcs = [
            func("site_empty", 0, 6, 0),
            func("work_inline", 0x100, 40, 9),
        ];
        let d = parse("site_empty 12\nwork_inline 55\ndone\n").unwrap();
        assert_eq!(
            count(&counts(Isa::A64, &d, &funcs).unwrap(), "work_inline"),
            40
        );
        let old = 55 - 12 + 6 - 1;
        assert_eq!(old, 48);
        let d = parse("site_empty 12\nwork_inline 47\ndone\n").unwrap();
        let e = counts(Isa::A64, &d, &funcs).unwrap_err().to_string();
        assert!(e.contains("work_inline: measured 32"), "{e}");
    }

    #[test]
    fn calls_are_followed_into_their_stubs() {
        // An out-of-line site: 10 instructions with a `bl` to a 3-instruction stub holding the hvc.
        let mut w = vec![NOP; 9];
        w.push(RET);
        w[4] = bl(0x2000 + 16, 0x3000);
        let site = func_at("site_outline_0", 0x2000, &w);
        let stub = func("stub", 0x3000, 3, 1);
        let funcs = [func("site_empty", 0, 6, 0), site, stub];
        let st = static_count("site_outline_0", &funcs).unwrap();
        assert_eq!(
            st,
            Static {
                instructions: Some(13),
                hvcs: 1
            }
        );
        let d = parse("site_empty 12\nsite_outline_0 20\ndone\n").unwrap();
        assert_eq!(
            count(&counts(Isa::A64, &d, &funcs).unwrap(), "site_outline_0"),
            13
        );
        let d = parse("site_empty 12\nsite_outline_0 19\ndone\n").unwrap();
        assert!(counts(Isa::A64, &d, &funcs).is_err());
    }

    #[test]
    fn a_branching_function_is_not_held_to_its_length() {
        // `b` over the next instruction: 5 instructions, 4 executed.
        let f = func_at("typed_x", 0x100, &[HVC, 0x1400_0002, NOP, NOP, RET]);
        let funcs = [func("site_empty", 0, 6, 0), f];
        assert_eq!(
            static_count("typed_x", &funcs).unwrap(),
            Static {
                instructions: None,
                hvcs: 1
            }
        );
        let d = parse("site_empty 12\ntyped_x 11\ndone\n").unwrap();
        assert_eq!(count(&counts(Isa::A64, &d, &funcs).unwrap(), "typed_x"), 4);
    }

    #[test]
    fn a_branching_loop_takes_off_the_hypercalls_of_its_path() {
        // Ten `hvc`s in the code, one of them behind a branch (a short write's second chunk): nine are
        // taken off, not ten. 10 + 1 (`cbz`) + 2 + ret = 14 instructions.
        let mut words = vec![HVC, 0xB400_0040]; // hvc; cbz x0, +8 (over the next)
        words.push(HVC);
        words.extend([HVC; 8]);
        words.extend([NOP, NOP, RET]);
        let f = func_at("work_checked", 0x100, &words);
        let funcs = [func("site_empty", 0, 6, 0), f];
        let st = static_count("work_checked", &funcs).unwrap();
        assert_eq!(st.hvcs, 10);
        assert_eq!(executed_hvcs("work_checked", st).unwrap(), 9);
        // Executed: 13 instructions (the second hvc skipped) and 9 erets, plus the calling sequence (the
        // empty site's delta 12 less its 6 instructions): delta 28.
        let d = parse("site_empty 12\nwork_checked 28\ndone\n").unwrap();
        assert_eq!(
            count(&counts(Isa::A64, &d, &funcs).unwrap(), "work_checked"),
            13
        );
        // Negative control: a loop with fewer hvcs than its declared calls is an error, not a count.
        let g = func_at("work_typed", 0x200, &[HVC, 0x1400_0002, NOP, NOP, RET]);
        let funcs = [func("site_empty", 0, 6, 0), g];
        let d = parse("site_empty 12\nwork_typed 11\ndone\n").unwrap();
        let e = format!("{:#}", counts(Isa::A64, &d, &funcs).unwrap_err());
        assert!(
            e.contains("9 hypercalls declared on its path, 1 hvc"),
            "{e}"
        );
    }

    #[test]
    fn a_site_the_control_cannot_check_fails_the_bench() {
        // Negative control: a per-arity site with a branch escapes the control, which is an error; the
        // typed work loop may branch.
        let f = func_at("site_inline_1", 0x100, &[HVC, 0x1400_0002, NOP, NOP, RET]);
        let g = func_at("typed_y", 0x200, &[HVC, 0x1400_0002, NOP, NOP, RET]);
        let funcs = [func("site_empty", 0, 6, 0), f, g];
        let d = parse("site_empty 12\nsite_inline_1 11\ntyped_y 11\ndone\n").unwrap();
        let c = counts(Isa::A64, &d, &funcs).unwrap();
        let e = require_coverage(&c).unwrap_err().to_string();
        assert!(
            e.contains("a64 site_inline_1") && !e.contains("typed_y"),
            "{e}"
        );
        let ok = func("site_inline_1", 0x100, 4, 1);
        let funcs = [func("site_empty", 0, 6, 0), ok];
        let d = parse("site_empty 12\nsite_inline_1 11\ndone\n").unwrap();
        require_coverage(&counts(Isa::A64, &d, &funcs).unwrap()).unwrap();
        assert!(require_coverage(&[]).is_err());
    }

    #[test]
    fn an_unfinished_run_is_an_error() {
        assert!(parse("site_empty 12\n").is_err());
        assert!(parse("site_empty x\ndone\n").is_err());
    }
}
