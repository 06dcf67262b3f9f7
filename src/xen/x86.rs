//! x86-64's own parts of the structures Xen shares with a guest (`public/arch-x86/xen.h` and
//! `xen-x86_64.h`), where they differ from ARM's.
//!
//! Everything else the typed API passes to Xen has the same layout on x86-64 as on AArch64: `xen_ulong_t`
//! and `xen_pfn_t` are `unsigned long` (64 bits), guest handles are 64-bit pointers, and the structures
//! use fixed-width fields (the layout test compares them with the headers compiled for x86-64). What
//! differs is the shared info page and the per-vCPU `vcpu_info`: x86 has an `evtchn_upcall_mask`, an
//! arch part in both, and 32 legacy vCPU slots. In an x86-64 build [`vcpu::VcpuInfo`](super::vcpu) and
//! [`vcpu::SharedInfo`](super::vcpu) are these, so [`evtchn::Events`](super::evtchn::Events) works on
//! them unchanged; elsewhere (ARM, and the host with the mock) this module is there for tests and
//! documentation.
//!
//! ```
//! use xen_hypercall::xen::x86::{SharedInfo, VcpuInfo, XEN_LEGACY_MAX_VCPUS};
//! assert_eq!(core::mem::size_of::<VcpuInfo>(), 64);
//! assert_eq!(XEN_LEGACY_MAX_VCPUS, 32);
//! // The wall clock follows the 32 slots and the two 4096-bit port maps.
//! assert_eq!(core::mem::offset_of!(SharedInfo, wc_version), 32 * 64 + 2 * 512);
//! ```

use super::vcpu_time::VcpuTimeInfo;

/// `XEN_LEGACY_MAX_VCPUS` on x86: the `vcpu_info` slots inside [`SharedInfo`].
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;

/// `struct arch_vcpu_info` on x86-64 (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchVcpuInfo {
    /// The faulting address of the last page fault Xen reflected to a PV guest.
    pub cr2: u64,
    /// Padding (`sizeof(vcpu_info_t) == 64`).
    pub pad: u64,
}

/// `struct vcpu_info` on x86-64 (64 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuInfo {
    /// Set by Xen when an event is pending for this vCPU.
    pub evtchn_upcall_pending: u8,
    /// `evtchn_upcall_mask` (`XEN_HAVE_PV_UPCALL_MASK`): while non-zero Xen does not deliver the upcall
    /// to a PV guest (an HVM/PVH guest masks with its interrupt flag instead).
    pub evtchn_upcall_mask: u8,
    /// Padding (implicit in C).
    pub _pad: [u8; 6],
    /// Which words of `evtchn_pending` have bits set (`xen_ulong_t`).
    pub evtchn_pending_sel: u64,
    /// The arch part.
    pub arch: ArchVcpuInfo,
    /// Time information.
    pub time: VcpuTimeInfo,
}

/// `struct arch_shared_info` on x86-64 (48 bytes): the PV guest's physical-to-machine map, which Xen and
/// the tools read; an HVM/PVH guest leaves it alone.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchSharedInfo {
    /// Number of valid entries of the p2m.
    pub max_pfn: u64,
    /// The frame of the p2m's frame list list (`xen_pfn_t`).
    pub pfn_to_mfn_frame_list_list: u64,
    /// NMI reason bits.
    pub nmi_reason: u64,
    /// The `cr3` of the address space of `p2m_vaddr`.
    pub p2m_cr3: u64,
    /// The virtual address of the linear p2m list.
    pub p2m_vaddr: u64,
    /// Generation count of the p2m mapping (odd while the guest updates it).
    pub p2m_generation: u64,
}

/// `struct shared_info` on x86-64 (3136 bytes): on a PV guest at the frame `start_info` names, on an
/// HVM/PVH guest mapped with [`memory::map_shared_info`](super::memory::map_shared_info).
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
    /// The arch part.
    pub arch: ArchSharedInfo,
}

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
            arch: ArchSharedInfo::default(),
        }
    }
}

crate::impl_plain! {
    ArchVcpuInfo { cr2: u64, pad: u64 };
    VcpuInfo { evtchn_upcall_pending: u8, evtchn_upcall_mask: u8, _pad: [u8; 6], evtchn_pending_sel: u64, arch: ArchVcpuInfo, time: VcpuTimeInfo };
    ArchSharedInfo { max_pfn: u64, pfn_to_mfn_frame_list_list: u64, nmi_reason: u64, p2m_cr3: u64, p2m_vaddr: u64, p2m_generation: u64 };
    SharedInfo { vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS], evtchn_pending: [u64; 64], evtchn_mask: [u64; 64], wc_version: u32, wc_sec: u32, wc_nsec: u32, wc_sec_hi: u32, arch: ArchSharedInfo };
}

