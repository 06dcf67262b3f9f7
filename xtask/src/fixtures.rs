//! The disassembly checks: every stub's call sites, compiled for A32, T32 and A64 at opt-levels 0, s and 3,
//! read back from the static library with `object` and decoded with `yaxpeax-arm`.
//!
//! For each arity N the fixtures crate (`fixtures/src/lib.rs`) has `xh_const_N` (constant number and
//! arguments), `xh_args_N` (forwarded arguments) and `xh_ref_N` (the reference). Each call site must have:
//! - exactly one `hvc`, encoded as Xen's (`0xE140EA71`, T32 `0xF7E0 0x8EA1`, `0xD401D422`), in the
//!   expected instruction set;
//! - at the `hvc`, the call number in `r12`/`x16` and each argument in its register: the exact constants
//!   for `xh_const_N`, the function's own parameters for `xh_args_N` (followed through registers and stack
//!   slots by [`crate::flow`]);
//! - no stack traffic added by the stub. The method: every stack access is classified (save or restore of a
//!   callee-saved register, load of a stack-passed argument, or spill/reload). `xh_args_N` may not have more
//!   spills than `xh_ref_N`, which makes the same values live in registers through an `asm!` block with
//!   compiler-chosen registers and no trap (so at `-O0`, where debug code generation spills every local,
//!   the two are compared like for like); with optimisation neither may spill at all. The registers it
//!   saves beyond the reference's must be callee-saved `r4`/`r5` on 32-bit ARM at arity 5 and 6 (plus any
//!   register that is pushed and popped untouched, only to keep the stack 8-byte aligned), and none on A64.
//!
//! - after the `hvc`, along every path through the function, no read of a register Xen may clobber (the
//!   number register and argument registers 2..N: `r12`, `r1`–`r(N-1)` / `x16`, `x1`–`x(N-1)`) before it
//!   is written again ([`flow::clobber_reads`]). This dataflow check also runs on `xh_twice_N` and
//!   `xh_loop_N` (arities 1 to 5), where the compiler would like to keep the arguments in their registers
//!   for the next call.
//!
//! Negative controls `xh_bad_tag`, `xh_bad_number` and `xh_bad_spill` must each fail the check; so must
//! `xh_keep3_twice` and `xh_keep3_branch` (through an arity-3 stub that declares `r2`/`x2` preserved) at every
//! optimised opt-level, where the compiler reuses the register. At `-O0` every value is reloaded from its
//! stack slot before each use, so there the control is reported but not required to be caught.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::elf::{self, Function, Isa, Op};
use crate::flow::{self, Val};
use crate::{setup, util};

/// What a call site must pass to the trap.
#[derive(Clone, Debug)]
pub struct Expect {
    /// The instruction set the function must be in.
    pub isa: Isa,
    /// The call number.
    pub number: u64,
    /// The value each argument register must hold, in order.
    pub args: Vec<Val>,
}

/// The argument registers of Xen's ABI (`r0`–`r5`, `x0`–`x5`: the same numbers in this model).
pub fn arg_regs(_isa: Isa) -> [elf::Reg; 6] {
    [0, 1, 2, 3, 4, 5]
}

