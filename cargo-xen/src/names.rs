//! Hypercall names (`public/xen.h`) and the names of the sub-operations of the multiplexed hypercalls
//! (the first argument: `EVTCHNOP_*`, `GNTTABOP_*`, …), so that a site reads `event_channel_op/send`.
//!
//! The tables are Xen 4.17's public headers written out; a test compares every entry with the headers
//! Debian's `libxen-dev` installs (`cargo xtask test` installs it and runs that test).

/// `(number, name)` of every hypercall of `public/xen.h`.
pub const HYPERCALLS: &[(u64, &str)] = &[
    (0, "set_trap_table"),
    (1, "mmu_update"),
    (2, "set_gdt"),
    (3, "stack_switch"),
    (4, "set_callbacks"),
    (5, "fpu_taskswitch"),
    (6, "sched_op_compat"),
    (7, "platform_op"),
    (8, "set_debugreg"),
    (9, "get_debugreg"),
    (10, "update_descriptor"),
    (12, "memory_op"),
    (13, "multicall"),
    (14, "update_va_mapping"),
    (15, "set_timer_op"),
    (16, "event_channel_op_compat"),
    (17, "xen_version"),
    (18, "console_io"),
    (19, "physdev_op_compat"),
    (20, "grant_table_op"),
    (21, "vm_assist"),
    (22, "update_va_mapping_otherdomain"),
    (23, "iret"),
    (24, "vcpu_op"),
    (25, "set_segment_base"),
    (26, "mmuext_op"),
    (27, "xsm_op"),
    (28, "nmi_op"),
    (29, "sched_op"),
    (30, "callback_op"),
    (31, "xenoprof_op"),
    (32, "event_channel_op"),
    (33, "physdev_op"),
    (34, "hvm_op"),
    (35, "sysctl"),
    (36, "domctl"),
    (37, "kexec_op"),
    (38, "tmem_op"),
    (39, "argo_op"),
    (40, "xenpmu_op"),
    (41, "dm_op"),
    (42, "hypfs_op"),
    (48, "arch_0"),
    (49, "arch_1"),
    (50, "arch_2"),
    (51, "arch_3"),
    (52, "arch_4"),
    (53, "arch_5"),
    (54, "arch_6"),
    (55, "arch_7"),
];

/// A multiplexed hypercall: its number, the header and macro prefix of its sub-operations, and them.
pub struct SubOps {
    /// The hypercall number.
    pub number: u64,
    /// The public header that defines the sub-operations (under `xen/`).
    pub header: &'static str,
    /// Their macro prefix (`EVTCHNOP_`).
    pub prefix: &'static str,
    /// `(value, name)`.
    pub ops: &'static [(u64, &'static str)],
}

/// The sub-operations of the multiplexed hypercalls.
pub const SUB_OPS: &[SubOps] = &[
    SubOps {
        number: 18,
        header: "xen.h",
        prefix: "CONSOLEIO_",
        ops: &[(0, "write"), (1, "read")],
    },
    SubOps {
        number: 17,
        header: "version.h",
        prefix: "XENVER_",
        ops: &[
            (0, "version"),
            (1, "extraversion"),
            (2, "compile_info"),
            (3, "capabilities"),
            (4, "changeset"),
            (5, "platform_parameters"),
            (6, "get_features"),
            (7, "pagesize"),
            (8, "guest_handle"),
            (9, "commandline"),
            (10, "build_id"),
        ],
    },
    SubOps {
        number: 29,
        header: "sched.h",
        prefix: "SCHEDOP_",
        ops: &[
            (0, "yield"),
            (1, "block"),
            (2, "shutdown"),
            (3, "poll"),
            (4, "remote_shutdown"),
            (5, "shutdown_code"),
            (6, "watchdog"),
            (7, "pin_override"),
        ],
    },
    SubOps {
        number: 32,
        header: "event_channel.h",
        prefix: "EVTCHNOP_",
        ops: &[
            (0, "bind_interdomain"),
            (1, "bind_virq"),
            (2, "bind_pirq"),
            (3, "close"),
            (4, "send"),
            (5, "status"),
            (6, "alloc_unbound"),
            (7, "bind_ipi"),
            (8, "bind_vcpu"),
            (9, "unmask"),
            (10, "reset"),
            (11, "init_control"),
            (12, "expand_array"),
            (13, "set_priority"),
            (14, "reset_cont"),
        ],
    },
    SubOps {
        number: 20,
        header: "grant_table.h",
        prefix: "GNTTABOP_",
        ops: &[
            (0, "map_grant_ref"),
            (1, "unmap_grant_ref"),
            (2, "setup_table"),
            (3, "dump_table"),
            (4, "transfer"),
            (5, "copy"),
            (6, "query_size"),
            (7, "unmap_and_replace"),
            (8, "set_version"),
            (9, "get_status_frames"),
            (10, "get_version"),
            (11, "swap_grant_ref"),
            (12, "cache_flush"),
        ],
    },
    SubOps {
        number: 12,
        header: "memory.h",
        prefix: "XENMEM_",
        ops: &[
            (0, "increase_reservation"),
            (1, "decrease_reservation"),
            (2, "maximum_ram_page"),
            (3, "current_reservation"),
            (4, "maximum_reservation"),
            (5, "machphys_mfn_list"),
            (6, "populate_physmap"),
            (7, "add_to_physmap"),
            (9, "memory_map"),
            (10, "machine_memory_map"),
            (11, "exchange"),
            (12, "machphys_mapping"),
            (13, "set_memory_map"),
            (14, "maximum_gpfn"),
            (15, "remove_from_physmap"),
            (23, "add_to_physmap_batch"),
            (24, "claim_pages"),
            (28, "acquire_resource"),
        ],
    },
    SubOps {
        number: 24,
        header: "vcpu.h",
        prefix: "VCPUOP_",
        ops: &[
            (0, "initialise"),
            (1, "up"),
            (2, "down"),
            (3, "is_up"),
            (4, "get_runstate_info"),
            (5, "register_runstate_memory_area"),
            (6, "set_periodic_timer"),
            (7, "stop_periodic_timer"),
            (8, "set_singleshot_timer"),
            (9, "stop_singleshot_timer"),
            (10, "register_vcpu_info"),
            (11, "send_nmi"),
            (12, "get_physid"),
            (13, "register_vcpu_time_memory_area"),
        ],
    },
    SubOps {
        number: 34,
        header: "hvm/hvm_op.h",
        prefix: "HVMOP_",
        ops: &[(0, "set_param"), (1, "get_param")],
    },
    SubOps {
        number: 21,
        header: "xen.h",
        prefix: "VMASST_CMD_",
        ops: &[(0, "enable"), (1, "disable")],
    },
    SubOps {
        number: 42,
        header: "hypfs.h",
        prefix: "XEN_HYPFS_OP_",
        ops: &[(0, "get_version"), (1, "read"), (2, "write_contents")],
    },
];

