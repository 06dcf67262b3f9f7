//! The peers: other projects' hypercall shapes on the same work loop and per-arity sites as the strategies
//! of the crate root, and the work loop written with this crate's typed API.
//!
//! - Linux and Unikraft: per-hypercall out-of-line stubs (`c/stubs.S`) with C callers (`c/callers.c`),
//!   compiled by clang at -Os (`build.rs`): `work_linux`, `site_linux_N`, `work_unikraft`,
//!   `site_unikraft_N`. Unikraft has no Thumb-2 build (`cfg(peer_unikraft)`).
//! - `xensys` (AArch64): the rust-vmm `xen-sys` crate's shape, inline `asm!` that binds `x0`–`x4` and `x16`
//!   on every call with all of `x0`–`x4` declared clobbered, whatever the arity (unused ones zero).
//! - `work_checked`: the work loop's nine hypercalls made through `xen_hypercall::xen` as code that checks
//!   its results writes them, each error returned with `?`.
//! - `work_typed`: the same calls, each error folded to 0 by the caller (`map_or(0, …)`, `is_ok()`).

use core::sync::atomic::{AtomicI32, Ordering};

use xen_hypercall::xen::evtchn::{self, Port};
use xen_hypercall::xen::{self, DomId, console, grant_table, hvm, sched, vcpu, version};

use crate::state::State;

/// The `xen-sys` shape (rust-vmm): one inline stub for every arity.
#[cfg(target_arch = "aarch64")]
pub mod xensys {
    /// Binds `x16` and `x0`–`x4` on every call, all five declared clobbered (`inlateout`), the result in
    /// `x0`; memory clobbered (no `nomem`/`readonly`), flags clobbered. Only the first five of `a` are used.
    ///
    /// # Safety
    ///
    /// As `xen_hypercall::hypercall5`.
    #[inline(always)]
    pub unsafe fn hypercall(op: usize, a: [usize; 6]) -> isize {
        let ret: isize;
        // SAFETY: forwarded to the caller; Xen preserves every register but x0–x4 here declared clobbered.
        unsafe {
            core::arch::asm!(
                "hvc #0xEA1",
                in("x16") op,
                inlateout("x0") a[0] => ret,
                inlateout("x1") a[1] => _,
                inlateout("x2") a[2] => _,
                inlateout("x3") a[3] => _,
                inlateout("x4") a[4] => _,
                options(nostack),
            );
        }
        ret
    }
}

#[cfg(peers)]
macro_rules! c_peer {
    ($($f:ident),* $(,)?) => {
        unsafe extern "C" {
            $(
                #[doc = concat!(" `", stringify!($f), "`, compiled from `c/callers.c`.")]
                pub safe fn $f(s: &mut State) -> usize;
            )*
        }
    };
}

#[cfg(peers)]
c_peer!(
    work_linux,
    site_linux_0,
    site_linux_1,
    site_linux_2,
    site_linux_3,
    site_linux_4,
    site_linux_5,
);

#[cfg(peer_unikraft)]
c_peer!(
    work_unikraft,
    site_unikraft_0,
    site_unikraft_1,
    site_unikraft_2,
    site_unikraft_3,
    site_unikraft_4,
    site_unikraft_5,
);

/// The work loop through the typed API, each error folded to 0 by the caller (`map_or(0, …)`,
/// `is_ok()`): the same nine hypercalls (console output is a fixed 6-byte message, the typed API taking
/// a slice).
///
/// # Safety
///
/// Issues real hypercalls with made-up arguments: only under the bench image's trap handler.
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn work_typed(s: &mut State) -> usize {
    let [a, b, c, d, e, f, g, h] = s.v;
    let written = usize::from(console::write(b"work.\n").is_ok());
    let version = version::version().map_or(0, |v| v.minor as usize);
    let port = evtchn::alloc_unbound(DomId::SELF, DomId(c as u16)).map_or(0, |p| p.0 as usize);
    let sent = usize::from(evtchn::send(Port((d ^ port) as u32)).is_ok());
    let frames = grant_table::query_size(DomId(e as u16)).map_or(0, |q| q.nr_frames as usize);
    let irq = hvm::get_param(DomId::SELF, hvm::Param(f as u32)).unwrap_or(0) as usize;
    // SAFETY: under the bench image's trap handler nothing is registered.
    let vcpu = usize::from(unsafe { vcpu::register_vcpu_info(0, g as u64, 0) }.is_ok());
    let closed = usize::from(evtchn::close(Port((h ^ sent) as u32)).is_ok());
    let _ = sched::yield_now();
    let sum = written ^ version ^ port ^ frames ^ irq ^ vcpu ^ closed;
    s.fold([a, b, c, d, e, f, g, h], sum)
}

/// The errno of the last failure of [`work_checked`], 0 while it has only succeeded. The bench image
/// clears it before measuring and reports it after: a call that failed made the loop return early, so
/// its count is not that of the nine calls, and the bench fails.
pub static WORK_CHECKED_ERRNO: AtomicI32 = AtomicI32::new(0);

/// The work loop through the typed API, every result checked: the nine calls of [`work_typed`] with the
/// same structures, returning at the first error. On success it folds into the state what `work_typed`
/// folds on its success path, where its four flags (`written`, `sent`, `vcpu`, `closed`) are each 1.
#[inline(always)]
fn checked(s: &mut State) -> xen::Result<usize> {
    /// `work_typed`'s flag of a call that succeeded.
    const OK: usize = 1;
    let [a, b, c, d, e, f, g, h] = s.v;
    console::write(b"work.\n")?;
    let version = version::version()?.minor as usize;
    let port = evtchn::alloc_unbound(DomId::SELF, DomId(c as u16))?.0 as usize;
    evtchn::send(Port((d ^ port) as u32))?;
    let frames = grant_table::query_size(DomId(e as u16))?.nr_frames as usize;
    let irq = hvm::get_param(DomId::SELF, hvm::Param(f as u32))? as usize;
    // SAFETY: under the bench image's trap handler nothing is registered.
    unsafe { vcpu::register_vcpu_info(0, g as u64, 0) }?;
    evtchn::close(Port((h ^ OK) as u32))?;
    sched::yield_now()?;
    let sum = OK ^ version ^ port ^ frames ^ irq ^ OK ^ OK;
    Ok(s.fold([a, b, c, d, e, f, g, h], sum))
}

/// Records a failure of [`work_checked`] ([`WORK_CHECKED_ERRNO`]); out of the success path.
#[cold]
#[inline(never)]
fn failed(e: xen::Error) -> usize {
    WORK_CHECKED_ERRNO.store(e.errno(), Ordering::Relaxed);
    0
}

/// The work loop through the typed API with every result checked (`?`): its value, or 0 after recording
/// the error in [`WORK_CHECKED_ERRNO`].
///
/// # Safety
///
/// Issues real hypercalls with made-up arguments: only under the bench image's trap handler.
#[unsafe(no_mangle)]
#[inline(never)]
pub unsafe extern "C" fn work_checked(s: &mut State) -> usize {
    match checked(s) {
        Ok(v) => v,
        Err(e) => failed(e),
    }
}
