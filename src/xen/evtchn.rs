//! `event_channel_op`: event channels (`HYPERVISOR_event_channel_op`, declared arity 2), and their
//! delivery through the 2-level ABI ([`Events`]).
//!
//! Xen delivers each port's events to one vCPU (a new port to vCPU 0; [`bind_ipi`] and [`bind_virq`] to
//! the vCPU named; [`bind_vcpu`] moves a port), but the pending and mask bits are the domain's: with more
//! than one vCPU, bind through a [`PortVcpus`] table and drain each vCPU with its own [`Events`] made
//! [`with_ports`](Events::with_ports), which takes only the ports bound to that vCPU.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use core::time::Duration;

use super::call::{Arg, call2};
use super::time::{Clock, Instant};
use super::vcpu::{SharedInfo, VcpuInfo};
use super::{DomId, Error, Plain, Result, nr, sched, unit};

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

pub use super::Port;

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

/// `struct evtchn_bind_ipi`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BindIpi {
    /// IN: the vCPU to notify.
    pub vcpu: u32,
    /// OUT: the new port.
    pub port: Port,
}

/// `struct evtchn_bind_vcpu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BindVcpu {
    /// IN: the port.
    pub port: Port,
    /// IN: the vCPU its events go to from now on.
    pub vcpu: u32,
}

crate::impl_plain! {
    BindIpi { vcpu: u32, port: Port };
    BindVcpu { port: Port, vcpu: u32 };
    AllocUnbound { dom: DomId, remote_dom: DomId, port: Port };
    BindInterdomain { remote_dom: DomId, _pad: u16, remote_port: Port, local_port: Port };
    BindVirq { virq: u32, vcpu: u32, port: Port };
    PortArg { port: Port };
    EvtchnStatus { dom: DomId, _pad: u16, port: Port, status: u32, vcpu: u32, u: [u32; 2] };
}

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

impl PortArg {
    /// The argument for `port`.
    #[inline(always)]
    pub const fn new(port: Port) -> PortArg {
        PortArg { port }
    }
}

impl EvtchnStatus {
    /// The query for port `port` of domain `dom`, its OUT fields zero.
    #[inline(always)]
    pub const fn new(dom: DomId, port: Port) -> EvtchnStatus {
        EvtchnStatus {
            dom,
            _pad: 0,
            port,
            status: 0,
            vcpu: 0,
            u: [0; 2],
        }
    }

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
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
/// The new local port starts **pending**: Xen sets its pending bit (and, unless it is masked, raises the
/// upcall on vCPU 0, where a new port is delivered) as it binds it, because notifications sent to the
/// remote unbound port before the bind would otherwise be lost (`evtchn_bind_interdomain` in
/// `xen/common/event_channel.c` calls `evtchn_port_set_pending` on the local port, "conservatively
/// always"). Expect one event on it at once, with nothing yet to read: a ring protocol checks its
/// indexes after each event anyway; code waiting for the first real notification takes this one first
/// ([`Events::clear_pending`]).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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

/// Allocates a port for inter-processor interrupts to vCPU `vcpu` of the caller's domain
/// (`EVTCHNOP_bind_ipi`): [`send`] on it notifies that vCPU.
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let ipi = xen_hypercall::xen::evtchn::bind_ipi(0)?;
/// # let _ = ipi; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn bind_ipi(vcpu: u32) -> Result<Port> {
    let mut b = BindIpi {
        vcpu,
        port: Port(0),
    };
    op(EVTCHNOP_BIND_IPI, &mut b)?;
    Ok(b.port)
}

/// Delivers the events of `port` to vCPU `vcpu` from now on (`EVTCHNOP_bind_vcpu`). Xen accepts it for
/// unbound, interdomain and global virq ports; per-vCPU virqs and IPIs keep their vCPU (`EINVAL`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::evtchn::bind_vcpu(xen_hypercall::xen::evtchn::Port(5), 1)?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn bind_vcpu(port: Port, vcpu: u32) -> Result<()> {
    op(EVTCHNOP_BIND_VCPU, &mut BindVcpu { port, vcpu })
}

