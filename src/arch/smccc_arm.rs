//! The Arm SMC Calling Convention (SMCCC) over `hvc #0` on 32-bit ARM, A32 and T32 alike: the
//! convention through which Xen serves PSCI, the SMCCC architecture calls and its hypervisor service
//! (Xen's `xen/arch/arm/vsmc.c`).
//!
//! One stub family, `smc32_call0` … `smc32_call5` (SMC32/HVC32: function identifier bit 30 clear; a
//! 32-bit guest has no SMC64 calls, which Xen answers with `NOT_SUPPORTED`). Each takes the function
//! identifier in `r0`, the arguments in `r1`… and returns `[r0, r1, r2, r3]`; every other register is
//! declared preserved.
//!
//! The rule relied on, for the SMCCC version Xen implements:
//! - Xen 4.17 answers `SMCCC_VERSION` with `ARM_SMCCC_VERSION_1_1` (`vsmc.c`, `handle_arch`), and every
//!   handler of `vsmc.c` and `vpsci.c` writes its results with `set_user_reg(regs, n, …)` for `n` in 0..=3
//!   only; no other guest register is written.
//! - SMCCC v1.1 (Arm DEN0028): `r0`–`r3` are the result registers; `r4`–`r14` are preserved.
//! - Linux's inline `arm_smccc_1_1_hvc` (`include/linux/arm-smccc.h`) relies on the same rule.
//!
//! SMCCC allows arguments in `r1`–`r7`; `r6` and `r7` cannot be bound in `asm!` (the compiler reserves
//! them), so these stubs pass at most five, enough for every PSCI and SMCCC architecture call.

/// The SMC Calling Convention over `hvc #0`, handed to a generator with the stub name and operand type
/// of one call family.
macro_rules! smccc_abi {
    ($($generator:ident)::+, $stub:ident, $word:ident) => {
        $($generator)::+! {
            /// - `op` is an SMC32 function identifier (bit 30 clear) the hypervisor implements, and the
            ///   arguments are what that function takes.
            /// - The hypervisor implements SMCCC v1.1 or later on `hvc #0` (Xen does; so does KVM): it writes
            ///   `r0`–`r3` and preserves every other register.
            /// - Any memory the function reads or writes (for PSCI `CPU_ON`: the code at the entry point)
            ///   is valid for that use.
            /// - The caller runs at PL1: `hvc` in user mode is undefined, and without a hypervisor the trap
            ///   goes wherever HYP mode's vectors send it.
            arch: arm;
            preamble: ".arch_extension virt";
            trap: "hvc";
            tag: $crate::arch::common::SMCCC_HVC_TAG;
            number: r0;
            args: [r1, r2, r3, r4, r5];
            results: [r0, r1, r2, r3];
            clobbers: none;
            stub: $stub;
            word: $word;
        }
    };
}
pub(crate) use smccc_abi;

smccc_abi!(xen_hypercall_macros::hypercall_abi, smc32_call, u32);
