//! `vcpu_op`: per-vCPU registrations (`HYPERVISOR_vcpu_op(cmd, vcpuid, arg)`, declared arity 3), and the
//! shared structures Xen writes: [`VcpuInfo`], [`SharedInfo`], [`RunstateInfo`].
//!
//! Xen on ARM accepts only two vCPU operations from a guest: `VCPUOP_register_vcpu_info` and
//! `VCPUOP_register_runstate_memory_area` (its `do_arm_vcpu_op` refuses the rest). Everything else,
//! including `VCPUOP_is_up`, returns [`Error::EINVAL`] — seen on Xen 4.17 arm64 —
//! so this module offers no wrapper for them.

use super::call::{Arg, call3};
pub use super::vcpu_time::VcpuTimeInfo;
use super::{Error, Result, nr, unit};

// x86-64's `vcpu_info` and `shared_info` (arch parts, 32 legacy slots) in an x86-64 guest.
#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub use super::x86::{SharedInfo, VcpuInfo, XEN_LEGACY_MAX_VCPUS};

/// `VCPUOP_is_up` (refused on ARM with `-EINVAL`; listed for completeness).
pub const VCPUOP_IS_UP: usize = 3;
/// `VCPUOP_register_runstate_memory_area`.
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: usize = 5;
/// `VCPUOP_register_vcpu_info`.
pub const VCPUOP_REGISTER_VCPU_INFO: usize = 10;

/// `struct vcpu_info` on ARM (48 bytes; `struct arch_vcpu_info` is empty on ARM). An x86-64 build has
/// x86's instead ([`x86::VcpuInfo`](super::x86::VcpuInfo), 64 bytes).
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuInfo {
    /// Set by Xen when an event is pending for this vCPU.
    pub evtchn_upcall_pending: u8,
    /// Padding: ARM has no `evtchn_upcall_mask` (`XEN_HAVE_PV_UPCALL_MASK` is x86's); the guest masks
    /// the event interrupt at the GIC or with the CPU's interrupt mask instead.
    pub pad0: u8,
    /// Padding (implicit in C).
    pub _pad: [u8; 6],
    /// Which words of `evtchn_pending` have bits set (`xen_ulong_t`).
    pub evtchn_pending_sel: u64,
    /// Time information.
    pub time: VcpuTimeInfo,
}

/// `XEN_LEGACY_MAX_VCPUS` on ARM: the `vcpu_info` slots inside [`SharedInfo`].
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
pub const XEN_LEGACY_MAX_VCPUS: usize = 1;

/// `struct shared_info` on ARM (1088 bytes; `struct arch_shared_info` is empty on ARM), mapped with
/// [`memory::map_shared_info`](super::memory::map_shared_info). An x86-64 build has x86's instead
/// ([`x86::SharedInfo`](super::x86::SharedInfo), 3136 bytes).
#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedInfo {
    /// The legacy per-vCPU slots.
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// Pending bit per event channel port (2-level ABI).
    pub evtchn_pending: [u64; 64],
    /// Mask bit per event channel port.
    pub evtchn_mask: [u64; 64],
    /// Odd while Xen updates the wall clock.
    pub wc_version: u32,
    /// Wall clock seconds at system time 0 (low 32 bits).
    pub wc_sec: u32,
    /// Wall clock nanoseconds.
    pub wc_nsec: u32,
    /// Wall clock seconds, high 32 bits.
    pub wc_sec_hi: u32,
}

/// `struct vcpu_runstate_info` (48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunstateInfo {
    /// `RUNSTATE_*`: running 0, runnable 1, blocked 2, offline 3.
    pub state: i32,
    /// Padding (implicit in C).
    pub _pad: u32,
    /// When the current state was entered (system time, ns); bit 63 is `XEN_RUNSTATE_UPDATE`.
    pub state_entry_time: u64,
    /// Time spent in each state (ns).
    pub time: [u64; 4],
}

