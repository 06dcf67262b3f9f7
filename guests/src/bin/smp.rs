//! A dom0 with two vCPUs (Xen `dom0_max_vcpus=2`, QEMU `-smp 2`): Xen detection, PSCI, and a second vCPU
//! started with `psci::cpu_on` into Rust code with its own stack.
//!
//! vCPU 0 checks it runs on Xen (the SMCCC hypervisor-service UID, before any Xen hypercall), reads the
//! SMCCC and PSCI versions, `PSCI_FEATURES`, `MIGRATE_INFO_TYPE`, the hypervisor service's call count and
//! revision; maps the shared info page for event delivery; sees vCPU 1 off (`AFFINITY_INFO`), starts it
//! with `CPU_ON` (entry point computed PC-relatively, the context id is the top of vCPU 1's stack), and
//! checks `CPU_ON` of a vCPU that does not exist fails with `INVALID_PARAMETERS`. vCPU 1 sets its stack
//! pointer from the context id, registers its own `vcpu_info`, binds an IPI event channel to vCPU 0,
//! publishes the port and sends on it; vCPU 0 receives the event through `evtchn::Events`, sees vCPU 1 on.
//! Per-vCPU delivery (`evtchn::PortVcpus`): vCPU 1 also binds an IPI to itself, vCPU 0 sends on it, then
//! registers its own `vcpu_info` (Xen sets its whole pending selector) and drains at once with its
//! `Events::with_ports`: vCPU 1's IPI must stay pending, and vCPU 1, draining with its own, must take it.
//! vCPU 0 then lets vCPU 1 go, and sees it off after its `CPU_OFF`. vCPU 0 then prints its summary and ends the domain with
//! `psci::system_off` (Xen's "Hardware Dom0 halted" is the proof). Every check prints `ok …`/`FAIL …`.

#![no_std]
#![no_main]

include!("../modules.rs");

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use common::{Checks, Deadline, Line, Page, pause, wait_event};
use xen_hypercall::xen::evtchn::{Events, Port, PortVcpus};
use xen_hypercall::xen::sched::{self, ShutdownReason};
use xen_hypercall::xen::vcpu::{self, VcpuInfo};
use xen_hypercall::{psci, smccc};

const ROLE: &str = "";
const WAIT_MS: u64 = 5_000;
/// The vCPU started (its affinity: on Xen the vCPU number) and one that does not exist.
const SECOND: usize = 1;
const ABSENT: usize = 7;

/// vCPU 1's stack: the context id of `CPU_ON` is its top.
#[repr(C, align(16))]
struct Stack([u8; 16384]);
static mut STACK1: Stack = Stack([0; 16384]);

/// vCPU 1's `vcpu_info`, registered by vCPU 1 itself.
#[repr(C, align(64))]
struct InfoSlot(VcpuInfo);
// SAFETY: `VcpuInfo` is plain integers, for which all-zero bytes are a valid value.
static mut VCPU1_INFO: InfoSlot = InfoSlot(unsafe { core::mem::zeroed() });
/// vCPU 0's `vcpu_info`, registered by vCPU 0 once vCPU 1's IPI is pending.
// SAFETY: as above.
static mut VCPU0_INFO: InfoSlot = InfoSlot(unsafe { core::mem::zeroed() });

/// Which vCPU each port is delivered to: both vCPUs bind through it and drain with their row.
static PORTS: PortVcpus<2> = PortVcpus::new();

static mut SHARED: Page = Page::new();

