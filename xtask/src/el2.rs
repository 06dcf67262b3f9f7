//! The EL2 harness runner: builds `harness/` for every instruction set and optimisation level and runs
//! each image under QEMU with EL2 present, where the image's own hypervisor plays Xen (see
//! `harness/src/image/monitor.rs`).
//!
//! Runs, per optimisation level (O0, O1, O2, O3, Os, Oz, and O3 with fat LTO):
//! - `a64`: `qemu-system-aarch64`, EL2 monitor and guest at EL1, both AArch64;
//! - `a32`, `t32`: `qemu-system-arm`, the 32-bit image started in HYP mode is its own monitor, the guest
//!   runs in SVC mode, its tests compiled to A32 or (`+thumb-mode`) T32;
//! - `a32@el2-a64`, `t32@el2-a64`: `qemu-system-aarch64`, the AArch64 image's EL2 monitor runs the
//!   32-bit image as an AArch32 EL1 guest, as 32-bit guests run on Xen for arm64.
//!
//! Each image reports one `CELL` line per cell on the UART and stops the machine through semihosting
//! with its failure count as QEMU's exit status. The runner checks every expected cell reported, that the
//! failure count and the exit status agree, that the guest and monitor ran where they should, and, from
//! the ELF, that each cell's `hvc` instructions are `hvc #0xEA1` in the cell's instruction set (for the
//! out-of-line cells: none in the cell, one in the stub it calls). A run that does not finish in
//! [`TIMEOUT`] fails.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{setup, util};

/// The calls each arity cell makes (`harness/src/image/guest.rs`).
const CALLS_PER_CELL: usize = 3;

/// How long one QEMU run may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// An optimisation configuration of the harness build.
#[derive(Clone, Copy)]
pub struct Opt {
    /// The name in the report (`O2`, `LTO`).
    pub name: &'static str,
    /// `opt-level`.
    pub level: &'static str,
    /// Fat LTO.
    pub lto: bool,
}

/// Every configuration of the matrix.
pub const OPTS: [Opt; 7] = [
    Opt {
        name: "O0",
        level: "0",
        lto: false,
    },
    Opt {
        name: "O1",
        level: "1",
        lto: false,
    },
    Opt {
        name: "O2",
        level: "2",
        lto: false,
    },
    Opt {
        name: "O3",
        level: "3",
        lto: false,
    },
    Opt {
        name: "Os",
        level: "s",
        lto: false,
    },
    Opt {
        name: "Oz",
        level: "z",
        lto: false,
    },
    Opt {
        name: "LTO",
        level: "3",
        lto: true,
    },
];

/// The instruction set an image's guest code is compiled to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Isa {
    /// AArch64.
    A64,
    /// 32-bit ARM, A32.
    A32,
    /// 32-bit ARM, Thumb-2.
    T32,
}

impl Isa {
    fn name(self) -> &'static str {
        match self {
            Isa::A64 => "a64",
            Isa::A32 => "a32",
            Isa::T32 => "t32",
        }
    }
    fn target(self) -> &'static str {
        match self {
            Isa::A64 => "aarch64-unknown-none",
            Isa::A32 | Isa::T32 => "armv7a-none-eabi",
        }
    }
    fn rustflags(self) -> &'static str {
        match self {
            Isa::T32 => "-Ctarget-feature=+thumb-mode",
            _ => "",
        }
    }
    /// What the guest reports as its state (`GUEST …` line).
    fn guest_state(self) -> &'static str {
        match self {
            Isa::A64 => "aarch64-el1",
            Isa::A32 => "aarch32-svc-a32",
            Isa::T32 => "aarch32-svc-t32",
        }
    }
    /// `hvc #0` (the SMC Calling Convention's) in this instruction set, as it appears in memory.
    fn smccc_hvc(self) -> [u8; 4] {
        match self {
            Isa::A64 => 0xD400_0002u32.to_le_bytes(),
            Isa::A32 => 0xE140_0070u32.to_le_bytes(),
            // 0xF7E0 then 0x8000.
            Isa::T32 => [0xE0, 0xF7, 0x00, 0x80],
        }
    }
    /// `hvc #0xEA1` in this instruction set, as it appears in memory (little endian).
    fn xen_hvc(self) -> [u8; 4] {
        match self {
            Isa::A64 => 0xD401_D422u32.to_le_bytes(),
            Isa::A32 => 0xE140_EA71u32.to_le_bytes(),
            // Two halfwords, first 0xF7E0 then 0x8EA1.
            Isa::T32 => [0xE0, 0xF7, 0xA1, 0x8E],
        }
    }
}

/// One QEMU run: a guest instruction set under a monitor.
#[derive(Clone, Copy)]
struct RunKind {
    name: &'static str,
    guest: Isa,
    /// The AArch64 EL2 monitor (else the 32-bit image is its own HYP-mode monitor).
    el2_a64: bool,
}