/// `XEN_RUNSTATE_UPDATE`: bit 63 of [`RunstateInfo::state_entry_time`], set by Xen while it rewrites the
/// area (once [`vm_assist::enable`](super::vm_assist::enable)`(`[`Type::RUNSTATE_UPDATE_FLAG`](super::vm_assist::Type::RUNSTATE_UPDATE_FLAG)`)`
/// asked for it).
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;

/// `RUNSTATE_running`.
pub const RUNSTATE_RUNNING: i32 = 0;
/// `RUNSTATE_runnable`.
pub const RUNSTATE_RUNNABLE: i32 = 1;
/// `RUNSTATE_blocked`.
pub const RUNSTATE_BLOCKED: i32 = 2;
/// `RUNSTATE_offline`.
pub const RUNSTATE_OFFLINE: i32 = 3;

impl RunstateInfo {
    /// One attempt at a consistent copy of the area at `area`, which Xen may be rewriting: `None` if Xen
    /// was seen updating it, else the copy with [`XEN_RUNSTATE_UPDATE`] clear.
    ///
    /// The protocol (with `VMASST_TYPE_runstate_update_flag` on; Xen's `update_runstate_area`): Xen sets
    /// `XEN_RUNSTATE_UPDATE` in `state_entry_time`, writes barrier, rewrites the area, writes barrier,
    /// and clears the flag. The reader reads `state_entry_time`, read barrier, copies the area, read
    /// barrier, reads `state_entry_time` again: the copy is consistent if both reads are equal and the
    /// flag is clear. Without the assist Xen never sets the flag and a copy may mix two updates.
    ///
    /// Every read is an atomic load, as Rust requires of memory another agent writes concurrently: the
    /// first read of `state_entry_time` an acquire load, the copy relaxed loads of each field, then an
    /// acquire fence and a relaxed load of `state_entry_time` (a sequence lock's reader). A 64-bit field
    /// is read whole on every target, A32 and T32 included (`ldrexd` there), so Xen's single 64-bit
    /// store of `state_entry_time` is never seen torn.
    ///
    /// # Safety
    ///
    /// `area` must be valid for reads of a `RunstateInfo` and 8-aligned (the area registered with
    /// [`register_runstate_memory_area`], or one standing in for it), written only by Xen (or, in Rust,
    /// only with atomic stores) meanwhile. As memory others write, it must be reached through a pointer
    /// that allows writes (the `*mut` registered with Xen, or `&raw mut`, not `&raw const` of a place or
    /// a pointer derived from a shared reference): the atomic loads read through shared mutable access.
    ///
    /// ```
    /// use xen_hypercall::xen::vcpu::{RunstateInfo, XEN_RUNSTATE_UPDATE};
    /// let mut area = RunstateInfo { state: 2, _pad: 0, state_entry_time: 500, time: [1, 2, 3, 4] };
    /// // SAFETY: `area` is a valid RunstateInfo nobody else writes, reached through `&raw mut`.
    /// assert_eq!(unsafe { RunstateInfo::try_read_consistent(&raw mut area) }, Some(area));
    /// area.state_entry_time |= XEN_RUNSTATE_UPDATE; // Xen is in the middle of an update
    /// // SAFETY: as above.
    /// assert_eq!(unsafe { RunstateInfo::try_read_consistent(&raw mut area) }, None);
    /// ```
    #[inline]
    pub unsafe fn try_read_consistent(area: *const RunstateInfo) -> Option<RunstateInfo> {
        use core::sync::atomic::Ordering::{Acquire, Relaxed};
        use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, fence};
        let area = area.cast_mut();
        // SAFETY: the contract: `area` is valid for reads and 8-aligned, so each field is valid and
        // aligned for the atomic type of its size (4 for the 32-bit ones, 8 for the 64-bit ones, whose
        // offsets are multiples of 8), and every other access meanwhile is Xen's or atomic. Nothing is
        // written through these pointers.
        let (entry, state, pad, time) = unsafe {
            (
                AtomicU64::from_ptr(&raw mut (*area).state_entry_time),
                AtomicI32::from_ptr(&raw mut (*area).state),
                AtomicU32::from_ptr(&raw mut (*area)._pad),
                (&raw mut (*area).time).cast::<u64>(),
            )
        };
        // SAFETY: as above, for element `k` (< 4) of `time`.
        let time_at = |k: usize| unsafe { AtomicU64::from_ptr(time.add(k)) };
        let first = entry.load(Acquire);
        if first & XEN_RUNSTATE_UPDATE != 0 {
            return None;
        }
        let copy = RunstateInfo {
            state: state.load(Relaxed),
            _pad: pad.load(Relaxed),
            state_entry_time: entry.load(Relaxed),
            time: [0, 1, 2, 3].map(|k| time_at(k).load(Relaxed)),
        };
        fence(Acquire);
        let again = entry.load(Relaxed);
        (first == again && copy.state_entry_time == first).then_some(copy)
    }

    /// A consistent copy of the area at `area`: [`try_read_consistent`](RunstateInfo::try_read_consistent)
    /// until it succeeds (Xen's updates take a few hundred instructions).
    ///
    /// # Safety
    ///
    /// As for [`try_read_consistent`](RunstateInfo::try_read_consistent).
    #[inline]
    pub unsafe fn read_consistent(area: *const RunstateInfo) -> RunstateInfo {
        loop {
            // SAFETY: forwarded.
            if let Some(r) = unsafe { RunstateInfo::try_read_consistent(area) } {
                return r;
            }
            core::hint::spin_loop();
        }
    }
}

