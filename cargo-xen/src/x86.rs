//! The audit of x86-64 code: Xen guests, their relocatable objects and static archives, decoded with
//! `iced-x86`.
//!
//! Xen's x86-64 convention: the call number in `rax`, the arguments in `rdi`, `rsi`, `rdx`, `r10`, `r8`;
//! the trap is `syscall` in a 64-bit PV guest, `vmcall` (Intel) or `vmmcall` (AMD) in an HVM or PVH guest.
//! Xen's hypercall page holds one 32-byte entry per call number doing that trap and `ret`, so a guest may
//! also `call page + nr * 32`. A site is
//! - an inline trap (`syscall`, `vmcall`, `vmmcall`) outside a stub, its number the constant in `rax`;
//! - a call or jump into the hypercall page, `page + nr * 32`: the page is the symbol `xen_hypercall_page`
//!   (this crate) or `hypercall_page` (Linux), or the address the ELF note `XEN_ELFNOTE_HYPERCALL_PAGE`
//!   names; in a relocatable object, a relocation against one of those symbols (`call hypercall_page+32*nr`);
//! - a call to a *per-hypercall* stub (the number built in: `mov eax, nr; syscall|vmcall|vmmcall; ret`,
//!   or `jmp page + NR * 32`; `rdi` untouched) or to a *generic* stub (the number is the first
//!   C argument: `rdi` → `rax`, the following arguments moved into Xen's registers, then a trap or a jump
//!   to `page + rax * 32`; this crate's per-arity stubs are also known by name).
//!
//! Register values come from a forward symbolic walk of each function (constants, the function's own
//! parameters, the page address, stack addresses; 8-byte stack slots are followed through memory, so a
//! number passed through `black_box` is still seen); values are forgotten at every branch target inside
//! the function, and stack slots also at every call and trap, so a number is only reported where it holds
//! on every path. The first argument (`rdi`, or `rsi` for a generic
//! stub) names the sub-operation. Set-up bytes, frames and the report are those of the ARM audit
//! ([`crate::audit`]); the arity of an inline `syscall` comes from Xen's PV64 column, of `vmcall`/`vmmcall`
//! from its HVM64 column, of a page entry from HVM64 where it has one, else PV64 (`hypercall-defs.c`).
//!
//! A hosted x86-64 program (one with a program interpreter) is refused: its `syscall`s are its operating
//! system's, not Xen's.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, bail};
use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess,
    OpKind, Register,
};
use object::read::archive::ArchiveFile;
use object::{Architecture, Object, ObjectSection, ObjectSymbol, SymbolKind};

use crate::audit::{
    Arch, FnIndex, Report, Site, SiteKind, StubKind, demangle, external_stub, stub_arity,
};
use crate::elf::{self, Isa};

/// Bytes per entry of Xen's hypercall page.
pub const ENTRY_BYTES: u64 = 32;
/// Bytes of the hypercall page (128 entries).
pub const PAGE_BYTES: u64 = 4096;
/// The symbols that name a hypercall page: this crate's, and Linux's.
pub const PAGE_SYMBOLS: [&str; 2] = ["xen_hypercall_page", "hypercall_page"];
/// `XEN_ELFNOTE_HYPERCALL_PAGE` (`public/elfnote.h`).
const NOTE_HYPERCALL_PAGE: u32 = 2;

pub use crate::audit::Trap;

/// The trap an instruction is, if it is one.
fn trap_of(m: Mnemonic) -> Option<Trap> {
    match m {
        Mnemonic::Syscall => Some(Trap::Syscall),
        Mnemonic::Vmcall => Some(Trap::Vmcall),
        Mnemonic::Vmmcall => Some(Trap::Vmmcall),
        _ => None,
    }
}

/// A 64-bit register's number in iced-x86's file (`rax` = 0 … `r15` = 15).
const fn number(r: Register) -> u8 {
    (r as u32 - Register::RAX as u32) as u8
}

const RAX: u8 = number(Register::RAX);
const RCX: u8 = number(Register::RCX);
const RDX: u8 = number(Register::RDX);
const RSP: u8 = number(Register::RSP);
const RSI: u8 = number(Register::RSI);
const RDI: u8 = number(Register::RDI);
const R8: u8 = number(Register::R8);
const R9: u8 = number(Register::R9);
const R10: u8 = number(Register::R10);
const R11: u8 = number(Register::R11);

/// Xen's argument registers, in order.
pub const XEN_ARGS: [u8; 5] = [RDI, RSI, RDX, R10, R8];
/// System V's integer argument registers, in order.
const SYSV_ARGS: [u8; 6] = [RDI, RSI, RDX, RCX, R8, R9];
/// The registers a System V call may change.
const CALLER_SAVED: [u8; 9] = [RAX, RCX, RDX, RSI, RDI, R8, R9, R10, R11];

