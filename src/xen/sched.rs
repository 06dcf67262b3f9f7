//! `sched_op`: yielding, blocking, polling and shutting down (`HYPERVISOR_sched_op`, declared arity 2).

use super::call::{Arg, call2};
use super::evtchn::Port;
use super::{DomId, Error, Result, nr, unit};

/// `SCHEDOP_yield`.
pub const SCHEDOP_YIELD: usize = 0;
/// `SCHEDOP_block`.
pub const SCHEDOP_BLOCK: usize = 1;
/// `SCHEDOP_shutdown`.
pub const SCHEDOP_SHUTDOWN: usize = 2;
/// `SCHEDOP_poll`.
pub const SCHEDOP_POLL: usize = 3;
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

/// `struct sched_poll`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedPoll {
    /// Guest handle (a 64-bit slot) of the array of ports to poll.
    pub ports: u64,
    /// How many ports the array holds.
    pub nr_ports: u32,
    /// Padding to the 8-byte alignment of `timeout` (implicit in C).
    pub _pad: u32,
    /// Absolute system time (ns) at which to give up; 0 waits forever.
    pub timeout: u64,
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
    SchedPoll { ports: u64, nr_ports: u32, _pad: u32, timeout: u64 };
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

/// Blocks until one of `ports` has an event pending or system time reaches `timeout` (`SCHEDOP_poll`).
///
/// - `timeout` is an **absolute** Xen system time in nanoseconds (the clock of
///   [`VcpuTimeInfo::system_time`](super::vcpu::VcpuTimeInfo::system_time)), not a duration; 0 means no
///   timeout. A time already past returns at once.
/// - The call does not say which port fired, nor whether the timeout did: it returns `Ok(())` either
///   way. The caller learns it from the pending bits in the shared info page, with
///   [`Events::clear_pending`](super::evtchn::Events::clear_pending) for one port or
///   [`Events::take_pending`](super::evtchn::Events::take_pending) for all; a port still not pending
///   after the return means the timeout (or a spurious wake-up).
/// - It returns at once if one of the ports is already pending (masked or not), and also when the vCPU
///   has an upcall to take with interrupts unmasked; it does not clear anything.
/// - Xen refuses more than 128 ports with [`Error::EINVAL`].
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::sched::poll(&[xen_hypercall::xen::evtchn::Port(3)], 0)?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn poll(ports: &[Port], timeout: u64) -> Result<()> {
    let nr_ports = u32::try_from(ports.len()).map_err(|_| Error::EINVAL)?;
    let p = SchedPoll {
        ports: ports.as_ptr() as usize as u64,
        nr_ports,
        _pad: 0,
        timeout,
    };
    // SAFETY: Xen reads `p` and the `nr_ports` ports behind `p.ports` (`Port` is a transparent u32, the
    // layout of `evtchn_port_t`); both stay borrowed during the call.
    unit(unsafe {
        call2::<{ nr::SCHED_OP }>(Arg::val(SCHEDOP_POLL), Arg::input(&p).handle_in(ports))
    })
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
