// The modules every guest binary shares (`include!("../modules.rs")` after its `#![no_std]` and
// `#![no_main]`): its helpers, the template's entry code and its identity map.
#[path = "common.rs"]
#[allow(dead_code)]
mod common;
#[path = "entry.rs"]
mod entry;
#[path = "mmu.rs"]
#[allow(dead_code)]
mod mmu;