/// The number of arguments Xen's x86 table (`xen/include/hypercall-defs.c`) declares for a 64-bit PV guest.
pub fn pv64_arity(nr: u64) -> Option<usize> {
    Some(match nr {
        23 => 0,
        0 | 5 | 7 | 9 | 15 | 16 | 19 | 27 | 35 | 36 | 48 | 49 => 1,
        2 | 3 | 6 | 8 | 10 | 12 | 13 | 17 | 21 | 25 | 28 | 29 | 30 | 31 | 32 | 33 | 34 | 37
        | 40 => 2,
        4 | 14 | 18 | 20 | 24 | 41 => 3,
        1 | 22 | 26 => 4,
        39 | 42 => 5,
        _ => return None,
    })
}

/// The number of arguments Xen's x86 table declares for a 64-bit HVM or PVH guest.
pub fn hvm64_arity(nr: u64) -> Option<usize> {
    Some(match nr {
        7 | 15 | 27 | 35 | 36 | 49 => 1,
        12 | 13 | 17 | 21 | 29 | 32 | 33 | 34 | 40 => 2,
        18 | 20 | 24 | 41 => 3,
        26 => 4,
        39 | 42 => 5,
        _ => return None,
    })
}

/// Whether `data` is an x86-64 ELF file, or an archive whose first ELF member is.
pub fn is_x86_64(data: &[u8]) -> bool {
    fn elf(d: &[u8]) -> bool {
        // `e_machine` (offset 18, in the file's byte order) is `EM_X86_64` (62).
        d.len() > 20
            && d.starts_with(b"\x7fELF")
            && match d[5] {
                1 => u16::from_le_bytes([d[18], d[19]]) == 62,
                2 => u16::from_be_bytes([d[18], d[19]]) == 62,
                _ => false,
            }
    }
    if data.starts_with(b"!<arch>\n") {
        let Ok(archive) = ArchiveFile::parse(data) else {
            return false;
        };
        return archive
            .members()
            .filter_map(|m| m.ok()?.data(data).ok())
            .find(|d| d.starts_with(b"\x7fELF"))
            .is_some_and(elf);
    }
    elf(data)
}

/// A function of the file.
struct Func {
    name: String,
    addr: u64,
    size: u64,
    insns: Vec<Instruction>,
    /// Relocations inside it: the patched address, the symbol named and the addend.
    relocs: Vec<(u64, String, i64)>,
    /// The hypercall page's address in its file (executables).
    page: Option<u64>,
}

/// Reads every x86-64 function of an ELF file or an archive of them.
fn read(data: &[u8]) -> Result<Vec<Func>> {
    elf::read_members(data, |bytes, _| read_object(bytes))
}

/// The address `XEN_ELFNOTE_HYPERCALL_PAGE` names, if a note section has it.
fn note_page(file: &object::File<'_>) -> Option<u64> {
    for s in file.sections() {
        let is_note = matches!(s.flags(), object::SectionFlags::Elf { .. })
            && s.name().is_ok_and(|n| n.starts_with(".note"));
        if !is_note {
            continue;
        }
        let Ok(d) = s.data() else { continue };
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
        };
        let align = |n: usize| n.checked_add(3).map(|v| v & !3);
        let mut at = 0usize;
        while at + 12 <= d.len() {
            let (Some(namesz), Some(descsz), Some(kind)) = (word(at), word(at + 4), word(at + 8))
            else {
                break;
            };
            let name_at = at + 12;
            let Some(desc_at) = align(namesz as usize).and_then(|n| name_at.checked_add(n)) else {
                break;
            };
            let name = d.get(name_at..name_at + namesz as usize)?;
            let desc = d.get(desc_at..desc_at.checked_add(descsz as usize)?)?;
            if name.starts_with(b"Xen") && kind == NOTE_HYPERCALL_PAGE {
                return match desc.len() {
                    8 => Some(u64::from_le_bytes(desc.try_into().ok()?)),
                    4 => Some(u32::from_le_bytes(desc.try_into().ok()?) as u64),
                    _ => None,
                };
            }
            let Some(next) = align(descsz as usize).and_then(|n| desc_at.checked_add(n)) else {
                break;
            };
            at = next;
        }
    }
    None
}

