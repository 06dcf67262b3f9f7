//! The typed, safe Xen API: one module per hypercall family, built on the raw stubs.
//!
//! ```
//! # #[cfg(feature = "mock")] xen_hypercall::mock::answer_zero();
//! # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
//! use xen_hypercall::xen::{console, sched, version};
//! let v = version::version()?;
//! console::write(b"hello from a Xen guest\n")?;
//! # let _ = v;
//! # if false {
//! sched::shutdown(sched::ShutdownReason::Poweroff)?;
//! # }
//! # }
//! # Ok::<(), xen_hypercall::xen::Error>(())
//! ```
//!
//! - Every wrapper calls the stub of exactly the arity Xen's hypercall table declares ([`nr`]), checked
//!   at compile time: ARM's table, or on x86-64 the PV64 or HVM64 column ([`nr::arity`]).
//! - Failures are [`Error`]s, one constant per code of Xen's `errno.h`.
//! - Structures are `#[repr(C)]`, laid out as Xen's public headers say for ARM: `xen_ulong_t`, `xen_pfn_t`
//!   and guest handles are 64-bit slots for 32- and 64-bit guests alike (a host test compiles the real
//!   headers with clang for 32-bit ARM, AArch64 and x86-64 and compares every size, alignment and field
//!   offset). x86-64 lays out the shared structures the same way; where it differs (`vcpu_info` and
//!   `shared_info` have arch parts there, 32 legacy vCPU slots), [`vcpu`] takes [`x86`]'s structures
//!   in an x86-64 build, and [`layout`] (ARM's guest memory map) does not exist there. [`pvh`] reads the
//!   `hvm_start_info` a PVH guest is entered with; [`hvm::set_callback_vector`] asks for events as an
//!   interrupt vector; a PV guest reads its `start_info` with [`x86::StartInfo`] and maps the shared info
//!   page with [`mmu`]'s `update_va_mapping`.
//! - No allocation and no panics; the structures keep their natural alignment, so the API works from a
//!   bare-metal guest with the MMU off (where unaligned accesses fault).
//! - Memory shared with Xen must be Normal Write-Back Inner-Shareable for defined behaviour (MMU and
//!   caches on), as the template's identity map makes RAM: with the MMU off the guest's accesses are
//!   Device while Xen and the other domain use cacheable mappings.
//!
//! Talking to other domains: [`grant_table`] grants pages ([`grant_table::GrantTable`]) and maps, unmaps
//! and copies other domains' grants in batches; [`evtchn`] connects ports and delivers their events
//! ([`evtchn::Events`]); [`memory`] gives pages back and repopulates them, and maps foreign frames;
//! [`layout`] is the ARM guest's memory map. Wrappers for what this crate does not cover are written with
//! [`raw`].
//!
//! The frontend side of a split driver (the README's example, run here on the mock): grant a page, allocate
//! an unbound port, notify, wait for the event, end the access.
//!
//! ```
//! # #[cfg(feature = "mock")] {
//! use xen_hypercall::xen::evtchn::{self, Events};
//! use xen_hypercall::xen::grant_table::{GrantEntryV1, GrantTable};
//! use xen_hypercall::xen::{DomId, Page, vcpu::SharedInfo};
//! # #[repr(C, align(4096))] struct Frame([GrantEntryV1; 512]);
//! # let gnttab: *mut GrantEntryV1 = Box::leak(Box::new(Frame([GrantEntryV1::default(); 512]))).0.as_mut_ptr();
//! # let shared: *mut SharedInfo = Box::leak(Box::new(SharedInfo::default()));
//! # let gpfn = 0x38000;
//! # xen_hypercall::mock::set_default(move |c| {
//! #     if c.op() == xen_hypercall::xen::nr::SCHED_OP {
//! #         unsafe { (*shared).evtchn_pending[0] |= 1 << 5; } // the backend answers on port 5
//! #     } else if c.op() == xen_hypercall::xen::nr::EVENT_CHANNEL_OP && c.arg(0) == evtchn::EVTCHNOP_ALLOC_UNBOUND {
//! #         c.update(1, |a: &mut evtchn::AllocUnbound| a.port = evtchn::Port(5));
//! #     }
//! #     0
//! # });
//! static mut RING: Page = Page::new();
//! let backend = DomId::DOM0;
//! // Once at start-up, the only `unsafe`: these pages are Xen's from now on, the ring page is taken once.
//! // SAFETY: `gpfn` is reserved for the grant table, mapped at `gnttab`; `shared` is the shared info page.
//! let mut grants = unsafe { GrantTable::<16>::map(gpfn, 1, gnttab) }?;
//! # let mut grants = unsafe { grants.with_gfn_of(|p| (p as usize as u64 >> 12) & 0xffff_ffff) };
//! // SAFETY: as above.
//! let events = unsafe { Events::new(shared) };
//! // SAFETY: this is the only reference ever made to RING.
//! let ring: &'static mut Page = unsafe { &mut *(&raw mut RING) };
//!
//! let grant = grants.grant(backend, ring, false)?; // the page is the backend's to map read-write
//! let port = evtchn::alloc_unbound(DomId::SELF, backend)?;
//! // ... publish `grant.gref()` and `port` to the backend (xenstore, or a fixed convention) ...
//! evtchn::send(port)?;
//! events.wait_forever(port)?; // sched::poll until the port's pending bit is set, then clear it
//! let ring = grants.end_access(grant)?; // refused (EBUSY, grant handed back) while the backend maps it
//! # let _ = ring;
//! # }
//! # Ok::<(), xen_hypercall::xen::Error>(())
//! ```
//!
//! Where the hypervisor contract cannot be upheld by the types (Xen keeps using memory after the call,
//! as for [`vcpu::register_vcpu_info`]), the wrapper is `unsafe` and says why in `# Safety`.
//!
//! Backends: the inline stubs by default, the out-of-line stubs with feature `outline`, the recording
//! mock (module `mock`) with feature `mock`.

