//! Time: the guest's monotonic clock ([`Clock`], [`Instant`]), Xen's system time, the wall clock, and
//! Xen's one-shot timer.
//!
//! **Xen system time** is Xen's `NOW()`: nanoseconds since Xen booted. It is the clock of every absolute
//! time a hypercall takes ([`sched::poll_until_system_time`](super::sched::poll_until_system_time),
//! [`set_singleshot_timer`]) or reports ([`RunstateInfo::state_entry_time`]). How a guest reads it
//! depends on the architecture, and [`Clock`] hides the difference:
//!
//! | | x86-64 (PV, PVH) | ARM (A64, A32, T32) |
//! |---|---|---|
//! | what Xen provides | `struct vcpu_time_info` in each `vcpu_info`, rewritten by `update_vcpu_system_time` (`xen/arch/x86/time.c`) | nothing in `vcpu_time_info`: `update_vcpu_system_time` (`xen/arch/arm/time.c`) is empty and leaves it zero |
//! | [`Clock::now`] | Xen system time: `system_time + scale(TSC − tsc_timestamp)` | the generic timer's virtual count `CNTVCT` at `CNTFRQ`, in ns |
//! | its origin | Xen's boot | the domain's creation: Xen sets the domain's `CNTVOFF` to the physical count then (`domain_vtimer_init`, `xen/arch/arm/vtimer.c`) |
//! | Xen system time from it | the same value | `now + offset`, where the offset is Xen's `NOW()` at the domain's creation (`virt_timer_base.nanoseconds`), fixed per domain, never given to the guest |
//!
//! On ARM the guest therefore knows Xen system time only through the values Xen reports in it. The
//! runstate area's `state_entry_time` is the `NOW()` at which the vCPU entered its current state, so
//! whenever the guest reads it and then its own clock, `state_entry_time − now` is a **lower bound** of
//! the offset. [`Clock::calibrate`] keeps the largest such bound (after every wake-up of a wait, when the
//! vCPU was just scheduled in, the bound is within the scheduling latency of the truth); without a
//! runstate area the bound is 0. [`Clock::system_time_at`] adds the bound, so a deadline handed to Xen
//! is never later than the truth: a wake-up may come early, never late. Every wait of this crate then
//! ends only when the guest's own clock says the deadline passed, polling again after an early wake-up:
//! an estimate error costs extra polls, never a short wait. (Xen converts the guest's virtual timer the
//! same way, `virt_timer_base.nanoseconds + ticks_to_ns(cval)` in `virt_timer_save`; its `ticks_to_ns`
//! uses the frequency truncated to kHz, so on a counter frequency that is not a whole number of kHz
//! Xen's clock runs slightly faster than the guest's and an old bound stays a bound.)
//!
//! **Reading `vcpu_time_info`** (x86-64; [`system_time`]) is a version protocol (a sequence lock): Xen
//! makes `version` odd, writes barrier, rewrites the fields, writes barrier, makes `version` even again.
//! The reader:
//!
//! 1. reads `version` (retry while odd) — an **acquire load**, which replaces C's first `rmb()`: the
//!    field reads cannot move before it;
//! 2. reads the fields (relaxed atomic loads: Xen writes them concurrently) and the counter;
//! 3. **`fence(Acquire)`**, which replaces C's second `rmb()`: the field reads cannot move after the
//!    next read;
//! 4. reads `version` again (relaxed) and retries if it changed.
//!
//! Then `system_time + (((counter − tsc_timestamp) << tsc_shift or >> −tsc_shift) × tsc_to_system_mul)
//! >> 32` ([`scale_delta`], in 128-bit arithmetic: no overflow). The wall clock (`wc_version`, `wc_sec`,
//! `wc_nsec`, `wc_sec_hi` of `shared_info`; [`read_wallclock`]) has the same protocol.
//!
//! **The wall clock** is `wc + now`: `wc` is the UTC time at the origin of the domain's clock. On x86-64
//! that origin is Xen's boot. On ARM Xen makes it the domain's creation: `update_domain_wallclock_time`
//! (`xen/common/time.c`, called from `arch_domain_create`) writes Xen's own `wc` plus the domain's
//! `time_offset.seconds`, which `domain_vtimer_init` sets to the whole seconds of Xen's `NOW()` at the
//! domain's creation; it is refreshed when dom0 sets the time (`XENPF_settime64`, `do_settime`), and
//! Xen ARM reads no RTC of its own: until a dom0 sets the time, `wc` counts from 1970 (and the domain's
//! clock offset rounds to whole seconds, so the ARM wall clock is good to about a second). A Linux dom0
//! sets it from its own clock (its pvclock time-of-day notifier, `arch/arm/xen/enlighten.c`): seen on
//! Xen 4.17 arm64 under QEMU with a Debian dom0, an `xl` domU (A64 and A32) read the host's date to the
//! second.
//!
//! Seen on Xen 4.17 (release and debug builds, QEMU TCG): on arm64 an `xl` domU's offset was 2.3–8.8 s
//! (Xen's uptime at its creation); the runstate bound taken at start-up was 1.0–2.1 ms early, and a
//! 20 ms wait took 2 polls and 20.0–24.0 ms; after [`Clock::synchronize`] (1.6–10 ms) 1 poll and
//! 20.1–23.0 ms. On x86-64 (PV and PVH dom0) a 20 ms poll took 1 poll and 21–40 ms (once 204 ms, on a
//! host with a load average of 11 on 2 cores, whose stalls the guest sees), a 20 ms one-shot
//! timer 23–49 ms, by the guest's clock.
//!
//! **One-shot timers** ([`set_singleshot_timer`], and `set_timer_op` in x86-64 builds): an absolute Xen
//! system time after which Xen raises `VIRQ_TIMER` on the vCPU. Xen on ARM has neither: its `do_vcpu_op`
//! (`xen/arch/arm/domain.c`) accepts only `VCPUOP_register_vcpu_info` and
//! `VCPUOP_register_runstate_memory_area` (the rest is `EINVAL`), and `set_timer_op` has no ARM entry in
//! `xen/include/hypercall-defs.c` (`ENOSYS`). An ARM guest's one-shot timer is its generic timer
//! (`CNTV_CVAL`), whose interrupt wakes a blocked vCPU; the timed waits of this crate use
//! `SCHEDOP_poll`'s timeout on both architectures.
//!
//! ```
//! # #[cfg(feature = "mock")] {
//! use core::time::Duration;
//! use xen_hypercall::xen::{time::Clock, vcpu::SharedInfo};
//! # xen_hypercall::mock::set_counter(62_500_000, 625_000_000); // 10 s after the domain's creation
//! # let shared: *mut SharedInfo = Box::leak(Box::new(SharedInfo::default()));
//! // SAFETY: `shared` is the shared info page (here a stand-in), valid for the whole run.
//! let clock = unsafe { Clock::new(shared) }?;
//! let t0 = clock.now();
//! let deadline = t0 + Duration::from_millis(50);
//! assert!(clock.now() < deadline);
//! assert_eq!(t0.as_nanos(), 10_000_000_000);
//! # }
//! # Ok::<(), xen_hypercall::xen::Error>(())
//! ```

