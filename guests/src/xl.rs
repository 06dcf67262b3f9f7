//! What the domUs that `xl create` starts in a Linux dom0 (`xl-blk`, `xl-net`, `xl-xenbus`) share: their
//! console lines, their set-up, their clock and their end.
//!
//! - Lines: every line is `TAG` + text + newline, written to the PV console ring in one write; a check is
//!   `ok NAME: DETAIL` or `FAIL NAME: DETAIL` and counts the failures ([`Out`]). The last line is `done`,
//!   written and drained before the domain stops ([`Out::done`]).
//! - Set-up: the console and the xenstore ring are the toolstack's pages, found through the HVM parameters
//!   and identity-mapped (`mmu.rs`), so a frame's address is its number times 4096 ([`magic_page`]); the
//!   shared info page is a page of the image, the grant table the hole Xen reserves for it
//!   ([`shared_info_and_grant_table`]).
//! - Clock: Xen's system time on ARM is the physical counter since Xen's boot in ns, so the counter's own
//!   value in ns is never earlier: a `sched_poll` until [`xen_time_after`]`(ms)` lasts at least `ms` (and
//!   at most that plus Xen's boot time). A domU's virtual counter starts near 0 at its creation, far
//!   behind Xen's system time: [`cntpct`] reads the physical one (Xen lets EL1 read it).
//! - End: `SCHEDOP_shutdown`, powered off when everything passed, crashed otherwise (a panic crashes);
//!   `xl`'s monitor destroys the domain either way.

use xen_hypercall::xen::console::Console;
use xen_hypercall::xen::evtchn::Events;
use xen_hypercall::xen::grant_table::{GrantEntryV1, GrantTable};
use xen_hypercall::xen::layout::GUEST_GNTTAB_BASE;
use xen_hypercall::xen::ring::SharedArea;
use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::xenstore::Xenstore;
use xen_hypercall::xen::{Error, Page};

use crate::common::{self, Deadline, Line, pause};

/// The physical counter (`CNTPCT`), which Xen's system time follows (`NOW()` = ticks since Xen's boot).
#[cfg(target_arch = "aarch64")]
pub fn cntpct() -> u64 {
    let t: u64;
    // SAFETY: Xen lets EL1 read the physical counter (CNTHCTL_EL2.EL1PCTEN); no side effect.
    unsafe { core::arch::asm!("isb", "mrs {}, cntpct_el0", out(reg) t, options(nomem, nostack)) };
    t
}

/// The generic timer's frequency (`CNTFRQ`).
#[cfg(target_arch = "aarch64")]
pub fn cntfrq() -> u64 {
    let f: u64;
    // SAFETY: reading the frequency register has no side effect.
    unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
    f
}

/// The physical counter (`CNTPCT`, a 64-bit coprocessor register on 32-bit ARM).
#[cfg(target_arch = "arm")]
pub fn cntpct() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: as on AArch64 (CNTHCTL.PL1PCTEN); no side effect.
    unsafe {
        core::arch::asm!("isb", "mrrc p15, 0, {}, {}, c14", out(reg) lo, out(reg) hi, options(nomem, nostack))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The generic timer's frequency (`CNTFRQ`).
#[cfg(target_arch = "arm")]
pub fn cntfrq() -> u64 {
    let f: u32;
    // SAFETY: reading the frequency register has no side effect.
    unsafe { core::arch::asm!("mrc p15, 0, {}, c14, c0, 0", out(reg) f, options(nomem, nostack)) };
    u64::from(f)
}

/// A Xen system time at least `ms` from now, for `sched_poll`'s time-out (see the module's docs).
pub fn xen_time_after(ms: u64) -> u64 {
    let f = cntfrq().max(1);
    let ticks = cntpct() + f / 1000 * ms;
    (u128::from(ticks) * 1_000_000_000 / u128::from(f)) as u64
}

/// Milliseconds since the count `t0` of [`cntpct`].
pub fn ms_since(t0: u64) -> u64 {
    (cntpct() - t0) * 1000 / cntfrq().max(1)
}

/// The toolstack's page at guest frame `pfn` (the console's or xenstore's), as a shared area.
///
/// # Safety
///
/// `pfn` is a page the toolstack shares with this domain (`HVM_PARAM_CONSOLE_PFN` or `_STORE_PFN`),
/// mapped to itself as Normal memory by the identity map (`mmu.rs`), and nothing else in the program
/// refers to it while the area lives.
pub unsafe fn magic_page(pfn: u64) -> Result<SharedArea<'static>, Error> {
    // SAFETY: the caller's contract: frame `pfn` is at `pfn * 4096`, shared with the toolstack's daemons
    // only, and referenced by nothing else in this program.
    unsafe { SharedArea::new((pfn << 12) as usize as *mut Page, 1) }
}

/// A client's wait: a pause, until `ms` from now, then `ETIMEDOUT` (what bounds every wait of it).
pub fn bounded(ms: u64) -> impl FnMut() -> Result<(), Error> + Copy {
    let deadline = Deadline::in_ms(ms);
    move || {
        if deadline.passed() {
            return Err(Error::ETIMEDOUT);
        }
        pause();
        Ok(())
    }
}

/// The console ring the toolstack gave (through the HVM parameters), each wait `wait`; a domain without
/// one crashes (it has nowhere to say so).
pub fn console<W: FnMut() -> Result<(), Error>>(wait: W) -> Console<'static, W> {
    // SAFETY: the console page is the toolstack's, referenced by nothing in this program but the
    // console.
    match Console::open(|pfn| unsafe { magic_page(pfn) }, wait) {
        Ok(c @ Console::Ring(_)) => c,
        _ => end(ShutdownReason::Crash),
    }
}

