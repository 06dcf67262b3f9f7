//! The x86-64 rows of `cargo bench`: the same call sites (`benches/sites/`) built for `x86_64-unknown-none`
//! as a 64-bit PV guest (inline `syscall`) and as an HVM/PVH guest on AMD (inline `vmmcall`), with the
//! hypercall page filled as Xen 4.17 fills it for each, measured in the bench image `benches/insns-x86`.
//!
//! - Executed instructions: the image runs under `qemu-system-x86_64 -icount shift=0`, where the TSC
//!   advances once per instruction and `rdtsc` ends its translation block. As on ARM ([`crate::insns`]), a
//!   site's count is `delta(site) − delta(site_empty) + instructions(site_empty) − traps · handler`, the
//!   handler being the image's trap return (PV: `xor; jmp *%rcx`, 2; HVM: `xor; addq; iretq`, 3), and a
//!   control fails the bench unless every straight-line function (its callees, the stubs and the page
//!   entries included) measures exactly the instructions of its path in the ELF (iced-x86).
//! - Code size: from the same linked image (opt-level s): function bytes, call-site bytes (the trap or the
//!   call and the `mov`s that last set its input registers), frame bytes, and the library's stubs called
//!   (each once). The hypercall page itself (4096 bytes) is not counted in any row.
//! - The page-path control ([`check_page_path`]): the per-hypercall work loop through the page
//!   (`outline::per_call`, which calls the page entry from the call site) must execute no more
//!   instructions than Linux's or Mini-OS's C macros, on PV and on HVM.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess,
    OpKind, Register,
};

use crate::audit::demangle;
use crate::bench::{CostLines, IsaSizes, Results, Size, WORK_ARITIES, limit, ratio, work_limit};
use crate::scenario::Machine;
use crate::{setup, util};

/// The guest type an image is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 64-bit PV: inline `syscall`, Xen's PV page entries.
    Pv,
    /// HVM/PVH on AMD: inline `vmmcall`, Xen's SVM page entries.
    Hvm,
}

impl Mode {
    /// Both, in report order.
    pub const ALL: [Mode; 2] = [Mode::Pv, Mode::Hvm];

    /// The row key (the "isa" of the results and the JSON).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Pv => "x86-pv",
            Mode::Hvm => "x86-hvm",
        }
    }

    fn feature(self) -> &'static str {
        match self {
            Mode::Pv => "pv",
            Mode::Hvm => "amd",
        }
    }

    /// The inline trap.
    pub fn trap(self) -> Mnemonic {
        match self {
            Mode::Pv => Mnemonic::Syscall,
            Mode::Hvm => Mnemonic::Vmmcall,
        }
    }

    /// Instructions of the image's trap handler, executed once per trap.
    pub fn handler(self) -> u64 {
        match self {
            Mode::Pv => 2,
            Mode::Hvm => 3,
        }
    }

    /// The hypercall page entry of call `nr`, as Xen 4.17 writes it (`pv_ring3_init_hypercall_page`,
    /// `svm_init_hypercall_page`); `__HYPERVISOR_iret`'s (23) is left as it is, as the image does.
    pub fn page_entry(self, nr: u32) -> Vec<u8> {
        let mut e = Vec::new();
        match self {
            Mode::Pv => {
                e.extend([0x51, 0x41, 0x53, 0xb8]);
                e.extend(nr.to_le_bytes());
                e.extend([0x0f, 0x05, 0x41, 0x5b, 0x59, 0xc3]);
            }
            Mode::Hvm => {
                e.push(0xb8);
                e.extend(nr.to_le_bytes());
                e.extend([0x0f, 0x01, 0xd9, 0xc3]);
            }
        }
        e
    }
}

/// The row keys of the x86-64 results.
pub const ISAS: [&str; 2] = ["x86-pv", "x86-hvm"];

/// The shapes measured on x86-64: key and title.
pub const STRATEGIES: [(&str, &str); 6] = [
    ("inline", "inline (ours)"),
    ("maxarity", "fixed max-arity inline"),
    ("percall", "per-hypercall `call` of the page entry (ours)"),
    ("outline", "per-arity stub → page (ours)"),
    ("linux", "Linux `_hypercallN` → page (C, clang -Os)"),
    (
        "unikraft",
        "Mini-OS/Unikraft `_hypercallN` → page (C, clang -Os)",
    ),
];

/// A symbol of the image: name, address, size.
type Symbol = (String, u64, u64);

/// The bench image's code, with the hypercall page filled as the image fills it at run time.
pub struct Image {
    code: Vec<u8>,
    base: u64,
    syms: Vec<Symbol>,
    page: u64,
}

/// The page entry an indirect jump of a per-arity stub is taken to enter (every entry but `iret`'s has
/// the same instructions; this one is `arch_0`'s).
const PAGE_PROBE: u64 = 48;

