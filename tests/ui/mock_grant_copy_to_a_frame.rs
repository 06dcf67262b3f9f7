// A copy's destination in the safe `copy` is a granted page: a frame of the caller's given by number
// (which could hold any of the program's memory) is no destination `GnttabCopy::new` accepts.
use xen_hypercall::xen::DomId;
use xen_hypercall::xen::grant_table::{self as gt, CopyPtr, GnttabCopy, GrantRef};

static SECRET: [u8; 64] = [0; 64];

fn main() {
    let from = CopyPtr::Gref { dom: DomId(1), gref: GrantRef(8), offset: 0 };
    let to = CopyPtr::Frame { gmfn: SECRET.as_ptr() as u64 >> 12, offset: 0 };
    let _ = gt::copy(&mut [GnttabCopy::new(from, to, 64)]);
}