/// Checks one call site: a single Xen `hvc` in the right instruction set, with the call number and the
/// arguments in their registers. Returns a description of what was found.
pub fn check_site(f: &Function, params: u8, want: &Expect) -> Result<String, String> {
    if f.isa != want.isa {
        return Err(format!(
            "{} is {:?} code, expected {:?}",
            f.name, f.isa, want.isa
        ));
    }
    let hvcs: Vec<&elf::Insn> = f
        .insns
        .iter()
        .filter(|i| matches!(i.op, Op::Hvc(_)))
        .collect();
    if hvcs.len() != 1 {
        return Err(format!(
            "{} has {} hvc instructions, expected exactly 1",
            f.name,
            hvcs.len()
        ));
    }
    let hvc = hvcs[0];
    if hvc.raw != want.isa.xen_hvc() || hvc.op != Op::Hvc(0xEA1) {
        return Err(format!(
            "{}: hvc encoded {:#010x} ({:?}), expected {:#010x} (hvc #0xea1)",
            f.name,
            hvc.raw,
            hvc.op,
            want.isa.xen_hvc()
        ));
    }
    let t = flow::trace(f, params);
    let site = &t.traps[0];
    let nr = want.isa.number_reg();
    if site.reg(nr) != Val::Const(want.number) {
        return Err(format!(
            "{}: {} holds {:?} at the hvc, expected the call number {:#x}",
            f.name,
            want.isa.reg_name(nr),
            site.reg(nr),
            want.number
        ));
    }
    for (i, v) in want.args.iter().enumerate() {
        let r = arg_regs(want.isa)[i];
        if site.reg(r) != *v {
            return Err(format!(
                "{}: {} holds {:?} at the hvc, expected {:?} (argument {})",
                f.name,
                want.isa.reg_name(r),
                site.reg(r),
                v,
                i + 1
            ));
        }
    }
    Ok(format!("{} = {:#x}", want.isa.reg_name(nr), want.number))
}

/// Checks the stack traffic of `stub` against `reference` (see the module docs). `optimised` demands zero
/// spills.
pub fn check_stack(
    stub: &Function,
    reference: &Function,
    arity: u8,
    optimised: bool,
) -> Result<String, String> {
    let s = flow::trace(stub, arity);
    let r = flow::trace(reference, arity);
    if s.spills() > r.spills() {
        return Err(format!(
            "{}: {} spill/reload accesses, the reference {} has {}",
            stub.name,
            s.spills(),
            reference.name,
            r.spills()
        ));
    }
    if optimised && s.spills() > 0 {
        return Err(format!(
            "{}: {} spill/reload accesses in an optimised build",
            stub.name,
            s.spills()
        ));
    }
    let ref_saved = r.saved();
    let extra: Vec<elf::Reg> = s
        .saved()
        .into_iter()
        .filter(|x| !ref_saved.contains(x))
        // A register pushed and popped but never written only pads the frame to 8 bytes.
        .filter(|x| s.written.contains(x))
        .collect();
    let allowed: &[elf::Reg] = match stub.isa {
        Isa::A32 | Isa::T32 if arity >= 6 => &[4, 5],
        Isa::A32 | Isa::T32 if arity == 5 => &[4],
        _ => &[],
    };
    if let Some(bad) = extra.iter().find(|x| !allowed.contains(x)) {
        return Err(format!(
            "{}: saves {} that the reference does not (allowed: {:?})",
            stub.name,
            stub.isa.reg_name(*bad),
            allowed
                .iter()
                .map(|r| stub.isa.reg_name(*r))
                .collect::<Vec<_>>()
        ));
    }
    let names: Vec<String> = extra.iter().map(|x| stub.isa.reg_name(*x)).collect();
    Ok(format!(
        "{} spills (reference {}), saves {}",
        s.spills(),
        r.spills(),
        if names.is_empty() {
            "nothing extra".to_string()
        } else {
            names.join(",")
        }
    ))
}

/// The dataflow check: along every path after each `hvc` of `f` (a call of `arity` arguments), no register
/// the call may clobber is read before it is written again.
pub fn check_clobbers(f: &Function, arity: u8) -> Result<String, String> {
    let hvcs = f
        .insns
        .iter()
        .filter(|i| matches!(i.op, Op::Hvc(_)))
        .count();
    if hvcs == 0 {
        return Err(format!("{} has no hvc", f.name));
    }
    let names = |set: flow::RegSet| {
        flow::regs_of(set)
            .into_iter()
            .map(|r| f.isa.reg_name(r))
            .collect::<Vec<_>>()
            .join(",")
    };
    let clobbered = names(flow::clobbered_by_hvc(f.isa, arity));
    let reads = flow::clobber_reads(f, arity);
    if reads.is_empty() {
        return Ok(format!("{hvcs} hvc, {clobbered} never read before written"));
    }
    let what: Vec<String> = reads
        .iter()
        .map(|r| {
            let at = &f.insns[r.at];
            format!(
                "{} read by {} at +{:#x} after the hvc at +{:#x}",
                f.isa.reg_name(r.reg),
                at.mnemonic,
                at.addr - f.addr,
                f.insns[r.hvc].addr - f.addr
            )
        })
        .collect();
    Err(format!(
        "{}: clobbered register read: {}",
        f.name,
        what.join("; ")
    ))
}

