//! The x86-64 real-Xen runs: Debian's Xen 4.17 for amd64 (the release build) and a debug build from
//! Debian's source with the native compiler, under `qemu-system-x86_64` (TCG, `-cpu max`: an AMD CPU with
//! SVM and nested paging). The example guest (`guests-x86/`) boots as a 64-bit PV dom0 and as a PVH dom0,
//! with inline stubs (`syscall` for PV, `vmmcall` for PVH on this AMD CPU) and through the hypercall page
//! (one ELF for both), on both builds; the console decides, as for ARM (`xen.rs`).
//!
//! Events: both guest types map the shared info page (PVH: `add_to_physmap`; PV: `update_va_mapping` of
//! the machine frame `start_info` names) and find a loopback event there; a PVH guest also takes it as an
//! interrupt on the callback vector through a registered `vcpu_info`, and shows that a masked port and
//! disabled interrupts hold the upcall back (`guests-x86/src/events.rs`).
//!
//! Negative controls: a guest whose stub declares an argument register preserved passes on release Xen and
//! is caught on debug Xen (which poisons it) and by the disassembly check; a guest whose inline trap is
//! `vmcall` (Intel's) on this AMD CPU must not pass.
//!
//! The disassembly checks (iced-x86) read each guest's ELF: every trap is the one its build chose (none but
//! the page's in the page build, whose calls enter the page); after every `syscall`, `rcx` and `r11` are
//! written before they are read; between the two traps of each register-reuse pair every argument
//! register of the call's arity is set again (Xen's debug build poisons them), from a register live across
//! the first trap for at least one of them.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess,
    OpKind, Register,
};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::scenario::{Boot, Layout, Machine, XenBuild, missing_checks, tail};
use crate::{setup, util, xensrc};

/// Debian's Xen hypervisor package for amd64 and its (gzipped) image.
const XEN_PACKAGE: &str = "xen-hypervisor-4.17-amd64";
const XEN_BINARY: &str = "boot/xen-4.17-amd64.gz";
/// How long one boot may take before it counts as hung.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The checks every x86 guest must report as `ok` (through the typed API unless marked raw).
pub const CHECKS: [&str; 22] = [
    "version",
    "evtchn::alloc_unbound",
    "evtchn::send",
    "evtchn::status",
    "evtchn::close",
    "evtchn::send after close",
    "grant_table::query_size",
    "multicall [version, pagesize, unknown]",
    "start info",
    "hvm::set_callback_vector",
    "evtchn::Events on the shared info page",
    "time::Clock",
    "sched::poll 20 ms",
    "one-shot timer 20 ms",
    "wallclock",
    "pair1 sysctl (raw)",
    "pair2 xen_version extraversion (raw)",
    "pair2 version::extraversion (typed)",
    "pair3 grant_table_op query_size (raw)",
    "pair3 grant_table::query_size (typed)",
    "pair4 grant_table_op query_size, 4-argument stub (raw)",
    "pair5 hypfs_op get_version (raw)",
];

/// The checks only a PV guest makes: it maps the shared info page at the machine frame `start_info`
/// names (and Xen refuses a frame it does not own).
pub const PV_CHECKS: [&str; 1] = ["mmu::update_va_mapping of the shared info page"];

/// The checks only a PVH guest makes: events as interrupts on the callback vector through a registered
/// `vcpu_info`, and the two controls (a masked port, interrupts disabled) that must hold the upcall back.
pub const PVH_CHECKS: [&str; 4] = [
    "vcpu::register_vcpu_info",
    "upcall on the callback vector",
    "upcall held while the port is masked",
    "upcall held while interrupts are disabled",
];

/// The checks a guest of `mode` must report as `ok`.
pub fn checks(mode: Mode) -> Vec<&'static str> {
    let mut v = CHECKS.to_vec();
    match mode {
        Mode::Pv => v.extend(PV_CHECKS),
        Mode::Pvh => v.extend(PVH_CHECKS),
    }
    v
}

/// The negative control's check: `ok` on release Xen, `FAIL` on debug Xen.
pub const CONTROL_CHECK: &str = "pair3 under-declared stub (control)";

/// The pair functions of the raw stubs and the arity of their stub.
pub const PAIR_FUNCTIONS: [(&str, usize); 5] = [
    ("pair1_sysctl", 1),
    ("pair2_xen_version", 2),
    ("pair3_grant_table_op", 3),
    ("pair4_grant_table_op", 4),
    ("pair5_hypfs_op", 5),
];

/// The pair functions of the typed API and x86's declared arity of their call.
pub const TYPED_PAIR_FUNCTIONS: [(&str, usize); 2] = [
    ("pair2_typed_extraversion", 2),
    ("pair3_typed_query_size", 3),
];

/// Xen's x86-64 argument registers, in order.
const ARGS: [Register; 5] = [
    Register::RDI,
    Register::RSI,
    Register::RDX,
    Register::R10,
    Register::R8,
];

