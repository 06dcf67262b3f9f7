//! Emission of the out-of-line stubs: the classic `hypercall.S` shape, as naked functions, in two kinds.
//! This is the architecture-neutral part (the functions' signatures, documentation and `naked_asm!`
//! operands around the instruction lines, the ordering of register moves); each architecture writes the
//! lines: [`crate::arm`], [`crate::x86`].
//!
//! - Per arity (`privcmd_call` shape): `extern "C" fn hypercallN(op, a1, …, aN) -> isize` receives its
//!   operands in the C calling convention (AAPCS: `r0`–`r3` then the stack; AAPCS64: `x0`–`x7`), moves the
//!   call number to the number register and each argument to its hypercall register, saves the
//!   callee-saved registers the convention needs (`r4`, `r5` on 32-bit ARM at arity 5 and 6) and reloads
//!   the stack-passed arguments into them, traps, restores, and returns. The moves are emitted in an order
//!   that never overwrites a source before it is read; a description for which no such order is found is a
//!   compile error.
//! - Per hypercall (Linux's `HYPERCALLn(name)` shape): `extern "C" fn hypercallN<const NR: usize>(a1, …,
//!   aN) -> isize` has the number built in (`mov r12, #NR` / `mov x16, #NR`) and receives the arguments
//!   where the C convention already puts them, so it moves nothing but the stack-passed arguments. One
//!   function per number actually used (monomorphisation); a number `mov` cannot encode is a compile error.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};

use crate::abi::{Abi, Arch};
use crate::emit::{clobbered, tag_operand};

/// Where an out-of-line stub takes the call number from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Number {
    /// The first C argument (the per-arity stubs).
    FirstArg,
    /// Built in: `mov <number>, #{nr}` (the per-hypercall stubs; `{nr}` is the `const` operand).
    Immediate,
}

/// The largest call number a per-hypercall stub accepts on `arch`: what one `mov` of an immediate encodes
/// on every instruction set of the architecture (A32 and T32 modified immediates hold every value up to
/// 255; AArch64 `movz` every 16-bit value).
pub fn max_number(arch: Arch) -> u32 {
    match arch {
        Arch::Arm => 255,
        Arch::Aarch64 => 0xffff,
        // `mov eax, imm32`; the hypercall page has 128 entries of 32 bytes.
        Arch::X86_64 => 127,
    }
}

/// The register moves (`(destination, source)`) and stack loads (`(register, offset)`) of a stub.
pub(crate) type Placement = (Vec<(String, String)>, Vec<(String, usize)>);

/// How the C arguments reach `dests` (argument `i` into `dests[i]`), the first ones passed in `arg_regs`,
/// the others on the stack from `stack` bytes above `sp`, `slot` bytes each: the register moves, ordered so
/// that no source is overwritten before it is read, and the stack loads, which come after the moves (their
/// destinations are not argument registers still to be read). An error if the moves form a cycle.
pub(crate) fn place_args(
    dests: &[String],
    arg_regs: &[&str],
    stack: usize,
    slot: usize,
) -> Result<Placement, String> {
    let mut moves: Vec<(String, String)> = Vec::new();
    let mut loads: Vec<(String, usize)> = Vec::new();
    for (i, d) in dests.iter().enumerate() {
        match arg_regs.get(i) {
            Some(src) if *src == d => {}
            Some(src) => moves.push((d.clone(), src.to_string())),
            None => loads.push((d.clone(), stack + (i - arg_regs.len()) * slot)),
        }
    }
    let mut ordered = Vec::with_capacity(moves.len());
    while !moves.is_empty() {
        let ready = moves
            .iter()
            .position(|(d, _)| !moves.iter().any(|(_, s)| s == d))
            .ok_or("the register moves form a cycle")?;
        ordered.push(moves.remove(ready));
    }
    Ok((ordered, loads))
}

/// The instruction lines of a stub of arity `n`, or why none can be made: an architecture's.
pub type Lines = fn(&Abi, usize) -> Result<Vec<String>, String>;

/// One `#[unsafe(naked)] pub unsafe extern "C" fn hypercallN` per arity, of the per-arity `lines`.
pub fn outline_stubs(abi: &Abi, lines: Lines) -> TokenStream {
    every_arity(abi, "out-of-line", lines, outline_stub)
}

/// One `#[unsafe(naked)] pub unsafe extern "C" fn hypercallN<const NR: usize>` per arity: the per-hypercall
/// stubs of the per-hypercall `lines`, with the call number built in.
pub fn per_call_stubs(abi: &Abi, lines: Lines) -> TokenStream {
    every_arity(abi, "per-hypercall", lines, per_call_stub)
}