const RUNS: [RunKind; 5] = [
    RunKind {
        name: "a64",
        guest: Isa::A64,
        el2_a64: true,
    },
    RunKind {
        name: "a32",
        guest: Isa::A32,
        el2_a64: false,
    },
    RunKind {
        name: "t32",
        guest: Isa::T32,
        el2_a64: false,
    },
    RunKind {
        name: "a32@el2-a64",
        guest: Isa::A32,
        el2_a64: true,
    },
    RunKind {
        name: "t32@el2-a64",
        guest: Isa::T32,
        el2_a64: true,
    },
];

/// The cells an image reports: every arity through the inline stubs (`arityN`), the per-arity out-of-line
/// ones (`outlineN`) and the per-hypercall ones (`per-callN`), the out-of-line stubs' callee-saved
/// registers (`outline-saved`, `per-call-saved`), the typed API through a per-hypercall stub
/// (`typed-send`), and
/// the negative controls (the register and memory controls need an optimised build: unoptimised code
/// relies on neither declaration).
pub fn expected_cells(opt: &Opt) -> Vec<&'static str> {
    let mut v = vec![
        "arity0",
        "arity1",
        "arity2",
        "arity3",
        "arity4",
        "arity5",
        "arity6",
        "outline0",
        "outline1",
        "outline2",
        "outline3",
        "outline4",
        "outline5",
        "outline6",
        "outline-saved",
        "per-call0",
        "per-call1",
        "per-call2",
        "per-call3",
        "per-call4",
        "per-call5",
        "per-call6",
        "per-call-saved",
        "typed-send",
        "control-tag",
        "control-outline-shift",
        "control-outline-unsaved",
        "control-per-call-unsaved",
        "control-per-call-slot",
    ];
    if opt.name != "O0" {
        v.extend(["control-clobber", "control-nomem"]);
    }
    v
}

/// The SMC Calling Convention's cells (`harness/src/image/guest/smccc.rs`) an image of `isa` reports:
/// SMC32 at arities 0 to 5 (AArch64: 6) inline and out-of-line, on AArch64 SMC64 at 0 to 6 both ways, the
/// typed calls, and in an optimised build the two controls.
pub fn smccc_cells(opt: &Opt, isa: Isa) -> Vec<String> {
    let max = if isa == Isa::A64 { 6 } else { 5 };
    let mut v = Vec::new();
    let families: &[&str] = if isa == Isa::A64 {
        &["smccc32", "smccc64"]
    } else {
        &["smccc32"]
    };
    for f in families {
        for n in 0..=max {
            v.push(format!("{f}-{n}"));
            v.push(format!("{f}-outline{n}"));
        }
    }
    v.push("smccc-typed".into());
    if opt.name != "O0" {
        v.push("control-smccc-v10".into());
    }
    v
}

/// Checks from the ELF that each inline SMCCC cell's two calls are `hvc #0` in `isa` and that no SMCCC
/// cell holds Xen's `hvc #0xEA1`; that the out-of-line cells have no `hvc` of their own and each
/// out-of-line stub (`xen_hypercall::outline::smccc::smcNN_callN`) exactly one `hvc #0`. Returns the
/// problems per cell name.
pub fn check_smccc_encodings(elf: &[u8], isa: Isa) -> Result<BTreeMap<String, String>> {
    let max = if isa == Isa::A64 { 6 } else { 5 };
    let families: &[(&str, &str)] = if isa == Isa::A64 {
        &[("smccc32", "smc32_call"), ("smccc64", "smc64_call")]
    } else {
        &[("smccc32", "smc32_call")]
    };
    // Function name -> (cell, `hvc #0` count).
    let mut expected: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for (f, stub) in families {
        for n in 0..=max {
            let module = if isa == Isa::A64 && (*f == "smccc64" || n == 6) {
                "harness::image::guest::smccc::a64::"
            } else {
                "harness::image::guest::smccc::"
            };
            expected.insert(format!("{module}{f}_{n}"), (format!("{f}-{n}"), 2));
            expected.insert(
                format!("{module}{f}_outline{n}"),
                (format!("{f}-outline{n}"), 0),
            );
            expected.insert(
                format!("xen_hypercall::outline::smccc::{stub}{n}"),
                (format!("{f}-outline{n}"), 1),
            );
        }
    }
    check_cell_functions(elf, &expected, |name, code, thumb, want| {
        let align = if isa == Isa::T32 { 2 } else { 4 };
        let count = |pattern: [u8; 4]| {
            (0..code.len().saturating_sub(3))
                .step_by(align)
                .filter(|&i| code[i..i + 4] == pattern)
                .count()
        };
        let (got, xen) = (count(isa.smccc_hvc()), count(isa.xen_hvc()));
        let mut issues = Vec::new();
        if (isa == Isa::T32) != thumb {
            issues.push(format!("`{name}` is not {} code", isa.name()));
        }
        if got != want {
            issues.push(format!(
                "{got} `hvc #0` in {} encoding in `{name}`, expected {want}",
                isa.name()
            ));
        }
        if xen != 0 {
            issues.push(format!("{xen} `hvc #0xEA1` in `{name}`"));
        }
        issues
    })
}

/// The result of one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// `arity3`, `control-clobber`.
    pub name: String,
    /// Passed (for a control: its defect was detected).
    pub ok: bool,
    /// What the guest said, or why the cell failed.
    pub detail: String,
}