use core::ops::{Add, Sub};
use core::ptr::NonNull;
use core::sync::atomic::Ordering::{Acquire, Relaxed};
use core::sync::atomic::{AtomicI8, AtomicU8, AtomicU32, AtomicU64, fence};
use core::time::Duration;

#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
use super::Error;
use super::call::{Arg, call3};
use super::vcpu::{RunstateInfo, SharedInfo, VcpuInfo, VcpuTimeInfo};
use super::{Result, nr, unit};

/// A point on the guest's monotonic clock ([`Clock::now`]), in nanoseconds from the clock's origin (see
/// the [module documentation](self)).
///
/// Arithmetic saturates (no panic): `instant + duration` stops at the end of time, `later − earlier` is
/// zero when `earlier` is later.
///
/// ```
/// use core::time::Duration;
/// use xen_hypercall::xen::time::Instant;
/// let t = Instant::from_nanos(1_000);
/// assert_eq!((t + Duration::from_micros(2)).as_nanos(), 3_000);
/// assert_eq!(t - Instant::from_nanos(400), Duration::from_nanos(600));
/// assert_eq!(Instant::from_nanos(400) - t, Duration::ZERO);
/// assert_eq!(t + Duration::MAX, Instant::from_nanos(u64::MAX));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The instant `ns` nanoseconds after the clock's origin.
    #[inline]
    pub const fn from_nanos(ns: u64) -> Instant {
        Instant(ns)
    }

    /// Nanoseconds since the clock's origin.
    #[inline]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since the clock's origin.
    #[inline]
    pub const fn since_origin(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self + d`, or `None` past the end of time.
    #[inline]
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        u64::try_from(d.as_nanos())
            .ok()
            .and_then(|d| self.0.checked_add(d))
            .map(Instant)
    }

    /// `self − earlier`, zero if `earlier` is later.
    #[inline]
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturating: the end of time if the sum overflows.
    #[inline]
    fn add(self, d: Duration) -> Instant {
        self.checked_add(d).unwrap_or(Instant(u64::MAX))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;

    /// Saturating: zero if `earlier` is later.
    #[inline]
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// Xen's scaling of a counter delta to nanoseconds (`pvclock`'s `scale_delta`): `delta` shifted left by
/// `shift` (right by `−shift` when negative), times `mul`, divided by 2³².
///
/// Computed in 128 bits, so it never overflows: where the result does not fit 64 bits (a delta of
/// centuries), it saturates at `u64::MAX`. (Xen's C shifts in 64 bits, which would wrap there.)
///
/// ```
/// use xen_hypercall::xen::time::scale_delta;
/// // A 2 GHz counter: 0.5 ns per tick = mul 2^31, no shift.
/// assert_eq!(scale_delta(2_000_000_000, 1 << 31, 0), 1_000_000_000);
/// ```
#[inline]
pub const fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let wide = delta as u128;
    let shifted = if shift >= 0 {
        // At most 127 bits of shift on a value below 2^64: the bits shifted out of 128 are lost only
        // where the shift is 65 or more, whose product saturates anyway (checked below).
        if shift as u32 > 64 {
            if delta == 0 {
                return 0;
            }
            return if mul == 0 { 0 } else { u64::MAX };
        }
        wide << shift as u32
    } else {
        let right = shift.unsigned_abs() as u32;
        if right >= 64 { 0 } else { wide >> right }
    };
    // `shifted` < 2^128 and < 2^96 unless the shift is 33 or more; the product can overflow 128 bits
    // only then.
    match shifted.checked_mul(mul as u128) {
        Some(p) => {
            let ns = p >> 32;
            if ns > u64::MAX as u128 {
                u64::MAX
            } else {
                ns as u64
            }
        }
        None => u64::MAX,
    }
}

