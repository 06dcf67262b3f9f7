//! `memory_op`: the guest's physical address space (`HYPERVISOR_memory_op`, declared arity 2).

use super::call::{Arg, call2};
use super::{DomId, Error, Result, nr};

/// `XENMEM_increase_reservation`.
pub const XENMEM_INCREASE_RESERVATION: usize = 0;
/// `XENMEM_decrease_reservation`.
pub const XENMEM_DECREASE_RESERVATION: usize = 1;
/// `XENMEM_populate_physmap`.
pub const XENMEM_POPULATE_PHYSMAP: usize = 6;
/// `XENMEM_remove_from_physmap`.
pub const XENMEM_REMOVE_FROM_PHYSMAP: usize = 15;
/// `XENMEM_add_to_physmap_batch`.
pub const XENMEM_ADD_TO_PHYSMAP_BATCH: usize = 23;
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

/// `struct xen_memory_reservation` (interface 0x00030209 and later: `mem_flags`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryReservation {
    /// Guest handle (64-bit slot) of the array of `nr_extents` frame numbers (`xen_pfn_t`).
    pub extent_start: u64,
    /// How many extents (`xen_ulong_t`).
    pub nr_extents: u64,
    /// Each extent is `2^extent_order` pages.
    pub extent_order: u32,
    /// `XENMEMF_*` flags (0: any memory).
    pub mem_flags: u32,
    /// The domain whose reservation changes (unprivileged: [`DomId::SELF`]).
    pub domid: DomId,
    /// Padding (implicit in C).
    pub _pad: [u16; 3],
}

/// `struct xen_remove_from_physmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemoveFromPhysmap {
    /// The domain whose physical map changes.
    pub domid: DomId,
    /// Padding (implicit in C).
    pub _pad: [u16; 3],
    /// The guest frame to unmap (`xen_pfn_t`).
    pub gpfn: u64,
}

/// `struct xen_add_to_physmap_batch` (interface 0x00040700 and later: the union `u`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddToPhysmapBatch {
    /// The domain whose physical map changes.
    pub domid: DomId,
    /// A `XENMAPSPACE_*` (16 bits here).
    pub space: u16,
    /// How many frames (16 bits).
    pub size: u16,
    /// The union `u`: `foreign_domid` for [`Space::GMFN_FOREIGN`], else `res0` = 0.
    pub foreign_domid: DomId,
    /// Guest handle of the `size` indices in `space` (`xen_ulong_t`).
    pub idxs: u64,
    /// Guest handle of the `size` guest frames to map them at (`xen_pfn_t`).
    pub gpfns: u64,
    /// Guest handle of the `size` per-frame results (`int`: 0 or `-errno`), written by Xen.
    pub errs: u64,
}

crate::impl_plain! {
    AddToPhysmap { domid: DomId, size: u16, space: u32, idx: u64, gpfn: u64 };
    MemoryReservation {
        extent_start: u64,
        nr_extents: u64,
        extent_order: u32,
        mem_flags: u32,
        domid: DomId,
        _pad: [u16; 3],
    };
    RemoveFromPhysmap { domid: DomId, _pad: [u16; 3], gpfn: u64 };
    AddToPhysmapBatch {
        domid: DomId,
        space: u16,
        size: u16,
        foreign_domid: DomId,
        idxs: u64,
        gpfns: u64,
        errs: u64,
    };
}

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
    Error::check_status(unsafe {
        call2::<{ nr::MEMORY_OP }>(Arg::val(XENMEM_ADD_TO_PHYSMAP), Arg::input(&a))
    })
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

/// Issues a reservation operation over `extents` and returns the count of extents Xen handled.
///
/// # Safety
///
/// `extents` is read (and, for `XENMEM_increase_reservation` on non-translated guests, written) by Xen;
/// the effect of `cmd` on the guest's address space is the caller's contract.
#[inline(always)]
unsafe fn reservation(cmd: usize, dom: DomId, extents: &mut [u64], order: u32) -> Result<usize> {
    let r = MemoryReservation {
        extent_start: extents.as_mut_ptr() as usize as u64,
        nr_extents: extents.len() as u64,
        extent_order: order,
        mem_flags: 0,
        domid: dom,
        _pad: [0; 3],
    };
    let len = extents.len();
    // SAFETY: Xen reads `r` and the `extents` behind its handle, both borrowed for the call; the caller
    // answers for the address-space change.
    let done = Error::check(unsafe {
        call2::<{ nr::MEMORY_OP }>(
            Arg::val(cmd),
            Arg::input(&r).handle_inout(extents.as_mut_ptr(), len),
        )
    })?;
    if done > extents.len() {
        return Err(out_of_range(done));
    }
    Ok(done)
}

