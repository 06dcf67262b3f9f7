//! `hvm_op`: domain parameters (`HYPERVISOR_hvm_op`, declared arity 2).
//!
//! On ARM every guest is an "HVM" guest for this interface: the toolstack hands a PV guest its xenstore and
//! console rings and the event-channel upcall interrupt through these parameters. On x86-64 an HVM or PVH
//! guest uses them the same way and chooses how events arrive with [`set_callback_vector`]; Xen refuses
//! them to a PV guest ([`Error::EINVAL`]).

use super::call::{Arg, call2};
use super::{DomId, Error, Result, nr, unit};

/// `HVMOP_set_param`.
pub const HVMOP_SET_PARAM: usize = 0;
/// `HVMOP_get_param`.
pub const HVMOP_GET_PARAM: usize = 1;

/// A parameter index (`HVM_PARAM_*` of `hvm/params.h`).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Param(pub u32);

impl Param {
    /// `HVM_PARAM_CALLBACK_IRQ`: how events are signalled; on ARM a PPI (see [`CallbackVia`]).
    pub const CALLBACK_IRQ: Param = Param(0);
    /// `HVM_PARAM_STORE_PFN`: the guest frame of the xenstore ring.
    pub const STORE_PFN: Param = Param(1);
    /// `HVM_PARAM_STORE_EVTCHN`: the event channel of the xenstore ring.
    pub const STORE_EVTCHN: Param = Param(2);
    /// `HVM_PARAM_CONSOLE_PFN`: the guest frame of the PV console ring.
    pub const CONSOLE_PFN: Param = Param(17);
    /// `HVM_PARAM_CONSOLE_EVTCHN`: the event channel of the PV console ring.
    pub const CONSOLE_EVTCHN: Param = Param(18);
}

/// `struct xen_hvm_param`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmParam {
    /// IN: the domain.
    pub domid: DomId,
    /// Padding.
    pub pad: u16,
    /// IN: the `HVM_PARAM_*`.
    pub index: u32,
    /// IN (set) / OUT (get): the value.
    pub value: u64,
}

crate::impl_plain! {
    HvmParam { domid: DomId, pad: u16, index: u32, value: u64 };
}

impl HvmParam {
    /// The argument for parameter `param` of domain `dom`, its value zero (as for a get).
    #[inline(always)]
    pub const fn new(dom: DomId, param: Param) -> HvmParam {
        HvmParam {
            domid: dom,
            pad: 0,
            index: param.0,
            value: 0,
        }
    }
}

/// The value of `HVM_PARAM_CALLBACK_IRQ`, decoded as ARM defines it: the type in bits 63:56
/// (`HVM_PARAM_CALLBACK_TYPE_*`). Not in x86-64 builds, where type 2 means a vector ([`vector_of`]).
#[cfg(any(not(all(target_arch = "x86_64", target_os = "none")), doc))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackVia {
    /// `HVM_PARAM_CALLBACK_TYPE_PPI` (2 on ARM): events arrive as a private peripheral interrupt.
    Ppi {
        /// Bits 7:0: the GIC interrupt id (16–31). `params.h` calls it a "PPI number", but Xen stores
        /// the interrupt id there: `GUEST_EVTCHN_PPI` (31) for a domU, the first free PPI id for dom0
        /// (16 was seen on Xen 4.17 arm64).
        intid: u8,
        /// Bits 15:8: `HVM_PARAM_CALLBACK_TYPE_PPI_FLAG_LOW_LEVEL` (2) for level-sensitive, active low.
        flags: u8,
    },
    /// Any other type, with the raw value.
    Other(u64),
}

