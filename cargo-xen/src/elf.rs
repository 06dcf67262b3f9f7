//! Reading ARM ELF files: the functions they define, decoded into a small instruction model.
//!
//! Works on executables, relocatable objects and static archives (`.a`), 32-bit ARM (A32 and T32, told
//! apart by the symbol's Thumb bit and the `$a`/`$t`/`$d` mapping symbols, so literal pools are not decoded
//! as code) and AArch64. Decoding uses `yaxpeax-arm`; the model keeps what the checks and the audit need:
//! traps, immediate moves, register moves, calls, and memory accesses with their base register.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use object::read::archive::ArchiveFile;
use object::{Architecture, Object, ObjectSection, ObjectSymbol, SectionIndex, SymbolKind};
use yaxpeax_arch::{Decoder, Reader, U8Reader};
use yaxpeax_arm::armv7 as a32;
use yaxpeax_arm::armv8::a64;

/// An instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// 32-bit ARM, A32 encoding.
    A32,
    /// 32-bit ARM, Thumb-2 (T32) encoding.
    T32,
    /// AArch64.
    A64,
}

impl Isa {
    /// Short lowercase name (`a32`, `t32`, `a64`).
    pub fn name(self) -> &'static str {
        match self {
            Isa::A32 => "a32",
            Isa::T32 => "t32",
            Isa::A64 => "a64",
        }
    }

    /// The register that carries Xen's call number.
    pub fn number_reg(self) -> Reg {
        match self {
            Isa::A32 | Isa::T32 => 12,
            Isa::A64 => 16,
        }
    }

    /// The stack pointer in this model's numbering.
    pub fn sp(self) -> Reg {
        match self {
            Isa::A32 | Isa::T32 => 13,
            Isa::A64 => SP64,
        }
    }

    /// The frame pointer register of the ABI (A32 `r11`, T32 `r7`, A64 `x29`).
    pub fn fp(self) -> Reg {
        match self {
            Isa::A32 => 11,
            Isa::T32 => 7,
            Isa::A64 => 29,
        }
    }

    /// The register name in assembler syntax.
    pub fn reg_name(self, r: Reg) -> String {
        match (self, r) {
            (Isa::A64, SP64) => "sp".into(),
            (Isa::A64, ZR64) => "xzr".into(),
            (Isa::A64, r) => format!("x{r}"),
            (_, 13) => "sp".into(),
            (_, 14) => "lr".into(),
            (_, 15) => "pc".into(),
            (_, r) => format!("r{r}"),
        }
    }

    /// The encoding of `hvc #0xEA1` as the 32-bit value this model reports in [`Insn::raw`].
    pub fn xen_hvc(self) -> u32 {
        match self {
            Isa::A32 => 0xE140_EA71,
            Isa::T32 => 0xF7E0_8EA1,
            Isa::A64 => 0xD401_D422,
        }
    }
}

/// A general-purpose register: `r0`–`r15`, or `x0`–`x30`, [`SP64`], [`ZR64`].
pub type Reg = u8;
/// AArch64 `sp`.
pub const SP64: Reg = 31;
/// AArch64 `xzr`.
pub const ZR64: Reg = 32;

/// Whether a memory access reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load (including `pop`/`ldm`/`ldp`).
    Load,
    /// A store (including `push`/`stm`/`stp`).
    Store,
}

/// The part of an instruction the checks care about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `hvc #imm`.
    Hvc(u16),
    /// `rd = imm` (`mov`, `movw` (decoded as `mov`), `movz`, `movn`, `mvn`).
    MovImm {
        /// Destination.
        rd: Reg,
        /// The value written.
        imm: u64,
    },
    /// `rd[shift+15:shift] = imm`, other bits kept (`movt`, `movk`).
    MovKeep {
        /// Destination.
        rd: Reg,
        /// The 16-bit value.
        imm: u64,
        /// Its bit position.
        shift: u8,
    },
    /// `rd = rs`.
    MovReg {
        /// Destination.
        rd: Reg,
        /// Source.
        rs: Reg,
    },
    /// `rd = rn + imm` (`add`/`sub` with an immediate; also `mov rd, sp`).
    AddImm {
        /// Destination.
        rd: Reg,
        /// Source.
        rn: Reg,
        /// The signed immediate added.
        imm: i64,
    },
    /// A load or store.
    Mem {
        /// Load or store.
        access: Access,
        /// The registers transferred, in ascending address order (several for `ldm`/`stm`/`ldp`/`stp`/
        /// `push`/`pop`).
        regs: Vec<Reg>,
        /// Bytes per register transferred.
        width: u8,
        /// The base register.
        base: Reg,
        /// The address of the first register relative to the base's value before the instruction, when it
        /// is an immediate offset.
        offset: Option<i64>,
        /// `Some(delta)` when the base is written back with `base + delta`; `Some(None)`-like unknown
        /// deltas (register post-index) are reported as `writeback: true, delta: None`.
        writeback: bool,
        /// The writeback delta, when known.
        delta: Option<i64>,
    },
    /// A call (`bl`/`blx`) with its target address when it is a constant.
    Call(Option<u64>),
    /// Anything else; `writes` is the destination register, if the first operand is one.
    Other {
        /// The register written, if any.
        writes: Option<Reg>,
    },
    /// Bytes that do not decode.
    Undecodable,
}

