xen_hypercall_macros::hypercall_abi! {
    arch: arm; trap: "hvc"; tag: 0xEA1; number: r12; args: [r0]; ret: r0;
    clobbers: used_args; flags: none;
}

fn main() {}
