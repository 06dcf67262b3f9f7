//! A domU started by Xen's real toolstack (`xl create` in a Linux dom0, `cargo xtask xl`): it has no
//! `console_io` (Xen refuses it to a domU that is not the console domain), so it finds its PV console
//! through its HVM parameters, writes its lines into the console ring's output half for `xenconsoled`,
//! and powers off.
//!
//! Lines (the harness reads them in xenconsoled's log of this domain): a greeting, the four parameters
//! as `NAME = VALUE` (`CONSOLE_PFN`, `CONSOLE_EVTCHN`, `STORE_PFN`, `STORE_EVTCHN`, checked by the
//! harness against what the toolstack wrote in xenstore), `MAX_PAGES = N` (`XENMEM_maximum_reservation`:
//! the page limit the toolstack set), `ok …`/`FAIL …` checks, a burst of [`BURST_LINES`] lines of a
//! counted pattern (more than the ring's 2048-byte output half: the console must wait for xenconsoled to
//! make room, and nothing may be lost), `burst waits = N` (how often it waited), and `done`. Before
//! powering off it waits (bounded) until xenconsoled has consumed the ring, so that nothing written is
//! lost when the toolstack destroys the domain.
//!
//! Given `xl-domu-wait` on its command line (`extra` in the `xl` configuration, the device tree's
//! `/chosen/bootargs`), it does not power off: it prints `waiting for xl destroy N` about every 200 ms
//! until dom0 destroys it.
//!
//! The console is the library's (`xen::console::Console::open`): the ring of `io/console.h` over the page
//! the toolstack gave, notified on its event channel, flushed before the shutdown.

#![no_std]
#![no_main]

include!("../modules.rs");
#[path = "../timing.rs"]
mod timing;

use common::{Deadline, Line, pause};
use core::sync::atomic::{AtomicU32, Ordering};
use xen_hypercall::xen::console::Console;
use xen_hypercall::xen::hvm::{self, Param};
use xen_hypercall::xen::layout::{GUEST_GICV3_GICD_BASE, GUEST_PL011_BASE};
use xen_hypercall::xen::memory;
use xen_hypercall::xen::ring::SharedArea;
use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::{DomId, Error, Page};

/// What every console line starts with.
const TAG: &str = "xl-domu: ";
/// A static whose mapping the domU reports.
static MARK: u64 = 0;
/// How long the console waits for xenconsoled to make room or read everything.
const WAIT_MS: u64 = 10_000;
/// How many lines the burst has: line `i` is `burst III ` and [`BURST_WIDTH`] letters, the letter at `j`
/// `b'a' + (i * 7 + j * 3) % 26` (the harness makes the same lines and compares).
const BURST_LINES: usize = 64;
/// The pattern's letters per burst line.
const BURST_WIDTH: usize = 64;
/// The word on the command line that makes the domU wait to be destroyed.
const WAIT_WORD: &[u8] = b"xl-domu-wait";
/// How many times the console waited for room (or for xenconsoled to read everything).
static WAITS: AtomicU32 = AtomicU32::new(0);