/// Notifies the other end of `port` (`EVTCHNOP_send`). Sending on an unbound port of one's own succeeds;
/// on a closed port it fails with [`Error::EINVAL`](super::Error::EINVAL).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))]
/// xen_hypercall::xen::evtchn::send(xen_hypercall::xen::evtchn::Port(1))?;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn send(port: Port) -> Result<()> {
    op(EVTCHNOP_SEND, &mut PortArg { port })
}

/// An event channel this side notifies, and how many notifications (`EVTCHNOP_send`) it has sent: what
/// the user of a shared ring (the console, the xenstore client) keeps to tell the other end, and to
/// measure what its requests cost.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Notifier {
    port: Port,
    sent: u64,
}

impl Notifier {
    /// Notifies `port`, none sent yet.
    #[inline]
    pub(crate) const fn new(port: Port) -> Notifier {
        Notifier { port, sent: 0 }
    }

    /// The event channel.
    #[inline]
    pub(crate) const fn port(&self) -> Port {
        self.port
    }

    /// How many notifications were sent.
    #[inline]
    pub(crate) const fn sent(&self) -> u64 {
        self.sent
    }

    /// Notifies the other end ([`send`]), counted.
    #[inline]
    pub(crate) fn notify(&mut self) -> Result<()> {
        self.sent += 1;
        send(self.port)
    }
}

/// Closes `port` (`EVTCHNOP_close`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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

/// `EVTCHN_2L_NR_CHANNELS` on ARM: the ports of the 2-level ABI (64 words of 64 bits).
pub const NR_PORTS_2L: u32 = 64 * 64;

/// The words of a 2-level bitmap.
const WORDS_2L: usize = (NR_PORTS_2L / 64) as usize;

/// The ports delivered to one vCPU: a bitmap over the [`NR_PORTS_2L`] ports of the 2-level ABI, in atomic
/// words (512 bytes). A vCPU's [`Events`] made [`with_ports`](Events::with_ports) drains only the ports
/// set here. One of the rows of [`PortVcpus`], which keeps them.
pub struct VcpuPorts {
    words: [AtomicU64; WORDS_2L],
}

impl VcpuPorts {
    const fn filled(word: u64) -> VcpuPorts {
        VcpuPorts {
            words: [const { AtomicU64::new(0) }; WORDS_2L],
        }
        .with_all(word)
    }

    const fn with_all(self, word: u64) -> VcpuPorts {
        let mut words = self.words;
        let mut w = 0;
        while w < WORDS_2L {
            words[w] = AtomicU64::new(word);
            w += 1;
        }
        VcpuPorts { words }
    }

    /// Whether `port` is delivered to this vCPU; `false` beyond [`NR_PORTS_2L`].
    #[inline]
    pub fn contains(&self, port: Port) -> bool {
        Events::locate(port).is_some_and(|(w, b)| self.words[w].load(Ordering::Acquire) & b != 0)
    }

    /// The ports of word `w` (ports `64 * w ..`) delivered to this vCPU.
    #[inline(always)]
    fn word(&self, w: usize) -> u64 {
        self.words[w].load(Ordering::Acquire)
    }
}

