//! An x86-64 PVH domU started by Xen's real toolstack: `xl create` with `type = "pvh"` in a Linux PV dom0
//! (`cargo xtask xl pvh`). It has no `console_io` (Xen refuses it to a domU), so everything it says goes
//! through its PV console ring to `xenconsoled`, and the harness reads it in xenconsoled's log.
//!
//! libxl loads the ELF where it is linked and enters it by the PVH boot protocol (`pvh.rs`, shared with
//! the dom0: the first 4 GiB identity-mapped, where the toolstack's special pages, the console and
//! xenstore rings among them, sit just below 4 GiB), which calls [`guest_main`].
//!
//! What it does, one console line each (`xl-pvh: …`, `ok NAME: …` or `FAIL NAME: …` for a check):
//! - maps the shared info page (`XENMEM_add_to_physmap`) over a page of its own, for the clock
//!   (`xen::time::Clock`, Xen system time from the TSC) and the event-channel bits (`Events`);
//! - finds its console ring and xenstore ring from its HVM parameters and prints them as `NAME = VALUE`
//!   (`CONSOLE_PFN`, `CONSOLE_EVTCHN`, `STORE_PFN`, `STORE_EVTCHN`: the harness compares them with what
//!   the toolstack wrote in xenstore), and `MAX_PAGES` (`XENMEM_maximum_reservation`);
//! - reads its `hvm_start_info` (a domU: neither privileged nor the initial domain);
//! - reads `name` and `domid` from xenstore (`DOMID = N`, compared by the harness with xenstore's value
//!   as dom0 reads it), writes `data/pvh`, and waits (bounded) for dom0 to answer with `data/go = 1`
//!   through a watch;
//! - waits with PV time: a 20 ms `SCHEDOP_poll` time-out and a 20 ms `Events::wait` on a port nobody
//!   signals, a 20 ms one-shot timer (`VIRQ_TIMER`), each measured by the clock, and the wall clock, once
//!   Xen has written its base (see [`timing`]);
//! - prints `done`, waits (bounded) until xenconsoled has read the ring, and powers off (crashes if a
//!   check failed).
//!
//! Every wait for the daemons (console room, a xenstore reply, the watch) is one `Events::wait` slice on
//! the ring's event channel, bounded in all by [`PATIENCE`]: a daemon that never answers ends the domU
//! with a crash instead of hanging it.

#![no_std]
#![no_main]

use core::fmt::{self, Write as _};
use core::time::Duration;

use xen_hypercall::xen::console::{self, PvConsole};
use xen_hypercall::xen::evtchn::{self, Events, Port, Virq};
use xen_hypercall::xen::hvm::{self, Param};
use xen_hypercall::xen::pvh::HvmStartInfo;
use xen_hypercall::xen::ring::{ByteRing, End, SharedArea};
use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::time::{self, Clock, Instant};
use xen_hypercall::xen::vcpu::SharedInfo;
use xen_hypercall::xen::xenstore::Xenstore;
use xen_hypercall::xen::{DomId, Error, Page, memory};

use pvh::MAPPED_FRAMES;

#[path = "../pvh.rs"]
mod pvh;

// The PV hypercall page: the `outline` build registers it (CPUID + MSR) before its first call.
#[cfg(feature = "outline")]
xen_hypercall::hypercall_page_note!();

/// What every console line starts with.
const TAG: &str = "xl-pvh: ";
/// How long the domU waits, in all, for the daemons (console room, xenstore replies, dom0's answer).
const PATIENCE: Duration = Duration::from_secs(20);
/// One wait for an event on a daemon's port, before looking again.
const SLICE: Duration = Duration::from_millis(50);
/// The waits measured.
const WAIT: Duration = Duration::from_millis(20);
/// A generous bound on one 20 ms wait under QEMU's TCG on a loaded machine.
const LATE: Duration = Duration::from_secs(1);
/// 2024-01-01T00:00:00Z.
const Y2024: u64 = 1_704_067_200;
/// The vector the domU names for events (Linux's `HYPERVISOR_CALLBACK_VECTOR`); never taken.
const CALLBACK_VECTOR: u8 = 0xf3;
/// What the domU writes at `data/pvh` for dom0 to see.
const GREETING: &[u8] = b"hello from a PVH domU";