/// What one run printed and how it ended.
pub struct RunOutput {
    /// Everything QEMU wrote to stdout.
    pub stdout: String,
    /// QEMU's exit status; `None` after a time-out.
    pub status: Option<i32>,
}

/// Judges one run: one [`Cell`] per expected cell, plus a `run` cell when the run itself went wrong.
pub fn judge(out: &RunOutput, expected: &[&str], guest_state: &str, monitor: &str) -> Vec<Cell> {
    let mut reported: BTreeMap<&str, (bool, String)> = BTreeMap::new();
    let mut guest_failures = 0;
    let mut guest_line = None;
    let mut monitor_line = None;
    for line in out.stdout.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("CELL ") {
            let (name, verdict) = rest.split_once(' ').unwrap_or((rest, ""));
            let (word, detail) = verdict.split_once(' ').unwrap_or((verdict, ""));
            let ok = matches!(word, "ok" | "detected");
            guest_failures += usize::from(!ok);
            let detail = if word == "detected" {
                format!("detected ({detail})")
            } else {
                detail.to_string()
            };
            reported.insert(name, (ok, detail));
        } else if let Some(rest) = line.strip_prefix("GUEST ") {
            guest_line = rest.split_whitespace().next().map(str::to_string);
        } else if let Some(rest) = line.strip_prefix("MONITOR ")
            && monitor_line.is_none()
        {
            monitor_line = Some(rest.to_string());
        }
    }
    let ended = match out.status {
        None => format!("QEMU timed out after {}s", TIMEOUT.as_secs()),
        Some(s) => format!("QEMU exited with status {s}"),
    };
    let last = out
        .stdout
        .lines()
        .last()
        .unwrap_or("(no output)")
        .trim_end();
    let mut cells: Vec<Cell> = expected
        .iter()
        .map(|name| match reported.get(name) {
            Some((ok, detail)) => Cell {
                name: name.to_string(),
                ok: *ok,
                detail: detail.clone(),
            },
            None => Cell {
                name: name.to_string(),
                ok: false,
                detail: format!("no result ({ended}; last output: {last})"),
            },
        })
        .collect();
    let mut problems = Vec::new();
    if guest_line.as_deref() != Some(guest_state) {
        problems.push(format!(
            "guest ran as {:?}, expected {guest_state}",
            guest_line.unwrap_or_default()
        ));
    }
    if !monitor_line
        .as_deref()
        .is_some_and(|m| m.starts_with(monitor))
    {
        problems.push(format!(
            "monitor reported {:?}, expected {monitor}",
            monitor_line.unwrap_or_default()
        ));
    }
    if out.status != Some(guest_failures as i32) {
        problems.push(format!(
            "{ended}, but the guest reported {guest_failures} failed cells"
        ));
    }
    for name in reported.keys() {
        if !expected.contains(name) {
            problems.push(format!("unexpected cell {name}"));
        }
    }
    if !problems.is_empty() {
        cells.push(Cell {
            name: "run".into(),
            ok: false,
            detail: problems.join("; "),
        });
    }
    cells
}

/// Checks from the ELF that each arity cell's calls are `hvc #0xEA1` in `isa` (for T32: that the
/// inline stubs were inlined into Thumb code, with the 4-byte `hvc` a restart needs), and that each
/// out-of-line cell has no `hvc` of its own while the out-of-line stub it calls
/// (`xen_hypercall::outline::hypercallN`) holds exactly one, in `isa`. Returns the problems per cell name.
pub fn check_encodings(elf: &[u8], isa: Isa) -> Result<BTreeMap<String, String>> {
    // Every function checked: its demangled name, the cell it belongs to, and its `hvc` count.
    let mut expected: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for n in 0..=6 {
        let (arity, outline) = (format!("arity{n}"), format!("outline{n}"));
        let guest = "harness::image::guest::";
        expected.insert(format!("{guest}{arity}"), (arity, CALLS_PER_CELL));
        expected.insert(format!("{guest}{outline}"), (outline.clone(), 0));
        expected.insert(
            format!("xen_hypercall::outline::hypercall{n}"),
            (outline, 1),
        );
        let per_call = format!("per-call{n}");
        expected.insert(format!("{guest}per_call{n}"), (per_call, 0));
    }
    check_cell_functions(elf, &expected, |name, code, thumb, want_hvcs| {
        let what = if name.starts_with("xen_hypercall") {
            format!("`{name}`")
        } else {
            "the cell".to_string()
        };
        let align = if isa == Isa::T32 { 2 } else { 4 };
        let count = |pattern: [u8; 4], step: usize| {
            (0..code.len().saturating_sub(3))
                .step_by(step)
                .filter(|&i| code[i..i + 4] == pattern)
                .count()
        };
        let got = count(isa.xen_hvc(), align);
        let mut issues = Vec::new();
        if (isa == Isa::T32) != thumb {
            issues.push(format!("{what} is not {} code", isa.name()));
        }
        if got != want_hvcs {
            issues.push(format!(
                "{got} `hvc #0xEA1` in {} encoding in {what}, expected {want_hvcs}",
                isa.name()
            ));
        }
        if isa != Isa::A64 {
            let other = if isa == Isa::T32 { Isa::A32 } else { Isa::T32 };
            let n = count(other.xen_hvc(), 2);
            if n != 0 {
                issues.push(format!(
                    "{n} `hvc #0xEA1` in {} encoding in {what}",
                    other.name()
                ));
            }
        }
        issues
    })
}