/// Which vCPU each port is delivered to, for a domain of up to `N` vCPUs: what Linux keeps as
/// `cpu_evtchn_mask` (`drivers/xen/events/events_2l.c`), one [`VcpuPorts`] bitmap per vCPU, no
/// allocation, atomics only (a `static` shared by every vCPU and interrupt handler).
///
/// Xen raises a port's events on one vCPU, its `notify_vcpu_id`: a new port (`alloc_unbound`,
/// `bind_interdomain`) is on vCPU 0, a [`bind_ipi`] or [`bind_virq`] port on the vCPU named, and
/// [`bind_vcpu`] moves a port. But the pending bits are the domain's, and a vCPU's selector can name a
/// word holding other vCPUs' ports (Xen sets every selector bit when a `vcpu_info` is registered, "so
/// nothing gets lost"): a drain that took every pending port of the selected words would take events
/// meant for another vCPU, which then waits for ever. So each vCPU drains with
/// [`Events::with_ports`]`(table.vcpu(n))`, which takes only the ports bound to it, and the binding
/// operations go through this table, which does the hypercall and records the vCPU:
/// [`bind_ipi`](PortVcpus::bind_ipi), [`bind_virq`](PortVcpus::bind_virq),
/// [`bind_vcpu`](PortVcpus::bind_vcpu), [`close`](PortVcpus::close) (a closed port's number is reused
/// by the next new port, which Xen puts on vCPU 0), or [`note`](PortVcpus::note) for a binding made
/// otherwise. Every port starts on vCPU 0, as in Xen.
///
/// ```
/// use xen_hypercall::xen::evtchn::{Events, Port, PortVcpus};
/// use xen_hypercall::xen::vcpu::SharedInfo;
///
/// static PORTS: PortVcpus<2> = PortVcpus::new();
/// # #[cfg(feature = "mock")] xen_hypercall::mock::respond(|c| {
/// #     c.update(1, |b: &mut xen_hypercall::xen::evtchn::BindIpi| b.port = Port(9)); 0 });
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// let ipi = PORTS.bind_ipi(1)?; // an IPI to vCPU 1
/// assert_eq!(PORTS.vcpu_of(ipi), Some(1));
/// # }
/// let mut page = SharedInfo::default();
/// // SAFETY: `page` outlives `events` and is accessed through it only.
/// let events = unsafe { Events::new(&raw mut page) }.with_ports(PORTS.vcpu(0).unwrap());
/// # let _ = events;
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
pub struct PortVcpus<const N: usize> {
    vcpus: [VcpuPorts; N],
}

impl<const N: usize> Default for PortVcpus<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> PortVcpus<N> {
    /// Every port on vCPU 0 (none anywhere for `N == 0`).
    #[inline]
    pub const fn new() -> Self {
        let mut vcpus = [const { VcpuPorts::filled(0) }; N];
        if N > 0 {
            vcpus[0] = VcpuPorts::filled(!0);
        }
        PortVcpus { vcpus }
    }

    /// The ports delivered to `vcpu`, for its [`Events::with_ports`]; `None` for `vcpu >= N`.
    #[inline]
    pub const fn vcpu(&self, vcpu: u32) -> Option<&VcpuPorts> {
        if (vcpu as usize) < N {
            Some(&self.vcpus[vcpu as usize])
        } else {
            None
        }
    }

    /// The vCPU `port` is delivered to; `None` beyond [`NR_PORTS_2L`].
    #[inline]
    pub fn vcpu_of(&self, port: Port) -> Option<u32> {
        self.vcpus
            .iter()
            .position(|v| v.contains(port))
            .map(|v| v as u32)
    }

    /// Records that `port` is delivered to `vcpu` (with no hypercall: for a binding made otherwise).
    /// [`Error::EINVAL`] for `vcpu >= N` or a port beyond [`NR_PORTS_2L`].
    ///
    /// The port is added to `vcpu`'s set before it leaves the others, so a drain running meanwhile on
    /// either vCPU may see it but never neither; the pending bit is test-and-cleared, so only one takes
    /// an event.
    #[inline]
    pub fn note(&self, port: Port, vcpu: u32) -> Result<()> {
        let (w, b) = Events::locate(port).ok_or(Error::EINVAL)?;
        let target = self.vcpu(vcpu).ok_or(Error::EINVAL)?;
        target.words[w].fetch_or(b, Ordering::AcqRel);
        for (n, v) in self.vcpus.iter().enumerate() {
            if n != vcpu as usize {
                v.words[w].fetch_and(!b, Ordering::AcqRel);
            }
        }
        Ok(())
    }