/// How the guest enters Xen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stubs {
    /// Inline `syscall` (PV).
    Syscall,
    /// Inline `vmmcall` (PVH on AMD).
    Vmmcall,
    /// Inline `vmcall` (PVH on Intel): the wrong trap on this AMD CPU, a negative control.
    Vmcall,
    /// The hypercall page.
    Page,
}

/// One guest build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Build {
    pub stubs: Stubs,
    /// The negative control with an under-declared stub.
    pub underdeclared: bool,
}

impl Build {
    pub fn name(self) -> String {
        let s = match self.stubs {
            Stubs::Syscall => "syscall",
            Stubs::Vmmcall => "vmmcall",
            Stubs::Vmcall => "vmcall",
            Stubs::Page => "page",
        };
        if self.underdeclared {
            format!("{s}-underdeclared")
        } else {
            s.to_string()
        }
    }

    fn features(self) -> Vec<&'static str> {
        let mut f = match self.stubs {
            Stubs::Syscall => vec!["pv"],
            Stubs::Vmmcall => vec!["amd"],
            Stubs::Vmcall => vec![],
            Stubs::Page => vec!["outline"],
        };
        if self.underdeclared {
            f.push("underdeclared");
        }
        f
    }

    /// The trap mnemonic its inline stubs use (none for the page).
    fn trap(self) -> Option<Mnemonic> {
        match self.stubs {
            Stubs::Syscall => Some(Mnemonic::Syscall),
            Stubs::Vmmcall => Some(Mnemonic::Vmmcall),
            Stubs::Vmcall => Some(Mnemonic::Vmcall),
            Stubs::Page => None,
        }
    }
}

/// What kind of dom0 Xen builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pv,
    Pvh,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Pv => "PV",
            Mode::Pvh => "PVH",
        }
    }
}

/// What a run must show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Every check ok, dom0 halted.
    Pass,
    /// Every check ok but the control, which must be `FAIL` (debug Xen caught it).
    ControlCaught,
    /// The guest must not get through: no `summary: all` line (a wrong trap).
    Refused,
}

/// Every run: (build, mode, Xen build, expectation).
pub fn runs() -> Vec<(Build, Mode, XenBuild, Expect)> {
    let b = |stubs, underdeclared| Build {
        stubs,
        underdeclared,
    };
    let mut v = Vec::new();
    for xen in [XenBuild::Release, XenBuild::Debug] {
        v.push((b(Stubs::Syscall, false), Mode::Pv, xen, Expect::Pass));
        v.push((b(Stubs::Vmmcall, false), Mode::Pvh, xen, Expect::Pass));
        v.push((b(Stubs::Page, false), Mode::Pv, xen, Expect::Pass));
        v.push((b(Stubs::Page, false), Mode::Pvh, xen, Expect::Pass));
        let control = match xen {
            XenBuild::Release => Expect::Pass,
            XenBuild::Debug => Expect::ControlCaught,
        };
        v.push((b(Stubs::Syscall, true), Mode::Pv, xen, control));
        v.push((b(Stubs::Vmmcall, true), Mode::Pvh, xen, control));
    }
    v.push((
        b(Stubs::Vmcall, false),
        Mode::Pvh,
        XenBuild::Release,
        Expect::Refused,
    ));
    v
}

/// Debian's release Xen for amd64, unzipped for QEMU's `-kernel` (a 32-bit multiboot ELF).
pub fn release_xen() -> Result<PathBuf> {
    let dir = util::target_dir().join("xen-amd64");
    let out = dir.join("xen-4.17-amd64");
    if out.is_file() {
        return Ok(out);
    }
    let gz = crate::xen::fetch_package("amd64", XEN_PACKAGE, XEN_BINARY, &dir)?;
    let data = Command::new("gzip")
        .arg("-dc")
        .arg(&gz)
        .output()
        .context("running gzip")?;
    if !data.status.success() {
        bail!("gzip -dc {} failed", gz.display());
    }
    std::fs::write(&out, data.stdout)?;
    Ok(out)
}

/// The C library's headers, for the host tools Xen's build compiles first (`fixdep`, Kconfig, `symbols`,
/// `mkelf32`): gcc only recommends them, and a machine that installs no recommendations lacks them.
const LIBC_DEV: setup::Package = setup::Package::new("libc6-dev", "/usr/include/stdio.h");

/// The debug Xen for x86-64, built from Debian's source (a second unpacked tree, so that the arm64 build's
/// objects stay) with the native compiler; cached under `target/xen-src/`.
pub fn debug_xen() -> Result<PathBuf> {
    let dir = xensrc::dir();
    let image = dir.join("xen-debug-x86");
    if image.is_file() {
        return Ok(image);
    }
    xensrc::source()?;
    setup::debian(&[
        setup::GCC,
        setup::FLEX,
        setup::BISON,
        setup::MAKE,
        setup::DPKG_DEV,
        setup::PYTHON3,
        LIBC_DEV,
    ])?;
    let tree = dir.join("src-x86");
    if !tree.join("xen/Makefile").is_file() {
        let dl = dir.join("download");
        xensrc::unpack(&dl, &tree, "no .dsc under target/xen-src/download")?;
    }
    eprintln!("x86: building a debug Xen for x86-64 (a few minutes on 2 cores)");
    xensrc::build_debug(&tree, &["XEN_TARGET_ARCH=x86_64"], &image)?;
    Ok(image)
}

