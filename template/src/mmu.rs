// The stage-1 MMU: an identity map turned on by the entry code before any Rust code touches memory shared
// with Xen or another domain.
//
// Why: with the MMU off every data access is Device-nGnRnE (uncached), while Xen and dom0 map the same
// pages Normal cacheable. Xen's ARM guest ABI (`xen/include/public/arch-arm.h`, top comment, "Memory
// attributes") requires "all memory which is shared with other entities in the system (including the
// hypervisor and other guests)" — hypercall arguments, grant-shared pages and PV rings, shared_info and
// vcpu_info — to be "Normal Inner Write-Back Outer Write-Back Inner-Shareable". Uncached accesses to a
// page another agent caches are not coherent on hardware (an emulator without caches hides it).
//
// The map (virtual address = physical address, 4 KiB granule, 1 GiB and 2 MiB blocks where a region
// allows, 4 KiB pages elsewhere):
// - Normal, Inner/Outer Write-Back, Inner Shareable: the guest's RAM, that is the `reg` of the device
//   tree's `/memory` nodes, and the regions where Xen maps shared pages into the guest: the `reg` of the
//   `/hypervisor` node (its grant-table region, then any extended regions). A domU built by the toolstack
//   or by dom0less lives in Xen's fixed guest layout (`xen::layout`, from `arch-arm.h`): its magic pages
//   (console and xenstore rings, `GUEST_MAGIC_*`) are not in the device tree, and a dom0less domU's tree
//   may have no `/hypervisor` node, so `GUEST_GNTTAB_*` and `GUEST_MAGIC_*` are added for it. dom0 is
//   different: its memory is 1:1 with the host's, its grant-table region is wherever Xen put it (Xen's
//   own image) and the guest layout's holes may be host devices: it gets only what its tree says. A
//   guest is taken to be in the guest layout when its `/hypervisor` region starts at `GUEST_GNTTAB_BASE`
//   or it has none. Without a valid device tree: the guest layout's RAM banks. The image itself is
//   always mapped Normal.
// - Device-nGnRE, never executable: everything else (GIC, UART, other MMIO).
//
// AArch64: EL1 translation regime, `TTBR0_EL1` only, 39-bit addresses (`T0SZ = 25`, the walk starts at
// level 1: 512 GiB), output size from `ID_AA64MMFR0_EL1.PARange`. 32-bit ARM: the LPAE long-descriptor
// format (`TTBCR.EAE = 1`, 4 GiB through `TTBR0`), chosen because its descriptors, levels and `MAIR`
// attribute encodings are exactly AArch64's (one table builder for both), memory types are given by
// `MAIR0/1` as on AArch64 (short descriptors would need TEX remap for the same), and LPAE is present on
// every CPU that runs Xen (the virtualization extensions require it).
//
// Boot order (the entry code): relocate, set the stack, `mmu_build(device_tree)` (Rust, MMU still off: no
// unaligned access, which both targets' `strict-align` guarantees for compiled code), then `mmu_on_boot`
// (assembly: discard stale cache lines of the image, program the registers, enable). A secondary vCPU
// started with PSCI `CPU_ON` calls `mmu_on` first thing: the tables are built, it only programs its
// registers.
//
// Plain `//` comments: the example guests of the xen-hypercall repository include this file (`include!`).

use xen_hypercall::xen::layout;

// Descriptor bits (Arm ARM DDI 0487, "VMSAv8-64 translation table format descriptors"; the same bits in
// the long-descriptor format of 32-bit ARM with LPAE, DDI 0406C).
const BLOCK: u64 = 0b01; // a 1 GiB (level 1) or 2 MiB (level 2) block
const TABLE: u64 = 0b11; // at levels 1 and 2: the next table; at level 3: a 4 KiB page
const AF: u64 = 1 << 10; // Access Flag: set, or the first access faults
const INNER_SHAREABLE: u64 = 0b11 << 8; // SH[1:0]
const NEVER_EXECUTE: u64 = (1 << 54) | (1 << 53); // UXN/XN and PXN
const ATTR_DEVICE: u64 = 0 << 2; // AttrIndx 0: MAIR attribute 0
const ATTR_NORMAL: u64 = 1 << 2; // AttrIndx 1: MAIR attribute 1
// MAIR attribute 0 = 0x04: Device-nGnRE; attribute 1 = 0xff: Normal, Inner and Outer Write-Back
// Non-transient, Read- and Write-Allocate. `mmu_on` writes this into MAIR_EL1 / MAIR0.
pub const MAIR: u64 = 0xff04;