    /// [`bind_ipi`]: a new port for inter-processor interrupts to `vcpu`, recorded as delivered there.
    /// [`Error::EINVAL`] for `vcpu >= N`, before any hypercall.
    #[inline]
    pub fn bind_ipi(&self, vcpu: u32) -> Result<Port> {
        self.vcpu(vcpu).ok_or(Error::EINVAL)?;
        let port = bind_ipi(vcpu)?;
        self.note(port, vcpu)?;
        Ok(port)
    }

    /// [`bind_virq`]: `virq` on `vcpu` to a new port, recorded as delivered there. [`Error::EINVAL`] for
    /// `vcpu >= N`, before any hypercall.
    #[inline]
    pub fn bind_virq(&self, virq: Virq, vcpu: u32) -> Result<Port> {
        self.vcpu(vcpu).ok_or(Error::EINVAL)?;
        let port = bind_virq(virq, vcpu)?;
        self.note(port, vcpu)?;
        Ok(port)
    }

    /// [`bind_vcpu`]: delivers `port` to `vcpu` from now on, and records it once Xen agreed.
    /// [`Error::EINVAL`] for `vcpu >= N` or a port beyond [`NR_PORTS_2L`], before any hypercall; Xen's
    /// error (the port stays where it was) otherwise.
    #[inline]
    pub fn bind_vcpu(&self, port: Port, vcpu: u32) -> Result<()> {
        Events::locate(port).ok_or(Error::EINVAL)?;
        self.vcpu(vcpu).ok_or(Error::EINVAL)?;
        bind_vcpu(port, vcpu)?;
        self.note(port, vcpu)
    }

    /// [`close`]: closes `port` and records it back on vCPU 0, where Xen puts the next port to get its
    /// number.
    #[inline]
    pub fn close(&self, port: Port) -> Result<()> {
        close(port)?;
        if N > 0 && Events::locate(port).is_some() {
            self.note(port, 0)?;
        }
        Ok(())
    }
}

/// Event delivery for the 2-level ABI: the pending and mask bits of the shared info page and the
/// pending selector of a `vcpu_info`, read and changed with atomic operations only (Xen writes them at
/// any time, from other physical CPUs).
///
/// How Xen raises an event on port `p` (`xen/common/event_2l.c`): it sets bit `p` of `evtchn_pending`;
/// if it was clear and bit `p` of `evtchn_mask` is clear, it sets bit `p / 64` of the vCPU's
/// `evtchn_pending_sel`, then `evtchn_upcall_pending`, and injects the event interrupt
/// (ARM: the PPI `xen::layout::GUEST_EVTCHN_PPI`; x86-64: the upcall, or the HVM callback vector). So:
///
/// - from an upcall handler, or from a loop around [`sched::block`], drain with
///   [`for_each_pending`](Events::for_each_pending) (or [`take_pending`](Events::take_pending) for an
///   iterator): it clears `evtchn_upcall_pending`, exchanges the selector with 0, and test-and-clears
///   the pending bit of every port that is pending and not masked in the selected words, yielding each
///   port whose bit it cleared; masked ports stay pending;
/// - with more than one vCPU, each vCPU has its own `Events` over its own `vcpu_info`, made
///   [`with_ports`](Events::with_ports) from a [`PortVcpus`] table (Linux's `cpu_evtchn_mask`), so that
///   its drain takes only the ports bound to it: the pending bits are the domain's, and a selector may
///   name words holding other vCPUs' ports (Xen sets every bit of it when a `vcpu_info` is registered);
/// - to wait for one port, [`wait`](Events::wait) (at most a [`Duration`] on a [`Clock`]),
///   [`wait_until`](Events::wait_until) (until an [`Instant`]) or [`wait_forever`](Events::wait_forever)
///   test-and-clear its bit around [`sched::poll_until`];
/// - [`mask`](Events::mask) sets the mask bit; [`unmask`](Events::unmask) asks Xen
///   (`EVTCHNOP_unmask`), because only Xen re-raises an event that arrived while the port was masked:
///   clearing the bit locally would lose it.
///
/// ARM's `vcpu_info` has no `evtchn_upcall_mask`: to keep upcalls away, mask the event interrupt at the
/// GIC or with the CPU's interrupt mask.
///
/// ```
/// use xen_hypercall::xen::evtchn::{Events, Port};
/// use xen_hypercall::xen::vcpu::SharedInfo;
///
/// // In a guest, `shared` is the page mapped with `memory::map_shared_info`.
/// let mut page = SharedInfo::default();
/// // SAFETY: `page` outlives `events` and is accessed through it only.
/// let events = unsafe { Events::new(&raw mut page) };
/// // What Xen does for an event on port 70 (word 1, bit 6):
/// # let info = &raw mut page;
/// # unsafe { (*info).evtchn_pending[1] = 1 << 6; (*info).vcpu_info[0].evtchn_pending_sel = 1 << 1;
/// #          (*info).vcpu_info[0].evtchn_upcall_pending = 1; }
/// let mut fired = Vec::new();
/// events.for_each_pending(|port| fired.push(port));
/// assert_eq!(fired, [Port(70)]);
/// assert!(!events.is_pending(Port(70)));
/// ```
pub struct Events {
    shared: NonNull<SharedInfo>,
    vcpu: NonNull<VcpuInfo>,
    /// The ports delivered to this vCPU ([`Events::with_ports`]); `None`: every port.
    ports: Option<&'static VcpuPorts>,
}