/// Runs `read` under the version protocol of the [module documentation](self) on `version`: until the
/// version was even before the read and unchanged after it. `read` does relaxed loads only.
#[inline(always)]
fn read_versioned<T>(version: &AtomicU32, mut read: impl FnMut() -> T) -> T {
    loop {
        if let Some(v) = try_read_versioned(version, &mut read) {
            return v;
        }
        core::hint::spin_loop();
    }
}

/// One attempt of [`read_versioned`]: `None` if the version was odd or changed.
#[inline(always)]
fn try_read_versioned<T>(version: &AtomicU32, read: &mut impl FnMut() -> T) -> Option<T> {
    // First `rmb()`: an acquire load, so that no read of `read` moves before it.
    let before = version.load(Acquire);
    if before & 1 != 0 {
        return None;
    }
    let value = read();
    // Second `rmb()`: the reads of `read` complete before the version is read again.
    fence(Acquire);
    (version.load(Relaxed) == before).then_some(value)
}

/// The fields of a `vcpu_time_info`, each behind an atomic view (Xen writes them concurrently).
struct TimeInfoView<'a> {
    version: &'a AtomicU32,
    tsc_timestamp: &'a AtomicU64,
    system_time: &'a AtomicU64,
    mul: &'a AtomicU32,
    shift: &'a AtomicI8,
    flags: &'a AtomicU8,
}

impl TimeInfoView<'_> {
    /// # Safety
    ///
    /// As for [`system_time`]; the views live no longer than the caller's `info`.
    #[inline(always)]
    unsafe fn new<'a>(info: *const VcpuTimeInfo) -> TimeInfoView<'a> {
        let info = info.cast_mut();
        // SAFETY: the contract: `info` is valid for reads and 8-aligned, so each field is valid and
        // aligned for the atomic type of its size (offsets 0, 8, 16, 24, 28, 29: multiples of each
        // size), and every access meanwhile is Xen's or atomic. Nothing is written through them.
        unsafe {
            TimeInfoView {
                version: AtomicU32::from_ptr(&raw mut (*info).version),
                tsc_timestamp: AtomicU64::from_ptr(&raw mut (*info).tsc_timestamp),
                system_time: AtomicU64::from_ptr(&raw mut (*info).system_time),
                mul: AtomicU32::from_ptr(&raw mut (*info).tsc_to_system_mul),
                shift: AtomicI8::from_ptr(&raw mut (*info).tsc_shift),
                flags: AtomicU8::from_ptr(&raw mut (*info).flags),
            }
        }
    }
}

/// Xen system time (ns) from the `vcpu_time_info` at `info` and the counter it is scaled from, under
/// the version protocol (see the [module documentation](self)): `counter` is called inside each
/// attempt, between the two reads of `version` (as Linux's `pvclock_clocksource_read` reads the TSC),
/// and the read is retried while Xen is updating the record or has updated it meanwhile.
///
/// On x86-64 the counter is the TSC; [`Clock`] does this for a guest. The delta `counter −
/// tsc_timestamp` is taken modulo 2⁶⁴, as Linux's `pvclock` does: an HVM or PVH guest's TSC starts near 0
/// when the domain is built, and Xen stamps the record in the guest's TSC, so the stamp can be "negative"
/// (seen on Xen 4.17 for a PVH dom0: `tsc_timestamp` 2⁶⁴ − 86252648, the TSC 276670913).
///
/// # Safety
///
/// `info` must be valid for reads of a `VcpuTimeInfo` and 8-aligned (the `time` of the vCPU's
/// `vcpu_info`, or one standing in for it), written only by Xen (or, in Rust, only with atomic stores)
/// meanwhile, and reached through a pointer that allows writes (see
/// [`RunstateInfo::try_read_consistent`]).
///
/// ```
/// use xen_hypercall::xen::{time, vcpu::VcpuTimeInfo};
/// let mut info = VcpuTimeInfo { version: 2, tsc_timestamp: 1_000, system_time: 5_000,
///     tsc_to_system_mul: 1 << 31, tsc_shift: 1, ..VcpuTimeInfo::default() };
/// // SAFETY: `info` is a valid record nobody else writes, reached through `&raw mut`.
/// let ns = unsafe { time::system_time(&raw mut info, || 1_400) };
/// assert_eq!(ns, 5_000 + 400); // 400 ticks << 1, times 1/2
/// ```
#[inline]
pub unsafe fn system_time(info: *const VcpuTimeInfo, mut counter: impl FnMut() -> u64) -> u64 {
    // SAFETY: forwarded.
    let v = unsafe { TimeInfoView::new(info) };
    read_versioned(v.version, || {
        let stamp = v.tsc_timestamp.load(Relaxed);
        let base = v.system_time.load(Relaxed);
        let mul = v.mul.load(Relaxed);
        let shift = v.shift.load(Relaxed);
        let now = counter();
        base.wrapping_add(scale_delta(now.wrapping_sub(stamp), mul, shift))
    })
}