/// What vCPU 1 reports (written by vCPU 1, read by vCPU 0; Normal cacheable inner-shareable memory, coherent between vCPUs).
static STARTED: AtomicU32 = AtomicU32::new(0);
static CONTEXT: AtomicUsize = AtomicUsize::new(0);
static MPIDR: AtomicUsize = AtomicUsize::new(0);
/// How vCPU 1's MMU maps its stack (`mmu::translate`, the 64-bit PAR in two halves), set before STARTED.
static PAR1: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
/// `register_vcpu_info`'s result on vCPU 1: 1 + errno (1: success), 0 before.
static REGISTERED: AtomicU32 = AtomicU32::new(0);
/// The IPI port vCPU 1 bound to vCPU 0 (0 before; bind failure: `u32::MAX`).
static PORT: AtomicU32 = AtomicU32::new(0);
/// The IPI port vCPU 1 bound to itself (0 before; bind failure: `u32::MAX`).
static OWN_PORT: AtomicU32 = AtomicU32::new(0);
/// Set by vCPU 0 once it drained after registering its `vcpu_info`: vCPU 1 may drain.
static DRAINED: AtomicU32 = AtomicU32::new(0);
/// vCPU 1's drain: 0 before, 1 it took its IPI, 2 it did not within the time.
static OWN_TAKEN: AtomicU32 = AtomicU32::new(0);
/// Set by vCPU 0: vCPU 1 may power itself off.
static GO: AtomicU32 = AtomicU32::new(0);
/// `CPU_OFF`'s error, should it return.
static OFF_FAILED: AtomicU32 = AtomicU32::new(0);

// vCPU 1's entry: EL1, MMU off, x0 = the context id (its stack top). It turns its MMU on with the tables
// vCPU 0 built (`mmu_on` keeps x0) before any memory access.
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".text",
    ".global smp_secondary_entry",
    "smp_secondary_entry:",
    "    mov     x1, #(3 << 20)", // CPACR_EL1.FPEN: rustc uses SIMD registers
    "    msr     cpacr_el1, x1",
    "    isb",
    "    bl      mmu_on",
    "    mov     sp, x0",
    "    bl      secondary_main",
    "1:  wfi",
    "    b       1b",
);

// vCPU 1's entry: SVC mode, A32 state (bit 0 of the entry point is clear), MMU off, r0 = the context id;
// MMU on first, as on AArch64.
#[cfg(target_arch = "arm")]
core::arch::global_asm!(
    ".text",
    ".arm",
    ".global smp_secondary_entry",
    ".type smp_secondary_entry, %function",
    "smp_secondary_entry:",
    "    bl      mmu_on",
    "    mov     sp, r0",
    "    bl      secondary_main",
    "1:  wfi",
    "    b       1b",
);

/// The entry point's address, computed PC-relatively: in a position-independent image linked at 0 an
/// address taken through the GOT would be the link address, not where Xen loaded the image.
#[cfg(target_arch = "aarch64")]
fn secondary_entry() -> usize {
    let a: usize;
    // SAFETY: `adr` only computes an address.
    unsafe { core::arch::asm!("adr {}, smp_secondary_entry", out(reg) a, options(nomem, nostack)) };
    a
}

/// The entry point's address: the 32-bit image is linked where Xen loads it, so its link address is right.
#[cfg(target_arch = "arm")]
fn secondary_entry() -> usize {
    unsafe extern "C" {
        fn smp_secondary_entry();
    }
    smp_secondary_entry as *const () as usize
}

fn mpidr() -> usize {
    let v: usize;
    // SAFETY: reading MPIDR has no side effect.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("mrs {}, mpidr_el1", out(reg) v, options(nomem, nostack))
    };
    // SAFETY: as above.
    #[cfg(target_arch = "arm")]
    unsafe {
        core::arch::asm!("mrc p15, 0, {}, c0, c0, 5", out(reg) v, options(nomem, nostack))
    };
    v
}

