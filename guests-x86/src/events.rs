//! Event delivery, PV and PVH.
//!
//! - Both: the shared info page is mapped over [`SHARED_INFO`] (PVH: `XENMEM_add_to_physmap`, the page's
//!   address being its frame; PV: `update_va_mapping` of the page's virtual address to the machine frame
//!   `start_info` names), and an event the guest sends itself over a loopback channel is found there by
//!   polling ([`evtchn::Events`]).
//! - PVH: vCPU 0's `vcpu_info` moves to [`VCPU_INFO`] (`VCPUOP_register_vcpu_info`), the IDT gets an
//!   interrupt gate for the callback vector, and with interrupts enabled the event arrives as that
//!   interrupt: the handler drains the ports through the registered `vcpu_info` and records them. With
//!   `HVM_PARAM_CALLBACK_TYPE_VECTOR` Xen injects the vector itself while the `vcpu_info`'s
//!   `evtchn_upcall_pending` is set (`hvm_vcpu_has_pending_irq`, `hvm/irq.c`), not through the local
//!   APIC: there is no EOI, and the handler must clear the flag (draining does) before `iretq`. Two
//!   controls: a masked port, and interrupts disabled, hold the upcall back until the port is unmasked
//!   (`EVTCHNOP_unmask`) or interrupts enabled.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use xen_hypercall::xen::evtchn::{self, Events, Port};
use xen_hypercall::xen::vcpu::{self, VcpuInfo};
use xen_hypercall::xen::{DomId, memory};

use crate::checks::{Checks, failed};

/// The vector this guest asks events on (Linux's `HYPERVISOR_CALLBACK_VECTOR`); a PVH guest takes them
/// there (`events.rs`).
pub const CALLBACK_VECTOR: u8 = 0xf3;

/// The page the shared info page is mapped over (PVH: its address is its frame; PV: its virtual address
/// is remapped). Accessed only through [`EVENTS`] and [`REGISTERED`] once mapped.
#[repr(C, align(4096))]
pub struct Page([u8; 4096]);
pub static mut SHARED_INFO: Page = Page([0; 4096]);

/// vCPU 0's `vcpu_info` once registered (PVH), in a 64-byte slot of its own.
#[repr(C, align(64))]
struct Slot(VcpuInfo);
// SAFETY: all-zero bytes are a valid `VcpuInfo` (integers only).
static mut VCPU_INFO: Slot = Slot(unsafe { core::mem::zeroed() });

/// Delivery through the shared info page's slot for vCPU 0.
// SAFETY: SHARED_INFO is used through `Events` only once Xen's page is mapped there.
static EVENTS: Events = unsafe { Events::new((&raw mut SHARED_INFO).cast()) };
/// Delivery through the registered `vcpu_info` (PVH), used by the interrupt handler.
// SAFETY: as above; VCPU_INFO is Xen's once registered, accessed through `REGISTERED` only.
static REGISTERED: Events =
    unsafe { Events::with_vcpu_info((&raw mut SHARED_INFO).cast(), &raw mut VCPU_INFO.0) };

/// Whether vCPU 0's `vcpu_info` (and so its `vcpu_time_info`) moved to [`VCPU_INFO`].
static MOVED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The `vcpu_info` Xen keeps vCPU 0's time in: the registered one once moved, else the shared info
/// page's slot.
pub fn vcpu_info() -> *mut VcpuInfo {
    if MOVED.load(Ordering::Acquire) {
        // SAFETY: only the address is taken.
        unsafe { &raw mut VCPU_INFO.0 }
    } else {
        // SAFETY: only the address of the slot inside the static is taken.
        unsafe { &raw mut (*(&raw mut SHARED_INFO).cast::<vcpu::SharedInfo>()).vcpu_info[0] }
    }
}

/// Whether the shared info page was mapped.
pub fn shared_info_mapped() -> bool {
    MAPPED.load(Ordering::Acquire)
}
static MAPPED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// What the interrupt handler saw: how often it ran, how many ports it took, the last one.
static UPCALLS: AtomicU32 = AtomicU32::new(0);
static TAKEN: AtomicU32 = AtomicU32::new(0);
static LAST: AtomicU32 = AtomicU32::new(u32::MAX);

/// The IDT: 256 16-byte gates, only the callback vector's present.
#[repr(C, align(16))]
struct Idt([u64; 512]);
static mut IDT: Idt = Idt([0; 512]);