// SAFETY: `Events` only holds the addresses of memory shared with Xen, which it accesses with atomic
// operations only (the constructors' contract makes that the only access); any thread or interrupt
// handler may do so concurrently.
unsafe impl Send for Events {}
// SAFETY: as above.
unsafe impl Sync for Events {}

impl Events {
    /// Event delivery over the shared info page at `shared`, for vCPU 0 using the `vcpu_info` slot inside
    /// that page (where Xen keeps it unless [`register_vcpu_info`](super::vcpu::register_vcpu_info) moved
    /// it).
    ///
    /// # Safety
    ///
    /// `shared` must point to the domain's shared info page (or, in a test, to a `SharedInfo` standing in
    /// for it), valid and 8-aligned for as long as the `Events` is used, and accessed by the guest only
    /// through `Events` or other atomic operations while it is.
    ///
    /// A `const fn`, so that a guest can keep its `Events` in a `static` for its interrupt handler.
    #[inline]
    pub const unsafe fn new(shared: *mut SharedInfo) -> Events {
        // SAFETY: forwarded; slot 0 lies inside `*shared`.
        unsafe { Events::with_vcpu_info(shared, &raw mut (*shared).vcpu_info[0]) }
    }

    /// Event delivery over the shared info page at `shared` and the `vcpu_info` at `vcpu` (the one
    /// registered for the vCPU that handles the events).
    ///
    /// # Safety
    ///
    /// As for [`Events::new`], for both `shared` and `vcpu`.
    #[inline]
    pub const unsafe fn with_vcpu_info(shared: *mut SharedInfo, vcpu: *mut VcpuInfo) -> Events {
        Events {
            // SAFETY: the contract asks for valid pointers; a null one would be invalid.
            shared: unsafe { NonNull::new_unchecked(shared) },
            // SAFETY: as above.
            vcpu: unsafe { NonNull::new_unchecked(vcpu) },
            ports: None,
        }
    }

    /// The same, draining only the ports delivered to this vCPU (`ports`, its row of a [`PortVcpus`]):
    /// [`take_pending`](Events::take_pending) and [`for_each_pending`](Events::for_each_pending) leave
    /// the others pending, for the vCPU they are bound to. What each vCPU of a domain with more than one
    /// uses: without it, a drain takes every pending port of the words its selector names, other vCPUs'
    /// too (see [`PortVcpus`]). The single-port operations ([`wait`](Events::wait),
    /// [`clear_pending`](Events::clear_pending), …) are not filtered.
    #[inline]
    pub const fn with_ports(self, ports: &'static VcpuPorts) -> Events {
        Events {
            ports: Some(ports),
            ..self
        }
    }

