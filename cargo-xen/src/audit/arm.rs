//! The ARM leaf of the audit (32-bit ARM and AArch64): stubs recognised by their code, every `hvc` and every
//! call to a stub a site, numbers and sub-operations recovered by a symbolic trace ([`crate::flow`]), the
//! register set-up bytes of each site. It fills in the architecture-neutral [`super::report`].

use anyhow::{Result, bail};

use super::report::{
    Arch, FnIndex, Report, Site, SiteKind, StubKind, demangle, external_stub, stub_arity,
};
use crate::elf::{self, Function, Isa, Op, Reg};
use crate::flow::{self, Val};

/// The arity Xen's ARM hypercall table declares for a hypercall number (`xen/include/public/xen.h`
/// numbers; arities of Xen's generated ARM table).
pub fn xen_arity(number: u64) -> Option<usize> {
    Some(match number {
        7 | 27 | 35 | 36 => 1,
        12 | 13 | 17 | 21 | 29 | 32 | 33 | 34 => 2,
        18 | 20 | 24 | 41 => 3,
        39 | 42 => 5,
        _ => return None,
    })
}

fn writes(op: &Op) -> Vec<Reg> {
    match op {
        Op::MovImm { rd, .. }
        | Op::MovKeep { rd, .. }
        | Op::MovReg { rd, .. }
        | Op::AddImm { rd, .. } => {
            vec![*rd]
        }
        Op::Mem {
            access: elf::Access::Load,
            regs,
            ..
        } => regs.clone(),
        Op::Other { writes: Some(r) } => vec![*r],
        _ => Vec::new(),
    }
}

fn is_setup(op: &Op) -> bool {
    matches!(
        op,
        Op::MovImm { .. } | Op::MovKeep { .. } | Op::MovReg { .. }
    )
}

/// Bytes of the set-up instructions for `inputs` between `from` and the site at `at` (exclusive): for each
/// input register, the `mov`-class instructions that write it after its last other write. (Public: the
/// bench's call-site sizes are this reading too.)
pub fn setup_bytes(f: &Function, from: usize, at: usize, inputs: &[Reg]) -> u64 {
    let mut bytes = 0;
    for &r in inputs {
        for insn in f.insns[from..at].iter().rev() {
            if writes(&insn.op).contains(&r) {
                if is_setup(&insn.op) {
                    bytes += insn.len as u64;
                    // `movt`/`movk` complete an earlier `mov` of the same register: keep walking.
                    if matches!(insn.op, Op::MovKeep { .. }) {
                        continue;
                    }
                }
                break;
            }
        }
    }
    bytes
}

/// What kind of stub `f` is, from its name (this crate's per-arity stubs) or its code: exactly one
/// `hvc #0xEA1`, no call, at most 12 instructions, and at the trap either a constant in the number register
/// with the first argument register untouched (per-hypercall), or the first argument in the number register
/// (generic; its arity is how many of the following arguments it moves into place).
pub fn classify(f: &Function, demangled: &str) -> Option<StubKind> {
    if let Some(arity) = stub_arity(demangled) {
        return Some(StubKind::Generic { arity });
    }
    let hvcs = f
        .insns
        .iter()
        .filter(|i| matches!(i.op, Op::Hvc(_)))
        .count();
    let calls = f.insns.iter().any(|i| matches!(i.op, Op::Call(_)));
    if hvcs != 1 || calls || f.insns.len() > 12 {
        return None;
    }
    let t = flow::trace(f, 7);
    let trap = t.traps.first()?;
    if trap.imm != 0xEA1 {
        return None;
    }
    match trap.reg(f.isa.number_reg()) {
        Val::Const(number) if trap.reg(0) == Val::Param(1) => Some(StubKind::PerCall { number }),
        Val::Param(1) => {
            let arity = (0..6u8)
                .take_while(|&i| trap.reg(i) == Val::Param(i + 2))
                .count();
            Some(StubKind::Generic { arity })
        }
        _ => None,
    }
}

fn constant(v: Option<Val>) -> Option<u64> {
    match v {
        Some(Val::Const(n)) => Some(n),
        _ => None,
    }
}

