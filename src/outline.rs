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
//!
//! [`per_call`] holds the other kind Linux and Unikraft use: one stub per hypercall, the number built in.
//!
//! On x86-64 both kinds enter Xen's hypercall page instead of trapping themselves (`page` below): the
//! per-arity stub moves its operands into Xen's registers and jumps to `page + op * 32`; the per-hypercall
//! "stub" is inline, one `asm!` block at the call site that binds the arguments to Xen's registers and
//! executes `call page + NR * 32` (the shape of Mini-OS's and Linux's `_hypercallN` macros): the page entry
//! Xen wrote is the only out-of-line code. Xen writes the trap that suits the guest and the CPU into the
//! page, so these serve PV and HVM/PVH guests, Intel and AMD, alike.
//!
//! # The raw stubs and feature `outline`
//!
//! The `outline` feature moves the typed API ([`crate::xen`]) onto these stubs; the raw stubs
//! (`xen_hypercall::hypercall0` … `hypercall6`, [`hypercall!`](crate::hypercall)) keep trapping inline
//! with the trap the features choose. On x86-64 without `x86-pv` or `x86-hvm-amd` that is `vmcall`, which
//! does not reach Xen on an AMD CPU (the guest triple-faults) nor from a PV guest. A program built to serve
//! PV and PVH, Intel and AMD, from one ELF makes its raw calls through the page as well:
//! [`per_call`]`::hypercallN::<NR>` (the number a constant; an inline `call` of the page entry) or
//! `hypercallN(op, …)` of this module (the number at run time).
//!
//! The raw stubs do not follow `outline`: cargo features are unified across the dependency graph, so one
//! crate's `outline` would move another crate's raw calls, written for the inline trap, onto a page that
//! must first be written (a PVH guest registers it; until then every entry is `int3`); and the raw stubs
//! are the one-`asm!`-block trap on every architecture (`outline` does not change them on ARM either).

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub use crate::arch::x86_page as page;

#[cfg(any(
    target_arch = "arm",
    target_arch = "aarch64",
    all(target_arch = "x86_64", target_os = "none")
))]
crate::arch::xen_abi!(xen_hypercall_macros::hypercall_outline);

#[cfg(not(any(
    target_arch = "arm",
    target_arch = "aarch64",
    all(target_arch = "x86_64", target_os = "none")
)))]
pub use crate::arch::{
    hypercall0, hypercall1, hypercall2, hypercall3, hypercall4, hypercall5, hypercall6,
};

/// Per-hypercall out-of-line stubs: `per_call::hypercallN::<NR>(a1, …, aN)`, the shape of Linux's
/// `HYPERCALLn(name)` in `arch/arm64/xen/hypercall.S` and `arch/arm/xen/hypercall.S`.
///
/// The call number is a const generic built into the stub, and the arguments arrive where the C calling
/// convention puts them, which on ARM is where Xen wants them: on AArch64 every stub is
/// `mov x16, #NR; hvc #0xEA1; ret`; on 32-bit ARM `mov r12, #NR; hvc #0xEA1; bx lr` up to arity 4, and at
/// arity 5 and 6 the stub saves `r4`/`r5` (two registers, keeping the stack 8-byte aligned), loads the
/// stack-passed arguments into them, traps and restores. Same generator and description as the inline
/// stubs (`src/arch/`).
///
/// On x86-64 they are not functions of their own: `per_call::hypercallN::<NR>` is `#[inline(always)]`, one
/// `asm!` block that puts the arguments in Xen's registers and calls entry `NR` of the hypercall page
/// (`call xen_hypercall_page + NR * 32`); the caller sees which registers the call clobbers, as with the
/// inline stubs, and no jump sits between the call site and the page.
///
/// Each number used gets its own stub (monomorphisation), so a program that makes eight kinds of
/// hypercall carries eight stubs of 12 bytes (24 at arity 5 on 32-bit ARM), and a call site only
/// marshals the arguments. `NR` must fit one `mov` of an immediate: at most 255 on 32-bit ARM (A32 and
/// T32 modified immediates), 65535 on AArch64 (`movz`); every Xen hypercall number (0–63) does, and a
/// larger one is a compile error where the stub is instantiated. The `outline` cargo feature makes the
/// typed API (`crate::xen`) call these.
pub mod per_call {
    #[cfg(any(
        target_arch = "arm",
        target_arch = "aarch64",
        all(target_arch = "x86_64", target_os = "none")
    ))]
    crate::arch::xen_abi!(xen_hypercall_macros::hypercall_per_call);

    /// False for every number: the condition of the compile error above.
    #[cfg(not(any(
        target_arch = "arm",
        target_arch = "aarch64",
        all(target_arch = "x86_64", target_os = "none")
    )))]
    #[cfg_attr(feature = "mock", allow(dead_code))]
    const fn unavailable(_nr: usize) -> bool {
        false
    }

    #[cfg(not(any(
        target_arch = "arm",
        target_arch = "aarch64",
        all(target_arch = "x86_64", target_os = "none")
    )))]
    macro_rules! unsupported_per_call {
        ($($n:literal: ($($a:ident),*);)*) => {
            paste::paste! {
                $(
                    #[doc = concat!(" With the `mock` feature, the mock's stub of arity ", $n, " with the \
                                      number `NR`; otherwise not available on this target: instantiating \
                                      it is a compile error.")]
                    ///
                    /// # Safety
                    ///
                    /// As for the mock's raw stubs (`crate::hypercall0` …); without the mock it cannot be
                    /// called: its instantiation does not compile.
                    pub unsafe fn [<hypercall $n>]<const NR: usize>($($a: usize),*) -> isize {
                        #[cfg(feature = "mock")]
                        // SAFETY: forwarded from this function's contract to the mock's stub.
                        return unsafe { crate::[<hypercall $n>](NR $(, $a)*) };
                        #[cfg(not(feature = "mock"))]
                        {
                            $(let _ = $a;)*
                            // Depends on `NR`, so that only an instantiation fails (an optimised build
                            // evaluates a generic function's constants that do not depend on its parameters).
                            const {
                                if unavailable(NR) {
                                    0
                                } else {
                                    panic!(
                                        "xen-hypercall's per-hypercall stubs exist only for bare-metal guests: \
                                         armv7a-none-eabi (A32 and Thumb-2), aarch64-unknown-none and \
                                         x86_64-unknown-none; for host unit tests enable the `mock` feature"
                                    )
                                }
                            }
                        }
                    }
                )*
            }
        };
    }

    #[cfg(not(any(
        target_arch = "arm",
        target_arch = "aarch64",
        all(target_arch = "x86_64", target_os = "none")
    )))]
    crate::arch::with_arities!(unsupported_per_call);
}

/// The SMC Calling Convention's out-of-line stubs, from the same generator and description as the inline
/// ones (`crate::arch::smccc`): `smc32_callN(out, fid, a1, …, aN)` (and on AArch64 `smc64_callN`), naked
/// `extern "C"` functions that keep the result pointer `out` in a caller-saved register the call preserves
/// (`x9`, `r12`), move the function identifier and the arguments one register down, `hvc #0`, and store
/// `x0`–`x3` (`r0`–`r3`) through `out`.
#[cfg(any(
    target_arch = "aarch64",
    all(target_arch = "arm", not(xen_hypercall_m_profile))
))]
pub mod smccc {
    crate::arch::smccc::smccc_abi!(xen_hypercall_macros::hypercall_outline, smc32_call, u32);
    #[cfg(target_arch = "aarch64")]
    crate::arch::smccc::smccc_abi!(xen_hypercall_macros::hypercall_outline, smc64_call, u64);
}
