//! A domU started by Xen's real toolstack (`xl create` in a Linux dom0, `cargo xtask xl`): it has no
//! `console_io` (Xen refuses it to a domU that is not the console domain), so it finds its PV console
//! through its HVM parameters, writes its lines into the console ring's output half for `xenconsoled`,
//! and powers off.
//!
//! Lines (the harness reads them in xenconsoled's log of this domain): a greeting, the four parameters
//! as `NAME = VALUE` (`CONSOLE_PFN`, `CONSOLE_EVTCHN`, `STORE_PFN`, `STORE_EVTCHN`, checked by the
//! harness against what the toolstack wrote in xenstore), `ok …`/`FAIL …` checks, and `done`. Before
//! powering off it waits (bounded) until xenconsoled has consumed the ring, so that nothing written is
//! lost when the toolstack destroys the domain.
//!
//! The ring code is the smallest that shows the harness works: one writer, output only (`xencons_interface`
//! of `io/console.h`: `in[1024]`, `out[2048]`, then `in_cons`, `in_prod`, `out_cons`, `out_prod`, u32 each).

#![no_std]
#![no_main]

#[path = "../common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../entry.rs"]
mod entry;

use core::sync::atomic::{Ordering, fence};

use common::{Deadline, Line, pause};
use xen_hypercall::xen::evtchn::{self, Port};
use xen_hypercall::xen::hvm::{self, Param};
use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::{DomId, Error};

/// What every line starts with.
const TAG: &str = "xl-domu: ";

/// Offsets in `struct xencons_interface`.
const OUT: usize = 1024;
const OUT_SIZE: u32 = 2048;
const OUT_CONS: usize = 3072 + 8;
const OUT_PROD: usize = 3072 + 12;

/// How long to wait for xenconsoled to make room, or to consume everything before the end.
const WAIT_MS: u64 = 3_000;

/// The console ring's page and its event channel.
struct Console {
    page: *mut u8,
    port: Port,
}

impl Console {
    fn out_cons(&self) -> u32 {
        // SAFETY: `page` is the console ring page (the MMU is off: its frame's address), whose `out_cons`
        // xenconsoled writes: read it volatile, aligned.
        unsafe { self.page.add(OUT_CONS).cast::<u32>().read_volatile() }
    }

    fn out_prod(&self) -> u32 {
        // SAFETY: as in `out_cons`; only this domain writes `out_prod`.
        unsafe { self.page.add(OUT_PROD).cast::<u32>().read_volatile() }
    }

    /// Writes `bytes` into the output ring, waiting (bounded) for room, then notifies xenconsoled.
    fn write(&self, bytes: &[u8]) {
        let mut prod = self.out_prod();
        let deadline = Deadline::in_ms(WAIT_MS);
        for &b in bytes {
            while prod.wrapping_sub(self.out_cons()) >= OUT_SIZE {
                if deadline.passed() {
                    return;
                }
                let _ = evtchn::send(self.port);
                pause();
            }
            let at = OUT + (prod % OUT_SIZE) as usize;
            // SAFETY: `at` is inside the ring page's `out` array; the slot is free (prod - cons < size).
            unsafe { self.page.add(at).write_volatile(b) };
            prod = prod.wrapping_add(1);
        }
        // The bytes before the index that publishes them.
        fence(Ordering::SeqCst);
        // SAFETY: `out_prod` of the ring page, written only by this domain.
        unsafe { self.page.add(OUT_PROD).cast::<u32>().write_volatile(prod) };
        fence(Ordering::SeqCst);
        let _ = evtchn::send(self.port);
    }

    fn line(&self, l: Line) {
        self.write(Line::new().s(TAG).bytes(l.text()).s("\n").text());
    }

    /// Waits (bounded) until xenconsoled has consumed everything written.
    fn drain(&self) -> bool {
        let deadline = Deadline::in_ms(WAIT_MS);
        while self.out_cons() != self.out_prod() {
            if deadline.passed() {
                return false;
            }
            pause();
        }
        true
    }
}

fn param(p: Param) -> Result<u64, Error> {
    hvm::get_param(DomId::SELF, p)
}

fn value(name: &str, v: Result<u64, Error>) -> Line {
    let l = Line::new().s(name).s(" = ");
    match v {
        Ok(v) if name.ends_with("PFN") => l.hex(v),
        Ok(v) => l.dec(v),
        Err(e) => l.err(e),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn guest_main(_dtb: usize) -> ! {
    let (Ok(pfn), Ok(port)) = (param(Param::CONSOLE_PFN), param(Param::CONSOLE_EVTCHN)) else {
        // No console to say anything on: the harness sees no line.
        end(ShutdownReason::Crash)
    };
    let con = Console {
        page: (pfn << 12) as usize as *mut u8,
        port: Port(port as u32),
    };
    con.line(Line::new().s("hello from a domU started by xl"));
    con.line(value("CONSOLE_PFN", Ok(pfn)));
    con.line(value("CONSOLE_EVTCHN", Ok(port)));
    let store_pfn = param(Param::STORE_PFN);
    con.line(value("STORE_PFN", store_pfn));
    con.line(value("STORE_EVTCHN", param(Param::STORE_EVTCHN)));
    let good = matches!(store_pfn, Ok(p) if p != 0);
    con.line(
        Line::new()
            .s(if good { "ok " } else { "FAIL " })
            .s("store page given: ")
            .s(if good { "nonzero frame" } else { "none" }),
    );
    con.line(Line::new().s("done"));
    let drained = con.drain();
    end(if good && drained {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    })
}

fn end(reason: ShutdownReason) -> ! {
    let _ = sched::shutdown(reason);
    common::halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    end(ShutdownReason::Crash)
}
