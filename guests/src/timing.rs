//! Time on real Xen (`xen::time`), for a guest that prints through `say`: the clock's offset to Xen system
//! time learnt from the runstate area, a 20 ms `SCHEDOP_poll` time-out measured by the guest's own clock
//! (before and after `Clock::synchronize`), the wall clock, and Xen's one-shot timer, which Xen on ARM
//! refuses.
//!
//! Lines: `ok NAME: …` or `FAIL NAME: …` for `clock`, `runstate`, `offset`, `poll 20 ms`, `synchronize`,
//! `poll 20 ms synchronized`, `wallclock`, `singleshot timer`; figures on each.

use core::time::Duration;

use crate::common::{Line, Page, gfn_of};
use xen_hypercall::xen::evtchn::{self, Events};
use xen_hypercall::xen::time::{self, Clock};
use xen_hypercall::xen::vcpu::{self, RunstateInfo};
use xen_hypercall::xen::{DomId, Error, memory, sched};

/// The page Xen's shared info page is mapped over.
static mut SHARED: Page = Page::new();

/// The runstate area Xen updates on every schedule of vCPU 0.
#[repr(C, align(64))]
struct Area(RunstateInfo);
static mut RUNSTATE: Area = Area(RunstateInfo {
    state: 0,
    _pad: 0,
    state_entry_time: 0,
    time: [0; 4],
});

/// The wait measured.
const WAIT: Duration = Duration::from_millis(20);
/// A generous bound on one 20 ms wait under QEMU's TCG on a loaded machine.
const LATE: Duration = Duration::from_millis(200);
/// 2024-01-01T00:00:00Z.
const Y2024: u64 = 1_704_067_200;

fn check(say: &mut impl FnMut(Line), name: &str, good: bool, detail: Line) -> bool {
    say(Line::new()
        .s(if good { "ok " } else { "FAIL " })
        .s(name)
        .s(": ")
        .bytes(detail.text()));
    good
}

fn ms(d: Duration) -> Line {
    Line::new()
        .dec(d.as_micros() as u64 / 1000)
        .s(".")
        .dec(d.as_micros() as u64 % 1000 / 100)
        .s(" ms")
}

/// One 20 ms wait on `port`, polled by hand to count the polls: (time waited, polls, the last error).
fn wait(clock: &Clock, port: evtchn::Port) -> (Duration, u32, Result<(), Error>) {
    let t0 = clock.now();
    let deadline = t0 + WAIT;
    let mut polls = 0;
    let end = loop {
        polls += 1;
        match sched::poll_until(&[port], clock, deadline) {
            Ok(()) => continue,
            Err(e) => break e,
        }
    };
    let r = if end == Error::ETIMEDOUT {
        Ok(())
    } else {
        Err(end)
    };
    (clock.now() - t0, polls, r)
}