/// One build of the fixtures.
struct Cell {
    isa: Isa,
    opt: &'static str,
    target: &'static str,
    rustflags: &'static str,
}

fn cells() -> Vec<Cell> {
    let mut v = Vec::new();
    for opt in ["0", "s", "3"] {
        v.push(Cell {
            isa: Isa::A32,
            opt,
            target: "armv7a-none-eabi",
            rustflags: "",
        });
        v.push(Cell {
            isa: Isa::T32,
            opt,
            target: "armv7a-none-eabi",
            rustflags: "-Ctarget-feature=+thumb-mode",
        });
        v.push(Cell {
            isa: Isa::A64,
            opt,
            target: "aarch64-unknown-none",
            rustflags: "",
        });
    }
    v
}

/// Builds one cell; returns the path of its static library (copied out of cargo's output).
fn build(cell: &Cell) -> Result<PathBuf> {
    let dir = util::target_dir().join("fixtures");
    util::cross_build(
        &dir,
        "xen-hypercall-fixtures",
        cell.target,
        cell.opt,
        cell.rustflags,
        &[],
    )?;
    let built = dir
        .join(cell.target)
        .join("release/libxen_hypercall_fixtures.a");
    let out = dir.join(format!("{}-O{}.a", cell.isa.name(), cell.opt));
    std::fs::copy(&built, &out).with_context(|| format!("copying {}", built.display()))?;
    Ok(out)
}

/// Results of checking one build.
#[derive(Default)]
pub struct Tally {
    /// Lines of output, `ok …` or `FAIL …`.
    pub lines: Vec<String>,
    /// Checks passed.
    pub passed: usize,
    /// Checks failed.
    pub failed: usize,
}

impl Tally {
    fn record(&mut self, name: &str, r: Result<String, String>) {
        match r {
            Ok(d) => {
                self.passed += 1;
                self.lines.push(format!("ok   {name}: {d}"));
            }
            Err(e) => {
                self.failed += 1;
                self.lines.push(format!("FAIL {name}: {e}"));
            }
        }
    }

    /// A negative control: passes when the check fails.
    fn control(&mut self, name: &str, r: Result<String, String>) {
        match r {
            Err(e) => {
                self.passed += 1;
                self.lines.push(format!("ok   {name}: caught: {e}"));
            }
            Ok(d) => {
                self.failed += 1;
                self.lines.push(format!(
                    "FAIL {name}: the broken fixture passed the check ({d})"
                ));
            }
        }
    }
}

