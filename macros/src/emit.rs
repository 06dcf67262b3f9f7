//! Emission of the inline stubs from a validated description.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use crate::abi::{Abi, Arch, ClobberRule, Word};

/// The registers a call of arity `n` clobbers, in the order: number register, then argument registers.
/// The result registers are written, not clobbered, and so are not listed.
pub fn clobbered(abi: &Abi, n: usize) -> Vec<&Ident> {
    let used = match abi.clobbers {
        ClobberRule::UsedArgs => n,
        ClobberRule::AllArgs => abi.args.len(),
        ClobberRule::None => 0,
    };
    let mut regs: Vec<&Ident> = match abi.clobbers {
        ClobberRule::None => Vec::new(),
        _ => core::iter::once(&abi.number)
            .chain(abi.args[..used].iter())
            .filter(|r| !abi.results.contains(r))
            .collect(),
    };
    // What the trap itself overwrites (x86 `syscall`: `rcx`, `r11`), whatever the rule.
    regs.extend(abi.also_clobbers.iter());
    regs
}

/// The name of result variable `k` in the emitted stub.
fn result_var(abi: &Abi, k: usize) -> Ident {
    if abi.multi() {
        format_ident!("r{}", k)
    } else {
        format_ident!("ret")
    }
}

/// The `asm!` operands of the stub of arity `n`: every register the call reads, writes or clobbers, once,
/// in the order number register, argument registers, remaining result registers.
fn asm_operands(abi: &Abi, n: usize, params: &[Ident]) -> Vec<TokenStream> {
    let clob = clobbered(abi, n);
    let order = core::iter::once(&abi.number)
        .chain(abi.args.iter())
        .chain(
            abi.results
                .iter()
                .filter(|r| **r != abi.number && !abi.args.contains(r)),
        )
        .chain(abi.also_clobbers.iter());
    let mut operands = Vec::new();
    for reg in order {
        let r = reg.to_string();
        let input = if *reg == abi.number {
            Some(format_ident!("op"))
        } else {
            abi.args[..n]
                .iter()
                .position(|a| a == reg)
                .map(|i| params[i].clone())
        };
        // A 32-bit operand in a 64-bit register is passed zero-extended: `asm!` leaves the upper half of a
        // narrower input undefined, and a hypervisor may read the whole register (Xen 4.17 reads PSCI
        // CPU_ON's SMC32 arguments with `PSCI_ARG`, the full register, in `vpsci.c`).
        let input = input.map(|i| match (abi.arch, abi.word) {
            (Arch::Aarch64, Word::U32) => quote!((#i as u64)),
            _ => quote!(#i),
        });
        let output = match abi.results.iter().position(|x| x == reg) {
            Some(k) => {
                let v = result_var(abi, k);
                Some(quote!(#v))
            }
            None if clob.contains(&reg) => Some(quote!(_)),
            None => None,
        };
        operands.push(match (input, output) {
            (Some(i), Some(o)) => quote! { inlateout(#r) #i => #o },
            (Some(i), None) => quote! { in(#r) #i },
            (None, Some(o)) => quote! { lateout(#r) #o },
            (None, None) => continue,
        });
    }
    operands
}

/// Backquoted, comma-separated register names for documentation.
fn reg_list<'a>(regs: impl IntoIterator<Item = &'a Ident>) -> String {
    let v: Vec<String> = regs.into_iter().map(|r| format!("`{r}`")).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// One `#[inline(always)] pub unsafe fn hypercallN` per arity 0..=args.len().
pub fn inline_stubs(abi: &Abi) -> TokenStream {
    let stubs = (0..=abi.args.len()).map(|n| inline_stub(abi, n));
    let max = abi.args.len();
    // `MAX_ARITY` for the default stub name, `SMC32_CALL_MAX_ARITY` for `stub: smc32_call`.
    let max_name = if abi.stub == "hypercall" {
        format_ident!("MAX_ARITY")
    } else {
        format_ident!("{}_MAX_ARITY", abi.stub.to_string().to_uppercase())
    };
    quote! {
        /// The largest arity this calling convention has a stub for.
        pub const #max_name: usize = #max;
        #(#stubs)*
    }
}

fn inline_stub(abi: &Abi, n: usize) -> TokenStream {
    let name = format_ident!("{}{}", abi.stub, n);
    let params: Vec<Ident> = (1..=n).map(|i| format_ident!("a{}", i)).collect();
    let number = abi.number.to_string();
    let ret_reg = reg_list(&abi.results);
    let operands = asm_operands(abi, n, &params);
    let word = abi.word.unsigned();
    // A 32-bit word in a 64-bit register: the results are read as the whole register (an `inout`
    // operand has one type) and truncated.
    let widened = abi.arch == Arch::Aarch64 && abi.word == Word::U32;
    let (ret_ty, ret_decl, ret_expr) = if abi.multi() {
        let k = abi.results.len();
        let vars: Vec<Ident> = (0..k).map(|i| result_var(abi, i)).collect();
        if widened {
            (
                quote!([#word; #k]),
                quote!(#(let #vars: u64;)*),
                quote!([#(#vars as u32),*]),
            )
        } else {
            (
                quote!([#word; #k]),
                quote!(#(let #vars: #word;)*),
                quote!([#(#vars),*]),
            )
        }
    } else {
        let signed = abi.word.signed();
        if widened {
            (quote!(#signed), quote!(let ret: i64;), quote!(ret as i32))
        } else {
            (quote!(#signed), quote!(let ret: #signed;), quote!(ret))
        }
    };
    let options = if abi.preserves_flags {
        quote! { options(nostack, preserves_flags) }
    } else {
        quote! { options(nostack) }
    };

    let trap = trap_line(abi);
    let template = match &abi.preamble {
        Some(p) => quote! { #p, #trap },
        None => quote! { #trap },
    };
    let tag_operand = tag_operand(abi);
    let trap_text = trap_text(abi);
    let args_text = if n == 0 {
        "none".to_string()
    } else {
        reg_list(&abi.args[..n])
    };
    let clob_text = reg_list(clobbered(abi, n));
    let flags_text = if abi.preserves_flags {
        "preserved"
    } else {
        "clobbered"
    };
    let plural = if n == 1 { "" } else { "s" };
    let rs = if abi.multi() { "s, in order" } else { "" };
    let summary = format!(
        " Issues a hypercall with {n} argument{plural} ({}).",
        abi.arch.display()
    );
    let regs = format!(
        " - call number: `{number}`\n - arguments: {args_text}\n - result{rs}: {ret_reg}\n \
         - clobbered: {clob_text}; condition flags {flags_text}\n - preserved: every other register"
    );
    let how = format!(
        " One `asm!` block loads the registers and executes `{trap_text}`; nothing separates the \
         set-up from the trap, so a hypervisor may restart the call by stepping the PC back onto it."
    );
    let param_docs: Vec<String> = (1..=n)
        .map(|i| format!(" - `a{i}`: argument {i}, in `{}`", abi.args[i - 1]))
        .collect();
    let docs = &abi.docs;

    quote! {
        #[doc = #summary]
        #[doc = ""]
        #[doc = " - `op`: the call number"]
        #(#[doc = #param_docs])*
        #[doc = ""]
        #[doc = " Registers:"]
        #[doc = ""]
        #[doc = #regs]
        #[doc = ""]
        #[doc = #how]
        #[doc = ""]
        #[doc = " # Safety"]
        #[doc = ""]
        #[doc = " The caller upholds the hypervisor's contract for the call `op`:"]
        #(#docs)*
        #[inline(always)]
        pub unsafe fn #name(op: #word #(, #params: #word)*) -> #ret_ty {
            #ret_decl
            // SAFETY: the caller upholds the hypervisor contract (see `# Safety`). The asm binds exactly the
            // registers of this calling convention, declares every register the call may clobber, does not
            // touch the stack, and leaves memory declared as read and written by the hypervisor.
            unsafe {
                ::core::arch::asm!(
                    #template,
                    #tag_operand
                    #(#operands,)*
                    #options
                );
            }
            #ret_expr
        }
    }
}

/// The trap instruction as an asm template line: with the `{tag}` operand when the trap has an immediate.
pub fn trap_line(abi: &Abi) -> String {
    match abi.tag {
        Some(_) => format!("{} #{{tag}}", abi.trap.value().trim()),
        None => abi.trap.value().trim().to_string(),
    }
}

/// The trap instruction for documentation, its immediate written out.
pub fn trap_text(abi: &Abi) -> String {
    match &abi.tag {
        Some(tag) => format!("{} #{}", abi.trap.value().trim(), quote!(#tag)),
        None => abi.trap.value().trim().to_string(),
    }
}

/// The `tag = const …,` operand of the asm block, if the trap has an immediate.
pub fn tag_operand(abi: &Abi) -> TokenStream {
    match &abi.tag {
        Some(tag) => quote! { tag = const #tag, },
        None => TokenStream::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn xen_arm() -> Abi {
        syn::parse2(quote! {
            /// Xen contract.
            arch: arm;
            preamble: ".arch_extension virt";
            trap: "hvc";
            tag: XEN_HYPERCALL_TAG;
            number: r12;
            args: [r0, r1, r2, r3, r4, r5];
            ret: r0;
            clobbers: used_args;
        })
        .expect("valid description")
    }

    fn xen_a64() -> Abi {
        syn::parse2(quote! {
            arch: aarch64;
            trap: "hvc";
            tag: 0xEA1;
            number: x16;
            args: [x0, x1, x2, x3, x4, x5];
            ret: x0;
            clobbers: used_args;
        })
        .expect("valid description")
    }

    /// The operand list of the asm! in stub `n`, normalised to one operand per element.
    fn operands(abi: &Abi, n: usize) -> Vec<String> {
        operands_in(&inline_stub(abi, n).to_string())
    }

    /// The operand list of the asm! in a stub's token text.
    fn operands_in(text: &str) -> Vec<String> {
        let start = text.find("asm !").expect("an asm! block");
        let body = &text[start..];
        let open = body.find('(').unwrap();
        let close = body.rfind(')').unwrap();
        let inner = &body[open + 1..close];
        let opts = inner.find("options").expect("an options clause");
        let mut v: Vec<String> = inner[..opts]
            .split(", ")
            .map(|s| s.trim().trim_end_matches(',').trim().to_string())
            .filter(|s| s.contains("out") || s.starts_with("in"))
            .collect();
        v.push(inner[opts..].trim().to_string());
        v
    }

    fn signature(abi: &Abi, n: usize) -> String {
        let text = inline_stub(abi, n).to_string();
        let start = text.find("pub unsafe fn").unwrap();
        text[start..text[start..].find('{').unwrap() + start]
            .trim()
            .to_string()
    }

    #[test]
    fn arity0_binds_number_and_result_only() {
        let abi = xen_arm();
        assert_eq!(
            operands(&abi, 0),
            [
                "inlateout (\"r12\") op => _",
                "lateout (\"r0\") ret",
                "options (nostack)"
            ]
        );
        assert_eq!(
            signature(&abi, 0),
            "pub unsafe fn hypercall0 (op : usize) -> isize"
        );
    }

    #[test]
    fn arity1_result_shares_first_argument_register() {
        assert_eq!(
            operands(&xen_arm(), 1),
            [
                "inlateout (\"r12\") op => _",
                "inlateout (\"r0\") a1 => ret",
                "options (nostack)"
            ]
        );
        assert_eq!(
            operands(&xen_a64(), 1),
            [
                "inlateout (\"x16\") op => _",
                "inlateout (\"x0\") a1 => ret",
                "options (nostack)"
            ]
        );
    }

    #[test]
    fn arity5_clobbers_exactly_the_used_registers() {
        let ops = operands(&xen_arm(), 5);
        assert_eq!(
            ops,
            [
                "inlateout (\"r12\") op => _",
                "inlateout (\"r0\") a1 => ret",
                "inlateout (\"r1\") a2 => _",
                "inlateout (\"r2\") a3 => _",
                "inlateout (\"r3\") a4 => _",
                "inlateout (\"r4\") a5 => _",
                "options (nostack)"
            ]
        );
        // r5 is preserved at arity 5: it must not appear at all.
        assert!(!inline_stub(&xen_arm(), 5).to_string().contains("\"r5\""));
    }

    #[test]
    fn arity6_binds_all_six() {
        let ops = operands(&xen_a64(), 6);
        assert_eq!(
            ops,
            [
                "inlateout (\"x16\") op => _",
                "inlateout (\"x0\") a1 => ret",
                "inlateout (\"x1\") a2 => _",
                "inlateout (\"x2\") a3 => _",
                "inlateout (\"x3\") a4 => _",
                "inlateout (\"x4\") a5 => _",
                "inlateout (\"x5\") a6 => _",
                "options (nostack)"
            ]
        );
        assert_eq!(
            signature(&xen_a64(), 6),
            "pub unsafe fn hypercall6 (op : usize , a1 : usize , a2 : usize , a3 : usize , a4 : usize , \
             a5 : usize , a6 : usize) -> isize"
        );
    }

    #[test]
    fn one_stub_per_arity_and_the_tag_is_a_const_operand() {
        let text = inline_stubs(&xen_arm()).to_string();
        for n in 0..=6 {
            assert_eq!(
                text.matches(&format!("fn hypercall{n} ")).count(),
                1,
                "hypercall{n}"
            );
        }
        assert!(!text.contains("fn hypercall7"));
        assert_eq!(text.matches("tag = const XEN_HYPERCALL_TAG").count(), 7);
        assert_eq!(
            text.matches("\".arch_extension virt\" , \"hvc #{tag}\"")
                .count(),
            7
        );
        assert_eq!(text.matches("# [inline (always)]").count(), 7);
        assert!(
            !text.contains("nomem")
                && !text.contains("readonly")
                && !text.contains("preserves_flags")
        );
    }

    #[test]
    fn all_args_rule_and_preserves_flags_opt_in() {
        let abi: Abi = syn::parse2(quote! {
            arch: aarch64; trap: "hvc"; tag: 0; number: x16; args: [x0, x1, x2]; ret: x0;
            clobbers: all_args; preserves_flags: true;
        })
        .unwrap();
        assert_eq!(
            operands(&abi, 1),
            [
                "inlateout (\"x16\") op => _",
                "inlateout (\"x0\") a1 => ret",
                "lateout (\"x1\") _",
                "lateout (\"x2\") _",
                "options (nostack , preserves_flags)"
            ]
        );
    }

    #[test]
    fn result_register_outside_the_arguments() {
        let abi: Abi = syn::parse2(quote! {
            arch: aarch64; trap: "svc"; tag: 0; number: x8; args: [x1, x2]; ret: x0; clobbers: used_args;
        })
        .unwrap();
        assert_eq!(
            operands(&abi, 1),
            [
                "inlateout (\"x8\") op => _",
                "inlateout (\"x1\") a1 => _",
                "lateout (\"x0\") ret",
                "options (nostack)"
            ]
        );
    }

    #[test]
    fn docs_name_registers_and_safety() {
        let text = inline_stub(&xen_arm(), 2).to_string();
        assert!(text.contains("# Safety"));
        assert!(text.contains("clobbered: `r12`, `r1`"));
        assert!(text.contains("Xen contract."));
    }

    /// Xen's descriptions with the other clobber rule.
    fn xen_arm_all_args() -> Abi {
        syn::parse2(quote! {
            arch: arm; preamble: ".arch_extension virt"; trap: "hvc"; tag: XEN_HYPERCALL_TAG; number: r12;
            args: [r0, r1, r2, r3, r4, r5]; ret: r0; clobbers: all_args;
        })
        .expect("valid description")
    }

    fn xen_a64_all_args() -> Abi {
        syn::parse2(quote! {
            arch: aarch64; trap: "hvc"; tag: 0xEA1; number: x16; args: [x0, x1, x2, x3, x4, x5];
            ret: x0; clobbers: all_args;
        })
        .expect("valid description")
    }

    /// The registers the emitted asm! of stub `n` declares clobbered (`=> _` or `lateout(..) _`), and every
    /// register it names at all.
    fn declared(abi: &Abi, n: usize) -> (Vec<String>, Vec<String>) {
        declared_in(&inline_stub(abi, n).to_string())
    }

    fn declared_in(text: &str) -> (Vec<String>, Vec<String>) {
        let reg = |op: &str| op.split('"').nth(1).map(str::to_string);
        let ops = operands_in(text);
        let clobbered = ops
            .iter()
            .filter(|op| op.ends_with("=> _") || op.ends_with(") _"))
            .filter_map(|op| reg(op))
            .collect();
        let named = ops.iter().filter_map(|op| reg(op)).collect();
        (clobbered, named)
    }

    /// Written out from Xen's `arch-arm.h` ("clobbers r12/x16 and the argument registers used by that
    /// hypercall, except r0/x0 which is the return value"), not from the generator. Row = arity.
    const ARM_USED: [&[&str]; 7] = [
        &["r12"],
        &["r12"],
        &["r12", "r1"],
        &["r12", "r1", "r2"],
        &["r12", "r1", "r2", "r3"],
        &["r12", "r1", "r2", "r3", "r4"],
        &["r12", "r1", "r2", "r3", "r4", "r5"],
    ];
    const A64_USED: [&[&str]; 7] = [
        &["x16"],
        &["x16"],
        &["x16", "x1"],
        &["x16", "x1", "x2"],
        &["x16", "x1", "x2", "x3"],
        &["x16", "x1", "x2", "x3", "x4"],
        &["x16", "x1", "x2", "x3", "x4", "x5"],
    ];
    /// `all_args`: every argument register but the result's, at every arity.
    const ARM_ALL: &[&str] = &["r12", "r1", "r2", "r3", "r4", "r5"];
    const A64_ALL: &[&str] = &["x16", "x1", "x2", "x3", "x4", "x5"];

    #[test]
    fn clobber_sets_of_every_arity_both_architectures_both_rules() {
        let cases: [(&str, Abi, &str, [&[&str]; 7]); 4] = [
            ("arm used_args", xen_arm(), "r0", ARM_USED),
            ("aarch64 used_args", xen_a64(), "x0", A64_USED),
            ("arm all_args", xen_arm_all_args(), "r0", [ARM_ALL; 7]),
            ("aarch64 all_args", xen_a64_all_args(), "x0", [A64_ALL; 7]),
        ];
        for (what, abi, ret, table) in cases {
            for (n, want) in table.iter().enumerate() {
                let (clobbered, named) = declared(&abi, n);
                assert_eq!(clobbered, *want, "{what}, arity {n}: declared clobbers");
                let listed: Vec<String> = clobbered_regs(&abi, n);
                assert_eq!(listed, *want, "{what}, arity {n}: clobbered()");
                // Nothing else is named but the result: every other register is preserved.
                let mut expect_named: Vec<&str> = want.to_vec();
                expect_named.push(ret);
                let mut named: Vec<&str> = named.iter().map(String::as_str).collect();
                named.sort_unstable();
                expect_named.sort_unstable();
                assert_eq!(named, expect_named, "{what}, arity {n}: registers named");
            }
        }
    }

    #[test]
    fn the_clobber_table_check_catches_a_stub_that_keeps_an_argument_register() {
        // Negative control: the arity-3 stub with its third argument bound `in(..)` (kept) instead of
        // `inlateout(..) => _` must not match the table.
        let abi = xen_a64();
        let text = inline_stub(&abi, 3)
            .to_string()
            .replace("inlateout (\"x2\") a3 => _", "in (\"x2\") a3");
        assert!(text.contains("in (\"x2\") a3"), "the mutation applies");
        let (clobbered, _) = declared_in(&text);
        assert_ne!(clobbered, A64_USED[3]);
        assert_eq!(clobbered, ["x16", "x1"]);
    }

    fn clobbered_regs(abi: &Abi, n: usize) -> Vec<String> {
        clobbered(abi, n).iter().map(|r| r.to_string()).collect()
    }

    fn parse_err(tokens: TokenStream) -> String {
        match syn::parse2::<Abi>(tokens) {
            Ok(_) => panic!("description accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn invalid_descriptions_are_rejected() {
        let e = parse_err(quote! {
            arch: arm; trap: "hvc"; tag: 1; number: r12; args: [r0, r1, r1]; ret: r0; clobbers: used_args;
        });
        assert!(e.contains("named twice"), "{e}");
        let e = parse_err(quote! {
            arch: arm; trap: "hvc"; tag: 1; number: r12; args: [r0, r12]; ret: r0; clobbers: used_args;
        });
        assert!(e.contains("call-number register"), "{e}");
        let e = parse_err(quote! {
            arch: arm; trap: "hvc"; tag: 1; number: r12; args: [r0, q1]; ret: r0; clobbers: used_args;
        });
        assert!(e.contains("unknown register `q1`"), "{e}");
        let e = parse_err(quote! {
            arch: aarch64; trap: "hvc"; tag: 1; number: x16; args: [x0, x1, x2, x3, x4, x5, x6];
            ret: x0; clobbers: used_args;
        });
        assert!(e.contains("at most 6"), "{e}");
        let e = parse_err(quote! {
            arch: arm; trap: "hvc"; tag: 1; number: r7; args: [r0]; ret: r0; clobbers: used_args;
        });
        assert!(e.contains("frame pointer"), "{e}");
        let e = parse_err(
            quote! { arch: arm; trap: "hvc"; number: r12; args: [r0]; ret: r0; clobbers: used_args; },
        );
        assert!(e.contains("lacks `tag"), "{e}");
    }

    /// Written out from Xen's x86 entry code (`clobber_regs64` in `arch/x86/include/asm/hypercall.h`: a debug
    /// build overwrites `rdi`, `rsi`, `rdx`, `r10`, `r8` up to the declared arity; the result comes back in
    /// `rax`, the number's register) and from the trap: `syscall` writes the return address to `rcx` and
    /// the flags to `r11`, `vmcall`/`vmmcall` write neither. Row = arity.
    const X86_USED: [&[&str]; 7] = [
        &[],
        &["rdi"],
        &["rdi", "rsi"],
        &["rdi", "rsi", "rdx"],
        &["rdi", "rsi", "rdx", "r10"],
        &["rdi", "rsi", "rdx", "r10", "r8"],
        &["rdi", "rsi", "rdx", "r10", "r8", "r9"],
    ];

    fn x86(trap: &str, also: TokenStream) -> Abi {
        let trap = syn::LitStr::new(trap, proc_macro2::Span::call_site());
        syn::parse2(quote! {
            arch: x86_64; trap: #trap; number: rax; args: [rdi, rsi, rdx, r10, r8, r9]; ret: rax;
            clobbers: used_args; #also
        })
        .expect("valid description")
    }

    /// The SMC Calling Convention as `src/arch/smccc_aarch64.rs` and `smccc_arm.rs` describe it.
    fn smccc_a64(stub: &str, word: &str) -> Abi {
        let stub = format_ident!("{}", stub);
        let word = format_ident!("{}", word);
        syn::parse2(quote! {
            arch: aarch64; trap: "hvc"; tag: 0; number: x0; args: [x1, x2, x3, x4, x5, x6];
            results: [x0, x1, x2, x3]; clobbers: none; stub: #stub; word: #word;
        })
        .expect("valid description")
    }

    #[test]
    fn x86_clobber_sets_pv_and_hvm() {
        let pv = x86("syscall", quote! { also_clobbers: [rcx, r11]; });
        let hvm = x86("vmmcall", quote! {});
        for (n, used) in X86_USED.iter().enumerate() {
            let (clobbered, named) = declared(&pv, n);
            let mut want: Vec<&str> = used.to_vec();
            want.extend(["rcx", "r11"]);
            assert_eq!(clobbered, want, "pv, arity {n}");
            assert!(named.iter().any(|r| r == "rax"), "pv, arity {n}: rax bound");
            let (clobbered, _) = declared(&hvm, n);
            assert_eq!(clobbered, *used, "hvm, arity {n}");
        }
        // The number and the result share rax; the trap has no immediate.
        let text = inline_stub(&pv, 2).to_string();
        assert!(text.contains("inlateout (\"rax\") op => ret"), "{text}");
        assert!(
            text.contains("\"syscall\"") && !text.contains("tag"),
            "{text}"
        );
    }

    #[test]
    fn the_x86_clobber_check_catches_a_syscall_stub_without_rcx_r11() {
        // Negative control: the PV description without `also_clobbers` declares rcx and r11 preserved,
        // which `syscall` overwrites.
        let under = x86("syscall", quote! {});
        let (clobbered, _) = declared(&under, 1);
        assert_ne!(clobbered, ["rdi", "rcx", "r11"]);
    }

    #[test]
    fn x86_descriptions_are_checked() {
        let e = parse_err(quote! {
            arch: x86_64; trap: "syscall"; number: rax; args: [rdi, rbx]; ret: rax; clobbers: used_args;
        });
        assert!(e.contains("LLVM"), "{e}");
        let e = parse_err(quote! {
            arch: x86_64; trap: "syscall"; number: rax; args: [rdi]; ret: rax; clobbers: used_args;
            also_clobbers: [rdi];
        });
        assert!(e.contains("also_clobbers"), "{e}");
    }

    fn smccc_arm() -> Abi {
        syn::parse2(quote! {
            arch: arm; preamble: ".arch_extension virt"; trap: "hvc"; tag: 0; number: r0;
            args: [r1, r2, r3, r4, r5]; results: [r0, r1, r2, r3]; clobbers: none; stub: smc32_call;
            word: u32;
        })
        .expect("valid description")
    }

    /// Written out from SMCCC v1.1 (Arm DEN0028: results in x0-x3 / r0-r3, every other register
    /// preserved), not from the generator: per arity, the operands of the SMC64 stub on AArch64.
    const SMC64_OPERANDS: [&[&str]; 7] = [
        &[
            "inlateout (\"x0\") op => r0",
            "lateout (\"x1\") r1",
            "lateout (\"x2\") r2",
            "lateout (\"x3\") r3",
        ],
        &[
            "inlateout (\"x0\") op => r0",
            "inlateout (\"x1\") a1 => r1",
            "lateout (\"x2\") r2",
            "lateout (\"x3\") r3",
        ],
        &[
            "inlateout (\"x0\") op => r0",
            "inlateout (\"x1\") a1 => r1",
            "inlateout (\"x2\") a2 => r2",
            "lateout (\"x3\") r3",
        ],
        &[
            "inlateout (\"x0\") op => r0",
            "inlateout (\"x1\") a1 => r1",
            "inlateout (\"x2\") a2 => r2",
            "inlateout (\"x3\") a3 => r3",
        ],
        &[
            "inlateout (\"x0\") op => r0",
            "inlateout (\"x1\") a1 => r1",
            "inlateout (\"x2\") a2 => r2",
            "inlateout (\"x3\") a3 => r3",
            "in (\"x4\") a4",
        ],
        &[
            "inlateout (\"x0\") op => r0",
            "inlateout (\"x1\") a1 => r1",
            "inlateout (\"x2\") a2 => r2",
            "inlateout (\"x3\") a3 => r3",
            "in (\"x4\") a4",
            "in (\"x5\") a5",
        ],
        &[
            "inlateout (\"x0\") op => r0",
            "inlateout (\"x1\") a1 => r1",
            "inlateout (\"x2\") a2 => r2",
            "inlateout (\"x3\") a3 => r3",
            "in (\"x4\") a4",
            "in (\"x5\") a5",
            "in (\"x6\") a6",
        ],
    ];

    #[test]
    fn smccc_binds_four_results_and_clobbers_nothing_else() {
        for (stub, word) in [("smc64_call", "u64"), ("smc32_call", "u32")] {
            let abi = smccc_a64(stub, word);
            for (n, want) in SMC64_OPERANDS.iter().enumerate() {
                let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
                if word == "u32" {
                    // SMC32 operands are passed zero-extended to the 64-bit register.
                    for w in &mut want {
                        for v in ["op", "a1", "a2", "a3", "a4", "a5", "a6"] {
                            *w = w
                                .replace(&format!(") {v} =>"), &format!(") ({v} as u64) =>"))
                                .replace(
                                    &format!("in (\"x{}\") {v}", &v[1..]),
                                    &format!("in (\"x{}\") ({v} as u64)", &v[1..]),
                                );
                        }
                    }
                }
                want.push("options (nostack)".into());
                assert_eq!(operands(&abi, n), want, "{stub} arity {n}");
                let (clobbered, _) = declared(&abi, n);
                assert!(clobbered.is_empty(), "{stub} arity {n}: {clobbered:?}");
                assert!(clobbered_regs(&abi, n).is_empty());
            }
            let text = inline_stub(&abi, 2).to_string();
            assert!(
                text.contains(&format!(
                    "pub unsafe fn {stub}2 (op : {word} , a1 : {word} , a2 : {word}) -> [{word} ; 4usize]"
                )),
                "{text}"
            );
            if word == "u64" {
                assert!(text.contains("[r0 , r1 , r2 , r3]"), "{text}");
            } else {
                assert!(
                    text.contains("[r0 as u32 , r1 as u32 , r2 as u32 , r3 as u32]"),
                    "{text}"
                );
            }
            assert!(text.contains("tag = const 0"), "{text}");
        }
        let abi = smccc_arm();
        assert_eq!(
            operands(&abi, 5),
            [
                "inlateout (\"r0\") op => r0",
                "inlateout (\"r1\") a1 => r1",
                "inlateout (\"r2\") a2 => r2",
                "inlateout (\"r3\") a3 => r3",
                "in (\"r4\") a4",
                "in (\"r5\") a5",
                "options (nostack)"
            ]
        );
        let text = inline_stubs(&abi).to_string();
        assert!(
            text.contains("pub const SMC32_CALL_MAX_ARITY : usize = 5usize"),
            "{text}"
        );
        assert!(!text.contains("fn smc32_call6"));
    }

    #[test]
    fn the_smccc_check_catches_a_stub_with_one_result() {
        // Negative control: the SMCCC registers with a single result (`ret: x0`, Xen's shape) leave
        // x1-x3 unbound, declared preserved although the call writes them; the table must reject it.
        let abi: Abi = syn::parse2(quote! {
            arch: aarch64; trap: "hvc"; tag: 0; number: x0; args: [x1, x2, x3, x4, x5, x6];
            results: [x0, x1]; clobbers: none;
        })
        .unwrap();
        for (n, want) in SMC64_OPERANDS.iter().enumerate() {
            let mut want: Vec<&str> = want.to_vec();
            want.push("options (nostack)");
            let got = operands(&abi, n);
            if n < 3 {
                assert_ne!(got, want, "arity {n}: x2/x3 missing must be caught");
            }
        }
    }

    #[test]
    fn invalid_smccc_descriptions_are_rejected() {
        let e = parse_err(quote! {
            arch: arm; trap: "hvc"; tag: 0; number: r0; args: [r1]; results: [r0, r1]; clobbers: none;
            word: u64;
        });
        assert!(e.contains("needs 64-bit registers"), "{e}");
        let e = parse_err(quote! {
            arch: arm; trap: "hvc"; tag: 0; number: r0; args: [r1]; results: [r0, r1, r1]; clobbers: none;
        });
        assert!(e.contains("named twice in `results`"), "{e}");
        let e = parse_err(quote! {
            arch: arm; trap: "hvc"; tag: 0; number: r0; args: [r1]; ret: r0; results: [r0, r1];
            clobbers: none;
        });
        assert!(e.contains("not both"), "{e}");
        let e = parse_err(quote! {
            arch: arm; trap: "hvc"; tag: 0; number: r0; args: [r1]; results: [r0]; clobbers: none;
            word: i8;
        });
        assert!(e.contains("unknown `word: i8`"), "{e}");
    }
}