fn read_object(data: &[u8]) -> Result<Vec<Func>> {
    if !data.starts_with(b"\x7fELF") {
        bail!("not an ELF file");
    }
    let file = object::File::parse(data).context("malformed or truncated ELF file")?;
    if file.architecture() != Architecture::X86_64 {
        bail!(
            "unsupported architecture {:?}: expected 32-bit ARM, AArch64 or x86-64",
            file.architecture()
        );
    }
    if file.section_by_name(".interp").is_some() {
        bail!(
            "unsupported architecture: a hosted x86-64 program (it has a program interpreter, so its \
             `syscall`s are its operating system's); expected 32-bit ARM, AArch64 or an x86-64 Xen guest"
        );
    }
    let page = note_page(&file).or_else(|| {
        file.symbols()
            .find(|s| s.is_definition() && s.name().is_ok_and(|n| PAGE_SYMBOLS.contains(&n)))
            .map(|s| s.address())
    });
    let mut out = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text || sym.size() == 0 {
            continue;
        }
        let (Ok(name), Some(idx)) = (sym.name(), sym.section_index()) else {
            continue;
        };
        // The page is Xen's code, written at run time (`int3` until then): not a function of the guest.
        if name.is_empty() || PAGE_SYMBOLS.contains(&name) {
            continue;
        }
        let addr = sym.address();
        let (section, code) = elf::symbol_code(&file, idx, addr, sym.size(), name)?;
        let insns: Vec<Instruction> = Decoder::with_ip(64, code, addr, DecoderOptions::NONE)
            .into_iter()
            .collect();
        let mut relocs = Vec::new();
        for (at, target, tname, rel) in elf::relocations_in(&file, &section, addr, sym.size()) {
            // A section symbol stands for its section (`.text.foo` + addend).
            let tname = if tname.is_empty() {
                target
                    .section_index()
                    .and_then(|i| file.section_by_index(i).ok())
                    .and_then(|s| s.name().ok().map(str::to_string))
                    .unwrap_or_default()
            } else {
                tname.to_string()
            };
            relocs.push((at, tname, rel.addend()));
        }
        out.push(Func {
            name: name.to_string(),
            addr,
            size: sym.size(),
            insns,
            relocs,
            page,
        });
    }
    Ok(out)
}

/// What a register holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    Unknown,
    Const(u64),
    /// The function's N-th integer argument (1-based, System V).
    Param(u8),
    /// A parameter shifted left.
    Shl(u8, u32),
    /// The hypercall page's address.
    Page,
    /// The stack pointer at entry plus an offset.
    Sp(i64),
    /// `page + param * 32`: the page entry of the call number in that parameter.
    Entry(u8),
}

/// The registers at one instruction.
type State = [Val; 16];

fn reg(r: Register) -> Option<u8> {
    let f = r.full_register();
    (Register::RAX..=Register::R15)
        .contains(&f)
        .then(|| number(f))
}

/// Where a branch goes, if it enters the page or names a function: from the instruction's relocation in
/// an object (never falling back to the meaningless encoded target there), else its encoded target.
enum Target {
    /// Entry `nr` of the hypercall page.
    Entry(u64),
    /// A symbol (objects) or an address.
    Symbol(String),
    Addr(u64),
    /// An indirect branch to the register's value.
    Reg(Val),
    None,
}

fn target(f: &Func, i: &Instruction, st: &State) -> Target {
    let entry = |off: i64| {
        if off >= 0 && (off as u64) < PAGE_BYTES && (off as u64).is_multiple_of(ENTRY_BYTES) {
            Target::Entry(off as u64 / ENTRY_BYTES)
        } else {
            Target::None
        }
    };
    if let Some((at, name, addend)) = f
        .relocs
        .iter()
        .find(|(at, ..)| *at >= i.ip() && *at < i.next_ip())
    {
        // A pc-relative field: the target is symbol + addend + (end of instruction − field).
        let off = addend.wrapping_add((i.next_ip() - at) as i64);
        return if PAGE_SYMBOLS.contains(&name.as_str()) {
            entry(off)
        } else if off == 0 {
            Target::Symbol(name.clone())
        } else {
            Target::None
        };
    }
    match i.op0_kind() {
        OpKind::NearBranch64 => {
            let t = i.near_branch_target();
            match f.page {
                Some(p) if t >= p && t < p + PAGE_BYTES => entry((t - p) as i64),
                _ => Target::Addr(t),
            }
        }
        OpKind::Register => {
            reg(i.op0_register()).map_or(Target::None, |r| Target::Reg(st[r as usize]))
        }
        _ => Target::None,
    }
}

/// One thing the walk saw at an instruction: what the registers held just before it.
struct Walk {
    states: Vec<State>,
    /// Lowest stack offset reached (bytes below the return address).
    frame: u64,
}

