// Entry code and image headers: what Xen needs to load and enter the guest as dom0 (or a domU).
//
// Xen places an AArch64 kernel wherever the domain's memory is, so the image is linked at 0 as a
// position-independent executable (`-C relocation-model=pie`, `link-a64.ld`) and the entry code applies its
// own relative relocations before any Rust code runs. The linker script puts bss and the stack inside the
// file, so the header's size is the whole footprint. The entry code enables FP/SIMD (rustc uses the SIMD
// registers), sets the stack, builds the identity map and turns the MMU and caches on (`mmu.rs`: memory
// shared with Xen must be Normal cacheable) and calls `guest_main(device_tree)`, which must not return.
//
// STACK: 256 KiB, with nothing to catch an overflow: it runs silently into the statics below it (the
// identity map's tables, in some layouts). The library's drivers keep their state in the caller's frame:
// on AArch64 `BlkFront::connect` and the program that holds the frontend take about 90 KiB of it. The
// image holds it as zeros: the lowest word written since (`__stack_bottom` upwards) is the high-water mark.
//
// Plain `//` comments: the example guests of the xen-hypercall repository include this file (`include!`).

// AArch64: the Linux arm64 `Image` header (64 bytes), entered at EL1 with the MMU off, x0 = device tree.
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".section .text.head, \"ax\"",
    ".global _head",
    "_head:",
    "    b       _start",              // code0: branch to the entry code
    "    .word   0",                   // code1
    "    .quad   0",                   // text_offset
    "    .quad   __image_end - _head", // image_size, bss and stack included
    "    .quad   0",                   // flags: little endian
    "    .quad   0, 0, 0",             // reserved
    "    .ascii  \"ARM\\x64\"",        // magic
    "    .word   0",                   // reserved
    "_start:",
    "    mov     x19, x0",        // keep the device tree address
    "    mov     x1, #(3 << 20)", // CPACR_EL1.FPEN: rustc uses SIMD registers
    "    msr     cpacr_el1, x1",
    "    isb",
    "    adr     x0, _head", // where Xen placed us (link address 0)
    "    adrp    x1, __rela_start",
    "    add     x1, x1, :lo12:__rela_start",
    "    adrp    x2, __rela_end",
    "    add     x2, x2, :lo12:__rela_end",
    "1:  cmp     x1, x2", // for each Elf64_Rela
    "    b.hs    2f",
    "    ldp     x3, x4, [x1], #16", // r_offset, r_info
    "    ldr     x5, [x1], #8",      // r_addend
    "    cmp     x4, #1027",         // R_AARCH64_RELATIVE
    "    b.ne    1b",
    "    add     x5, x5, x0",
    "    str     x5, [x0, x3]",
    "    b       1b",
    "2:  adrp    x1, __stack_top",
    "    add     x1, x1, :lo12:__stack_top",
    "    mov     sp, x1",
    "    mov     x0, x19",
    "    bl      mmu_build",   // the identity map, built with the MMU off (mmu.rs)
    "    bl      mmu_on_boot", // MMU and caches on
    "    mov     x0, x19",
    "    bl      guest_main",
    "3:  wfi",
    "    b       3b",
    ".section .bss.stack, \"aw\", %nobits",
    ".balign 16",
    ".global __stack_bottom, __stack_top", // for a program that measures its stack
    ".hidden __stack_bottom, __stack_top",
    "__stack_bottom:",
    "    .space  0x40000", // 256 KiB: see `STACK` in the notes above
    "__stack_top:",
);

// 32-bit ARM: the zImage header, entered in A32 state at EL1 with the MMU off, r2 = device tree. The image
// is linked at the load address its header names (`link-a32.ld`), so it needs no relocation.
// `guest_main` may be Thumb code: `bl` from A32 to a Thumb function is turned into `blx` by the linker.
#[cfg(target_arch = "arm")]
core::arch::global_asm!(
    ".section .text.head, \"ax\"",
    ".arm",
    ".global _head",
    "_head:",
    "    .rept   8",
    "    mov     r0, r0", // 0x00-0x1f: no-ops, as in Linux's zImage
    "    .endr",
    "    b       _start",      // 0x20
    "    .word   0x016f2818",  // 0x24: zImage magic
    "    .word   _head",       // 0x28: load address
    "    .word   __image_end", // 0x2c: end address, bss and stack included
    "    .word   0x04030201",  // 0x30: little endian
    "_start:",
    "    ldr     sp, =__stack_top",
    "    mov     r4, r2", // the device tree
    "    mov     r0, r2",
    "    bl      mmu_build",   // the identity map, built with the MMU off (mmu.rs)
    "    bl      mmu_on_boot", // MMU and caches on
    "    mov     r0, r4",
    "    bl      guest_main",
    "1:  wfi",
    "    b       1b",
    "    .ltorg",
    ".section .bss.stack, \"aw\", %nobits",
    ".balign 16",
    ".global __stack_bottom, __stack_top", // for a program that measures its stack
    ".hidden __stack_bottom, __stack_top",
    "__stack_bottom:",
    "    .space  0x40000", // 256 KiB: see `STACK` in the notes above
    "__stack_top:",
);
