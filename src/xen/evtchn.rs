//! `event_channel_op`: event channels (`HYPERVISOR_event_channel_op`, declared arity 2).

use super::call::{Arg, call2};
use super::{DomId, Plain, Result, nr, unit};

/// `EVTCHNOP_bind_interdomain`.
pub const EVTCHNOP_BIND_INTERDOMAIN: usize = 0;
/// `EVTCHNOP_bind_virq`.
pub const EVTCHNOP_BIND_VIRQ: usize = 1;
/// `EVTCHNOP_close`.
pub const EVTCHNOP_CLOSE: usize = 3;
/// `EVTCHNOP_send`.
pub const EVTCHNOP_SEND: usize = 4;
/// `EVTCHNOP_status`.
pub const EVTCHNOP_STATUS: usize = 5;
/// `EVTCHNOP_alloc_unbound`.
pub const EVTCHNOP_ALLOC_UNBOUND: usize = 6;
/// `EVTCHNOP_bind_ipi`.
pub const EVTCHNOP_BIND_IPI: usize = 7;
/// `EVTCHNOP_bind_vcpu`.
pub const EVTCHNOP_BIND_VCPU: usize = 8;
/// `EVTCHNOP_unmask`.
pub const EVTCHNOP_UNMASK: usize = 9;

/// An event channel port (`evtchn_port_t`).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port(pub u32);

/// A virtual IRQ (`VIRQ_*` of `xen.h`), for [`bind_virq`].
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Virq(pub u32);

impl Virq {
    /// `VIRQ_TIMER`: the vCPU's timer fired (per vCPU).
    pub const TIMER: Virq = Virq(0);
    /// `VIRQ_DEBUG`: request to dump debug information (per vCPU).
    pub const DEBUG: Virq = Virq(1);
    /// `VIRQ_CONSOLE`: bytes received on the emergency console (dom0).
    pub const CONSOLE: Virq = Virq(2);
    /// `VIRQ_DOM_EXC`: exceptional event for some domain (dom0).
    pub const DOM_EXC: Virq = Virq(3);
    /// `VIRQ_TBUF`: trace buffer has records (dom0).
    pub const TBUF: Virq = Virq(4);
    /// `VIRQ_DEBUGGER`: a domain paused for debugging (dom0).
    pub const DEBUGGER: Virq = Virq(6);
    /// `VIRQ_XENOPROF`: new profiling sample (per vCPU).
    pub const XENOPROF: Virq = Virq(7);
    /// `VIRQ_CON_RING`: bytes received on the console ring (dom0).
    pub const CON_RING: Virq = Virq(8);
    /// `VIRQ_PCPU_STATE`: physical CPU state changed (dom0).
    pub const PCPU_STATE: Virq = Virq(9);
    /// `VIRQ_MEM_EVENT`: a memory event occurred (dom0).
    pub const MEM_EVENT: Virq = Virq(10);
    /// `VIRQ_ARGO`: Argo message notification.
    pub const ARGO: Virq = Virq(11);
    /// `VIRQ_ENOMEM`: Xen is low on heap memory (dom0).
    pub const ENOMEM: Virq = Virq(12);
    /// `VIRQ_XENPMU`: PMC interrupt (per vCPU).
    pub const XENPMU: Virq = Virq(13);
}

/// `struct evtchn_alloc_unbound`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocUnbound {
    /// IN: the domain the port is allocated in.
    pub dom: DomId,
    /// IN: the domain allowed to bind to it.
    pub remote_dom: DomId,
    /// OUT: the new port.
    pub port: Port,
}

/// `struct evtchn_bind_interdomain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BindInterdomain {
    /// IN: the remote domain.
    pub remote_dom: DomId,
    /// Padding (implicit in C).
    pub _pad: u16,
    /// IN: the remote domain's unbound port.
    pub remote_port: Port,
    /// OUT: the local port.
    pub local_port: Port,
}