/// vCPU 1, on its own stack.
#[unsafe(no_mangle)]
extern "C" fn secondary_main(context: usize) -> ! {
    CONTEXT.store(context, Ordering::Relaxed);
    MPIDR.store(mpidr(), Ordering::Relaxed);
    let on_stack = 0u32;
    let par = mmu::translate(&raw const on_stack as usize);
    PAR1[0].store(par as u32, Ordering::Relaxed);
    PAR1[1].store((par >> 32) as u32, Ordering::Relaxed);
    STARTED.store(1, Ordering::Release);
    // SAFETY: VCPU1_INFO is a static of this image used for nothing else; Xen writes it from now on. The MMU
    // maps it to itself, so its address is its guest physical address.
    let r = unsafe { vcpu::register_vcpu_info_at(1, &raw mut VCPU1_INFO.0) };
    REGISTERED.store(
        match r {
            Ok(()) => 1,
            Err(e) => 1 + e.errno() as u32,
        },
        Ordering::Release,
    );
    // Bound before the IPI to vCPU 0 is published, so vCPU 0 finds both ports once it sees PORT.
    let own = PORTS.bind_ipi(1);
    OWN_PORT.store(own.map_or(u32::MAX, |p| p.0), Ordering::Release);
    match PORTS.bind_ipi(0) {
        Ok(port) => {
            PORT.store(port.0, Ordering::Release);
            let _ = xen_hypercall::xen::evtchn::send(port);
        }
        Err(_) => PORT.store(u32::MAX, Ordering::Release),
    }
    // Drain for this vCPU once vCPU 0 has drained for itself: the IPI vCPU 0 sent must still be here.
    let deadline = Deadline::in_ms(WAIT_MS);
    while DRAINED.load(Ordering::Acquire) == 0 && !deadline.passed() {
        pause();
    }
    let taken = match (own, PORTS.vcpu(1)) {
        (Ok(own), Some(ports)) => {
            // SAFETY: SHARED is the shared info page and VCPU1_INFO this vCPU's registered `vcpu_info`,
            // both valid for the whole run and accessed only through `Events` (atomics).
            let events =
                unsafe { Events::with_vcpu_info((&raw mut SHARED).cast(), &raw mut VCPU1_INFO.0) }
                    .with_ports(ports);
            wait_event(&events, own, WAIT_MS)
        }
        _ => false,
    };
    OWN_TAKEN.store(if taken { 1 } else { 2 }, Ordering::Release);
    while GO.load(Ordering::Acquire) == 0 {
        pause();
    }
    let e = psci::cpu_off();
    OFF_FAILED.store(e.0 as u32, Ordering::Release);
    loop {
        pause();
    }
}

fn psci_err(l: Line, r: Result<(), psci::Error>) -> Line {
    match r {
        Ok(()) => l.s("0"),
        Err(e) => l.int(e.0.into()).s(" (").s(e.name().unwrap_or("?")).s(")"),
    }
}

fn state(l: Line, s: Result<psci::AffinityState, psci::Error>) -> Line {
    match s {
        Ok(psci::AffinityState::ON) => l.s("on"),
        Ok(psci::AffinityState::OFF) => l.s("off"),
        Ok(psci::AffinityState::ON_PENDING) => l.s("on pending"),
        Ok(other) => l.dec(other.0.into()),
        Err(e) => psci_err(l, Err(e)),
    }
}

