//! `xen::time`: the scaling and version protocol of `vcpu_time_info`, the wall clock, the clock on the
//! mock's counter, its calibration against Xen system time, and the timed waits, against a simulated
//! ARM Xen whose system time is the guest's clock plus a hidden offset.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use xen_hypercall::mock;
use xen_hypercall::xen::evtchn::{Events, Port};
use xen_hypercall::xen::time::{self, Clock, Instant, VcpuSetSingleshotTimer, scale_delta};
use xen_hypercall::xen::vcpu::{RunstateInfo, SharedInfo, VcpuTimeInfo};
use xen_hypercall::xen::{Error, nr, sched};

/// 62.5 MHz: 16 ns a tick.
const FREQ: u64 = 62_500_000;
const NS_PER_TICK: u64 = 16;

fn leak<T: Default>() -> *mut T {
    Box::into_raw(Box::default())
}

#[test]
fn scale_delta_matches_xen_s_formula_computed_by_hand() {
    // A 3 GHz TSC as Xen scales it: shift -1, mul = floor(2/3 * 2^32) = 2863311530.
    // (3e9 >> 1) * 2863311530 = 4294967295000000000; / 2^32 = 999999999.77.
    assert_eq!(scale_delta(3_000_000_000, 2_863_311_530, -1), 999_999_999);
    // 2.6 GHz: Xen's set_time_scale halves 2.6e9 once (shift -1), mul = 10^9 * 2^32 / 1.3e9 = 3303820996.
    // 10 s of ticks: (26e9 >> 1) * 3303820996 / 2^32 = 9999999997.6.
    assert_eq!(
        scale_delta(26_000_000_000, 3_303_820_996, -1),
        9_999_999_997
    );
    // Positive shift: 1 GHz as shift 1, mul 1/2.
    assert_eq!(scale_delta(12_345, 1 << 31, 1), 12_345);
    // Large deltas: 2^63 >> 1 = 2^62, * 2^31 / 2^32 = 2^61.
    assert_eq!(scale_delta(1 << 63, 1 << 31, -1), 1 << 61);
    // 2^62 << 2 = 2^64 (which wraps to 0 in 64 bits), * 2^31 / 2^32 = 2^63.
    assert_eq!(scale_delta(1 << 62, 1 << 31, 2), 1 << 63);
    // Results beyond 64 bits saturate; shifts of 64 or more are handled.
    assert_eq!(scale_delta(u64::MAX, u32::MAX, 3), u64::MAX);
    assert_eq!(scale_delta(1, 1, 127), u64::MAX); // 2^127 / 2^32 = 2^95
    assert_eq!(scale_delta(u64::MAX, u32::MAX, -64), 0);
    assert_eq!(scale_delta(u64::MAX, u32::MAX, -128), 0);
    assert_eq!(scale_delta(0, u32::MAX, 127), 0);
    assert_eq!(scale_delta(u64::MAX, 0, 100), 0);
}

#[test]
fn system_time_adds_the_scaled_delta_since_the_stamp() {
    let info: *mut VcpuTimeInfo = leak();
    // SAFETY: the leaked record is this test's; nothing else writes it.
    unsafe {
        *info = VcpuTimeInfo {
            version: 4,
            tsc_timestamp: 1_000_000,
            system_time: 7_000_000_000,
            tsc_to_system_mul: 2_863_311_530,
            tsc_shift: -1,
            ..VcpuTimeInfo::default()
        };
    }
    // SAFETY: as above.
    let ns = unsafe { time::system_time(info, || 1_000_000 + 3_000_000_000) };
    assert_eq!(ns, 7_000_000_000 + 999_999_999);
    // The delta is taken modulo 2^64: a PVH guest's TSC starts near 0 at the domain's creation, and
    // Xen's stamp, in the guest's TSC, may lie before it (seen on Xen 4.17: 2^64 - 86252648).
    // SAFETY: as above.
    unsafe { (*info).tsc_timestamp = (-3_000_000_000i64) as u64 };
    // SAFETY: as above.
    let ns = unsafe { time::system_time(info, || 0) };
    assert_eq!(ns, 7_000_000_000 + 999_999_999);
    // SAFETY: as above.
    let copy = unsafe { time::read_time_info(info) };
    // SAFETY: as above.
    assert_eq!(copy, unsafe { *info });
}

