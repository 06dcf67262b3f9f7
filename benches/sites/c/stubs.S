/* The peers' out-of-line hypercall stubs, one per hypercall with the number built in, written to the
 * instruction sequences of:
 *   Linux     arch/arm64/xen/hypercall.S   mov x16, #__HYPERVISOR_##n; hvc #0xEA1; ret
 *             arch/arm/xen/hypercall.S     mov r12, #__HYPERVISOR_##n; hvc #0xEA1; ret lr
 *                                          (HYPERCALL5: stmdb sp!, {r4}; ldr r4, [sp, #4]; ...; ldm sp!, {r4})
 *                                          assembled as Thumb-2 in a Thumb-2 kernel
 *   Unikraft  plat/xen/arm/hypercalls64.S  mov x16, #__HYPERVISOR_##n; hvc #0xEA1; ret
 *             plat/xen/arm/hypercalls32.S  mov r12, #__HYPERVISOR_##n; hvc #0xEA1; mov pc, lr (A32 only)
 *                                          (HYPERCALL5 as Linux's, returning with mov pc, lr)
 * Built with -DPEER=linux or -DPEER=unikraft; each stub is named <peer>_HYPERVISOR_<name>. */

#define PASTE3(a, b, c) a##b##c
#define XPASTE3(a, b, c) PASTE3(a, b, c)
#define NAME(n) XPASTE3(PEER, _HYPERVISOR_, n)

#if defined(__aarch64__)
#define STUB(n, args)       \
    .text;                      \
    .balign 4;                  \
    .globl NAME(n);             \
    .type NAME(n), %function;   \
NAME(n):                        \
    mov x16, #__HYPERVISOR_##n;               \
    hvc #0xEA1;                 \
    ret;                        \
    .size NAME(n), . - NAME(n)
#else
    .syntax unified
    .arch armv7-a
    .arch_extension virt
#if defined(__thumb__)
    .thumb
#define FUNC .thumb_func
#else
    .arm
#define FUNC
#endif
#if PEER_UNIKRAFT
#define RET mov pc, lr
#else
#define RET bx lr
#endif
#define STUB_0(n)           \
    mov r12, #__HYPERVISOR_##n;               \
    hvc #0xEA1;                 \
    RET
#define STUB_5(n)           \
    stmdb sp!, {r4};            \
    ldr r4, [sp, #4];           \
    mov r12, #__HYPERVISOR_##n;               \
    hvc #0xEA1;                 \
    ldm sp!, {r4};              \
    RET
#define STUB_1 STUB_0
#define STUB_2 STUB_0
#define STUB_3 STUB_0
#define STUB_4 STUB_0
#define STUB(n, args)       \
    .text;                      \
    .balign 4;                  \
    .globl NAME(n);             \
    .type NAME(n), %function;   \
    FUNC;                       \
NAME(n):                        \
    STUB_##args(n);         \
    .size NAME(n), . - NAME(n)
#endif

#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_console_io 18
#define __HYPERVISOR_grant_table_op 20
#define __HYPERVISOR_vcpu_op 24
#define __HYPERVISOR_sched_op 29
#define __HYPERVISOR_event_channel_op 32
#define __HYPERVISOR_hvm_op 34
/* __HYPERVISOR_arch_N (48 + N): the per-arity bench sites' calls. */
#define __HYPERVISOR_arch_0 48
#define __HYPERVISOR_arch_1 49
#define __HYPERVISOR_arch_2 50
#define __HYPERVISOR_arch_3 51
#define __HYPERVISOR_arch_4 52
#define __HYPERVISOR_arch_5 53

STUB(xen_version, 2)
STUB(console_io, 3)
STUB(grant_table_op, 3)
STUB(vcpu_op, 3)
STUB(sched_op, 2)
STUB(event_channel_op, 2)
STUB(hvm_op, 2)
STUB(arch_0, 0)
STUB(arch_1, 1)
STUB(arch_2, 2)
STUB(arch_3, 3)
STUB(arch_4, 4)
STUB(arch_5, 5)
