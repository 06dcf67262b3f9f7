// `impl_plain!` checks the structure it is given: a field left out, or listed with another type, does not
// compile (so the size check cannot be fooled).

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Two {
    pub a: u32,
    pub b: u32,
}

xen_hypercall::impl_plain! { Two { a: u64 } }

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Typed {
    pub a: u32,
}

xen_hypercall::impl_plain! { Typed { a: i32 } }

fn main() {}
