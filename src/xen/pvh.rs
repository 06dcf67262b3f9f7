//! What an x86-64 PVH guest is entered with: `struct hvm_start_info` (`public/arch-x86/hvm/start_info.h`).
//!
//! Xen enters a PVH guest at its `PHYS32_ENTRY` in 32-bit protected mode, paging off, with `ebx` holding
//! the guest physical address of an [`HvmStartInfo`]: a magic number, the `SIF_*` flags, the command
//! line, the modules (an array of [`HvmModlistEntry`]), the ACPI RSDP and, from version 1 of the
//! structure, the memory map (an array of [`HvmMemmapTableEntry`]). Every address in it is a guest
//! physical address; the accessors below read them where they are, so they need the guest's memory
//! identity-mapped (or paging still off).
//!
//! Seen on Xen 4.17 for a PVH dom0: version 0 (no memory map: dom0 reads the E820 with
//! `XENMEM_memory_map`), flags `SIF_PRIVILEGED | SIF_INITDOMAIN`, and an RSDP.
//!
//! ```
//! use xen_hypercall::xen::pvh::{self, HvmStartInfo};
//! let info = HvmStartInfo { magic: pvh::XEN_HVM_START_MAGIC_VALUE, version: 0, flags: 3,
//!     rsdp_paddr: 0xfc00_0000, ..HvmStartInfo::default() };
//! // SAFETY: `info` is valid for reads; a guest passes the address Xen gave it in `ebx`.
//! let read = unsafe { HvmStartInfo::read(&raw const info) }.unwrap();
//! assert!(read.is_initial_domain());
//! assert_eq!(read.rsdp_paddr, 0xfc00_0000);
//! ```

use core::ffi::CStr;

/// `XEN_HVM_START_MAGIC_VALUE`: "xEn3" with the top bit of the "E" set.
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

/// The `SIF_*` flags of `xen.h`, shared with a PV guest's `start_info` ([`x86::StartInfo`](super::x86::StartInfo)).
pub use super::x86::{SIF_INITDOMAIN, SIF_PRIVILEGED};

/// `XEN_HVM_MEMMAP_TYPE_RAM`.
pub const XEN_HVM_MEMMAP_TYPE_RAM: u32 = 1;
/// `XEN_HVM_MEMMAP_TYPE_RESERVED`.
pub const XEN_HVM_MEMMAP_TYPE_RESERVED: u32 = 2;
/// `XEN_HVM_MEMMAP_TYPE_ACPI`.
pub const XEN_HVM_MEMMAP_TYPE_ACPI: u32 = 3;
/// `XEN_HVM_MEMMAP_TYPE_NVS`.
pub const XEN_HVM_MEMMAP_TYPE_NVS: u32 = 4;
/// `XEN_HVM_MEMMAP_TYPE_UNUSABLE`.
pub const XEN_HVM_MEMMAP_TYPE_UNUSABLE: u32 = 5;
/// `XEN_HVM_MEMMAP_TYPE_DISABLED`.
pub const XEN_HVM_MEMMAP_TYPE_DISABLED: u32 = 6;
/// `XEN_HVM_MEMMAP_TYPE_PMEM`.
pub const XEN_HVM_MEMMAP_TYPE_PMEM: u32 = 7;

/// `struct hvm_start_info` (56 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmStartInfo {
    /// [`XEN_HVM_START_MAGIC_VALUE`].
    pub magic: u32,
    /// The version of this structure: 0, or 1 with the memory map.
    pub version: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// The number of entries at `modlist_paddr`.
    pub nr_modules: u32,
    /// The physical address of an array of [`HvmModlistEntry`].
    pub modlist_paddr: u64,
    /// The physical address of the NUL-terminated command line, or 0.
    pub cmdline_paddr: u64,
    /// The physical address of the ACPI RSDP, or 0.
    pub rsdp_paddr: u64,
    /// Version 1: the physical address of an array of [`HvmMemmapTableEntry`].
    pub memmap_paddr: u64,
    /// Version 1: the number of entries at `memmap_paddr` (0: no memory map).
    pub memmap_entries: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// `struct hvm_modlist_entry` (32 bytes): one module (dom0's initrd, for instance).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmModlistEntry {
    /// The physical address of the module.
    pub paddr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The physical address of its NUL-terminated command line, or 0.
    pub cmdline_paddr: u64,
    /// Reserved.
    pub reserved: u64,
}

/// `struct hvm_memmap_table_entry` (24 bytes): one region of the guest physical memory map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HvmMemmapTableEntry {
    /// The base address of the region.
    pub addr: u64,
    /// Its size in bytes.
    pub size: u64,
    /// `XEN_HVM_MEMMAP_TYPE_*`.
    pub r#type: u32,
    /// Must be zero.
    pub reserved: u32,
}

