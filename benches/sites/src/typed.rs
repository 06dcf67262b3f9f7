//! The typed API against the raw stubs, one representative call per wrapper whose hot path is a single
//! hypercall: `typed_<wrapper>(state)` makes the call through `xen_hypercall::xen::<wrapper>` as a user
//! would, `raw_<wrapper>(state)` makes the same hypercall with the raw inline stub and the same argument
//! structure. `cargo bench` compares their size and executed instructions, and fails when a typed call is
//! not inlined into its caller or costs more than the raw one plus three instructions.
//!
//! Under the bench image's trap handler (`eret`, registers untouched) a hypercall returns its first
//! argument, a non-negative command number, and leaves the argument structure as it was: every typed call
//! below takes its success path.

use xen_hypercall::xen::evtchn::Port;
use xen_hypercall::xen::{
    DomId, console, evtchn, grant_table, hvm, memory, nr, sched, vcpu, version,
};
use xen_hypercall::{hypercall2, hypercall3};

use crate::state::State;

/// The wrappers, in table order.
pub const WRAPPERS: [&str; 8] = [
    "console",
    "sched",
    "evtchn",
    "version",
    "grant_table",
    "hvm",
    "vcpu",
    "memory",
];

/// The representative call of each wrapper, as the bench prints it.
pub const CALLS: [&str; 8] = [
    "console::write(b\"hello\\n\")",
    "sched::yield_now()",
    "evtchn::send(port)",
    "version::version()",
    "grant_table::query_size(DomId::SELF)",
    "hvm::get_param(DomId::SELF, Param::STORE_PFN)",
    "vcpu::register_vcpu_info(0, gfn, 0)",
    "memory::current_reservation(DomId::SELF)",
];

const HELLO: &[u8] = b"hello\n";

/// The `struct gnttab_query_size` for `dom`, built as `grant_table::query_size` builds it: zeroed whole,
/// then the domain.
#[inline(always)]
#[expect(
    clippy::field_reassign_with_default,
    reason = "as the typed wrapper, which avoids the literal's unaligned memset"
)]
fn query_size_arg(dom: DomId) -> grant_table::GnttabQuerySize {
    let mut q = grant_table::GnttabQuerySize::default();
    q.dom = dom;
    q
}

macro_rules! pair {
    ($typed:ident, $raw:ident, |$s:ident| $t:expr, |$r:ident| $w:expr) => {
        #[doc = concat!(" The typed call of `", stringify!($typed), "`.")]
        #[doc = ""]
        #[doc = " # Safety"]
        #[doc = ""]
        #[doc = " Issues a real hypercall with made-up arguments: only under the bench image's trap handler."]
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub unsafe extern "C" fn $typed($s: &mut State) -> usize {
            $t
        }

        #[doc = concat!(" The same hypercall as `", stringify!($typed), "`, with the raw stub.")]
        #[doc = ""]
        #[doc = " # Safety"]
        #[doc = ""]
        #[doc = " As the typed one."]
        #[unsafe(no_mangle)]
        #[inline(never)]
        pub unsafe extern "C" fn $raw($r: &mut State) -> usize {
            $w
        }
    };
}

pair!(
    typed_console,
    raw_console,
    |_s| usize::from(console::write(HELLO).is_ok()),
    |_s| {
        // SAFETY: console_io(CONSOLEIO_write, len, buf): Xen reads `len` bytes of a static string.
        let r = unsafe {
            hypercall3(
                nr::CONSOLE_IO,
                console::CONSOLEIO_WRITE,
                HELLO.len(),
                HELLO.as_ptr() as usize,
            )
        };
        r as usize
    }
);

pair!(
    typed_sched,
    raw_sched,
    |_s| usize::from(sched::yield_now().is_ok()),
    |_s| {
        // SAFETY: sched_op(SCHEDOP_yield, NULL) reads no memory.
        unsafe { hypercall2(nr::SCHED_OP, 0, 0) as usize }
    }
);

pair!(
    typed_evtchn,
    raw_evtchn,
    |s| usize::from(evtchn::send(Port(s.v[0] as u32)).is_ok()),
    |s| {
        let mut port = s.v[0] as u32;
        // SAFETY: event_channel_op(EVTCHNOP_send, &evtchn_send): Xen reads the port, borrowed for the call.
        unsafe {
            hypercall2(
                nr::EVENT_CHANNEL_OP,
                evtchn::EVTCHNOP_SEND,
                &raw mut port as usize,
            ) as usize
        }
    }
);

pair!(
    typed_version,
    raw_version,
    |_s| version::version().map_or(0, |v| v.minor as usize),
    |_s| {
        // SAFETY: xen_version(XENVER_version, NULL) reads no memory.
        let r = unsafe { hypercall2(nr::XEN_VERSION, version::XENVER_VERSION, 0) };
        // The same value as the typed call's: the minor version, the low 16 bits.
        r as u16 as usize
    }
);

pair!(
    typed_grant_table,
    raw_grant_table,
    |_s| grant_table::query_size(DomId::SELF).map_or(0, |q| q.nr_frames as usize),
    |_s| {
        let mut q = query_size_arg(DomId::SELF);
        // SAFETY: grant_table_op(GNTTABOP_query_size, &q, 1): Xen writes `q`, borrowed for the call.
        let r = unsafe {
            hypercall3(
                nr::GRANT_TABLE_OP,
                grant_table::GNTTABOP_QUERY_SIZE,
                &raw mut q as usize,
                1,
            )
        };
        (r as usize) ^ q.nr_frames as usize
    }
);