const DEVICE: u64 = AF | ATTR_DEVICE | NEVER_EXECUTE;
const NORMAL: u64 = AF | INNER_SHAREABLE | ATTR_NORMAL;
// The regions Xen maps shared pages into (grant table, magic pages, extended regions).
const SHARED: u64 = NORMAL;

// The bits of a block or page descriptor that are not its output address.
const ATTRIBUTES: u64 = 0xfff0_0000_0000_0ffc;
const ADDRESS: u64 = 0x0000_ffff_ffff_f000;

// The translated address space: 512 GiB on AArch64 (and on a host, where the builder is tested), 4 GiB
// on 32-bit ARM.
#[cfg(not(target_arch = "arm"))]
const LIMIT: u64 = 1 << 39;
#[cfg(target_arch = "arm")]
const LIMIT: u64 = 1 << 32;

// Tables: the level-1 table and a pool for the level-2 and level-3 tables that regions not aligned to
// 1 GiB need. An xl or dom0less domU uses 2 (the GiB holding the grant and magic regions, the one
// holding its RAM), dom0 under QEMU 2 (the GiB of its RAM; 4 KiB pages for its grant-table region).
// When the pool runs out, a partly covered block is mapped whole as Normal (a larger Normal region
// rather than a guest that cannot run).
const POOL: usize = 6;

#[repr(C, align(4096))]
struct Table([u64; 512]);

// The tables live in .bss, inside the image; Xen's walks read them through `TTBR0`.
static mut TABLES: [Table; POOL] = [const { Table([0; 512]) }; POOL];

// Builds the identity map: called once by the entry code, on the boot vCPU, with the MMU off. Returns
// the level-1 table's address (what `mmu_on` writes into TTBR0).
#[unsafe(no_mangle)]
pub extern "C" fn mmu_build(device_tree: usize) -> usize {
    // The tables are written only here, once, before the MMU uses them.
    let mut map = Map {
        tables: &raw mut TABLES,
        used: 1,
    };
    for i in 0..512 {
        let base = (i as u64) << 30;
        // SAFETY: index 0 is the level-1 table, in bounds.
        unsafe {
            (*map.tables)[0].0[i] = if base < LIMIT {
                base | DEVICE | BLOCK
            } else {
                0
            }
        };
    }
    let mut guest_layout = true;
    let found = device_tree_regions(device_tree, &mut |base, size, hypervisor, first| {
        if hypervisor && first && base != layout::GUEST_GNTTAB_BASE {
            guest_layout = false; // dom0: host layout
        }
        map.range(base, size, if hypervisor { SHARED } else { NORMAL });
    });
    if !found {
        for (base, size) in layout::GUEST_RAM_BANK_BASES
            .iter()
            .zip(layout::GUEST_RAM_BANK_SIZES)
        {
            map.range(*base, size, NORMAL);
        }
    }
    if guest_layout {
        map.range(layout::GUEST_GNTTAB_BASE, layout::GUEST_GNTTAB_SIZE, SHARED);
        map.range(layout::GUEST_MAGIC_BASE, layout::GUEST_MAGIC_SIZE, SHARED);
    }
    unsafe extern "C" {
        static _head: u8;
        static __image_end: u8;
    }
    let (start, end) = (&raw const _head as u64, &raw const __image_end as u64);
    map.range(start, end - start, NORMAL);
    map.tables as usize
}

struct Map {
    tables: *mut [Table; POOL],
    used: usize,
}

