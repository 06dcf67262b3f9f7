//! The ARM leaf of the out-of-line stubs (32-bit ARM and AArch64): the C calling conventions (AAPCS,
//! AAPCS64) the stubs are called with, and the instruction lines of each stub: moves into Xen's registers,
//! callee-saved registers saved and stack-passed arguments loaded, the trap, results stored, the return.
//! [`crate::outline`] wraps the lines into naked functions.

use proc_macro2::TokenStream;

use crate::abi::{Abi, Arch, Word};
use crate::emit::{clobbered, trap_line};
use crate::outline::{self, Number, place_args};

/// The C calling convention the out-of-line stubs are called with.
struct CAbi {
    /// Registers that carry the first arguments.
    arg_regs: &'static [&'static str],
    /// Callee-saved registers.
    callee_saved: &'static [&'static str],
    /// Bytes per stack-passed argument.
    slot: usize,
    /// Return instruction.
    ret: &'static str,
    /// Register-to-register move mnemonic.
    mov: &'static str,
    /// Caller-saved registers that carry no argument: where a stub may keep a value across the trap.
    scratch: &'static [&'static str],
}

fn c_abi(arch: Arch) -> Result<CAbi, String> {
    Ok(match arch {
        Arch::Arm => CAbi {
            arg_regs: &["r0", "r1", "r2", "r3"],
            callee_saved: &["r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11"],
            slot: 4,
            ret: "bx lr",
            mov: "mov",
            scratch: &["r12"],
        },
        Arch::Aarch64 => CAbi {
            arg_regs: &["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"],
            callee_saved: &[
                "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
            ],
            slot: 8,
            ret: "ret",
            mov: "mov",
            scratch: &["x9", "x10", "x11", "x12", "x13", "x14", "x15"],
        },
        Arch::X86_64 => return Err("not an ARM description".into()),
    })
}

/// The instruction lines of the per-arity out-of-line stub of arity `n`, or why none can be made.
pub fn outline_lines(abi: &Abi, n: usize) -> Result<Vec<String>, String> {
    stub_lines(abi, n, Number::FirstArg)
}

/// The instruction lines of the per-hypercall out-of-line stub of arity `n`, or why none can be made.
pub fn per_call_lines(abi: &Abi, n: usize) -> Result<Vec<String>, String> {
    stub_lines(abi, n, Number::Immediate)
}