/// A leaked record at 1 ns a tick (`mul` 2^31, `shift` 1) with these fields, the others zero.
fn one_ns_a_tick(version: u32, tsc_timestamp: u64, system_time: u64) -> *mut VcpuTimeInfo {
    let info: *mut VcpuTimeInfo = leak();
    // SAFETY: the test's record, leaked, not yet shared.
    unsafe {
        *info = VcpuTimeInfo {
            version,
            tsc_timestamp,
            system_time,
            tsc_to_system_mul: 1 << 31,
            tsc_shift: 1,
            ..VcpuTimeInfo::default()
        };
    }
    info
}

/// Atomic views of the fields Xen rewrites: the version, the stamp and the system time.
///
/// # Safety
///
/// `info` is a leaked record, accessed only atomically while another thread or the reader may use it.
unsafe fn xen_fields(
    info: *mut VcpuTimeInfo,
) -> (&'static AtomicU32, &'static AtomicU64, &'static AtomicU64) {
    // SAFETY: the caller's contract: the record lives for the rest of the run; every access is atomic.
    unsafe {
        (
            AtomicU32::from_ptr(&raw mut (*info).version),
            AtomicU64::from_ptr(&raw mut (*info).tsc_timestamp),
            AtomicU64::from_ptr(&raw mut (*info).system_time),
        )
    }
}

/// What Xen's `update_vcpu_system_time` does: version odd, new fields, version even.
fn xen_updates(info: *mut VcpuTimeInfo, stamp: u64, system_time: u64) {
    // SAFETY: the test's record, written with atomic stores while the reader holds atomic views of it.
    let (version, tsc, sys) = unsafe { xen_fields(info) };
    version.fetch_add(1, Ordering::Release);
    tsc.store(stamp, Ordering::Relaxed);
    sys.store(system_time, Ordering::Relaxed);
    version.fetch_add(1, Ordering::Release);
}

#[test]
fn a_read_torn_by_an_update_is_retried() {
    let info = one_ns_a_tick(2, 100, 1_000);
    let addr = info as usize;
    let mut reads = 0;
    // The counter is read inside each attempt: the first time, Xen rewrites the record meanwhile, so
    // the fields read (stamp 100, time 1000) and the version read after them disagree.
    // SAFETY: as above.
    let ns = unsafe {
        time::system_time(info, || {
            reads += 1;
            if reads == 1 {
                xen_updates(addr as *mut VcpuTimeInfo, 400, 50_000);
            }
            500
        })
    };
    assert_eq!(reads, 2, "the torn attempt was retried");
    // From the new record: 50000 + (500 - 400). The torn one would have given 1000 + 400 = 1400.
    assert_eq!(ns, 50_100);
    // SAFETY: as above.
    assert_eq!(unsafe { (*info).version }, 4);
}

#[test]
fn a_read_waits_while_the_version_is_odd() {
    // The version is odd: Xen is in the middle of an update.
    let info = one_ns_a_tick(3, 10, 1);
    let addr = info as usize;
    let finished = Arc::new(AtomicBool::new(false));
    let writer = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let info = addr as *mut VcpuTimeInfo;
            // SAFETY: the record outlives both threads (leaked); every access is atomic.
            let (version, tsc, sys) = unsafe { xen_fields(info) };
            tsc.store(20, Ordering::Relaxed);
            sys.store(9_000, Ordering::Relaxed);
            finished.store(true, Ordering::Relaxed);
            version.store(4, Ordering::Release);
        })
    };
    let mut seen_unfinished = false;
    // SAFETY: as above.
    let ns = unsafe {
        time::system_time(info, || {
            seen_unfinished |= !finished.load(Ordering::Relaxed);
            25
        })
    };
    writer.join().unwrap();
    assert!(
        !seen_unfinished,
        "no attempt completed while the version was odd"
    );
    assert_eq!(ns, 9_005);
}

