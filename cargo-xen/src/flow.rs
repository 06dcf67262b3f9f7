//! Straight-line symbolic execution of a decoded function: what each register holds at each trap, and
//! what every stack access moves.
//!
//! Values are constants, the function's own parameters, the entry value of a register (to recognise the
//! saving and restoring of callee-saved registers), or addresses relative to the stack pointer at entry.
//! Stack slots are tracked by their entry-relative address, so a value stored and loaded back is followed
//! through memory. Branches are not followed: the functions this is used on are straight-line call sites.
//!
//! [`clobber_reads`] is a second, path-sensitive analysis: which registers each instruction reads and
//! writes, and where control may go next (fall-through, both sides of a conditional branch, a branch
//! target inside the function, a return). It finds every read of a register Xen may have clobbered before
//! that register is written again. Register effects are derived from the decoder's operands, not from the
//! simplified model above; whatever the model cannot classify is counted as reading every register, so an
//! unknown instruction can only make the check stricter.

use std::collections::HashMap;

use yaxpeax_arch::{Decoder, U8Reader};
use yaxpeax_arm::armv7 as a32;
use yaxpeax_arm::armv8::a64;

use crate::elf::{Access, Function, Insn, Isa, Op, Reg, SP64, ZR64};

/// What a register or stack slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val {
    /// A known constant.
    Const(u64),
    /// The function's N-th argument (1-based), under the AAPCS/AAPCS64.
    Param(u8),
    /// The value the register had on entry.
    Entry(Reg),
    /// The stack pointer at entry, plus an offset.
    EntrySp(i64),
    /// Anything else.
    Unknown,
}

/// How one stack access is classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackUse {
    /// A callee-saved register stored with its entry value (prologue).
    Save(Reg),
    /// A callee-saved register reloaded with its entry value (epilogue).
    Restore(Reg),
    /// A stack-passed argument loaded from the caller's frame.
    IncomingArg(u8),
    /// Anything else: spilling or reloading a value.
    Spill,
}

/// One stack access.
#[derive(Clone, Debug)]
pub struct StackAccess {
    /// Index of the instruction in the function.
    pub index: usize,
    /// Load or store.
    pub access: Access,
    /// The classification.
    pub kind: StackUse,
}

/// The register file at one trap.
#[derive(Clone, Debug)]
pub struct TrapSite {
    /// Index of the `hvc` in the function.
    pub index: usize,
    /// Its immediate.
    pub imm: u16,
    /// Register values at the trap.
    pub regs: HashMap<Reg, Val>,
}

impl TrapSite {
    /// The value of `r` at the trap.
    pub fn reg(&self, r: Reg) -> Val {
        self.regs.get(&r).copied().unwrap_or(Val::Unknown)
    }
}

/// The result of tracing a function.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Every `hvc`.
    pub traps: Vec<TrapSite>,
    /// Every call (`bl`/`blx`), with the registers at the call; `imm` is 0.
    pub calls: Vec<TrapSite>,
    /// Every access to the stack (through `sp`, or any register holding a stack address).
    pub stack: Vec<StackAccess>,
    /// The lowest stack address reached, relative to the entry `sp` (the frame size, negated).
    pub min_sp: i64,
    /// Registers written by some instruction other than a restore.
    pub written: Vec<Reg>,
}