#[cfg(any(not(all(target_arch = "x86_64", target_os = "none")), doc))]
impl CallbackVia {
    /// Decodes a raw `HVM_PARAM_CALLBACK_IRQ` value as ARM defines it.
    ///
    /// ```
    /// use xen_hypercall::xen::hvm::CallbackVia;
    /// let via = CallbackVia::decode(0x0200_0000_0000_0210);
    /// assert_eq!(via, CallbackVia::Ppi { intid: 16, flags: 2 });
    /// ```
    #[inline]
    pub const fn decode(raw: u64) -> CallbackVia {
        if raw >> 56 == 2 {
            CallbackVia::Ppi {
                intid: raw as u8,
                flags: (raw >> 8) as u8,
            }
        } else {
            CallbackVia::Other(raw)
        }
    }

    /// The GIC interrupt id events arrive on, for a PPI.
    #[inline]
    pub const fn intid(&self) -> Option<u32> {
        match self {
            CallbackVia::Ppi { intid, .. } => Some(*intid as u32),
            CallbackVia::Other(_) => None,
        }
    }
}

#[inline(always)]
fn param_op(op: usize, p: &mut HvmParam) -> Result<()> {
    // SAFETY: Xen reads and (for get) writes the `xen_hvm_param`, mutably borrowed for the call.
    unit(unsafe { call2::<{ nr::HVM_OP }>(Arg::val(op), Arg::inout(p)) })
}

/// Parameter `param` of domain `dom` (`HVMOP_get_param`).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, hvm};
/// let store_pfn = hvm::get_param(DomId::SELF, hvm::Param::STORE_PFN)?;
/// # let _ = store_pfn; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn get_param(dom: DomId, param: Param) -> Result<u64> {
    let mut p = HvmParam {
        domid: dom,
        pad: 0,
        index: param.0,
        value: 0,
    };
    param_op(HVMOP_GET_PARAM, &mut p)?;
    Ok(p.value)
}

impl Param {
    /// Whether setting the parameter can only change how events are signalled: its value is an event
    /// channel or the upcall's interrupt, never a frame or an address. Only these are set by the safe
    /// [`set_param`].
    #[inline(always)]
    pub const fn names_no_memory(self) -> bool {
        matches!(
            self,
            Param::CALLBACK_IRQ | Param::STORE_EVTCHN | Param::CONSOLE_EVTCHN
        )
    }
}

/// Sets parameter `param` of domain `dom` to `value` (`HVMOP_set_param`; most need privilege), for the
/// parameters whose value names no memory ([`Param::names_no_memory`]: the upcall and the rings' event
/// channels). Any other parameter is refused with [`Error::EPERM`] before the hypercall: its value may be a
/// frame (`STORE_PFN`, `CONSOLE_PFN`, x86's `IOREQ_PFN`, …) that the toolstack's daemons or a device model
/// then map and write; set those with [`set_param_unchecked`].
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, Error, hvm};
/// # xen_hypercall::mock::returns(0);
/// hvm::set_param(DomId::SELF, hvm::Param::CALLBACK_IRQ, 0x0200_0000_0000_0210)?;
/// assert_eq!(hvm::set_param(DomId::SELF, hvm::Param::STORE_PFN, 0x40123), Err(Error::EPERM));
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn set_param(dom: DomId, param: Param, value: u64) -> Result<()> {
    if !param.names_no_memory() {
        return Err(Error::EPERM);
    }
    // SAFETY: the parameter's value is an event channel or an interrupt: no memory is named.
    unsafe { set_param_unchecked(dom, param, value) }
}

/// Sets any parameter `param` of domain `dom` to `value` (`HVMOP_set_param`).
///
/// # Safety
///
/// Where the value names memory (a frame such as `STORE_PFN` or `CONSOLE_PFN`, x86's ring and ioreq
/// pages, an address), that memory holds nothing the program uses but what it shares with whoever the
/// parameter hands it to (the toolstack's daemons, a device model), who may map and write it from then on.
#[inline]
pub unsafe fn set_param_unchecked(dom: DomId, param: Param, value: u64) -> Result<()> {
    let mut p = HvmParam {
        domid: dom,
        pad: 0,
        index: param.0,
        value,
    };
    param_op(HVMOP_SET_PARAM, &mut p)
}