/// `struct vcpu_register_vcpu_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegisterVcpuInfo {
    /// The guest frame holding the `vcpu_info`.
    pub mfn: u64,
    /// Its offset in that frame.
    pub offset: u32,
    /// Unused.
    pub rsvd: u32,
}

/// `struct vcpu_register_runstate_memory_area`: a guest virtual address in a 64-bit slot.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegisterRunstateMemoryArea {
    /// The address of the [`RunstateInfo`] (the union `addr`, as `uint64_t p`).
    pub addr: u64,
}

#[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
impl Default for SharedInfo {
    #[inline(always)]
    fn default() -> Self {
        SharedInfo {
            vcpu_info: [VcpuInfo::default(); XEN_LEGACY_MAX_VCPUS],
            evtchn_pending: [0; 64],
            evtchn_mask: [0; 64],
            wc_version: 0,
            wc_sec: 0,
            wc_nsec: 0,
            wc_sec_hi: 0,
        }
    }
}

crate::impl_plain! {
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    VcpuInfo {
        evtchn_upcall_pending: u8,
        pad0: u8,
        _pad: [u8; 6],
        evtchn_pending_sel: u64,
        time: VcpuTimeInfo,
    };
    #[cfg(not(all(target_arch = "x86_64", target_os = "none")))]
    SharedInfo {
        vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
        evtchn_pending: [u64; 64],
        evtchn_mask: [u64; 64],
        wc_version: u32,
        wc_sec: u32,
        wc_nsec: u32,
        wc_sec_hi: u32,
    };
    RunstateInfo { state: i32, _pad: u32, state_entry_time: u64, time: [u64; 4] };
    RegisterVcpuInfo { mfn: u64, offset: u32, rsvd: u32 };
    RegisterRunstateMemoryArea { addr: u64 };
}

/// Asks Xen to keep vCPU `vcpu`'s [`VcpuInfo`] at byte `offset` of guest frame `gfn` from now on, instead
/// of in the shared info page (`VCPUOP_register_vcpu_info`). A vCPU can register only once: a second call
/// fails with [`Error::EINVAL`] (as seen on Xen 4.17).
///
/// # Safety
///
/// From this call on, Xen writes the `vcpu_info` (48 bytes on ARM, 64 on x86-64) at `gfn`/`offset` whenever it likes, for the
/// rest of the domain's life: that memory must be reserved for it (no Rust object may live there other
/// than one accessed only with volatile or atomic operations), must not cross a page boundary, must be
/// 8-aligned, and must be Normal Write-Back memory in the guest's mapping.
///
/// ```no_run
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// // SAFETY: frame 0x40002 is reserved for vCPU 0's vcpu_info, at offset 0.
/// unsafe { xen_hypercall::xen::vcpu::register_vcpu_info(0, 0x40002, 0) }?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub unsafe fn register_vcpu_info(vcpu: u32, gfn: u64, offset: u32) -> Result<()> {
    let r = RegisterVcpuInfo {
        mfn: gfn,
        offset,
        rsvd: 0,
    };
    // SAFETY: Xen reads `r`, borrowed for the call; what it does with the frame is the caller's contract.
    unit(unsafe {
        call3::<{ nr::VCPU_OP }>(
            Arg::val(VCPUOP_REGISTER_VCPU_INFO),
            Arg::val(vcpu as usize),
            Arg::input(&r),
        )
    })
}