core::arch::global_asm!(
    r#"
    .pushsection .text, "ax"
    .globl xen_upcall_entry
xen_upcall_entry:
    /* The caller-saved registers (no SSE: the target is soft-float); 9 pushes on the 40-byte frame
       keep the stack 16-byte aligned at the call. */
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    cld
    call xen_upcall_handler
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    iretq
    .popsection
"#,
    options(att_syntax)
);

unsafe extern "C" {
    fn xen_upcall_entry();
}

/// The callback vector's handler: drains the pending ports through the registered `vcpu_info` (which
/// clears `evtchn_upcall_pending`, so Xen stops injecting the vector).
#[unsafe(no_mangle)]
extern "C" fn xen_upcall_handler() {
    UPCALLS.fetch_add(1, Ordering::SeqCst);
    REGISTERED.for_each_pending(|p| {
        TAKEN.fetch_add(1, Ordering::SeqCst);
        LAST.store(p.0, Ordering::SeqCst);
    });
}

/// Installs the IDT with an interrupt gate (type 0xE, present, DPL 0, code selector 0x08 of
/// `pvh.rs`'s GDT) for `vector`.
fn install_idt(vector: u8) {
    let off = xen_upcall_entry as *const () as u64;
    let low = (off & 0xffff) | (0x08 << 16) | (0x8e00 << 32) | ((off >> 16) & 0xffff) << 48;
    let high = off >> 32;
    let idt = (&raw mut IDT).cast::<u64>();
    // SAFETY: the gate's two words are inside IDT (vector < 256), written once, here, before `lidt` and
    // with interrupts disabled.
    unsafe {
        idt.add(2 * vector as usize).write(low);
        idt.add(2 * vector as usize + 1).write(high);
    }
    #[repr(C, packed)]
    struct Ptr {
        limit: u16,
        base: u64,
    }
    let p = Ptr {
        limit: 4095,
        base: idt as u64,
    };
    // SAFETY: ring 0 of a PVH guest; the IDT is a static that lives forever, and only its callback
    // vector's gate is present (no interrupt is enabled before it is installed).
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &raw const p, options(readonly, nostack)) };
}

fn sti() {
    // SAFETY: the IDT is installed; `nop` lets the interrupt shadow of `sti` pass.
    unsafe { core::arch::asm!("sti", "nop", options(nomem, nostack)) };
}

fn cli() {
    // SAFETY: disables interrupts, nothing else.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
}

/// Maps the shared info page over [`SHARED_INFO`]; `false` (with a FAIL line) if Xen refused.
fn map_shared_info(c: &mut Checks, pvh: bool, start_info: u64) -> bool {
    let page = &raw mut SHARED_INFO;
    if pvh {
        // SAFETY: SHARED_INFO is a page-aligned static nothing else uses; from now on it is Xen's shared
        // info page, accessed only through `Events`. Memory is identity-mapped, so its address gives its
        // frame.
        return match unsafe { memory::map_shared_info(page as u64 / 4096) } {
            Ok(()) => true,
            Err(e) => {
                failed(c, "memory::map_shared_info", e);
                false
            }
        };
    }
    pv_map_shared_info(c, page, start_info)
}