pair!(
    typed_hvm,
    raw_hvm,
    |_s| hvm::get_param(DomId::SELF, hvm::Param::STORE_PFN).unwrap_or(0) as usize,
    |_s| {
        let mut p = hvm::HvmParam {
            domid: DomId::SELF,
            pad: 0,
            index: hvm::Param::STORE_PFN.0,
            value: 0,
        };
        // SAFETY: hvm_op(HVMOP_get_param, &p): Xen writes `p`, borrowed for the call.
        let r = unsafe { hypercall2(nr::HVM_OP, hvm::HVMOP_GET_PARAM, &raw mut p as usize) };
        (r as usize) ^ p.value as usize
    }
);

pair!(
    typed_vcpu,
    raw_vcpu,
    |s| {
        // SAFETY: under the bench image's trap handler nothing is registered.
        usize::from(unsafe { vcpu::register_vcpu_info(0, s.v[1] as u64, 0) }.is_ok())
    },
    |s| {
        let r = vcpu::RegisterVcpuInfo {
            mfn: s.v[1] as u64,
            offset: 0,
            rsvd: 0,
        };
        // SAFETY: vcpu_op(VCPUOP_register_vcpu_info, 0, &r): Xen reads `r`; nothing is registered here.
        let ret = unsafe {
            hypercall3(
                nr::VCPU_OP,
                vcpu::VCPUOP_REGISTER_VCPU_INFO,
                0,
                &raw const r as usize,
            )
        };
        ret as usize
    }
);

pair!(
    typed_memory,
    raw_memory,
    |_s| memory::current_reservation(DomId::SELF).unwrap_or(0) as usize,
    |_s| {
        let mut dom = DomId::SELF;
        // SAFETY: memory_op(XENMEM_current_reservation, &domid): Xen reads the domain id.
        unsafe {
            hypercall2(
                nr::MEMORY_OP,
                memory::XENMEM_CURRENT_RESERVATION,
                &raw mut dom as usize,
            ) as usize
        }
    }
);

/// The work loop of [`work_typed`](crate::peers::work_typed) with the raw inline stubs: the same nine
/// hypercalls with the same argument structures (built as the typed wrappers build them) and the same
/// values taken from their results, none of them checked. The typed loop's control compares with this
/// loop, not with `work_inline`, which passes a made-up value where Xen reads a structure and reads
/// nothing back.
///
/// # Safety
///
/// Issues real hypercalls with made-up arguments: only under the bench image's trap handler.
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn raw_work(s: &mut State) -> usize {
    const WORK: &[u8] = b"work.\n";
    let [a, b, c, d, e, f, g, h] = s.v;
    // SAFETY: under the bench image's trap handler, which returns at once: each structure is borrowed
    // for its call, Xen (were it there) would read `WORK` and read or write the structures only.
    let sum = unsafe {
        let written = hypercall3(
            nr::CONSOLE_IO,
            console::CONSOLEIO_WRITE,
            WORK.len(),
            WORK.as_ptr() as usize,
        ) as usize;
        let version = hypercall2(nr::XEN_VERSION, version::XENVER_VERSION, 0) as usize & 0xffff;
        let mut alloc = evtchn::AllocUnbound {
            dom: DomId::SELF,
            remote_dom: DomId(c as u16),
            port: Port(0),
        };
        hypercall2(
            nr::EVENT_CHANNEL_OP,
            evtchn::EVTCHNOP_ALLOC_UNBOUND,
            &raw mut alloc as usize,
        );
        let port = alloc.port.0 as usize;
        let mut send = evtchn::PortArg {
            port: Port((d ^ port) as u32),
        };
        let sent = hypercall2(
            nr::EVENT_CHANNEL_OP,
            evtchn::EVTCHNOP_SEND,
            &raw mut send as usize,
        ) as usize;
        let mut q = query_size_arg(DomId(e as u16));
        hypercall3(
            nr::GRANT_TABLE_OP,
            grant_table::GNTTABOP_QUERY_SIZE,
            &raw mut q as usize,
            1,
        );
        let frames = q.nr_frames as usize;
        let mut p = hvm::HvmParam {
            domid: DomId::SELF,
            pad: 0,
            index: f as u32,
            value: 0,
        };
        hypercall2(nr::HVM_OP, hvm::HVMOP_GET_PARAM, &raw mut p as usize);
        let irq = p.value as usize;
        let r = vcpu::RegisterVcpuInfo {
            mfn: g as u64,
            offset: 0,
            rsvd: 0,
        };
        let vcpu = hypercall3(
            nr::VCPU_OP,
            vcpu::VCPUOP_REGISTER_VCPU_INFO,
            0,
            &raw const r as usize,
        ) as usize;
        let mut close = evtchn::PortArg {
            port: Port((h ^ sent) as u32),
        };
        let closed = hypercall2(
            nr::EVENT_CHANNEL_OP,
            evtchn::EVTCHNOP_CLOSE,
            &raw mut close as usize,
        ) as usize;
        hypercall2(nr::SCHED_OP, sched::SCHEDOP_YIELD, 0);
        written ^ version ^ port ^ frames ^ irq ^ vcpu ^ closed
    };
    s.fold([a, b, c, d, e, f, g, h], sum)
}