/// `stub` of `lines` for every arity 0 to the description's, or a compile error naming the `kind` of stub
/// and the arity for which `lines` found none.
fn every_arity(
    abi: &Abi,
    kind: &str,
    lines: Lines,
    stub: fn(&Abi, usize, &[String]) -> TokenStream,
) -> TokenStream {
    let stubs = (0..=abi.args.len()).map(|n| match lines(abi, n) {
        Ok(lines) => stub(abi, n, &lines),
        Err(e) => syn::Error::new(
            Span::call_site(),
            format!("no {kind} stub of arity {n}: {e}"),
        )
        .to_compile_error(),
    });
    quote! { #(#stubs)* }
}

/// The result pointer parameter (several results) and the return type (one result) of an out-of-line
/// stub.
fn outline_signature(abi: &Abi) -> (TokenStream, TokenStream) {
    let word = abi.word.unsigned();
    if abi.multi() {
        let k = abi.results.len();
        (quote!(out: *mut [#word; #k],), quote!())
    } else {
        let signed = abi.word.signed();
        (quote!(), quote!(-> #signed))
    }
}

fn outline_stub(abi: &Abi, n: usize, lines: &[String]) -> TokenStream {
    let name = format_ident!("{}{}", abi.stub, n);
    let (out, ret) = outline_signature(abi);
    let word = abi.word.unsigned();
    let params: Vec<_> = (1..=n).map(|i| format_ident!("a{}", i)).collect();
    let tag_operand = tag_operand(abi);
    let docs = &abi.docs;
    let plural = if n == 1 { "" } else { "s" };
    let summary = format!(
        " Issues a hypercall with {n} argument{plural} through an out-of-line stub ({}).",
        abi.arch.display()
    );
    let clob: Vec<String> = clobbered(abi, n).iter().map(|r| format!("`{r}`")).collect();
    let regs = format!(
        " Called with the C calling convention; moves the call number to `{}` and the arguments to {}, traps, \
         and returns {}. At the call site the compiler must assume every caller-saved register is \
         clobbered (the hypercall itself clobbers {}).",
        abi.number,
        if n == 0 {
            "no register".to_string()
        } else {
            abi.args[..n]
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        if abi.multi() {
            format!(
                "{} through `out`",
                abi.results
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("`{}`", abi.ret)
        },
        if clob.is_empty() {
            "no other register".to_string()
        } else {
            clob.join(", ")
        }
    );
    let tag_text = tag_text(abi);
    let listing = format!(
        " ```text\n{}\n ```",
        lines
            .iter()
            .map(|l| format!("     {}", l.replace("{tag}", &tag_text)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let template = template(lines);
    quote! {
        #[doc = #summary]
        #[doc = ""]
        #[doc = #regs]
        #[doc = ""]
        #[doc = #listing]
        #[doc = ""]
        #[doc = " # Safety"]
        #[doc = ""]
        #[doc = " The caller upholds the hypervisor's contract for the call `op`:"]
        #(#docs)*
        #[unsafe(naked)]
        pub unsafe extern "C" fn #name(#out op: #word #(, #params: #word)*) #ret {
            ::core::arch::naked_asm!(
                #(#template,)*
                #tag_operand
            )
        }
    }
}

/// The trap's immediate as documentation shows it (empty without one).
fn tag_text(abi: &Abi) -> String {
    abi.tag
        .as_ref()
        .map(|t| quote!(#t).to_string())
        .unwrap_or_default()
}

/// The asm template lines: braces of register lists are literal; `{tag}` and `{nr}` are operands.
fn template(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l.replace('{', "{{")
                .replace('}', "}}")
                .replace("{{tag}}", "{tag}")
                .replace("{{nr}}", "{nr}")
        })
        .collect()
}

fn per_call_stub(abi: &Abi, n: usize, lines: &[String]) -> TokenStream {
    let name = format_ident!("{}{}", abi.stub, n);
    let (out, ret) = outline_signature(abi);
    let word = abi.word.unsigned();
    let params: Vec<_> = (1..=n).map(|i| format_ident!("a{}", i)).collect();
    let tag_operand = tag_operand(abi);
    let docs = &abi.docs;
    let max = max_number(abi.arch);
    let plural = if n == 1 { "" } else { "s" };
    let summary = format!(
        " Issues hypercall `NR` with {n} argument{plural} through a per-hypercall out-of-line stub ({}).",
        abi.arch.display()
    );
    let stack = if n > 4 && abi.arch == Arch::Arm {
        " The arguments beyond the fourth arrive on the stack; the stub saves the callee-saved registers \
         they go to, loads them, and restores the registers after the trap."
    } else {
        ""
    };
    let regs = format!(
        " Called with the C calling convention, which already puts {} where the hypervisor wants {}; \
         the stub writes `NR` into `{}`, traps, and returns `{}`.{stack} At the call site the compiler \
         must assume every caller-saved register is clobbered (the hypercall itself clobbers {}).",
        if n == 0 {
            "no argument".to_string()
        } else {
            abi.args[..n]
                .iter()
                .enumerate()
                .map(|(i, r)| format!("`a{}` in `{r}`", i + 1))
                .collect::<Vec<_>>()
                .join(", ")
        },
        if n == 1 { "it" } else { "them" },
        abi.number,
        abi.ret,
        clobbered(abi, n)
            .iter()
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let range = format!(
        " `NR` is at most {max} (one `mov` of an immediate encodes it on every instruction set of the \
         architecture); a larger number is a compile error where the stub is instantiated. Each number \
         used gets its own copy of the stub; numbers not used get none."
    );
    let tag_text = tag_text(abi);
    let listing = format!(
        " ```text\n{}\n ```",
        lines
            .iter()
            .map(|l| format!(
                "     {}",
                l.replace("{tag}", &tag_text).replace("{nr}", "NR")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let template = template(lines);
    let max = max as usize;
    let too_large = format!("a per-hypercall stub's call number must be at most {max}");
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
        #[doc = " The caller upholds the hypervisor's contract for the call `NR` (`op` below):"]
        #(#docs)*
        #[unsafe(naked)]
        pub unsafe extern "C" fn #name<const NR: usize>(#out #(#params: #word),*) #ret {
            ::core::arch::naked_asm!(
                #(#template,)*
                nr = const {
                    assert!(NR <= #max, #too_large);
                    NR
                },
                #tag_operand
            )
        }
    }
}
