// Granting under a reference the caller chooses is check-then-write, and lets the grantee write any
// frame: `GrantEntries::grant_access` is `unsafe`, and `GrantTable` grants no frame by number safely.
use xen_hypercall::xen::DomId;
use xen_hypercall::xen::grant_table::{GrantEntryV1, GrantRef, GrantTable};

static LIVE: [u8; 4096] = [0; 4096];

fn main() {
    let mut frame = [GrantEntryV1::default(); 512];
    // SAFETY: `frame` outlives the table.
    let mut table = unsafe { GrantTable::<4>::new(frame.as_mut_ptr(), 1) };
    let gfn = LIVE.as_ptr() as u64 >> 12;
    let _ = table.entries().grant_access(GrantRef(8), DomId(1), gfn, false);
    let _ = table.grant_frame(DomId(1), gfn, false);
}
