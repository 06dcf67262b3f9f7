//! The cost of a hypercall on real Xen: a dom0 that reads the generic timer's virtual count (`CNTVCT`)
//! around loops of hypercalls and prints the tick counts. Run under QEMU with `-icount shift=0`, where
//! one instruction takes 1 ns of virtual time and the counter runs at 62.5 MHz: one tick is 16
//! instructions, guest and Xen together (`xtask::bench_arm::xen_cost` boots it and reads the figures).
//!
//! Measured, after a warm-up (QEMU translates the code on first execution):
//! - `calls`: 1,024 × `xen_version(XENVER_version, NULL)` with the raw inline stub, and the same loop
//!   without the hypercall (`empty`);
//! - `separate8`: 128 × eight such calls; `multicall8`: 128 × one `multicall` of eight such calls (the
//!   entries filled each time).
//!
//! Output lines: `xen-cost <name> <iterations> <ticks>`, then `xen-cost done`, then the machine powers off.

#![no_std]
#![no_main]

#[path = "../../../guests/src/entry.rs"]
mod entry;
// The identity map the entry code turns on (MMU and caches on, as in every guest).
#[path = "../../../template/src/mmu.rs"]
mod mmu;

use core::hint::black_box;

use xen_hypercall::hypercall2;
use xen_hypercall::xen::multicall::MulticallEntry;
use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::{console, nr, version};

const CALLS: usize = 1024;
const REPS: usize = 128;

/// The virtual count, after the instructions before it completed.
#[inline(always)]
fn ticks() -> u64 {
    #[cfg(target_arch = "aarch64")]
    {
        let v: u64;
        // SAFETY: reads the virtual counter, accessible at EL1.
        unsafe { core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nostack)) };
        v
    }
    #[cfg(target_arch = "arm")]
    {
        let (lo, hi): (u32, u32);
        // SAFETY: reads the 64-bit virtual counter CNTVCT, accessible at PL1.
        unsafe {
            core::arch::asm!(
                "isb",
                "mrrc p15, 1, {lo}, {hi}, c14",
                lo = out(reg) lo,
                hi = out(reg) hi,
                options(nostack),
            )
        };
        (u64::from(hi) << 32) | u64::from(lo)
    }
}

#[inline(always)]
fn version_call() -> isize {
    // SAFETY: xen_version(XENVER_version, NULL) reads no memory.
    unsafe { hypercall2(nr::XEN_VERSION, version::XENVER_VERSION, 0) }
}

// `time` and `line`, shared with the x86-64 dom0 (`benches/xen-cost-x86`).
include!("timing.rs");

#[unsafe(no_mangle)]
extern "C" fn guest_main(_dtb: usize) -> ! {
    let good = version_call() > 0;
    let calls = time(CALLS, |_| {
        black_box(version_call());
    });
    let empty = time(CALLS, |i| {
        black_box(i);
    });
    let separate = time(REPS, |_| {
        for _ in 0..8 {
            black_box(version_call());
        }
    });
    let mut entries = [MulticallEntry::default(); 8];
    let multi = time(REPS, |_| {
        for e in entries.iter_mut() {
            *e = MulticallEntry {
                op: nr::XEN_VERSION as u64,
                result: 0,
                args: [version::XENVER_VERSION as u64, 0, 0, 0, 0, 0],
            };
        }
        // SAFETY: multicall(entries, 8): eight 64-byte entries, mutably borrowed for the call; each is
        // xen_version(XENVER_version, NULL), which reads no memory.
        let r = unsafe { hypercall2(nr::MULTICALL, entries.as_mut_ptr() as usize, entries.len()) };
        black_box(r);
    });
    let all_ok = entries.iter().all(|e| e.result == version_call() as u64);
    line("version-ok", 1, u64::from(good && all_ok));
    line("calls", CALLS, calls);
    line("empty", CALLS, empty);
    line("separate8", REPS, separate);
    line("multicall8", REPS, multi);
    let _ = console::write(b"xen-cost done\n");
    let _ = sched::shutdown(ShutdownReason::Poweroff);
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = console::write(b"xen-cost panic\n");
    let _ = sched::shutdown(ShutdownReason::Crash);
    loop {
        core::hint::spin_loop();
    }
}