/// The xenstore client over the toolstack's ring (through the HVM parameters), each wait `wait`.
pub fn xenstore<W: FnMut() -> Result<(), Error>>(wait: W) -> Result<Xenstore<'static, W>, Error> {
    // SAFETY: the xenstore page is the toolstack's, referenced by nothing in this program but the
    // client.
    Xenstore::open(|pfn| unsafe { magic_page(pfn) }, wait)
}

/// Maps the domain's shared info page over `page` (`common::map_shared_info`) and its grant table (one
/// frame, 512 entries) into the hole Xen reserves for it: what Xen answered to the first, the event
/// delivery through the page, and the table.
///
/// # Safety
///
/// As for `common::map_shared_info`, and called once: the grant table's frame becomes Xen's table.
#[inline(always)] // the table is returned into the caller's frame, without a copy in one of its own
pub unsafe fn shared_info_and_grant_table(
    page: *mut Page,
) -> (Result<(), Error>, Events, Result<GrantTable<512>, Error>) {
    // SAFETY: the caller's contract: `page` is used for nothing else; it becomes the shared info page,
    // touched only through `events`.
    let (mapped, events) = unsafe { common::map_shared_info(page) };
    // SAFETY: GUEST_GNTTAB_BASE is the hole Xen reserves for the grant table; nothing else is there, the
    // MMU maps it to itself (`mmu.rs`), so the frame's address is where the entries are, and this is the
    // only table made over it (called once).
    let table = unsafe {
        GrantTable::<512>::map(
            GUEST_GNTTAB_BASE >> 12,
            1,
            GUEST_GNTTAB_BASE as usize as *mut GrantEntryV1,
        )
    };
    (mapped, events, table)
}

/// The console, the guest's tag, and the count of failed checks.
pub struct Out<'a, W> {
    pub con: Console<'a, W>,
    pub failed: u32,
    tag: &'static str,
    /// Called before each line (`xl-xenbus`: re-arms the deadline of the console's waits).
    before_line: Option<&'a dyn Fn()>,
}

impl<'a, W: FnMut() -> Result<(), Error>> Out<'a, W> {
    /// Lines `tag` + text on `con`.
    pub fn new(con: Console<'a, W>, tag: &'static str) -> Out<'a, W> {
        Out {
            con,
            failed: 0,
            tag,
            before_line: None,
        }
    }

    /// As [`Out::new`], calling `before_line` before each line is written (and before the final flush).
    pub fn with_before_line(
        con: Console<'a, W>,
        tag: &'static str,
        before_line: &'a dyn Fn(),
    ) -> Out<'a, W> {
        Out {
            before_line: Some(before_line),
            ..Out::new(con, tag)
        }
    }

    /// Writes one tagged line (a failed write cannot be reported anywhere: the judge sees it missing).
    pub fn say(&mut self, l: Line) {
        if let Some(f) = self.before_line {
            f();
        }
        let _ = self
            .con
            .write(Line::new().s(self.tag).bytes(l.text()).end_line().text());
    }

    /// Writes `ok NAME: DETAIL` or `FAIL NAME: DETAIL`, counting a failure.
    pub fn check(&mut self, name: &str, good: bool, detail: Line) {
        if !good {
            self.failed += 1;
        }
        self.say(
            Line::new()
                .s(if good { "ok " } else { "FAIL " })
                .s(name)
                .s(": ")
                .bytes(detail.text()),
        );
    }

    /// Writes the stack's check ([`stack_used`]: at most three quarters of it), then `done`, and waits
    /// until the console's consumer has read everything: whether it did.
    pub fn done(&mut self) -> bool {
        let (used, size) = stack_used();
        // At least a KiB (every run goes deeper: a scan that found nothing written measured nothing),
        // at most three quarters.
        self.check(
            "stack",
            (1024..=size / 4 * 3).contains(&used),
            Line::new()
                .dec((used / 1024) as u64)
                .s(" KiB used of ")
                .dec((size / 1024) as u64),
        );
        self.say(Line::new().s("done"));
        if let Some(f) = self.before_line {
            f();
        }
        self.con.flush().is_ok()
    }
}

/// The stack's high-water mark and size, in bytes: the entry code's stack (`template/src/entry.rs`) is
/// zeros in the image, so the lowest non-zero word is the deepest the program has been (a frame that
/// left only zeros at the very bottom would make it read a little short).
pub fn stack_used() -> (usize, usize) {
    unsafe extern "C" {
        static __stack_bottom: u8;
        static __stack_top: u8;
    }
    let (bottom, top) = (
        &raw const __stack_bottom as usize,
        &raw const __stack_top as usize,
    );
    let mut at = bottom;
    // SAFETY: [bottom, top) is the stack, memory of this program, aligned to 16. The scan reads up to the
    // lowest word ever written, below the frames live now (this one is shallow next to the drivers'):
    // memory nothing refers to, read as plain words, volatile so that no value is assumed.
    while at < top && unsafe { core::ptr::read_volatile(at as *const usize) } == 0 {
        at += core::mem::size_of::<usize>();
    }
    (top - at, top - bottom)
}

/// Stops the domain: powered off when `passed`, crashed otherwise.
pub fn end_with(passed: bool) -> ! {
    end(if passed {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    })
}

/// Stops the domain with `reason` (`SCHEDOP_shutdown`); if Xen returns, spins.
pub fn end(reason: ShutdownReason) -> ! {
    let _ = sched::shutdown(reason);
    common::halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    end(ShutdownReason::Crash)
}