/// The instruction lines of an out-of-line stub of arity `n` taking its number as `number` says.
fn stub_lines(abi: &Abi, n: usize, number: Number) -> Result<Vec<String>, String> {
    let c = c_abi(abi.arch)?;
    // Several results are stored through a pointer, the first C argument, which the stub keeps across
    // the trap in a caller-saved register that carries no operand and that the hypervisor preserves.
    let keep = if abi.multi() {
        let clob = clobbered(abi, n);
        let free = |r: &&&str| {
            let r: &str = r;
            abi.number != r
                && !abi.args[..n].iter().any(|a| a == r)
                && !abi.results.iter().any(|a| a == r)
                && !clob.iter().any(|a| *a == r)
        };
        Some(
            c.scratch
                .iter()
                .find(free)
                .ok_or("no caller-saved register the call preserves to keep the result pointer in")?
                .to_string(),
        )
    } else {
        None
    };
    // Destination register for each C argument: the result pointer (when there is one), op (when
    // passed), then a1..an.
    let first = (number == Number::FirstArg).then(|| abi.number.to_string());
    let dests: Vec<String> = keep
        .clone()
        .into_iter()
        .chain(first)
        .chain(abi.args[..n].iter().map(|r| r.to_string()))
        .collect();
    // Every register the stub writes: the destinations and, for a built-in number, the number register.
    let written: Vec<String> = dests
        .iter()
        .cloned()
        .chain((number == Number::Immediate).then(|| abi.number.to_string()))
        .collect();
    let saves: Vec<&str> = written
        .iter()
        .filter_map(|d| c.callee_saved.iter().find(|s| **s == d))
        .copied()
        .collect();
    if abi.arch == Arch::Aarch64 && !saves.is_empty() {
        return Err("AArch64 out-of-line stubs cannot bind callee-saved registers".into());
    }
    let mut lines = Vec::new();
    if let Some(p) = &abi.preamble {
        lines.push(p.value());
    }
    // Keep 8-byte alignment on 32-bit ARM: push an even number of registers.
    let mut pushed: Vec<&str> = saves.clone();
    if pushed.len() % 2 == 1 {
        let pad = c
            .callee_saved
            .iter()
            .find(|r| !pushed.contains(r) && !written.iter().any(|d| d == *r));
        pushed.push(pad.ok_or("no free register to pad the frame")?);
    }
    pushed.sort_by_key(|r| r[1..].parse::<u32>().unwrap_or(0));
    if !pushed.is_empty() {
        lines.push(format!("push {{{}}}", pushed.join(", ")));
    }
    let frame = pushed.len() * c.slot;

    // Register moves, ordered so that no source is overwritten before it is read.
    let (moves, loads) = place_args(&dests, c.arg_regs, frame, c.slot)?;
    for (d, s) in moves {
        // A 32-bit word moved between 64-bit registers: the `W` form zero-extends the upper half, which
        // the C convention leaves undefined.
        if abi.arch == Arch::Aarch64 && abi.word == Word::U32 && Some(&d) != keep.as_ref() {
            lines.push(format!("{} w{}, w{}", c.mov, &d[1..], &s[1..]));
        } else {
            lines.push(format!("{} {d}, {s}", c.mov));
        }
    }
    // Loads come after the moves: their destinations are not C argument registers still to be read
    // (they are beyond the C argument registers' count), or have been read already.
    for (d, off) in loads {
        lines.push(format!("ldr {d}, [sp, #{off}]"));
    }
    if number == Number::Immediate {
        lines.push(format!("mov {}, #{{nr}}", abi.number));
    }
    lines.push(trap_line(abi));
    if let Some(p) = &keep {
        let bytes = abi.word.bytes(abi.arch);
        for (k, r) in abi.results.iter().enumerate() {
            let r = r.to_string();
            // A 32-bit word on AArch64 is stored from the register's low half.
            let r = match (abi.arch, bytes) {
                (Arch::Aarch64, 4) => r.replacen('x', "w", 1),
                _ => r,
            };
            lines.push(format!("str {r}, [{p}, #{}]", k * bytes));
        }
    }
    if !pushed.is_empty() {
        lines.push(format!("pop {{{}}}", pushed.join(", ")));
    }
    lines.push(c.ret.to_string());
    Ok(lines)
}

/// One naked per-arity stub per arity.
pub fn outline_stubs(abi: &Abi) -> TokenStream {
    outline::outline_stubs(abi, outline_lines)
}