    #[inline(always)]
    fn pending_word(&self, w: usize) -> &AtomicU64 {
        // SAFETY: `w < 64` (callers check); the word is in the shared info page, valid, 8-aligned and
        // accessed only atomically (constructor contract).
        unsafe { AtomicU64::from_ptr(&raw mut (*self.shared.as_ptr()).evtchn_pending[w]) }
    }

    #[inline(always)]
    fn mask_word(&self, w: usize) -> &AtomicU64 {
        // SAFETY: as in `pending_word`.
        unsafe { AtomicU64::from_ptr(&raw mut (*self.shared.as_ptr()).evtchn_mask[w]) }
    }

    #[inline(always)]
    fn selector(&self) -> &AtomicU64 {
        // SAFETY: the `vcpu_info` is valid, 8-aligned and accessed only atomically (constructor contract).
        unsafe { AtomicU64::from_ptr(&raw mut (*self.vcpu.as_ptr()).evtchn_pending_sel) }
    }

    #[inline(always)]
    fn upcall(&self) -> &AtomicU8 {
        // SAFETY: as in `selector`.
        unsafe { AtomicU8::from_ptr(&raw mut (*self.vcpu.as_ptr()).evtchn_upcall_pending) }
    }

    /// The word and bit of `port`, if the 2-level ABI has it.
    #[inline(always)]
    fn locate(port: Port) -> Option<(usize, u64)> {
        (port.0 < NR_PORTS_2L).then(|| ((port.0 / 64) as usize, 1u64 << (port.0 % 64)))
    }

    /// Whether Xen has flagged an upcall (`evtchn_upcall_pending`).
    #[inline]
    pub fn upcall_pending(&self) -> bool {
        self.upcall().load(Ordering::Acquire) != 0
    }

    /// Whether `port` is pending (masked or not); `false` for a port beyond [`NR_PORTS_2L`].
    #[inline]
    pub fn is_pending(&self, port: Port) -> bool {
        Self::locate(port)
            .is_some_and(|(w, b)| self.pending_word(w).load(Ordering::Acquire) & b != 0)
    }

    /// Whether `port` is masked; `true` for a port beyond [`NR_PORTS_2L`] (Xen treats those as masked).
    #[inline]
    pub fn is_masked(&self, port: Port) -> bool {
        Self::locate(port).is_none_or(|(w, b)| self.mask_word(w).load(Ordering::Acquire) & b != 0)
    }

    /// Test-and-clear: clears the pending bit of `port` and says whether it was set (whether an event
    /// was there to take). `false` for a port beyond [`NR_PORTS_2L`].
    #[inline]
    pub fn clear_pending(&self, port: Port) -> bool {
        Self::locate(port)
            .is_some_and(|(w, b)| self.pending_word(w).fetch_and(!b, Ordering::AcqRel) & b != 0)
    }

    /// Masks `port`: Xen keeps flagging its events pending but raises no upcall for them. Returns whether
    /// it was masked already. A port beyond [`NR_PORTS_2L`] is [`Error::EINVAL`].
    #[inline]
    pub fn mask(&self, port: Port) -> Result<bool> {
        let (w, b) = Self::locate(port).ok_or(Error::EINVAL)?;
        Ok(self.mask_word(w).fetch_or(b, Ordering::AcqRel) & b != 0)
    }

    /// Unmasks `port` through Xen ([`unmask`]), which re-raises an event that arrived while it was masked.
    #[inline]
    pub fn unmask(&self, port: Port) -> Result<()> {
        unmask(port)
    }