impl Image {
    /// Reads an ELF and fills its `xen_hypercall_page` for `mode`.
    pub fn read(elf: &[u8], mode: Mode) -> Result<Image> {
        use object::{Object, ObjectSection, ObjectSymbol};
        let file = object::File::parse(elf).context("not an ELF file")?;
        let text = file.section_by_name(".text").context("no .text")?;
        let syms: Vec<Symbol> = file
            .symbols()
            .filter_map(|s| Some((s.name().ok()?.to_string(), s.address(), s.size())))
            .filter(|(n, _, _)| !n.is_empty())
            .collect();
        let mut img = Image {
            code: text.data()?.to_vec(),
            base: text.address(),
            page: 0,
            syms,
        };
        let (_, page, size) = img
            .symbol("xen_hypercall_page")
            .context("the image has no xen_hypercall_page")?;
        if size != 4096 {
            bail!("xen_hypercall_page is {size} bytes, not 4096");
        }
        img.page = page;
        let start = usize::try_from(page - img.base)?;
        for nr in 0..128u32 {
            if nr == 23 {
                continue;
            }
            let e = mode.page_entry(nr);
            let at = start + nr as usize * 32;
            img.code
                .get_mut(at..at + e.len())
                .context("the page is outside .text")?
                .copy_from_slice(&e);
        }
        Ok(img)
    }

    /// A symbol by name.
    pub fn symbol(&self, name: &str) -> Option<Symbol> {
        self.syms.iter().find(|(n, _, _)| n == name).cloned()
    }

    fn containing(&self, addr: u64) -> Option<&Symbol> {
        self.syms
            .iter()
            .filter(|(_, a, s)| *s > 0 && *a <= addr && addr < a + s)
            .min_by_key(|(_, _, s)| *s)
    }

    fn in_page(&self, addr: u64) -> bool {
        (self.page..self.page + 4096).contains(&addr)
    }

    fn decode(&self, addr: u64, len: u64) -> Vec<Instruction> {
        let Some(start) = addr.checked_sub(self.base).map(|s| s as usize) else {
            return Vec::new();
        };
        let end = (start + len as usize).min(self.code.len());
        let Some(bytes) = self.code.get(start..end) else {
            return Vec::new();
        };
        Decoder::with_ip(64, bytes, addr, DecoderOptions::NONE)
            .into_iter()
            .collect()
    }

    fn one(&self, addr: u64) -> Result<Instruction> {
        self.decode(addr, 15)
            .into_iter()
            .next()
            .filter(|i| !i.is_invalid())
            .with_context(|| format!("no instruction at {addr:#x}"))
    }

    /// A function's instructions (by its symbol's size).
    pub fn function(&self, name: &str) -> Option<Vec<Instruction>> {
        let (_, a, s) = self.symbol(name)?;
        Some(self.decode(a, s))
    }
}

fn is_trap(m: Mnemonic) -> bool {
    matches!(m, Mnemonic::Syscall | Mnemonic::Vmcall | Mnemonic::Vmmcall)
}

/// Whether `name` (a symbol) is one of the library's per-arity stubs, which jump into the page through a
/// register.
fn is_per_arity_stub(name: &str) -> bool {
    demangle(name).starts_with("xen_hypercall::outline::hypercall")
}

/// The path one call of a function executes, read from the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    /// Instructions executed, when the path has no conditional or unknown branch (its callees, stubs and
    /// page entries included).
    pub instructions: Option<u64>,
    /// Traps executed (exact when `instructions` is known; otherwise those of the function's own body and
    /// of the library's stubs it calls, cold paths left out).
    pub traps: u64,
}

/// Follows the path from `addr` to its `ret`: direct calls and jumps are followed, a per-arity stub's
/// `jmp reg` enters a page entry; any other branch makes the path unknown.
fn walk(img: &Image, addr: u64, depth: usize) -> Result<Option<(u64, u64)>> {
    if depth > 8 {
        bail!("{addr:#x}: calls nested too deep");
    }
    let (mut pc, mut n, mut traps) = (addr, 0u64, 0u64);
    for _ in 0..10_000 {
        let i = img.one(pc)?;
        n += 1;
        if is_trap(i.mnemonic()) {
            traps += 1;
            pc = i.next_ip();
            continue;
        }
        match i.flow_control() {
            FlowControl::Next => pc = i.next_ip(),
            FlowControl::Return => return Ok(Some((n, traps))),
            FlowControl::UnconditionalBranch if i.op0_kind() == OpKind::NearBranch64 => {
                pc = i.near_branch_target();
            }
            FlowControl::Call if i.op0_kind() == OpKind::NearBranch64 => {
                let Some((cn, ct)) = walk(img, i.near_branch_target(), depth + 1)? else {
                    return Ok(None);
                };
                n += cn;
                traps += ct;
                pc = i.next_ip();
            }
            FlowControl::IndirectBranch
                if img
                    .containing(pc)
                    .is_some_and(|(s, _, _)| is_per_arity_stub(s)) =>
            {
                pc = img.page + PAGE_PROBE * 32;
            }
            _ => return Ok(None),
        }
    }
    bail!("{addr:#x}: no return within 10000 instructions")
}

/// Traps in a function's body and in the library's stubs (and page entries) it calls or jumps to.
fn static_traps(img: &Image, name: &str) -> Result<u64> {
    let (_, a, s) = img
        .symbol(name)
        .with_context(|| format!("{name} is missing from the image"))?;
    let mut traps = 0;
    for i in img.decode(a, s) {
        if is_trap(i.mnemonic()) {
            traps += 1;
        }
        let direct = matches!(
            i.flow_control(),
            FlowControl::Call | FlowControl::UnconditionalBranch
        ) && i.op0_kind() == OpKind::NearBranch64;
        if !direct {
            continue;
        }
        let t = i.near_branch_target();
        if img.in_page(t) {
            traps += 1;
        } else if let Some((callee, ca, _)) = img.containing(t)
            && *ca != a
            && demangle(callee).starts_with("xen_hypercall::outline::")
        {
            traps += walk(img, t, 1)?.map_or(1, |(_, t)| t);
        }
    }
    Ok(traps)
}