/// The name of hypercall `number`.
pub fn hypercall(number: u64) -> Option<&'static str> {
    HYPERCALLS
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, name)| *name)
}

/// The name of sub-operation `op` of hypercall `number`, if it is a multiplexed one.
pub fn sub_op(number: u64, op: u64) -> Option<&'static str> {
    SUB_OPS
        .iter()
        .find(|s| s.number == number)?
        .ops
        .iter()
        .find(|(v, _)| *v == op)
        .map(|(_, name)| *name)
}

/// Whether hypercall `number` is multiplexed by its first argument.
pub fn has_sub_ops(number: u64) -> bool {
    SUB_OPS.iter().any(|s| s.number == number)
}

/// `event_channel_op/send`, `xen_version`, `hypercall 63`, `event_channel_op/99`.
pub fn describe(number: Option<u64>, first_arg: Option<u64>) -> String {
    let Some(n) = number else {
        return "?".into();
    };
    let base = hypercall(n).map_or_else(|| format!("hypercall {n}"), str::to_string);
    match first_arg {
        Some(a) if has_sub_ops(n) => match sub_op(n, a) {
            Some(op) => format!("{base}/{op}"),
            None => format!("{base}/{a}"),
        },
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sub_operations() {
        assert_eq!(describe(Some(32), Some(4)), "event_channel_op/send");
        assert_eq!(describe(Some(17), Some(0)), "xen_version/version");
        assert_eq!(describe(Some(32), None), "event_channel_op");
        assert_eq!(describe(Some(32), Some(99)), "event_channel_op/99");
        assert_eq!(describe(Some(35), Some(1)), "sysctl");
        assert_eq!(describe(Some(63), None), "hypercall 63");
        assert_eq!(describe(None, Some(1)), "?");
    }

    /// `#define <name> <value>` in a header.
    fn defined(text: &str, name: &str) -> Option<u64> {
        text.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("#define") && w.next() == Some(name))
                .then(|| w.next()?.parse().ok())
                .flatten()
        })
    }

    /// Every entry against Xen's public headers (Debian's `libxen-dev`, which `cargo xtask test`
    /// installs); run with `cargo test -p cargo-xen -- --ignored`.
    #[test]
    #[ignore = "needs /usr/include/xen (libxen-dev): cargo test -p cargo-xen -- --ignored"]
    fn the_tables_are_xens_headers() {
        let dir = std::path::Path::new("/usr/include/xen");
        let xen_h = std::fs::read_to_string(dir.join("xen.h")).expect("libxen-dev's xen.h");
        for (n, name) in HYPERCALLS {
            assert_eq!(
                defined(&xen_h, &format!("__HYPERVISOR_{name}")),
                Some(*n),
                "{name}"
            );
        }
        let mut checked = 0;
        for s in SUB_OPS {
            let text = std::fs::read_to_string(dir.join(s.header)).expect(s.header);
            for (v, name) in s.ops {
                assert_eq!(
                    defined(&text, &format!("{}{name}", s.prefix)),
                    Some(*v),
                    "{}{name} in {}",
                    s.prefix,
                    s.header
                );
                checked += 1;
            }
        }
        assert!(checked > 80, "{checked}");
        // The comparison can fail: a wrong value is not in the header.
        assert_ne!(defined(&xen_h, "__HYPERVISOR_xen_version"), Some(18));
    }
}