/// Appends `text` to what is recorded against `cell` (comma-separated).
fn add_problem(problems: &mut BTreeMap<String, String>, cell: &str, text: &str) {
    let entry = problems.entry(cell.to_string()).or_default();
    if !entry.is_empty() {
        entry.push_str(", ");
    }
    entry.push_str(text);
}

/// Finds each function of `expected` (demangled name -> its cell and the count of traps wanted) among the
/// ELF's text symbols and hands `check` its name, code, whether it is Thumb code, and the count wanted; the
/// issues `check` returns are recorded against the function's cell, and a function missing from the ELF is
/// a problem of its cell too.
fn check_cell_functions(
    elf: &[u8],
    expected: &BTreeMap<String, (String, usize)>,
    mut check: impl FnMut(&str, &[u8], bool, usize) -> Vec<String>,
) -> Result<BTreeMap<String, String>> {
    use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
    let file = object::File::parse(elf).context("parsing the harness ELF")?;
    let mut problems = BTreeMap::new();
    let mut seen = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text {
            continue;
        }
        let Ok(raw) = sym.name() else { continue };
        let name = format!("{:#}", rustc_demangle::demangle(raw));
        let Some((cell, want)) = expected.get(&name) else {
            continue;
        };
        seen.push(name.clone());
        let addr = sym.address() & !1;
        let section = sym
            .section_index()
            .and_then(|i| file.section_by_index(i).ok())
            .context("cell symbol without a section")?;
        let data = section.data()?;
        let start = (addr - section.address()) as usize;
        let code = data
            .get(start..start + sym.size() as usize)
            .context("cell symbol outside its section")?;
        let issues = check(&name, code, sym.address() & 1 == 1, *want);
        if !issues.is_empty() {
            add_problem(&mut problems, cell, &issues.join(", "));
        }
    }
    for (name, (cell, _)) in expected {
        if !seen.contains(name) {
            problems
                .entry(cell.clone())
                .or_insert_with(|| format!("no function `{name}` in the ELF"));
        }
    }
    Ok(problems)
}

/// The short call numbers the harness's per-hypercall cells use (`harness/src/proto.rs`: `0x80 | arity << 4
/// | preempt << 3 | id`): calls A/R (id 1), the preempted call B (id 2), and the probe (id 4).
fn per_call_numbers(n: usize) -> [u32; 3] {
    let op = |preempt: u32, id: u32| 0x80 | (n as u32) << 4 | preempt << 3 | id;
    [op(0, 1), op(1, 2), op(0, 4)]
}

/// Xen's `__HYPERVISOR_event_channel_op`, which `xen::evtchn::send` uses.
const EVENT_CHANNEL_OP: u32 = 32;

/// The exact bytes of the per-hypercall stub of arity `n` for number `nr` in `isa`, encoded here by hand
/// from the ARM ARM (not by the generator): `mov x16|r12, #nr; hvc #0xEA1; ret|bx lr`, and on 32-bit ARM at
/// arity 5 and 6 `push {r4, r5}`, `ldr r4, [sp, #8]` (and `ldr r5, [sp, #12]`) before, `pop {r4, r5}`
/// after the trap.
pub fn per_call_bytes(isa: Isa, n: usize, nr: u32) -> Vec<u8> {
    let mut b = Vec::new();
    let word = |b: &mut Vec<u8>, w: u32| b.extend_from_slice(&w.to_le_bytes());
    let half = |b: &mut Vec<u8>, h: u16| b.extend_from_slice(&h.to_le_bytes());
    match isa {
        Isa::A64 => {
            word(&mut b, 0xD280_0010 | nr << 5); // movz x16, #nr
            word(&mut b, 0xD401_D422); // hvc #0xea1
            word(&mut b, 0xD65F_03C0); // ret
        }
        Isa::A32 => {
            if n >= 5 {
                word(&mut b, 0xE92D_0030); // push {r4, r5}
                word(&mut b, 0xE59D_4008); // ldr r4, [sp, #8]
            }
            if n >= 6 {
                word(&mut b, 0xE59D_500C); // ldr r5, [sp, #12]
            }
            word(&mut b, 0xE3A0_C000 | nr); // mov r12, #nr
            word(&mut b, 0xE140_EA71); // hvc #0xea1
            if n >= 5 {
                word(&mut b, 0xE8BD_0030); // pop {r4, r5}
            }
            word(&mut b, 0xE12F_FF1E); // bx lr
        }
        Isa::T32 => {
            if n >= 5 {
                half(&mut b, 0xB430); // push {r4, r5}
                half(&mut b, 0x9C02); // ldr r4, [sp, #8]
            }
            if n >= 6 {
                half(&mut b, 0x9D03); // ldr r5, [sp, #12]
            }
            half(&mut b, 0xF04F); // mov.w r12, #nr
            half(&mut b, 0x0C00 | nr as u16);
            half(&mut b, 0xF7E0); // hvc #0xea1
            half(&mut b, 0x8EA1);
            if n >= 5 {
                half(&mut b, 0xBC30); // pop {r4, r5}
            }
            half(&mut b, 0x4770); // bx lr
        }
    }
    b
}

