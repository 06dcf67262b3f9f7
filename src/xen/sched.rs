//! `sched_op`: yielding, blocking, polling and shutting down (`HYPERVISOR_sched_op`, declared arity 2).

use core::time::Duration;

use super::call::{Arg, call2};
use super::time::{Clock, Instant};
use super::{DomId, Error, Port, Result, nr, unit};

mod poll;
pub use poll::{SCHEDOP_POLL, SchedPoll, poll_until_system_time};

/// `SCHEDOP_yield`.
pub const SCHEDOP_YIELD: usize = 0;
/// `SCHEDOP_block`.
pub const SCHEDOP_BLOCK: usize = 1;
/// `SCHEDOP_shutdown`.
pub const SCHEDOP_SHUTDOWN: usize = 2;
/// `SCHEDOP_remote_shutdown`.
pub const SCHEDOP_REMOTE_SHUTDOWN: usize = 4;
/// `SCHEDOP_shutdown_code`.
pub const SCHEDOP_SHUTDOWN_CODE: usize = 5;
/// `SCHEDOP_watchdog`.
pub const SCHEDOP_WATCHDOG: usize = 6;

/// Why a domain shuts down (`SHUTDOWN_*` of `sched.h`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShutdownReason {
    /// `SHUTDOWN_poweroff`: exited normally; clean up and kill.
    Poweroff = 0,
    /// `SHUTDOWN_reboot`: clean up, kill, and restart.
    Reboot = 1,
    /// `SHUTDOWN_suspend`: clean up, save suspend info, kill.
    Suspend = 2,
    /// `SHUTDOWN_crash`: tell the toolstack the domain crashed.
    Crash = 3,
    /// `SHUTDOWN_watchdog`: restart because a watchdog expired.
    Watchdog = 4,
    /// `SHUTDOWN_soft_reset`: ask the toolstack for a soft reset.
    SoftReset = 5,
}

/// `struct sched_shutdown`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedShutdown {
    /// A `SHUTDOWN_*` reason.
    pub reason: u32,
}

/// `struct sched_remote_shutdown`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedRemoteShutdown {
    /// The domain to shut down.
    pub domain_id: DomId,
    /// Padding (implicit in C).
    pub _pad: u16,
    /// A `SHUTDOWN_*` reason.
    pub reason: u32,
}

/// `struct sched_watchdog`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedWatchdog {
    /// The watchdog: 0 to create one, else the id [`watchdog`] returned.
    pub id: u32,
    /// Seconds until it fires; 0 destroys it.
    pub timeout: u32,
}

crate::impl_plain! {
    SchedShutdown { reason: u32 };
    SchedRemoteShutdown { domain_id: DomId, _pad: u16, reason: u32 };
    SchedWatchdog { id: u32, timeout: u32 };
}

/// Gives up the physical CPU to another vCPU that is ready to run (`SCHEDOP_yield`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::sched::yield_now()?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn yield_now() -> Result<()> {
    // SAFETY: SCHEDOP_yield takes no argument structure (NULL).
    unit(unsafe { call2::<{ nr::SCHED_OP }>(Arg::val(SCHEDOP_YIELD), Arg::val(0)) })
}

/// Blocks the vCPU until an event is pending for it (`SCHEDOP_block`); returns at once if one already is.
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::sched::block()?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn block() -> Result<()> {
    // SAFETY: SCHEDOP_block takes no argument structure (NULL).
    unit(unsafe { call2::<{ nr::SCHED_OP }>(Arg::val(SCHEDOP_BLOCK), Arg::val(0)) })
}