    /// Takes the pending selector: clears `evtchn_upcall_pending`, exchanges `evtchn_pending_sel` with 0,
    /// and returns an iterator over the ports of the selected words that are pending and not masked (and,
    /// for an `Events` made [`with_ports`](Events::with_ports), delivered to this vCPU: the others stay
    /// pending for theirs), each one test-and-cleared as it is reached (a port whose bit another handler cleared first is
    /// skipped). Masked ports stay pending, for Xen to re-raise on [`unmask`](Events::unmask).
    ///
    /// Xen may raise new events during the iteration: call again while
    /// [`upcall_pending`](Events::upcall_pending) (or use [`for_each_pending`](Events::for_each_pending)).
    /// Dropping the iterator before the end gives the selector bits of the words not yet finished back
    /// (and flags the upcall again), so no event is lost.
    #[inline]
    pub fn take_pending(&self) -> PendingPorts<'_> {
        self.upcall().store(0, Ordering::Release);
        let sel = self.selector().swap(0, Ordering::AcqRel);
        PendingPorts {
            events: self,
            sel,
            word: 0,
            bits: 0,
        }
    }

    /// Calls `f` for every port pending and not masked, test-and-cleared, until Xen has flagged no new
    /// upcall: what an upcall handler (or a polling loop around [`sched::block`]) does.
    #[inline]
    pub fn for_each_pending(&self, mut f: impl FnMut(Port)) {
        loop {
            for port in self.take_pending() {
                f(port);
            }
            if !self.upcall_pending() {
                break;
            }
        }
    }

    /// Waits at most `timeout` on `clock` for an event on `port` and takes it (test-and-clear):
    /// `Ok(())` once it is taken, [`Error::ETIMEDOUT`] if the timeout passed first. See
    /// [`wait_until`](Events::wait_until).
    ///
    /// ```
    /// # #[cfg(feature = "mock")] {
    /// use core::time::Duration;
    /// use xen_hypercall::xen::{Error, evtchn::{Events, Port}, time::Clock, vcpu::SharedInfo};
    /// # let shared: *mut SharedInfo = Box::leak(Box::new(SharedInfo::default()));
    /// # // 10 ms a poll:
    /// # xen_hypercall::mock::set_default(|_| { xen_hypercall::mock::advance_counter(625_000); 0 });
    /// // SAFETY: `shared` is the shared info page (here a stand-in), valid for the whole run, and
    /// // accessed through `events` and `clock` only.
    /// let (events, clock) = unsafe { (Events::new(shared), Clock::new(shared)?) };
    /// let t0 = clock.now();
    /// assert_eq!(events.wait(Port(3), &clock, Duration::from_millis(50)), Err(Error::ETIMEDOUT));
    /// assert!(clock.now() - t0 >= Duration::from_millis(50));
    /// # }
    /// # Ok::<(), xen_hypercall::xen::Error>(())
    /// ```
    #[inline]
    pub fn wait(&self, port: Port, clock: &Clock, timeout: Duration) -> Result<()> {
        self.wait_until(port, clock, clock.now() + timeout)
    }

    /// Waits for an event on `port` until `clock` reaches `deadline`, with [`sched::poll_until`], and
    /// takes it (test-and-clear): `Ok(())` once it is taken, [`Error::ETIMEDOUT`] once the clock says
    /// the deadline passed with no event. A wake-up before the deadline with no event (Xen woke the
    /// vCPU for other events, or, on ARM, the estimate of Xen system time was early) polls again: the
    /// wait is never shorter than asked. The selector and upcall flag are left alone: a later
    /// [`take_pending`](Events::take_pending) finds the port already taken. [`Error::EINVAL`] for a port
    /// beyond [`NR_PORTS_2L`].
    #[inline]
    pub fn wait_until(&self, port: Port, clock: &Clock, deadline: Instant) -> Result<()> {
        if Self::locate(port).is_none() {
            return Err(Error::EINVAL);
        }
        loop {
            if self.clear_pending(port) {
                return Ok(());
            }
            match sched::poll_until(&[port], clock, deadline) {
                Ok(()) => {}
                Err(Error::ETIMEDOUT) if self.clear_pending(port) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits for an event on `port` with no timeout ([`sched::poll_forever`]) and takes it.
    /// [`Error::EINVAL`] for a port beyond [`NR_PORTS_2L`].
    #[inline]
    pub fn wait_forever(&self, port: Port) -> Result<()> {
        if Self::locate(port).is_none() {
            return Err(Error::EINVAL);
        }
        while !self.clear_pending(port) {
            sched::poll_forever(&[port])?;
        }
        Ok(())
    }

    /// The raw form: waits with [`sched::poll_until_system_time`] and takes the event: `Ok(true)` once it
    /// is taken, `Ok(false)` if `poll` returned without it (the absolute Xen system time `system_time`
    /// was reached, or Xen woke the vCPU for other events). With `system_time` 0 it waits until the
    /// event comes. [`Error::EINVAL`] for a port beyond [`NR_PORTS_2L`].
    #[inline]
    pub fn wait_until_system_time(&self, port: Port, system_time: u64) -> Result<bool> {
        if Self::locate(port).is_none() {
            return Err(Error::EINVAL);
        }
        loop {
            if self.clear_pending(port) {
                return Ok(true);
            }
            sched::poll_until_system_time(&[port], system_time)?;
            if self.clear_pending(port) {
                return Ok(true);
            }
            if system_time != 0 {
                return Ok(false);
            }
        }
    }

    /// A waiting closure for [`PvConsole`](super::console::PvConsole), [`Console`](super::console::Console)
    /// and [`Xenstore`](super::xenstore::Xenstore): each call waits at most `timeout` on `clock` for
    /// the daemon's event on `port` ([`wait`](Events::wait)); [`Error::ETIMEDOUT`] ends the operation
    /// that waited.
    ///
    /// ```
    /// # #[cfg(feature = "mock")] {
    /// use core::time::Duration;
    /// use xen_hypercall::xen::{Error, evtchn::{Events, Port}, time::Clock, vcpu::SharedInfo};
    /// # let shared: *mut SharedInfo = Box::leak(Box::new(SharedInfo::default()));
    /// # xen_hypercall::mock::set_default(|_| { xen_hypercall::mock::advance_counter(625_000); 0 });
    /// // SAFETY: as for `Events::new` and `Clock::new`.
    /// let (events, clock) = unsafe { (Events::new(shared), Clock::new(shared)?) };
    /// let mut wait = events.waiter(Port(3), &clock, Duration::from_millis(50));
    /// assert_eq!(wait(), Err(Error::ETIMEDOUT)); // nobody answers here
    /// # }
    /// # Ok::<(), xen_hypercall::xen::Error>(())
    /// ```
    #[inline]
    pub fn waiter<'a>(
        &'a self,
        port: Port,
        clock: &'a Clock,
        timeout: Duration,
    ) -> impl FnMut() -> Result<()> + 'a {
        move || self.wait(port, clock, timeout)
    }
}

