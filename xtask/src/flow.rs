//! Straight-line symbolic execution of a decoded function: what each register holds at each trap, and
//! what every stack access moves.
//!
//! Values are constants, the function's own parameters, the entry value of a register (to recognise the
//! saving and restoring of callee-saved registers), or addresses relative to the stack pointer at entry.
//! Stack slots are tracked by their entry-relative address, so a value stored and loaded back is followed
//! through memory. Branches are not followed: the functions this is used on are straight-line call sites.

use std::collections::HashMap;

use crate::elf::{Access, Function, Insn, Isa, Op, Reg};

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
