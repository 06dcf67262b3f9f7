//! `memory_op`: the guest's physical address space (`HYPERVISOR_memory_op`, declared arity 2).

use super::call::{Arg, call2};
use super::{DomId, Error, Plain, Result, nr};

/// `XENMEM_current_reservation`.
pub const XENMEM_CURRENT_RESERVATION: usize = 3;
/// `XENMEM_maximum_reservation`.
pub const XENMEM_MAXIMUM_RESERVATION: usize = 4;
/// `XENMEM_add_to_physmap`.
pub const XENMEM_ADD_TO_PHYSMAP: usize = 7;
/// `XENMEM_maximum_gpfn`.
pub const XENMEM_MAXIMUM_GPFN: usize = 14;

/// `XENMAPIDX_grant_table_status`: in [`Space::GRANT_TABLE`]'s index, the bit that selects a status frame
/// of a version 2 grant table. ARM has version 1 only, so [`map_grant_frame`] refuses indices with it set.
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 0x8000_0000;

/// What [`add_to_physmap`] maps (`XENMAPSPACE_*` of `memory.h`).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Space(pub u32);

impl Space {
    /// `XENMAPSPACE_shared_info`: the shared info page (index 0).
    pub const SHARED_INFO: Space = Space(0);
    /// `XENMAPSPACE_grant_table`: grant table frame `idx`.
    pub const GRANT_TABLE: Space = Space(1);
    /// `XENMAPSPACE_gmfn`: the guest frame `idx`.
    pub const GMFN: Space = Space(2);
    /// `XENMAPSPACE_gmfn_range`: `size` frames from `idx`. [`add_to_physmap`] has no size and refuses it.
    pub const GMFN_RANGE: Space = Space(3);
    /// `XENMAPSPACE_gmfn_foreign`: a frame of another domain. Xen takes it only through
    /// `XENMEM_add_to_physmap_batch` (which names the foreign domain); [`add_to_physmap`] refuses it.
    pub const GMFN_FOREIGN: Space = Space(4);
    /// `XENMAPSPACE_dev_mmio`: device MMIO.
    pub const DEV_MMIO: Space = Space(5);
}

/// `struct xen_add_to_physmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddToPhysmap {
    /// The domain whose physical map changes.
    pub domid: DomId,
    /// Number of frames, for `XENMAPSPACE_gmfn_range`.
    pub size: u16,
    /// A `XENMAPSPACE_*`.
    pub space: u32,
    /// The index in `space` (`xen_ulong_t`).
    pub idx: u64,
    /// The guest frame number to map it at (`xen_pfn_t`).
    pub gpfn: u64,
}

// SAFETY: a repr(C) struct of integers.
unsafe impl Plain for AddToPhysmap {}

/// Maps frame `idx` of `space` at guest frame `gpfn` of domain `dom` (`XENMEM_add_to_physmap`).
///
/// [`Space::GMFN_FOREIGN`] and [`Space::GMFN_RANGE`] are refused with `EINVAL` without a hypercall: Xen
/// answers the first only through the batch call, and this call has no range size for the second.
///
/// # Safety
///
/// Whatever the guest had at `gpfn` is replaced: no live Rust object may be in that frame, and afterwards
/// the frame holds memory Xen shares (for the shared info page and grant frames, Xen writes it at any
/// time). The frame must be Normal Write-Back memory in the guest's mapping for defined behaviour.
///
/// ```no_run
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, memory::{self, Space}};
/// // SAFETY: frame 0x40000 is reserved for the shared info page.
/// unsafe { memory::add_to_physmap(DomId::SELF, Space::SHARED_INFO, 0, 0x40000) }?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub unsafe fn add_to_physmap(dom: DomId, space: Space, idx: u64, gpfn: u64) -> Result<()> {
    if space == Space::GMFN_FOREIGN || space == Space::GMFN_RANGE {
        return Err(Error::EINVAL);
    }
    let a = AddToPhysmap {
        domid: dom,
        size: 0,
        space: space.0,
        idx,
        gpfn,
    };
    // SAFETY: Xen reads `a`, borrowed for the call; what the mapping does to `gpfn` is the caller's
    // contract.
    Error::check(unsafe {
        call2::<{ nr::MEMORY_OP }>(Arg::val(XENMEM_ADD_TO_PHYSMAP), Arg::input(&a))
    })
    .map(|_| ())
}

/// Maps the shared info page at guest frame `gpfn` (`XENMAPSPACE_shared_info`).
///
/// # Safety
///
/// As for [`add_to_physmap`]: the frame becomes Xen's [`SharedInfo`](super::vcpu::SharedInfo) page.
///
/// ```no_run
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// // SAFETY: frame 0x40000 is reserved for the shared info page.
/// unsafe { xen_hypercall::xen::memory::map_shared_info(0x40000) }?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub unsafe fn map_shared_info(gpfn: u64) -> Result<()> {
    // SAFETY: forwarded.
    unsafe { add_to_physmap(DomId::SELF, Space::SHARED_INFO, 0, gpfn) }
}

/// Maps grant table frame `idx` at guest frame `gpfn` (`XENMAPSPACE_grant_table`).
///
/// An index with bit 31 set would select a version 2 status frame, which ARM does not have: it is refused
/// with `EINVAL` without a hypercall.
///
/// # Safety
///
/// As for [`add_to_physmap`]: the frame becomes part of the grant table, shared with Xen.
///
/// ```no_run
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// // SAFETY: frame 0x40001 is reserved for grant table frame 0.
/// unsafe { xen_hypercall::xen::memory::map_grant_frame(0, 0x40001) }?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub unsafe fn map_grant_frame(idx: u32, gpfn: u64) -> Result<()> {
    let idx = u64::from(idx);
    if idx & XENMAPIDX_GRANT_TABLE_STATUS != 0 {
        return Err(Error::EINVAL);
    }
    // SAFETY: forwarded.
    unsafe { add_to_physmap(DomId::SELF, Space::GRANT_TABLE, idx, gpfn) }
}

#[inline(always)]
fn domid_op(cmd: usize, dom: DomId) -> Result<u64> {
    let d = dom;
    // SAFETY: Xen reads the `domid_t` behind the pointer, borrowed for the call.
    Error::check(unsafe { call2::<{ nr::MEMORY_OP }>(Arg::val(cmd), Arg::input(&d)) })
        .map(|v| v as u64)
}

/// How many pages domain `dom` currently has (`XENMEM_current_reservation`).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, memory};
/// let pages = memory::current_reservation(DomId::SELF)?;
/// # let _ = pages; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn current_reservation(dom: DomId) -> Result<u64> {
    domid_op(XENMEM_CURRENT_RESERVATION, dom)
}

/// The most pages domain `dom` may have (`XENMEM_maximum_reservation`).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, memory};
/// let pages = memory::maximum_reservation(DomId::SELF)?;
/// # let _ = pages; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn maximum_reservation(dom: DomId) -> Result<u64> {
    domid_op(XENMEM_MAXIMUM_RESERVATION, dom)
}

/// The highest guest frame number in use by domain `dom` (`XENMEM_maximum_gpfn`).
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, memory};
/// let top = memory::maximum_gpfn(DomId::SELF)?;
/// # let _ = top; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn maximum_gpfn(dom: DomId) -> Result<u64> {
    domid_op(XENMEM_MAXIMUM_GPFN, dom)
}
