//! The hypercall page on x86-64: 4 KiB of 32-byte entries that Xen fills with the trap suiting the guest,
//! `xen_hypercall_page + nr * 32` being the entry of call `nr`.
//!
//! - A PV guest names the page in its ELF note `XEN_ELFNOTE_HYPERCALL_PAGE` (the address of
//!   [`page_address`](crate::arch::x86_page::page_address)), which
//!   [`hypercall_page_note!`](crate::hypercall_page_note) emits; Xen writes the page before the guest
//!   starts, each entry `push %rcx; push %r11; mov $nr,%eax; syscall; pop %r11; pop %rcx; ret`.
//! - An HVM or PVH guest asks Xen to write it: CPUID leaf `base + 2` of Xen's leaves names an MSR, and
//!   writing the page's guest physical address there makes Xen fill it with `mov $nr,%eax; vmcall; ret`
//!   (`vmmcall` on AMD). [`register_hvm`](crate::arch::x86_page::register_hvm) does that.
//!
//! Until Xen has written it, every byte is `int3` (0xcc): a call through an unregistered page traps at once.

// The page itself: page-aligned, executable, in its own section so the linker keeps it only where used.
core::arch::global_asm!(
    ".pushsection .text.xen_hypercall_page,\"ax\",@progbits",
    ".balign 4096",
    ".globl xen_hypercall_page",
    ".type xen_hypercall_page,@function",
    "xen_hypercall_page:",
    ".fill 4096, 1, 0xcc",
    ".size xen_hypercall_page, 4096",
    ".popsection",
);

unsafe extern "C" {
    #[link_name = "xen_hypercall_page"]
    static PAGE: [u8; 4096];
}

/// The bytes per entry of the page.
pub const ENTRY_BYTES: usize = 32;

/// `XEN_ELFNOTE_HYPERCALL_PAGE` (`public/elfnote.h`): the type of the ELF note in which a PV guest names
/// its hypercall page (its virtual address, 8 bytes).
pub const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;

/// The address of the hypercall page (the symbol `xen_hypercall_page`): a `const fn`, so it can
/// initialise constants (a pointer in a `const` is a link-time value).
///
/// For [`register_hvm`], which takes a guest physical address (`u64`, as the MSR does): with paging
/// identity-mapped, as a PVH guest starts, that is `page_address() as u64`; otherwise translate it.
///
/// ```no_run
/// use xen_hypercall::outline::page;
/// const PAGE: *const u8 = page::page_address();
/// // SAFETY: ring 0 of a PVH guest with paging identity-mapped, before any call through the page.
/// let msr = unsafe { page::register_hvm(PAGE as u64) };
/// # let _ = msr;
/// ```
pub const fn page_address() -> *const u8 {
    (&raw const PAGE).cast()
}

/// Emits the ELF note in which a 64-bit PV guest names its hypercall page: `XEN_ELFNOTE_HYPERCALL_PAGE`
/// (type 2, name `"Xen"`) in section `.note.Xen`, its 8-byte descriptor the address of
/// `xen_hypercall_page`, the library's page ([`page_address`](crate::outline::page::page_address)).
/// Xen's PV domain builder writes its entries there before the guest starts; an HVM/PVH guest ignores
/// the note and registers the page with [`register_hvm`](crate::outline::page::register_hvm) instead.
///
/// Invoke it once, at item level, in the guest's binary; its linker script must keep `.note.Xen`
/// (`KEEP(*(.note.Xen))`), like the guest's other Xen notes. x86-64 bare-metal builds only.
///
/// ```ignore
/// // The PV guest's `HYPERCALL_PAGE` note, next to its `ENTRY`, `XEN_VERSION`, … notes.
/// xen_hypercall::hypercall_page_note!();
/// ```
#[macro_export]
macro_rules! hypercall_page_note {
    () => {
        ::core::arch::global_asm!(
            ".pushsection .note.Xen, \"a\", @note",
            ".balign 4",
            ".long 4",
            ".long 8",
            ".long {note_type}",
            ".asciz \"Xen\"",
            ".balign 4",
            ".quad xen_hypercall_page",
            ".popsection",
            note_type = const $crate::outline::page::XEN_ELFNOTE_HYPERCALL_PAGE,
            options(att_syntax),
        );
    };
}

/// Xen's CPUID leaves: the base leaf whose signature reads `XenVMMXenVMM`, if the CPU is a Xen HVM/PVH
/// guest's (a PV guest's CPUID shows no such leaf unless Xen forces it).
pub fn xen_cpuid_base() -> Option<u32> {
    (0x4000_0000u32..0x4001_0000).step_by(0x100).find(|&base| {
        let r = core::arch::x86_64::__cpuid(base);
        r.ebx == u32::from_le_bytes(*b"XenV")
            && r.ecx == u32::from_le_bytes(*b"MMXe")
            && r.edx == u32::from_le_bytes(*b"nVMM")
            && r.eax >= base + 2
    })
}

/// Why the hypercall page could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageError {
    /// No CPUID leaf says `XenVMMXenVMM`: not an HVM/PVH guest of Xen.
    NotXenHvm,
    /// Xen's leaf `base + 2` names no page (zero pages).
    NoPage,
}

/// Registers the hypercall page with Xen in an HVM or PVH guest: writes `gpa`, the page's guest physical
/// address, to the MSR CPUID leaf `base + 2` names. Returns that MSR's index.
///
/// # Safety
///
/// The caller runs in ring 0 of an HVM or PVH guest of Xen (`wrmsr` faults elsewhere) and `gpa` is the
/// guest physical address of [`page_address`] (with paging identity-mapped, `page_address() as u64`). Xen then
/// writes the page: no other code may be using its bytes.
pub unsafe fn register_hvm(gpa: u64) -> Result<u32, PageError> {
    let base = xen_cpuid_base().ok_or(PageError::NotXenHvm)?;
    let leaf = core::arch::x86_64::__cpuid(base + 2);
    if leaf.eax == 0 {
        return Err(PageError::NoPage);
    }
    let msr = leaf.ebx;
    // SAFETY: ring 0 in a Xen HVM/PVH guest (the caller's contract); the MSR is the one Xen's CPUID leaf
    // names for this purpose, and `gpa` is the page's address. Xen writes only that page.
    unsafe {
        core::arch::asm!(
            "wrmsr",
            in("ecx") msr,
            in("eax") gpa as u32,
            in("edx") (gpa >> 32) as u32,
            options(nostack, preserves_flags),
        );
    }
    Ok(msr)
}