/// The page the shared info page is mapped over: its address is its frame (identity-mapped).
static mut SHARED: Page = Page::new();

/// One console line, formatted into a fixed buffer (a longer one is cut).
struct Line {
    buf: [u8; 200],
    len: usize,
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The console and what the checks found.
struct Out<'a, W> {
    con: PvConsole<'a, W>,
    failed: u32,
}

impl<W: FnMut() -> Result<(), Error>> Out<'_, W> {
    /// Writes `TAG`, the line, a newline (a failed write cannot be reported anywhere: the judge sees the
    /// line missing).
    fn say(&mut self, args: fmt::Arguments) {
        let mut l = Line {
            buf: [0; 200],
            len: 0,
        };
        let _ = l.write_str(TAG);
        let _ = l.write_fmt(args);
        let _ = l.write_str("\n");
        let _ = self.con.write(&l.buf[..l.len]);
    }

    /// `ok NAME: …` or `FAIL NAME: …`.
    fn check(&mut self, name: &str, good: bool, detail: fmt::Arguments) {
        self.say(format_args!(
            "{} {name}: {detail}",
            if good { "ok" } else { "FAIL" }
        ));
        if !good {
            self.failed += 1;
        }
    }
}

/// A wait for an event on `port`: one [`SLICE`] of [`Events::wait`], `Ok` whether or not the event came
/// (the caller looks again), `ETIMEDOUT` once `deadline` passed.
fn slice(events: &Events, port: Port, clock: &Clock, deadline: Instant) -> Result<(), Error> {
    if clock.now() >= deadline {
        return Err(Error::ETIMEDOUT);
    }
    match events.wait(port, clock, SLICE) {
        Ok(()) | Err(Error::ETIMEDOUT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `start_info`: the physical address of the `hvm_start_info` (`ebx` at entry; `_pvh` is 1, `pvh.rs`).
#[unsafe(no_mangle)]
extern "C" fn guest_main(_pvh: u64, start_info: u64) -> ! {
    #[cfg(feature = "outline")]
    {
        // SAFETY: ring 0 of a PVH guest; paging is identity-mapped, so the page's address is its guest
        // physical address; nothing uses the page before this.
        let r = unsafe {
            xen_hypercall::outline::page::register_hvm(
                xen_hypercall::outline::page::page_address() as u64
            )
        };
        if r.is_err() {
            end(ShutdownReason::Crash);
        }
    }
    let shared = (&raw mut SHARED).cast::<SharedInfo>();
    // SAFETY: SHARED is a page-aligned static of this image used for nothing else: from now on it is Xen's
    // shared info page, read through `clock` and `events` only. Identity-mapped: its address is its frame.
    if unsafe { memory::map_shared_info(shared as u64 / 4096) }.is_err() {
        end(ShutdownReason::Crash);
    }
    // SAFETY: as above.
    let Ok(clock) = (unsafe { Clock::new(shared) }) else {
        end(ShutdownReason::Crash)
    };
    // SAFETY: as above.
    let events = unsafe { Events::new(shared) };
    let deadline = clock.now() + PATIENCE;

    // An `xl` domU has a console ring: without one there is nowhere to say anything.
    let Ok(Some((con_pfn, con_port))) = console::ring_location() else {
        end(ShutdownReason::Crash)
    };
    if con_pfn >= MAPPED_FRAMES {
        end(ShutdownReason::Crash);
    }
    // SAFETY: the first 4 GiB are identity-mapped (the entry) and `con_pfn` is below them, so the frame is
    // at `con_pfn * 4096`;
    // the console page is the toolstack's, referenced by nothing in this program but the console.
    let Ok(area) = (unsafe { SharedArea::new((con_pfn << 12) as usize as *mut Page, 1) }) else {
        end(ShutdownReason::Crash)
    };
    let con = PvConsole::new(ByteRing::console(area, End::Front), con_port, || {
        slice(&events, con_port, &clock, deadline)
    });
    let mut out = Out { con, failed: 0 };
    out.say(format_args!("hello from an x86-64 PVH domU started by xl"));
    out.say(format_args!("CONSOLE_PFN = {con_pfn:#x}"));
    out.say(format_args!("CONSOLE_EVTCHN = {}", con_port.0));
    let store_pfn = hvm::get_param(DomId::SELF, Param::STORE_PFN);
    let store_port = hvm::get_param(DomId::SELF, Param::STORE_EVTCHN);
    match (store_pfn, store_port) {
        (Ok(pfn), Ok(port)) => {
            out.say(format_args!("STORE_PFN = {pfn:#x}"));
            out.say(format_args!("STORE_EVTCHN = {port}"));
        }
        (Err(e), _) | (_, Err(e)) => {
            out.check("store parameters", false, format_args!("{e:?}"));
        }
    }
    match memory::maximum_reservation(DomId::SELF) {
        Ok(n) => out.say(format_args!("MAX_PAGES = {n}")),
        Err(e) => out.check("max pages", false, format_args!("{e:?}")),
    }

    let info = if start_info.saturating_add(64) <= MAPPED_FRAMES << 12 {
        // SAFETY: Xen wrote the structure at `start_info`, inside the identity-mapped first 4 GiB.
        unsafe { HvmStartInfo::read(start_info as usize as *const HvmStartInfo) }
    } else {
        Err(xen_hypercall::xen::pvh::BadMagic(0))
    };
    match info {
        Ok(info) => out.check(
            "start info",
            !info.is_initial_domain() && !info.is_privileged(),
            format_args!(
                "hvm_start_info at {start_info:#x}: version {}, flags {:#x} (a domU), {} module(s)",
                info.version, info.flags, info.nr_modules
            ),
        ),
        Err(bad) => out.check(
            "start info",
            false,
            format_args!("no hvm_start_info magic at {start_info:#x}: {:#x}", bad.0),
        ),
    }

    store(&mut out, &events, &clock, deadline);
    timing(&mut out, &events, &clock);

    let failed = out.failed;
    out.say(format_args!("done"));
    // Everything read by xenconsoled before the domain goes.
    let drained = out.con.flush().is_ok();
    end(if failed == 0 && drained {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    })
}

/// xenstore: `name`, `domid`, a value written for dom0, and dom0's answer through a watch.
fn store<W: FnMut() -> Result<(), Error>>(
    out: &mut Out<'_, W>,
    events: &Events,
    clock: &Clock,
    deadline: Instant,
) {
    let port = match xen_hypercall::xen::xenstore::ring_location() {
        Ok((pfn, port)) if pfn < MAPPED_FRAMES => port,
        Ok((pfn, _)) => {
            return out.check(
                "xenstore",
                false,
                format_args!("ring at frame {pfn:#x}, beyond the identity map"),
            );
        }
        Err(e) => return out.check("xenstore", false, format_args!("no ring: {e:?}")),
    };
    let xs = Xenstore::open(
        // SAFETY: identity-mapped (the entry; the frame, read just above, is below 4 GiB): frame `pfn` is
        // at `pfn * 4096`; the xenstore page is the toolstack's, referenced by nothing in this program but
        // this client.
        |pfn| unsafe { SharedArea::new((pfn << 12) as usize as *mut Page, 1) },
        || slice(events, port, clock, deadline),
    );
    let mut xs = match xs {
        Ok(xs) => xs,
        Err(e) => return out.check("xenstore", false, format_args!("open: {e:?}")),
    };
    let mut buf = [0u8; 64];
    match xs.read(b"name", &mut buf) {
        Ok(n) => out.say(format_args!(
            "name = {}",
            core::str::from_utf8(&buf[..n]).unwrap_or("?")
        )),
        Err(e) => out.check("xenstore read name", false, format_args!("{e:?}")),
    }
    match xs.read(b"domid", &mut buf) {
        Ok(n) => out.say(format_args!(
            "DOMID = {}",
            core::str::from_utf8(&buf[..n]).unwrap_or("?")
        )),
        Err(e) => out.check("xenstore read domid", false, format_args!("{e:?}")),
    }
    let wrote = xs.write(b"data/pvh", GREETING);
    out.check(
        "xenstore write data/pvh",
        wrote.is_ok(),
        format_args!("{wrote:?}"),
    );
    if let Err(e) = xs.watch(b"data/go", b"go") {
        return out.check("watch data/go", false, format_args!("{e:?}"));
    }
    // The watch fires once when set, then on each change: read the value after every event.
    let mut ev = [0u8; 128];
    let answer = loop {
        match xs.read(b"data/go", &mut buf) {
            Ok(n) if &buf[..n] == b"1" => break Ok(()),
            Ok(_) | Err(Error::ENOENT) => {}
            Err(e) => break Err(e),
        }
        if let Err(e) = xs.wait_watch_event(&mut ev) {
            break Err(e);
        }
    };
    out.check(
        "dom0 answered",
        answer.is_ok(),
        format_args!("data/go = 1 through a watch: {answer:?}"),
    );
}

/// PV time: the clock, two 20 ms waits for an event that never comes, a 20 ms one-shot timer, the wall
/// clock.
fn timing<W: FnMut() -> Result<(), Error>>(out: &mut Out<'_, W>, events: &Events, clock: &Clock) {
    let (t0, t1) = (clock.now(), clock.now());
    out.check(
        "clock",
        t0.as_nanos() > 0 && t1 >= t0,
        format_args!(
            "Xen system time {} ns, then {} ns",
            t0.as_nanos(),
            t1.as_nanos()
        ),
    );
    // A port of its own that nobody signals.
    let port = match evtchn::alloc_unbound(DomId::SELF, DomId::DOM0) {
        Ok(p) => p,
        Err(e) => return out.check("poll 20 ms", false, format_args!("alloc_unbound: {e:?}")),
    };
    let t0 = clock.now();
    let deadline = t0 + WAIT;
    let mut polls = 0u32;
    let end = loop {
        polls += 1;
        if let Err(e) = sched::poll_until(&[port], clock, deadline) {
            break e;
        }
    };
    let waited = clock.now() - t0;
    out.check(
        "poll 20 ms",
        end == Error::ETIMEDOUT && waited >= WAIT && waited < LATE,
        format_args!("{waited:?} by the clock, {polls} poll(s), then {end:?}"),
    );
    let t0 = clock.now();
    let r = events.wait(port, clock, WAIT);
    let waited = clock.now() - t0;
    out.check(
        "Events::wait 20 ms",
        r == Err(Error::ETIMEDOUT) && waited >= WAIT && waited < LATE,
        format_args!("{waited:?} by the clock, then {r:?}"),
    );
    let _ = evtchn::close(port);

    let stopped = time::stop_periodic_timer(0);
    match evtchn::bind_virq(Virq::TIMER, 0) {
        Ok(timer) => {
            // Masked: no upcall is set up; `SCHEDOP_poll` still wakes on its pending bit.
            let _ = events.mask(timer);
            events.clear_pending(timer);
            let t0 = clock.now();
            let armed = time::set_timer(clock, 0, t0 + WAIT);
            let fired = events.wait(timer, clock, LATE);
            let waited = clock.now() - t0;
            out.check(
                "one-shot timer 20 ms",
                stopped.is_ok()
                    && armed.is_ok()
                    && fired.is_ok()
                    && waited >= WAIT
                    && waited < LATE,
                format_args!(
                    "VIRQ_TIMER after {waited:?} by the clock (armed: {armed:?}, event: {fired:?})"
                ),
            );
            let _ = time::stop_singleshot_timer(0);
            let _ = evtchn::close(timer);
        }
        Err(e) => out.check("one-shot timer 20 ms", false, format_args!("{e:?}")),
    }

    // Xen writes a domU's wall clock base into its shared info page when the guest shows its mode, by
    // setting HVM_PARAM_CALLBACK_IRQ or asking for the hypercall page (`hvm_latch_shinfo_size`,
    // `xen/arch/x86/hvm/hvm.c`), as Linux does first thing; until then it reads 0. The vector is never
    // taken: interrupts stay disabled.
    let before = clock.wallclock_base().unwrap_or_default().sec;
    let set = hvm::set_callback_vector(CALLBACK_VECTOR);
    out.check(
        "hvm::set_callback_vector",
        set.is_ok(),
        format_args!("{CALLBACK_VECTOR:#x}: {set:?} (interrupts stay disabled)"),
    );
    let wall = clock.wallclock().unwrap_or_default().as_secs();
    out.check(
        "wallclock",
        wall > Y2024,
        format_args!(
            "{wall} s since the epoch (the base read {before} s before the callback was set)"
        ),
    );
}

fn end(reason: ShutdownReason) -> ! {
    loop {
        let _ = sched::shutdown(reason);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    end(ShutdownReason::Crash)
}
