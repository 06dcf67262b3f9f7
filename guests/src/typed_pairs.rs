//! The register-reuse pairs through the typed API, the same on every architecture (included by
//! `guests/src/pairs.rs` and `guests-x86/src/pairs.rs`): their stubs take the arity Xen declares for the
//! call on the target (`xen::nr::arity`).

use core::hint::black_box;

use xen_hypercall::xen::{self, DomId, grant_table, version};

/// Arity 2 through the typed API: `version::extraversion()` twice.
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair2_typed_extraversion() -> (
    xen::Result<version::ExtraVersion>,
    xen::Result<version::ExtraVersion>,
) {
    (version::extraversion(), version::extraversion())
}

/// Arity 3 through the typed API: `grant_table::query_size(DOMID_SELF)` twice.
#[inline(never)]
#[unsafe(no_mangle)]
pub fn pair3_typed_query_size() -> (
    Result<grant_table::QuerySize, grant_table::GrantError>,
    Result<grant_table::QuerySize, grant_table::GrantError>,
) {
    let dom = black_box(DomId::SELF);
    (grant_table::query_size(dom), grant_table::query_size(dom))
}