/// [`register_vcpu_info`] for a `VcpuInfo` at `info`, taking its address as the guest physical address:
/// for guests whose memory is identity-mapped (or that run with the MMU off). Fails with
/// [`Error::EINVAL`] without a hypercall if `info` is not 8-aligned or the `VcpuInfo` crosses a 4 KiB
/// page.
///
/// # Safety
///
/// As for [`register_vcpu_info`], for the `VcpuInfo` at `info`, whose address must equal its guest
/// physical address.
///
/// ```no_run
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::vcpu::{self, VcpuInfo};
/// #[repr(align(64))]
/// struct Slot(VcpuInfo);
/// static mut INFO: Slot = Slot(VcpuInfo { evtchn_upcall_pending: 0, pad0: 0, _pad: [0; 6],
///     evtchn_pending_sel: 0, time: unsafe { core::mem::zeroed() } });
/// // SAFETY: INFO is Xen's from now on, read only with volatile reads; memory is identity-mapped.
/// unsafe { vcpu::register_vcpu_info_at(0, &raw mut INFO.0) }?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub unsafe fn register_vcpu_info_at(vcpu: u32, info: *mut VcpuInfo) -> Result<()> {
    const PAGE: usize = 4096;
    let addr = info as usize;
    let offset = addr % PAGE;
    if !addr.is_multiple_of(8) || offset + core::mem::size_of::<VcpuInfo>() > PAGE {
        return Err(Error::EINVAL);
    }
    // SAFETY: forwarded from this function's contract.
    unsafe { register_vcpu_info(vcpu, (addr / PAGE) as u64, offset as u32) }
}

/// Asks Xen to keep vCPU `vcpu`'s [`RunstateInfo`] up to date at `area`
/// (`VCPUOP_register_runstate_memory_area`); a null `area` stops it.
///
/// # Safety
///
/// Xen writes `*area` on every context switch of the vCPU until another area is registered: `area` must
/// be 8-aligned, hold an initialised `RunstateInfo` when called, be valid for writes of 48 bytes for that
/// long, not otherwise accessed except with volatile
/// reads, and its guest *virtual* address must translate in the vCPU's current page tables whenever Xen
/// writes (with the MMU off, the virtual and physical addresses coincide).
///
/// ```no_run
/// # #[cfg(any(target_arch = "arm", target_arch = "aarch64", feature = "mock"))] {
/// use xen_hypercall::xen::vcpu::{self, RunstateInfo};
/// static mut RUNSTATE: RunstateInfo =
///     RunstateInfo { state: 0, _pad: 0, state_entry_time: 0, time: [0; 4] };
/// // SAFETY: RUNSTATE is only read with volatile reads from now on.
/// unsafe { vcpu::register_runstate_memory_area(0, &raw mut RUNSTATE) }?;
/// # }
/// # Ok::<(), xen_hypercall::xen::Error>(())
/// ```
#[inline]
pub unsafe fn register_runstate_memory_area(vcpu: u32, area: *mut RunstateInfo) -> Result<()> {
    let r = RegisterRunstateMemoryArea {
        addr: area as usize as u64,
    };
    // SAFETY: Xen reads `r`, borrowed for the call; what it does with `area` is the caller's contract.
    Error::check_status(unsafe {
        call3::<{ nr::VCPU_OP }>(
            Arg::val(VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA),
            Arg::val(vcpu as usize),
            Arg::input(&r).handle_inout(area, 1),
        )
    })
}