/// Writes one tagged line (a failed write cannot be reported anywhere: the run's judge sees it missing).
fn line<W: FnMut() -> Result<(), Error>>(con: &mut Console<'_, W>, l: Line) {
    let _ = con.write(Line::new().s(TAG).bytes(l.text()).end_line().text());
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
pub extern "C" fn guest_main(dtb: usize) -> ! {
    // The console waits (for room, or for xenconsoled to read everything) by pausing, bounded in time.
    let deadline = Deadline::in_ms(WAIT_MS);
    let wait = move || {
        if deadline.passed() {
            return Err(Error::ETIMEDOUT);
        }
        WAITS.fetch_add(1, Ordering::Relaxed);
        pause();
        Ok(())
    };
    let con = Console::open(
        // SAFETY: the identity map (`mmu.rs`): frame `pfn` is at `pfn * 4096`, mapped Normal. The console page is the toolstack's,
        // referenced by nothing in this program but the console.
        |pfn| unsafe { SharedArea::new((pfn << 12) as usize as *mut Page, 1) },
        wait,
    );
    let mut con = match con {
        Ok(c @ Console::Ring(_)) => c,
        // An `xl` domU has a console ring: anything else is a failure.
        _ => end(ShutdownReason::Crash),
    };
    line(&mut con, Line::new().s("hello from a domU started by xl"));
    line(&mut con, value("CONSOLE_PFN", param(Param::CONSOLE_PFN)));
    line(
        &mut con,
        value("CONSOLE_EVTCHN", param(Param::CONSOLE_EVTCHN)),
    );
    let store_pfn = param(Param::STORE_PFN);
    line(&mut con, value("STORE_PFN", store_pfn));
    line(&mut con, value("STORE_EVTCHN", param(Param::STORE_EVTCHN)));
    let good = matches!(store_pfn, Ok(p) if p != 0);
    line(
        &mut con,
        Line::new()
            .s(if good { "ok " } else { "FAIL " })
            .s("store page given: ")
            .s(if good { "nonzero frame" } else { "none" }),
    );
    // The page limit the toolstack set (`memory` and libxl's 1 MiB slack).
    let max = memory::maximum_reservation(DomId::SELF);
    line(&mut con, value("MAX_PAGES", max));
    if let Err(e) = max {
        line(&mut con, Line::new().s("FAIL max pages: ").err(e));
    }
    // How the MMU maps the rings, a static, the stack and two devices of Xen's guest layout (judged by
    // the harness: shared memory Normal Write-Back inner-shareable, devices Device).
    let stack = 0u64;
    for (name, address) in [
        ("RING", param(Param::CONSOLE_PFN).unwrap_or(0) << 12),
        ("STORE", store_pfn.unwrap_or(0) << 12),
        ("STATIC", &raw const MARK as u64),
        ("STACK", &raw const stack as u64),
        ("GIC", GUEST_GICV3_GICD_BASE),
        ("UART", GUEST_PL011_BASE),
    ] {
        line(&mut con, mmu::par_line(name, address as usize));
    }
    // Time: a 20 ms poll time-out by the guest's own clock, the wall clock, the one-shot timer.
    let timed = timing::run(&mut |l| line(&mut con, l));
    burst(&mut con);
    if told_to_wait(dtb) {
        wait_for_destroy(&mut con);
    }
    line(&mut con, Line::new().s("done"));
    // Everything read by xenconsoled before the domain goes.
    let drained = con.flush().is_ok();
    end(if good && max.is_ok() && drained && timed {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    })
}

/// Writes the burst (each line as one write, as fast as the ring takes them), then how often the console
/// had to wait for room.
fn burst<W: FnMut() -> Result<(), Error>>(con: &mut Console<'_, W>) {
    let before = WAITS.load(Ordering::Relaxed);
    let notified = con.notifications();
    for i in 0..BURST_LINES {
        let mut letters = [0u8; BURST_WIDTH];
        for (j, b) in letters.iter_mut().enumerate() {
            *b = b'a' + ((i * 7 + j * 3) % 26) as u8;
        }
        let number = [
            b'0' + (i / 100 % 10) as u8,
            b'0' + (i / 10 % 10) as u8,
            b'0' + (i % 10) as u8,
        ];
        line(
            con,
            Line::new()
                .s("burst ")
                .bytes(&number)
                .s(" ")
                .bytes(&letters),
        );
    }
    let waits = WAITS.load(Ordering::Relaxed) - before;
    let notified = con.notifications() - notified;
    line(
        con,
        Line::new()
            .s("burst waits = ")
            .dec(u64::from(waits))
            .s(", notifications ")
            .dec(notified)
            .s(", bytes ")
            .dec((BURST_LINES * (TAG.len() + 10 + BURST_WIDTH + 1)) as u64),
    );
}

/// Whether the device tree at `dtb` (libxl's, which holds the `extra` command line) contains
/// [`WAIT_WORD`]. A blob without the device-tree magic, or larger than 64 KiB, is not searched.
fn told_to_wait(dtb: usize) -> bool {
    if dtb == 0 || !dtb.is_multiple_of(4) {
        return false;
    }
    let header = dtb as *const u32;
    // SAFETY: the device tree libxl placed in the domU's RAM, identity-mapped Normal (`mmu.rs`), at least
    // its 40-byte header long; only read.
    let (magic, size) = unsafe {
        (
            u32::from_be(header.read_volatile()),
            u32::from_be(header.add(1).read_volatile()),
        )
    };
    if magic != 0xd00d_feed || !(40..=0x1_0000).contains(&size) {
        return false;
    }
    // SAFETY: the blob is `size` bytes (its header says so, bounded above) in the domU's identity-mapped
    // RAM, written by the toolstack before the domU started and not written while it runs.
    let blob = unsafe { core::slice::from_raw_parts(dtb as *const u8, size as usize) };
    blob.windows(WAIT_WORD.len()).any(|w| w == WAIT_WORD)
}

/// Prints `waiting for xl destroy N` about every 200 ms, for ever: dom0 ends the domain.
fn wait_for_destroy<W: FnMut() -> Result<(), Error>>(con: &mut Console<'_, W>) -> ! {
    let mut n = 0u64;
    loop {
        line(con, Line::new().s("waiting for xl destroy ").dec(n));
        n += 1;
        let d = Deadline::in_ms(200);
        while !d.passed() {
            pause();
        }
    }
}

fn end(reason: ShutdownReason) -> ! {
    let _ = sched::shutdown(reason);
    common::halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    end(ShutdownReason::Crash)
}