/// The checks; `false` if one failed.
pub fn run(say: &mut impl FnMut(Line)) -> bool {
    let mut good = true;
    let shared = (&raw mut SHARED).cast();
    // SAFETY: SHARED is a page of this image used for nothing else: it becomes the shared info page,
    // read through `clock` and `events` only.
    if let Err(e) = unsafe { memory::map_shared_info(gfn_of(&raw const SHARED)) } {
        return check(
            say,
            "clock",
            false,
            Line::new().s("map_shared_info: ").err(e),
        );
    }
    // SAFETY: as above.
    let clock = match unsafe { Clock::new(shared) } {
        Ok(c) => c,
        Err(e) => return check(say, "clock", false, Line::new().s("Clock::new: ").err(e)),
    };
    // SAFETY: as above.
    let events = unsafe { Events::new(shared) };
    // SAFETY: only the address is taken; nothing else references RUNSTATE.
    let area = unsafe { &raw mut RUNSTATE.0 };
    // SAFETY: RUNSTATE is this image's, written by Xen only from now on (the MMU is off: its address is
    // its guest physical address, which Xen translates).
    let reg = unsafe { vcpu::register_runstate_memory_area(0, area) };
    good &= check(
        say,
        "runstate",
        reg.is_ok(),
        match reg {
            Ok(()) => Line::new().s("registered"),
            Err(e) => Line::new().err(e),
        },
    );
    // SAFETY: the area registered above, for vCPU 0, which runs this; not written by the guest.
    let clock = unsafe { clock.with_runstate(area) };
    let now = clock.now();
    say(Line::new()
        .s("CLOCK = ")
        .dec(now.as_nanos())
        .s(" ns at ")
        .dec(clock.frequency())
        .s(" Hz"));
    // Xen's NOW() at the domain's creation: seconds into Xen's life (dom0 booted Linux before).
    let bound = clock.offset_lower_bound();
    good &= check(
        say,
        "offset",
        bound > 0 && bound < 3_600_000_000_000,
        Line::new()
            .s("Xen system time - clock >= ")
            .dec(bound)
            .s(" ns, from the runstate"),
    );

    let port = match evtchn::alloc_unbound(DomId::SELF, DomId::DOM0) {
        Ok(p) => p,
        Err(e) => {
            return check(
                say,
                "poll 20 ms",
                false,
                Line::new().s("alloc_unbound: ").err(e),
            );
        }
    };
    let (waited, polls, r) = wait(&clock, port);
    good &= check(
        say,
        "poll 20 ms",
        r.is_ok() && waited >= WAIT && waited < LATE,
        ms(waited)
            .s(" by the guest's clock, ")
            .dec(polls.into())
            .s(" polls, bound before: ")
            .dec(bound)
            .s(" ns"),
    );
    let t0 = clock.now();
    let synced = clock.synchronize(Duration::from_millis(500));
    let took = clock.now() - t0;
    let after = clock.offset_lower_bound();
    good &= check(
        say,
        "synchronize",
        synced == Ok(true) && after >= bound,
        Line::new()
            .s(match synced {
                Ok(true) => "rescheduled",
                Ok(false) => "not rescheduled",
                Err(_) => "error",
            })
            .s(" in ")
            .bytes(ms(took).text())
            .s(", bound ")
            .dec(after)
            .s(" ns (+")
            .dec(after - bound.min(after))
            .s(")"),
    );
    let (waited, polls, r) = wait(&clock, port);
    good &= check(
        say,
        "poll 20 ms synchronized",
        r.is_ok() && waited >= WAIT && waited < LATE,
        ms(waited)
            .s(" by the guest's clock, ")
            .dec(polls.into())
            .s(" polls"),
    );
    // The same through `Events::wait`, which takes the event or says ETIMEDOUT.
    let t0 = clock.now();
    let r = events.wait(port, &clock, WAIT);
    let waited = clock.now() - t0;
    good &= check(
        say,
        "Events::wait 20 ms",
        r == Err(Error::ETIMEDOUT) && waited >= WAIT && waited < LATE,
        ms(waited).s(" then ETIMEDOUT"),
    );
    let _ = evtchn::close(port);

    let base = clock.wallclock_base().unwrap_or_default();
    let wall = clock.wallclock().unwrap_or_default().as_secs();
    say(Line::new()
        .s("WALLCLOCK = ")
        .dec(wall)
        .s(" s (wc ")
        .dec(base.sec)
        .s(" s ")
        .dec(base.nsec.into())
        .s(" ns + clock)"));
    good &= check(
        say,
        "wallclock",
        wall > Y2024,
        Line::new().s("after 2024: ").dec(wall),
    );

    // Xen on ARM has no one-shot timer hypercall: `do_vcpu_op` refuses it.
    let r = time::set_timer(&clock, 0, clock.now() + WAIT);
    good &= check(
        say,
        "singleshot timer",
        r == Err(Error::EINVAL),
        match r {
            Ok(()) => Line::new().s("accepted"),
            Err(e) => Line::new().s("refused: ").err(e),
        },
    );
    good
}