impl Trace {
    /// Registers saved in the prologue.
    pub fn saved(&self) -> Vec<Reg> {
        let mut v: Vec<Reg> = self
            .stack
            .iter()
            .filter_map(|a| match a.kind {
                StackUse::Save(r) => Some(r),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Number of spill or reload accesses.
    pub fn spills(&self) -> usize {
        self.stack
            .iter()
            .filter(|a| a.kind == StackUse::Spill)
            .count()
    }
}

fn is_callee_saved(isa: Isa, r: Reg) -> bool {
    match isa {
        Isa::A32 | Isa::T32 => (4..=11).contains(&r) || r == 14,
        Isa::A64 => (19..=30).contains(&r),
    }
}

/// Traces `f` from its entry, assuming `params` arguments (AAPCS or AAPCS64, all word-sized).
pub fn trace(f: &Function, params: u8) -> Trace {
    let isa = f.isa;
    let word: i64 = if isa == Isa::A64 { 8 } else { 4 };
    let in_regs: u8 = if isa == Isa::A64 { 8 } else { 4 };
    let sp = isa.sp();
    let mut regs: HashMap<Reg, Val> = HashMap::new();
    let nregs: Reg = if isa == Isa::A64 { 31 } else { 16 };
    for r in 0..nregs {
        regs.insert(r, Val::Entry(r));
    }
    for p in 1..=params.min(in_regs) {
        regs.insert(p - 1, Val::Param(p));
    }
    regs.insert(sp, Val::EntrySp(0));
    let mut slots: HashMap<i64, Val> = HashMap::new();
    for p in in_regs + 1..=params {
        slots.insert((p - in_regs - 1) as i64 * word, Val::Param(p));
    }
    let mut t = Trace::default();
    let get = |regs: &HashMap<Reg, Val>, r: Reg| regs.get(&r).copied().unwrap_or(Val::Unknown);

    for (index, insn) in f.insns.iter().enumerate() {
        let Insn { op, .. } = insn;
        let write = |regs: &mut HashMap<Reg, Val>, t: &mut Trace, r: Reg, v: Val| {
            regs.insert(r, v);
            if !matches!(v, Val::Entry(e) if e == r) && !t.written.contains(&r) {
                t.written.push(r);
            }
        };
        match op {
            Op::Hvc(imm) => {
                t.traps.push(TrapSite {
                    index,
                    imm: *imm,
                    regs: regs.clone(),
                });
                // After the call: result and the number register are no longer known.
                write(&mut regs, &mut t, 0, Val::Unknown);
                write(&mut regs, &mut t, isa.number_reg(), Val::Unknown);
            }
            Op::MovImm { rd, imm } => {
                let v = if isa == Isa::A64 {
                    *imm
                } else {
                    *imm & 0xffff_ffff
                };
                write(&mut regs, &mut t, *rd, Val::Const(v));
            }
            Op::MovKeep { rd, imm, shift } => {
                let v = match get(&regs, *rd) {
                    Val::Const(c) if *shift < 64 => {
                        Val::Const((c & !(0xffff << shift)) | (imm << shift))
                    }
                    _ => Val::Unknown,
                };
                write(&mut regs, &mut t, *rd, v);
            }
            Op::MovReg { rd, rs } => {
                let v = get(&regs, *rs);
                write(&mut regs, &mut t, *rd, v);
            }
            Op::AddImm { rd, rn, imm } => {
                let v = match get(&regs, *rn) {
                    Val::Const(c) => Val::Const(c.wrapping_add(*imm as u64)),
                    Val::EntrySp(o) => Val::EntrySp(o.wrapping_add(*imm)),
                    _ => Val::Unknown,
                };
                write(&mut regs, &mut t, *rd, v);
            }
            Op::Mem {
                access,
                regs: list,
                width,
                base,
                offset,
                writeback,
                delta,
            } => {
                let base_val = get(&regs, *base);
                let stack_addr = match (base_val, offset) {
                    (Val::EntrySp(o), Some(off)) => Some(o.wrapping_add(*off)),
                    _ => None,
                };
                let on_stack = matches!(base_val, Val::EntrySp(_));
                for (i, r) in list.iter().enumerate() {
                    let slot = stack_addr.map(|a| a.wrapping_add(i as i64 * *width as i64));
                    match access {
                        Access::Store => {
                            let v = get(&regs, *r);
                            if let Some(s) = slot {
                                slots.insert(s, v);
                            }
                            if on_stack {
                                let kind = match v {
                                    Val::Entry(e) if e == *r && is_callee_saved(isa, *r) => {
                                        StackUse::Save(*r)
                                    }
                                    _ => StackUse::Spill,
                                };
                                t.stack.push(StackAccess {
                                    index,
                                    access: Access::Store,
                                    kind,
                                });
                            }
                        }
                        Access::Load => {
                            let v = slot
                                .and_then(|s| slots.get(&s).copied())
                                .unwrap_or(Val::Unknown);
                            if on_stack {
                                let kind = match (v, slot) {
                                    (Val::Entry(e), _) if e == *r => StackUse::Restore(*r),
                                    // `pop {…, pc}` returns through the saved link register.
                                    (Val::Entry(14), _) if *r == 15 && isa != Isa::A64 => {
                                        StackUse::Restore(14)
                                    }
                                    (Val::Param(p), Some(s)) if s >= 0 => StackUse::IncomingArg(p),
                                    _ => StackUse::Spill,
                                };
                                t.stack.push(StackAccess {
                                    index,
                                    access: Access::Load,
                                    kind,
                                });
                            }
                            if matches!(v, Val::Entry(e) if e == *r) {
                                regs.insert(*r, v);
                            } else {
                                write(&mut regs, &mut t, *r, v);
                            }
                        }
                    }
                }
                if list.is_empty() && on_stack {
                    // An access of unmodelled registers (e.g. VPUSH): count it as traffic.
                    t.stack.push(StackAccess {
                        index,
                        access: *access,
                        kind: StackUse::Spill,
                    });
                }
                if *writeback {
                    let v = match (base_val, delta) {
                        (Val::EntrySp(o), Some(d)) => Val::EntrySp(o.wrapping_add(*d)),
                        _ => Val::Unknown,
                    };
                    regs.insert(*base, v);
                }
            }
            Op::Call(_) => {
                t.calls.push(TrapSite {
                    index,
                    imm: 0,
                    regs: regs.clone(),
                });
                let clobbered: Vec<Reg> = match isa {
                    Isa::A32 | Isa::T32 => vec![0, 1, 2, 3, 12, 14],
                    Isa::A64 => (0..=18).chain([30]).collect(),
                };
                for r in clobbered {
                    write(&mut regs, &mut t, r, Val::Unknown);
                }
            }
            Op::Other { writes: Some(r) } => write(&mut regs, &mut t, *r, Val::Unknown),
            Op::Other { writes: None } | Op::Undecodable => {}
        }
        if let Val::EntrySp(o) = get(&regs, sp) {
            t.min_sp = t.min_sp.min(o);
        }
    }
    t
}

/// A set of registers, one bit per [`Reg`].
pub type RegSet = u64;

fn bit(r: Reg) -> RegSet {
    if r < 64 { 1 << r } else { 0 }
}

/// The registers in `set`, ascending.
pub fn regs_of(set: RegSet) -> Vec<Reg> {
    (0..64u8).filter(|r| set & (1 << r) != 0).collect()
}

/// Where control goes after an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// To the next instruction.
    Next,
    /// To `target` (an address), and also to the next instruction when `conditional`.
    Branch {
        /// The target address.
        target: u64,
        /// Whether the branch may fall through.
        conditional: bool,
    },
    /// Out of the function: a return, a tail call or an indirect branch. What the caller or the target
    /// may read is in the instruction's `reads`.
    Exit,
}

/// The register effects of one instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effect {
    /// Registers read.
    pub reads: RegSet,
    /// Registers certainly written (a conditional write is not one).
    pub writes: RegSet,
    /// Where control goes.
    pub flow: Flow,
}

/// Every register of the model's register file for `isa` (flags and vector registers are not modelled).
fn all_regs(isa: Isa) -> RegSet {
    match isa {
        Isa::A32 | Isa::T32 => 0xffff,
        Isa::A64 => (1 << 31) - 1,
    }
}

/// What a return makes observable: the result register and every callee-saved register (the caller relies
/// on them), under the AAPCS/AAPCS64.
fn return_reads(isa: Isa) -> RegSet {
    match isa {
        Isa::A32 | Isa::T32 => bit(0) | (0x0ff0) | bit(13),
        Isa::A64 => bit(0) | ((1 << 30) - (1 << 19)) | bit(SP64),
    }
}

/// What a call or a tail call may read: the argument registers and the stack pointer; a tail call also
/// hands the callee-saved registers on.
fn call_reads(isa: Isa) -> RegSet {
    match isa {
        Isa::A32 | Isa::T32 => 0xf | bit(13),
        Isa::A64 => 0xff | bit(SP64),
    }
}

/// What a call may write (the caller-saved registers).
fn call_writes(isa: Isa) -> RegSet {
    match isa {
        Isa::A32 | Isa::T32 => 0xf | bit(12) | bit(14),
        Isa::A64 => ((1 << 19) - 1) | bit(30),
    }
}

/// The bytes of an instruction, from its [`Insn::raw`] encoding.
fn bytes_of(isa: Isa, insn: &Insn) -> Vec<u8> {
    match (isa, insn.len) {
        (Isa::T32, 4) => {
            let mut v = ((insn.raw >> 16) as u16).to_le_bytes().to_vec();
            v.extend_from_slice(&(insn.raw as u16).to_le_bytes());
            v
        }
        (Isa::T32, _) => (insn.raw as u16).to_le_bytes().to_vec(),
        _ => insn.raw.to_le_bytes().to_vec(),
    }
}

fn sext(v: u32, bits: u32) -> i64 {
    ((v << (32 - bits)) as i32 >> (32 - bits)) as i64
}

/// The target of a direct branch, from the encoding (the decoders' offset conventions differ between
/// encodings, the architecture's do not).
fn branch_target(isa: Isa, insn: &Insn) -> Option<u64> {
    let r = insn.raw;
    let off = match (isa, insn.len) {
        // B/BL imm24: PC + 8.
        (Isa::A32, _) => 8 + (sext(r & 0x00ff_ffff, 24) << 2),
        (Isa::T32, 2) => {
            if r & 0xf000 == 0xd000 {
                4 + (sext(r & 0xff, 8) << 1) // B<c> T1
            } else if r & 0xf800 == 0xe000 {
                4 + (sext(r & 0x7ff, 11) << 1) // B T2
            } else if r & 0xf500 == 0xb100 {
                4 + ((((r >> 9) & 1) << 6 | ((r >> 3) & 0x1f) << 1) as i64) // CBZ/CBNZ
            } else {
                return None;
            }
        }
        (Isa::T32, _) => {
            let (h1, h2) = (r >> 16, r & 0xffff);
            let s = (h1 >> 10) & 1;
            let (j1, j2) = ((h2 >> 13) & 1, (h2 >> 11) & 1);
            let imm11 = h2 & 0x7ff;
            if h2 & 0x1000 == 0 {
                // B<c>.W T3: S:J2:J1:imm6:imm11:0.
                let v = s << 20 | j2 << 19 | j1 << 18 | (h1 & 0x3f) << 12 | imm11 << 1;
                4 + sext(v, 21)
            } else {
                // B.W T4 / BL: S:I1:I2:imm10:imm11:0 with I = !(J ^ S).
                let (i1, i2) = ((!(j1 ^ s)) & 1, (!(j2 ^ s)) & 1);
                let v = s << 24 | i1 << 23 | i2 << 22 | (h1 & 0x3ff) << 12 | imm11 << 1;
                4 + sext(v, 25)
            }
        }
        (Isa::A64, _) => {
            if r & 0x7c00_0000 == 0x1400_0000 {
                sext(r & 0x03ff_ffff, 26) << 2 // B, BL
            } else if r & 0x7e00_0000 == 0x3400_0000 || r & 0xff00_0010 == 0x5400_0000 {
                sext((r >> 5) & 0x7ffff, 19) << 2 // CBZ/CBNZ, B.cond
            } else if r & 0x7e00_0000 == 0x3600_0000 {
                sext((r >> 5) & 0x3fff, 14) << 2 // TBZ/TBNZ
            } else {
                return None;
            }
        }
    };
    Some(insn.addr.wrapping_add(off as u64))
}

/// The registers of a 32-bit ARM operand: (registers named, of which the first is the operand's own
/// register when it is a plain register).
fn a32_operand_regs(p: &a32::Operand) -> RegSet {
    use a32::Operand as P;
    let shift = |s: &a32::RegShift| match s.into_shift() {
        a32::RegShiftStyle::RegImm(s) => bit(s.shiftee().number()),
        a32::RegShiftStyle::RegReg(s) => bit(s.shiftee().number()) | bit(s.shifter().number()),
    };
    match p {
        P::Reg(r) | P::RegWBack(r, _) | P::RegDeref(r) => bit(r.number()),
        P::RegList(m) => *m as RegSet,
        P::RegShift(s) => shift(s),
        P::RegDerefPostindexRegShift(b, s, ..) | P::RegDerefPreindexRegShift(b, s, ..) => {
            bit(b.number()) | shift(s)
        }
        P::RegDerefPostindexOffset(b, ..) | P::RegDerefPreindexOffset(b, ..) => bit(b.number()),
        P::RegDerefPostindexReg(b, i, ..) | P::RegDerefPreindexReg(b, i, ..) => {
            bit(b.number()) | bit(i.number())
        }
        P::BankedReg(_, r) => bit(r.number()),
        _ => 0,
    }
}

fn a32_effect(isa: Isa, insn: &Insn, inst: &a32::Instruction, in_it: bool) -> Effect {
    use a32::{Opcode as O, Operand as P};
    let ops = &inst.operands;
    let conditional = in_it || inst.condition != a32::ConditionCode::AL;
    let name = format!("{:?}", inst.opcode);
    let all: RegSet = ops.iter().map(a32_operand_regs).fold(0, |a, b| a | b);
    let op_reg = |i: usize| match ops[i] {
        P::Reg(r) => bit(r.number()),
        _ => 0,
    };
    let wback_base = ops.iter().fold(0, |acc, p| {
        acc | match *p {
            P::RegWBack(r, true) => bit(r.number()),
            P::RegDerefPreindexOffset(b, _, _, true)
            | P::RegDerefPreindexReg(b, _, _, true)
            | P::RegDerefPreindexRegShift(b, _, _, true)
            | P::RegDerefPostindexOffset(b, ..)
            | P::RegDerefPostindexReg(b, ..)
            | P::RegDerefPostindexRegShift(b, ..) => bit(b.number()),
            _ => 0,
        }
    });
    let (reads, mut writes, flow) = match inst.opcode {
        O::Invalid => (all_regs(isa), 0, Flow::Next),
        O::HVC | O::SVC | O::SMC => (all_regs(isa), 0, Flow::Next),
        O::IT | O::NOP => (0, 0, Flow::Next),
        O::B | O::CBZ | O::CBNZ => match branch_target(isa, insn) {
            Some(target) => (
                all & !bit(15),
                0,
                Flow::Branch {
                    target,
                    conditional: conditional || matches!(inst.opcode, O::CBZ | O::CBNZ),
                },
            ),
            None => (all_regs(isa), 0, Flow::Exit),
        },
        O::BL | O::BLX if all == 0 => (call_reads(isa), call_writes(isa), Flow::Next),
        O::BLX => (call_reads(isa) | all, call_writes(isa), Flow::Next),
        O::BX if all == bit(14) => (return_reads(isa) | bit(14), 0, Flow::Exit),
        O::BX | O::BXJ => (all | call_reads(isa) | return_reads(isa), 0, Flow::Exit),
        // Only reads.
        O::CMP | O::CMN | O::TST | O::TEQ | O::MSR | O::PUSH | O::STM(..) => {
            (all, wback_base, Flow::Next)
        }
        O::POP | O::LDM(..) => {
            let list = ops.iter().fold(0, |a, p| {
                a | match *p {
                    P::RegList(m) => m as RegSet,
                    _ => 0,
                }
            });
            let base = if inst.opcode == O::POP {
                bit(13)
            } else {
                op_reg(0) | a32_operand_regs(&ops[0])
            };
            (
                base,
                list | wback_base | if inst.opcode == O::POP { bit(13) } else { 0 },
                Flow::Next,
            )
        }
        // Read and write their first operand (and the second for the long accumulates).
        O::MOVT | O::BFI | O::BFC => (all, op_reg(0), Flow::Next),
        O::UMLAL | O::SMLAL => (all, op_reg(0) | op_reg(1), Flow::Next),
        // Write their first two operands.
        O::UMULL | O::SMULL | O::LDRD | O::LDREXD => (
            all & !(op_reg(0) | op_reg(1))
                | (a32_operand_regs(&ops[2]) | a32_operand_regs(&ops[3])),
            op_reg(0) | op_reg(1) | wback_base,
            Flow::Next,
        ),
        // The status register is written, the rest read.
        O::STREX | O::STREXB | O::STREXH | O::STREXD => (all & !op_reg(0), op_reg(0), Flow::Next),
        _ if name.starts_with("STR") || name.starts_with("VSTR") || name.starts_with("VPUSH") => {
            (all, wback_base, Flow::Next)
        }
        _ => {
            // The first operand, when a plain register, is the destination; everything else is read.
            let dest = op_reg(0);
            let rest = ops[1..].iter().map(a32_operand_regs).fold(0, |a, b| a | b);
            let reads = rest
                | if dest == 0 {
                    a32_operand_regs(&ops[0])
                } else {
                    0
                };
            (reads, dest | wback_base, Flow::Next)
        }
    };
    // A write of the PC is a branch out: a return when it reloads the link register's value (`pop {pc}`,
    // `ldr pc, [sp], #4`, `mov pc, lr`), an indirect branch otherwise; both end the path here.
    // A conditional one may also fall through.
    if writes & bit(15) != 0 {
        writes &= !bit(15);
        let reads = (reads | return_reads(isa) & !writes) & !bit(15);
        return if conditional {
            Effect {
                reads,
                writes: 0,
                flow: Flow::Next,
            }
        } else {
            Effect {
                reads,
                writes,
                flow: Flow::Exit,
            }
        };
    }
    if conditional {
        // Not executed on every path: writes nothing for certain, and may fall through (`bxeq lr`).
        writes = 0;
        if flow == Flow::Exit {
            return Effect {
                reads: reads & !bit(15),
                writes,
                flow: Flow::Next,
            };
        }
    }
    Effect {
        reads: reads & !bit(15),
        writes,
        flow,
    }
}

fn a64_operand_regs(p: &a64::Operand) -> RegSet {
    use a64::Operand as P;
    let gp = |r: u16| if r == 31 { 0 } else { bit(r as Reg) };
    let sp = |r: u16| if r == 31 { bit(SP64) } else { bit(r as Reg) };
    match *p {
        P::Register(_, r) => gp(r),
        P::RegisterPair(_, r) => gp(r) | gp(r + 1),
        P::RegisterOrSP(_, r) => sp(r),
        P::RegShift(_, _, _, r) => gp(r),
        P::RegRegOffset(b, i, ..) => sp(b) | gp(i),
        P::RegPreIndex(b, ..) | P::RegPostIndex(b, _) => sp(b),
        P::RegPostIndexReg(b, i) => sp(b) | gp(i),
        _ => 0,
    }
}

fn a64_effect(insn: &Insn, inst: &a64::Instruction) -> Effect {
    use a64::{Opcode as O, Operand as P};
    let ops = &inst.operands;
    let name = format!("{:?}", inst.opcode);
    let all: RegSet = ops.iter().map(a64_operand_regs).fold(0, |a, b| a | b);
    let op_reg = |i: usize| match ops[i] {
        P::Register(_, r) if r != 31 => bit(r as Reg),
        P::RegisterOrSP(_, r) => bit(if r == 31 { SP64 } else { r as Reg }),
        _ => 0,
    };
    let wback_base = ops.iter().fold(0, |acc, p| {
        acc | match *p {
            P::RegPreIndex(b, _, true) | P::RegPostIndex(b, _) | P::RegPostIndexReg(b, _) => {
                bit(if b == 31 { SP64 } else { b as Reg })
            }
            _ => 0,
        }
    });
    let rest = |from: usize| {
        ops[from..]
            .iter()
            .map(a64_operand_regs)
            .fold(0, |a, b| a | b)
    };
    let next = |reads: RegSet, writes: RegSet| Effect {
        reads,
        writes,
        flow: Flow::Next,
    };
    match inst.opcode {
        O::Invalid => next(all_regs(Isa::A64), 0),
        O::HVC | O::SVC | O::SMC | O::BRK | O::HLT => next(all_regs(Isa::A64), 0),
        O::B | O::Bcc(_) | O::CBZ | O::CBNZ | O::TBZ | O::TBNZ => {
            match branch_target(Isa::A64, insn) {
                Some(target) => Effect {
                    reads: all,
                    writes: 0,
                    flow: Flow::Branch {
                        target,
                        conditional: inst.opcode != O::B,
                    },
                },
                None => Effect {
                    reads: all_regs(Isa::A64),
                    writes: 0,
                    flow: Flow::Exit,
                },
            }
        }
        O::BL => next(call_reads(Isa::A64), call_writes(Isa::A64)),
        O::BLR => next(call_reads(Isa::A64) | all, call_writes(Isa::A64)),
        O::RET => Effect {
            reads: return_reads(Isa::A64) | if all == 0 { bit(30) } else { all },
            writes: 0,
            flow: Flow::Exit,
        },
        O::BR => Effect {
            reads: all | call_reads(Isa::A64) | return_reads(Isa::A64),
            writes: 0,
            flow: Flow::Exit,
        },
        // Read and write their first operand.
        O::MOVK | O::BFM => next(all, op_reg(0)),
        O::CCMP | O::CCMN | O::MSR => next(all, 0),
        _ if name.starts_with("STXR")
            || name.starts_with("STLXR")
            || name.starts_with("STXP")
            || name.starts_with("STLXP") =>
        {
            next(all & !op_reg(0) | rest(1), op_reg(0) | wback_base)
        }
        _ if name.starts_with("ST") => next(all, wback_base),
        _ if name.starts_with("LDP")
            || name.starts_with("LDXP")
            || name.starts_with("LDAXP")
            || name.starts_with("LDNP") =>
        {
            next(rest(2), op_reg(0) | op_reg(1) | wback_base)
        }
        _ if name.starts_with("LD") => next(rest(1), op_reg(0) | wback_base),
        _ => {
            let dest = op_reg(0);
            let reads = rest(1)
                | if dest == 0 {
                    a64_operand_regs(&ops[0])
                } else {
                    0
                };
            next(reads, dest)
        }
    }
}

/// The register effects of every instruction of `f`. `arity` gives the `hvc` instructions theirs: an
/// `hvc` reads the number register and the first `arity` argument registers, and writes the result
/// register and every register it may clobber ([`clobbered_by_hvc`]).
pub fn effects(f: &Function, arity: u8) -> Vec<Effect> {
    let isa = f.isa;
    let mut it_left = 0u8;
    f.insns
        .iter()
        .map(|insn| {
            let bytes = bytes_of(isa, insn);
            let mut e = if let Op::Hvc(_) = insn.op {
                Effect {
                    reads: bit(isa.number_reg()) | ((1u64 << arity.min(6)) - 1),
                    writes: bit(0) | clobbered_by_hvc(isa, arity),
                    flow: Flow::Next,
                }
            } else {
                match isa {
                    Isa::A32 | Isa::T32 => {
                        let dec = if isa == Isa::T32 {
                            a32::InstDecoder::default_thumb()
                        } else {
                            a32::InstDecoder::default()
                        };
                        match dec.decode(&mut U8Reader::new(&bytes)) {
                            Ok(inst) => {
                                let e = a32_effect(isa, insn, &inst, it_left > 0);
                                it_left = it_left.saturating_sub(1);
                                if inst.opcode == a32::Opcode::IT
                                    && let a32::Operand::Imm32(mask) = inst.operands[1]
                                {
                                    it_left = 4 - (mask & 0xf).trailing_zeros().min(3) as u8;
                                }
                                e
                            }
                            Err(_) => Effect {
                                reads: all_regs(isa),
                                writes: 0,
                                flow: Flow::Next,
                            },
                        }
                    }
                    Isa::A64 => {
                        match a64::InstDecoder::default().decode(&mut U8Reader::new(&bytes)) {
                            Ok(inst) => a64_effect(insn, &inst),
                            Err(_) => Effect {
                                reads: all_regs(isa),
                                writes: 0,
                                flow: Flow::Next,
                            },
                        }
                    }
                }
            };
            e.reads &= !bit(ZR64);
            e
        })
        .collect()
}

/// The registers a call of `arity` arguments may clobber under Xen's ABI: the number register and the
/// argument registers 2..=arity (never the first, which carries the result).
pub fn clobbered_by_hvc(isa: Isa, arity: u8) -> RegSet {
    bit(isa.number_reg()) | ((1u64 << arity.min(6)) - 1) & !1
}

/// One read of a clobbered register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClobberRead {
    /// Index of the `hvc` after which the register was clobbered.
    pub hvc: usize,
    /// Index of the instruction that reads it.
    pub at: usize,
    /// The register.
    pub reg: Reg,
}