/// Which of `numbers` the code of a per-hypercall stub of arity `n` is exactly the stub for.
pub fn per_call_number(isa: Isa, n: usize, code: &[u8], numbers: &[u32]) -> Option<u32> {
    numbers
        .iter()
        .copied()
        .find(|&nr| per_call_bytes(isa, n, nr) == code)
}

/// Checks every per-hypercall stub in the image (`xen_hypercall::outline::per_call::hypercallN`, one
/// function per number): its bytes are exactly [`per_call_bytes`] for one of the numbers the harness uses
/// at that arity (so it holds exactly one `hvc #0xEA1`), in `isa`, and each of those numbers has exactly
/// one stub. And `typed-send`'s call to `xen::evtchn::send` reaches, through calls, exactly one
/// per-hypercall stub, which is exactly `mov x16|r12, #32; hvc #0xEA1; ret|bx lr`. Returns the problems
/// per cell name.
pub fn check_per_call(elf: &[u8], isa: Isa) -> Result<BTreeMap<String, String>> {
    let funcs = crate::elf::read_functions(elf).context("reading the harness ELF")?;
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let prefix = "xen_hypercall::outline::per_call::hypercall";
    let demangled = |f: &crate::elf::Function| format!("{:#}", rustc_demangle::demangle(&f.name));
    use object::{Object, ObjectSection};
    let file = object::File::parse(elf).context("parsing the harness ELF")?;
    let code = |f: &crate::elf::Function| -> Result<Vec<u8>> {
        for sec in file.sections() {
            let (start, size) = (sec.address(), sec.size());
            if f.addr >= start && f.addr + f.size <= start + size {
                let data = sec.data()?;
                let off = (f.addr - start) as usize;
                return Ok(data[off..off + f.size as usize].to_vec());
            }
        }
        bail!("no section holds {}", f.name)
    };
    // Number -> stub address, per arity.
    let mut stubs: BTreeMap<(usize, u32), Vec<u64>> = BTreeMap::new();
    let mut stub_addrs: BTreeMap<u64, (usize, Option<u32>)> = BTreeMap::new();
    for f in &funcs {
        let name = demangled(f);
        let Some(n) = name
            .strip_prefix(prefix)
            .and_then(|d| d.parse::<usize>().ok())
        else {
            continue;
        };
        let cell = format!("per-call{n}");
        let mut numbers = per_call_numbers(n).to_vec();
        if n == 2 {
            numbers.push(EVENT_CHANNEL_OP);
        }
        let bytes = code(f)?;
        let nr = per_call_number(isa, n, &bytes, &numbers);
        let in_isa = f.isa
            == match isa {
                Isa::A64 => crate::elf::Isa::A64,
                Isa::A32 => crate::elf::Isa::A32,
                Isa::T32 => crate::elf::Isa::T32,
            };
        if !in_isa {
            problems.entry(cell.clone()).or_default().push(format!(
                "`{name}` at {:#x} is not {} code",
                f.addr,
                isa.name()
            ));
        }
        match nr {
            Some(nr) => stubs.entry((n, nr)).or_default().push(f.addr),
            None => problems.entry(cell).or_default().push(format!(
                "`{name}` at {:#x} is not the per-hypercall stub of any number the harness uses \
                 ({numbers:?}): {}",
                f.addr,
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )),
        }
        stub_addrs.insert(f.addr, (n, nr));
    }
    for n in 0..=6 {
        for nr in per_call_numbers(n) {
            let found = stubs.get(&(n, nr)).map_or(0, Vec::len);
            if found != 1 {
                problems
                    .entry(format!("per-call{n}"))
                    .or_default()
                    .push(format!("{found} stubs `{prefix}{n}::<{nr}>`, expected 1"));
            }
        }
    }
    // typed-send: follow the calls from the cell (send and the helpers it uses may or may not be
    // inlined) to the per-hypercall stubs they reach.
    let by_addr: BTreeMap<u64, &crate::elf::Function> = funcs.iter().map(|f| (f.addr, f)).collect();
    let start = funcs
        .iter()
        .find(|f| demangled(f) == "harness::image::guest::typed_send");
    let typed = match start {
        None => vec!["no function `harness::image::guest::typed_send` in the ELF".to_string()],
        Some(f) => {
            let (mut seen, mut todo, mut reached) = (vec![f.addr], vec![(f.addr, 0)], Vec::new());
            while let Some((addr, depth)) = todo.pop() {
                let Some(g) = by_addr.get(&addr) else {
                    continue;
                };
                for insn in &g.insns {
                    let crate::elf::Op::Call(Some(t)) = insn.op else {
                        continue;
                    };
                    let t = t & !1;
                    if let Some(&(n, nr)) = stub_addrs.get(&t) {
                        reached.push((n, nr));
                    } else if depth < 4 && !seen.contains(&t) {
                        seen.push(t);
                        todo.push((t, depth + 1));
                    }
                }
            }
            reached.sort();
            reached.dedup();
            if reached == [(2, Some(EVENT_CHANNEL_OP))] {
                Vec::new()
            } else {
                vec![format!(
                    "`xen::evtchn::send` reaches the per-hypercall stubs {reached:?} (arity, number), \
                     expected only `hypercall2::<32>` as `mov x16|r12, #32; hvc #0xEA1; ret|bx lr`"
                )]
            }
        }
    };
    if !typed.is_empty() {
        problems
            .entry("typed-send".into())
            .or_default()
            .extend(typed);
    }
    Ok(problems
        .into_iter()
        .map(|(k, v)| (k, v.join(", ")))
        .collect())
}