/// A consistent copy of the `vcpu_time_info` at `info` (the version protocol of the
/// [module documentation](self)), with the `version` it was read at.
///
/// # Safety
///
/// As for [`system_time`].
#[inline]
pub unsafe fn read_time_info(info: *const VcpuTimeInfo) -> VcpuTimeInfo {
    // SAFETY: forwarded.
    let v = unsafe { TimeInfoView::new(info) };
    let mut copy = read_versioned(v.version, || VcpuTimeInfo {
        version: 0,
        pad0: 0,
        tsc_timestamp: v.tsc_timestamp.load(Relaxed),
        system_time: v.system_time.load(Relaxed),
        tsc_to_system_mul: v.mul.load(Relaxed),
        tsc_shift: v.shift.load(Relaxed),
        flags: v.flags.load(Relaxed),
        pad1: [0; 2],
    });
    copy.version = v.version.load(Relaxed) & !1;
    copy
}

/// The wall clock of `shared_info` (`wc_sec_hi`:`wc_sec` seconds and `wc_nsec` nanoseconds since the
/// Unix epoch): the UTC time at the origin of the domain's [`Clock`] (see the
/// [module documentation](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Wallclock {
    /// Seconds since 1970-01-01 00:00 UTC.
    pub sec: u64,
    /// Nanoseconds (below 10⁹ as Xen writes it).
    pub nsec: u32,
}

impl Wallclock {
    /// The wall clock as a time since the epoch (a `wc_nsec` of a second or more is added as is).
    #[inline]
    pub const fn since_epoch(self) -> Duration {
        Duration::from_secs(self.sec).saturating_add(Duration::from_nanos(self.nsec as u64))
    }
}

/// Reads `shared_info`'s wall clock under its version protocol (`wc_version`; see the
/// [module documentation](self)).
///
/// # Safety
///
/// `shared` must be valid for reads of a `SharedInfo` and 8-aligned (the shared info page, or one
/// standing in for it), written only by Xen (or with atomic stores) meanwhile, and reached through a
/// pointer that allows writes (see [`RunstateInfo::try_read_consistent`]).
///
/// ```
/// use xen_hypercall::xen::{time, vcpu::SharedInfo};
/// let mut page = SharedInfo::default();
/// (page.wc_version, page.wc_sec, page.wc_nsec, page.wc_sec_hi) = (4, 7, 500, 1);
/// // SAFETY: `page` is valid, nobody else writes it, reached through `&raw mut`.
/// let wc = unsafe { time::read_wallclock(&raw mut page) };
/// assert_eq!((wc.sec, wc.nsec), ((1 << 32) + 7, 500));
/// ```
#[inline]
pub unsafe fn read_wallclock(shared: *const SharedInfo) -> Wallclock {
    let shared = shared.cast_mut();
    // SAFETY: the contract: the four 32-bit fields are valid, 4-aligned, accessed only atomically or
    // by Xen meanwhile; nothing is written through them.
    let (version, sec, nsec, hi) = unsafe {
        (
            AtomicU32::from_ptr(&raw mut (*shared).wc_version),
            AtomicU32::from_ptr(&raw mut (*shared).wc_sec),
            AtomicU32::from_ptr(&raw mut (*shared).wc_nsec),
            AtomicU32::from_ptr(&raw mut (*shared).wc_sec_hi),
        )
    };
    read_versioned(version, || Wallclock {
        sec: (u64::from(hi.load(Relaxed)) << 32) | u64::from(sec.load(Relaxed)),
        nsec: nsec.load(Relaxed),
    })
}