#[test]
fn wallclock_reads_all_four_fields_and_adds_the_clock() {
    mock::reset();
    let shared: *mut SharedInfo = leak();
    // SAFETY: the test's page.
    unsafe {
        (*shared).wc_version = 2;
        (*shared).wc_sec = 1_700_000_000;
        (*shared).wc_nsec = 250_000_000;
        (*shared).wc_sec_hi = 0;
    }
    // SAFETY: as above.
    let wc = unsafe { time::read_wallclock(shared) };
    assert_eq!((wc.sec, wc.nsec), (1_700_000_000, 250_000_000));
    mock::set_counter(FREQ, 3 * FREQ + FREQ / 2); // 3.5 s on the domain's clock
    // SAFETY: as above.
    let clock = unsafe { Clock::new(shared) }.unwrap();
    assert_eq!(
        clock.wallclock(),
        Some(Duration::new(1_700_000_000 + 3, 750_000_000))
    );
    // Beyond 2106: the high word.
    // SAFETY: as above.
    unsafe { (*shared).wc_sec_hi = 1 };
    assert_eq!(
        clock.wallclock_base().unwrap().sec,
        (1 << 32) + 1_700_000_000
    );
    // The generic timer alone has the same clock and no wall clock.
    let alone = Clock::generic_timer().unwrap();
    assert_eq!((alone.now(), alone.wallclock()), (clock.now(), None));
}

#[test]
fn wallclock_is_never_seen_torn_by_a_concurrent_writer() {
    let shared: *mut SharedInfo = leak();
    let addr = shared as usize;
    let stop = Arc::new(AtomicBool::new(false));
    // A writer that keeps the three fields equal in every consistent state, with Xen's protocol.
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let shared = addr as *mut SharedInfo;
            // SAFETY: the page outlives both threads (leaked); every access is atomic.
            let (v, sec, nsec, hi) = unsafe {
                (
                    AtomicU32::from_ptr(&raw mut (*shared).wc_version),
                    AtomicU32::from_ptr(&raw mut (*shared).wc_sec),
                    AtomicU32::from_ptr(&raw mut (*shared).wc_nsec),
                    AtomicU32::from_ptr(&raw mut (*shared).wc_sec_hi),
                )
            };
            let mut k = 0u32;
            while !stop.load(Ordering::Relaxed) {
                k = k.wrapping_add(1);
                v.fetch_add(1, Ordering::Relaxed);
                std::sync::atomic::fence(Ordering::Release);
                sec.store(k, Ordering::Relaxed);
                nsec.store(k, Ordering::Relaxed);
                hi.store(k, Ordering::Relaxed);
                v.fetch_add(1, Ordering::Release);
            }
        })
    };
    let mut distinct = std::collections::BTreeSet::new();
    for _ in 0..if cfg!(miri) { 2_000 } else { 200_000 } {
        // SAFETY: as above.
        let wc = unsafe { time::read_wallclock(shared) };
        let (hi, lo) = ((wc.sec >> 32) as u32, wc.sec as u32);
        assert!(hi == lo && lo == wc.nsec, "torn wall clock read: {wc:?}");
        distinct.insert(lo);
    }
    // Not vacuous: the writer was updating while the reader read.
    assert!(distinct.len() > 1, "the writer never ran during the reads");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn the_clock_converts_the_counter_exactly() {
    mock::reset();
    let shared: *mut SharedInfo = leak();
    // 24 MHz, one hour and one tick: 3600 s + 41.67 ns, rounded down.
    mock::set_counter(24_000_000, 24_000_000 * 3600 + 1);
    // SAFETY: the test's page.
    let clock = unsafe { Clock::new(shared) }.unwrap();
    assert_eq!(clock.frequency(), 24_000_000);
    assert_eq!(clock.now().as_nanos(), 3_600_000_000_041);
    // Centuries of ticks saturate instead of wrapping.
    mock::set_counter(FREQ, u64::MAX);
    // SAFETY: as above.
    let clock = unsafe { Clock::new(shared) }.unwrap();
    assert_eq!(clock.now(), Instant::from_nanos(u64::MAX));
    // A zero frequency (firmware that did not set CNTFRQ) is refused.
    mock::set_counter(0, 5);
    // SAFETY: as above.
    assert_eq!(unsafe { Clock::new(shared) }.err(), Some(Error::ENODEV));
}

