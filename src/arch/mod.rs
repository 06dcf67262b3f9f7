//! One calling-convention description per architecture, each handed to the stub generator.
//!
//! Xen's ARM hypercall ABI (`xen/include/public/arch-arm.h`): the call number goes in `r12` (`x16`), the
//! arguments in `r0`–`r4` (`x0`–`x4`), the trap is `hvc #0xEA1`, and the result comes back in `r0` (`x0`). The
//! call clobbers the number register and the argument registers it uses (except `r0`/`x0`, the result);
//! every other register is preserved. Flags are not promised either way.

pub(crate) mod common;
pub use common::{SMCCC_HVC_TAG, XEN_HYPERCALL_TAG};

/// The SMC Calling Convention's stubs (`smc32_callN`, and on AArch64 `smc64_callN`): see [`crate::smccc`]
/// for the typed calls.
#[cfg(target_arch = "aarch64")]
#[path = "smccc_aarch64.rs"]
pub mod smccc;
/// The SMC Calling Convention's stubs (`smc32_callN`): see [`crate::smccc`] for the typed calls.
#[cfg(all(target_arch = "arm", not(xen_hypercall_m_profile)))]
#[path = "smccc_arm.rs"]
pub mod smccc;

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;

#[cfg(all(target_arch = "arm", not(xen_hypercall_m_profile)))]
mod arm;
#[cfg(all(target_arch = "arm", not(xen_hypercall_m_profile)))]
pub use arm::*;

#[cfg(all(target_arch = "arm", xen_hypercall_m_profile))]
compile_error!(
    "xen-hypercall: M-profile ARM (thumbv6m/thumbv7m/thumbv7em/thumbv8m) has no HVC instruction and cannot \
     run under Xen; build for an A-profile target such as armv7a-none-eabi or aarch64-unknown-none"
);

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub use x86_64::*;
/// The x86-64 hypercall page (the out-of-line stubs enter it).
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub mod x86_page;

#[cfg(not(any(
    target_arch = "aarch64",
    target_arch = "arm",
    all(target_arch = "x86_64", target_os = "none")
)))]
pub(crate) use common::with_arities;

#[cfg(not(any(
    target_arch = "aarch64",
    target_arch = "arm",
    all(target_arch = "x86_64", target_os = "none")
)))]
mod unsupported;
#[cfg(not(any(
    target_arch = "aarch64",
    target_arch = "arm",
    all(target_arch = "x86_64", target_os = "none")
)))]
pub use unsupported::*;