/// Builds the guests of `guests-x86/` (for `x86_64-unknown-none`, linked static) with `features`;
/// returns cargo's target directory of that build (the binaries are under
/// `x86_64-unknown-none/release/`).
pub fn build_guests(features: &[&str]) -> Result<PathBuf> {
    let dir = util::target_dir().join("guests-x86");
    util::cross_build(
        &dir,
        "xen-hypercall-guests-x86",
        "x86_64-unknown-none",
        "s",
        "-Crelocation-model=static",
        features,
    )?;
    Ok(dir)
}

/// Builds a guest; returns its ELF (copied out of cargo's output).
pub fn build(b: Build) -> Result<PathBuf> {
    let dir = build_guests(&b.features())?;
    let built = dir.join("x86_64-unknown-none/release/dom0-x86");
    let out = dir.join(format!("dom0-x86-{}.elf", b.name()));
    std::fs::copy(&built, &out).with_context(|| format!("copying {}", built.display()))?;
    Ok(out)
}

/// The machine booting `guest` as dom0 of `mode` (an x86-64 Xen): a PVH dom0 has no IOMMU to set up. The
/// run is over when Xen reports dom0's end.
pub fn machine(guest: &std::path::Path, mode: Mode) -> Machine<'static> {
    Machine {
        layout: Layout::X86Dom0(guest.to_path_buf()),
        xen_args: match mode {
            Mode::Pvh => "dom0=pvh dom0-iommu=none",
            Mode::Pv => "",
        },
        cpus: 1,
        timeout: TIMEOUT,
        done: &|o: &str| {
            [
                "Hardware Dom0 halted",
                "Hardware Dom0 crashed",
                "Hardware Dom0 shutdown",
            ]
            .iter()
            .any(|m| o.contains(m))
        },
        qemu_args: &[],
    }
}

/// Judges a run's console against what it must show.
pub fn judge(
    output: &str,
    timed_out: bool,
    xen: XenBuild,
    mode: Mode,
    expect: Expect,
) -> Vec<String> {
    let lines: Vec<&str> = output.lines().collect();
    let has = |p: &str| lines.iter().any(|l| l.starts_with(p));
    let mut problems = Vec::new();
    if !output.contains(xen.banner_flag()) {
        problems.push(format!("Xen's banner does not say {}", xen.banner_flag()));
    }
    if expect == Expect::Refused {
        if has("summary: all ") {
            problems.push("the guest with the wrong trap got through".into());
        }
        // An undefined instruction without an IDT is a triple fault: Xen shuts dom0 down (reboot).
        if !output.contains("Hardware Dom0 crashed")
            && !output.contains("Hardware Dom0 shutdown")
            && !timed_out
        {
            problems.push("Xen did not report dom0 crashed or shut down".into());
        }
        return problems;
    }
    let missing = missing_checks(&lines, checks(mode));
    if !missing.is_empty() {
        problems.push(format!("no `ok` line for {}", missing.join(", ")));
    }
    for l in lines.iter().filter(|l| l.starts_with("FAIL")) {
        if !(expect == Expect::ControlCaught && l.starts_with(&format!("FAIL {CONTROL_CHECK}:"))) {
            problems.push(l.to_string());
        }
    }
    match expect {
        Expect::Pass => {
            if !has("summary: all ") {
                problems.push("no `summary: all …` line".into());
            }
            if !output.contains("Hardware Dom0 halted") {
                problems.push("Xen did not report dom0 halted".into());
            }
        }
        Expect::ControlCaught => {
            if !has(&format!("FAIL {CONTROL_CHECK}:")) {
                problems.push("debug Xen did not catch the under-declared stub".into());
            }
        }
        Expect::Refused => {}
    }
    if timed_out {
        problems.push(format!("timed out after {} s", TIMEOUT.as_secs()));
    }
    problems
}

/// A function of the ELF: its address and decoded instructions.
struct Func {
    insns: Vec<Instruction>,
}

/// A symbol: name, address, size.
type Symbol = (String, u64, u64);

/// The `.text` bytes, their address, and the symbols.
fn text_and_symbols(elf: &[u8]) -> Result<(Vec<u8>, u64, Vec<Symbol>)> {
    let file = object::File::parse(elf).context("not an ELF file")?;
    let text = file.section_by_name(".text").context("no .text")?;
    let syms = file
        .symbols()
        .filter_map(|s| Some((s.name().ok()?.to_string(), s.address(), s.size())))
        .collect();
    Ok((text.data()?.to_vec(), text.address(), syms))
}

/// `XEN_ELFNOTE_HYPERCALL_PAGE` (`public/elfnote.h`).
const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;