/// [`super::analyze`], with the arity of each inline site given by `arity_of(function, number)` (`None`: five,
/// the most Xen reads).
pub fn analyze_with(
    data: &[u8],
    arity_of: impl Fn(&str, Option<u64>) -> Option<usize>,
) -> Result<Report> {
    let functions = elf::read_functions(data)?;
    if functions.is_empty() {
        bail!("no function symbols: the file is stripped or has no code");
    }
    let names: Vec<String> = functions.iter().map(|f| demangle(&f.name)).collect();
    let kinds: Vec<Option<StubKind>> = functions
        .iter()
        .zip(&names)
        .map(|(f, n)| classify(f, n))
        .collect();
    // Stubs by address (executables) and by symbol name (relocatable objects, archives).
    let FnIndex { by_addr, by_name } =
        FnIndex::new(functions.iter().map(|f| (f.addr, f.name.as_str())));
    let mut report = Report::default();
    for (fi, f) in functions.iter().enumerate() {
        let name = names[fi].clone();
        let stub = kinds[fi];
        let t = flow::trace(f, 0);
        let mut sites = Vec::new();
        let mut prev = 0usize;
        let (mut ti, mut ci) = (0usize, 0usize);
        for (i, insn) in f.insns.iter().enumerate() {
            match &insn.op {
                Op::Hvc(tag) => {
                    let state = t.traps.get(ti);
                    ti += 1;
                    let number = constant(state.map(|s| s.reg(f.isa.number_reg())));
                    let first_arg = constant(state.map(|s| s.reg(0)));
                    let arity = arity_of(&name, number).unwrap_or(5).min(6);
                    let inputs: Vec<Reg> = std::iter::once(f.isa.number_reg())
                        .chain(0..arity as Reg)
                        .collect();
                    let setup = setup_bytes(f, prev, i, &inputs);
                    sites.push(Site {
                        addr: insn.addr,
                        kind: SiteKind::Inline { tag: *tag },
                        number: match stub {
                            Some(StubKind::PerCall { number }) => Some(number),
                            _ => number,
                        },
                        first_arg,
                        setup_bytes: setup,
                        stub: None,
                    });
                    prev = i + 1;
                }
                Op::Call(target) => {
                    let state = t.calls.get(ci);
                    ci += 1;
                    // A relocation names the callee in objects (where `bl`'s own target is meaningless).
                    // (Where there is a relocation, the address is not the callee's: never fall back.)
                    let reloc = f.relocs.iter().find(|(at, _)| *at == insn.addr);
                    let callee = match reloc {
                        Some((_, n)) => by_name.get(n.as_str()),
                        None => target.and_then(|a| by_addr.get(&a)),
                    }
                    .copied();
                    // A stub defined in another file (an object calling this crate's per-arity stubs)
                    // is known by its name only.
                    let external = || {
                        let (_, n) = f.relocs.iter().find(|(at, _)| *at == insn.addr)?;
                        external_stub(n)
                    };
                    let Some((callee, kind)) = callee
                        .and_then(|c| Some((names[c].clone(), kinds[c]?)))
                        .or_else(external)
                    else {
                        continue;
                    };
                    let c_regs: Reg = if f.isa == Isa::A64 { 8 } else { 4 };
                    let reg = |r: Reg| constant(state.map(|s| s.reg(r)));
                    let (kind, number, first_arg, inputs) = match kind {
                        StubKind::Generic { arity } => (
                            SiteKind::Outline { arity },
                            reg(0),
                            reg(1),
                            (0..=(arity as Reg).min(c_regs - 1)).collect::<Vec<Reg>>(),
                        ),
                        StubKind::PerCall { number } => {
                            let arity = xen_arity(number).unwrap_or(5) as Reg;
                            (
                                SiteKind::PerCall,
                                Some(number),
                                reg(0),
                                (0..arity.min(c_regs)).collect(),
                            )
                        }
                    };
                    let setup = setup_bytes(f, prev, i, &inputs);
                    sites.push(Site {
                        addr: insn.addr,
                        kind,
                        number,
                        first_arg,
                        setup_bytes: setup,
                        stub: Some(callee),
                    });
                    prev = i + 1;
                }
                _ => {}
            }
        }
        report.add(
            name,
            f.isa,
            Arch::Arm,
            f.size,
            t.min_sp.unsigned_abs(),
            sites,
            stub,
        );
    }
    Ok(report.stubs_last())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a64(words: &[u32]) -> Function {
        let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        Function {
            name: "f".into(),
            isa: Isa::A64,
            addr: 0,
            size: code.len() as u64,
            insns: elf::decode(Isa::A64, &code, 0),
            origin: String::new(),
            relocs: Vec::new(),
        }
    }

    const HVC: u32 = 0xD401_D422;
    const RET: u32 = 0xD65F_03C0;

    #[test]
    fn stubs_are_recognised_by_their_code() {
        // mov x16, #32 ; hvc #0xEA1 ; ret: Linux's HYPERVISOR_event_channel_op.
        assert_eq!(
            classify(&a64(&[0xD280_0410, HVC, RET]), "anything"),
            Some(StubKind::PerCall { number: 32 })
        );
        // mov x16, x0 ; mov x0, x1 ; mov x1, x2 ; hvc ; ret: privcmd_call's shape, two arguments.
        assert_eq!(
            classify(
                &a64(&[0xAA00_03F0, 0xAA01_03E0, 0xAA02_03E1, HVC, RET]),
                "anything"
            ),
            Some(StubKind::Generic { arity: 2 })
        );
        // Not stubs: a site that sets its first argument (a caller), another tag, two traps.
        assert_eq!(
            classify(&a64(&[0xD280_0410, 0xD280_0020, HVC, RET]), "f"),
            None
        );
        assert_eq!(classify(&a64(&[0xD280_0410, 0xD401_D402, RET]), "f"), None);
        assert_eq!(
            classify(&a64(&[0xD280_0410, HVC, 0xD280_0410, HVC, RET]), "f"),
            None
        );
        // This crate's per-arity stubs are also known by name.
        assert_eq!(
            classify(&a64(&[RET]), "xen_hypercall::outline::hypercall3"),
            Some(StubKind::Generic { arity: 3 })
        );
    }
}
