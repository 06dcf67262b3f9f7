//! What x86-64 adds to the generator: its register file, and out-of-line stubs that jump into a hypervisor's
//! hypercall page instead of trapping themselves.
//!
//! Xen fills a page of 32-byte entries, one per call number, with the trap that suits the guest (`syscall`
//! for a PV guest, `vmcall` or `vmmcall` for an HVM/PVH guest on an Intel or AMD CPU), each ending in `ret`.
//! An out-of-line stub therefore moves its operands into Xen's registers and tail-jumps to entry `nr`: the
//! entry's `ret` returns to the stub's caller.
//!
//! - Per arity: `extern "C" fn hypercallN(op, a1, …, aN)` receives `op` in `rdi` and the arguments in `rsi`,
//!   `rdx`, `rcx`, `r8`, `r9` and the stack (System V), moves them one register down (`rax` ← `op`, `rdi` ←
//!   `a1`, …, `r10` ← `a4`, …), computes `page + op * stride` and jumps there.
//! - Per hypercall: `extern "C" fn hypercallN<const NR: usize>(a1, …, aN)` receives the arguments where Xen
//!   wants them but for the fourth (System V `rcx`, Xen `r10`): `mov r10, rcx` at arity 4 and above, then a
//!   direct `jmp page + NR * stride`.

use crate::abi::Abi;
use crate::outline::{Number, place_args};

/// `Ok(())` if `name` can be bound in `asm!` on x86-64, else why not.
pub fn check_register(name: &str) -> Result<(), String> {
    match name {
        "rax" | "rcx" | "rdx" | "rsi" | "rdi" | "r8" | "r9" | "r10" | "r11" | "r12" | "r13"
        | "r14" | "r15" => Ok(()),
        "rbx" => Err("`rbx` is used internally by LLVM and cannot be bound".into()),
        "rbp" => Err("`rbp` is the frame pointer and cannot be bound".into()),
        "rsp" => Err("`rsp` cannot carry a hypercall operand".into()),
        _ => Err(format!(
            "unknown register `{name}` for `arch: x86_64`; expected rax, rcx, rdx, rsi, rdi or r8-r15"
        )),
    }
}

/// System V's integer argument registers, in order; the seventh argument is at `[rsp + 8]` on entry.
const SYSV_ARGS: [&str; 6] = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"];

/// The instruction lines of an x86-64 out-of-line stub of arity `n` that enters the hypercall page.
pub fn page_lines(abi: &Abi, n: usize, number: Number) -> Result<Vec<String>, String> {
    let (page, stride) = abi.page.as_ref().ok_or(
        "x86-64 out-of-line stubs enter the hypercall page: the description needs `page: \"symbol\", stride;`",
    )?;
    let page = page.value();
    if !stride.is_power_of_two() {
        return Err(format!(
            "the hypercall page's stride {stride} is not a power of two"
        ));
    }
    let number_reg = abi.number.to_string();
    let first = (number == Number::FirstArg).then(|| number_reg.clone());
    let dests: Vec<String> = first
        .into_iter()
        .chain(abi.args[..n].iter().map(|r| r.to_string()))
        .collect();
    let (moves, loads) = place_args(&dests, &SYSV_ARGS, 8, 8)?;
    let mut lines = Vec::new();
    for (d, s) in moves {
        lines.push(format!("mov {d}, {s}"));
    }
    for (d, off) in loads {
        lines.push(format!("mov {d}, qword ptr [rsp + {off}]"));
    }
    match number {
        Number::FirstArg => {
            // The number register is free again once the moves are done: it becomes the entry's address.
            let scratch = ["r11", "r10", "r9"]
                .into_iter()
                .find(|r| !dests.iter().any(|d| d == r) && *r != number_reg)
                .ok_or("no scratch register for the page address")?;
            lines.push(format!("shl {number_reg}, {}", stride.trailing_zeros()));
            lines.push(format!("lea {scratch}, [rip + {page}]"));
            lines.push(format!("add {number_reg}, {scratch}"));
            lines.push(format!("jmp {number_reg}"));
        }
        Number::Immediate => lines.push(format!("jmp {page} + {{nr}} * {stride}")),
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outline::{outline_lines, per_call_lines};
    use quote::quote;

    fn xen_pv() -> Abi {
        syn::parse2(quote! {
            arch: x86_64; trap: "syscall"; number: rax; args: [rdi, rsi, rdx, r10, r8, r9]; ret: rax;
            clobbers: used_args; also_clobbers: [rcx, r11]; page: "xen_hypercall_page", 32;
        })
        .expect("valid description")
    }

    #[test]
    fn per_arity_stubs_shift_every_argument_one_register_down() {
        let abi = xen_pv();
        let tail = [
            "shl rax, 5",
            "lea r11, [rip + xen_hypercall_page]",
            "add rax, r11",
            "jmp rax",
        ];
        let want: [&[&str]; 7] = [
            &["mov rax, rdi"],
            &["mov rax, rdi", "mov rdi, rsi"],
            &["mov rax, rdi", "mov rdi, rsi", "mov rsi, rdx"],
            &[
                "mov rax, rdi",
                "mov rdi, rsi",
                "mov rsi, rdx",
                "mov rdx, rcx",
            ],
            &[
                "mov rax, rdi",
                "mov rdi, rsi",
                "mov rsi, rdx",
                "mov rdx, rcx",
                "mov r10, r8",
            ],
            &[
                "mov rax, rdi",
                "mov rdi, rsi",
                "mov rsi, rdx",
                "mov rdx, rcx",
                "mov r10, r8",
                "mov r8, r9",
            ],
            &[
                "mov rax, rdi",
                "mov rdi, rsi",
                "mov rsi, rdx",
                "mov rdx, rcx",
                "mov r10, r8",
                "mov r8, r9",
                "mov r9, qword ptr [rsp + 8]",
            ],
        ];
        for (n, moves) in want.iter().enumerate() {
            let mut expect: Vec<&str> = moves.to_vec();
            expect.extend(tail);
            assert_eq!(outline_lines(&abi, n).unwrap(), expect, "arity {n}");
        }
    }

    #[test]
    fn per_call_stubs_move_only_the_fourth_argument() {
        let abi = xen_pv();
        for n in 0..=6 {
            let mut expect = Vec::new();
            if n >= 4 {
                expect.push("mov r10, rcx");
            }
            expect.push("jmp xen_hypercall_page + {nr} * 32");
            assert_eq!(per_call_lines(&abi, n).unwrap(), expect, "arity {n}");
        }
    }

    #[test]
    fn a_description_without_a_page_has_no_out_of_line_stubs() {
        let abi: Abi = syn::parse2(quote! {
            arch: x86_64; trap: "vmcall"; number: rax; args: [rdi, rsi]; ret: rax; clobbers: used_args;
        })
        .unwrap();
        assert!(
            outline_lines(&abi, 1)
                .unwrap_err()
                .contains("hypercall page")
        );
    }

    #[test]
    fn registers_llvm_reserves_are_refused() {
        assert!(check_register("rbx").unwrap_err().contains("LLVM"));
        assert!(check_register("rbp").unwrap_err().contains("frame pointer"));
        assert!(
            check_register("eax")
                .unwrap_err()
                .contains("unknown register")
        );
        assert!(check_register("r10").is_ok());
    }
}
