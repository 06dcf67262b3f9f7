//! The out-of-line variant: `hypercall0` … `hypercall6` as real functions, from the same generator and the
//! same calling-convention description as the inline stubs (`src/arch/`).
//!
//! Each is a naked `extern "C"` function in the shape of Linux's `arch/arm/xen/hypercall.S`: move the call
//! number and the arguments into Xen's registers, save `r4`/`r5` and load the stack-passed arguments into
//! them on 32-bit ARM at arity 5 and 6, `hvc #0xEA1`, restore, return. The signatures are those of the
//! inline stubs, so the two are interchangeable; the `outline` cargo feature makes the typed API use these.
//!
//! A call through them costs a branch and the C calling convention: the compiler must assume every
//! caller-saved register clobbered and must marshal the arguments into `r0`–`r3` and the stack, where the
//! inline stubs let it keep values in every register Xen preserves. They are smaller when a program has many
//! call sites (see `cargo bench` and `cargo xtask audit`).

#[cfg(any(target_arch = "arm", target_arch = "aarch64"))]
crate::arch::xen_abi!(xen_hypercall_macros::hypercall_outline);

#[cfg(not(any(target_arch = "arm", target_arch = "aarch64")))]
pub use crate::arch::{
    hypercall0, hypercall1, hypercall2, hypercall3, hypercall4, hypercall5, hypercall6,
};