fn walk(f: &Func, info: &mut InstructionInfoFactory) -> Walk {
    let inside: HashSet<u64> = f
        .insns
        .iter()
        .filter(|i| {
            matches!(
                i.flow_control(),
                FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch
            ) && i.op0_kind() == OpKind::NearBranch64
        })
        .map(Instruction::near_branch_target)
        .filter(|t| *t > f.addr && *t < f.addr + f.size)
        .collect();
    let mut st: State = [Val::Unknown; 16];
    for (n, r) in SYSV_ARGS.iter().enumerate() {
        st[*r as usize] = Val::Param(n as u8 + 1);
    }
    st[RSP as usize] = Val::Sp(0);
    let mut slots: HashMap<i64, Val> = HashMap::new();
    let (mut sp, mut low) = (0i64, 0i64);
    let mut states = Vec::with_capacity(f.insns.len());
    for i in &f.insns {
        if inside.contains(&i.ip()) {
            // The stack pointer is the same on every path into a join; nothing else need be.
            let rsp = st[RSP as usize];
            st = [Val::Unknown; 16];
            st[RSP as usize] = rsp;
            slots.clear();
        }
        states.push(st);
        // `[rsp-relative address]` of a memory operand, when its base holds a stack address.
        let stack_addr = |st: &State| -> Option<i64> {
            if i.memory_index() != Register::None {
                return None;
            }
            match reg(i.memory_base()).map(|b| st[b as usize]) {
                Some(Val::Sp(o)) => Some(o.wrapping_add(i.memory_displacement64() as i64)),
                _ => None,
            }
        };
        let mut sets: Vec<(u8, Val)> = Vec::new();
        match i.mnemonic() {
            Mnemonic::Push if i.op_count() == 1 => {
                if let Val::Sp(o) = st[RSP as usize] {
                    let v = match i.op0_kind() {
                        OpKind::Register if i.op0_register().size() == 8 => {
                            reg(i.op0_register()).map_or(Val::Unknown, |r| st[r as usize])
                        }
                        OpKind::Immediate8to64 | OpKind::Immediate32to64 => {
                            Val::Const(i.immediate(0))
                        }
                        _ => Val::Unknown,
                    };
                    slots.insert(o - 8, v);
                    sets.push((RSP, Val::Sp(o - 8)));
                }
            }
            Mnemonic::Pop if i.op_count() == 1 => {
                if let Val::Sp(o) = st[RSP as usize] {
                    sets.push((RSP, Val::Sp(o + 8)));
                    if i.op0_kind() == OpKind::Register
                        && let Some(r) = reg(i.op0_register())
                        && r != RSP
                    {
                        sets.push((r, slots.get(&o).copied().unwrap_or(Val::Unknown)));
                    }
                }
            }
            Mnemonic::Sub | Mnemonic::Add
                if i.op0_kind() == OpKind::Register
                    && i.op0_register() == Register::RSP
                    && matches!(
                        i.op1_kind(),
                        OpKind::Immediate8to64 | OpKind::Immediate32to64
                    ) =>
            {
                if let Val::Sp(o) = st[RSP as usize] {
                    let d = i.immediate(1) as i64;
                    let o = if i.mnemonic() == Mnemonic::Sub {
                        o - d
                    } else {
                        o + d
                    };
                    sets.push((RSP, Val::Sp(o)));
                }
            }
            _ => {}
        }
        // Stores to the stack: an 8-byte register or immediate is followed; anything else forgets the
        // slots it may overlap.
        if i.op_count() == 2
            && i.op0_kind() == OpKind::Memory
            && let Some(a) = stack_addr(&st)
        {
            let v = match i.op1_kind() {
                OpKind::Register if i.op1_register().size() == 8 => {
                    reg(i.op1_register()).map_or(Val::Unknown, |r| st[r as usize])
                }
                OpKind::Immediate32to64 if i.memory_size().size() == 8 => {
                    Val::Const(i.immediate(1))
                }
                _ => Val::Unknown,
            };
            let w = (i.memory_size().size() as i64).max(1);
            slots.retain(|k, _| *k + 8 <= a || *k >= a + w);
            if i.mnemonic() == Mnemonic::Mov && i.memory_size().size() == 8 {
                slots.insert(a, v);
            }
        }
        if matches!(
            i.flow_control(),
            FlowControl::Call | FlowControl::IndirectCall
        ) || trap_of(i.mnemonic()).is_some()
        {
            slots.clear();
        }
        // The stack frame.
        let rsp_imm = i.op0_kind() == OpKind::Register
            && i.op0_register() == Register::RSP
            && i.op_count() == 2
            && matches!(
                i.op1_kind(),
                OpKind::Immediate8to64 | OpKind::Immediate32to64
            );
        match i.mnemonic() {
            Mnemonic::Push => sp -= 8,
            Mnemonic::Pop => sp += 8,
            Mnemonic::Sub if rsp_imm => sp -= i.immediate(1) as i64,
            Mnemonic::Add if rsp_imm => sp += i.immediate(1) as i64,
            _ => {}
        }
        low = low.min(sp);
        // The registers.
        let d = if i.op_count() > 0 && i.op0_kind() == OpKind::Register {
            reg(i.op0_register())
        } else {
            None
        };
        let wide = i.op0_register().size() == 8;
        let src = if i.op_count() > 1 && i.op1_kind() == OpKind::Register {
            reg(i.op1_register()).map(|r| st[r as usize])
        } else {
            None
        };
        let new = match (i.mnemonic(), d) {
            (Mnemonic::Mov, Some(_)) if i.op1_kind() != OpKind::Register => match i.op1_kind() {
                OpKind::Immediate32 | OpKind::Immediate64 | OpKind::Immediate32to64 => {
                    let v = i.immediate(1);
                    Some(Val::Const(if wide { v } else { v as u32 as u64 }))
                }
                OpKind::Memory if wide => stack_addr(&st).and_then(|a| slots.get(&a).copied()),
                _ => None,
            },
            (Mnemonic::Mov, Some(_)) if matches!(i.op0_register().size(), 4 | 8) => match src {
                Some(Val::Const(v)) if !wide => Some(Val::Const(v as u32 as u64)),
                Some(v) => Some(v),
                None => None,
            },
            (Mnemonic::Xor, Some(r))
                if i.op1_kind() == OpKind::Register && reg(i.op1_register()) == Some(r) =>
            {
                Some(Val::Const(0))
            }
            (Mnemonic::Lea, Some(_)) if i.memory_base() == Register::RIP => {
                let rel = f
                    .relocs
                    .iter()
                    .find(|(at, ..)| *at >= i.ip() && *at < i.next_ip());
                match rel {
                    Some((at, name, addend))
                        if PAGE_SYMBOLS.contains(&name.as_str())
                            && addend.wrapping_add((i.next_ip() - at) as i64) == 0 =>
                    {
                        Some(Val::Page)
                    }
                    Some(_) => None,
                    None if Some(i.memory_displacement64()) == f.page => Some(Val::Page),
                    None => Some(Val::Const(i.memory_displacement64())),
                }
            }
            (Mnemonic::Lea, Some(_)) if wide => stack_addr(&st).map(Val::Sp),
            (Mnemonic::Shl, Some(r)) if i.op1_kind() == OpKind::Immediate8 && wide => {
                match st[r as usize] {
                    Val::Param(p) => Some(Val::Shl(p, i.immediate(1) as u32)),
                    _ => None,
                }
            }
            (Mnemonic::Add, Some(r)) if wide => match (st[r as usize], src) {
                (Val::Shl(p, 5), Some(Val::Page)) | (Val::Page, Some(Val::Shl(p, 5))) => {
                    Some(Val::Entry(p))
                }
                _ => None,
            },
            _ => None,
        };
        // Everything the instruction writes is unknown unless modelled above.
        for r in clobbers(i, &st) {
            st[r as usize] = Val::Unknown;
        }
        for u in info.info(i).used_registers() {
            if matches!(
                u.access(),
                OpAccess::Write
                    | OpAccess::ReadWrite
                    | OpAccess::CondWrite
                    | OpAccess::ReadCondWrite
            ) && let Some(r) = reg(u.register())
            {
                st[r as usize] = Val::Unknown;
            }
        }
        if let (Some(v), Some(r)) = (new, d) {
            st[r as usize] = v;
        }
        for (r, v) in sets {
            st[r as usize] = v;
        }
    }
    Walk {
        states,
        frame: low.unsigned_abs(),
    }
}