impl Map {
    // Maps [base, base + size) (rounded out to pages, cut at `LIMIT`) with `attributes`.
    fn range(&mut self, base: u64, size: u64, attributes: u64) {
        let end = base.saturating_add(size).min(LIMIT).next_multiple_of(4096);
        if base & !0xfff < end {
            self.fill(0, 1, base & !0xfff, end, attributes);
        }
    }

    // Maps [start, end) in table `t` of `level` (1, 2 or 3): whole entries as blocks or pages, partly
    // covered ones through a next-level table (split from the block that was there).
    fn fill(&mut self, t: usize, level: u32, start: u64, end: u64, attributes: u64) {
        let shift = 39 - 9 * level; // 30, 21, 12
        let size = 1u64 << shift;
        let mut at = start;
        while at < end {
            let block = at & !(size - 1);
            let next = block + size;
            let i = ((at >> shift) & 511) as usize;
            // SAFETY: `t` < `used` <= POOL and `i` < 512: in bounds; only this builder writes the tables.
            let entry = unsafe { &mut (*self.tables)[t].0[i] };
            let whole = at == block && end >= next;
            let table = level < 3 && *entry & 0b11 == TABLE;
            if whole || (!table && self.used == POOL) {
                *entry = block | attributes | if level == 3 { TABLE } else { BLOCK };
            } else {
                let child = if table {
                    self.index_of(*entry & ADDRESS)
                } else {
                    self.split(entry, level)
                };
                self.fill(child, level + 1, at, end.min(next), attributes);
            }
            at = next;
        }
    }

    // Replaces a block by a table of the next level that maps the same addresses the same way.
    fn split(&mut self, entry: &mut u64, level: u32) -> usize {
        let n = self.used;
        self.used += 1;
        let size = 1u64 << (39 - 9 * (level + 1));
        let kind = if level + 1 == 3 { TABLE } else { BLOCK };
        // SAFETY: `n` < POOL (the caller checked `used`); a table nothing references yet.
        let table = unsafe { &mut (*self.tables)[n] };
        for (i, e) in table.0.iter_mut().enumerate() {
            *e = ((*entry & ADDRESS) + i as u64 * size) | (*entry & ATTRIBUTES) | kind;
        }
        *entry = &raw const *table as u64 | TABLE;
        n
    }

    fn index_of(&self, address: u64) -> usize {
        (address - self.tables as u64) as usize / core::mem::size_of::<Table>()
    }
}