/// [`Path`] of function `name`.
pub fn path(img: &Image, name: &str) -> Result<Path> {
    let (_, a, _) = img
        .symbol(name)
        .with_context(|| format!("{name} is missing from the image"))?;
    Ok(match walk(img, a, 0)? {
        Some((n, traps)) => Path {
            instructions: Some(n),
            traps,
        },
        None => Path {
            instructions: None,
            traps: static_traps(img, name)?,
        },
    })
}

/// One measured function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    /// The function.
    pub site: String,
    /// Instructions of one call, traps included, the handler excluded.
    pub instructions: u64,
    /// Whether the control checked it against its path in the ELF.
    pub checked: bool,
}

/// Parses the image's console: `<site> <delta>` lines after the `insns-x86` line, up to `done` (its
/// `errno` lines are [`crate::bench::errnos`]').
pub fn parse(console: &str) -> Result<BTreeMap<String, u64>> {
    let mut lines = console.lines().map(str::trim);
    if !lines.any(|l| l == "insns-x86") {
        bail!("the x86 bench image did not start:\n{console}");
    }
    let mut m = BTreeMap::new();
    for line in lines {
        if line == "done" {
            return Ok(m);
        }
        if crate::bench::errno_line(line).is_some() {
            continue;
        }
        let (name, v) = line
            .split_once(' ')
            .with_context(|| format!("unexpected line {line:?}"))?;
        let v: u64 = v
            .parse()
            .with_context(|| format!("{name}: not a count: {v:?}"))?;
        m.insert(name.to_string(), v);
    }
    bail!("the x86 bench image did not finish:\n{console}")
}

/// Turns deltas into instruction counts and applies the control: every function whose path is known must
/// measure exactly its path's instructions.
pub fn counts(mode: Mode, deltas: &BTreeMap<String, u64>, img: &Image) -> Result<Vec<Count>> {
    let empty = path(img, "site_empty")?
        .instructions
        .context("site_empty is not straight-line")?;
    let empty_delta = *deltas
        .get("site_empty")
        .context("no site_empty measurement")?;
    let mut v = Vec::new();
    let mut wrong = Vec::new();
    for (site, &d) in deltas.iter().filter(|(s, _)| s.as_str() != "site_empty") {
        let p = path(img, site).with_context(|| mode.name())?;
        let n = crate::insns::net(site, d, (empty, empty_delta), p.traps * mode.handler())?;
        if let Some(expected) = p.instructions
            && n != expected
        {
            wrong.push(format!(
                "{} {site}: measured {n} instructions, but its path is {expected} ({} traps)",
                mode.name(),
                p.traps
            ));
        }
        v.push(Count {
            site: site.clone(),
            instructions: n,
            checked: p.instructions.is_some(),
        });
    }
    if !wrong.is_empty() {
        bail!("the x86 count control failed:\n  {}", wrong.join("\n  "));
    }
    Ok(v)
}

/// The functions the control must have checked: every per-arity site and work loop but the typed one,
/// of every shape (a missing one fails too).
pub fn required() -> Vec<String> {
    STRATEGIES
        .iter()
        .flat_map(|(k, _)| {
            crate::bench::ARITIES
                .map(move |n| format!("site_{k}_{n}"))
                .chain([format!("work_{k}")])
        })
        .collect()
}

/// Fails unless the control checked every function [`required`] names.
pub fn require_coverage(mode: Mode, counts: &[Count]) -> Result<()> {
    let bad: Vec<String> = required()
        .into_iter()
        .filter(|s| !counts.iter().any(|c| &c.site == s && c.checked))
        .map(|s| format!("{} {s}", mode.name()))
        .collect();
    if !bad.is_empty() {
        bail!(
            "the x86 count control did not check (missing, or a branch on its path): {}",
            bad.join(", ")
        );
    }
    Ok(())
}

const ARG_REGS: [Register; 6] = [
    Register::RDI,
    Register::RSI,
    Register::RDX,
    Register::R10,
    Register::R8,
    Register::R9,
];
const C_REGS: [Register; 6] = [
    Register::RDI,
    Register::RSI,
    Register::RDX,
    Register::RCX,
    Register::R8,
    Register::R9,
];

fn written(i: &Instruction) -> Vec<Register> {
    let mut f = InstructionInfoFactory::new();
    f.info(i)
        .used_registers()
        .iter()
        .filter(|u| {
            matches!(
                u.access(),
                OpAccess::Write
                    | OpAccess::CondWrite
                    | OpAccess::ReadWrite
                    | OpAccess::ReadCondWrite
            )
        })
        .map(|u| u.register().full_register())
        .collect()
}

/// Bytes of the `mov`s (and `xor r, r`) that last write each of `inputs` in `insns`.
fn setup_bytes(insns: &[Instruction], inputs: &[Register]) -> u64 {
    let mut bytes = 0;
    for &r in inputs {
        if let Some(i) = insns.iter().rev().find(|i| written(i).contains(&r))
            && matches!(i.mnemonic(), Mnemonic::Mov | Mnemonic::Xor)
        {
            bytes += i.len() as u64;
        }
    }
    bytes
}