/// One decoded instruction.
#[derive(Clone, Debug)]
pub struct Insn {
    /// Address (the symbol's section-relative address for relocatable objects).
    pub addr: u64,
    /// Length in bytes (2 or 4).
    pub len: u8,
    /// The encoding: the 32-bit word for A32/A64, `(first halfword << 16) | second` for 32-bit T32, the
    /// halfword for 16-bit T32.
    pub raw: u32,
    /// The mnemonic as the decoder names it, lowercase.
    pub mnemonic: String,
    /// The model.
    pub op: Op,
}

/// A function defined in the file.
#[derive(Clone, Debug)]
pub struct Function {
    /// Symbol name.
    pub name: String,
    /// Instruction set.
    pub isa: Isa,
    /// Address of the first byte (Thumb bit cleared).
    pub addr: u64,
    /// Size in bytes, from the symbol.
    pub size: u64,
    /// The decoded instructions (data ranges marked by `$d` are left out).
    pub insns: Vec<Insn>,
    /// The archive member or file it came from.
    pub origin: String,
    /// Relocations inside the function (relocatable objects): the address patched and the symbol named.
    pub relocs: Vec<(u64, String)>,
}

/// Reads every function of an ELF file or a static archive of ELF files.
pub fn read_functions(data: &[u8]) -> Result<Vec<Function>> {
    read_members(data, read_object)
}

/// `read` of every ELF member of a static archive (given the member's name), or of `data` itself (given
/// `""`) when it is not an archive.
pub(crate) fn read_members<T>(
    data: &[u8],
    read: impl Fn(&[u8], &str) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    if data.starts_with(b"!<arch>\n") {
        let archive = ArchiveFile::parse(data).context("malformed archive")?;
        let mut out = Vec::new();
        for member in archive.members() {
            let member = member.context("malformed archive member")?;
            let name = String::from_utf8_lossy(member.name()).into_owned();
            let bytes = member.data(data).context("truncated archive member")?;
            if bytes.starts_with(b"\x7fELF") {
                out.extend(read(bytes, &name).with_context(|| format!("in {name}"))?);
            }
        }
        return Ok(out);
    }
    read(data, "")
}

/// The section of the function symbol `name` (in section `idx`, at `addr`, `size` bytes) and its code.
pub(crate) fn symbol_code<'d, 'f>(
    file: &'f object::File<'d>,
    idx: SectionIndex,
    addr: u64,
    size: u64,
    name: &str,
) -> Result<(object::Section<'d, 'f>, &'d [u8])> {
    let section = file
        .section_by_index(idx)
        .context("symbol in a missing section")?;
    let bytes = section.data().context("truncated section")?;
    let start = addr
        .checked_sub(section.address())
        .and_then(|o| usize::try_from(o).ok())
        .context("symbol outside its section")?;
    let end = usize::try_from(size)
        .ok()
        .and_then(|s| start.checked_add(s))
        .filter(|&e| e <= bytes.len())
        .with_context(|| format!("symbol {name} extends past its section"))?;
    Ok((section, &bytes[start..end]))
}

