//! `update_va_mapping`: how a 64-bit PV guest changes one entry of its own page tables
//! (`HYPERVISOR_update_va_mapping`, declared arity 3 for PV64; no HVM/PVH handler).
//!
//! A PV guest runs on page tables Xen validates: it cannot write a page-table entry itself, it asks Xen to
//! write the level-1 entry that maps virtual address `va` (Xen finds it by walking the guest's current
//! page tables, so `va` must already be mapped with 4 KiB pages, as everything Xen maps for a PV dom0 is).
//! The entry holds a *machine* frame: for instance the shared info page, whose machine address
//! `start_info` gives ([`StartInfo::shared_info`](super::x86::StartInfo)); mapping it over a page of the
//! guest's own (a page-aligned static) is how Mini-OS and this crate's example guest reach it.
//!
//! The hypercall exists in x86-64 PV builds only (feature `x86-pv`, or `outline`, whose hypercall page
//! serves PV guests); the entry encoding ([`Pte`], the `UVMF_*` flush flags) is everywhere but ARM.
//!
//! ```
//! use xen_hypercall::xen::mmu::{Flush, Pte};
//! // The shared info page at machine address 0x8_3f5f_e000, writable.
//! let pte = Pte::writable(0x8_3f5f_e000 >> 12);
//! assert_eq!(pte.0, 0x8_3f5f_e067);
//! assert_eq!(pte.mfn(), 0x83f5fe);
//! assert_eq!(Flush::Invlpg as usize, 2); // UVMF_INVLPG | UVMF_LOCAL
//! ```

/// `_PAGE_PRESENT`.
pub const PAGE_PRESENT: u64 = 1 << 0;
/// `_PAGE_RW`: writable.
pub const PAGE_RW: u64 = 1 << 1;
/// `_PAGE_USER`: Xen sets it in every entry of a 64-bit PV guest (whose kernel runs in ring 3).
pub const PAGE_USER: u64 = 1 << 2;
/// `_PAGE_ACCESSED`.
pub const PAGE_ACCESSED: u64 = 1 << 5;
/// `_PAGE_DIRTY`.
pub const PAGE_DIRTY: u64 = 1 << 6;
/// `_PAGE_NX`: not executable.
pub const PAGE_NX: u64 = 1 << 63;

/// `UVMF_NONE`: no flush.
pub const UVMF_NONE: usize = 0;
/// `UVMF_TLB_FLUSH`: flush the whole TLB.
pub const UVMF_TLB_FLUSH: usize = 1;
/// `UVMF_INVLPG`: flush the one entry.
pub const UVMF_INVLPG: usize = 2;
/// `UVMF_LOCAL` (`UVMF_MULTI` with no CPU bitmap): flush on this vCPU only.
pub const UVMF_LOCAL: usize = 0;
/// `UVMF_ALL`: flush on every vCPU of the domain.
pub const UVMF_ALL: usize = 4;

/// Which TLB flush follows the update, on this vCPU only (`UVMF_*` | `UVMF_LOCAL`).
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// `UVMF_NONE`: the caller flushes.
    None = UVMF_NONE,
    /// `UVMF_TLB_FLUSH`: the whole TLB.
    TlbFlush = UVMF_TLB_FLUSH,
    /// `UVMF_INVLPG`: the entry of `va` (`invlpg`).
    Invlpg = UVMF_INVLPG,
}

/// A level-1 page-table entry as Xen reads it from a PV guest: machine frame in bits 51:12, flags in
/// the rest.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Pte(pub u64);

impl Pte {
    /// The entry mapping machine frame `mfn` with `flags` (`PAGE_*`). Bits of `mfn` beyond 40 are
    /// dropped (x86-64's 52-bit physical addresses).
    #[inline]
    pub const fn new(mfn: u64, flags: u64) -> Pte {
        Pte((mfn << 12) & 0x000f_ffff_ffff_f000 | flags & !0x000f_ffff_ffff_f000)
    }

    /// A present, writable, accessed and dirty kernel mapping of machine frame `mfn` (`USER` included,
    /// as Xen would set it).
    #[inline]
    pub const fn writable(mfn: u64) -> Pte {
        Pte::new(
            mfn,
            PAGE_PRESENT | PAGE_RW | PAGE_USER | PAGE_ACCESSED | PAGE_DIRTY,
        )
    }

    /// The machine frame it maps.
    #[inline]
    pub const fn mfn(self) -> u64 {
        (self.0 & 0x000f_ffff_ffff_f000) >> 12
    }
}

/// The three arguments of `update_va_mapping(va, val64, flags)` for `va`, `pte` and `flush`.
///
/// ```
/// use xen_hypercall::xen::mmu::{self, Flush, Pte};
/// assert_eq!(mmu::update_va_mapping_args(0x40_3000, Pte(0x1234_5067), Flush::Invlpg),
///            [0x40_3000, 0x1234_5067, 2]);
/// ```
#[inline(always)]
pub const fn update_va_mapping_args(va: usize, pte: Pte, flush: Flush) -> [usize; 3] {
    [va, pte.0 as usize, flush as usize]
}

/// Asks Xen to write `pte` into the level-1 entry that maps virtual address `va` in the current page
/// tables, then flush as `flush` says (`HYPERVISOR_update_va_mapping`). Xen checks the entry like any
/// page-table write of a PV guest: a frame the guest may not map (writable) is [`Error::EINVAL`](super::Error),
/// a `va` without a level-1 table is `EINVAL` too.
///
/// # Safety
///
/// Whatever the guest kept at `va` is gone from that address: no Rust object may live in the page at
/// `va` (a page-aligned static given up to Xen's page, say), and from the call on the page at `va` is
/// the frame of `pte`, to be accessed as that frame's contract says (for the shared info page: atomic
/// operations only, as [`evtchn::Events`](super::evtchn::Events) does). `va` must not map the code,
/// stack or page tables the guest is running on.
#[cfg(any(
    all(
        target_arch = "x86_64",
        target_os = "none",
        any(feature = "x86-pv", feature = "outline")
    ),
    doc
))]
#[inline]
pub unsafe fn update_va_mapping(va: usize, pte: Pte, flush: Flush) -> super::Result<()> {
    use super::call::{Arg, call3};
    let [a, b, c] = update_va_mapping_args(va, pte, flush);
    // SAFETY: the three arguments are values (Xen reads no guest memory through them); what the new
    // entry means for the guest is the caller's contract.
    super::unit(unsafe {
        call3::<{ super::nr::UPDATE_VA_MAPPING }>(Arg::val(a), Arg::val(b), Arg::val(c))
    })
}
