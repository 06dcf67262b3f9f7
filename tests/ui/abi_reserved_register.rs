xen_hypercall_macros::hypercall_abi! {
    arch: aarch64; trap: "hvc"; tag: 0xEA1; number: x16;
    args: [x0, x29]; ret: x0; clobbers: used_args;
}

fn main() {}