#[cfg(any(feature = "pv", feature = "outline"))]
fn pv_map_shared_info(c: &mut Checks, page: *mut Page, start_info: u64) -> bool {
    use core::sync::atomic::AtomicU8;
    use xen_hypercall::xen;
    use xen_hypercall::xen::mmu::{self, Flush, Pte};
    use xen_hypercall::xen::vcpu::SharedInfo;
    use xen_hypercall::xen::x86::{StartInfo, XEN_LEGACY_MAX_VCPUS};
    let name = "mmu::update_va_mapping of the shared info page";
    // SAFETY: Xen maps the start_info page at `rsi` before entering a PV guest.
    let Some(info) = (unsafe { StartInfo::read(start_info as *const StartInfo) }) else {
        c.check(name, false, format_args!("no start_info magic"));
        return false;
    };
    // A control first: a frame Xen must refuse to map writable (EBUSY: its type is a page table, not a
    // writable page), the guest's own top-level page table
    // (its machine frame from the p2m list: with VIRT_BASE 0 the pseudo-physical frame of a virtual
    // address is the address / 4096).
    // SAFETY: `mfn_list` is the virtual address of one machine frame per pseudo-physical frame, which
    // Xen maps for a PV dom0; `pt_base`'s frame is one of the domain's.
    let l4 = unsafe {
        (info.mfn_list as *const u64)
            .add((info.pt_base >> 12) as usize)
            .read()
    };
    static mut SPARE: Page = Page([0; 4096]);
    // SAFETY: SPARE is a page nothing uses; were Xen to map the page table there, nothing would touch it.
    let refused = unsafe {
        mmu::update_va_mapping(&raw mut SPARE as usize, Pte::writable(l4), Flush::Invlpg)
    };
    // SAFETY: SHARED_INFO is a page-aligned static nothing else uses (no code, stack or page table):
    // from now on its virtual address maps Xen's shared info page, accessed through `Events` and the
    // atomic reads below only.
    let r = unsafe {
        mmu::update_va_mapping(
            page as usize,
            Pte::writable(info.shared_info_mfn()),
            Flush::Invlpg,
        )
    };
    if let Err(e) = r {
        failed(c, name, e);
        return false;
    }
    // Xen's page, not the zeroed static: Xen masks upcalls in every legacy slot of a PV dom0
    // (`dom0_construct_pv`).
    let shared = page.cast::<SharedInfo>();
    let masked = (0..XEN_LEGACY_MAX_VCPUS)
        .filter(|&i| {
            // SAFETY: the shared info page is mapped at `shared`; a byte read atomically.
            let m =
                unsafe { AtomicU8::from_ptr(&raw mut (*shared).vcpu_info[i].evtchn_upcall_mask) };
            m.load(Ordering::Acquire) == 1
        })
        .count();
    c.check(
        name,
        masked == XEN_LEGACY_MAX_VCPUS && refused == Err(xen::Error::EBUSY),
        format_args!(
            "mfn {:#x} at {:#x}, upcalls masked in {masked}/{XEN_LEGACY_MAX_VCPUS} slots; L4's mfn \
             {l4:#x} writable: {refused:?}",
            info.shared_info_mfn(),
            page as usize
        ),
    );
    true
}

#[cfg(not(any(feature = "pv", feature = "outline")))]
fn pv_map_shared_info(c: &mut Checks, _page: *mut Page, _start_info: u64) -> bool {
    c.check(
        "mmu::update_va_mapping of the shared info page",
        false,
        format_args!("a PVH build booted as a PV guest"),
    );
    false
}

/// A loopback channel: an unbound port and the port bound to it (Xen drops a send on an unbound port).
fn loopback(c: &mut Checks, name: &str) -> Option<(Port, Port)> {
    match evtchn::alloc_unbound(DomId::SELF, DomId::SELF)
        .and_then(|p| Ok((p, evtchn::bind_interdomain(DomId::SELF, p)?)))
    {
        Ok(p) => Some(p),
        Err(e) => {
            failed(c, name, e);
            None
        }
    }
}

/// The events checks of a PV or PVH dom0 entered with `start_info`.
pub fn run(c: &mut Checks, pvh: bool, start_info: u64) {
    if !map_shared_info(c, pvh, start_info) {
        return;
    }
    MAPPED.store(true, Ordering::Release);
    polled(c);
    if pvh {
        upcalls(c);
    }
}

/// Finds, at x86-64's offsets, the event sent over a loopback channel. Xen also flags the newly bound
/// port pending (`evtchn_bind_interdomain` makes up for notifications a remote port may have missed),
/// so draining takes both.
fn polled(c: &mut Checks) {
    let name = "evtchn::Events on the shared info page";
    let events = &EVENTS;
    let Some((port, other)) = loopback(c, name) else {
        return;
    };
    if let Err(e) = events.unmask(port) {
        return failed(c, name, e);
    }
    let before = events.is_pending(port);
    if let Err(e) = evtchn::send(other) {
        return failed(c, name, e);
    }
    let after = events.is_pending(port);
    let upcall = events.upcall_pending();
    // Drain as an upcall handler would: the selector in vcpu_info[0] leads to the port's bit.
    let mut taken = [0u32; 4];
    let mut n = 0;
    events.for_each_pending(|p| {
        if n < taken.len() {
            taken[n] = p.0;
        }
        n += 1;
    });
    let _ = evtchn::close(other);
    let _ = evtchn::close(port);
    c.check(
        name,
        !before
            && after
            && upcall
            && n == 2
            && taken[..2].contains(&port.0)
            && taken[..2].contains(&other.0)
            && !events.is_pending(port),
        format_args!(
            "port {} (bound to {}): pending before send {before}, after {after}, upcall flagged \
             {upcall}, drained {:?}",
            port.0,
            other.0,
            &taken[..n.min(taken.len())]
        ),
    );
}