/// The relocations of `section` that patch `addr..addr + size`: the address patched, the symbol named
/// (when it can be read, with its name) and the relocation.
pub(crate) fn relocations_in<'d, 'f>(
    file: &'f object::File<'d>,
    section: &object::Section<'d, 'f>,
    addr: u64,
    size: u64,
) -> Vec<(u64, object::Symbol<'d, 'f>, &'d str, object::Relocation)> {
    let mut out = Vec::new();
    for (off, rel) in section.relocations() {
        let at = section.address() + off;
        if at < addr || at >= addr + size {
            continue;
        }
        if let object::RelocationTarget::Symbol(si) = rel.target()
            && let Ok(target) = file.symbol_by_index(si)
            && let Ok(tname) = target.name()
        {
            out.push((at, target, tname, rel));
        }
    }
    out
}

/// Reads every function of one ELF object or executable.
pub fn read_object(data: &[u8], origin: &str) -> Result<Vec<Function>> {
    if !data.starts_with(b"\x7fELF") {
        bail!("not an ELF file");
    }
    let file = object::File::parse(data).context("malformed or truncated ELF file")?;
    let arm32 = match file.architecture() {
        Architecture::Arm => true,
        Architecture::Aarch64 => false,
        other => {
            bail!("unsupported architecture {other:?}: expected 32-bit ARM, AArch64 or x86-64")
        }
    };

    // Mapping symbols, per section: (address, kind) sorted by address.
    let mut maps: HashMap<SectionIndex, Vec<(u64, u8)>> = HashMap::new();
    for sym in file.symbols() {
        let (Ok(name), Some(idx)) = (sym.name(), sym.section_index()) else {
            continue;
        };
        let kind = match name.as_bytes() {
            [b'$', k @ (b'a' | b't' | b'd' | b'x'), rest @ ..]
                if rest.is_empty() || rest[0] == b'.' =>
            {
                *k
            }
            _ => continue,
        };
        maps.entry(idx).or_default().push((sym.address(), kind));
    }
    for v in maps.values_mut() {
        v.sort_unstable();
    }

    let mut out = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text || sym.size() == 0 {
            continue;
        }
        let (Ok(name), Some(idx)) = (sym.name(), sym.section_index()) else {
            continue;
        };
        if name.is_empty() || name.starts_with('$') {
            continue;
        }
        let raw_addr = sym.address();
        let thumb = arm32 && raw_addr & 1 == 1;
        let addr = if arm32 { raw_addr & !1 } else { raw_addr };
        let (section, code) = symbol_code(&file, idx, addr, sym.size(), name)?;
        let base_isa = if !arm32 {
            Isa::A64
        } else if thumb {
            Isa::T32
        } else {
            Isa::A32
        };
        // Split the function into runs by the mapping symbols inside it.
        let mut runs: Vec<(u64, Option<Isa>)> = vec![(addr, Some(base_isa))];
        if let Some(m) = maps.get(&idx) {
            for &(a, k) in m
                .iter()
                .filter(|(a, _)| *a > addr && *a < addr + sym.size())
            {
                let isa = match k {
                    b'a' => Some(Isa::A32),
                    b't' => Some(Isa::T32),
                    b'x' => Some(Isa::A64),
                    _ => None,
                };
                runs.push((a, isa));
            }
        }
        let mut insns = Vec::new();
        for (i, &(a, isa)) in runs.iter().enumerate() {
            let run_end = runs.get(i + 1).map_or(addr + sym.size(), |r| r.0);
            let Some(isa) = isa else { continue };
            let lo = (a - addr) as usize;
            let hi = (run_end - addr) as usize;
            insns.extend(decode(isa, &code[lo..hi], a));
        }
        let relocs = relocations_in(&file, &section, addr, sym.size())
            .into_iter()
            .map(|(at, _, tname, _)| (at, tname.to_string()))
            .collect();
        out.push(Function {
            name: name.to_string(),
            isa: base_isa,
            addr,
            size: sym.size(),
            insns,
            origin: origin.to_string(),
            relocs,
        });
    }
    Ok(out)
}

