//! The PVH entry both x86-64 guests share (the dom0, `main.rs`, and the `xl` domU, `bin/xl_pvh.rs`), and
//! the Xen ELF notes a PVH guest needs.
//!
//! The PVH boot protocol (`public/arch-x86/hvm/start_info.h`, `docs/misc/pvh.pandoc`): Xen (a dom0) or
//! libxl (a domU) loads the ELF where it is linked and enters the `PHYS32_ENTRY` note's address,
//! `pvh_start`, in 32-bit protected mode, paging off, `ebx` holding the physical address of the
//! `hvm_start_info`. `pvh_start` identity-maps the first 4 GiB with 2 MiB pages (a domU's special pages,
//! the console and xenstore rings among them, sit just below 4 GiB), turns on PAE and long mode, sets up
//! the stack and calls `guest_main(1, ebx)`.
//!
//! The stack (`stack_top`, global) serves the dom0's PV entry as well (`entry.rs`).

/// Xen's ELF notes (`public/elfnote.h`): `notes` is assembly that writes each as `note_begin TYPE`, its
/// data, `note_end`; the two macros are defined around it and forgotten after it.
macro_rules! xen_notes {
    ($notes:literal) => {
        concat!(
            r#"
    .macro note_begin type
    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 2f - 1f
    .long \type
    .asciz "Xen"
    .balign 4
1:
    .endm
    .macro note_end
2:  .balign 4
    .popsection
    .endm
"#,
            $notes,
            r#"
    .purgem note_begin
    .purgem note_end
"#
        )
    };
}
#[allow(unused_imports)] // used by the dom0's `entry.rs`, not by the xl domU
pub(crate) use xen_notes;

core::arch::global_asm!(
    xen_notes!(
        r#"
    note_begin 6   /* GUEST_OS */
    .asciz "xen-hypercall"
    note_end
    note_begin 7   /* GUEST_VERSION */
    .asciz "0"
    note_end
    note_begin 5   /* XEN_VERSION */
    .asciz "xen-3.0"
    note_end
    note_begin 18   /* PHYS32_ENTRY */
    .long pvh_start
    note_end
"#
    ),
    r#"
    .pushsection .text.entry, "ax"
    .code32
    .globl pvh_start
pvh_start:
    cli
    /* Four page directories, 2048 entries: entry i maps [i * 2 MiB, (i + 1) * 2 MiB) present, writable,
       large (0x83). */
    mov $pvh_pd, %edi
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, (%edi, %ecx, 8)
    movl $0, 4(%edi, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jb 1b
    /* The first four PDPT entries name the four directories. */
    mov $pvh_pdpt, %edi
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $12, %eax
    add $pvh_pd + 3, %eax
    mov %eax, (%edi, %ecx, 8)
    movl $0, 4(%edi, %ecx, 8)
    inc %ecx
    cmp $4, %ecx
    jb 2b
    mov $pvh_pdpt + 3, %eax
    mov %eax, pvh_pml4
    mov $pvh_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax          /* PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx   /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax    /* PG, PE */
    mov %eax, %cr0
    lgdt pvh_gdt_ptr
    ljmp $0x08, $pvh_long

    .code64
pvh_long:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    lea stack_top(%rip), %rsp
    mov $1, %edi
    mov %ebx, %esi
    call guest_main
    ud2

    .balign 8
pvh_gdt:
    .quad 0
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
pvh_gdt_ptr:
    .word 23
    .long pvh_gdt
    .popsection

    .pushsection .data.pagetables, "aw"
    .balign 4096
pvh_pml4: .fill 4096, 1, 0
pvh_pdpt: .fill 4096, 1, 0
pvh_pd:   .fill 4 * 4096, 1, 0
    .popsection

    .pushsection .bss.stack, "aw", @nobits
    .balign 16
    .space 65536
    .globl stack_top
stack_top:
    .popsection
"#,
    options(att_syntax)
);

/// The frames `pvh_start` identity-maps (the first 4 GiB): an address the guest is given beyond them
/// cannot be read through the map.
pub const MAPPED_FRAMES: u64 = 1 << 20;