/// The registers an instruction writes.
fn writes(i: &Instruction, info: &mut InstructionInfoFactory) -> Vec<u8> {
    let mut v: Vec<u8> = info
        .info(i)
        .used_registers()
        .iter()
        .filter(|u| {
            matches!(
                u.access(),
                OpAccess::Write
                    | OpAccess::ReadWrite
                    | OpAccess::CondWrite
                    | OpAccess::ReadCondWrite
            )
        })
        .filter_map(|u| reg(u.register()))
        .collect();
    v.extend(clobbers(i, &[Val::Unknown; 16]));
    v
}

/// The registers a call or trap changes besides those the decoder lists: a call, every caller-saved
/// register; a trap, `rax` (the result) and the argument registers of Xen's declared arity, which Xen's
/// debug build poisons (`rcx` and `r11`, which `syscall` itself overwrites, the decoder lists).
fn clobbers(i: &Instruction, st: &State) -> Vec<u8> {
    if let Some(t) = trap_of(i.mnemonic()) {
        let n = arity(constant(st[RAX as usize]), Some(t)).min(5);
        return std::iter::once(RAX)
            .chain(XEN_ARGS[..n].iter().copied())
            .collect();
    }
    if matches!(
        i.flow_control(),
        FlowControl::Call | FlowControl::IndirectCall
    ) {
        return CALLER_SAVED.to_vec();
    }
    Vec::new()
}

/// A register set-up instruction: `mov reg, imm`, `mov reg, reg`, `xor reg, reg` (the zeroing idiom).
fn is_setup(i: &Instruction) -> bool {
    let reg_dest = i.op_count() == 2 && i.op0_kind() == OpKind::Register;
    match i.mnemonic() {
        Mnemonic::Mov => {
            reg_dest
                && matches!(
                    i.op1_kind(),
                    OpKind::Register
                        | OpKind::Immediate32
                        | OpKind::Immediate64
                        | OpKind::Immediate32to64
                )
        }
        Mnemonic::Xor => {
            reg_dest && i.op1_kind() == OpKind::Register && i.op0_register() == i.op1_register()
        }
        _ => false,
    }
}