/// `struct evtchn_bind_virq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BindVirq {
    /// IN: the `VIRQ_*`.
    pub virq: u32,
    /// IN: the vCPU to deliver it to.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: Port,
}

/// `struct evtchn_send`, `struct evtchn_close` and `struct evtchn_unmask`: a port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortArg {
    /// The port.
    pub port: Port,
}

/// `struct evtchn_status`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnStatus {
    /// IN: the domain owning the port.
    pub dom: DomId,
    /// Padding (implicit in C).
    pub _pad: u16,
    /// IN: the port.
    pub port: Port,
    /// OUT: `EVTCHNSTAT_*`.
    pub status: u32,
    /// OUT: the vCPU the channel is bound to.
    pub vcpu: u32,
    /// OUT: the union `u`, as raw words: `unbound.dom` / `interdomain.dom` are the low 16 bits of
    /// `u[0]`, `interdomain.port` is `u[1]`, `pirq` / `virq` are `u[0]`.
    pub u: [u32; 2],
}

// SAFETY: transparent wrappers of u32 and repr(C) structs of integers.
unsafe impl Plain for Port {}
// SAFETY: as above.
unsafe impl Plain for AllocUnbound {}
// SAFETY: as above.
unsafe impl Plain for BindInterdomain {}
// SAFETY: as above.
unsafe impl Plain for BindVirq {}
// SAFETY: as above.
unsafe impl Plain for PortArg {}
// SAFETY: as above.
unsafe impl Plain for EvtchnStatus {}

/// `EVTCHNSTAT_closed`.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// `EVTCHNSTAT_unbound`.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// `EVTCHNSTAT_interdomain`.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// `EVTCHNSTAT_pirq`.
pub const EVTCHNSTAT_PIRQ: u32 = 3;
/// `EVTCHNSTAT_virq`.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// `EVTCHNSTAT_ipi`.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// What a port is bound to, decoded from [`EvtchnStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not in use.
    Closed,
    /// Waiting for `remote` to bind to it.
    Unbound {
        /// The domain allowed to bind.
        remote: DomId,
    },
    /// Connected to `port` of domain `dom`.
    Interdomain {
        /// The remote domain.
        dom: DomId,
        /// The remote port.
        port: Port,
    },
    /// Bound to a physical IRQ.
    Pirq(u32),
    /// Bound to a virtual IRQ.
    Virq(Virq),
    /// Bound to an inter-processor interrupt.
    Ipi,
    /// An `EVTCHNSTAT_*` value this crate does not know.
    Unknown(u32),
}

/// The status of a port: what it is bound to and which vCPU it notifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// What the port is bound to.
    pub state: State,
    /// The vCPU its events are delivered to.
    pub vcpu: u32,
}

impl EvtchnStatus {
    /// Decodes the OUT fields.
    #[inline]
    pub fn decode(&self) -> Status {
        let state = match self.status {
            EVTCHNSTAT_CLOSED => State::Closed,
            EVTCHNSTAT_UNBOUND => State::Unbound {
                remote: DomId(self.u[0] as u16),
            },
            EVTCHNSTAT_INTERDOMAIN => State::Interdomain {
                dom: DomId(self.u[0] as u16),
                port: Port(self.u[1]),
            },
            EVTCHNSTAT_PIRQ => State::Pirq(self.u[0]),
            EVTCHNSTAT_VIRQ => State::Virq(Virq(self.u[0])),
            EVTCHNSTAT_IPI => State::Ipi,
            other => State::Unknown(other),
        };
        Status {
            state,
            vcpu: self.vcpu,
        }
    }
}

#[inline(always)]
fn op<T: Plain>(cmd: usize, arg: &mut T) -> Result<()> {
    // SAFETY: `arg` is the structure Xen expects for `cmd` (each caller pairs them), mutably borrowed for
    // the call; Xen keeps no reference to it.
    unit(unsafe { call2::<{ nr::EVENT_CHANNEL_OP }>(Arg::val(cmd), Arg::inout(arg)) })
}