/// How long a `SCHEDOP_poll` that returns at once takes (QEMU's TCG is about this slow).
const RETURN_NS: u64 = 10_000;

/// A simulated ARM Xen: system time is the guest's clock plus `offset`, which the guest is never told.
/// `SCHEDOP_poll` blocks until its timeout by Xen's clock (then reschedules the vCPU `latency_ns` later,
/// stamping the runstate's `state_entry_time`), or returns at once ([`RETURN_NS`] later, no reschedule) if the
/// timeout has passed or a port is pending.
struct FakeXen {
    offset: u64,
    latency_ns: u64,
    runstate: *mut RunstateInfo,
    shared: *mut SharedInfo,
    /// Each poll: (Xen timeout asked, Xen system time when it was asked).
    polls: Vec<(u64, u64)>,
    /// When set: the port Xen raises once its system time reaches the given value.
    raise: Option<(u32, u64)>,
}

fn guest_ns() -> u64 {
    mock::counter() * NS_PER_TICK
}

fn install(xen: &Rc<RefCell<FakeXen>>) {
    let xen = xen.clone();
    mock::set_default(move |call| {
        assert_eq!(
            (call.op(), call.arg(0)),
            (nr::SCHED_OP, sched::SCHEDOP_POLL)
        );
        let p: sched::SchedPoll = call.read(1).unwrap();
        let ports: Vec<u32> = (0..p.nr_ports as usize)
            .map(|k| call.read_handle_at::<u32>(1, 0, k).unwrap())
            .collect();
        let mut x = xen.borrow_mut();
        let now = guest_ns() + x.offset;
        x.polls.push((p.timeout, now));
        // SAFETY: the test's page, written between calls on this thread, as Xen would.
        let pending = |port: u32| unsafe { (*x.shared).evtchn_pending[0] & (1 << port) != 0 };
        if ports.iter().any(|&q| pending(q)) || (p.timeout != 0 && p.timeout <= now) {
            mock::advance_counter(RETURN_NS / NS_PER_TICK);
            return 0;
        }
        // Blocked until the timeout or the raised event, whichever comes first.
        let mut wake = if p.timeout == 0 { u64::MAX } else { p.timeout };
        if let Some((port, at)) = x.raise
            && ports.contains(&port)
        {
            wake = wake.min(at.max(now));
        }
        assert_ne!(wake, u64::MAX, "blocked forever");
        if let Some((port, at)) = x.raise
            && at <= wake
        {
            // SAFETY: as above.
            unsafe { (*x.shared).evtchn_pending[0] |= 1 << port };
            x.raise = None;
        }
        let back = wake + x.latency_ns;
        // Scheduled in at `back` (Xen time), then the guest runs on.
        // SAFETY: the test's runstate area.
        unsafe { (*x.runstate).state_entry_time = back };
        mock::set_counter(FREQ, (back - x.offset).div_ceil(NS_PER_TICK));
        0
    });
}

