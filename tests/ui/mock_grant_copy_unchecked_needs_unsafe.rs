// Copies into the caller's own frames are submitted only by `copy_unchecked`, which is `unsafe`.
use xen_hypercall::xen::DomId;
use xen_hypercall::xen::grant_table::{self as gt, CopyPtr, GnttabCopy, GrantRef};

static SECRET: [u8; 64] = [0; 64];

fn main() {
    let from = CopyPtr::Gref { dom: DomId(1), gref: GrantRef(8), offset: 0 };
    let gmfn = SECRET.as_ptr() as u64 >> 12;
    let _ = gt::copy_unchecked(&mut [GnttabCopy::to_frame(from, gmfn, 0, 64)]);
}