/// Bytes of the set-up instructions for `inputs` between `from` and the site at `at` (exclusive).
fn setup_bytes(
    f: &Func,
    from: usize,
    at: usize,
    inputs: &[u8],
    info: &mut InstructionInfoFactory,
) -> u64 {
    let mut bytes = 0;
    for &r in inputs {
        for i in f.insns[from..at].iter().rev() {
            if writes(i, info).contains(&r) {
                if is_setup(i) {
                    bytes += i.len() as u64;
                }
                break;
            }
        }
    }
    bytes
}

/// How a function reaches Xen at one instruction, before stubs are known: a trap or a page entry.
enum Entry {
    Trap(Trap),
    /// Entry `nr`, or the entry of the number in a parameter (`Err(param)`).
    Page(Result<u64, u8>),
}

fn entry_at(f: &Func, i: &Instruction, st: &State) -> Option<Entry> {
    if let Some(t) = trap_of(i.mnemonic()) {
        return Some(Entry::Trap(t));
    }
    if !matches!(
        i.flow_control(),
        FlowControl::Call
            | FlowControl::UnconditionalBranch
            | FlowControl::IndirectBranch
            | FlowControl::IndirectCall
    ) {
        return None;
    }
    match target(f, i, st) {
        Target::Entry(n) => Some(Entry::Page(Ok(n))),
        Target::Reg(Val::Entry(p)) => Some(Entry::Page(Err(p))),
        _ => None,
    }
}

fn constant(v: Val) -> Option<u64> {
    match v {
        Val::Const(n) => Some(n),
        _ => None,
    }
}

/// What kind of stub `f` is: this crate's per-arity stubs by name; otherwise by code: exactly one trap or
/// page entry, no other call, at most 16 instructions, and there either a constant number (in `rax`, or
/// the entry's) with `rdi` untouched (per-hypercall), or the first parameter as the number (generic; its
/// arity is how many of the following parameters sit in Xen's argument registers).
fn classify(f: &Func, demangled: &str, w: &Walk) -> Option<StubKind> {
    if let Some(arity) = stub_arity(demangled) {
        return Some(StubKind::Generic { arity });
    }
    if f.insns.len() > 16 {
        return None;
    }
    let entries: Vec<(usize, Entry)> = f
        .insns
        .iter()
        .enumerate()
        .filter_map(|(n, i)| entry_at(f, i, &w.states[n]).map(|e| (n, e)))
        .collect();
    let [(at, e)] = &entries[..] else {
        return None;
    };
    let calls = f.insns.iter().enumerate().any(|(n, i)| {
        n != *at
            && matches!(
                i.flow_control(),
                FlowControl::Call | FlowControl::IndirectCall
            )
    });
    if calls {
        return None;
    }
    let st = &w.states[*at];
    let number = match e {
        Entry::Trap(_) => match st[RAX as usize] {
            Val::Const(n) => Ok(n),
            Val::Param(1) => Err(1),
            _ => return None,
        },
        Entry::Page(n) => *n,
    };
    match number {
        Ok(number) if st[RDI as usize] == Val::Param(1) => Some(StubKind::PerCall { number }),
        Err(1) => {
            let arity = XEN_ARGS
                .iter()
                .enumerate()
                .take_while(|(n, r)| st[**r as usize] == Val::Param(*n as u8 + 2))
                .count();
            Some(StubKind::Generic { arity })
        }
        _ => None,
    }
}

/// The arity Xen declares for a call through `trap` (`None`: through the page).
fn arity(number: Option<u64>, trap: Option<Trap>) -> usize {
    let n = match (number, trap) {
        (None, _) => None,
        (Some(n), Some(Trap::Syscall)) => pv64_arity(n),
        (Some(n), Some(_)) => hvm64_arity(n),
        (Some(n), None) => hvm64_arity(n).or_else(|| pv64_arity(n)),
    };
    n.unwrap_or(5)
}