/// The ports taken by [`Events::take_pending`].
pub struct PendingPorts<'a> {
    events: &'a Events,
    /// Selected words not yet reached.
    sel: u64,
    /// The word being walked.
    word: usize,
    /// Its pending-and-unmasked bits not yet taken.
    bits: u64,
}

impl Iterator for PendingPorts<'_> {
    type Item = Port;

    #[inline]
    fn next(&mut self) -> Option<Port> {
        loop {
            while self.bits != 0 {
                let bit = self.bits.trailing_zeros();
                self.bits &= self.bits - 1;
                let b = 1u64 << bit;
                if self
                    .events
                    .pending_word(self.word)
                    .fetch_and(!b, Ordering::AcqRel)
                    & b
                    != 0
                {
                    return Some(Port(self.word as u32 * 64 + bit));
                }
            }
            if self.sel == 0 {
                return None;
            }
            self.word = self.sel.trailing_zeros() as usize;
            self.sel &= self.sel - 1;
            self.bits = self.events.pending_word(self.word).load(Ordering::Acquire)
                & !self.events.mask_word(self.word).load(Ordering::Acquire)
                & self.events.ports.map_or(!0, |p| p.word(self.word));
        }
    }
}

impl Drop for PendingPorts<'_> {
    #[inline]
    fn drop(&mut self) {
        let left = self.sel | if self.bits != 0 { 1u64 << self.word } else { 0 };
        if left != 0 {
            self.events.selector().fetch_or(left, Ordering::AcqRel);
            self.events.upcall().store(1, Ordering::Release);
        }
    }
}