/// The fake Xen, the guest's clock at `now_ns`, its runstate entered at Xen time `entry`.
fn fake_xen(
    now_ns: u64,
    offset: u64,
    entry: u64,
) -> (Rc<RefCell<FakeXen>>, *mut SharedInfo, Clock) {
    mock::reset();
    mock::set_counter(FREQ, now_ns / NS_PER_TICK);
    assert!(entry <= now_ns + offset, "a runstate entered in the future");
    let shared: *mut SharedInfo = leak();
    let runstate: *mut RunstateInfo = leak();
    // SAFETY: the test's area: the vCPU was last scheduled in at Xen time `entry`.
    unsafe { (*runstate).state_entry_time = entry };
    let xen = Rc::new(RefCell::new(FakeXen {
        offset,
        latency_ns: 30_000,
        runstate,
        shared,
        polls: Vec::new(),
        raise: None,
    }));
    install(&xen);
    // SAFETY: the test's page and area, written by the fake Xen between calls on this thread only.
    let clock = unsafe { Clock::new(shared).unwrap().with_runstate(runstate) };
    (xen, shared, clock)
}

const OFFSET: u64 = 5_000_000_000; // Xen booted 5 s before the domain was created

#[test]
fn the_runstate_gives_a_lower_bound_of_the_offset() {
    // 100 ms on the domain's clock; the vCPU was scheduled in 70 ms ago.
    let (_xen, _, clock) = fake_xen(100_000_000, OFFSET, OFFSET + 30_000_000);
    let bound = clock.offset_lower_bound();
    assert!(bound <= OFFSET, "never above the truth: {bound}");
    assert_eq!(bound, OFFSET - 70_000_000 - 1_000);
    let at = Instant::from_nanos(200_000_000);
    assert!(clock.system_time_at(at) <= OFFSET + 200_000_000);
}

/// A 20 ms wait on port 3, which nothing signals: it ends with `ETIMEDOUT`. When it began and how long
/// it took, by `clock`.
fn unanswered_wait(events: &Events, clock: &Clock) -> (Instant, Duration) {
    let t0 = clock.now();
    assert_eq!(
        events.wait(Port(3), clock, Duration::from_millis(20)),
        Err(Error::ETIMEDOUT)
    );
    (t0, clock.now() - t0)
}

#[test]
fn a_timed_wait_is_never_short_and_synchronising_makes_it_one_poll() {
    let (xen, shared, clock) = fake_xen(100_000_000, OFFSET, OFFSET + 30_000_000);
    // SAFETY: the test's page.
    let events = unsafe { Events::new(shared) };
    // Before synchronising, the bound is 70 ms early: every Xen timeout of a 20 ms wait has passed
    // already, so Xen returns at once, and the wait polls until its own clock says 20 ms.
    let (t0, waited) = unanswered_wait(&events, &clock);
    assert!(
        waited >= Duration::from_millis(20),
        "short wait: {waited:?}"
    );
    assert!(waited < Duration::from_millis(21), "{waited:?}");
    let busy = xen.borrow().polls.len();
    assert!(busy > 1_900, "polled again after each early return: {busy}");
    assert!(busy <= 2_001, "{busy}");
    // Every timeout Xen saw was no later than the deadline by Xen's true clock.
    let deadline_xen = (t0 + Duration::from_millis(20)).as_nanos() + OFFSET;
    assert!(xen.borrow().polls.iter().all(|&(t, _)| t <= deadline_xen));

    // Synchronising: the vCPU blocks once, is rescheduled, and the bound is then within the latency.
    xen.borrow_mut().polls.clear();
    assert_eq!(clock.synchronize(Duration::from_millis(500)), Ok(true));
    let bound = clock.offset_lower_bound();
    assert!(bound <= OFFSET && OFFSET - bound <= 2_000, "bound {bound}");
    let probes = xen.borrow().polls.len();
    assert!(probes <= 12, "{probes} probes");

    // Now a 20 ms wait is one poll (or two), woken just after the deadline.
    xen.borrow_mut().polls.clear();
    let (_, waited) = unanswered_wait(&events, &clock);
    assert!(
        waited >= Duration::from_millis(20),
        "short wait: {waited:?}"
    );
    assert!(
        waited <= Duration::from_millis(20) + Duration::from_micros(40),
        "{waited:?}"
    );
    assert!(xen.borrow().polls.len() <= 2, "{:?}", xen.borrow().polls);
}

