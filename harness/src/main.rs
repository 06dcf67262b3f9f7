//! The EL2 harness image: a hypervisor of our own plays Xen at EL2 and the guest tests at EL1 call every
//! stub of `xen-hypercall` exactly as a user would, checking what the compiler relies on.
//!
//! - [`a64`]: the AArch64 image (EL2 monitor; it runs its own AArch64 guest, or the 32-bit image as an
//!   AArch32 guest when that is loaded next to it).
//! - [`a32`]: the 32-bit image (A32 or T32 guest; started in HYP mode it is its own monitor).
//! - [`monitor`]: what the hypervisor does with a trap, shared by both monitors. [`exit`]: the end of a
//!   run (semihosting).
//! - [`guest`]: the tests. [`proto`]: what the two sides agree on. [`uart`]: console output.
//!
//! Built and run by `cargo xtask el2`; on other targets this is an empty program.

#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_os = "none")]
pub mod proto;

#[cfg(all(target_os = "none", any(target_arch = "aarch64", target_arch = "arm")))]
mod image {
    #[cfg(target_arch = "arm")]
    pub mod a32;
    #[cfg(target_arch = "aarch64")]
    pub mod a64;
    #[cfg(target_arch = "arm")]
    pub use a32 as arch;
    #[cfg(target_arch = "aarch64")]
    pub use a64 as arch;

    pub mod exit;
    pub mod guest;
    pub mod monitor;
    pub mod uart;

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        use core::fmt::Write;
        let _ = writeln!(uart::Uart, "PANIC {info}");
        exit::semihost_exit(255)
    }
}

#[cfg(all(target_os = "none", any(target_arch = "aarch64", target_arch = "arm")))]
use image::*;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the EL2 harness is a bare-metal image for QEMU: run it with `cargo xtask el2`");
    std::process::exit(2);
}