/// Blocks until one of `ports` has an event pending or `clock` reaches `deadline` (`SCHEDOP_poll`);
/// [`Error::ETIMEDOUT`] if the clock had reached it when Xen returned.
///
/// - Xen's timeout is [`Clock::timeout_at`]`(deadline)`: exact on x86-64, never later than the
///   deadline on ARM (see [`time`](super::time)), so the call may return early, before the deadline and
///   with no port pending. It returns `Ok(())` then, as after an event or a spurious wake-up: the caller
///   looks at the pending bits ([`Events::clear_pending`](super::evtchn::Events::clear_pending)) and
///   polls again until the deadline, as [`Events::wait_until`](super::evtchn::Events::wait_until) does.
///   After the call the clock is [calibrated](Clock::calibrate) (the vCPU was just scheduled in).
/// - `ETIMEDOUT` says the deadline passed, not that no port fired: a port may have become pending in
///   the meantime.
/// - It returns at once if one of the ports is already pending (masked or not), and also when the vCPU
///   has an upcall to take with interrupts unmasked; it does not clear anything.
/// - Xen refuses more than 128 ports with [`Error::EINVAL`].
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(feature = "mock")] {
/// use core::time::Duration;
/// use xen_hypercall::xen::{Error, evtchn::Port, sched, time::Clock, vcpu::SharedInfo};
/// # let shared: *mut SharedInfo = Box::leak(Box::new(SharedInfo::default()));
/// # xen_hypercall::mock::set_default(|_| { xen_hypercall::mock::advance_counter(62_500_000); 0 });
/// // SAFETY: `shared` is the shared info page (here a stand-in), valid for the whole run.
/// let clock = unsafe { Clock::new(shared) }?;
/// let deadline = clock.now() + Duration::from_millis(50);
/// match sched::poll_until(&[Port(3)], &clock, deadline) {
///     Ok(()) => { /* an event, or an early wake-up: look at port 3's pending bit */ }
///     Err(Error::ETIMEDOUT) => { /* 50 ms have passed */ }
///     Err(e) => return Err(e),
/// }
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn poll_until(ports: &[Port], clock: &Clock, deadline: Instant) -> Result<()> {
    poll_until_system_time(ports, clock.timeout_at(deadline))?;
    clock.calibrate();
    if clock.now() >= deadline {
        return Err(Error::ETIMEDOUT);
    }
    Ok(())
}

/// [`poll_until`] `timeout` from now on `clock`.
///
/// ```
/// # #[cfg(feature = "mock")] {
/// # xen_hypercall::mock::set_default(|_| { xen_hypercall::mock::advance_counter(62_500_000); 0 });
/// use core::time::Duration;
/// use xen_hypercall::xen::{Error, evtchn::Port, sched, time::Clock, vcpu::SharedInfo};
/// # let shared: *mut SharedInfo = Box::leak(Box::new(SharedInfo::default()));
/// // SAFETY: `shared` is the shared info page (here a stand-in), valid for the whole run.
/// let clock = unsafe { Clock::new(shared) }?;
/// // A second passes during the call here.
/// assert_eq!(sched::poll(&[Port(3)], &clock, Duration::from_millis(50)), Err(Error::ETIMEDOUT));
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn poll(ports: &[Port], clock: &Clock, timeout: Duration) -> Result<()> {
    poll_until(ports, clock, clock.now() + timeout)
}

/// Blocks until one of `ports` has an event pending, with no timeout (`SCHEDOP_poll` with timeout 0):
/// it returns `Ok(())` after an event or a spurious wake-up, like [`poll_until`].
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::sched::poll_forever(&[xen_hypercall::xen::evtchn::Port(3)])?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn poll_forever(ports: &[Port]) -> Result<()> {
    poll_until_system_time(ports, 0)
}

#[inline(always)]
fn shutdown_op(cmd: usize, reason: ShutdownReason) -> Result<()> {
    let s = SchedShutdown {
        reason: reason as u32,
    };
    // SAFETY: Xen reads the `sched_shutdown` structure, borrowed during the call.
    unit(unsafe { call2::<{ nr::SCHED_OP }>(Arg::val(cmd), Arg::input(&s)) })
}

/// Shuts the domain down for `reason` (`SCHEDOP_shutdown`).
///
/// For every reason but [`ShutdownReason::Suspend`] the call does not return on success (the domain is
/// destroyed or restarted); after a suspend it returns when the domain is resumed.
///
/// ```no_run
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::sched::shutdown(xen_hypercall::xen::sched::ShutdownReason::Poweroff)?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn shutdown(reason: ShutdownReason) -> Result<()> {
    shutdown_op(SCHEDOP_SHUTDOWN, reason)
}

/// Records the reason to report if the domain later dies without a shutdown of its own (for example on a
/// crash), without shutting down now (`SCHEDOP_shutdown_code`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::sched::shutdown_code(xen_hypercall::xen::sched::ShutdownReason::Crash)?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn shutdown_code(reason: ShutdownReason) -> Result<()> {
    shutdown_op(SCHEDOP_SHUTDOWN_CODE, reason)
}

/// Shuts down domain `dom` for `reason` (`SCHEDOP_remote_shutdown`); needs privilege over `dom` (dom0 or
/// a domain the XSM policy allows), else [`Error::EPERM`].
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, sched::{self, ShutdownReason}};
/// sched::remote_shutdown(DomId(1), ShutdownReason::Poweroff)?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn remote_shutdown(dom: DomId, reason: ShutdownReason) -> Result<()> {
    let r = SchedRemoteShutdown {
        domain_id: dom,
        _pad: 0,
        reason: reason as u32,
    };
    // SAFETY: Xen reads the `sched_remote_shutdown` structure, borrowed during the call.
    unit(unsafe { call2::<{ nr::SCHED_OP }>(Arg::val(SCHEDOP_REMOTE_SHUTDOWN), Arg::input(&r)) })
}

/// Creates, re-arms or destroys a domain watchdog (`SCHEDOP_watchdog`).
///
/// - `id` 0 creates a watchdog that fires in `timeout` seconds and returns its id (from 1);
/// - `id` non-zero re-arms watchdog `id` for `timeout` seconds (returns `id`), or destroys it when
///   `timeout` is 0.
///
/// When a watchdog fires, Xen shuts the domain down with [`ShutdownReason::Watchdog`]. Xen refuses an
/// unknown `id` with [`Error::EINVAL`] and a creation beyond its slots (two per domain) with
/// [`Error::ENOSPC`].
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::sched;
/// let id = sched::watchdog(0, 30)?; // create, 30 s
/// sched::watchdog(id, 30)?; // pet it
/// sched::watchdog(id, 0)?; // destroy it
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn watchdog(id: u32, timeout: u32) -> Result<u32> {
    let w = SchedWatchdog { id, timeout };
    // SAFETY: Xen reads the `sched_watchdog` structure, borrowed during the call.
    let ret = Error::check(unsafe {
        call2::<{ nr::SCHED_OP }>(Arg::val(SCHEDOP_WATCHDOG), Arg::input(&w))
    })?;
    Ok(if id == 0 { ret as u32 } else { id })
}