/// One naked per-hypercall stub per arity.
pub fn per_call_stubs(abi: &Abi) -> TokenStream {
    outline::per_call_stubs(abi, per_call_lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn abi(tokens: TokenStream) -> Abi {
        syn::parse2(tokens).unwrap()
    }

    /// A 32-bit ARM outline stub's moves: the first word (number or result pointer) from r0 to r12, the
    /// next three down one register.
    const ARM_SHIFT: [&str; 4] = ["mov r12, r0", "mov r0, r1", "mov r1, r2", "mov r2, r3"];

    /// A 32-bit ARM outline stub's lines for five words after the first: r4 and r5 saved, the stacked
    /// words loaded from above them, then the trap, `stores`, and the restore.
    fn arm_outline_saving_r4_r5(stores: &[&'static str]) -> Vec<&'static str> {
        let mut lines = vec![".arch_extension virt", "push {r4, r5}"];
        lines.extend(ARM_SHIFT);
        lines.extend(["ldr r3, [sp, #8]", "ldr r4, [sp, #12]", "ldr r5, [sp, #16]"]);
        lines.push("hvc #{tag}");
        lines.extend(stores);
        lines.extend(["pop {r4, r5}", "bx lr"]);
        lines
    }

    #[test]
    fn arm_shape() {
        let a = xen_arm();
        assert_eq!(
            outline_lines(&a, 0).unwrap(),
            [".arch_extension virt", "mov r12, r0", "hvc #{tag}", "bx lr"]
        );
        let four = [".arch_extension virt"]
            .into_iter()
            .chain(ARM_SHIFT)
            .chain(["ldr r3, [sp, #0]", "hvc #{tag}", "bx lr"]);
        assert_eq!(outline_lines(&a, 4).unwrap(), four.collect::<Vec<_>>());
        assert_eq!(outline_lines(&a, 6).unwrap(), arm_outline_saving_r4_r5(&[]));
        // Arity 5 saves r4 and pads with r5 to keep the stack 8-byte aligned.
        assert_eq!(outline_lines(&a, 5).unwrap()[1], "push {r4, r5}");
    }

    #[test]
    fn aarch64_shape() {
        let a = abi(quote! {
            arch: aarch64; trap: "hvc"; tag: 0xEA1; number: x16; args: [x0, x1, x2, x3, x4, x5]; ret: x0;
            clobbers: used_args;
        });
        assert_eq!(
            outline_lines(&a, 3).unwrap(),
            [
                "mov x16, x0",
                "mov x0, x1",
                "mov x1, x2",
                "mov x2, x3",
                "hvc #{tag}",
                "ret"
            ]
        );
    }

    #[test]
    fn cyclic_moves_are_refused() {
        // op in x0 must go to x1 while a1 in x1 must go to x0: a cycle without a scratch register.
        let a = abi(quote! {
            arch: aarch64; trap: "hvc"; tag: 0; number: x1; args: [x0]; ret: x0; clobbers: used_args;
        });
        assert!(outline_lines(&a, 1).unwrap_err().contains("cycle"));
    }

    fn xen_arm() -> Abi {
        abi(quote! {
            arch: arm; preamble: ".arch_extension virt"; trap: "hvc"; tag: 0xEA1; number: r12;
            args: [r0, r1, r2, r3, r4, r5]; ret: r0; clobbers: used_args;
        })
    }

    fn xen_aarch64() -> Abi {
        abi(quote! {
            arch: aarch64; trap: "hvc"; tag: 0xEA1; number: x16; args: [x0, x1, x2, x3, x4, x5]; ret: x0;
            clobbers: used_args;
        })
    }

    #[test]
    fn arm_per_call_every_arity() {
        let a = xen_arm();
        let short = [
            ".arch_extension virt",
            "mov r12, #{nr}",
            "hvc #{tag}",
            "bx lr",
        ];
        for n in 0..=4 {
            assert_eq!(per_call_lines(&a, n).unwrap(), short, "arity {n}");
        }
        // Linux's HYPERCALL5 saves r4 alone (`stmdb sp!, {r4}`, `ldr r4, [sp, #4]`); these push a second
        // register to keep the stack 8-byte aligned, so the fifth argument is 8 bytes up.
        assert_eq!(
            per_call_lines(&a, 5).unwrap(),
            [
                ".arch_extension virt",
                "push {r4, r5}",
                "ldr r4, [sp, #8]",
                "mov r12, #{nr}",
                "hvc #{tag}",
                "pop {r4, r5}",
                "bx lr"
            ]
        );
        assert_eq!(
            per_call_lines(&a, 6).unwrap(),
            [
                ".arch_extension virt",
                "push {r4, r5}",
                "ldr r4, [sp, #8]",
                "ldr r5, [sp, #12]",
                "mov r12, #{nr}",
                "hvc #{tag}",
                "pop {r4, r5}",
                "bx lr"
            ]
        );
    }

    #[test]
    fn aarch64_per_call_every_arity() {
        let a = xen_aarch64();
        for n in 0..=6 {
            assert_eq!(
                per_call_lines(&a, n).unwrap(),
                ["mov x16, #{nr}", "hvc #{tag}", "ret"],
                "arity {n}"
            );
        }
    }

    #[test]
    fn per_call_moves_arguments_only_where_the_conventions_differ() {
        // A convention whose second argument register is not the C one: one move, then the number.
        let a = abi(quote! {
            arch: aarch64; trap: "svc"; tag: 0; number: x8; args: [x0, x2]; ret: x0; clobbers: used_args;
        });
        assert_eq!(
            per_call_lines(&a, 2).unwrap(),
            ["mov x2, x1", "mov x8, #{nr}", "svc #{tag}", "ret"]
        );
        // A number register that is callee-saved on 32-bit ARM is saved (and padded) around the trap.
        let b = abi(quote! {
            arch: arm; trap: "svc"; tag: 0; number: r8; args: [r0]; ret: r0; clobbers: used_args;
        });
        assert_eq!(
            per_call_lines(&b, 1).unwrap(),
            [
                "push {r4, r8}",
                "mov r8, #{nr}",
                "svc #{tag}",
                "pop {r4, r8}",
                "bx lr"
            ]
        );
    }

    #[test]
    fn per_call_stub_tokens() {
        let tokens = per_call_stubs(&xen_arm()).to_string();
        for n in 0..=6 {
            assert!(
                tokens.contains(&format!("fn hypercall{n} < const NR : usize >")),
                "{tokens}"
            );
        }
        assert!(tokens.contains(r#""mov r12, #{nr}""#), "{tokens}");
        assert!(tokens.contains(r#""push {{r4, r5}}""#), "{tokens}");
        assert!(tokens.contains("assert ! (NR <= 255usize"), "{tokens}");
        let tokens = per_call_stubs(&xen_aarch64()).to_string();
        assert!(tokens.contains("assert ! (NR <= 65535usize"), "{tokens}");
        assert!(!tokens.contains("op : usize"), "{tokens}");
    }

    #[test]
    fn smccc_outline_keeps_the_result_pointer_and_stores_four_results() {
        let a = abi(quote! {
            arch: aarch64; trap: "hvc"; tag: 0; number: x0; args: [x1, x2, x3, x4, x5, x6];
            results: [x0, x1, x2, x3]; clobbers: none; stub: smc64_call; word: u64;
        });
        assert_eq!(
            outline_lines(&a, 2).unwrap(),
            [
                "mov x9, x0",
                "mov x0, x1",
                "mov x1, x2",
                "mov x2, x3",
                "hvc #{tag}",
                "str x0, [x9, #0]",
                "str x1, [x9, #8]",
                "str x2, [x9, #16]",
                "str x3, [x9, #24]",
                "ret"
            ]
        );
        let a = abi(quote! {
            arch: aarch64; trap: "hvc"; tag: 0; number: x0; args: [x1, x2, x3, x4, x5, x6];
            results: [x0, x1, x2, x3]; clobbers: none; stub: smc32_call; word: u32;
        });
        let lines = outline_lines(&a, 0).unwrap();
        assert_eq!(lines[..3], ["mov x9, x0", "mov w0, w1", "hvc #{tag}"]);
        assert_eq!(
            lines[3..7],
            [
                "str w0, [x9, #0]",
                "str w1, [x9, #4]",
                "str w2, [x9, #8]",
                "str w3, [x9, #12]"
            ]
        );
        // 32-bit ARM: the pointer in r0, the identifier in r1, a1 and a2 in r2 and r3, the rest on the
        // stack; r4 and r5 are saved around the loads.
        let a = abi(quote! {
            arch: arm; preamble: ".arch_extension virt"; trap: "hvc"; tag: 0; number: r0;
            args: [r1, r2, r3, r4, r5]; results: [r0, r1, r2, r3]; clobbers: none; stub: smc32_call;
            word: u32;
        });
        assert_eq!(
            outline_lines(&a, 5).unwrap(),
            arm_outline_saving_r4_r5(&[
                "str r0, [r12, #0]",
                "str r1, [r12, #4]",
                "str r2, [r12, #8]",
                "str r3, [r12, #12]",
            ])
        );
        let tokens = outline_stubs(&a).to_string();
        assert!(
            tokens.contains("fn smc32_call1 (out : * mut [u32 ; 4usize] , op : u32 , a1 : u32)"),
            "{tokens}"
        );
    }

    #[test]
    fn smccc_outline_refuses_when_no_register_survives_the_call() {
        // A convention that clobbers r12 leaves no scratch register on 32-bit ARM for the result pointer.
        let a = abi(quote! {
            arch: arm; trap: "hvc"; tag: 0; number: r12; args: [r1, r2]; results: [r0, r1];
            clobbers: used_args;
        });
        assert!(outline_lines(&a, 1).unwrap_err().contains("result pointer"));
    }
}