/// Decodes `code` (starting at `addr`) as `isa`. Undecodable bytes become [`Op::Undecodable`] and decoding
/// resumes at the next 2 (T32) or 4 bytes.
pub fn decode(isa: Isa, code: &[u8], addr: u64) -> Vec<Insn> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < code.len() {
        let rest = &code[pos..];
        let (len, mnemonic, op) = match isa {
            Isa::A32 | Isa::T32 => {
                let dec = if isa == Isa::T32 {
                    a32::InstDecoder::default_thumb()
                } else {
                    a32::InstDecoder::default()
                };
                let mut reader = U8Reader::new(rest);
                match dec.decode(&mut reader) {
                    Ok(inst) => {
                        let len =
                            <U8Reader<'_> as Reader<u32, u8>>::total_offset(&mut reader) as usize;
                        let op = model_arm(&inst, isa, addr + pos as u64);
                        (len, format!("{:?}", inst.opcode).to_lowercase(), op)
                    }
                    Err(_) => (
                        if isa == Isa::T32 { 2 } else { 4 },
                        "?".into(),
                        Op::Undecodable,
                    ),
                }
            }
            Isa::A64 => {
                let mut reader = U8Reader::new(rest);
                match a64::InstDecoder::default().decode(&mut reader) {
                    Ok(inst) => {
                        let op = model_a64(&inst, addr + pos as u64);
                        (4, format!("{:?}", inst.opcode).to_lowercase(), op)
                    }
                    Err(_) => (4, "?".into(), Op::Undecodable),
                }
            }
        };
        let len = len.clamp(2, 4).min(rest.len().max(1));
        let raw = raw_word(isa, &rest[..len.min(rest.len())]);
        out.push(Insn {
            addr: addr + pos as u64,
            len: len as u8,
            raw,
            mnemonic,
            op,
        });
        pos += len;
    }
    out
}

fn raw_word(isa: Isa, b: &[u8]) -> u32 {
    let h = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as u32;
    match (isa, b.len()) {
        (Isa::T32, 4) => (h(0) << 16) | h(2),
        (Isa::T32, 2) => h(0),
        (_, 4) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        _ => 0,
    }
}

fn reglist(mask: u16) -> Vec<Reg> {
    (0..16u8).filter(|i| mask & (1 << i) != 0).collect()
}