// Calls `found(base, size, hypervisor, first)` for each `reg` entry of the device tree's `/memory` nodes
// (`hypervisor` false) and of its `/hypervisor` node (true; `first` for its first entry, the grant-table
// region). Reads are aligned 32-bit words (the tree is big-endian, 4-byte aligned) and bytes, within the
// size the header gives. Returns false for no tree or a malformed one.
fn device_tree_regions(dtb: usize, found: &mut impl FnMut(u64, u64, bool, bool)) -> bool {
    let word = |at: usize| {
        // SAFETY: every caller passes a 4-byte aligned address inside the tree (the header's size), which
        // Xen or the toolstack put in the guest's RAM and nothing writes.
        u32::from_be(unsafe { (at as *const u32).read_volatile() })
    };
    // SAFETY: as above, one byte.
    let byte = |at: usize| unsafe { (at as *const u8).read_volatile() };
    if dtb == 0 || !dtb.is_multiple_of(8) || word(dtb) != 0xd00d_feed {
        return false;
    }
    let size = word(dtb + 4) as usize;
    let (structs, strings) = (dtb + word(dtb + 8) as usize, dtb + word(dtb + 12) as usize);
    let end = dtb + size;
    if size > 0x20_0000 || !structs.is_multiple_of(4) || structs >= end || strings >= end {
        return false;
    }
    // Is the NUL-terminated string at `at` equal to `name`, or `name@…` when `unit` is allowed?
    let is = |at: usize, name: &[u8], unit: bool| {
        let n = name.len();
        at + n < end
            && (0..n).all(|i| byte(at + i) == name[i])
            && (byte(at + n) == 0 || (unit && byte(at + n) == b'@'))
    };
    let (mut depth, mut address_cells, mut size_cells) = (0, 2, 1);
    let (mut memory, mut hypervisor) = (false, false);
    let mut at = structs;
    while at + 4 <= end {
        let token = word(at);
        at += 4;
        match token {
            1 => {
                // FDT_BEGIN_NODE, then the name.
                depth += 1;
                if depth == 2 {
                    memory = is(at, b"memory", true);
                    hypervisor = is(at, b"hypervisor", true);
                }
                while at < end && byte(at) != 0 {
                    at += 1;
                }
                at = (at + 4) & !3;
            }
            2 => depth -= 1, // FDT_END_NODE
            3 => {
                // FDT_PROP: length, name offset, value.
                if at + 8 > end {
                    return false;
                }
                let (len, name) = (word(at) as usize, word(at + 4) as usize);
                let value = at + 8;
                if len > end - value || name >= end - strings {
                    return false;
                }
                let name = strings + name;
                at = (value + len + 3) & !3;
                if depth == 1 && len == 4 && is(name, b"#address-cells", false) {
                    address_cells = word(value) as usize;
                } else if depth == 1 && len == 4 && is(name, b"#size-cells", false) {
                    size_cells = word(value) as usize;
                } else if depth == 2 && (memory || hypervisor) && is(name, b"reg", false) {
                    let cells = |at: usize, n: usize| {
                        (0..n).fold(0u64, |v, i| v << 32 | word(at + 4 * i) as u64)
                    };
                    let step = 4 * (address_cells + size_cells);
                    if !(1..=2).contains(&address_cells) || !(1..=2).contains(&size_cells) {
                        return false;
                    }
                    let mut e = value;
                    while e + step <= value + len {
                        let size = cells(e + 4 * address_cells, size_cells);
                        found(cells(e, address_cells), size, hypervisor, e == value);
                        e += step;
                    }
                }
            }
            4 => {}           // FDT_NOP
            9 => return true, // FDT_END
            _ => return false,
        }
    }
    false
}

// `mmu_on_boot` (boot vCPU): invalidate the image's data cache lines, then `mmu_on`.
// `mmu_on` (every vCPU): program the translation registers, invalidate the TLB, enable the MMU and the
// caches. Both preserve x0 (r0), use no stack, and return with the identity map on. A secondary vCPU
// must not invalidate: its lines may be the only copy of what the boot vCPU wrote since.
//
// The order is the Arm ARM's (DDI 0487; DDI 0406C for 32-bit ARM):
// - "Ordering and completion of data and instruction cache instructions": what was written with the MMU
//   off went to memory uncached, but the caches may still hold older copies of those lines (Xen loaded
//   the image through its own cached mapping and cleaned it). They are invalidated by address to the
//   Point of Coherency before the caches are turned on, and a `dsb` completes that. (With stage 2 on,
//   an invalidate at EL1 may be performed as clean and invalidate: the lines are clean, so either way
//   memory keeps what was written.)
// - "Synchronization requirements for AArch64 System registers": a write to MAIR, TCR or TTBR0 is seen
//   by later instructions only after a context synchronization event: `isb`.
// - "Ordering and completion of TLB maintenance instructions": a TLB invalidation is complete only after
//   a `dsb`, and seen by the instruction stream after an `isb`. Then SCTLR (M, C, I), then `isb`: the
//   identity map makes the instruction after the write the same whether or not it is translated.
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".text",
    ".global mmu_on_boot",
    "mmu_on_boot:",
    "    mrs     x1, ctr_el0",
    "    ubfx    x1, x1, #16, #4", // DminLine: log2 of the smallest line, in words
    "    mov     x2, #4",
    "    lsl     x2, x2, x1",      // line size in bytes
    "    adrp    x3, _head",
    "    add     x3, x3, :lo12:_head",
    "    adrp    x4, __image_end",
    "    add     x4, x4, :lo12:__image_end",
    "1:  dc      ivac, x3",        // invalidate to the Point of Coherency
    "    add     x3, x3, x2",
    "    cmp     x3, x4",
    "    b.lo    1b",
    "    dsb     sy",
    ".global mmu_on",
    "mmu_on:",
    "    mov     x1, #{mair}",
    "    msr     mair_el1, x1",
    // TCR_EL1: T0SZ 25, IRGN0/ORGN0 Write-Back Write-Allocate, SH0 Inner Shareable, TG0 4 KiB,
    // EPD1 (no TTBR1 walks), IPS = PARange.
    "    movz    x1, #(25 | 1 << 8 | 1 << 10 | 3 << 12)",
    "    movk    x1, #(1 << (23 - 16)), lsl #16",
    "    mrs     x2, id_aa64mmfr0_el1",
    "    bfi     x1, x2, #32, #3",
    "    msr     tcr_el1, x1",
    "    adrp    x1, {tables}",
    "    add     x1, x1, :lo12:{tables}",
    "    msr     ttbr0_el1, x1",
    "    isb",
    "    tlbi    vmalle1",
    "    ic      iallu",
    "    dsb     nsh",
    "    isb",
    "    mrs     x1, sctlr_el1",
    "    orr     x1, x1, #(1 << 0)",  // M: the MMU
    "    orr     x1, x1, #(1 << 2)",  // C: data caches
    "    orr     x1, x1, #(1 << 12)", // I: instruction caches
    "    msr     sctlr_el1, x1",
    "    isb",
    "    ret",
    mair = const MAIR,
    tables = sym TABLES,
);

