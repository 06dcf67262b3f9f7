//! The end of a run, below the monitors and the guest: QEMU's semihosting exit with a status, and a wait
//! for ever.
//!
//! Semihosting `SYS_EXIT` (0x18) with the block `[ADP_Stopped_ApplicationExit (0x20026), code]`: on
//! AArch64 `hlt #0xf000` with `x0` = 0x18 and `x1` = the block; on 32-bit ARM `SYS_EXIT_EXTENDED` (0x20)
//! through the A32 `svc 0x123456` of `harness_semihost` (`a32.rs`), which takes the block in `r1`.

use core::arch::asm;

#[cfg(target_arch = "arm")]
unsafe extern "C" {
    /// A32 semihosting call: `svc 0x123456` with r0 = operation, r1 = argument (`a32.rs`'s assembly).
    fn harness_semihost(op: usize, arg: usize) -> usize;
}

/// Semihosting SYS_EXIT with `code` as QEMU's exit status.
#[cfg(target_arch = "aarch64")]
pub fn semihost_exit(code: u32) -> ! {
    let block = [0x20026u64, u64::from(code)];
    // SAFETY: QEMU's semihosting (enabled by the runner) reads the two-word block and exits.
    unsafe {
        asm!("hlt #0xf000", in("x0") 0x18usize, in("x1") &block, options(nostack, noreturn));
    }
}

/// Semihosting SYS_EXIT_EXTENDED with `code` as QEMU's exit status.
#[cfg(target_arch = "arm")]
pub fn semihost_exit(code: u32) -> ! {
    let block = [0x20026u32, code];
    // SAFETY: QEMU's semihosting (enabled by the runner) reads the two-word block and exits.
    unsafe { harness_semihost(0x20, block.as_ptr() as usize) };
    park()
}

/// Waits for ever (reached if semihosting is off, the runner's time-out then ending the run, or if the
/// monitor returns from the exit service).
pub fn park() -> ! {
    loop {
        // SAFETY: waiting for an interrupt has no other effect.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}
