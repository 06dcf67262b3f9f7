// A multicall batch runs once: `submit` consumes it, so submitting the same batch again does not compile.
use xen_hypercall::xen::multicall::{Batch, Call};

fn main() {
    let mut batch: Batch<'_, 2> = Batch::new();
    batch.push(Call::xen_version()).unwrap();
    let _first = batch.submit();
    let _second = batch.submit();
}
