//! Xen's ELF notes and the two entry points of the one ELF.
//!
//! - `pv_start` (note ENTRY, also the ELF entry): a 64-bit PV dom0 starts here in long mode with paging on,
//!   on page tables Xen built that map the image where it is linked.
//! - `pvh_start` (note PHYS32_ENTRY): a PVH dom0 starts here in 32-bit protected mode with paging off and
//!   `ebx` = the physical address of `hvm_start_info`. It identity-maps the first GiB with 2 MiB pages,
//!   enables PAE and long mode, and jumps to 64-bit code.
//!
//! Both set up the stack and call `guest_main(pvh, start_info)`: PV passes on `rsi` (the virtual address
//! of `start_info`, as Xen entered it), PVH `ebx` (the physical address of `hvm_start_info`).

core::arch::global_asm!(
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

    note_begin 6   /* GUEST_OS */
    .asciz "xen-hypercall"
    note_end
    note_begin 7   /* GUEST_VERSION */
    .asciz "0"
    note_end
    note_begin 5   /* XEN_VERSION */
    .asciz "xen-3.0"
    note_end
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
    note_begin 18   /* PHYS32_ENTRY */
    .long pvh_start
    note_end

    .pushsection .text.entry, "ax"
    .code64
    .globl pv_start
pv_start:
    lea stack_top(%rip), %rsp
    xor %edi, %edi
    call guest_main
    ud2

    .code32
    .globl pvh_start
pvh_start:
    cli
    mov $pvh_pd, %edi
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, (%edi, %ecx, 8)
    movl $0, 4(%edi, %ecx, 8)
    inc %ecx
    cmp $512, %ecx
    jb 2b
    mov $pvh_pd + 3, %eax
    mov %eax, pvh_pdpt
    mov $pvh_pdpt + 3, %eax
    mov %eax, pvh_pml4
    mov $pvh_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov $0xc0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax
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
pvh_pd:   .fill 4096, 1, 0
    .popsection

    .pushsection .bss.stack, "aw", @nobits
    .balign 16
    .space 65536
stack_top:
    .popsection
"#,
    options(att_syntax)
);

// The PV hypercall page: Xen fills the page this note names before dom0 starts.
#[cfg(feature = "outline")]
xen_hypercall::hypercall_page_note!();