/// The notes of a `.note.Xen` section: (type, descriptor) of each note named `"Xen"`.
fn xen_notes(data: &[u8]) -> Result<Vec<(u32, Vec<u8>)>> {
    let word = |at: usize| -> Result<u32> {
        let b = data.get(at..at + 4).context(".note.Xen is truncated")?;
        Ok(u32::from_le_bytes(b.try_into()?))
    };
    let pad = |n: usize| n.div_ceil(4) * 4;
    let mut notes = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let (namesz, descsz, ty) = (word(at)? as usize, word(at + 4)? as usize, word(at + 8)?);
        let name = data
            .get(at + 12..at + 12 + namesz)
            .context(".note.Xen: a name past the end")?;
        let desc_at = at + 12 + pad(namesz);
        let desc = data
            .get(desc_at..desc_at + descsz)
            .context(".note.Xen: a descriptor past the end")?;
        if name == b"Xen\0" {
            notes.push((ty, desc.to_vec()));
        }
        at = desc_at + pad(descsz);
    }
    Ok(notes)
}

/// Problems with the `HYPERCALL_PAGE` note of a guest that goes through the page: exactly one, its
/// 8-byte descriptor the address of `xen_hypercall_page`.
fn check_page_note(notes: &[(u32, Vec<u8>)], page: u64) -> Vec<String> {
    let found: Vec<&Vec<u8>> = notes
        .iter()
        .filter(|(t, _)| *t == XEN_ELFNOTE_HYPERCALL_PAGE)
        .map(|(_, d)| d)
        .collect();
    match found.as_slice() {
        [d] if d.as_slice() == page.to_le_bytes() => Vec::new(),
        [d] => vec![format!(
            "the HYPERCALL_PAGE note names {d:02x?}, not xen_hypercall_page ({page:#x})"
        )],
        [] => vec!["no HYPERCALL_PAGE note (a PV guest's page would stay int3)".into()],
        _ => vec![format!("{} HYPERCALL_PAGE notes", found.len())],
    }
}

fn decode(bytes: &[u8], addr: u64) -> Vec<Instruction> {
    Decoder::with_ip(64, bytes, addr, DecoderOptions::NONE)
        .into_iter()
        .collect()
}

fn function(elf: &[u8], name: &str) -> Result<Option<Func>> {
    let (text, base, syms) = text_and_symbols(elf)?;
    let Some((_, addr, size)) = syms.iter().find(|(n, _, _)| n == name) else {
        return Ok(None);
    };
    let start = usize::try_from(addr - base)?;
    let end = start + usize::try_from(*size)?;
    let bytes = text.get(start..end).context("symbol outside .text")?;
    Ok(Some(Func {
        insns: decode(bytes, *addr),
    }))
}

fn is_trap(m: Mnemonic) -> bool {
    matches!(m, Mnemonic::Syscall | Mnemonic::Vmcall | Mnemonic::Vmmcall)
}

/// Registers `i` writes (full 64-bit registers) and reads.
fn effects(i: &Instruction) -> (Vec<Register>, Vec<Register>) {
    let mut f = InstructionInfoFactory::new();
    let info = f.info(i);
    let (mut w, mut r) = (Vec::new(), Vec::new());
    for u in info.used_registers() {
        let reg = u.register().full_register();
        match u.access() {
            OpAccess::Write | OpAccess::CondWrite => w.push(reg),
            OpAccess::Read | OpAccess::CondRead => r.push(reg),
            OpAccess::ReadWrite | OpAccess::ReadCondWrite => {
                r.push(reg);
                w.push(reg);
            }
            _ => {}
        }
    }
    // `xor r, r` reads nothing.
    if i.mnemonic() == Mnemonic::Xor
        && i.op_count() == 2
        && i.op0_kind() == OpKind::Register
        && i.op1_kind() == OpKind::Register
        && i.op0_register() == i.op1_register()
    {
        r.clear();
    }
    (w, r)
}

/// The pair check: between the two traps of `f`, every argument register of `arity` is set again, and at
/// least one from a register that lives across the first trap (`mov reg, reg`).
pub fn check_pair(insns: &[Instruction], arity: usize) -> Result<String, String> {
    let from_regs = set_again(insns, arity)?;
    if from_regs == 0 {
        return Err(
            "no argument of the second call comes from a register kept across the first".into(),
        );
    }
    Ok(format!(
        "{from_regs} of {arity} argument(s) reloaded from registers kept across the trap"
    ))
}

/// The check of a typed pair: every argument register of `arity` is set again between the two traps (a
/// typed wrapper may rebuild its arguments, e.g. a pointer into its own stack frame, from scratch).
pub fn check_typed_pair(insns: &[Instruction], arity: usize) -> Result<String, String> {
    let from_regs = set_again(insns, arity)?;
    Ok(format!(
        "{arity} of {arity} argument(s) set again, {from_regs} from registers kept across the trap"
    ))
}

