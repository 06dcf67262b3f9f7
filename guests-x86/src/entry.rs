//! The dom0's entry points: one ELF boots as a PV and as a PVH dom0.
//!
//! - `pv_start` (note ENTRY, also the ELF entry): a 64-bit PV dom0 starts here in long mode with paging on,
//!   on page tables Xen built that map the image where it is linked. It sets up the stack and calls
//!   `guest_main(0, rsi)`: the virtual address of `start_info`, as Xen entered it.
//! - `pvh_start` (note PHYS32_ENTRY, `pvh.rs`, shared with the `xl` domU): a PVH dom0 starts there and
//!   calls `guest_main(1, ebx)`: the physical address of `hvm_start_info`.
//!
//! Here are the notes only a PV guest needs (`pvh.rs` has the common ones).

core::arch::global_asm!(
    crate::pvh::xen_notes!(
        r#"
    note_begin 8   /* LOADER */
    .asciz "generic"
    note_end
    note_begin 3   /* VIRT_BASE */
    .quad 0
    note_end
    note_begin 4   /* PADDR_OFFSET */
    .quad 0
    note_end
    note_begin 1   /* ENTRY */
    .quad pv_start
    note_end
    note_begin 10   /* FEATURES */
    .asciz "!writable_page_tables"
    note_end
    note_begin 17   /* SUPPORTED_FEATURES: XENFEAT_dom0 */
    .long (1 << 11)
    note_end
"#
    ),
    r#"
    .pushsection .text.entry, "ax"
    .code64
    .globl pv_start
pv_start:
    lea stack_top(%rip), %rsp
    xor %edi, %edi
    call guest_main
    ud2

    .popsection
"#,
    options(att_syntax)
);

// The PV hypercall page: Xen fills the page this note names before dom0 starts.
#[cfg(feature = "outline")]
xen_hypercall::hypercall_page_note!();
