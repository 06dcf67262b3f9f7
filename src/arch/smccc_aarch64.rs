//! The Arm SMC Calling Convention (SMCCC) over `hvc #0` on AArch64: the convention through which Xen
//! serves PSCI, the SMCCC architecture calls and its hypervisor service (Xen's `xen/arch/arm/vsmc.c`).
//!
//! Two stub families from one description: `smc32_call0` … `smc32_call6` (SMC32/HVC32 calls, function
//! identifier bit 30 clear, 32-bit operands in `W` registers) and `smc64_call0` … `smc64_call6`
//! (SMC64/HVC64, bit 30 set, 64-bit operands). Each takes the function identifier in `x0`, the arguments in
//! `x1`… and returns `[x0, x1, x2, x3]`; every other register is declared preserved.
//!
//! The rule relied on, for the SMCCC version Xen implements:
//! - Xen 4.17 answers `SMCCC_VERSION` with `ARM_SMCCC_VERSION_1_1` (`vsmc.c`, `handle_arch`), and every
//!   handler of `vsmc.c` and `vpsci.c` writes its results with `set_user_reg(regs, n, …)` for `n` in 0..=3
//!   only (`fill_uid`, `fill_revision`, `PSCI_SET_RESULT`); no other guest register is written.
//! - SMCCC v1.1 (Arm DEN0028, "SMC Calling Convention", v1.1 and later): `x0`–`x3` are the result
//!   registers; `x4`–`x17` must be preserved (v1.0 left them unpredictable; v1.2 lets a function define
//!   some of them as further results, none of the functions used here does); `x18`–`x30` and the stack
//!   pointers are preserved. A 32-bit call ignores the upper halves of its arguments.
//! - Linux's inline `arm_smccc_1_1_hvc` (`include/linux/arm-smccc.h`, "SMCCC v1.1 ... only clobbers the
//!   first 4 registers") relies on the same rule.
//!
//! SMCCC 1.1 allows seven arguments (`x1`–`x7`); these stubs pass at most six, enough for every PSCI and
//! SMCCC architecture call (CPU_ON has three).

/// The SMC Calling Convention over `hvc #0`, handed to a generator with the stub name and operand type
/// of one call family.
macro_rules! smccc_abi {
    ($($generator:ident)::+, $stub:ident, $word:ident) => {
        $($generator)::+! {
            /// - `op` is an SMCCC function identifier the hypervisor implements with the calling convention
            ///   of this stub family (SMC32: bit 30 clear; SMC64: bit 30 set, and only from a 64-bit guest:
            ///   Xen answers a 64-bit identifier from a 32-bit guest with `NOT_SUPPORTED`), and the arguments
            ///   are what that function takes.
            /// - The hypervisor implements SMCCC v1.1 or later on `hvc #0` (Xen does; so does KVM): it writes
            ///   `x0`–`x3` and preserves every other register. Under SMCCC v1.0 (`x4`–`x17` unpredictable)
            ///   these stubs are wrong.
            /// - Any memory the function reads or writes (for PSCI `CPU_ON`: the code at the entry point)
            ///   is valid for that use.
            /// - The caller runs at EL1: `hvc` at EL0 is undefined, and without a hypervisor the trap goes
            ///   wherever EL2's vectors send it.
            arch: aarch64;
            trap: "hvc";
            tag: $crate::arch::common::SMCCC_HVC_TAG;
            number: x0;
            args: [x1, x2, x3, x4, x5, x6];
            results: [x0, x1, x2, x3];
            clobbers: none;
            stub: $stub;
            word: $word;
        }
    };
}
pub(crate) use smccc_abi;

smccc_abi!(xen_hypercall_macros::hypercall_abi, smc32_call, u32);
smccc_abi!(xen_hypercall_macros::hypercall_abi, smc64_call, u64);