/// Checks every fixture of one build.
pub fn check_build(funcs: &[Function], isa: Isa, opt: &str, thumb_attr: bool, tally: &mut Tally) {
    let find = |name: &str| funcs.iter().find(|f| f.name == name);
    let optimised = opt != "0";
    let prefixes: &[(&str, Isa)] = if thumb_attr {
        &[("xh_", isa), ("xh_t32attr_", Isa::T32)]
    } else {
        &[("xh_", isa)]
    };
    for &(prefix, want_isa) in prefixes {
        let label = if prefix == "xh_t32attr_" {
            "t32(attr)".to_string()
        } else {
            isa.name().to_string()
        };
        for n in 0..=6u8 {
            let cell = format!("{label} O{opt} arity {n}");
            let get = |kind: &str| {
                let name = format!("{prefix}{kind}_{n}");
                find(&name).ok_or_else(|| format!("{name} is missing from the build"))
            };
            let consts = Expect {
                isa: want_isa,
                number: 0x20 + n as u64,
                args: (0..n).map(|i| Val::Const(0x41 + i as u64)).collect(),
            };
            tally.record(
                &format!("{cell} constants"),
                get("const").and_then(|f| check_site(f, 0, &consts)),
            );
            let forwarded = Expect {
                isa: want_isa,
                number: 0x30 + n as u64,
                args: (1..=n).map(Val::Param).collect(),
            };
            tally.record(
                &format!("{cell} arguments"),
                get("args").and_then(|f| check_site(f, n, &forwarded)),
            );
            tally.record(
                &format!("{cell} stack"),
                get("args").and_then(|s| get("ref").and_then(|r| check_stack(s, r, n, optimised))),
            );
            for kind in ["const", "args"] {
                tally.record(
                    &format!("{cell} clobbers ({kind})"),
                    get(kind).and_then(|f| check_clobbers(f, n)),
                );
            }
            if (1..=5).contains(&n) {
                for kind in ["twice", "loop"] {
                    tally.record(
                        &format!("{cell} clobbers ({kind})"),
                        get(kind).and_then(|f| check_clobbers(f, n)),
                    );
                }
            }
        }
    }
    // Negative controls. A control whose function is missing fails: it must not pass vacuously.
    let two = Expect {
        isa,
        number: 0x22,
        args: vec![Val::Const(0x41), Val::Const(0x42)],
    };
    let name = |n: &str| format!("{} O{opt} control {n}", isa.name());
    let mut control =
        |label: &str, fname: &str, check: &dyn Fn(&Function) -> Result<String, String>| match find(
            fname,
        ) {
            Some(f) => tally.control(&name(label), check(f)),
            None => tally.record(
                &name(label),
                Err(format!("{fname} is missing from the build")),
            ),
        };
    control("wrong tag", "xh_bad_tag", &|f| check_site(f, 0, &two));
    control("wrong number register", "xh_bad_number", &|f| {
        check_site(f, 0, &two)
    });
    // The spill control is checked against the arity-2 reference, with its constants as the call site.
    let reference = find("xh_ref_2");
    control(
        "spill around the trap",
        "xh_bad_spill",
        &|s| match reference {
            Some(r) => check_site(s, 0, &two).and_then(|_| check_stack(s, r, 2, optimised)),
            None => Ok("xh_ref_2 is missing from the build".into()),
        },
    );
    // The arity-3 stub that keeps its third argument register: required to be caught where the compiler
    // reuses the register, which it does with optimisation; at -O0 only reported.
    for kind in ["twice", "branch"] {
        let fname = format!("xh_keep3_{kind}");
        let label = format!("arity-3 stub keeping its third register ({kind})");
        match find(&fname).map(|f| check_clobbers(f, 3)) {
            Some(Ok(d)) if !optimised => tally.lines.push(format!(
                "info {}: not caught: the build does not reuse the register ({d})",
                name(&label)
            )),
            Some(r) => tally.control(&name(&label), r),
            None => tally.record(
                &name(&label),
                Err(format!("{fname} is missing from the build")),
            ),
        }
    }
}