/// Between the two traps of `insns`, every argument register of `arity` (and `rax`) is set again; returns
/// how many arguments come from a register kept across the first trap.
fn set_again(insns: &[Instruction], arity: usize) -> Result<usize, String> {
    let traps: Vec<usize> = insns
        .iter()
        .enumerate()
        .filter(|(_, i)| is_trap(i.mnemonic()))
        .map(|(n, _)| n)
        .collect();
    let [t1, t2] = traps[..] else {
        return Err(format!("{} traps, expected 2", traps.len()));
    };
    let mut from_regs = 0;
    for reg in ARGS[..arity].iter().chain([&Register::RAX]) {
        let Some(w) = (t1 + 1..t2)
            .rev()
            .find(|&n| effects(&insns[n]).0.contains(reg))
        else {
            return Err(format!(
                "{reg:?} is not set again between the two traps (Xen's debug build poisons it)"
            ));
        };
        let i = &insns[w];
        if i.mnemonic() == Mnemonic::Mov
            && i.op1_kind() == OpKind::Register
            && *reg != Register::RAX
        {
            from_regs += 1;
        }
    }
    Ok(from_regs)
}

/// After a `syscall`, `rcx` and `r11` (which it overwrites) are written before they are read, up to the
/// end of the straight-line code that follows.
pub fn check_after_syscall(insns: &[Instruction]) -> Vec<String> {
    let mut problems = Vec::new();
    for (n, i) in insns.iter().enumerate() {
        if i.mnemonic() != Mnemonic::Syscall {
            continue;
        }
        for reg in [Register::RCX, Register::R11] {
            for j in &insns[n + 1..] {
                let (w, r) = effects(j);
                if r.contains(&reg) {
                    problems.push(format!(
                        "{reg:?} read at {:#x} after the syscall at {:#x}, which overwrote it",
                        j.ip(),
                        i.ip()
                    ));
                    break;
                }
                if w.contains(&reg)
                    || matches!(
                        j.flow_control(),
                        FlowControl::Return | FlowControl::UnconditionalBranch
                    )
                {
                    break;
                }
            }
        }
    }
    problems
}

/// Static checks of a guest ELF; returns (what the pairs show, problems).
pub fn check_elf(b: Build, elf: &[u8]) -> Result<(String, Vec<String>)> {
    let (text, base, syms) = text_and_symbols(elf)?;
    let (page, _, _) = syms
        .iter()
        .find(|(n, _, _)| n == "xen_hypercall_page")
        .map(|(_, a, s)| (*a, *s, ()))
        .unwrap_or((0, 0, ()));
    let insns = decode(&text, base);
    let mut problems = Vec::new();
    let in_page = |ip: u64| page != 0 && (page..page + 4096).contains(&ip);
    let traps: Vec<&Instruction> = insns
        .iter()
        .filter(|i| !in_page(i.ip()) && is_trap(i.mnemonic()))
        .collect();
    match b.trap() {
        Some(want) => {
            if traps.is_empty() {
                problems.push("no trap instruction in the guest".into());
            }
            for t in &traps {
                if t.mnemonic() != want {
                    problems.push(format!(
                        "{:?} at {:#x}, expected {want:?}",
                        t.mnemonic(),
                        t.ip()
                    ));
                }
            }
        }
        None => {
            if let Some(t) = traps.first() {
                problems.push(format!(
                    "{:?} at {:#x} in a guest that enters Xen through the page",
                    t.mnemonic(),
                    t.ip()
                ));
            }
            let into_page = insns
                .iter()
                .filter(|i| {
                    // A direct jump or call into the page (the per-hypercall stubs), or the page's
                    // address taken rip-relative (the per-arity stubs' `lea`).
                    (i.op0_kind() == OpKind::NearBranch64 && in_page(i.near_branch_target()))
                        || (i.is_ip_rel_memory_operand() && in_page(i.ip_rel_memory_address()))
                })
                .count();
            if page == 0 || into_page == 0 {
                problems.push("no stub enters the hypercall page".into());
            }
            let file = object::File::parse(elf).context("not an ELF file")?;
            let notes = match file.section_by_name(".note.Xen") {
                Some(s) => xen_notes(s.data()?)?,
                None => Vec::new(),
            };
            problems.extend(check_page_note(&notes, page));
        }
    }
    if b.stubs == Stubs::Syscall {
        problems.extend(check_after_syscall(&insns));
    }
    let mut shown = Vec::new();
    if b.trap().is_some() {
        for (name, arity) in PAIR_FUNCTIONS {
            let f = function(elf, name)?.with_context(|| format!("no function {name}"))?;
            match check_pair(&f.insns, arity) {
                Ok(s) => shown.push(format!("{name}: {s}")),
                Err(e) => problems.push(format!("{name}: {e}")),
            }
        }
        for (name, arity) in TYPED_PAIR_FUNCTIONS {
            let f = function(elf, name)?.with_context(|| format!("no function {name}"))?;
            match check_typed_pair(&f.insns, arity) {
                Ok(s) => shown.push(format!("{name}: {s}")),
                Err(e) => problems.push(format!("{name}: {e}")),
            }
        }
        if b.underdeclared {
            let f = function(elf, "pair3_underdeclared")?.context("no pair3_underdeclared")?;
            match check_pair(&f.insns, 3) {
                Ok(s) => problems.push(format!(
                    "the under-declared pair passes the disassembly check ({s}): the check is blind"
                )),
                Err(e) => shown.push(format!("pair3_underdeclared caught: {e}")),
            }
        }
    }
    Ok((shown.join("; "), problems))
}

