//! The cost of a hypercall on real Xen for x86-64: a dom0 (PV or PVH, the entry code of `guests-x86`) that
//! reads the TSC around loops of `xen_version(XENVER_version, NULL)` and prints the tick counts. Under QEMU
//! with `-icount shift=0` the machine's TSC advances once per instruction, guest and Xen together
//! (`xtask::bench_x86::xen_cost` boots it on Debian's Xen 4.17 and reads the figures).
//!
//! Measured, 1,024 calls each, the best of three runs after a warm-up run:
//! - `inline`: the raw inline stub (`syscall` in the PV build, `vmmcall` in the PVH one);
//! - `page`: the per-hypercall stub through the hypercall page (`outline::per_call`), filled by Xen from
//!   the PV ELF note or, in a PVH dom0, after `outline::page::register_hvm`;
//! - `empty`, `empty2`: the same loop without the hypercall, 1,024 and 2,048 times (a PVH dom0's `rdtsc` is
//!   emulated by Xen, which adds a constant to every delta: the difference of the two gives the loop's own
//!   cost per iteration, the same in both guests when the TSC counts instructions).
//!
//! Output lines: `xen-cost <name> <iterations> <ticks>`, then `xen-cost done`, then the machine powers off.

#![no_std]
#![no_main]

#[path = "../../../guests-x86/src/entry.rs"]
mod entry;
#[path = "../../../guests-x86/src/pvh.rs"]
#[allow(dead_code)]
mod pvh;

use core::hint::black_box;

use xen_hypercall::hypercall2;
use xen_hypercall::outline::{page, per_call};
use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::{console, nr, version};

const CALLS: usize = 1024;

/// The TSC, after the instructions before it completed.
#[inline(always)]
fn ticks() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `lfence; rdtsc` reads the time-stamp counter (CR4.TSD is clear for Xen's guests).
    unsafe {
        core::arch::asm!("lfence", "rdtsc", out("eax") lo, out("edx") hi, options(nostack));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

#[inline(always)]
fn inline_call() -> isize {
    // SAFETY: xen_version(XENVER_version, NULL) reads no memory.
    unsafe { hypercall2(nr::XEN_VERSION, version::XENVER_VERSION, 0) }
}

#[inline(always)]
fn page_call() -> isize {
    // SAFETY: as `inline_call`, through the hypercall page, which Xen has filled (PV: the ELF note; PVH:
    // `register_hvm` at start).
    unsafe { per_call::hypercall2::<{ nr::XEN_VERSION }>(version::XENVER_VERSION, 0) }
}

// `time` and `line`, shared with the ARM dom0 (`benches/xen-cost`).
include!("../../xen-cost/src/timing.rs");

fn shutdown(reason: ShutdownReason) -> ! {
    loop {
        let _ = sched::shutdown(reason);
    }
}

#[unsafe(no_mangle)]
extern "C" fn guest_main(pvh: u64, _start_info: u64) -> ! {
    if pvh != 0 {
        // SAFETY: ring 0 of a PVH dom0, identity-mapped: the page's address is its guest physical address.
        if unsafe { page::register_hvm(page::page_address() as u64) }.is_err() {
            let _ = console::write(b"xen-cost no hypercall page\n");
            shutdown(ShutdownReason::Crash);
        }
    }
    let v = inline_call();
    let good = v > 0 && page_call() == v;
    let inline = time(CALLS, |_| {
        black_box(inline_call());
    });
    let paged = time(CALLS, |_| {
        black_box(page_call());
    });
    let empty = time(CALLS, |i| {
        black_box(i);
    });
    let empty2 = time(2 * CALLS, |i| {
        black_box(i);
    });
    line("version-ok", 1, u64::from(good));
    line("pvh", 1, pvh);
    line("inline", CALLS, inline);
    line("page", CALLS, paged);
    line("empty", CALLS, empty);
    line("empty2", 2 * CALLS, empty2);
    let _ = console::write(b"xen-cost done\n");
    shutdown(ShutdownReason::Poweroff)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let _ = console::write(b"xen-cost panic\n");
    shutdown(ShutdownReason::Crash)
}
