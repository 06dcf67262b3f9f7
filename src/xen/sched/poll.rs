//! `SCHEDOP_poll` with Xen's raw timeout, the one `sched_op` that the clock itself needs
//! ([`Clock::synchronize`](crate::xen::time::Clock::synchronize) sleeps with it): below both
//! [`sched`](super), whose timed polls take the clock, and [`time`](crate::xen::time). Re-exported by
//! [`sched`](super).

use crate::xen::call::{Arg, call2};
use crate::xen::{Error, Port, Result, nr, unit};

/// `SCHEDOP_poll`.
pub const SCHEDOP_POLL: usize = 3;

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

crate::impl_plain! {
    SchedPoll { ports: u64, nr_ports: u32, _pad: u32, timeout: u64 };
}

/// `SCHEDOP_poll` with Xen's raw timeout: blocks until one of `ports` has an event pending or Xen system
/// time reaches `system_time`.
///
/// - `system_time` is an **absolute** Xen system time in nanoseconds (Xen's `NOW()`; see
///   [`time`](crate::xen::time) for how a guest relates its clock to it), not a duration; 0 means no
///   timeout. A time already past returns at once.
/// - The call does not say which port fired, nor whether the timeout did: it returns `Ok(())` either
///   way. The caller learns it from the pending bits in the shared info page, with
///   [`Events::clear_pending`](crate::xen::evtchn::Events::clear_pending) for one port or
///   [`Events::take_pending`](crate::xen::evtchn::Events::take_pending) for all; a port still not pending
///   after the return means the timeout (or a spurious wake-up).
/// - It returns at once if one of the ports is already pending (masked or not), and also when the vCPU
///   has an upcall to take with interrupts unmasked; it does not clear anything.
/// - Xen refuses more than 128 ports with [`Error::EINVAL`].
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::sched::poll_until_system_time(&[xen_hypercall::xen::evtchn::Port(3)], 0)?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn poll_until_system_time(ports: &[Port], system_time: u64) -> Result<()> {
    let nr_ports = u32::try_from(ports.len()).map_err(|_| Error::EINVAL)?;
    let p = SchedPoll {
        ports: ports.as_ptr() as usize as u64,
        nr_ports,
        _pad: 0,
        timeout: system_time,
    };
    // SAFETY: Xen reads `p` and the `nr_ports` ports behind `p.ports` (`Port` is a transparent u32, the
    // layout of `evtchn_port_t`); both stay borrowed during the call.
    unit(unsafe {
        call2::<{ nr::SCHED_OP }>(Arg::val(SCHEDOP_POLL), Arg::input(&p).handle_in(ports))
    })
}
