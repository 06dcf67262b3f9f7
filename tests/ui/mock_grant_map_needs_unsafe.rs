// Mapping a grant at an address of the caller's choice replaces what is there (on ARM the second-stage
// entry of that frame): `map_grant_ref` and `unmap_grant_ref` are `unsafe`; `MapArea` is the safe way.
use xen_hypercall::xen::DomId;
use xen_hypercall::xen::grant_table::{
    self as gt, GntMap, GnttabMapGrantRef, GnttabUnmapGrantRef, GrantHandle, GrantRef,
};

static LIVE: [u8; 4096] = [0; 4096];

fn main() {
    let at = LIVE.as_ptr() as u64;
    let _ = gt::map_grant_ref(&mut [GnttabMapGrantRef::new(at, GntMap::HOST_MAP, GrantRef(8), DomId(1))]);
    let _ = gt::unmap_grant_ref(&mut [GnttabUnmapGrantRef::new(at, GrantHandle(0))]);
}