/// Audits x86-64 ELF bytes (an executable, a relocatable object or a static archive).
pub fn analyze(data: &[u8]) -> Result<Report> {
    let functions = read(data)?;
    if functions.is_empty() {
        bail!("no function symbols: the file is stripped or has no code");
    }
    let mut info = InstructionInfoFactory::new();
    let names: Vec<String> = functions.iter().map(|f| demangle(&f.name)).collect();
    let walks: Vec<Walk> = functions.iter().map(|f| walk(f, &mut info)).collect();
    let kinds: Vec<Option<StubKind>> = (0..functions.len())
        .map(|n| classify(&functions[n], &names[n], &walks[n]))
        .collect();
    let FnIndex { by_addr, by_name } =
        FnIndex::new(functions.iter().map(|f| (f.addr, f.name.as_str())));
    let mut report = Report::default();
    for (fi, f) in functions.iter().enumerate() {
        let stub = kinds[fi];
        let w = &walks[fi];
        let mut sites = Vec::new();
        let mut prev = 0usize;
        for (n, i) in f.insns.iter().enumerate() {
            let st = &w.states[n];
            if let Some(e) = entry_at(f, i, st) {
                let (kind, number, trap, page) = match e {
                    Entry::Trap(t) => {
                        (SiteKind::Trap(t), constant(st[RAX as usize]), Some(t), None)
                    }
                    Entry::Page(Ok(nr)) => (SiteKind::Page, Some(nr), None, Some(nr)),
                    Entry::Page(Err(_)) => (SiteKind::Page, None, None, None),
                };
                let number = match stub {
                    Some(StubKind::PerCall { number }) => Some(number),
                    _ => number,
                };
                let inputs: Vec<u8> = std::iter::once(RAX)
                    .filter(|_| page.is_none())
                    .chain(XEN_ARGS[..arity(number, trap).min(5)].iter().copied())
                    .collect();
                sites.push(Site {
                    addr: i.ip(),
                    kind,
                    number,
                    first_arg: constant(st[RDI as usize]),
                    setup_bytes: setup_bytes(f, prev, n, &inputs, &mut info),
                    stub: page.map(|_| "hypercall page".to_string()),
                });
                prev = n + 1;
                continue;
            }
            if !matches!(
                i.flow_control(),
                FlowControl::Call | FlowControl::UnconditionalBranch
            ) {
                continue;
            }
            let callee = match target(f, i, st) {
                Target::Symbol(s) => by_name.get(s.as_str()).copied().ok_or(s),
                Target::Addr(a) if a != f.addr => match by_addr.get(&a) {
                    Some(c) => Ok(*c),
                    None => continue,
                },
                _ => continue,
            };
            let (callee, kind) = match callee {
                Ok(c) => match kinds[c] {
                    Some(k) => (names[c].clone(), k),
                    None => continue,
                },
                // A stub defined in another file is known by its name only.
                Err(s) => match external_stub(&s) {
                    Some(stub) => stub,
                    None => continue,
                },
            };
            let (kind, number, first_arg, inputs) = match kind {
                StubKind::Generic { arity } => (
                    SiteKind::Outline { arity },
                    constant(st[RDI as usize]),
                    constant(st[RSI as usize]),
                    SYSV_ARGS[..=arity.min(5)].to_vec(),
                ),
                StubKind::PerCall { number } => (
                    SiteKind::PerCall,
                    Some(number),
                    constant(st[RDI as usize]),
                    SYSV_ARGS[..arity(Some(number), None).min(6)].to_vec(),
                ),
            };
            sites.push(Site {
                addr: i.ip(),
                kind,
                number,
                first_arg,
                setup_bytes: setup_bytes(f, prev, n, &inputs, &mut info),
                stub: Some(callee),
            });
            prev = n + 1;
        }
        report.add(
            names[fi].clone(),
            Isa::A64,
            Arch::X86_64,
            f.size,
            w.frame,
            sites,
            stub,
        );
    }
    Ok(report.stubs_last())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn func(code: &[u8]) -> Func {
        Func {
            name: "f".into(),
            addr: 0x1000,
            size: code.len() as u64,
            insns: Decoder::with_ip(64, code, 0x1000, DecoderOptions::NONE)
                .into_iter()
                .collect(),
            relocs: Vec::new(),
            page: Some(0x4000),
        }
    }

    fn kind(code: &[u8]) -> Option<StubKind> {
        let f = func(code);
        let w = walk(&f, &mut InstructionInfoFactory::new());
        classify(&f, "f", &w)
    }

    #[test]
    fn stubs_are_recognised_by_their_code() {
        // mov eax, 32 ; syscall ; ret: a Linux-shaped per-hypercall stub (Xen's page entry for PVH).
        assert_eq!(
            kind(&[0xB8, 0x20, 0, 0, 0, 0x0F, 0x05, 0xC3]),
            Some(StubKind::PerCall { number: 32 })
        );
        // mov eax, 29 ; vmmcall ; ret, and vmcall.
        assert_eq!(
            kind(&[0xB8, 29, 0, 0, 0, 0x0F, 0x01, 0xD9, 0xC3]),
            Some(StubKind::PerCall { number: 29 })
        );
        assert_eq!(
            kind(&[0xB8, 29, 0, 0, 0, 0x0F, 0x01, 0xC1, 0xC3]),
            Some(StubKind::PerCall { number: 29 })
        );
        // jmp page + 17 * 32 (a per-hypercall stub that enters the page): 0x1000 + 5 + rel = 0x4220.
        let rel = (0x4220i64 - 0x1005) as i32;
        let mut jmp = vec![0xE9];
        jmp.extend(rel.to_le_bytes());
        assert_eq!(kind(&jmp), Some(StubKind::PerCall { number: 17 }));
        // mov rax, rdi ; mov rdi, rsi ; mov rsi, rdx ; shl rax, 5 ; lea r11, [rip + page] ; add rax, r11 ;
        // jmp rax: this crate's per-arity stub, arity 2.
        let mut code = vec![
            0x48, 0x89, 0xF8, 0x48, 0x89, 0xF7, 0x48, 0x89, 0xD6, 0x48, 0xC1, 0xE0, 0x05,
        ];
        let lea_end = 0x1000 + code.len() as i64 + 7;
        code.extend([0x4C, 0x8D, 0x1D]);
        code.extend(((0x4000 - lea_end) as i32).to_le_bytes());
        code.extend([0x4C, 0x01, 0xD8, 0xFF, 0xE0]);
        assert_eq!(kind(&code), Some(StubKind::Generic { arity: 2 }));
        // The same with the page's address off by one entry is no stub: the jump is not into the page base.
        let mut off = code.clone();
        let d = i32::from_le_bytes(off[16..20].try_into().unwrap()) + 32;
        off[16..20].copy_from_slice(&d.to_le_bytes());
        assert_eq!(kind(&off), None);
        // mov rax, rdi ; mov rdi, rsi ; syscall ; ret: a generic stub of arity 1 with an inline trap.
        assert_eq!(
            kind(&[0x48, 0x89, 0xF8, 0x48, 0x89, 0xF7, 0x0F, 0x05, 0xC3]),
            Some(StubKind::Generic { arity: 1 })
        );
        // Not stubs: a caller that sets its first argument; two traps; a number that is not constant.
        assert_eq!(
            kind(&[0xB8, 0x20, 0, 0, 0, 0x31, 0xFF, 0x0F, 0x05, 0xC3]),
            None
        );
        assert_eq!(
            kind(&[
                0xB8, 0x20, 0, 0, 0, 0x0F, 0x05, 0xB8, 0x20, 0, 0, 0, 0x0F, 0x05, 0xC3
            ]),
            None
        );
        assert_eq!(kind(&[0x48, 0x89, 0xD0, 0x0F, 0x05, 0xC3]), None);
    }

    #[test]
    fn a_branch_target_forgets_the_registers() {
        // mov eax, 32 ; test ecx, ecx ; je L ; mov eax, 33 ; L: syscall ; ret: the number depends on the
        // path, so none is reported (and the function is not a per-hypercall stub).
        let code = [
            0xB8, 0x20, 0, 0, 0, 0x85, 0xC9, 0x74, 0x05, 0xB8, 0x21, 0, 0, 0, 0x0F, 0x05, 0xC3,
        ];
        let f = func(&code);
        let w = walk(&f, &mut InstructionInfoFactory::new());
        let at = f
            .insns
            .iter()
            .position(|i| i.mnemonic() == Mnemonic::Syscall)
            .unwrap();
        assert_eq!(w.states[at][RAX as usize], Val::Unknown);
        assert_eq!(classify(&f, "f", &w), None);
    }

    /// The arity of every number in one of `src/xen/nr.rs`'s tables (`fn_name`), read from its text: the
    /// library's table, itself compared with Xen's `hypercall-defs.c` by `cargo xtask`.
    fn library_table(fn_name: &str) -> HashMap<u64, usize> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../src/xen/nr.rs");
        let text = std::fs::read_to_string(path).expect("the library's src/xen/nr.rs");
        let consts: HashMap<&str, u64> = text
            .lines()
            .filter_map(|l| {
                let rest = l.trim().strip_prefix("pub const ")?;
                let (name, value) = rest.split_once(": usize = ")?;
                Some((name, value.trim_end_matches(';').parse().ok()?))
            })
            .collect();
        let body = text
            .split(&format!("pub const fn {fn_name}("))
            .nth(1)
            .and_then(|b| b.split("_ => None").next())
            .expect("the table");
        body.lines()
            .filter_map(|l| {
                let (name, arity) = l.trim().split_once(" => Some(")?;
                Some((consts[name], arity.trim_end_matches("),").parse().ok()?))
            })
            .collect()
    }

    #[test]
    fn the_arity_tables_are_the_library_s() {
        for (table, ours) in [
            ("x86_pv64_arity", pv64_arity as fn(u64) -> Option<usize>),
            ("x86_hvm64_arity", hvm64_arity),
        ] {
            let lib = library_table(table);
            assert!(lib.len() > 20, "{table}: {} entries read", lib.len());
            for n in 0..64u64 {
                assert_eq!(ours(n), lib.get(&n).copied(), "{table}({n})");
            }
        }
    }

    #[test]
    fn x86_64_is_told_from_its_header() {
        assert!(!is_x86_64(b""));
        assert!(!is_x86_64(b"\x7fELF\x02\x01"));
        let mut h = vec![0x7F, b'E', b'L', b'F', 2, 1, 1];
        h.resize(64, 0);
        h[18] = 62;
        assert!(is_x86_64(&h));
        h[18] = 183; // EM_AARCH64
        assert!(!is_x86_64(&h));
    }
}