fn model_arm(inst: &a32::Instruction, isa: Isa, addr: u64) -> Op {
    use a32::{Opcode as O, Operand as P};
    let reg0 = match inst.operands[0] {
        P::Reg(r) | P::RegWBack(r, _) => Some(r.number()),
        _ => None,
    };
    let imm = |p: &P| match *p {
        P::Imm12(v) => Some(v as u64),
        P::Imm32(v) => Some(v as u64),
        _ => None,
    };
    let conditional = inst.condition != a32::ConditionCode::AL;
    match inst.opcode {
        O::HVC => {
            let v = inst.operands.iter().find_map(imm).unwrap_or(u64::MAX);
            return Op::Hvc(v as u16);
        }
        O::MOV | O::MVN if !conditional => {
            if let (Some(rd), Some(v)) = (reg0, imm(&inst.operands[1])) {
                let v = if inst.opcode == O::MVN {
                    !(v as u32) as u64
                } else {
                    v
                };
                return Op::MovImm { rd, imm: v };
            }
            if inst.opcode == O::MOV {
                let rs = match inst.operands[1] {
                    P::Reg(r) => Some(r.number()),
                    P::RegShift(s) => match s.into_shift() {
                        a32::RegShiftStyle::RegImm(s)
                            if s.imm() == 0 && s.stype() == a32::ShiftStyle::LSL =>
                        {
                            Some(s.shiftee().number())
                        }
                        _ => None,
                    },
                    _ => None,
                };
                if let (Some(rd), Some(rs)) = (reg0, rs) {
                    return Op::MovReg { rd, rs };
                }
            }
        }
        O::MOVT if !conditional => {
            if let (Some(rd), Some(v)) = (reg0, imm(&inst.operands[1])) {
                return Op::MovKeep {
                    rd,
                    imm: v,
                    shift: 16,
                };
            }
        }
        O::BL | O::BLX => {
            let target = inst.operands.iter().find_map(|p| match *p {
                P::BranchOffset(o) => Some(
                    pc_base(isa, addr, inst.opcode == O::BLX).wrapping_add((o as i64 * 4) as u64),
                ),
                P::BranchThumbOffset(o) => {
                    Some(pc_base(isa, addr, false).wrapping_add((o as i64 * 2) as u64))
                }
                _ => None,
            });
            return Op::Call(target);
        }
        O::PUSH | O::POP => {
            let regs = inst
                .operands
                .iter()
                .find_map(|p| match *p {
                    P::RegList(m) => Some(reglist(m)),
                    P::Reg(r) => Some(vec![r.number()]),
                    _ => None,
                })
                .unwrap_or_default();
            let n = 4 * regs.len() as i64;
            return if inst.opcode == O::PUSH {
                mem(Access::Store, regs, 4, 13, Some(-n), Some(-n))
            } else {
                mem(Access::Load, regs, 4, 13, Some(0), Some(n))
            };
        }
        O::LDM(add, pre, wback, _) | O::STM(add, pre, wback, _) => {
            let (base, wb) = match inst.operands[0] {
                P::RegWBack(r, wb) => (r.number(), wb || wback),
                P::Reg(r) => (r.number(), wback),
                _ => (255, false),
            };
            let regs = match inst.operands[1] {
                P::RegList(m) => reglist(m),
                _ => Vec::new(),
            };
            let n = 4 * regs.len() as i64;
            let first = match (add, pre) {
                (true, false) => 0,
                (true, true) => 4,
                (false, true) => -n,
                (false, false) => -n + 4,
            };
            let delta = if add { n } else { -n };
            let access = if matches!(inst.opcode, O::LDM(..)) {
                Access::Load
            } else {
                Access::Store
            };
            return mem(access, regs, 4, base, Some(first), wb.then_some(delta));
        }
        O::ADD | O::SUB if !conditional => {
            if let (Some(rd), P::Reg(rn), Some(v)) =
                (reg0, inst.operands[1], imm(&inst.operands[2]))
            {
                let v = v as i64;
                return Op::AddImm {
                    rd,
                    rn: rn.number(),
                    imm: if inst.opcode == O::SUB { -v } else { v },
                };
            }
        }
        _ => {}
    }
    let name = format!("{:?}", inst.opcode);
    let access = if name.starts_with("LDR") || name.starts_with("VLDR") || name.starts_with("VPOP")
    {
        Some(Access::Load)
    } else if name.starts_with("STR") || name.starts_with("VSTR") || name.starts_with("VPUSH") {
        Some(Access::Store)
    } else {
        None
    };
    if let Some(access) = access {
        let width = match name.as_str() {
            "LDRB" | "STRB" | "LDRSB" | "LDRBT" | "STRBT" => 1,
            "LDRH" | "STRH" | "LDRSH" | "LDRHT" | "STRHT" => 2,
            _ => 4,
        };
        let mut regs = Vec::new();
        for p in &inst.operands {
            let (base, offset, delta) = match *p {
                P::Reg(r) => {
                    regs.push(r.number());
                    continue;
                }
                P::RegDeref(b) => (b, Some(0), None),
                P::RegDerefPreindexOffset(b, o, add, wb) => {
                    let off = if add { o as i64 } else { -(o as i64) };
                    (b, Some(off), wb.then_some(Some(off)).flatten())
                }
                P::RegDerefPostindexOffset(b, o, add, _) => {
                    (b, Some(0), Some(if add { o as i64 } else { -(o as i64) }))
                }
                P::RegDerefPreindexReg(b, ..) | P::RegDerefPreindexRegShift(b, ..) => {
                    (b, None, None)
                }
                P::RegDerefPostindexReg(b, ..) | P::RegDerefPostindexRegShift(b, ..) => {
                    (b, Some(0), None)
                }
                _ => continue,
            };
            let wb = matches!(
                *p,
                P::RegDerefPreindexOffset(_, _, _, true)
                    | P::RegDerefPostindexOffset(..)
                    | P::RegDerefPreindexReg(_, _, _, true)
                    | P::RegDerefPreindexRegShift(_, _, _, true)
                    | P::RegDerefPostindexReg(..)
                    | P::RegDerefPostindexRegShift(..)
            );
            let mut m = mem(access, regs, width, base.number(), offset, delta);
            if let Op::Mem { writeback, .. } = &mut m {
                *writeback = wb;
            }
            return m;
        }
        // VPUSH/VPOP: stack accesses of unmodelled size.
        if name.starts_with("VPUSH") || name.starts_with("VPOP") {
            let mut m = mem(access, Vec::new(), 8, 13, None, None);
            if let Op::Mem { writeback, .. } = &mut m {
                *writeback = true;
            }
            return m;
        }
    }
    Op::Other { writes: reg0 }
}

/// A memory access; `delta` is the writeback delta when the base is written back by a known amount.
fn mem(
    access: Access,
    regs: Vec<Reg>,
    width: u8,
    base: Reg,
    offset: Option<i64>,
    delta: Option<i64>,
) -> Op {
    Op::Mem {
        access,
        regs,
        width,
        base,
        offset,
        writeback: delta.is_some(),
        delta,
    }
}