/// One run's outcome.
pub struct Run {
    pub build: Build,
    pub mode: Mode,
    pub xen: XenBuild,
    pub expect: Expect,
    pub boot: Boot,
    pub problems: Vec<String>,
    pub pairs: String,
}

/// Builds every guest, checks its ELF, and boots it as each run says.
pub fn run_all() -> Result<Vec<Run>> {
    setup::debian(&[setup::QEMU_X86])?;
    let release = release_xen()?;
    let debug = debug_xen()?;
    let mut out = Vec::new();
    let mut built: Vec<(Build, PathBuf, String, Vec<String>)> = Vec::new();
    for (b, mode, xen, expect) in runs() {
        if !built.iter().any(|(x, ..)| *x == b) {
            let elf = build(b)?;
            let (pairs, problems) = check_elf(b, &std::fs::read(&elf)?)?;
            built.push((b, elf, pairs, problems));
        }
        let (_, elf, pairs, static_problems) = built
            .iter()
            .find(|(x, ..)| *x == b)
            .context("built guest")?;
        let path = match xen {
            XenBuild::Release => &release,
            XenBuild::Debug => &debug,
        };
        let boot = machine(elf, mode).boot(path)?;
        let mut problems = judge(&boot.output, boot.timed_out, xen, mode, expect);
        problems.extend(static_problems.iter().cloned());
        out.push(Run {
            build: b,
            mode,
            xen,
            expect,
            boot,
            problems,
            pairs: pairs.clone(),
        });
    }
    Ok(out)
}

fn verdict(r: &Run) -> String {
    if !r.problems.is_empty() {
        return format!("FAIL: {}", r.problems.join("; "));
    }
    let t = r.boot.elapsed.as_secs_f64();
    match r.expect {
        Expect::Pass => {
            let n = checks(r.mode).len();
            format!("PASS: {n}/{n} checks, dom0 halted ({t:.1} s)")
        }
        Expect::ControlCaught => {
            format!("PASS: debug Xen caught the under-declared stub ({t:.1} s)")
        }
        Expect::Refused => format!("PASS: the wrong trap did not get through ({t:.1} s)"),
    }
}

/// The report lines of the runs; the number that failed.
pub fn report(runs: &[Run]) -> (String, usize) {
    let mut o = String::new();
    let mut failed = 0;
    for r in runs {
        let ok = r.problems.is_empty();
        failed += usize::from(!ok);
        let _ = writeln!(
            o,
            "{:<5} xen {:<7} {:<4} {:<22} {}",
            if ok { "ok" } else { "FAIL" },
            r.xen.name(),
            r.mode.name(),
            r.build.name(),
            verdict(r)
        );
        if !ok {
            let _ = writeln!(o, "      last output:\n{}", tail(&r.boot.output, 12));
        }
    }
    for r in runs
        .iter()
        .filter(|r| r.xen == XenBuild::Release && !r.pairs.is_empty())
    {
        let _ = writeln!(o, "pairs in {} (disassembly): {}", r.build.name(), r.pairs);
    }
    (o, failed)
}