/// `struct start_info` on x86-64 (1168 bytes): the page a 64-bit PV guest finds at `rsi` on entry
/// (`public/xen.h`). Unlike [`pvh::HvmStartInfo`](super::pvh::HvmStartInfo) its addresses are machine
/// addresses (`shared_info`, the `*_mfn` fields) or virtual ones (`pt_base`, `mfn_list`, `mod_start`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// `"xen-<version>-<platform>"`: [`START_INFO_MAGIC`] and a NUL.
    pub magic: [u8; 32],
    /// Pages allocated to the domain.
    pub nr_pages: u64,
    /// The *machine address* of the shared info page (map it with
    /// [`mmu::update_va_mapping`](super::mmu)).
    pub shared_info: u64,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Padding (implicit in C).
    pub _pad0: u32,
    /// The machine frame of the xenstore ring.
    pub store_mfn: u64,
    /// The xenstore event channel.
    pub store_evtchn: u32,
    /// Padding (implicit in C).
    pub _pad1: u32,
    /// The union `console` as raw words: a domU's `mfn` is word 0 and its `evtchn` the low half of
    /// word 1; dom0's `info_off` and `info_size` are the halves of word 0.
    pub console: [u64; 2],
    /// The virtual address of the top-level page table.
    pub pt_base: u64,
    /// The number of bootstrap page-table frames.
    pub nr_pt_frames: u64,
    /// The virtual address of the pseudo-physical-to-machine list.
    pub mfn_list: u64,
    /// The virtual address (or frame, with `SIF_MOD_START_PFN`) of the initial module.
    pub mod_start: u64,
    /// Its size in bytes.
    pub mod_len: u64,
    /// The command line, NUL-terminated.
    pub cmd_line: [u8; 1024],
    /// The first frame of the initial page tables and p2m list.
    pub first_p2m_pfn: u64,
    /// How many frames they take.
    pub nr_p2m_frames: u64,
}

crate::impl_plain! {
    StartInfo { magic: [u8; 32], nr_pages: u64, shared_info: u64, flags: u32, _pad0: u32, store_mfn: u64, store_evtchn: u32, _pad1: u32, console: [u64; 2], pt_base: u64, nr_pt_frames: u64, mfn_list: u64, mod_start: u64, mod_len: u64, cmd_line: [u8; 1024], first_p2m_pfn: u64, nr_p2m_frames: u64 };
}

/// The magic a 64-bit PV guest's [`StartInfo`] begins with.
pub const START_INFO_MAGIC: &[u8] = b"xen-3.0-x86_64";

/// `SIF_PRIVILEGED` ([`StartInfo::flags`], and `hvm_start_info`'s): the domain is privileged.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN`: the domain is the initial control domain (dom0).
pub const SIF_INITDOMAIN: u32 = 1 << 1;
/// `SIF_MULTIBOOT_MOD`: `mod_start` is a multiboot module.
pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
/// `SIF_MOD_START_PFN`: `mod_start` is a frame number, not a virtual address.
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
/// `SIF_VIRT_P2M_4TOOLS`: the toolstack understands a virtually mapped pseudo-physical-to-machine list.
pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
/// `SIF_PM_MASK`: the byte of the flags reserved for Xen's power-management options.
pub const SIF_PM_MASK: u32 = 0xff << 8;

impl StartInfo {
    /// A copy of the `start_info` at `info` (`rsi` at a PV guest's entry), if its magic is
    /// [`START_INFO_MAGIC`].
    ///
    /// # Safety
    ///
    /// `info` must be valid for reads of 1168 bytes (Xen maps the whole page there).
    #[inline]
    pub unsafe fn read(info: *const StartInfo) -> Option<StartInfo> {
        // SAFETY: valid for reads by the contract; unaligned reads are allowed (Xen page-aligns it).
        let copy = unsafe { info.read_unaligned() };
        copy.magic.starts_with(START_INFO_MAGIC).then_some(copy)
    }

    /// The machine frame of the shared info page.
    #[inline]
    pub const fn shared_info_mfn(&self) -> u64 {
        self.shared_info >> 12
    }

    /// Whether [`SIF_PRIVILEGED`] is set.
    #[inline]
    pub const fn is_privileged(&self) -> bool {
        self.flags & SIF_PRIVILEGED != 0
    }

    /// Whether [`SIF_INITDOMAIN`] is set (the guest is dom0).
    #[inline]
    pub const fn is_initial_domain(&self) -> bool {
        self.flags & SIF_INITDOMAIN != 0
    }
}