/// The counter the clock reads: the TSC on x86-64, `CNTVCT` on ARM, the mock's with feature `mock`.
#[inline(always)]
fn counter() -> u64 {
    #[cfg(feature = "mock")]
    return crate::mock::counter();
    #[cfg(all(not(feature = "mock"), target_arch = "aarch64"))]
    {
        let t: u64;
        // SAFETY: reading the virtual counter has no side effect; EL1 may always read it. The `isb`
        // keeps the read from being done ahead of the instructions before it.
        unsafe {
            core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) t, options(nomem, nostack, preserves_flags))
        };
        t
    }
    #[cfg(all(not(feature = "mock"), target_arch = "arm"))]
    {
        let (lo, hi): (u32, u32);
        // SAFETY: reading the virtual counter (a 64-bit coprocessor register) has no side effect; PL1
        // may always read it. The `isb` as above.
        unsafe {
            core::arch::asm!("isb", "mrrc p15, 1, {}, {}, c14", out(reg) lo, out(reg) hi,
                options(nomem, nostack, preserves_flags))
        };
        (u64::from(hi) << 32) | u64::from(lo)
    }
    #[cfg(all(not(feature = "mock"), target_arch = "x86_64"))]
    {
        let (lo, hi): (u32, u32);
        // SAFETY: `rdtsc` has no side effect; the `lfence` keeps it from being done ahead of the loads
        // before it (Linux's `rdtsc_ordered`).
        unsafe {
            core::arch::asm!(
                "lfence",
                "rdtsc",
                out("eax") lo,
                out("edx") hi,
                options(nomem, nostack, preserves_flags)
            )
        };
        (u64::from(hi) << 32) | u64::from(lo)
    }
}

/// The counter's frequency on ARM (`CNTFRQ`), the mock's with feature `mock`.
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
#[inline(always)]
fn counter_frequency() -> u64 {
    #[cfg(feature = "mock")]
    return crate::mock::counter_frequency();
    #[cfg(all(not(feature = "mock"), target_arch = "aarch64"))]
    {
        let f: u64;
        // SAFETY: reading the frequency register has no side effect.
        unsafe {
            core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack, preserves_flags))
        };
        f
    }
    #[cfg(all(not(feature = "mock"), target_arch = "arm"))]
    {
        let f: u32;
        // SAFETY: reading the frequency register has no side effect.
        unsafe {
            core::arch::asm!("mrc p15, 0, {}, c14, c0, 0", out(reg) f, options(nomem, nostack, preserves_flags))
        };
        u64::from(f)
    }
}

/// `ticks` of a counter at `freq` Hz, in nanoseconds, rounded down (Xen's `ticks_to_ns`, exact in 64
/// bits for any frequency below 2³⁴ Hz).
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
#[inline(always)]
const fn ticks_to_ns(ticks: u64, freq: u64) -> u64 {
    let secs = ticks / freq;
    let rest = ticks % freq; // < freq < 2^34, times 10^9 < 2^64
    secs.saturating_mul(1_000_000_000)
        .saturating_add(rest * 1_000_000_000 / freq)
}

/// How much earlier than its true value a lower bound of the ARM offset is taken: the rounding of two
/// conversions and the slack of reading the counter just after the runstate area.
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
const CALIBRATION_MARGIN_NS: u64 = 1_000;

/// The guest's monotonic clock and its relation to Xen system time (see the [module documentation](self)).
///
/// One `Clock` serves every vCPU on ARM (the counter is per system); on x86-64 it reads the
/// `vcpu_time_info` of the `vcpu_info` it was made with (Xen keeps the records of all vCPUs in step, so
/// any vCPU may read it). Its methods are safe and take `&self`: keep it in a `static` or pass it by
/// reference to the waits of [`sched`](super::sched) and [`Events`](super::evtchn::Events).
pub struct Clock {
    /// The shared info page, for the wall clock (none for `Clock::generic_timer`, ARM only).
    shared: Option<NonNull<SharedInfo>>,
    #[cfg(all(target_arch = "x86_64", target_os = "none"))]
    info: NonNull<VcpuTimeInfo>,
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    freq: u64,
    runstate: Option<NonNull<RunstateInfo>>,
    /// Lower bound of Xen system time − [`Clock::now`] (0 on x86-64, where they are one clock).
    offset: AtomicU64,
}

// SAFETY: `Clock` holds the addresses of memory Xen writes, which it only reads with atomic loads (the
// constructors' contract), and an atomic; any thread or interrupt handler may use it concurrently.
unsafe impl Send for Clock {}
// SAFETY: as above.
unsafe impl Sync for Clock {}

impl Clock {
    /// The clock of the domain whose shared info page is at `shared`, read through vCPU 0's slot of
    /// that page on x86-64 (see [`with_vcpu_info`](Clock::with_vcpu_info)).
    ///
    /// On ARM it reads the frequency `CNTFRQ`: [`Error::ENODEV`](super::Error::ENODEV) if it is 0
    /// (firmware that did not set it).
    ///
    /// # Safety
    ///
    /// `shared` must point to the domain's shared info page (or, in a test, to a `SharedInfo` standing in
    /// for it), valid and 8-aligned for as long as the `Clock` is used, and written by the guest only
    /// with atomic operations meanwhile (as [`Events::new`](super::evtchn::Events::new) asks).
    #[inline]
    pub unsafe fn new(shared: *mut SharedInfo) -> Result<Clock> {
        // SAFETY: forwarded; slot 0 lies inside `*shared`.
        unsafe { Clock::with_vcpu_info(shared, &raw mut (*shared).vcpu_info[0]) }
    }