pub(crate) mod arg;
pub(crate) mod call;
mod error;

pub mod blkfront;
pub mod blkif;
pub mod console;
pub mod evtchn;
pub mod grant_table;
pub mod hvm;
#[cfg(any(not(all(target_arch = "x86_64", target_os = "none")), doc))]
pub mod layout;
pub mod memory;
#[cfg(any(
    not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")),
    doc
))]
pub mod mmu;
pub mod multicall;
pub mod netfront;
pub mod netif;
pub mod nr;
#[cfg(any(
    not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")),
    doc
))]
pub mod pvh;
pub mod raw;
pub mod ring;
pub mod sched;
mod sizes;
pub mod time;
pub mod vcpu;
mod vcpu_time;
pub mod version;
pub mod vm_assist;
#[cfg(any(
    not(all(any(target_arch = "arm", target_arch = "aarch64"), target_os = "none")),
    doc
))]
pub mod x86;
pub mod xenbus;
pub mod xenstore;

pub use call::Plain;
pub use error::{Error, Result};

/// A 4 KiB page of the guest's memory, 4 KiB-aligned: what a grant shares with another domain.
///
/// The safe grant API takes pages by `&'static mut Page`: granting one gives it up until the access ends
/// (see [`grant_table::GrantTable::grant`]). A `static` page becomes `&'static mut` once, with `unsafe`
/// (`unsafe { &mut *(&raw mut PAGE) }`: no other reference to it may exist), or comes from an allocator's
/// `Box::leak`.
///
/// ```
/// use xen_hypercall::xen::Page;
/// assert_eq!((core::mem::size_of::<Page>(), core::mem::align_of::<Page>()), (4096, 4096));
/// ```
#[repr(C, align(4096))]
pub struct Page(pub [u8; 4096]);

impl Page {
    /// A zeroed page.
    pub const fn new() -> Page {
        Page([0; 4096])
    }
}

impl core::fmt::Debug for Page {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Page@{:p}", self)
    }
}

impl Default for Page {
    fn default() -> Page {
        Page::new()
    }
}

/// A domain id (`domid_t`).
///
/// ```
/// use xen_hypercall::xen::DomId;
/// assert_eq!(DomId::SELF.0, 0x7FF0);
/// ```
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomId(pub u16);

impl DomId {
    /// `DOMID_SELF`: the calling domain.
    pub const SELF: DomId = DomId(0x7FF0);
    /// `DOMID_IO`: the pseudo-domain owning I/O memory.
    pub const IO: DomId = DomId(0x7FF1);
    /// `DOMID_XEN`: the hypervisor itself.
    pub const XEN: DomId = DomId(0x7FF2);
    /// `DOMID_COW`: the owner of copy-on-write pages.
    pub const COW: DomId = DomId(0x7FF3);
    /// `DOMID_INVALID`.
    pub const INVALID: DomId = DomId(0x7FF4);
    /// `DOMID_IDLE`.
    pub const IDLE: DomId = DomId(0x7FFF);
    /// Domain 0.
    pub const DOM0: DomId = DomId(0);
}

/// An event channel port (`evtchn_port_t`; [`evtchn`] has the calls on it).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port(pub u32);

impl From<Port> for u32 {
    #[inline(always)]
    fn from(p: Port) -> u32 {
        p.0
    }
}

crate::impl_plain! {
    DomId { 0: u16 };
    Port { 0: u32 };
}

/// Converts a hypercall result that carries no value: 0 (or any non-negative value) is success, any
/// negative value a failure ([`Error::check_status`]).
#[inline(always)]
pub(crate) fn unit(ret: isize) -> Result<()> {
    if ret >= 0 {
        Ok(())
    } else {
        Err(Error::from_failed(ret))
    }
}