/// Every read, along any path from an `hvc` of `f`, of a register that the call (of `arity` arguments)
/// may clobber before that register is written again. A branch whose target is not an instruction of the
/// function is reported as a read of every clobbered register (index `at` = the branch), since where it
/// goes cannot be followed. A branch with a relocation (a tail call in an object file, whose encoded offset
/// is only a placeholder) leaves the function: it reads the argument and callee-saved registers.
pub fn clobber_reads(f: &Function, arity: u8) -> Vec<ClobberRead> {
    let mut eff = effects(f, arity);
    for (e, insn) in eff.iter_mut().zip(&f.insns) {
        if matches!(e.flow, Flow::Branch { .. }) && f.relocs.iter().any(|(a, _)| *a == insn.addr) {
            let conditional = matches!(
                e.flow,
                Flow::Branch {
                    conditional: true,
                    ..
                }
            );
            e.reads |= call_reads(f.isa) | return_reads(f.isa);
            e.flow = if conditional { Flow::Next } else { Flow::Exit };
        }
    }
    let index_of: HashMap<u64, usize> = f
        .insns
        .iter()
        .enumerate()
        .map(|(i, x)| (x.addr, i))
        .collect();
    let mut out: Vec<ClobberRead> = Vec::new();
    for (h, insn) in f.insns.iter().enumerate() {
        if !matches!(insn.op, Op::Hvc(_)) {
            continue;
        }
        let clobbered = clobbered_by_hvc(f.isa, arity);
        let mut seen: std::collections::HashSet<(usize, RegSet)> = Default::default();
        let mut work = vec![(h + 1, clobbered)];
        while let Some((i, dead)) = work.pop() {
            if dead == 0 || i >= eff.len() || !seen.insert((i, dead)) {
                continue;
            }
            let e = eff[i];
            let report = |reg: Reg, out: &mut Vec<ClobberRead>| {
                let r = ClobberRead { hvc: h, at: i, reg };
                if !out.contains(&r) {
                    out.push(r);
                }
            };
            for reg in regs_of(e.reads & dead) {
                report(reg, &mut out);
            }
            let mut live = dead & !e.reads & !e.writes;
            if matches!(f.insns[i].op, Op::Hvc(_)) {
                live |= clobbered;
            }
            match e.flow {
                Flow::Next => work.push((i + 1, live)),
                Flow::Exit => {}
                Flow::Branch {
                    target,
                    conditional,
                } => {
                    match index_of.get(&target) {
                        Some(&t) => work.push((t, live)),
                        None => {
                            for reg in regs_of(live) {
                                report(reg, &mut out);
                            }
                        }
                    }
                    if conditional {
                        work.push((i + 1, live));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf;

    fn function(isa: Isa, code: &[u8]) -> Function {
        Function {
            name: "f".into(),
            isa,
            addr: 0,
            size: code.len() as u64,
            insns: elf::decode(isa, code, 0),
            origin: String::new(),
            relocs: Vec::new(),
        }
    }

    fn words(w: &[u32]) -> Vec<u8> {
        w.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn target(isa: Isa, code: &[u8], addr: u64) -> Option<u64> {
        branch_target(isa, &elf::decode(isa, code, addr)[0])
    }

    #[test]
    fn branch_targets_match_the_assembler() {
        // Pairs read from llvm-objdump on the fixtures and on llvm-mc output.
        assert_eq!(target(Isa::A32, &words(&[0xEAFF_FFEA]), 0x78), Some(0x28)); // b
        assert_eq!(target(Isa::A32, &words(&[0x3A00_0003]), 0x34), Some(0x48)); // blo
        assert_eq!(target(Isa::T32, &[0xE8, 0xE7], 0x40), Some(0x14)); // b (T2)
        assert_eq!(target(Isa::T32, &[0x03, 0xD3], 0x1A), Some(0x24)); // blo (T1)
        assert_eq!(target(Isa::T32, &[0x08, 0xB1], 0x0E), Some(0x14)); // cbz r0
        assert_eq!(
            target(Isa::T32, &[0x00, 0xF0, 0x00, 0xB8], 0x10),
            Some(0x14)
        ); // b.w (T4)
        assert_eq!(target(Isa::A64, &words(&[0xB7F8_00E0]), 0x10), Some(0x2C)); // tbnz x0, #63
        assert_eq!(target(Isa::A64, &words(&[0xB400_0040]), 0x14), Some(0x1C)); // cbz x0
        assert_eq!(target(Isa::A64, &words(&[0x8B02_0000]), 0), None); // add
    }

    // mov x16, #51 ; mov x0, #1 ; mov x1, #2 ; mov x2, #3 ; hvc #0xea1 ; cbz x0, L ; mov x2, #0 ;
    // L: add x0, x0, x2 ; ret
    const A64_BRANCH: [u32; 9] = [
        0xD280_0670,
        0xD280_0020,
        0xD280_0041,
        0xD280_0062,
        0xD401_D422,
        0xB400_0040,
        0xD280_0002,
        0x8B02_0000,
        0xD65F_03C0,
    ];

    #[test]
    fn a_read_on_the_branch_taken_path_only_is_found() {
        let f = function(Isa::A64, &words(&A64_BRANCH));
        assert_eq!(
            clobber_reads(&f, 3),
            [ClobberRead {
                hvc: 4,
                at: 7,
                reg: 2
            }]
        );
        // At arity 2 the call leaves x2 alone: nothing to report.
        assert!(clobber_reads(&f, 2).is_empty());
        // Without the branch every path writes x2 first.
        let mut w = A64_BRANCH;
        w[5] = 0xD503_201F; // nop
        assert!(clobber_reads(&function(Isa::A64, &words(&w)), 3).is_empty());
        // A read of the result register is no violation; a read of x16 is.
        w[7] = 0x8B00_0000; // add x0, x0, x0
        assert!(clobber_reads(&function(Isa::A64, &words(&w)), 3).is_empty());
        w[7] = 0x8B10_0000; // add x0, x0, x16
        let r = clobber_reads(&function(Isa::A64, &words(&w)), 3);
        assert_eq!(r.iter().map(|r| r.reg).collect::<Vec<_>>(), [16]);
    }

    #[test]
    fn returns_read_callee_saved_registers_and_it_blocks_are_conditional() {
        // T32, arity 5 (r4 clobbered): mov.w r12, #53 ; hvc ; itt eq ; moveq r4, #0 ; bxeq lr ;
        // cbz r0, L ; b.w L ; L: pop {r4, pc} ; bx lr
        let code = [
            0x4F, 0xF0, 0x35, 0x0C, 0xE0, 0xF7, 0xA1, 0x8E, 0x04, 0xBF, 0x00, 0x24, 0x70, 0x47,
            0x08, 0xB1, 0x00, 0xF0, 0x00, 0xB8, 0x10, 0xBD, 0x70, 0x47,
        ];
        let f = function(Isa::T32, &code);
        // The conditional return hands the clobbered r4 back to the caller (the conditional `moveq` is
        // not a write on every path); every other path restores it with the pop.
        assert_eq!(
            clobber_reads(&f, 5),
            [ClobberRead {
                hvc: 1,
                at: 4,
                reg: 4
            }]
        );
        // At arity 4, r4 is not clobbered: nothing to report.
        assert!(clobber_reads(&f, 4).is_empty());
    }

    #[test]
    fn a_relocated_branch_is_a_tail_call() {
        // mov x16, #51 ; hvc ; b <relocated> ; add x0, x0, x2 ; ret, at arity 3. The placeholder offset
        // (0) points the branch at itself; the relocation makes it a tail call, which hands x0-x7 on.
        let code = words(&[
            0xD280_0670,
            0xD401_D422,
            0x1400_0000,
            0x8B02_0000,
            0xD65F_03C0,
        ]);
        let mut f = function(Isa::A64, &code);
        assert!(
            clobber_reads(&f, 3).is_empty(),
            "followed as a branch to itself"
        );
        f.relocs.push((8, "callee".into()));
        let regs: Vec<Reg> = clobber_reads(&f, 3).iter().map(|r| r.reg).collect();
        assert_eq!(regs, [1, 2]);
    }

    #[test]
    fn unknown_instructions_count_as_reading_everything() {
        // mov x16, #51 ; hvc ; (an unallocated encoding) ; ret
        let f = function(
            Isa::A64,
            &words(&[0xD280_0670, 0xD401_D422, 0xFFFF_FFFF, 0xD65F_03C0]),
        );
        assert_eq!(f.insns[2].op, Op::Undecodable);
        let regs: Vec<Reg> = clobber_reads(&f, 2).iter().map(|r| r.reg).collect();
        assert_eq!(regs, [1, 16]);
    }
}