    /// As [`new`](Clock::new), reading the `vcpu_time_info` of the `vcpu_info` at `vcpu` on x86-64 (the
    /// one [`register_vcpu_info`](super::vcpu::register_vcpu_info) moved); unused on ARM.
    ///
    /// # Safety
    ///
    /// As for [`new`](Clock::new), for both `shared` and `vcpu`.
    #[inline]
    pub unsafe fn with_vcpu_info(shared: *mut SharedInfo, vcpu: *mut VcpuInfo) -> Result<Clock> {
        #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
        let _ = vcpu;
        Ok(Clock {
            shared: NonNull::new(shared),
            #[cfg(all(target_arch = "x86_64", target_os = "none"))]
            // SAFETY: as above; `time` lies inside `*vcpu`.
            info: unsafe { NonNull::new_unchecked(&raw mut (*vcpu).time) },
            #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
            freq: match counter_frequency() {
                0 => return Err(Error::ENODEV),
                f => f,
            },
            runstate: None,
            offset: AtomicU64::new(0),
        })
    }

    /// The generic timer alone (ARM): no `unsafe`, no shared info page, so no wall clock
    /// ([`wallclock`](Clock::wallclock) is `None`); [`Error::ENODEV`](super::Error::ENODEV) if `CNTFRQ`
    /// is 0.
    ///
    /// ```
    /// # #[cfg(feature = "mock")] xen_hypercall::mock::set_counter(62_500_000, 62_500);
    /// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
    /// use xen_hypercall::xen::time::Clock;
    /// let clock = Clock::generic_timer()?;
    /// let t = clock.now(); // the time since the domain's creation
    /// assert!(clock.wallclock().is_none());
    /// # #[cfg(feature = "mock")] assert_eq!(t.as_nanos(), 1_000_000);
    /// # }
    /// # Ok::<(), xen_hypercall::xen::Error>(())
    /// ```
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    #[inline]
    pub fn generic_timer() -> Result<Clock> {
        Ok(Clock {
            shared: None,
            freq: match counter_frequency() {
                0 => return Err(Error::ENODEV),
                f => f,
            },
            runstate: None,
            offset: AtomicU64::new(0),
        })
    }

    /// The same clock, calibrated against Xen system time with the runstate area at `area` (ARM; see
    /// the [module documentation](self)), once now and then by [`calibrate`](Clock::calibrate). On
    /// x86-64 it changes nothing.
    ///
    /// # Safety
    ///
    /// `area` must be the area registered with
    /// [`register_runstate_memory_area`](super::vcpu::register_runstate_memory_area) for the vCPU that
    /// uses the clock (or one standing in for it), valid and 8-aligned for as long as the `Clock` is used,
    /// and not written by the guest meanwhile.
    #[inline]
    pub unsafe fn with_runstate(mut self, area: *mut RunstateInfo) -> Clock {
        self.runstate = NonNull::new(area);
        self.calibrate();
        self
    }

    /// The clock's current time.
    #[inline]
    pub fn now(&self) -> Instant {
        #[cfg(all(target_arch = "x86_64", target_os = "none"))]
        // SAFETY: `info` is the `vcpu_time_info` the constructor's contract keeps valid.
        return Instant(unsafe { system_time(self.info.as_ptr(), counter) });
        #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
        Instant(ticks_to_ns(counter(), self.freq))
    }

    /// The counter's frequency in Hz (ARM's `CNTFRQ`, which the clock divides by).
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    #[inline]
    pub fn frequency(&self) -> u64 {
        self.freq
    }

    /// The Xen system time at `at`, never later than the truth: exact on x86-64; on ARM `at` plus the
    /// largest lower bound of the offset seen so far (see the [module documentation](self)).
    #[inline]
    pub fn system_time_at(&self, at: Instant) -> u64 {
        at.0.saturating_add(self.offset.load(Relaxed))
    }

    /// [`system_time_at`](Clock::system_time_at) as a timeout for Xen: between 1 (0 would mean "none")
    /// and `i64::MAX`, since Xen's timers take a signed `s_time_t`, to which a later time would be
    /// negative, in the past, and fire at once.
    #[inline]
    pub fn timeout_at(&self, at: Instant) -> u64 {
        self.system_time_at(at).clamp(1, i64::MAX as u64)
    }

    /// The lower bound of Xen system time − [`now`](Clock::now) in use (0 on x86-64, and on ARM before
    /// any calibration).
    #[inline]
    pub fn offset_lower_bound(&self) -> u64 {
        self.offset.load(Relaxed)
    }

    /// Records that Xen's system time was at least `system_time` before this call (a value Xen reported):
    /// the offset's lower bound becomes at least `system_time − now()` (less a microsecond of margin for
    /// rounding). No effect on x86-64.
    #[inline]
    pub fn observe_system_time(&self, system_time: u64) {
        #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
        {
            let now = self.now();
            let bound = system_time
                .saturating_sub(now.0)
                .saturating_sub(CALIBRATION_MARGIN_NS);
            self.offset.fetch_max(bound, Relaxed);
        }
        #[cfg(all(target_arch = "x86_64", target_os = "none"))]
        let _ = system_time;
    }

