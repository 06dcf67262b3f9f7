//! Every function the bench image measures, with its name (`"<name> \0"`, as the image prints it).

use crate::state::State;

/// A measured function.
pub type Site = unsafe extern "C" fn(&mut State) -> usize;

macro_rules! list {
    ($($path:path),* $(,)?) => {
        &[$((concat!(stringify!($path), " \0"), $path as Site)),*]
    };
}

/// This crate's strategies (per-arity sites and work loops) and the typed work loops.
pub const STRATEGIES: &[(&str, Site)] = {
    use crate::peers::{work_checked, work_typed};
    use crate::*;
    list![
        site_inline_0,
        site_inline_1,
        site_inline_2,
        site_inline_3,
        site_inline_4,
        site_inline_5,
        site_maxarity_0,
        site_maxarity_1,
        site_maxarity_2,
        site_maxarity_3,
        site_maxarity_4,
        site_maxarity_5,
        site_outline_0,
        site_outline_1,
        site_outline_2,
        site_outline_3,
        site_outline_4,
        site_outline_5,
        site_percall_0,
        site_percall_1,
        site_percall_2,
        site_percall_3,
        site_percall_4,
        site_percall_5,
        work_inline,
        work_maxarity,
        work_outline,
        work_percall,
        work_checked,
        work_typed,
    ]
};

/// The `xen-sys` shape (AArch64 only).
#[cfg(target_arch = "aarch64")]
pub const XENSYS: &[(&str, Site)] = {
    use crate::*;
    list![
        site_xensys_0,
        site_xensys_1,
        site_xensys_2,
        site_xensys_3,
        site_xensys_4,
        site_xensys_5,
        work_xensys,
    ]
};
/// The `xen-sys` shape (AArch64 only).
#[cfg(not(target_arch = "aarch64"))]
pub const XENSYS: &[(&str, Site)] = &[];

/// Linux's stubs with C callers.
#[cfg(not(peers))]
pub const LINUX: &[(&str, Site)] = &[];
/// Linux's stubs with C callers.
#[cfg(peers)]
pub const LINUX: &[(&str, Site)] = {
    use crate::peers::*;
    list![
        site_linux_0,
        site_linux_1,
        site_linux_2,
        site_linux_3,
        site_linux_4,
        site_linux_5,
        work_linux,
    ]
};

/// Unikraft's stubs with C callers (not on Thumb-2).
#[cfg(peer_unikraft)]
pub const UNIKRAFT: &[(&str, Site)] = {
    use crate::peers::*;
    list![
        site_unikraft_0,
        site_unikraft_1,
        site_unikraft_2,
        site_unikraft_3,
        site_unikraft_4,
        site_unikraft_5,
        work_unikraft,
    ]
};
/// Unikraft's stubs with C callers (not on Thumb-2).
#[cfg(not(peer_unikraft))]
pub const UNIKRAFT: &[(&str, Site)] = &[];

/// The typed calls and their raw equivalents, and the raw equivalent of the typed work loop.
pub const TYPED: &[(&str, Site)] = {
    use crate::typed::*;
    list![
        typed_console,
        raw_console,
        typed_sched,
        raw_sched,
        typed_evtchn,
        raw_evtchn,
        typed_version,
        raw_version,
        typed_grant_table,
        raw_grant_table,
        typed_hvm,
        raw_hvm,
        typed_vcpu,
        raw_vcpu,
        typed_memory,
        raw_memory,
        raw_work,
    ]
};

/// Everything, in measurement order.
pub const ALL: [&[(&str, Site)]; 6] = [STRATEGIES, XENSYS, LINUX, UNIKRAFT, TYPED, &[]];