/// The base a decoded branch offset is relative to: for A32, `yaxpeax-arm` already folds the
/// architectural PC+8 into the offset; for T32 the offset is relative to PC+4.
fn pc_base(isa: Isa, addr: u64, _blx: bool) -> u64 {
    match isa {
        Isa::T32 => addr + 4,
        _ => addr,
    }
}

fn model_a64(inst: &a64::Instruction, addr: u64) -> Op {
    use a64::{Opcode as O, Operand as P};
    let reg = |p: &P| match *p {
        P::Register(_, 31) => Some(ZR64),
        P::Register(_, r) => Some(r as Reg),
        P::RegisterOrSP(_, r) => Some(r as Reg),
        _ => None,
    };
    let rd = reg(&inst.operands[0]);
    match inst.opcode {
        O::HVC => {
            let v = inst.operands.iter().find_map(|p| match *p {
                P::Imm16(v) => Some(v as u64),
                P::Immediate(v) => Some(v as u64),
                P::Imm64(v) => Some(v),
                _ => None,
            });
            return Op::Hvc(v.unwrap_or(u64::MAX) as u16);
        }
        O::MOVZ | O::MOVN | O::MOVK => {
            if let (Some(rd), P::ImmShift(imm, shift)) = (rd, inst.operands[1]) {
                let w = matches!(inst.operands[0], P::Register(a64::SizeCode::W, _));
                let v = (imm as u64).checked_shl(shift as u32).unwrap_or(0);
                return match inst.opcode {
                    O::MOVK => Op::MovKeep {
                        rd,
                        imm: imm as u64,
                        shift,
                    },
                    O::MOVZ => Op::MovImm {
                        rd,
                        imm: if w { v as u32 as u64 } else { v },
                    },
                    _ => Op::MovImm {
                        rd,
                        imm: if w { !(v as u32) as u64 } else { !v },
                    },
                };
            }
        }
        O::ORR => {
            // `mov xd, xs` is `orr xd, xzr, xs`; `mov xd, #imm` may be `orr xd, xzr, #bitmask`.
            if let (Some(rd), P::Register(_, 31)) = (rd, inst.operands[1]) {
                match inst.operands[2] {
                    // `mov xd, xzr`: register 31 is the zero register here, not `sp`.
                    P::Register(_, 31) | P::RegShift(a64::ShiftStyle::LSL, 0, _, 31) => {
                        return Op::MovImm { rd, imm: 0 };
                    }
                    P::Register(_, r) => return Op::MovReg { rd, rs: r as Reg },
                    P::RegShift(a64::ShiftStyle::LSL, 0, _, r) => {
                        return Op::MovReg { rd, rs: r as Reg };
                    }
                    P::Immediate(v) => return Op::MovImm { rd, imm: v as u64 },
                    P::Imm64(v) => return Op::MovImm { rd, imm: v },
                    _ => {}
                }
            }
        }
        O::ADD => {
            // Also `mov xd, sp` / `mov sp, xs`, which are `add xd, xs, #0`.
            if let (Some(rd), Some(rn), P::Immediate(v)) =
                (rd, reg(&inst.operands[1]), inst.operands[2])
            {
                return Op::AddImm {
                    rd,
                    rn,
                    imm: v as i64,
                };
            }
        }
        O::BL => {
            let t = inst.operands.iter().find_map(|p| match *p {
                P::PCOffset(o) => Some(addr.wrapping_add(o as u64)),
                _ => None,
            });
            return Op::Call(t);
        }
        O::BLR => return Op::Call(None),
        _ => {}
    }
    let name = format!("{:?}", inst.opcode);
    let access = if name.starts_with("LD") {
        Some(Access::Load)
    } else if name.starts_with("ST") {
        Some(Access::Store)
    } else {
        None
    };
    if let Some(access) = access {
        let mut regs = Vec::new();
        let mut width = 8;
        for p in &inst.operands {
            let (base, offset, delta) = match *p {
                P::Register(size, r) => {
                    regs.push(if r == 31 { ZR64 } else { r as Reg });
                    width = if size == a64::SizeCode::W { 4 } else { 8 };
                    continue;
                }
                P::RegPreIndex(b, o, wb) => (b, Some(o as i64), wb.then_some(o as i64)),
                P::RegPostIndex(b, o) => (b, Some(0), Some(o as i64)),
                P::RegPostIndexReg(b, _) => (b, Some(0), None),
                P::RegRegOffset(b, ..) => (b, None, None),
                _ => continue,
            };
            if name.ends_with('B') && !name.starts_with("LDP") {
                width = 1;
            } else if name.ends_with('H') {
                width = 2;
            }
            let wb = matches!(
                *p,
                P::RegPreIndex(_, _, true) | P::RegPostIndex(..) | P::RegPostIndexReg(..)
            );
            let mut m = mem(access, regs, width, base as Reg, offset, delta);
            if let Op::Mem { writeback, .. } = &mut m {
                *writeback = wb;
            }
            return m;
        }
    }
    if let (O::SUB, Some(rd), Some(rn), P::Immediate(v)) =
        (inst.opcode, rd, reg(&inst.operands[1]), inst.operands[2])
    {
        return Op::AddImm {
            rd,
            rn,
            imm: -(v as i64),
        };
    }
    Op::Other { writes: rd }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_xen_hvc_in_every_isa() {
        let a32 = decode(Isa::A32, &0xE140_EA71u32.to_le_bytes(), 0);
        assert_eq!(a32[0].op, Op::Hvc(0xEA1));
        assert_eq!(a32[0].raw, Isa::A32.xen_hvc());
        let t32 = decode(Isa::T32, &[0xE0, 0xF7, 0xA1, 0x8E], 0);
        assert_eq!((t32.len(), t32[0].len), (1, 4));
        assert_eq!(t32[0].op, Op::Hvc(0xEA1));
        assert_eq!(t32[0].raw, Isa::T32.xen_hvc());
        let a64 = decode(Isa::A64, &0xD401_D422u32.to_le_bytes(), 0);
        assert_eq!(a64[0].op, Op::Hvc(0xEA1));
        // A different immediate decodes as a different tag.
        let other = decode(Isa::A64, &0xD401_D402u32.to_le_bytes(), 0);
        assert_eq!(other[0].op, Op::Hvc(0xEA0));
    }

    #[test]
    fn models_moves_and_stack_accesses() {
        // mov r12, #53 ; push {r4, r10, r11, lr} ; ldr r4, [r11, #8]
        let code: Vec<u8> = [0xE3A0_C035u32, 0xE92D_4C10, 0xE59B_4008]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let v = decode(Isa::A32, &code, 0);
        assert_eq!(v[0].op, Op::MovImm { rd: 12, imm: 53 });
        assert_eq!(
            v[1].op,
            Op::Mem {
                access: Access::Store,
                regs: vec![4, 10, 11, 14],
                width: 4,
                base: 13,
                offset: Some(-16),
                writeback: true,
                delta: Some(-16)
            }
        );
        assert_eq!(
            v[2].op,
            Op::Mem {
                access: Access::Load,
                regs: vec![4],
                width: 4,
                base: 11,
                offset: Some(8),
                writeback: false,
                delta: None
            }
        );
        // mov x16, #0x22 ; stp x29, x30, [sp, #-16]!
        let code: Vec<u8> = [0xD280_0450u32, 0xA9BF_7BFD]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect();
        let v = decode(Isa::A64, &code, 0);
        assert_eq!(v[0].op, Op::MovImm { rd: 16, imm: 0x22 });
        assert_eq!(
            v[1].op,
            Op::Mem {
                access: Access::Store,
                regs: vec![29, 30],
                width: 8,
                base: SP64,
                offset: Some(-16),
                writeback: true,
                delta: Some(-16)
            }
        );
    }

    #[test]
    fn call_targets() {
        // A32 at 0x7800aa14: bl 0x7800bb34 (0xeb000446).
        let v = decode(Isa::A32, &0xEB00_0446u32.to_le_bytes(), 0x7800_aa14);
        assert_eq!(v[0].op, Op::Call(Some(0x7800_bb34)));
        // A64 at 0x1000: bl 0x2000 (0x94000400).
        let v = decode(Isa::A64, &0x9400_0400u32.to_le_bytes(), 0x1000);
        assert_eq!(v[0].op, Op::Call(Some(0x2000)));
    }

    #[test]
    fn rejects_what_is_not_an_arm_elf() {
        assert!(read_functions(b"hello").is_err());
        assert!(read_functions(b"\x7fELF\x02\x01").is_err());
        let host = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let e = read_functions(&host).unwrap_err().to_string();
        assert!(e.contains("unsupported architecture"), "{e}");
    }
}
