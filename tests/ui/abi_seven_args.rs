xen_hypercall_macros::hypercall_abi! {
    arch: aarch64; trap: "hvc"; tag: 0xEA1; number: x16;
    args: [x0, x1, x2, x3, x4, x5, x6]; ret: x0; clobbers: used_args;
}

fn main() {}
