//! The generator behind `xen-hypercall`.
//!
//! [`hypercall_abi!`] takes a declarative description of a hypervisor's calling convention and emits one
//! `#[inline(always)] pub unsafe fn hypercallN` per arity, from 0 up to the number of argument registers. Each
//! stub is a single `asm!` block: the register set-up and the trap instruction cannot be separated, which a
//! hypervisor that restarts preempted calls by stepping the PC back onto the trap relies on.
//!
//! ```text
//! hypercall_abi! {
//!     /// Xen on 32-bit ARM.
//!     arch: arm;                         // register file: `arm` or `aarch64`
//!     preamble: ".arch_extension virt";  // assembler directives placed before the trap (optional)
//!     trap: "hvc";                       // the trapping instruction
//!     tag: XEN_HYPERCALL_TAG;            // its immediate: any integer constant expression
//!     number: r12;                       // register carrying the call number
//!     args: [r0, r1, r2, r3, r4, r5];    // argument registers, in order (at most 6)
//!     ret: r0;                           // register carrying the result
//!     clobbers: used_args;               // `used_args` or `all_args`
//!     preserves_flags: false;            // optional, default false
//! }
//! ```
//!
//! Clobber rules:
//! - `used_args`: the call-number register and every argument register the call uses are clobbered; the
//!   result register is written; every other register is preserved (Xen's rule).
//! - `all_args`: the call-number register and every argument register are clobbered at every arity.
//!
//! Memory is never declared untouched (hypercalls read and write guest memory through pointer arguments) and
//! the stubs are `nostack`. Flags are declared clobbered unless the description opts into `preserves_flags`.

use proc_macro::TokenStream;

mod abi;
mod arm;
mod emit;
mod outline;
mod x86;

/// Generates `hypercall0` … `hypercallN` from a calling-convention description. See the crate docs.
#[proc_macro]
pub fn hypercall_abi(input: TokenStream) -> TokenStream {
    match syn::parse::<abi::Abi>(input) {
        Ok(abi) => emit::inline_stubs(&abi).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Generates the out-of-line variants `hypercall0` … `hypercallN` (naked `extern "C"` functions, the classic
/// `hypercall.S` shape) from the same description as [`hypercall_abi!`].
#[proc_macro]
pub fn hypercall_outline(input: TokenStream) -> TokenStream {
    match syn::parse::<abi::Abi>(input) {
        Ok(abi) if abi.arch == abi::Arch::X86_64 => x86::outline_stubs(&abi).into(),
        Ok(abi) => arm::outline_stubs(&abi).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Generates the per-hypercall out-of-line stubs `hypercall0::<NR>` … `hypercallN::<NR>` (naked `extern "C"`
/// functions with the call number built in, Linux's `HYPERCALLn(name)` shape) from the same description as
/// [`hypercall_abi!`]. On x86-64 (a description with a `page`) they are inline instead: one `asm!` block
/// at the call site binds the arguments and executes `call page + NR * stride`.
#[proc_macro]
pub fn hypercall_per_call(input: TokenStream) -> TokenStream {
    match syn::parse::<abi::Abi>(input) {
        // x86-64 calls the hypercall page's entry from the call site (no stub of ours in between).
        Ok(abi) if abi.arch == abi::Arch::X86_64 => x86::page_call_stubs(&abi).into(),
        Ok(abi) => arm::per_call_stubs(&abi).into(),
        Err(e) => e.to_compile_error().into(),
    }
}