    /// Refreshes the offset's lower bound from the runstate area, if the clock has one (ARM): its
    /// `state_entry_time` is the Xen system time at which the vCPU was last scheduled in. Cheap (two
    /// loads and a counter read); the timed waits call it after every wake-up. No effect on x86-64.
    #[inline]
    pub fn calibrate(&self) {
        #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
        if let Some(area) = self.runstate {
            // SAFETY: the area is valid and 8-aligned (`with_runstate`'s contract), written only by
            // Xen; the 64-bit field is read whole by an atomic load.
            let entry = unsafe { AtomicU64::from_ptr(&raw mut (*area.as_ptr()).state_entry_time) }
                .load(Acquire);
            if entry & super::vcpu::XEN_RUNSTATE_UPDATE == 0 {
                self.observe_system_time(entry);
            }
        }
    }

    /// Makes the offset's lower bound tight (ARM, with a runstate area): sleeps in `SCHEDOP_poll` (no
    /// ports) for growing times, from 100 µs, until Xen has descheduled and rescheduled the vCPU (the
    /// runstate's `state_entry_time` changed), then [calibrates](Clock::calibrate): the bound is then
    /// within the few microseconds between the vCPU's return and its counter read, and stays so (the
    /// offset is fixed). Each sleep is asked for at the bound, so it ends no later than its length by
    /// the guest's clock: the whole takes about the error it removes, at most `max`.
    ///
    /// `Ok(true)` once synchronised (at once on x86-64, where the clock is Xen's), `Ok(false)` without a
    /// runstate area or when `max` passed first; the errors of `SCHEDOP_poll`.
    ///
    /// Until then, and without it, a timed wait whose remaining time is shorter than the bound's error
    /// cannot block without risking a late wake-up: it polls again and again (correct, busy) until the
    /// deadline, or until Xen deschedules the vCPU and the next calibration tightens the bound.
    pub fn synchronize(&self, max: Duration) -> Result<bool> {
        #[cfg(all(target_arch = "x86_64", target_os = "none"))]
        {
            let _ = max;
            Ok(true)
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
        {
            let Some(area) = self.runstate else {
                return Ok(false);
            };
            // SAFETY: as in `calibrate`.
            let entry = unsafe { AtomicU64::from_ptr(&raw mut (*area.as_ptr()).state_entry_time) };
            let end = self.now() + max;
            let mut step = Duration::from_micros(100);
            loop {
                let before = entry.load(Acquire);
                let now = self.now();
                if now >= end {
                    return Ok(false);
                }
                let wake = now + step.min(end - now);
                super::sched::poll_until_system_time(&[], self.timeout_at(wake))?;
                self.calibrate();
                if entry.load(Acquire) != before {
                    return Ok(true);
                }
                step = step.saturating_mul(2);
            }
        }
    }

    /// The wall clock of the shared info page ([`read_wallclock`]); `None` for a clock made without it
    /// (`generic_timer`, ARM only).
    #[inline]
    pub fn wallclock_base(&self) -> Option<Wallclock> {
        // SAFETY: `shared` is the shared info page the constructor's contract keeps valid.
        self.shared.map(|p| unsafe { read_wallclock(p.as_ptr()) })
    }

    /// The time since the Unix epoch: the wall clock of the shared info page plus [`now`](Clock::now)
    /// (what Linux's `xen_read_wallclock` does on both architectures). See the
    /// [module documentation](self) for what Xen puts there on ARM. `None` without a shared info page.
    #[inline]
    pub fn wallclock(&self) -> Option<Duration> {
        let base = self.wallclock_base()?;
        Some(base.since_epoch().saturating_add(self.now().since_origin()))
    }
}

/// `VCPUOP_set_singleshot_timer` (x86-64; refused on ARM with `EINVAL`).
pub const VCPUOP_SET_SINGLESHOT_TIMER: usize = 8;
/// `VCPUOP_stop_singleshot_timer` (x86-64; refused on ARM with `EINVAL`).
pub const VCPUOP_STOP_SINGLESHOT_TIMER: usize = 9;
/// `VCPUOP_stop_periodic_timer` (x86-64; refused on ARM with `EINVAL`).
pub const VCPUOP_STOP_PERIODIC_TIMER: usize = 7;
/// `VCPU_SSHOTTMR_future`: asks for `ETIME` when the time has already passed. Xen 4.17 ignores it and
/// raises the timer event at once (`xen/common/domain.c`).
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1;

/// `struct vcpu_set_singleshot_timer` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuSetSingleshotTimer {
    /// Absolute Xen system time (ns) of the timer event.
    pub timeout_abs_ns: u64,
    /// `VCPU_SSHOTTMR_*`.
    pub flags: u32,
    /// Padding to 8 bytes (implicit in C).
    pub _pad: u32,
}

