xen_hypercall_macros::hypercall_abi! {
    arch: arm; trap: "hvc"; number: r12; args: [r0]; ret: r0; clobbers: used_args;
}

fn main() {}