#[test]
fn an_event_before_the_deadline_ends_the_wait() {
    let (xen, shared, clock) = fake_xen(100_000_000, OFFSET, OFFSET + 99_000_000);
    // SAFETY: the test's page.
    let events = unsafe { Events::new(shared) };
    let t0 = clock.now();
    // The backend answers on port 3 after 5 ms.
    xen.borrow_mut().raise = Some((3, t0.as_nanos() + OFFSET + 5_000_000));
    assert_eq!(
        events.wait(Port(3), &clock, Duration::from_millis(50)),
        Ok(())
    );
    let waited = clock.now() - t0;
    assert!(waited >= Duration::from_millis(5) && waited < Duration::from_millis(6));
    assert!(!events.is_pending(Port(3)), "taken");
    // Already pending: no hypercall.
    xen.borrow_mut().polls.clear();
    // SAFETY: the test's page.
    unsafe { (*shared).evtchn_pending[0] |= 1 << 4 };
    assert_eq!(events.wait(Port(4), &clock, Duration::ZERO), Ok(()));
    assert!(xen.borrow().polls.is_empty());
    // A zero timeout with nothing pending: one poll, then ETIMEDOUT.
    assert_eq!(
        events.wait(Port(4), &clock, Duration::ZERO),
        Err(Error::ETIMEDOUT)
    );
    assert_eq!(xen.borrow().polls.len(), 1);
    // Ports the 2-level ABI does not have.
    assert_eq!(
        events.wait(Port(5000), &clock, Duration::ZERO),
        Err(Error::EINVAL)
    );
}

/// The negative control: a bound above the truth (a value that was not a Xen time before the read)
/// makes Xen's timeout late, and the check of the waits above catches it.
#[test]
fn an_offset_bound_above_the_truth_is_caught_as_a_late_wake_up() {
    let (xen, shared, clock) = fake_xen(100_000_000, OFFSET, OFFSET + 99_000_000);
    // SAFETY: the test's page.
    let events = unsafe { Events::new(shared) };
    clock.observe_system_time(OFFSET + 110_000_000); // 10 ms in the future of Xen's real clock
    let (t0, waited) = unanswered_wait(&events, &clock);
    assert!(
        waited > Duration::from_millis(20) + Duration::from_micros(40),
        "the late wake-up the other tests rule out: {waited:?}"
    );
    let deadline_xen = (t0 + Duration::from_millis(20)).as_nanos() + OFFSET;
    assert!(xen.borrow().polls.iter().any(|&(t, _)| t > deadline_xen));
}

#[test]
fn sched_poll_returns_etimedout_only_past_the_deadline() {
    let (xen, _, clock) = fake_xen(16_000, OFFSET, OFFSET);
    assert_eq!(clock.synchronize(Duration::from_millis(10)), Ok(true));
    let deadline = clock.now() + Duration::from_millis(3);
    assert_eq!(
        sched::poll_until(&[Port(1)], &clock, deadline),
        Err(Error::ETIMEDOUT)
    );
    assert!(clock.now() >= deadline);
    let (timeout, _) = *xen.borrow().polls.last().unwrap();
    assert!(timeout <= deadline.as_nanos() + OFFSET);
    assert!(timeout + 2_000 >= deadline.as_nanos() + OFFSET);
    // Woken early (here: by a port pending at once): Ok, the caller looks at its bits.
    // SAFETY: the test's page.
    unsafe { (*xen.borrow().shared).evtchn_pending[0] |= 1 << 1 };
    assert_eq!(
        sched::poll(&[Port(1)], &clock, Duration::from_millis(3)),
        Ok(())
    );
    // A deadline at the end of time is Xen's latest positive s_time_t, not a negative one (which Xen's
    // timers would take as past, returning at once).
    mock::reset();
    mock::answer_zero();
    let _ = sched::poll(&[Port(1)], &clock, Duration::MAX);
    let c = mock::take_calls();
    assert_eq!(
        c[0].read::<sched::SchedPoll>(1).unwrap().timeout,
        i64::MAX as u64
    );
    // The raw form passes the timeout through.
    mock::reset();
    mock::answer_zero();
    sched::poll_until_system_time(&[Port(1)], 123).unwrap();
    let c = mock::take_calls();
    assert_eq!(c[0].read::<sched::SchedPoll>(1).unwrap().timeout, 123);
    sched::poll_forever(&[Port(1)]).unwrap();
    let c = mock::take_calls();
    assert_eq!(c[0].read::<sched::SchedPoll>(1).unwrap().timeout, 0);
}