#[cold]
#[inline(never)]
fn out_of_range(_done: usize) -> Error {
    Error::ERANGE
}

/// Gives the frames `gpfns` (each the base of `2^order` pages) back to Xen (`XENMEM_decrease_reservation`)
/// and returns how many extents Xen released: fewer than `gpfns.len()` when it stopped early (the rest
/// stay in place). The guest frames become holes: reading them faults.
///
/// # Safety
///
/// No live Rust object may be in those frames: their contents are gone, and Xen scrubs the pages before
/// giving them to anyone else.
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, memory};
/// # xen_hypercall::mock::returns(1);
/// // SAFETY: frame 0x40100 holds nothing the program uses.
/// let done = unsafe { memory::decrease_reservation(DomId::SELF, &mut [0x40100], 0) }?;
/// assert_eq!(done, 1);
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub unsafe fn decrease_reservation(dom: DomId, gpfns: &mut [u64], order: u32) -> Result<usize> {
    // SAFETY: forwarded.
    unsafe { reservation(XENMEM_DECREASE_RESERVATION, dom, gpfns, order) }
}

/// Backs the guest frames `gpfns` (each the base of `2^order` pages) with new memory
/// (`XENMEM_populate_physmap`) and returns how many extents Xen populated: fewer than `gpfns.len()` when
/// the domain's allowance ran out. The new pages are not the frames' former contents, but they are not
/// guaranteed to be zeroed either: clear them before relying on their contents.
///
/// What they hold (Xen's `xen/common/page_alloc.c`): Xen scrubs a page when it is allocated only if the
/// page is flagged as needing it, and `free_domheap_pages` flags a freed page only when the freeing domain
/// is dying, Xen was built with `CONFIG_SCRUB_DEBUG` (the default of a debug build), or `scrub-domheap`
/// is on the Xen command line; boot memory is flagged unless `bootscrub=off` (and with the default
/// `bootscrub=idle` it may be scrubbed in the background, or on allocation). So on a release Xen a page
/// that a live domain freed (`decrease_reservation`, a balloon driver) comes back with that domain's data.
/// A scrubbed page is zeros on a release Xen, and the byte `0xc2` on every byte on a debug Xen
/// (`scrub_one_page`'s `SCRUB_PATTERN`, there so that nothing relies on zeroed pages).
///
/// # Safety
///
/// Whatever is mapped at those frames is replaced: no live Rust object may be there.
///
/// ```
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, memory};
/// # xen_hypercall::mock::returns(1);
/// // SAFETY: frame 0x40100 is a hole the program reserved.
/// let done = unsafe { memory::populate_physmap(DomId::SELF, &mut [0x40100], 0) }?;
/// assert_eq!(done, 1);
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub unsafe fn populate_physmap(dom: DomId, gpfns: &mut [u64], order: u32) -> Result<usize> {
    // SAFETY: forwarded.
    unsafe { reservation(XENMEM_POPULATE_PHYSMAP, dom, gpfns, order) }
}

/// Allocates `extents.len()` extents of `2^order` pages to domain `dom` without mapping them anywhere
/// (`XENMEM_increase_reservation`) and returns how many Xen allocated. On ARM (an auto-translated guest)
/// Xen writes nothing into `extents`; a guest that wants the memory mapped uses [`populate_physmap`].
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, memory};
/// let done = memory::increase_reservation(DomId::SELF, &mut [0; 2], 0)?;
/// # let _ = done; }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub fn increase_reservation(dom: DomId, extents: &mut [u64], order: u32) -> Result<usize> {
    // SAFETY: the call changes no mapping of the caller's address space; Xen may write `extents`
    // (exclusively borrowed) with the frames it allocated.
    unsafe { reservation(XENMEM_INCREASE_RESERVATION, dom, extents, order) }
}