/// The upcall counters now: (handler runs, ports taken, last port).
fn seen() -> (u32, u32, u32) {
    (
        UPCALLS.load(Ordering::SeqCst),
        TAKEN.load(Ordering::SeqCst),
        LAST.load(Ordering::SeqCst),
    )
}

/// PVH: events as interrupts on the callback vector, through a registered `vcpu_info`.
fn upcalls(c: &mut Checks) {
    let name = "vcpu::register_vcpu_info";
    let slot = &raw mut VCPU_INFO;
    // SAFETY: VCPU_INFO is a 64-byte aligned static inside one page, used through `REGISTERED` only
    // from now on; memory is identity-mapped, so its address is its guest physical address.
    if let Err(e) = unsafe { vcpu::register_vcpu_info_at(0, &raw mut (*slot).0) } {
        return failed(c, name, e);
    }
    MOVED.store(true, Ordering::Release);
    // Xen copies the old slot, then flags every word of the selector and the upcall so that nothing is
    // lost (`map_vcpu_info`): seen in the new slot, not in the zeroed static.
    // SAFETY: the registered slot, read atomically.
    let sel = unsafe { AtomicU64::from_ptr(&raw mut (*slot).0.evtchn_pending_sel) }
        .load(Ordering::Acquire);
    let flagged = REGISTERED.upcall_pending();
    c.check(
        name,
        sel == u64::MAX && flagged,
        format_args!("vcpu_info at {slot:p}: selector {sel:#x}, upcall flagged {flagged}"),
    );
    // Interrupts are still disabled: take the spurious events here.
    REGISTERED.for_each_pending(|_| ());

    let name = "upcall on the callback vector";
    install_idt(CALLBACK_VECTOR);
    let Some((port, other)) = loopback(c, name) else {
        return;
    };
    REGISTERED.for_each_pending(|_| ());
    if let Err(e) = REGISTERED.unmask(port) {
        return failed(c, name, e);
    }
    let s0 = seen();
    sti();
    let s1 = seen();
    let sent = evtchn::send(other);
    let s2 = seen();
    c.check(
        name,
        sent.is_ok() && s1 == s0 && s2.0 == s1.0 + 1 && s2.1 == s1.1 + 1 && s2.2 == port.0,
        format_args!(
            "vector {CALLBACK_VECTOR:#x}, port {}: send {sent:?}; handler runs/ports/last before \
             sti {s0:?}, after sti {s1:?}, after send {s2:?}",
            port.0
        ),
    );

    // Control: a masked port raises no upcall; unmasking (Xen) raises it.
    let name = "upcall held while the port is masked";
    let was = REGISTERED.mask(port);
    let sent = evtchn::send(other);
    let s3 = seen();
    let pending = REGISTERED.is_pending(port);
    let unmasked = REGISTERED.unmask(port);
    let s4 = seen();
    c.check(
        name,
        was == Ok(false)
            && sent.is_ok()
            && s3 == s2
            && pending
            && unmasked.is_ok()
            && s4.0 == s3.0 + 1
            && s4.2 == port.0
            && !REGISTERED.is_pending(port),
        format_args!(
            "masked, send {sent:?}: {s3:?}, pending {pending}; unmask {unmasked:?}: {s4:?}"
        ),
    );

    // Control: with interrupts disabled the upcall waits (flagged) until `sti`.
    let name = "upcall held while interrupts are disabled";
    cli();
    let sent = evtchn::send(other);
    let s5 = seen();
    let flagged = REGISTERED.upcall_pending();
    sti();
    let s6 = seen();
    cli();
    c.check(
        name,
        sent.is_ok() && s5 == s4 && flagged && s6.0 == s5.0 + 1 && s6.2 == port.0,
        format_args!("cli, send {sent:?}: {s5:?}, upcall flagged {flagged}; sti: {s6:?}"),
    );
    let _ = evtchn::close(other);
    let _ = evtchn::close(port);
}
