// Entry code and image headers: the unikernel template's, so that the guests and the template cannot
// drift (`template/src/entry.rs`).
include!("../../template/src/entry.rs");
