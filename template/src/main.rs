//! A minimal Xen unikernel: it greets on its console, asks Xen its version, and powers off.
//!
//! Run: `cargo run --release` builds it (AArch64; `--target armv7a-none-eabi` for 32-bit ARM) and boots it as
//! dom0 on Xen under QEMU (cargo's runner is `cargo xen run`, see `.cargo/config.toml`); the exit status is
//! 0 when it powers off. `cargo xen run --xl IMAGE` boots it as an ordinary domU instead, created by `xl`
//! from a Linux dom0. Test: `cargo test` runs `tests/on_xen.rs` on Xen the same way.
//!
//! Things to know: the MMU maps every address to itself (`src/mmu.rs`), so every pointer handed to Xen
//! is a guest-physical address (statics and the stack are fine as they are); the console is Xen's own
//! (`console_io`) for dom0 and for a domU Xen builds itself (dom0less), whose lines reach Xen's console
//! only with Xen's `guest_loglvl=all` (`cargo xen run` sets it), and a ring shared with the console daemon
//! for a domU `xl` creates, which Xen refuses `console_io` ([`console`]); dom0 may call everything, a domU
//! is refused what needs privilege (`EPERM`).

#![no_std]
#![no_main]

mod entry;
mod mmu;

use xen_hypercall::xen::console::Console;
use xen_hypercall::xen::ring::SharedArea;
use xen_hypercall::xen::{Page, Result, sched, version};

/// What the console does while the console daemon has not read what it was given: gives the vCPU up.
fn wait() -> Result<()> {
    sched::yield_now()
}

/// The domain's console ([`Console::open`]): Xen's own for dom0 and dom0less domUs, the PV console ring
/// (`HVM_PARAM_CONSOLE_PFN`) for a domU that `xl` created.
fn console() -> Console<'static> {
    Console::open(
        // SAFETY: the MMU maps every address to itself (src/mmu.rs), Xen's guest layout's magic pages
        // (where the ring is) Normal: frame `pfn` is at `pfn * 4096`. The page is the toolstack's,
        // referenced by nothing in this program but the console.
        |pfn| unsafe { SharedArea::new((pfn << 12) as usize as *mut Page, 1) },
        wait as fn() -> Result<()>,
    )
    .unwrap_or(Console::Hypervisor)
}

/// Writes `n` in decimal (no `core::fmt`: it keeps the image small).
fn write_number(console: &mut Console<'static>, n: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let _ = console.write(&buf[i..]);
}

/// Called by the entry code (`src/entry.rs`) with the device tree's address.
#[unsafe(no_mangle)]
pub extern "C" fn guest_main(_device_tree: usize) -> ! {
    let mut con = console();
    let _ = con.write(b"Hello from a unikernel on Xen\n");
    match version::version() {
        Ok(v) => {
            let _ = con.write(b"Xen ");
            write_number(&mut con, v.major.into());
            let _ = con.write(b".");
            write_number(&mut con, v.minor.into());
            let _ = con.write(b"\n");
        }
        Err(e) => {
            let _ = con.write(b"xen_version failed: error ");
            write_number(&mut con, e.errno().unsigned_abs());
            let _ = con.write(b"\n");
        }
    }
    // A ring console: wait until the daemon has read everything before the domain goes away.
    let _ = con.flush();
    let _ = sched::shutdown(sched::ShutdownReason::Poweroff);
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    let mut con = console();
    let _ = con.write(b"panic\n");
    let _ = con.flush();
    let _ = sched::shutdown(sched::ShutdownReason::Crash);
    loop {
        core::hint::spin_loop();
    }
}