// 32-bit ARM (A32 code, callable from Thumb by `blx`): the same with CP15 registers. TTBCR: EAE (long
// descriptors), T0SZ 0 (4 GiB through TTBR0), IRGN0/ORGN0 Write-Back Write-Allocate, SH0 Inner
// Shareable, EPD1. DCIMVAC invalidates by address to the Point of Coherency; TLBIALL, ICIALLU.
#[cfg(target_arch = "arm")]
core::arch::global_asm!(
    ".text",
    ".arm",
    ".global mmu_on_boot",
    ".type mmu_on_boot, %function",
    "mmu_on_boot:",
    "    mrc     p15, 0, r1, c0, c0, 1", // CTR
    "    ubfx    r1, r1, #16, #4",
    "    mov     r2, #4",
    "    lsl     r2, r2, r1",
    "    ldr     r3, =_head",
    "    ldr     r12, =__image_end",
    "1:  mcr     p15, 0, r3, c7, c6, 1", // DCIMVAC
    "    add     r3, r3, r2",
    "    cmp     r3, r12",
    "    blo     1b",
    "    dsb     sy",
    ".global mmu_on",
    ".type mmu_on, %function",
    "mmu_on:",
    "    ldr     r1, ={mair}",
    "    mcr     p15, 0, r1, c10, c2, 0", // MAIR0: attributes 0-3
    "    mov     r1, #0",
    "    mcr     p15, 0, r1, c10, c2, 1", // MAIR1: attributes 4-7
    "    ldr     r1, =(1 << 31 | 1 << 23 | 3 << 12 | 1 << 10 | 1 << 8)",
    "    mcr     p15, 0, r1, c2, c0, 2", // TTBCR
    "    ldr     r1, ={tables}",
    "    mov     r2, #0",
    "    mcrr    p15, 0, r1, r2, c2", // TTBR0 (64-bit)
    "    isb",
    "    mcr     p15, 0, r1, c8, c7, 0", // TLBIALL
    "    mcr     p15, 0, r1, c7, c5, 0", // ICIALLU
    "    dsb     nsh",
    "    isb",
    "    mrc     p15, 0, r1, c1, c0, 0", // SCTLR
    "    orr     r1, r1, #(1 << 0)",     // M
    "    orr     r1, r1, #(1 << 2)",     // C
    "    orr     r1, r1, #(1 << 12)",    // I
    "    mcr     p15, 0, r1, c1, c0, 0",
    "    isb",
    "    bx      lr",
    "    .ltorg",
    mair = const MAIR,
    tables = sym TABLES,
);