/// Polls `AFFINITY_INFO` of vCPU 1 until it reports `want` or the time is up; the last answer.
fn await_state(want: psci::AffinityState) -> Result<psci::AffinityState, psci::Error> {
    let deadline = Deadline::in_ms(WAIT_MS);
    loop {
        let s = psci::affinity_info(SECOND, 0);
        if s == Ok(want) || deadline.passed() {
            return s;
        }
        pause();
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn guest_main(_dtb: usize) -> ! {
    let mut c = Checks::new(ROLE);
    // Before any Xen hypercall: is this Xen? (One SMCCC call; the console needs a hypercall.)
    let xen = smccc::is_xen();
    c.say(Line::new().s("A dom0 with two vCPUs, using xen-hypercall's smccc and psci modules"));
    c.check(
        "smccc::is_xen",
        xen,
        Line::new().s(if xen {
            "the hypervisor service's UID is Xen's"
        } else {
            "not Xen"
        }),
    );
    let v = smccc::version();
    c.check(
        "smccc::version",
        v == Ok(smccc::Version { major: 1, minor: 1 }),
        match v {
            Ok(v) => Line::new().dec(v.major.into()).s(".").dec(v.minor.into()),
            Err(e) => Line::new().int(e.0.into()),
        },
    );
    let count = smccc::hypervisor::call_count();
    let rev = smccc::hypervisor::revision();
    c.check(
        "smccc::hypervisor call count, revision",
        count == Ok(3) && rev == Ok((0, 1)),
        Line::new()
            .int(count.map_or_else(|e| e.0.into(), i64::from))
            .s(", ")
            .int(rev.map_or_else(|e| e.0.into(), |r| r.0.into()))
            .s(".")
            .dec(rev.map_or(0, |r| r.1.into())),
    );
    let pv = psci::version();
    c.check(
        "psci::version",
        pv == psci::Version { major: 1, minor: 1 },
        Line::new().dec(pv.major.into()).s(".").dec(pv.minor.into()),
    );
    let on = psci::features(psci::fid::CPU_ON);
    let reset2 = psci::features(psci::fid::SYSTEM_RESET2_32);
    c.check(
        "psci::features CPU_ON, SYSTEM_RESET2",
        on == Ok(0) && reset2 == Err(psci::Error::NOT_SUPPORTED),
        psci_err(
            psci_err(Line::new(), on.map(|_| ())).s(", "),
            reset2.map(|_| ()),
        ),
    );
    let mig = psci::migrate_info_type();
    c.check(
        "psci::migrate_info_type",
        mig == Ok(psci::MigrateType::NOT_PRESENT_OR_NOT_REQUIRED),
        match mig {
            Ok(m) => Line::new().dec(m.0.into()),
            Err(e) => psci_err(Line::new(), Err(e)),
        },
    );

    // SAFETY: SHARED is a page of this image used for nothing else; from now on it is the shared info page,
    // accessed only through `events` (vCPU 0's vcpu_info is its slot 0).
    let (mapped, events) = unsafe { common::map_shared_info(&raw mut SHARED) };
    let Some(ports0) = PORTS.vcpu(0) else {
        common::halt()
    };
    let events = events.with_ports(ports0);
    c.check(
        "memory::map_shared_info",
        mapped.is_ok(),
        Line::new().s(if mapped.is_ok() { "mapped" } else { "refused" }),
    );

    let before = psci::affinity_info(SECOND, 0);
    c.check(
        "psci::affinity_info(1) before CPU_ON",
        before == Ok(psci::AffinityState::OFF),
        state(Line::new(), before),
    );
    let entry = secondary_entry();
    let top = (&raw mut STACK1) as usize + core::mem::size_of::<Stack>();
    // SAFETY: `entry` is `smp_secondary_entry`, which sets the stack pointer to the context id, the top of
    // STACK1 (used by nothing else), and calls `secondary_main`, which shares only atomics with vCPU 0.
    let r = unsafe { psci::cpu_on(SECOND, entry, top) };
    c.check(
        "psci::cpu_on(1)",
        r.is_ok(),
        psci_err(Line::new().s("entry ").hex(entry as u64).s(": "), r),
    );
    // SAFETY: as above; the call fails (no vCPU 7), nothing runs.
    let absent = unsafe { psci::cpu_on(ABSENT, entry, top) };
    c.check(
        "psci::cpu_on(7), no such vCPU",
        absent == Err(psci::Error::INVALID_PARAMETERS),
        psci_err(Line::new(), absent).s(" (INVALID_PARAMETERS expected)"),
    );

    let deadline = Deadline::in_ms(WAIT_MS);
    while STARTED.load(Ordering::Acquire) == 0 && !deadline.passed() {
        pause();
    }
    let (ctx, id) = (
        CONTEXT.load(Ordering::Relaxed),
        MPIDR.load(Ordering::Relaxed),
    );
    c.check(
        "vCPU 1 entered Rust on its own stack",
        STARTED.load(Ordering::Acquire) == 1 && ctx == top && id & 0xff_ffff == SECOND,
        Line::new()
            .s("context id ")
            .hex(ctx as u64)
            .s(", MPIDR ")
            .hex(id as u64),
    );
    // How each vCPU's MMU maps its stack (judged by the harness: Normal Write-Back Inner Shareable, so
    // vCPU 1 turned its MMU on with vCPU 0's tables).
    let on_stack = 0u32;
    mmu::par_line("STACK", &raw const on_stack as usize).print(ROLE);
    let par1 = u64::from(PAR1[0].load(Ordering::Relaxed))
        | (u64::from(PAR1[1].load(Ordering::Relaxed)) << 32);
    Line::new().s("PAR_VCPU1_STACK = ").hex(par1).print(ROLE);
    let running = psci::affinity_info(SECOND, 0);
    c.check(
        "psci::affinity_info(1) after CPU_ON",
        running == Ok(psci::AffinityState::ON),
        state(Line::new(), running),
    );

    let deadline = Deadline::in_ms(WAIT_MS);
    while PORT.load(Ordering::Acquire) == 0 && !deadline.passed() {
        pause();
    }
    let reg = REGISTERED.load(Ordering::Acquire);
    c.check(
        "vcpu::register_vcpu_info on vCPU 1",
        reg == 1,
        if reg == 0 {
            Line::new().s("no answer")
        } else {
            Line::new().s("returned ").int(-(i64::from(reg) - 1))
        },
    );
    let port = PORT.load(Ordering::Acquire);
    let fired = port != 0 && port != u32::MAX && wait_event(&events, Port(port), WAIT_MS);
    c.check(
        "evtchn::bind_ipi on vCPU 1, event received on vCPU 0",
        fired,
        Line::new()
            .s("port ")
            .dec(port.into())
            .s(if fired { ": taken" } else { ": not received" }),
    );

    // vCPU 1's own IPI, raised by vCPU 0, then vCPU 0's drain right after `register_vcpu_info`, whose
    // selector names every word.
    let own = OWN_PORT.load(Ordering::Acquire);
    let own_ok = own != 0 && own != u32::MAX;
    let sent = own_ok && xen_hypercall::xen::evtchn::send(Port(own)).is_ok();
    let pending_before = sent && events.is_pending(Port(own));
    // SAFETY: VCPU0_INFO is a static of this image used for nothing else; Xen writes it from now on, and
    // vCPU 0 stops using its slot of the shared info page (`events` is not used after this).
    let r = unsafe { vcpu::register_vcpu_info_at(0, &raw mut VCPU0_INFO.0) };
    // SAFETY: SHARED is the shared info page, VCPU0_INFO vCPU 0's `vcpu_info` once registered; both are
    // accessed only through `Events` (atomics) for the rest of the run.
    let events0 =
        unsafe { Events::with_vcpu_info((&raw mut SHARED).cast(), &raw mut VCPU0_INFO.0) }
            .with_ports(ports0);
    let flagged = events0.upcall_pending();
    let mut took_own = false;
    let mut taken = 0u64;
    events0.for_each_pending(|p| {
        took_own |= p.0 == own;
        taken += 1;
    });
    let still = events0.is_pending(Port(own));
    DRAINED.store(1, Ordering::Release);
    c.check(
        "vCPU 0 drains after register_vcpu_info, vCPU 1's IPI stays pending",
        r.is_ok() && pending_before && flagged && !took_own && still,
        Line::new()
            .s("port ")
            .dec(own.into())
            .s(if pending_before {
                " pending"
            } else {
                " not pending"
            })
            .s(", register ")
            .s(if r.is_ok() { "ok" } else { "failed" })
            .s(if flagged {
                ", upcall flagged"
            } else {
                ", no upcall"
            })
            .s(", vCPU 0 took ")
            .dec(taken)
            .s(if took_own {
                " including it"
            } else {
                " other ports"
            })
            .s(if still { ", still pending" } else { ", gone" }),
    );
    let deadline = Deadline::in_ms(2 * WAIT_MS);
    while OWN_TAKEN.load(Ordering::Acquire) == 0 && !deadline.passed() {
        pause();
    }
    let own_taken = OWN_TAKEN.load(Ordering::Acquire);
    c.check(
        "vCPU 1 takes its IPI with its own drain",
        own_taken == 1,
        Line::new().s(match own_taken {
            0 => "no answer",
            1 => "taken on vCPU 1",
            _ => "not received on vCPU 1",
        }),
    );

    GO.store(1, Ordering::Release);
    let after = await_state(psci::AffinityState::OFF);
    let off_err = OFF_FAILED.load(Ordering::Acquire);
    c.check(
        "psci::affinity_info(1) after vCPU 1's CPU_OFF",
        after == Ok(psci::AffinityState::OFF) && off_err == 0,
        state(Line::new(), after),
    );

    c.summary();
    if c.failed == 0 {
        let e = psci::system_off();
        Line::new()
            .s("psci::system_off returned ")
            .int(e.0.into())
            .print(ROLE);
    }
    let _ = sched::shutdown(ShutdownReason::Crash);
    common::halt()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    Line::new().s("FAIL panic").print(ROLE);
    let _ = sched::shutdown(ShutdownReason::Crash);
    common::halt()
}
