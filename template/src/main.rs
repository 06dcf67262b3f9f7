//! A minimal Xen unikernel: it greets through Xen's console, asks Xen its version, and powers off.
//!
//! Run: `cargo run --release` builds it (AArch64; `--target armv7a-none-eabi` for 32-bit ARM) and boots it as
//! dom0 on Xen under QEMU (cargo's runner is `cargo xen run`, see `.cargo/config.toml`); the exit status is
//! 0 when it powers off. Test: `cargo test` runs `tests/on_xen.rs` on Xen the same way.
//!
//! Things to know: the MMU maps every address to itself (`src/mmu.rs`), so every pointer handed to Xen
//! is a guest-physical address (statics and the stack are fine as they are); a domU's console output
//! reaches Xen's console only with Xen's `guest_loglvl=all` (`cargo xen run` sets it); dom0 may call
//! everything, a domU is refused what needs privilege (`EPERM`).

#![no_std]
#![no_main]

mod entry;
mod mmu;

use xen_hypercall::xen::{console, sched, version};

/// Writes `n` in decimal (no `core::fmt`: it keeps the image small).
fn write_number(n: u32) {
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
    let _ = console::write(&buf[i..]);
}

/// Called by the entry code (`src/entry.rs`) with the device tree's address.
#[unsafe(no_mangle)]
pub extern "C" fn guest_main(_device_tree: usize) -> ! {
    let _ = console::write(b"Hello from a unikernel on Xen\n");
    match version::version() {
        Ok(v) => {
            let _ = console::write(b"Xen ");
            write_number(v.major.into());
            let _ = console::write(b".");
            write_number(v.minor.into());
            let _ = console::write(b"\n");
        }
        Err(e) => {
            let _ = console::write(b"xen_version failed: error ");
            write_number(e.errno().unsigned_abs());
            let _ = console::write(b"\n");
        }
    }
    let _ = sched::shutdown(sched::ShutdownReason::Poweroff);
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    let _ = console::write(b"panic\n");
    let _ = sched::shutdown(sched::ShutdownReason::Crash);
    loop {
        core::hint::spin_loop();
    }
}