/// Allocates a port in domain `dom` that domain `remote` may bind to (`EVTCHNOP_alloc_unbound`).
/// An unprivileged caller must pass [`DomId::SELF`] as `dom`; `remote` may be `SELF` for a loopback.
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, evtchn};
/// let port = evtchn::alloc_unbound(DomId::SELF, DomId::DOM0)?;
/// # let _ = port; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn alloc_unbound(dom: DomId, remote: DomId) -> Result<Port> {
    let mut a = AllocUnbound {
        dom,
        remote_dom: remote,
        port: Port(0),
    };
    op(EVTCHNOP_ALLOC_UNBOUND, &mut a)?;
    Ok(a.port)
}

/// Connects a new local port to the unbound `remote_port` of `remote` (`EVTCHNOP_bind_interdomain`).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, evtchn};
/// let local = evtchn::bind_interdomain(DomId::DOM0, evtchn::Port(5))?;
/// # let _ = local; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn bind_interdomain(remote: DomId, remote_port: Port) -> Result<Port> {
    let mut b = BindInterdomain {
        remote_dom: remote,
        _pad: 0,
        remote_port,
        local_port: Port(0),
    };
    op(EVTCHNOP_BIND_INTERDOMAIN, &mut b)?;
    Ok(b.local_port)
}

/// Binds virtual IRQ `virq` on vCPU `vcpu` to a new port (`EVTCHNOP_bind_virq`).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::evtchn::{self, Virq};
/// let timer = evtchn::bind_virq(Virq::TIMER, 0)?;
/// # let _ = timer; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn bind_virq(virq: Virq, vcpu: u32) -> Result<Port> {
    let mut b = BindVirq {
        virq: virq.0,
        vcpu,
        port: Port(0),
    };
    op(EVTCHNOP_BIND_VIRQ, &mut b)?;
    Ok(b.port)
}

/// Notifies the other end of `port` (`EVTCHNOP_send`). Sending on an unbound port of one's own succeeds;
/// on a closed port it fails with [`Error::EINVAL`](super::Error::EINVAL).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::evtchn::send(xen_hypercall::xen::evtchn::Port(1))?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn send(port: Port) -> Result<()> {
    op(EVTCHNOP_SEND, &mut PortArg { port })
}

/// Closes `port` (`EVTCHNOP_close`).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::evtchn::close(xen_hypercall::xen::evtchn::Port(1))?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn close(port: Port) -> Result<()> {
    op(EVTCHNOP_CLOSE, &mut PortArg { port })
}

/// Unmasks `port`, redelivering an event that arrived while it was masked (`EVTCHNOP_unmask`).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::evtchn::unmask(xen_hypercall::xen::evtchn::Port(1))?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn unmask(port: Port) -> Result<()> {
    op(EVTCHNOP_UNMASK, &mut PortArg { port })
}

/// The status of the caller's own `port` (`EVTCHNOP_status` for [`DomId::SELF`]).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::evtchn;
/// let status = evtchn::status(evtchn::Port(1))?;
/// # let _ = status; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn status(port: Port) -> Result<Status> {
    status_of(DomId::SELF, port)
}

/// The status of `port` of domain `dom` (`EVTCHNOP_status`; another domain needs privilege).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, evtchn};
/// let status = evtchn::status_of(DomId::SELF, evtchn::Port(1))?;
/// # let _ = status; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn status_of(dom: DomId, port: Port) -> Result<Status> {
    let mut s = EvtchnStatus {
        dom,
        port,
        ..EvtchnStatus::default()
    };
    op(EVTCHNOP_STATUS, &mut s)?;
    Ok(s.decode())
}

impl From<Port> for u32 {
    #[inline(always)]
    fn from(p: Port) -> u32 {
        p.0
    }
}