crate::impl_plain! {
    HvmStartInfo {
        magic: u32,
        version: u32,
        flags: u32,
        nr_modules: u32,
        modlist_paddr: u64,
        cmdline_paddr: u64,
        rsdp_paddr: u64,
        memmap_paddr: u64,
        memmap_entries: u32,
        reserved: u32,
    };
    HvmModlistEntry { paddr: u64, size: u64, cmdline_paddr: u64, reserved: u64 };
    HvmMemmapTableEntry { addr: u64, size: u64, r#type: u32, reserved: u32 };
}

/// What [`HvmStartInfo::read`] found instead of [`XEN_HVM_START_MAGIC_VALUE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadMagic(pub u32);

/// An array of `count` `T`s at physical address `paddr`: `None` if there are some but the address is null
/// or misaligned for `T`.
///
/// # Safety
///
/// With `count > 0` and a non-null aligned `paddr`, `paddr` must be valid for reads of `count` `T`s, left
/// unchanged for `'a`.
unsafe fn array<'a, T>(paddr: u64, count: u32) -> Option<&'a [T]> {
    if count == 0 {
        return Some(&[]);
    }
    let p = usize::try_from(paddr).ok()? as *const T;
    if p.is_null() || !p.is_aligned() {
        return None;
    }
    // SAFETY: non-null and aligned (checked); valid for `count` elements and unchanged for `'a` by the
    // contract.
    Some(unsafe { core::slice::from_raw_parts(p, count as usize) })
}

impl HvmStartInfo {
    /// A copy of the `hvm_start_info` at `info` (the address Xen passed in `ebx`), if its magic is right.
    /// In a version 0 structure the fields of version 1 (`memmap_paddr`, `memmap_entries`) read as 0.
    ///
    /// # Safety
    ///
    /// `info` must be valid for reads of 56 bytes. Xen writes the structure in the guest's memory
    /// before entering it; its address is a guest physical address, so it must be identity-mapped (or
    /// paging off).
    #[inline]
    pub unsafe fn read(info: *const HvmStartInfo) -> Result<HvmStartInfo, BadMagic> {
        // SAFETY: valid for reads by the contract; unaligned reads are allowed (Xen aligns it to 8).
        let mut copy = unsafe { info.read_unaligned() };
        if copy.magic != XEN_HVM_START_MAGIC_VALUE {
            return Err(BadMagic(copy.magic));
        }
        if copy.version < 1 {
            copy.memmap_paddr = 0;
            copy.memmap_entries = 0;
        }
        Ok(copy)
    }

    /// Whether `SIF_PRIVILEGED` is set.
    #[inline]
    pub const fn is_privileged(&self) -> bool {
        self.flags & SIF_PRIVILEGED != 0
    }

    /// Whether `SIF_INITDOMAIN` is set (the guest is dom0).
    #[inline]
    pub const fn is_initial_domain(&self) -> bool {
        self.flags & SIF_INITDOMAIN != 0
    }

    /// The modules: `Some(&[])` without any, `None` if the list's address is null or misaligned.
    ///
    /// # Safety
    ///
    /// `self` was read from what Xen wrote (its addresses are Xen's), the guest's memory is
    /// identity-mapped, and the guest leaves the list unchanged for `'a`.
    #[inline]
    pub unsafe fn modules<'a>(&self) -> Option<&'a [HvmModlistEntry]> {
        // SAFETY: the contract: Xen's address and count, identity-mapped, unchanged for 'a.
        unsafe { array(self.modlist_paddr, self.nr_modules) }
    }

    /// The memory map (version 1): `Some(&[])` without one (version 0, or no entries), `None` if its
    /// address is null or misaligned.
    ///
    /// # Safety
    ///
    /// As for [`modules`](HvmStartInfo::modules).
    #[inline]
    pub unsafe fn memmap<'a>(&self) -> Option<&'a [HvmMemmapTableEntry]> {
        // SAFETY: as in `modules`.
        unsafe { array(self.memmap_paddr, self.memmap_entries) }
    }

    /// The command line, or `None` if there is none (`cmdline_paddr` is 0).
    ///
    /// # Safety
    ///
    /// As for [`modules`](HvmStartInfo::modules): the NUL-terminated string at `cmdline_paddr`.
    #[inline]
    pub unsafe fn cmdline<'a>(&self) -> Option<&'a CStr> {
        let p = usize::try_from(self.cmdline_paddr).ok()? as *const core::ffi::c_char;
        if p.is_null() {
            return None;
        }
        // SAFETY: Xen wrote a NUL-terminated string there (contract), unchanged for 'a.
        Some(unsafe { CStr::from_ptr(p) })
    }
}