/// Builds the harness for `isa` at `opt`; returns the image's path.
fn build(isa: Isa, opt: &Opt) -> Result<PathBuf> {
    let dir = util::target_dir().join("el2").join(isa.name());
    let out = cargo_build(isa, opt, &[])?;
    if !out.status.success() {
        bail!(
            "building the harness for {} {} failed:\n{}",
            isa.name(),
            opt.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let built = dir.join(isa.target()).join("release/harness");
    let image = dir.join(format!("harness-{}-{}.elf", isa.name(), opt.name));
    std::fs::copy(&built, &image)
        .with_context(|| format!("copying {} to {}", built.display(), image.display()))?;
    Ok(image)
}

/// The message of the compile error a per-hypercall stub with an unencodable number gives on `isa`.
fn range_error(isa: Isa) -> &'static str {
    match isa {
        Isa::A64 => "a per-hypercall stub's call number must be at most 65535",
        Isa::A32 | Isa::T32 => "a per-hypercall stub's call number must be at most 255",
    }
}

/// Builds the harness for `isa` at O0 with feature `unencodable-number`, which instantiates a
/// per-hypercall stub with the first number one `mov` cannot encode (256 on 32-bit ARM, 65536 on
/// AArch64): the build must fail with the stub's message. (The normal builds instantiate 255-and-under
/// and succeed.) Same target directory and settings as the O0 image, so only the harness recompiles.
fn check_range(isa: Isa) -> Cell {
    let name = format!("{} unencodable-number", isa.name());
    let (ok, detail) = match cargo_build(isa, &OPTS[0], &["unencodable-number"]) {
        Err(e) => (false, format!("{e:#}")),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                (false, "the build succeeded".to_string())
            } else if stderr.contains(range_error(isa)) {
                (true, format!("compile error: {}", range_error(isa)))
            } else {
                (
                    false,
                    format!("the build failed for another reason:\n{stderr}"),
                )
            }
        }
    };
    Cell { name, ok, detail }
}

/// `cargo build` of the harness for `isa` at `opt` with `features`.
fn cargo_build(isa: Isa, opt: &Opt, features: &[&str]) -> Result<std::process::Output> {
    let dir = util::target_dir().join("el2").join(isa.name());
    let mut cmd = util::cargo();
    cmd.env("CARGO_TARGET_DIR", &dir)
        .env("CARGO_ENCODED_RUSTFLAGS", isa.rustflags())
        .env_remove("RUSTFLAGS")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", opt.level)
        .env(
            "CARGO_PROFILE_RELEASE_LTO",
            if opt.lto { "fat" } else { "false" },
        )
        .env("XEN_HARNESS_OPT", opt.name)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "xen-hypercall-el2-harness",
        ])
        .args(["--target", isa.target()]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    cmd.stdin(Stdio::null())
        .output()
        .context("cannot start cargo")
}

/// Runs QEMU with a time-out, collecting stdout.
fn qemu(mut cmd: Command) -> Result<RunOutput> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", util::show(&cmd)))?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s.code();
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let stdout = if stderr.trim().is_empty() {
        stdout
    } else {
        format!("{stdout}\nQEMU: {}", stderr.trim())
    };
    Ok(RunOutput { stdout, status })
}

fn qemu_command(run: &RunKind, a64: &Path, a32: &Path) -> Command {
    let common = ["-m", "256M", "-nographic", "-semihosting", "-no-reboot"];
    if run.el2_a64 {
        let mut c = crate::setup::qemu("qemu-system-aarch64");
        c.args(["-M", "virt,virtualization=on", "-cpu", "cortex-a57"])
            .args(common)
            .arg("-kernel")
            .arg(a64);
        if run.guest != Isa::A64 {
            // The 32-bit image next to the AArch64 one: its monitor runs it as an AArch32 guest.
            c.arg("-device")
                .arg(format!("loader,file={}", a32.display()));
        }
        c
    } else {
        let mut c = crate::setup::qemu("qemu-system-arm");
        c.args(["-M", "virt,virtualization=on", "-cpu", "cortex-a15"])
            .args(common)
            .arg("-kernel")
            .arg(a32);
        c
    }
}

