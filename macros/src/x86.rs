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
//! - Per hypercall: `unsafe fn hypercallN<const NR: usize>(a1, …, aN)` is inline, like Mini-OS's and
//!   Linux's `_hypercallN` macros: one `asm!` block binds the arguments to Xen's registers and calls the
//!   entry directly, `call page + NR * stride`. The entry is the out-of-line part (Xen wrote it); no stub of
//!   ours sits between the call site and the page, and the compiler sees which registers the call
//!   clobbers (the entry's `mov $NR, %eax` and the argument registers of the arity; a PV entry saves and
//!   restores `rcx` and `r11` around its `syscall`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::abi::Abi;
use crate::emit::clobbered;
use crate::outline::{self, Number, max_number, place_args};

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
    if number == Number::Immediate {
        // Inline at the call site: the `asm!` operands put the arguments in Xen's registers.
        return Ok(vec![format!("call {page} + {{nr}} * {stride}")]);
    }
    let number_reg = abi.number.to_string();
    let dests: Vec<String> = core::iter::once(number_reg.clone())
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
    // The number register is free again once the moves are done: it becomes the entry's address.
    let scratch = ["r11", "r10", "r9"]
        .into_iter()
        .find(|r| !dests.iter().any(|d| d == r) && *r != number_reg)
        .ok_or("no scratch register for the page address")?;
    lines.push(format!("shl {number_reg}, {}", stride.trailing_zeros()));
    lines.push(format!("lea {scratch}, [rip + {page}]"));
    lines.push(format!("add {number_reg}, {scratch}"));
    lines.push(format!("jmp {number_reg}"));
    Ok(lines)
}