/// Removes the mapping at guest frame `gpfn` of domain `dom` (`XENMEM_remove_from_physmap`): the shared
/// info page, a grant table frame or a foreign frame mapped there goes away; the frame becomes a hole.
///
/// # Safety
///
/// No live Rust object may be in that frame (reading it afterwards faults).
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, memory};
/// // SAFETY: frame 0x40200 holds a foreign page the program no longer uses.
/// unsafe { memory::remove_from_physmap(DomId::SELF, 0x40200) }?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub unsafe fn remove_from_physmap(dom: DomId, gpfn: u64) -> Result<()> {
    let r = RemoveFromPhysmap {
        domid: dom,
        _pad: [0; 3],
        gpfn,
    };
    // SAFETY: Xen reads `r`, borrowed for the call; the hole is the caller's contract.
    Error::check_status(unsafe {
        call2::<{ nr::MEMORY_OP }>(Arg::val(XENMEM_REMOVE_FROM_PHYSMAP), Arg::input(&r))
    })
}

/// Maps `idxs[i]` of `space` at guest frame `gpfns[i]` of domain `dom`, for every `i`, in one call
/// (`XENMEM_add_to_physmap_batch`); `foreign` names the domain whose frames `idxs` are for
/// [`Space::GMFN_FOREIGN`] (the only way to map another domain's frame; it needs privilege over that
/// domain) and must be [`DomId(0)`](DomId) for other spaces.
///
/// The hypercall's own result is the `Result`; Xen reports each frame in `errs[i]` (0 or `-errno`; use
/// [`frame_result`]): a frame can fail while the call succeeds. The three slices must have the same
/// length, at most `u16::MAX`, else [`Error::EINVAL`] without a hypercall.
///
/// # Safety
///
/// As for [`add_to_physmap`], for every frame of `gpfns`.
///
/// ```
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::{DomId, memory::{self, Space}};
/// let mut errs = [0; 1];
/// // SAFETY: frame 0x40200 is a hole reserved for the foreign page.
/// unsafe {
///     memory::add_to_physmap_batch(DomId::SELF, Space::GMFN_FOREIGN, DomId(1), &[0x40010],
///                                  &[0x40200], &mut errs)
/// }?;
/// memory::frame_result(errs[0])?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub unsafe fn add_to_physmap_batch(
    dom: DomId,
    space: Space,
    foreign: DomId,
    idxs: &[u64],
    gpfns: &[u64],
    errs: &mut [i32],
) -> Result<()> {
    let n = idxs.len();
    if gpfns.len() != n || errs.len() != n {
        return Err(Error::EINVAL);
    }
    let (Ok(size), Ok(space)) = (u16::try_from(n), u16::try_from(space.0)) else {
        return Err(Error::EINVAL);
    };
    let b = AddToPhysmapBatch {
        domid: dom,
        space,
        size,
        foreign_domid: foreign,
        idxs: idxs.as_ptr() as usize as u64,
        gpfns: gpfns.as_ptr() as usize as u64,
        errs: errs.as_mut_ptr() as usize as u64,
    };
    // SAFETY: Xen reads `b` and the arrays behind its handles and writes `errs` (exclusively borrowed),
    // all for the call only; the mappings are the caller's contract.
    Error::check_status(unsafe {
        call2::<{ nr::MEMORY_OP }>(
            Arg::val(XENMEM_ADD_TO_PHYSMAP_BATCH),
            Arg::input(&b)
                .handle_in(idxs)
                .handle_in(gpfns)
                .handle_inout(errs.as_mut_ptr(), n),
        )
    })
}

/// One frame's result of [`add_to_physmap_batch`]: 0 is success, `-errno` a failure.
///
/// ```
/// use xen_hypercall::xen::{Error, memory};
/// assert_eq!(memory::frame_result(0), Ok(()));
/// assert_eq!(memory::frame_result(-1), Err(Error::EPERM));
/// ```
#[inline]
pub fn frame_result(err: i32) -> Result<()> {
    Error::check_status(err as isize)
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
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
/// # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
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
