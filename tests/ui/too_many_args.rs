fn main() {
    let _ = unsafe { xen_hypercall::hypercall!(1, 1, 2, 3, 4, 5, 6, 7) };
}