/// The `asm!` operands of a per-hypercall call of arity `n` into the page: the arguments in Xen's
/// registers (clobbered as the description's rule says), the result in the number register, which the
/// entry loads. The trap's own clobbers (`also_clobbers`, PV `syscall`'s `rcx` and `r11`) are left out:
/// the entry Xen writes for a PV guest saves and restores them.
fn page_call_operands(abi: &Abi, n: usize, params: &[syn::Ident]) -> Vec<TokenStream> {
    let clob: Vec<String> = clobbered(abi, n)
        .into_iter()
        .filter(|r| !abi.also_clobbers.contains(r))
        .map(|r| r.to_string())
        .collect();
    let mut operands = Vec::new();
    for (i, reg) in abi.args.iter().enumerate() {
        let r = reg.to_string();
        let clobbered = clob.contains(&r);
        operands.push(match (params.get(i), clobbered) {
            (Some(p), true) => quote! { inlateout(#r) #p => _ },
            (Some(p), false) => quote! { in(#r) #p },
            (None, true) => quote! { lateout(#r) _ },
            (None, false) => continue,
        });
    }
    let ret = abi.ret.to_string();
    operands.push(quote! { lateout(#ret) ret });
    operands
}

/// One `#[inline(always)] pub unsafe fn hypercallN<const NR: usize>` per arity: the per-hypercall calls
/// into the hypercall page, each one `asm!` block at the call site (`call page + NR * stride`).
pub fn page_call_stubs(abi: &Abi) -> TokenStream {
    let stubs = (0..=abi.args.len()).map(|n| match page_lines(abi, n, Number::Immediate) {
        Ok(lines) => page_call_stub(abi, n, &lines),
        Err(e) => syn::Error::new(
            proc_macro2::Span::call_site(),
            format!("no per-hypercall stub of arity {n}: {e}"),
        )
        .to_compile_error(),
    });
    quote! { #(#stubs)* }
}

fn page_call_stub(abi: &Abi, n: usize, lines: &[String]) -> TokenStream {
    let name = format_ident!("{}{}", abi.stub, n);
    let params: Vec<syn::Ident> = (1..=n).map(|i| format_ident!("a{}", i)).collect();
    let word = abi.word.unsigned();
    let signed = abi.word.signed();
    let operands = page_call_operands(abi, n, &params);
    let docs = &abi.docs;
    let max = max_number(abi.arch) as usize;
    let too_large = format!("a per-hypercall stub's call number must be at most {max}");
    let (page, stride) = abi
        .page
        .as_ref()
        .map(|(p, s)| (p.value(), *s))
        .unwrap_or_default();
    let plural = if n == 1 { "" } else { "s" };
    let summary = format!(
        " Issues hypercall `NR` with {n} argument{plural} through the hypercall page, calling entry `NR` \
         from the call site (x86-64)."
    );
    let args_text = if n == 0 {
        "no argument".to_string()
    } else {
        abi.args[..n]
            .iter()
            .enumerate()
            .map(|(i, r)| format!("`a{}` in `{r}`", i + 1))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let clob_text = clobbered(abi, n)
        .into_iter()
        .filter(|r| !abi.also_clobbers.contains(r) && **r != abi.ret)
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let regs = format!(
        " Inline: one `asm!` block puts {args_text} and calls `{page} + NR * {stride}`, the entry Xen \
         wrote for call `NR` (it loads `NR` into `{}`, traps, and returns the result there). No stub sits \
         between the call site and the page, and the compiler sees what the call clobbers: `{}` (the \
         result){}{clob_text}, and the flags; every other register survives (a PV guest's entry saves \
         `rcx` and `r11` around its `syscall`). The `call` pushes a return address: the block is not \
         `nostack`.",
        abi.number,
        abi.ret,
        if clob_text.is_empty() { "" } else { ", " },
    );
    let range = format!(
        " `NR` is at most {max} (the page holds 4096 / {stride} entries); a larger number is a compile \
         error where the stub is instantiated."
    );
    let listing = format!(
        " ```text\n{}\n ```",
        lines
            .iter()
            .map(|l| format!("     {}", l.replace("{nr}", "NR")))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let template = lines.join("\n");
    quote! {
        #[doc = #summary]
        #[doc = ""]
        #[doc = #regs]
        #[doc = ""]
        #[doc = #range]
        #[doc = ""]
        #[doc = #listing]
        #[doc = ""]
        #[doc = " # Safety"]
        #[doc = ""]
        #[doc = " Xen has written the hypercall page (a PV guest's `HYPERCALL_PAGE` ELF note names it; an \
                 HVM/PVH guest registers it first), and the caller upholds the hypervisor's contract for \
                 the call `NR` (`op` below):"]
        #(#docs)*
        #[inline(always)]
        pub unsafe fn #name<const NR: usize>(#(#params: #word),*) -> #signed {
            let ret: #signed;
            // SAFETY: the caller upholds the hypervisor contract and Xen has filled the page (see
            // `# Safety`). Entry `NR` of the page loads `NR`, traps and returns; the asm binds the
            // arguments to Xen's registers, declares the result register and every argument register
            // the call may clobber, and is not `nostack` (the `call` pushes the return address).
            unsafe {
                ::core::arch::asm!(
                    #template,
                    nr = const {
                        assert!(NR <= #max, #too_large);
                        NR
                    },
                    #(#operands,)*
                );
            }
            ret
        }
    }
}

/// The per-arity stub of arity `n`: it enters the page at entry `op`.
pub fn outline_lines(abi: &Abi, n: usize) -> Result<Vec<String>, String> {
    page_lines(abi, n, Number::FirstArg)
}

/// One naked per-arity stub per arity.
pub fn outline_stubs(abi: &Abi) -> TokenStream {
    outline::outline_stubs(abi, outline_lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Arch;
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
    fn per_call_stubs_call_the_page_entry_from_the_call_site() {
        let abi = xen_pv();
        for n in 0..=6 {
            assert_eq!(
                page_lines(&abi, n, Number::Immediate).unwrap(),
                ["call xen_hypercall_page + {nr} * 32"],
                "arity {n}"
            );
        }
        let tokens = page_call_stubs(&abi).to_string();
        // Inline `asm!` at the call site, not a naked stub that jumps to the entry.
        assert!(!tokens.contains("naked"), "{tokens}");
        assert!(!tokens.contains("jmp"), "{tokens}");
        assert_eq!(tokens.matches("# [inline (always)]").count(), 7, "{tokens}");
        assert!(
            tokens.contains("fn hypercall4 < const NR : usize > (a1 : usize , a2 : usize , a3 : usize , a4 : usize) -> isize"),
            "{tokens}"
        );
        // The fourth argument goes straight to `r10` (no `mov r10, rcx`); the result comes back in `rax`.
        assert!(tokens.contains(r#"inlateout ("r10") a4 => _"#), "{tokens}");
        assert!(tokens.contains(r#"lateout ("rax") ret"#), "{tokens}");
        assert!(tokens.contains("assert ! (NR <= 127usize"), "{tokens}");
        // The PV entry saves `rcx` and `r11` around its `syscall`: not clobbered at the call site, and
        // the `call` uses the stack.
        assert!(!tokens.contains(r#""rcx""#), "{tokens}");
        assert!(!tokens.contains(r#""r11""#), "{tokens}");
        assert!(!tokens.contains("options"), "{tokens}");
    }

    #[test]
    fn per_call_operands_follow_the_clobber_rule() {
        let abi = xen_pv();
        let params: Vec<syn::Ident> = (1..=2usize)
            .map(|i| quote::format_ident!("a{}", i))
            .collect();
        let ops: Vec<String> = page_call_operands(&abi, 2, &params)
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            ops,
            [
                r#"inlateout ("rdi") a1 => _"#,
                r#"inlateout ("rsi") a2 => _"#,
                r#"lateout ("rax") ret"#
            ]
        );
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
        assert!(
            Arch::X86_64
                .check_register("rbx")
                .unwrap_err()
                .contains("LLVM")
        );
        assert!(
            Arch::X86_64
                .check_register("rbp")
                .unwrap_err()
                .contains("frame pointer")
        );
        assert!(
            Arch::X86_64
                .check_register("eax")
                .unwrap_err()
                .contains("unknown register")
        );
        assert!(Arch::X86_64.check_register("r10").is_ok());
    }
}