/// `HVM_PARAM_CALLBACK_TYPE_GSI` (x86): events raise a global system interrupt (bits 55:0: the GSI).
#[cfg(any(
    not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")),
    doc
))]
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u64 = 0;
/// `HVM_PARAM_CALLBACK_TYPE_PCI_INTX` (x86): events raise a PCI device's INTx line.
#[cfg(any(
    not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")),
    doc
))]
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u64 = 1;
/// `HVM_PARAM_CALLBACK_TYPE_VECTOR` (x86): events arrive as an interrupt on a vector of the guest's
/// choosing (bits 7:0), delivered to the vCPU the event is bound to, with no interrupt controller involved.
#[cfg(any(
    not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")),
    doc
))]
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;

/// The `HVM_PARAM_CALLBACK_IRQ` value asking for events as interrupt `vector` (x86):
/// [`HVM_PARAM_CALLBACK_TYPE_VECTOR`] in bits 63:56, the vector in bits 7:0.
///
/// ```
/// use xen_hypercall::xen::hvm;
/// assert_eq!(hvm::callback_vector(0xf3), 0x0200_0000_0000_00f3);
/// ```
#[cfg(any(
    not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")),
    doc
))]
#[inline]
pub const fn callback_vector(vector: u8) -> u64 {
    HVM_PARAM_CALLBACK_TYPE_VECTOR << 56 | vector as u64
}

/// The vector of an x86 `HVM_PARAM_CALLBACK_IRQ` value of type [`HVM_PARAM_CALLBACK_TYPE_VECTOR`], or
/// `None` for another type (GSI, PCI INTx, or none set).
///
/// ```
/// use xen_hypercall::xen::hvm;
/// assert_eq!(hvm::vector_of(0x0200_0000_0000_00f3), Some(0xf3));
/// assert_eq!(hvm::vector_of(0x0000_0000_0000_0005), None); // GSI 5
/// ```
#[cfg(any(
    not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")),
    doc
))]
#[inline]
pub const fn vector_of(raw: u64) -> Option<u8> {
    if raw >> 56 == HVM_PARAM_CALLBACK_TYPE_VECTOR {
        Some(raw as u8)
    } else {
        None
    }
}

/// Asks Xen to deliver this domain's events as interrupt `vector` (x86 HVM/PVH guests:
/// `HVMOP_set_param(HVM_PARAM_CALLBACK_IRQ, `[`callback_vector`]`(vector))`). The guest's IDT must
/// have a handler there before it enables interrupts; the handler drains the ports with
/// [`evtchn::Events`](super::evtchn::Events). Vectors 0–31 are the CPU's exceptions: they fail with
/// [`Error::EINVAL`] without a hypercall. A PV guest gets [`Error::EINVAL`] from Xen (it registers
/// callbacks with `callback_op` instead).
///
/// ```
/// # #[cfg(feature = "mock")] {
/// use xen_hypercall::{mock, xen::{Error, hvm, nr}};
/// mock::reset();
/// mock::returns(0);
/// hvm::set_callback_vector(0xf3)?;
/// let c = &mock::take_calls()[0];
/// assert_eq!((c.op, c.args[0]), (nr::HVM_OP, hvm::HVMOP_SET_PARAM));
/// let p = c.read::<hvm::HvmParam>(1).unwrap();
/// assert_eq!((p.index, p.value), (0, 0x0200_0000_0000_00f3));
/// assert_eq!(hvm::set_callback_vector(14), Err(Error::EINVAL)); // the page-fault vector
/// assert!(mock::take_calls().is_empty());
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[cfg(any(
    not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")),
    doc
))]
#[inline]
pub fn set_callback_vector(vector: u8) -> Result<()> {
    if vector < 32 {
        return Err(Error::EINVAL);
    }
    set_param(DomId::SELF, Param::CALLBACK_IRQ, callback_vector(vector))
}