/// Sizes of one function of the image.
pub fn measure_function(img: &Image, name: &str) -> Result<Size> {
    let (_, a, s) = img
        .symbol(name)
        .with_context(|| format!("{name} is missing from the image"))?;
    let insns = img.decode(a, s);
    let mut z = Size {
        function: s,
        ..Size::default()
    };
    // Frame: pushes and `sub rsp, imm` before the first call or trap.
    for i in &insns {
        match i.mnemonic() {
            Mnemonic::Push => z.frame += 8,
            Mnemonic::Sub
                if i.op0_register() == Register::RSP && i.op1_kind() != OpKind::Register =>
            {
                z.frame += i.immediate(1);
            }
            _ if is_trap(i.mnemonic()) || i.flow_control() == FlowControl::Call => break,
            _ => {}
        }
    }
    let fixed = name
        .rsplit_once('_')
        .and_then(|(_, n)| n.parse::<usize>().ok())
        .filter(|_| name.starts_with("site_"));
    let max = name.contains("maxarity");
    let (mut prev, mut k) = (0usize, 0usize);
    for (idx, i) in insns.iter().enumerate() {
        let arity = |k: usize| {
            if max {
                6
            } else {
                fixed.unwrap_or_else(|| WORK_ARITIES.get(k).copied().unwrap_or(5))
            }
        };
        let inputs: Vec<Register>;
        if is_trap(i.mnemonic()) {
            z.inline_hvc = true;
            inputs = std::iter::once(Register::RAX)
                .chain(ARG_REGS[..arity(k)].iter().copied())
                .collect();
        } else if i.flow_control() == FlowControl::Call && i.op0_kind() == OpKind::NearBranch64 {
            let t = i.near_branch_target();
            if img.in_page(t) {
                // The peers' inline `asm` calls the page with Xen's registers.
                inputs = ARG_REGS[..arity(k)].to_vec();
            } else {
                let Some((callee, _, cs)) = img.containing(t) else {
                    continue;
                };
                let d = demangle(callee);
                if !d.starts_with("xen_hypercall::outline::") {
                    continue;
                }
                z.stubs.insert(callee.clone(), *cs);
                // Per-arity stubs take the number first.
                let n = arity(k) + usize::from(is_per_arity_stub(callee));
                inputs = C_REGS[..n.min(6)].to_vec();
            }
        } else {
            continue;
        }
        z.call_site += setup_bytes(&insns[prev..idx], &inputs) + i.len() as u64;
        prev = idx + 1;
        k += 1;
    }
    Ok(z)
}

fn build(mode: Mode) -> Result<PathBuf> {
    let dir = util::target_dir().join("insns-x86").join(mode.name());
    util::cross_build(
        &dir,
        "xen-hypercall-bench-insns-x86",
        "x86_64-unknown-none",
        crate::insns::OPT,
        "-Crelocation-model=static",
        &[mode.feature()],
    )?;
    Ok(dir.join("x86_64-unknown-none/release/insns-x86"))
}

fn run(image: &std::path::Path) -> Result<String> {
    let mut cmd = crate::setup::qemu("qemu-system-x86_64");
    cmd.args([
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "256M",
        "-nographic",
        "-no-reboot",
        "-icount",
        "shift=0",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-kernel",
    ])
    .arg(image);
    let boot = crate::xen::run_qemu(&mut cmd, Duration::from_secs(60), |o| {
        o.contains("\ndone") || o.contains("panic")
    })?;
    if boot.timed_out {
        bail!("{} timed out:\n{}", image.display(), boot.output);
    }
    if boot.output.contains("not-repeatable") {
        bail!(
            "{}: a measurement was not repeatable:\n{}",
            image.display(),
            boot.output
        );
    }
    Ok(boot.output)
}

/// Builds and runs the image for PV and HVM; adds sizes (opt-level s) and counts to `r`.
pub fn measure(r: &mut Results) -> Result<()> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU_X86, setup::CLANG])?;
    for mode in Mode::ALL {
        let image = build(mode)?;
        let img = Image::read(&std::fs::read(&image)?, mode)?;
        let console = run(&image)?;
        let deltas = parse(&console).with_context(|| format!("{} bench image", mode.name()))?;
        for (f, e) in crate::bench::errnos(&console)? {
            r.errnos.insert((mode.name(), f), e);
        }
        let c = counts(mode, &deltas, &img)?;
        require_coverage(mode, &c)?;
        let mut sizes = IsaSizes::new();
        for count in &c {
            sizes.insert(count.site.clone(), measure_function(&img, &count.site)?);
            r.icount
                .insert((mode.name(), count.site.clone()), count.instructions);
        }
        r.sizes.insert((mode.name(), crate::insns::OPT), sizes);
    }
    Ok(())
}

/// The C peers the per-hypercall path through the page must keep up with: Linux's and Mini-OS's
/// `_hypercallN` macros, which `call` the page entry from the call site.
pub const PAGE_PEERS: [&str; 2] = ["linux", "unikraft"];

