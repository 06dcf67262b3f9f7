// `Plain` refuses a structure with padding: the mock copies every byte behind a pointer argument, and a
// padding byte would be read uninitialised.

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Holey {
    pub a: u16,
    // Two bytes of padding here.
    pub b: u32,
}

xen_hypercall::impl_plain! { Holey { a: u16, b: u32 } }

fn main() {}