crate::impl_plain! {
    VcpuSetSingleshotTimer { timeout_abs_ns: u64, flags: u32, _pad: u32 };
}

/// Arms the one-shot timer of `vcpu` (the calling vCPU: Xen refuses another with `EINVAL`) for the
/// absolute Xen system time `system_time` (`VCPUOP_set_singleshot_timer`): Xen raises
/// [`Virq::TIMER`](super::evtchn::Virq::TIMER) then, at once if it has passed. Re-arming replaces the
/// previous time.
///
/// x86-64 only in effect: Xen on ARM refuses it with [`Error::EINVAL`](super::Error::EINVAL) (see the
/// [module documentation](self)). [`set_timer`] takes an [`Instant`] instead.
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::time::set_singleshot_timer(0, 5_000_000_000)?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn set_singleshot_timer(vcpu: u32, system_time: u64) -> Result<()> {
    let t = VcpuSetSingleshotTimer {
        timeout_abs_ns: system_time,
        flags: 0,
        _pad: 0,
    };
    // SAFETY: Xen reads the `vcpu_set_singleshot_timer` structure, borrowed during the call.
    unit(unsafe {
        call3::<{ nr::VCPU_OP }>(
            Arg::val(VCPUOP_SET_SINGLESHOT_TIMER),
            Arg::val(vcpu as usize),
            Arg::input(&t),
        )
    })
}

/// Arms the calling vCPU's (`vcpu`) one-shot timer for `deadline` on `clock`: [`set_singleshot_timer`]
/// at [`Clock::timeout_at`]`(deadline)`, which is never later than the deadline (on ARM, where Xen
/// refuses the call anyway, it may be earlier).
#[inline]
pub fn set_timer(clock: &Clock, vcpu: u32, deadline: Instant) -> Result<()> {
    set_singleshot_timer(vcpu, clock.timeout_at(deadline))
}

/// Disarms the one-shot timer of the calling vCPU `vcpu` (`VCPUOP_stop_singleshot_timer`); refused on
/// ARM with `EINVAL`.
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::time::stop_singleshot_timer(0)?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn stop_singleshot_timer(vcpu: u32) -> Result<()> {
    // SAFETY: VCPUOP_stop_singleshot_timer takes no argument structure (NULL).
    unit(unsafe {
        call3::<{ nr::VCPU_OP }>(
            Arg::val(VCPUOP_STOP_SINGLESHOT_TIMER),
            Arg::val(vcpu as usize),
            Arg::val(0),
        )
    })
}

/// Stops the periodic timer of `vcpu` (`VCPUOP_stop_periodic_timer`): Xen gives every x86-64 PV vCPU one
/// that raises [`Virq::TIMER`](super::evtchn::Virq::TIMER) every 10 ms (`xen/arch/x86/pv/domain.c`),
/// which a guest waiting for its one-shot timer on that VIRQ would take for it. Refused on ARM with
/// `EINVAL`.
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::time::stop_periodic_timer(0)?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn stop_periodic_timer(vcpu: u32) -> Result<()> {
    // SAFETY: VCPUOP_stop_periodic_timer takes no argument structure (NULL).
    unit(unsafe {
        call3::<{ nr::VCPU_OP }>(
            Arg::val(VCPUOP_STOP_PERIODIC_TIMER),
            Arg::val(vcpu as usize),
            Arg::val(0),
        )
    })
}

/// Arms the calling vCPU's one-shot timer for the absolute Xen system time `system_time`, or disarms it
/// with 0 (`HYPERVISOR_set_timer_op`, x86-64 only: ARM's hypercall table has no entry for it).
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
#[inline]
pub fn set_timer_op(system_time: u64) -> Result<()> {
    // SAFETY: set_timer_op takes a value, no memory.
    unit(unsafe { super::call::call1::<{ nr::SET_TIMER_OP }>(Arg::val(system_time as usize)) })
}

#[cfg(all(test, feature = "mock"))]
mod tests {
    use super::*;

    #[test]
    fn versioned_read_retries_a_change_seen_mid_read() {
        let version = AtomicU32::new(6);
        let mut attempts = 0;
        let got = read_versioned(&version, || {
            attempts += 1;
            if attempts == 1 {
                // Xen starts and finishes an update while the fields are read.
                version.store(7, Relaxed);
                version.store(8, Relaxed);
                return "torn";
            }
            "whole"
        });
        assert_eq!((got, attempts), ("whole", 2));
    }

    #[test]
    fn versioned_read_waits_out_an_odd_version() {
        let version = AtomicU32::new(9);
        let mut attempts = 0;
        assert_eq!(try_read_versioned(&version, &mut || attempts += 1), None);
        assert_eq!(attempts, 0, "no field is read while the version is odd");
        version.store(10, Relaxed);
        assert_eq!(
            try_read_versioned(&version, &mut || attempts += 1),
            Some(())
        );
        assert_eq!(attempts, 1);
    }
}