/// Builds every cell and checks it; prints one line per check and the closing `N passed, N failed`.
pub fn run() -> Result<()> {
    setup::toolchain()?;
    let mut tally = Tally::default();
    for cell in cells() {
        let lib = build(&cell)?;
        let data = std::fs::read(&lib)?;
        let funcs =
            elf::read_functions(&data).with_context(|| format!("reading {}", lib.display()))?;
        let funcs: Vec<Function> = funcs
            .into_iter()
            .filter(|f| f.name.starts_with("xh_"))
            .collect();
        check_build(&funcs, cell.isa, cell.opt, cell.isa == Isa::A32, &mut tally);
    }
    let mut out = String::new();
    for l in &tally.lines {
        let _ = writeln!(out, "{l}");
    }
    print!("{out}");
    println!(
        "disassembly checks: {} passed, {} failed",
        tally.passed, tally.failed
    );
    if tally.failed > 0 {
        bail!("{} disassembly checks failed", tally.failed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(isa: Isa, words: &[u32]) -> Function {
        let code: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        Function {
            name: "f".into(),
            isa,
            addr: 0,
            size: code.len() as u64,
            insns: elf::decode(isa, &code, 0),
            origin: String::new(),
            relocs: Vec::new(),
        }
    }

    fn two() -> Expect {
        Expect {
            isa: Isa::A64,
            number: 0x22,
            args: vec![Val::Const(0x41), Val::Const(0x42)],
        }
    }

    // mov x16, #0x22 ; mov x0, #0x41 ; mov x1, #0x42 ; hvc #0xea1 ; ret
    const GOOD: [u32; 5] = [
        0xD280_0450,
        0xD280_0820,
        0xD280_0841,
        0xD401_D422,
        0xD65F_03C0,
    ];

    #[test]
    fn accepts_a_correct_site() {
        assert!(check_site(&function(Isa::A64, &GOOD), 0, &two()).is_ok());
    }

    #[test]
    fn rejects_a_wrong_tag() {
        let mut w = GOOD;
        w[3] = 0xD400_0002; // hvc #0
        let e = check_site(&function(Isa::A64, &w), 0, &two()).unwrap_err();
        assert!(e.contains("hvc encoded"), "{e}");
    }

    #[test]
    fn rejects_a_wrong_register_value_and_two_traps() {
        let mut w = GOOD;
        w[0] = 0xD280_044F; // mov x15, #0x22
        let e = check_site(&function(Isa::A64, &w), 0, &two()).unwrap_err();
        assert!(e.contains("x16"), "{e}");
        let mut w = GOOD;
        w[4] = 0xD401_D422;
        let e = check_site(&function(Isa::A64, &w), 0, &two()).unwrap_err();
        assert!(e.contains("2 hvc"), "{e}");
    }

    #[test]
    fn the_dataflow_check_names_what_it_caught() {
        // mov x16, #0x22 ; mov x0, #0x41 ; mov x1, #0x42 ; hvc ; mov x0, x1 ; ret: x1 read after the call.
        let mut w = [
            0xD280_0450,
            0xD280_0820,
            0xD280_0841,
            0xD401_D422,
            0xAA01_03E0,
            0xD65F_03C0,
        ];
        let e = check_clobbers(&function(Isa::A64, &w), 2).unwrap_err();
        assert!(
            e.contains("x1 read by orr at +0x10 after the hvc at +0xc"),
            "{e}"
        );
        // At arity 1 x1 is preserved; and a result read is fine at any arity.
        assert!(check_clobbers(&function(Isa::A64, &w), 1).is_ok());
        w[4] = 0xAA00_03E1; // mov x1, x0
        assert!(check_clobbers(&function(Isa::A64, &w), 2).is_ok());
        // No hvc at all is an error, not a pass.
        assert!(check_clobbers(&function(Isa::A64, &w[4..]), 2).is_err());
    }

    #[test]
    fn follows_values_through_stack_slots_and_counts_the_spill() {
        // sub sp, sp, #16 ; mov x8, #0x22 ; str x8, [sp, #8] ; ldr x16, [sp, #8] ; mov x0, #0x41 ;
        // mov x1, #0x42 ; hvc ; add sp, sp, #16 ; ret
        let w = [
            0xD100_43FF,
            0xD280_0448,
            0xF900_07E8,
            0xF940_07F0,
            0xD280_0820,
            0xD280_0841,
            0xD401_D422,
            0x9100_43FF,
            0xD65F_03C0,
        ];
        let f = function(Isa::A64, &w);
        assert!(check_site(&f, 0, &two()).is_ok());
        let reference = function(Isa::A64, &GOOD);
        assert_eq!(flow::trace(&f, 0).spills(), 2);
        assert!(check_stack(&f, &reference, 2, false).is_err());
        assert!(check_stack(&reference, &reference, 2, true).is_ok());
    }
}