/// The typed API checks arities against the guest type's column of Xen's table: the example guest with
/// feature `pv-only-call` makes `fpu_taskswitch` (arity 1 for 64-bit PV, no HVM/PVH handler) through
/// `xen::raw::call1`. A PV build must compile it; an HVM/PVH build must refuse it with the arity message.
/// Feature `pv-only-mmu` calls `mmu::update_va_mapping`, which must compile for PV and through the page
/// (`outline`, which serves PV guests) and must not exist in an inline HVM/PVH build.
pub fn check_arity_table() -> Result<String> {
    let dir = util::target_dir().join("guests-x86");
    let build = |features: &str| -> Result<std::process::Output> {
        let mut cmd = util::cross_build_command(
            &dir,
            "xen-hypercall-guests-x86",
            "x86_64-unknown-none",
            "s",
            "-Crelocation-model=static",
            &[features],
        );
        eprintln!("$ {}", util::show(&cmd));
        cmd.output()
            .with_context(|| format!("cannot start {}", util::show(&cmd)))
    };
    let pv = build("pv,pv-only-call")?;
    if !pv.status.success() {
        bail!(
            "a PV guest making fpu_taskswitch through the typed API does not compile:\n{}",
            String::from_utf8_lossy(&pv.stderr)
        );
    }
    let hvm = build("amd,pv-only-call")?;
    let stderr = String::from_utf8_lossy(&hvm.stderr);
    if hvm.status.success() || !stderr.contains("xen::nr::arity") {
        bail!(
            "a PVH guest making the PV-only fpu_taskswitch through the typed API must not compile, with \
             the arity message; got {}:\n{stderr}",
            hvm.status
        );
    }
    // `mmu::update_va_mapping` exists only where a PV guest may run: `x86-pv`, or `outline`.
    for features in ["pv,pv-only-mmu", "outline,pv-only-mmu"] {
        let out = build(features)?;
        if !out.status.success() {
            bail!(
                "a guest built with `{features}` calling mmu::update_va_mapping does not compile:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let hvm = build("amd,pv-only-mmu")?;
    let stderr = String::from_utf8_lossy(&hvm.stderr);
    if hvm.status.success() || !stderr.contains("cannot find function `update_va_mapping`") {
        bail!(
            "a PVH guest calling the PV-only mmu::update_va_mapping must not compile (no such function); \
             got {}:\n{stderr}",
            hvm.status
        );
    }
    Ok(
        "the typed API's arity table is the guest's: fpu_taskswitch (PV only) compiles for PV, is \
        refused for PVH; mmu::update_va_mapping compiles for PV and through the page, not for PVH"
            .into(),
    )
}

/// `cargo xtask x86`: every x86-64 run; fails unless all pass.
pub fn test() -> Result<()> {
    let runs = run_all()?;
    let (text, failed) = report(&runs);
    print!("{text}");
    println!("{}", check_arity_table()?);
    println!(
        "x86-64 on real Xen: {} passed, {failed} failed",
        runs.len() - failed
    );
    if failed > 0 {
        bail!("{failed} x86-64 run(s) on Xen failed");
    }
    Ok(())
}

/// The demo's x86 part: the PVH page guest's console, then the verdict of every run.
pub fn demo() -> Result<()> {
    let runs = run_all()?;
    println!(
        "x86-64: the same kind of guest (guests-x86/) on Debian's Xen 4.17 for amd64, under QEMU (TCG, AMD"
    );
    println!(
        "CPU with SVM): one ELF boots as a PV dom0 (syscall) and as a PVH dom0 (vmmcall), inline or through"
    );
    println!("the hypercall page.\n");
    if let Some(r) = runs
        .iter()
        .find(|r| r.build.stubs == Stubs::Page && r.mode == Mode::Pvh && r.xen == XenBuild::Release)
    {
        for l in
            r.boot.output.lines().filter(|l| {
                !l.starts_with("(XEN)") && !l.contains('\u{1b}') && !l.trim().is_empty()
            })
        {
            println!("[guest] {l}");
        }
        println!();
    }
    let (text, failed) = report(&runs);
    print!("{text}");
    if failed > 0 {
        bail!("{failed} x86-64 run(s) on Xen failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &std::process::Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_machines_boot_xen_with_the_guest_as_its_module() {
        let xen = std::path::Path::new("xen.gz");
        let guest = std::path::Path::new("dom0.elf");
        let pvh = machine(guest, Mode::Pvh).command(xen).unwrap();
        assert!(std::path::Path::new(pvh.get_program()).ends_with("qemu-system-x86_64"));
        assert_eq!(
            args(&pvh),
            [
                "-accel",
                "tcg",
                "-cpu",
                "max",
                "-m",
                "1G",
                "-nographic",
                "-no-reboot",
                "-kernel",
                "xen.gz",
                "-append",
                "console=com1 com1=115200 loglvl=all guest_loglvl=all dom0_mem=64M noreboot dom0=pvh \
                 dom0-iommu=none",
                "-initrd",
                "dom0.elf"
            ]
        );
        let pv = args(&machine(guest, Mode::Pv).command(xen).unwrap());
        assert_eq!(
            pv[11],
            "console=com1 com1=115200 loglvl=all guest_loglvl=all dom0_mem=64M noreboot"
        );
        // More than one CPU is an ARM dom0's only.
        let two = Machine {
            cpus: 2,
            ..machine(guest, Mode::Pv)
        };
        assert!(two.command(xen).is_err());
    }

    /// A note named "Xen" of type `ty` with descriptor `desc`, padded as the assembler lays it out.
    fn note(ty: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(4u32.to_le_bytes());
        v.extend((desc.len() as u32).to_le_bytes());
        v.extend(ty.to_le_bytes());
        v.extend(b"Xen\0");
        v.extend(desc);
        v.resize(v.len().div_ceil(4) * 4, 0);
        v
    }

    #[test]
    fn the_hypercall_page_note_must_name_the_page() {
        let page = 0x40_7000u64;
        let mut section = note(6, b"xen-hypercall\0");
        section.extend(note(2, &page.to_le_bytes()));
        section.extend(note(18, &0x40_0010u32.to_le_bytes()));
        let notes = xen_notes(&section).unwrap();
        assert_eq!(notes.len(), 3);
        assert_eq!(notes[0], (6, b"xen-hypercall\0".to_vec()));
        assert!(check_page_note(&notes, page).is_empty());
        // The note names another address, is missing, or is there twice.
        assert!(
            check_page_note(&notes, 0x40_8000)[0].contains("not xen_hypercall_page (0x408000)")
        );
        let without: Vec<_> = notes.iter().filter(|(t, _)| *t != 2).cloned().collect();
        assert!(check_page_note(&without, page)[0].contains("no HYPERCALL_PAGE note"));
        let twice = [notes.clone(), notes].concat();
        assert_eq!(check_page_note(&twice, page), ["2 HYPERCALL_PAGE notes"]);
        // A truncated section is an error, not a panic.
        assert!(xen_notes(&section[..section.len() - 6]).is_err());
    }

    fn asm(bytes: &[u8]) -> Vec<Instruction> {
        decode(bytes, 0x1000)
    }

    #[test]
    fn a_pair_that_reloads_its_arguments_passes_and_one_that_keeps_rdx_fails() {
        // mov eax,20; mov rdi,rbx; mov rsi,r14; mov edx,1; syscall;
        // mov eax,20; mov rdi,rbx; mov rsi,r14; mov edx,1; syscall; ret
        let one = [
            0xb8, 20, 0, 0, 0, 0x48, 0x89, 0xdf, 0x4c, 0x89, 0xf6, 0xba, 1, 0, 0, 0, 0x0f, 0x05,
        ];
        let mut code = one.to_vec();
        code.extend(one);
        code.push(0xc3);
        assert!(check_pair(&asm(&code), 3).is_ok());
        // The second set-up without `mov edx, 1`: rdx is kept, as an under-declared stub lets the compiler do.
        let mut bad = one.to_vec();
        bad.extend(&one[..11]);
        bad.extend([0x0f, 0x05, 0xc3]);
        let e = check_pair(&asm(&bad), 3).unwrap_err();
        assert!(e.contains("RDX"), "{e}");
    }

    #[test]
    fn a_read_of_rcx_after_syscall_is_caught() {
        // syscall; mov rax, rcx; ret
        let bad = [0x0f, 0x05, 0x48, 0x89, 0xc8, 0xc3];
        assert_eq!(check_after_syscall(&asm(&bad)).len(), 1);
        // syscall; xor ecx, ecx; mov rax, rcx; ret
        let good = [0x0f, 0x05, 0x31, 0xc9, 0x48, 0x89, 0xc8, 0xc3];
        assert!(check_after_syscall(&asm(&good)).is_empty());
    }

    #[test]
    fn the_judge_wants_every_check_and_the_control_caught_on_debug() {
        use Mode::{Pv, Pvh};
        let mut good = String::from("(XEN) Xen version 4.17 debug=y\n");
        for c in CHECKS.iter().chain(&PV_CHECKS) {
            good.push_str(&format!("ok {c}: x\n"));
        }
        let caught = format!("{good}FAIL {CONTROL_CHECK}: 0, -14\n");
        assert!(judge(&caught, false, XenBuild::Debug, Pv, Expect::ControlCaught).is_empty());
        // The control not caught.
        let missed = format!("{good}ok {CONTROL_CHECK}: 0, 0\n");
        assert!(!judge(&missed, false, XenBuild::Debug, Pv, Expect::ControlCaught).is_empty());
        // A pass needs the summary and the halt.
        let pass = format!(
            "{good}summary: all 17 checks passed\n(XEN) Hardware Dom0 halted: halting machine\n"
        );
        assert!(judge(&pass, false, XenBuild::Debug, Pv, Expect::Pass).is_empty());
        assert!(
            !judge(&pass, false, XenBuild::Release, Pv, Expect::Pass).is_empty(),
            "banner"
        );
        assert!(
            !judge(&pass, true, XenBuild::Debug, Pv, Expect::Pass).is_empty(),
            "time-out"
        );
        // A PVH guest must show the upcalls (not the PV mapping), a PV one the mapping.
        let pvh = pass.replace(&format!("ok {}: x\n", PV_CHECKS[0]), "");
        assert_eq!(
            judge(&pvh, false, XenBuild::Debug, Pvh, Expect::Pass),
            [format!("no `ok` line for {}", PVH_CHECKS.join(", "))]
        );
        assert_eq!(
            judge(&pvh, false, XenBuild::Debug, Pv, Expect::Pass),
            [format!("no `ok` line for {}", PV_CHECKS[0])]
        );
        let mut pvh = pvh;
        for c in PVH_CHECKS {
            pvh = pvh.replace("summary", &format!("ok {c}: x\nsummary"));
        }
        assert!(judge(&pvh, false, XenBuild::Debug, Pvh, Expect::Pass).is_empty());
        // A typed check missing fails the run.
        let no_typed = pass.replace("ok pair3 grant_table::query_size (typed): x\n", "");
        assert_eq!(
            judge(&no_typed, false, XenBuild::Debug, Pv, Expect::Pass),
            ["no `ok` line for pair3 grant_table::query_size (typed)"]
        );
        // The wrong trap must not get through.
        assert!(!judge(&pass, false, XenBuild::Debug, Pvh, Expect::Refused).is_empty());
    }
}
