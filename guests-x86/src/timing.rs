//! Time on x86-64 Xen (`xen::time`), where Xen really fills `vcpu_time_info`: the clock (Xen system
//! time from the TSC), a 20 ms `SCHEDOP_poll` time-out and a 20 ms one-shot timer (`VIRQ_TIMER`, with
//! the PV vCPU's default 10 ms periodic timer stopped) measured by that clock, and the wall clock.

use core::time::Duration;

use xen_hypercall::xen::evtchn::{self, Events, Virq};
use xen_hypercall::xen::time::{self, Clock};
use xen_hypercall::xen::{DomId, Error, sched};

use crate::checks::{Checks, failed};
use crate::events;

/// The wait measured.
const WAIT: Duration = Duration::from_millis(20);
/// A generous bound on one 20 ms wait under QEMU's TCG on a loaded machine (whose stalls the clock
/// sees: a one-shot timer was seen after 568 ms under a load average of 11 on 2 cores).
const LATE: Duration = Duration::from_secs(1);
/// 2024-01-01T00:00:00Z.
const Y2024: u64 = 1_704_067_200;

/// The checks `time::Clock`, `sched::poll 20 ms`, `one-shot timer 20 ms` and `wallclock`.
pub fn run(c: &mut Checks) {
    if !events::shared_info_mapped() {
        return c.check("time::Clock", false, format_args!("no shared info page"));
    }
    let shared = (&raw mut events::SHARED_INFO).cast();
    // SAFETY: the shared info page is mapped over SHARED_INFO for the rest of the run, and the
    // `vcpu_info` is the one Xen keeps vCPU 0's time and events in; both are read atomically only.
    let clock = match unsafe { Clock::with_vcpu_info(shared, events::vcpu_info()) } {
        Ok(clock) => clock,
        Err(e) => return failed(c, "time::Clock", e),
    };
    // SAFETY: as above.
    let ev = unsafe { Events::with_vcpu_info(shared, events::vcpu_info()) };
    let (t0, t1) = (clock.now(), clock.now());
    c.check(
        "time::Clock",
        t0.as_nanos() > 0 && t1 >= t0 && t0.since_origin() < Duration::from_secs(3600),
        format_args!(
            "Xen system time {} ns, then {} ns",
            t0.as_nanos(),
            t1.as_nanos()
        ),
    );

    let name = "sched::poll 20 ms";
    match evtchn::alloc_unbound(DomId::SELF, DomId::SELF) {
        Ok(port) => {
            let t0 = clock.now();
            let deadline = t0 + WAIT;
            let mut polls = 0;
            let end = loop {
                polls += 1;
                if let Err(e) = sched::poll_until(&[port], &clock, deadline) {
                    break e;
                }
            };
            let waited = clock.now() - t0;
            c.check(
                name,
                end == Error::ETIMEDOUT && waited >= WAIT && waited < LATE,
                format_args!("{waited:?} by the clock, {polls} polls, then {end:?}"),
            );
            let _ = evtchn::close(port);
        }
        Err(e) => failed(c, name, e),
    }

    let name = "one-shot timer 20 ms";
    let stopped = time::stop_periodic_timer(0);
    match evtchn::bind_virq(Virq::TIMER, 0) {
        Ok(port) => {
            // Masked: no upcall takes it; `SCHEDOP_poll` still wakes on its pending bit.
            let _ = ev.mask(port);
            ev.clear_pending(port);
            let t0 = clock.now();
            let armed = time::set_timer(&clock, 0, t0 + WAIT);
            let fired = ev.wait(port, &clock, LATE);
            let waited = clock.now() - t0;
            c.check(
                name,
                stopped.is_ok() && armed.is_ok() && fired.is_ok() && waited >= WAIT && waited < LATE,
                format_args!(
                    "VIRQ_TIMER after {waited:?} by the clock (periodic timer stopped: {stopped:?}, \
                     armed: {armed:?}, event: {fired:?})"
                ),
            );
            let _ = time::stop_singleshot_timer(0);
            let _ = evtchn::close(port);
        }
        Err(e) => failed(c, name, e),
    }

    let wc = clock.wallclock_base().unwrap_or_default();
    let wall = clock.wallclock().unwrap_or_default().as_secs();
    c.check(
        "wallclock",
        wall > Y2024,
        format_args!(
            "{wall} s since the epoch (wc {} s {} ns + system time)",
            wc.sec, wc.nsec
        ),
    );
}