#[test]
fn without_a_runstate_area_the_bound_is_zero() {
    mock::reset();
    mock::set_counter(FREQ, 1_000_000);
    let shared: *mut SharedInfo = leak();
    // SAFETY: the test's page.
    let clock = unsafe { Clock::new(shared) }.unwrap();
    assert_eq!(clock.offset_lower_bound(), 0);
    clock.calibrate();
    assert_eq!(clock.offset_lower_bound(), 0);
    assert_eq!(clock.synchronize(Duration::from_millis(1)), Ok(false));
    assert!(mock::take_calls().is_empty());
    assert_eq!(clock.system_time_at(Instant::from_nanos(42)), 42);
    // As a timeout for Xen, 0 (which would mean none) becomes 1.
    assert_eq!(clock.timeout_at(Instant::from_nanos(0)), 1);
}

#[test]
fn singleshot_timer_calls() {
    mock::reset();
    mock::answer_zero();
    time::set_singleshot_timer(0, 9_000_000_000).unwrap();
    time::stop_singleshot_timer(0).unwrap();
    time::stop_periodic_timer(0).unwrap();
    let periodic = mock::take_calls();
    assert_eq!(
        (
            periodic[2].op,
            periodic[2].args[0],
            periodic[2].args[1],
            periodic[2].args[2]
        ),
        (nr::VCPU_OP, 7, 0, 0) // VCPUOP_stop_periodic_timer, vcpu 0, NULL
    );
    mock::set_counter(FREQ, FREQ); // 1 s
    let shared: *mut SharedInfo = leak();
    // SAFETY: the test's page.
    let clock = unsafe { Clock::new(shared) }.unwrap();
    clock.observe_system_time(OFFSET + 1_000_000_000 + 1_000); // as if Xen had said so
    time::set_timer(&clock, 0, clock.now() + Duration::from_millis(20)).unwrap();
    let calls: Vec<_> = periodic[..2]
        .iter()
        .cloned()
        .chain(mock::take_calls())
        .collect();
    assert_eq!(calls.len(), 3);
    for c in &calls {
        assert_eq!((c.op, c.arity()), (nr::VCPU_OP, 3));
        assert_eq!(c.args[1], 0);
    }
    assert_eq!(calls[0].args[0], 8); // VCPUOP_set_singleshot_timer, vcpu.h
    let t: VcpuSetSingleshotTimer = calls[0].read(2).unwrap();
    assert_eq!((t.timeout_abs_ns, t.flags), (9_000_000_000, 0));
    assert_eq!((calls[1].args[0], calls[1].args[2]), (9, 0)); // VCPUOP_stop_singleshot_timer, NULL
    let t: VcpuSetSingleshotTimer = calls[2].read(2).unwrap();
    assert_eq!(t.timeout_abs_ns, OFFSET + 1_000_000_000 + 20_000_000);
    // Xen on ARM refuses both: the error comes back typed.
    mock::fails(Error::EINVAL);
    assert_eq!(time::set_singleshot_timer(0, 1), Err(Error::EINVAL));
}