/// Runs the whole EL2 matrix and its negative controls.
pub fn run() -> Result<()> {
    setup::debian(&[setup::QEMU])?;
    for bin in ["qemu-system-aarch64", "qemu-system-arm"] {
        if setup::qemu(bin).arg("--version").output().is_err() {
            bail!("{bin} is missing; install it with\n  apt-get install -y qemu-system-arm");
        }
    }
    let started = Instant::now();
    // One build per instruction set and configuration; the three instruction sets build side by side,
    // each in its own target directory (so that every configuration stays cached).
    let images: Vec<Result<Vec<PathBuf>>> = std::thread::scope(|s| {
        let handles: Vec<_> = [Isa::A64, Isa::A32, Isa::T32]
            .into_iter()
            .map(|isa| s.spawn(move || OPTS.iter().map(|o| build(isa, o)).collect()))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("build thread panicked")))
            })
            .collect()
    });
    let mut built = Vec::new();
    for r in images {
        built.push(r?);
    }
    let image = |isa: Isa, i: usize| -> &Path {
        let k = match isa {
            Isa::A64 => 0,
            Isa::A32 => 1,
            Isa::T32 => 2,
        };
        &built[k][i]
    };
    eprintln!(
        "el2: built {} images in {:.1}s",
        built.iter().map(Vec::len).sum::<usize>(),
        started.elapsed().as_secs_f64()
    );
    // The runs, two at a time; reported in matrix order.
    let mut jobs = Vec::new();
    for (i, opt) in OPTS.iter().enumerate() {
        for run in &RUNS {
            jobs.push((i, *opt, *run));
        }
    }
    let results: Vec<Result<Vec<Cell>>> = std::thread::scope(|s| {
        let mut out = Vec::new();
        for pair in jobs.chunks(2) {
            let handles: Vec<_> = pair
                .iter()
                .map(|(i, opt, run)| {
                    let a64 = image(Isa::A64, *i).to_path_buf();
                    let guest = image(run.guest, *i).to_path_buf();
                    s.spawn(move || -> Result<Vec<Cell>> {
                        let smccc = smccc_cells(opt, run.guest);
                        let mut expected = expected_cells(opt);
                        expected.extend(smccc.iter().map(String::as_str));
                        let mut cells = judge(
                            &qemu(qemu_command(run, &a64, &guest))?,
                            &expected,
                            run.guest.guest_state(),
                            if run.el2_a64 {
                                "aarch64-el2"
                            } else {
                                "aarch32-hyp"
                            },
                        );
                        let elf = std::fs::read(&guest)?;
                        let mut problems = check_encodings(&elf, run.guest)?;
                        problems.extend(check_smccc_encodings(&elf, run.guest)?);
                        for (cell, p) in check_per_call(&elf, run.guest)? {
                            add_problem(&mut problems, &cell, &p);
                        }
                        for c in &mut cells {
                            if let Some(p) = problems.get(&c.name) {
                                c.ok = false;
                                c.detail = if c.detail.is_empty() {
                                    p.clone()
                                } else {
                                    format!("{p}; {}", c.detail)
                                };
                            }
                        }
                        Ok(cells)
                    })
                })
                .collect();
            for h in handles {
                out.push(
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("run thread panicked"))),
                );
            }
        }
        out
    });
    let (mut passed, mut failed) = (0, 0);
    for ((_, opt, run), result) in jobs.iter().zip(results) {
        let cells = match result {
            Ok(c) => c,
            Err(e) => vec![Cell {
                name: "run".into(),
                ok: false,
                detail: format!("{e:#}"),
            }],
        };
        for c in cells {
            let label = format!("{} {} {}", run.name, opt.name, c.name);
            if c.ok {
                passed += 1;
                if c.detail.is_empty() {
                    println!("ok   {label}");
                } else {
                    println!("ok   {label}: {}", c.detail);
                }
            } else {
                failed += 1;
                println!("FAIL {label}: {}", c.detail);
            }
        }
    }
    // A number the stub's `mov` cannot encode is a compile error.
    for isa in [Isa::A64, Isa::A32] {
        let c = check_range(isa);
        if c.ok {
            passed += 1;
            println!("ok   {}: {}", c.name, c.detail);
        } else {
            failed += 1;
            println!("FAIL {}: {}", c.name, c.detail);
        }
    }
    eprintln!("el2: {:.1}s in all", started.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} EL2 harness cells failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const O2: Opt = OPTS[2];

    fn out(stdout: &str, status: Option<i32>) -> RunOutput {
        RunOutput {
            stdout: stdout.into(),
            status,
        }
    }

    fn full_output(fail: Option<&str>) -> String {
        let mut s = String::from("GUEST aarch64-el1 opt=O2\nMONITOR aarch64-el2 guest=aarch64\n");
        for c in expected_cells(&O2) {
            if c.starts_with("control") {
                s += &format!("CELL {c} detected because\n");
            } else if Some(c) == fail {
                s += &format!("CELL {c} FAIL x4 clobbered (live value 3 = 0xdeadbeefdeadbe04)\n");
            } else {
                s += &format!("CELL {c} ok\n");
            }
        }
        s
    }

    #[test]
    fn all_cells_pass() {
        let cells = judge(
            &out(&full_output(None), Some(0)),
            &expected_cells(&O2),
            "aarch64-el1",
            "aarch64-el2",
        );
        assert_eq!(cells.len(), 31);
        assert!(cells.iter().all(|c| c.ok), "{cells:?}");
    }

    #[test]
    fn a_failed_cell_and_its_exit_status() {
        let cells = judge(
            &out(&full_output(Some("arity4")), Some(1)),
            &expected_cells(&O2),
            "aarch64-el1",
            "aarch64-el2",
        );
        let bad: Vec<_> = cells.iter().filter(|c| !c.ok).collect();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].name, "arity4");
        assert!(bad[0].detail.contains("x4 clobbered"));
    }

    #[test]
    fn exit_status_must_agree() {
        let cells = judge(
            &out(&full_output(None), Some(3)),
            &expected_cells(&O2),
            "aarch64-el1",
            "aarch64-el2",
        );
        assert!(cells.iter().any(|c| c.name == "run" && !c.ok));
    }

    #[test]
    fn timeout_fails_missing_cells() {
        let text = "GUEST aarch64-el1 opt=O2\nMONITOR aarch64-el2 guest=aarch64\nCELL arity0 ok\n";
        let cells = judge(
            &out(text, None),
            &expected_cells(&O2),
            "aarch64-el1",
            "aarch64-el2",
        );
        assert!(cells[0].ok);
        assert!(!cells[1].ok && cells[1].detail.contains("timed out"));
        assert!(cells.iter().any(|c| c.name == "run" && !c.ok));
    }

    #[test]
    fn undetected_control_fails() {
        let text = full_output(None).replace(
            "CELL control-nomem detected because",
            "CELL control-nomem FAIL not detected",
        );
        let cells = judge(
            &out(&text, Some(1)),
            &expected_cells(&O2),
            "aarch64-el1",
            "aarch64-el2",
        );
        assert!(cells.iter().any(|c| c.name == "control-nomem" && !c.ok));
    }

    #[test]
    fn wrong_guest_state_fails() {
        let cells = judge(
            &out(&full_output(None), Some(0)),
            &expected_cells(&O2),
            "aarch32-svc-t32",
            "aarch64-el2",
        );
        assert!(cells.iter().any(|c| c.name == "run" && !c.ok));
    }

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn per_call_sequences_match_the_assembler() {
        // Bytes as llvm-objdump shows them for the harness's stubs (and Xen's evtchn number, 32).
        let a64 = hex("10 04 80 d2 22 d4 01 d4 c0 03 5f d6"); // mov x16, #32; hvc #0xea1; ret
        assert_eq!(per_call_number(Isa::A64, 2, &a64, &[31, 32]), Some(32));
        let a32 = hex("20 c0 a0 e3 71 ea 40 e1 1e ff 2f e1"); // mov r12, #32; hvc; bx lr
        assert_eq!(per_call_number(Isa::A32, 3, &a32, &[32]), Some(32));
        // push {r4, r5}; ldr r4, [sp, #8]; mov.w r12, #209; hvc; pop {r4, r5}; bx lr
        let t32 = hex("30 b4 02 9c 4f f0 d1 0c e0 f7 a1 8e 30 bc 70 47");
        assert_eq!(per_call_number(Isa::T32, 5, &t32, &[0xd1]), Some(0xd1));
        // push {r4, r5}; ldr r4, [sp, #8]; ldr r5, [sp, #12]; mov r12, #7; hvc; pop {r4, r5}; bx lr
        let a32_6 = hex(
            "30 00 2d e9 08 40 9d e5 0c 50 9d e5 07 c0 a0 e3 71 ea 40 e1 30 00 bd e8 1e ff 2f e1",
        );
        assert_eq!(per_call_number(Isa::A32, 6, &a32_6, &[7]), Some(7));
    }

    #[test]
    fn broken_per_call_stubs_are_refused() {
        // Another number.
        let a64 = hex("10 04 80 d2 22 d4 01 d4 c0 03 5f d6");
        assert_eq!(per_call_number(Isa::A64, 2, &a64, &[33]), None);
        // Arity 5 without saving r4 (Linux's HYPERCALL5 minus its stmdb/ldm): ldr r4, [sp]; mov; hvc; bx lr.
        let unsaved = hex("00 40 9d e5 07 c0 a0 e3 71 ea 40 e1 1e ff 2f e1");
        assert_eq!(per_call_number(Isa::A32, 5, &unsaved, &[7]), None);
        // The wrong stack slot after the push: ldr r4, [sp, #0].
        let slot = hex("30 00 2d e9 00 40 9d e5 07 c0 a0 e3 71 ea 40 e1 30 00 bd e8 1e ff 2f e1");
        assert_eq!(per_call_number(Isa::A32, 5, &slot, &[7]), None);
        // The wrong tag (hvc #0xea0) in T32.
        let tag = hex("4f f0 20 0c e0 f7 a0 8e 70 47");
        assert_eq!(per_call_number(Isa::T32, 2, &tag, &[32]), None);
        // A stub with a second trap.
        let twice = hex("10 04 80 d2 22 d4 01 d4 22 d4 01 d4 c0 03 5f d6");
        assert_eq!(per_call_number(Isa::A64, 2, &twice, &[32]), None);
    }
}