/// The control on the page path: on PV and on HVM, the work loop of the per-hypercall stubs
/// (`outline::per_call`, what the `outline` feature's typed API uses) must execute no more instructions
/// than the best C peer's through the page. A missing figure fails too.
pub fn check_page_path(r: &Results) -> Result<()> {
    let mut problems = Vec::new();
    for isa in ISAS {
        let get = |key: &str| r.icount.get(&(isa, format!("work_{key}"))).copied();
        let Some(ours) = get("percall") else {
            problems.push(format!("{isa}: no count of work_percall"));
            continue;
        };
        for peer in PAGE_PEERS {
            match get(peer) {
                Some(p) if ours > p => problems.push(format!(
                    "{isa}: the per-hypercall work loop through the page executes {ours} instructions, \
                     {} more than the {peer} macros' {p}",
                    ours - p
                )),
                Some(_) => {}
                None => problems.push(format!("{isa}: no count of work_{peer}")),
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "the x86 page-path control failed:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// The x86-64 tables.
pub fn markdown(r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### x86-64: inline trap vs the hypercall page (opt-level s)\n\n\
         `x86-pv`: a 64-bit PV guest (inline `syscall`; page entry `push %rcx; push %r11; mov $nr,%eax; \
         syscall; pop %r11; pop %rcx; ret`, 7 instructions). `x86-hvm`: an HVM/PVH guest on AMD (inline \
         `vmmcall`; page entry `mov $nr,%eax; vmmcall; ret`, 3 instructions). Executed guest instructions \
         under `qemu-system-x86_64 -icount shift=0` (TSC), page entries included. Per cell: function bytes / \
         call-site bytes / frame bytes / instructions (ratio to N + 2). Stubs and the 4096-byte page are \
         not in the function bytes.\n"
    );
    for isa in ISAS {
        let Some(s) = r.sizes.get(&(isa, crate::insns::OPT)) else {
            continue;
        };
        let _ = writeln!(o, "**{isa}**\n");
        let _ = writeln!(
            o,
            "| shape | {} |",
            crate::bench::ARITIES
                .map(|n| format!("arity {n}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(o, "|---|{}", "---|".repeat(crate::bench::ARITIES.count()));
        for (key, title) in STRATEGIES {
            let cells: Vec<String> = crate::bench::ARITIES
                .map(|n| {
                    let f = format!("site_{key}_{n}");
                    let z = s.get(&f).cloned().unwrap_or_default();
                    let i = r
                        .icount
                        .get(&(isa, f))
                        .map_or("–".into(), |&c| format!("{c} ({})", ratio(c, limit(n))));
                    format!("{} / {} / {} / {i}", z.function, z.call_site, z.frame)
                })
                .collect();
            let _ = writeln!(o, "| {title} | {} |", cells.join(" | "));
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(
        o,
        "**x86-64 work loop** (nine hypercalls; physical limit {} instructions). `.text` = the function \
         plus the library's stubs it calls (each once), without the page.\n",
        work_limit()
    );
    let _ = writeln!(
        o,
        "| guest | shape | function B | call sites B | frame B | stubs B | .text | insns | ratio |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
    for isa in ISAS {
        let Some(s) = r.sizes.get(&(isa, crate::insns::OPT)) else {
            continue;
        };
        for (key, title) in STRATEGIES
            .iter()
            .chain([&crate::bench::CHECKED_WORK, &crate::bench::TYPED_WORK])
        {
            let f = format!("work_{key}");
            let Some(z) = s.get(&f) else {
                continue;
            };
            let i = r.icount.get(&(isa, f)).copied();
            let _ = writeln!(
                o,
                "| {isa} | {title} | {} | {} | {} | {} | {} | {} | {} |",
                z.function,
                z.call_site,
                z.frame,
                z.stub_bytes(),
                z.text(),
                i.map_or("–".into(), |i| i.to_string()),
                i.map_or("–".into(), |i| ratio(i, work_limit()))
            );
        }
    }
    o
}

/// The cost of `xen_version` on real Xen from one x86-64 dom0 (`benches/xen-cost-x86`).
#[derive(Clone, Debug, PartialEq)]
pub struct XenCost {
    /// The dom0's guest type.
    pub mode: Mode,
    /// Ticks of the 1,024-call loops: inline stub, through the page, and without a call.
    pub inline: u64,
    /// See `inline`.
    pub page: u64,
    /// See `inline`.
    pub empty: u64,
    /// Ticks of the empty loop run 2,048 times.
    pub empty2: u64,
    /// Calls per loop.
    pub calls: u64,
}

impl XenCost {
    /// Instructions (guest and Xen) per call with the inline stub, the loop's own cost taken off.
    pub fn per_inline(&self) -> f64 {
        self.inline.saturating_sub(self.empty) as f64 / self.calls as f64
    }

    /// Instructions per call through the hypercall page.
    pub fn per_page(&self) -> f64 {
        self.page.saturating_sub(self.empty) as f64 / self.calls as f64
    }

    /// Ticks per iteration of the empty loop (the constant of a tick reading cancelled).
    pub fn empty_slope(&self) -> f64 {
        self.empty2.saturating_sub(self.empty) as f64 / self.calls as f64
    }
}

/// Parses the dom0's console: `xen-cost <name> <n> <ticks>` lines and `xen-cost done`; fails unless the
/// dom0 finished, is of `mode`, and its calls returned Xen's version inline and through the page.
pub fn parse_xen_cost(mode: Mode, console: &str) -> Result<XenCost> {
    let lines = CostLines::parse("the x86 xen-cost dom0", console)?;
    if lines.get("version-ok")?.1 != 1 {
        bail!("xen_version did not return Xen's version inline and through the page:\n{console}");
    }
    if lines.get("pvh")?.1 != u64::from(mode == Mode::Hvm) {
        bail!("the dom0 did not run as {}:\n{console}", mode.name());
    }
    let (calls, inline) = lines.get("inline")?;
    let (_, page) = lines.get("page")?;
    let (_, empty) = lines.get("empty")?;
    let (n2, empty2) = lines.get("empty2")?;
    if calls == 0 || n2 != 2 * calls || inline <= empty || page <= empty || empty2 <= empty {
        bail!("implausible x86 xen-cost figures:\n{console}");
    }
    Ok(XenCost {
        mode,
        inline,
        page,
        empty,
        empty2,
        calls,
    })
}

/// Fails unless the empty loop costs the same per iteration in every dom0 (within 1 %): the TSC counts
/// instructions in PV (native `rdtsc`) and PVH (`rdtsc` emulated by Xen, a constant per reading) alike.
pub fn check_slopes(costs: &[XenCost]) -> Result<()> {
    let Some(first) = costs.first() else {
        bail!("no x86 xen-cost figures");
    };
    for c in costs {
        let (a, b) = (first.empty_slope(), c.empty_slope());
        if a <= 0.0 || (a - b).abs() > a / 100.0 {
            bail!(
                "the empty loop costs {a:.2} ticks per iteration in the {} dom0 and {b:.2} in the {} \
                 dom0: the TSC does not count instructions alike",
                first.mode.name(),
                c.mode.name()
            );
        }
    }
    Ok(())
}

/// Builds `benches/xen-cost-x86` for PV (`syscall`) and PVH (`vmmcall`), boots each as dom0 on Debian's
/// Xen 4.17 for amd64 under QEMU with `-icount shift=0`, and returns the figures.
pub fn xen_cost() -> Result<Vec<XenCost>> {
    setup::toolchain()?;
    setup::debian(&[setup::QEMU_X86])?;
    let xen = crate::x86::release_xen()?;
    let mut out = Vec::new();
    for mode in Mode::ALL {
        let dir = util::target_dir().join("xen-cost-x86").join(mode.name());
        util::cross_build(
            &dir,
            "xen-hypercall-bench-xen-cost-x86",
            "x86_64-unknown-none",
            "s",
            "-Crelocation-model=static",
            &[mode.feature()],
        )?;
        let image = dir.join("x86_64-unknown-none/release/xen-cost-x86");
        let xmode = match mode {
            Mode::Pv => crate::x86::Mode::Pv,
            Mode::Hvm => crate::x86::Mode::Pvh,
        };
        let boot = Machine {
            timeout: Duration::from_secs(90),
            done: &|o: &str| o.contains("xen-cost done") || o.contains("xen-cost panic"),
            qemu_args: &["-icount", "shift=0"],
            ..crate::x86::machine(&image, xmode)
        }
        .boot(&xen)?;
        if boot.timed_out {
            bail!("{} timed out on Xen:\n{}", image.display(), boot.output);
        }
        out.push(
            parse_xen_cost(mode, &boot.output).with_context(|| format!("{} dom0", mode.name()))?,
        );
    }
    check_slopes(&out)?;
    Ok(out)
}

/// The real-Xen table for x86-64.
pub fn xen_cost_markdown(costs: &[XenCost]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### The cost of a hypercall on real Xen, x86-64 (Xen 4.17 amd64 under QEMU `-cpu max`, \
         `-icount shift=0`)\n\n\
         Instructions executed by guest and Xen together per `xen_version(XENVER_version)`, from the TSC \
         (one tick per instruction; a PVH dom0's `rdtsc` is emulated by Xen, a constant per reading that the \
         empty loop cancels), 1,024 calls, the loop's own cost taken off. Inline: the raw stub; page: \
         `outline::per_call` through the hypercall page Xen filled.\n"
    );
    let _ = writeln!(
        o,
        "| dom0 | inline | through the page | page − inline | share of a call | empty loop per iteration |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for c in costs {
        let d = c.per_page() - c.per_inline();
        let _ = writeln!(
            o,
            "| {} | {:.1} | {:.1} | {d:.1} | {:.2} % | {:.2} |",
            match c.mode {
                Mode::Pv => "PV (`syscall`)",
                Mode::Hvm => "PVH (`vmmcall`)",
            },
            c.per_inline(),
            c.per_page(),
            100.0 * d / c.per_inline(),
            c.empty_slope()
        );
    }
    o
}

/// The real-Xen figures as a JSON array.
pub fn xen_cost_json(costs: &[XenCost]) -> String {
    let rows: Vec<String> = costs
        .iter()
        .map(|c| {
            format!(
                "{{\"guest\":\"{}\",\"inline_per_call\":{:.1},\"page_per_call\":{:.1}}}",
                c.mode.name(),
                c.per_inline(),
                c.per_page()
            )
        })
        .collect();
    format!("[{}]", rows.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_lines_are_not_counts() {
        let d = parse(&format!("insns-x86\n{}", crate::bench::ERRNO_SAMPLE)).unwrap();
        assert_eq!(d.len(), 2);
        assert!(!d.contains_key("errno"));
    }

    /// The report's typed rows end with the instruction sets this module measures.
    #[test]
    fn the_report_names_these_isas() {
        assert!(crate::bench::TYPED_ISAS.ends_with(&ISAS));
    }

    /// An image from raw code at 0x1000 with the page at 0x2000 (code and page in one `.text`).
    fn image(mode: Mode, code: &[u8], syms: &[(&str, u64, u64)]) -> Image {
        let mut bytes = vec![0xccu8; 0x2000];
        bytes[..code.len()].copy_from_slice(code);
        for nr in 0..128u32 {
            if nr != 23 {
                let e = mode.page_entry(nr);
                let at = 0x1000 + nr as usize * 32;
                bytes[at..at + e.len()].copy_from_slice(&e);
            }
        }
        let mut syms: Vec<Symbol> = syms
            .iter()
            .map(|(n, a, s)| (n.to_string(), *a, *s))
            .collect();
        syms.push(("xen_hypercall_page".into(), 0x2000, 4096));
        Image {
            code: bytes,
            base: 0x1000,
            syms,
            page: 0x2000,
        }
    }

    /// `call rel32` at `from` to `to`.
    fn call(from: u64, to: u64) -> Vec<u8> {
        let rel = (to as i64 - (from as i64 + 5)) as i32;
        let mut v = vec![0xe8];
        v.extend(rel.to_le_bytes());
        v
    }

    #[test]
    fn page_entries_are_xens() {
        // Decoded: PV = push rcx; push r11; mov eax, 18; syscall; pop r11; pop rcx; ret.
        let pv = Mode::Pv.page_entry(18);
        let d: Vec<Mnemonic> = Decoder::with_ip(64, &pv, 0, DecoderOptions::NONE)
            .into_iter()
            .map(|i| i.mnemonic())
            .collect();
        assert_eq!(
            d,
            [
                Mnemonic::Push,
                Mnemonic::Push,
                Mnemonic::Mov,
                Mnemonic::Syscall,
                Mnemonic::Pop,
                Mnemonic::Pop,
                Mnemonic::Ret
            ]
        );
        let hvm = Mode::Hvm.page_entry(18);
        let d: Vec<Mnemonic> = Decoder::with_ip(64, &hvm, 0, DecoderOptions::NONE)
            .into_iter()
            .map(|i| i.mnemonic())
            .collect();
        assert_eq!(d, [Mnemonic::Mov, Mnemonic::Vmmcall, Mnemonic::Ret]);
        assert_eq!(&hvm[1..5], &18u32.to_le_bytes());
    }

    #[test]
    fn paths_follow_calls_into_stubs_and_the_page() {
        // site: mov eax, 0x30 (5); vmmcall (3); call stub (5); ret. stub at 0x1100: jmp page+0x30*32.
        let mut code = vec![0xb8, 0x30, 0, 0, 0, 0x0f, 0x01, 0xd9];
        code.extend(call(0x1008, 0x1100));
        code.push(0xc3);
        code.resize(0x100, 0xcc);
        let target = 0x2000 + 0x30 * 32;
        let rel = (target as i64 - (0x1100 + 5)) as i32;
        code.push(0xe9);
        code.extend(rel.to_le_bytes());
        let d = demangle_stub_name();
        let img = image(
            Mode::Hvm,
            &code,
            &[("site_x", 0x1000, 14), (d.as_str(), 0x1100, 5)],
        );
        // 4 (site) + 1 (jmp) + 3 (entry); 2 traps.
        assert_eq!(
            path(&img, "site_x").unwrap(),
            Path {
                instructions: Some(8),
                traps: 2
            }
        );
        let pv = image(
            Mode::Pv,
            &code,
            &[("site_x", 0x1000, 14), (d.as_str(), 0x1100, 5)],
        );
        assert_eq!(path(&pv, "site_x").unwrap().instructions, Some(12));
    }

    /// A mangled per-hypercall stub name (`xen_hypercall::outline::per_call::hypercall0::<48>`).
    fn demangle_stub_name() -> String {
        let n = "_ZN13xen_hypercall7outline8per_call10hypercall017h0123456789abcdefE".to_string();
        assert!(demangle(&n).starts_with("xen_hypercall::outline::per_call::hypercall0"));
        n
    }

    #[test]
    fn a_branch_makes_the_path_unknown_and_its_traps_static() {
        // vmmcall; test rax, rax; jne +1; ret; ret
        let code = [0x0f, 0x01, 0xd9, 0x48, 0x85, 0xc0, 0x75, 0x01, 0xc3, 0xc3];
        let img = image(Mode::Hvm, &code, &[("typed_x", 0x1000, 10)]);
        assert_eq!(
            path(&img, "typed_x").unwrap(),
            Path {
                instructions: None,
                traps: 1
            }
        );
    }

    fn empty_and_site() -> Image {
        // site_empty: xor eax, eax; ret (2). site_inline_0: mov eax, 0x30; syscall; ret (3, 1 trap).
        let mut code = vec![0x31, 0xc0, 0xc3];
        code.resize(0x10, 0xcc);
        code.extend([0xb8, 0x30, 0, 0, 0, 0x0f, 0x05, 0xc3]);
        image(
            Mode::Pv,
            &code,
            &[("site_empty", 0x1000, 3), ("site_inline_0", 0x1010, 8)],
        )
    }

    #[test]
    fn counts_take_off_the_calling_sequence_and_the_handler_per_trap() {
        let img = empty_and_site();
        // Empty delta 10 (2 own); the site's 3 + 2 handler instructions: 10 - 2 + 3 + 2 = 13.
        let d = parse("SeaBIOS..\ninsns-x86\nsite_empty 10\nsite_inline_0 13\ndone\n").unwrap();
        let c = counts(Mode::Pv, &d, &img).unwrap();
        assert_eq!(c[0].instructions, 3);
        assert!(c[0].checked);
    }

    #[test]
    fn the_control_catches_a_wrong_handler_cost() {
        // Negative control: the delta of an HVM handler (3) on the PV image is one too many.
        let img = empty_and_site();
        let d = parse("insns-x86\nsite_empty 10\nsite_inline_0 14\ndone\n").unwrap();
        let e = counts(Mode::Pv, &d, &img).unwrap_err().to_string();
        assert!(
            e.contains("measured 4 instructions, but its path is 3"),
            "{e}"
        );
    }

    fn work_counts(percall: u64, linux: u64, unikraft: u64) -> Results {
        let mut r = Results::default();
        for isa in ISAS {
            for (k, v) in [
                ("percall", percall),
                ("linux", linux),
                ("unikraft", unikraft),
            ] {
                r.icount.insert((isa, format!("work_{k}")), v);
            }
        }
        r
    }

    #[test]
    fn the_page_path_must_keep_up_with_the_c_macros() {
        assert!(check_page_path(&work_counts(159, 161, 159)).is_ok());
        assert!(check_page_path(&work_counts(150, 161, 159)).is_ok());
        // The figures of per-hypercall stubs that `jmp` to the entry (PV: 168 against 159).
        let e = check_page_path(&work_counts(168, 161, 159))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x86-pv: the per-hypercall work loop through the page executes 168 instructions, 9 more than the unikraft macros' 159"),
            "{e}"
        );
        assert!(e.contains("x86-hvm"), "{e}");
        // A missing figure fails.
        let mut r = work_counts(159, 161, 159);
        r.icount.remove(&("x86-hvm", "work_unikraft".to_string()));
        let e = check_page_path(&r).unwrap_err().to_string();
        assert!(e.contains("x86-hvm: no count of work_unikraft"), "{e}");
    }

    #[test]
    fn coverage_requires_every_shape() {
        let c = vec![Count {
            site: "site_inline_0".into(),
            instructions: 3,
            checked: true,
        }];
        let e = require_coverage(Mode::Pv, &c).unwrap_err().to_string();
        assert!(
            e.contains("x86-pv site_inline_1") && e.contains("work_unikraft"),
            "{e}"
        );
        let all: Vec<Count> = required()
            .into_iter()
            .map(|site| Count {
                site,
                instructions: 1,
                checked: true,
            })
            .collect();
        require_coverage(Mode::Pv, &all).unwrap();
        let mut one_unchecked = all.clone();
        one_unchecked[3].checked = false;
        assert!(require_coverage(Mode::Pv, &one_unchecked).is_err());
    }

    #[test]
    fn unfinished_or_unstarted_runs_are_errors() {
        assert!(parse("insns-x86\nsite_empty 12\n").is_err());
        assert!(parse("site_empty 12\ndone\n").is_err());
        assert!(parse("insns-x86\nsite_empty x\ndone\n").is_err());
    }

    #[test]
    fn call_sites_count_the_trap_and_its_movs() {
        // site_inline_1: mov eax, 0x31 (5); mov edi, 7 (5); add rbx, 1 (4); vmmcall (3); ret.
        let code = [
            0xb8, 0x31, 0, 0, 0, 0xbf, 7, 0, 0, 0, 0x48, 0x83, 0xc3, 0x01, 0x0f, 0x01, 0xd9, 0xc3,
        ];
        let img = image(Mode::Hvm, &code, &[("site_inline_1", 0x1000, 18)]);
        let z = measure_function(&img, "site_inline_1").unwrap();
        assert!(z.inline_hvc);
        assert_eq!(z.call_site, 13);
        assert_eq!(z.function, 18);
    }

    #[test]
    fn xen_cost_is_parsed_and_checked() {
        let pv = "(XEN) ...\nxen-cost version-ok 1 1\nxen-cost pvh 1 0\nxen-cost inline 1024 283656\n\
                  xen-cost page 1024 290824\nxen-cost empty 1024 6151\nxen-cost empty2 2048 12295\n\
                  xen-cost done\n";
        let c = parse_xen_cost(Mode::Pv, pv).unwrap();
        assert_eq!(c.per_inline(), (283656.0 - 6151.0) / 1024.0);
        assert_eq!(c.per_page(), (290824.0 - 6151.0) / 1024.0);
        assert_eq!(c.empty_slope(), 6.0);
        // Negative controls: wrong guest type, no version, unfinished, a missing line.
        assert!(parse_xen_cost(Mode::Hvm, pv).is_err());
        assert!(parse_xen_cost(Mode::Pv, &pv.replace("version-ok 1 1", "version-ok 1 0")).is_err());
        assert!(parse_xen_cost(Mode::Pv, &pv.replace("xen-cost done\n", "")).is_err());
        assert!(parse_xen_cost(Mode::Pv, &pv.replace("xen-cost empty2 2048 12295\n", "")).is_err());
        // PVH: a constant per reading, the same slope.
        let pvh = "xen-cost version-ok 1 1\nxen-cost pvh 1 1\nxen-cost inline 1024 5725479\n\
                   xen-cost page 1024 5728552\nxen-cost empty 1024 11564\n\
                   xen-cost empty2 2048 17708\nxen-cost done\n";
        let h = parse_xen_cost(Mode::Hvm, pvh).unwrap();
        check_slopes(&[c.clone(), h.clone()]).unwrap();
        // A TSC that does not count instructions (twice as fast in one dom0) is caught.
        let fast = XenCost {
            empty2: h.empty + 2 * 6144,
            ..h
        };
        assert!(check_slopes(&[c, fast]).is_err());
        assert!(check_slopes(&[]).is_err());
    }
}
