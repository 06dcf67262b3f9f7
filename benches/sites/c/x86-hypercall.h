/* x86-64: the peers' hypercalls are inline `asm` calling the hypercall page (`xen_hypercall_page`, the
 * library's page; the peers name theirs `hypercall_page`), entry `page + nr * 32`, written to the macros of:
 *   Linux     arch/x86/include/asm/xen/hypercall.h (the page form, before static calls): every one of
 *             rdi, rsi, rdx, r10, r8 bound ("+r" for the call's arguments, clobbered otherwise), rax the
 *             result, "memory" clobbered, the stack pointer an operand (ASM_CALL_CONSTRAINT)
 *   Unikraft  plat/xen/include/xen-x86/hypercall64.h (Mini-OS's hypercall-x86_64.h): only the call's
 *             argument registers bound ("=D" … tied to the inputs), a4 and a5 moved into r10 and r8 inside
 *             the asm ("movq %7,%%r10"), "memory" clobbered
 * and the inline functions of both headers (`static inline int HYPERVISOR_console_io(…)` …), here named
 * <peer>_HYPERVISOR_<name>. Included by callers.c on x86-64 with -DPEER=linux or -DPEER=unikraft. */

extern char xen_hypercall_page[];

#define __STR(x) #x
#define STR(x) __STR(x)

#define __HYPERVISOR_console_io 18
#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_event_channel_op 32
#define __HYPERVISOR_grant_table_op 20
#define __HYPERVISOR_hvm_op 34
#define __HYPERVISOR_vcpu_op 24
#define __HYPERVISOR_sched_op 29
#define __HYPERVISOR_arch_0 48
#define __HYPERVISOR_arch_1 49
#define __HYPERVISOR_arch_2 50
#define __HYPERVISOR_arch_3 51
#define __HYPERVISOR_arch_4 52
#define __HYPERVISOR_arch_5 53

#if PEER_UNIKRAFT

#define HYPERCALL_STR(name) "call xen_hypercall_page + (" STR(__HYPERVISOR_##name) " * 32)"

#define _hypercall0(type, name)                                                                    \
    ({                                                                                             \
        long __res;                                                                                \
        asm volatile(HYPERCALL_STR(name) : "=a"(__res) : : "memory");                              \
        (type) __res;                                                                              \
    })
#define _hypercall1(type, name, a1)                                                                \
    ({                                                                                             \
        long __res, __ign1;                                                                        \
        asm volatile(HYPERCALL_STR(name) : "=a"(__res), "=D"(__ign1) : "1"((long)(a1)) : "memory"); \
        (type) __res;                                                                              \
    })
#define _hypercall2(type, name, a1, a2)                                                            \
    ({                                                                                             \
        long __res, __ign1, __ign2;                                                                \
        asm volatile(HYPERCALL_STR(name)                                                           \
                     : "=a"(__res), "=D"(__ign1), "=S"(__ign2)                                     \
                     : "1"((long)(a1)), "2"((long)(a2))                                            \
                     : "memory");                                                                  \
        (type) __res;                                                                              \
    })
#define _hypercall3(type, name, a1, a2, a3)                                                        \
    ({                                                                                             \
        long __res, __ign1, __ign2, __ign3;                                                        \
        asm volatile(HYPERCALL_STR(name)                                                           \
                     : "=a"(__res), "=D"(__ign1), "=S"(__ign2), "=d"(__ign3)                       \
                     : "1"((long)(a1)), "2"((long)(a2)), "3"((long)(a3))                           \
                     : "memory");                                                                  \
        (type) __res;                                                                              \
    })
#define _hypercall4(type, name, a1, a2, a3, a4)                                                    \
    ({                                                                                             \
        long __res, __ign1, __ign2, __ign3;                                                        \
        asm volatile("movq %7,%%r10; " HYPERCALL_STR(name)                                         \
                     : "=a"(__res), "=D"(__ign1), "=S"(__ign2), "=d"(__ign3)                       \
                     : "1"((long)(a1)), "2"((long)(a2)), "3"((long)(a3)), "g"((long)(a4))          \
                     : "memory", "r10");                                                           \
        (type) __res;                                                                              \
    })
#define _hypercall5(type, name, a1, a2, a3, a4, a5)                                                \
    ({                                                                                             \
        long __res, __ign1, __ign2, __ign3;                                                        \
        asm volatile("movq %7,%%r10; movq %8,%%r8; " HYPERCALL_STR(name)                           \
                     : "=a"(__res), "=D"(__ign1), "=S"(__ign2), "=d"(__ign3)                       \
                     : "1"((long)(a1)), "2"((long)(a2)), "3"((long)(a3)), "g"((long)(a4)),         \
                       "g"((long)(a5))                                                             \
                     : "memory", "r10", "r8");                                                     \
        (type) __res;                                                                              \
    })

#else /* Linux */

register unsigned long current_stack_pointer asm("rsp");
#define ASM_CALL_CONSTRAINT "+r"(current_stack_pointer)

#define __HYPERCALL "call xen_hypercall_page+%c[offset]"
#define __HYPERCALL_ENTRY(x) [offset] "i"(__HYPERVISOR_##x * 32)

#define __HYPERCALL_DECLS                                                                          \
    register unsigned long __res asm("rax");                                                       \
    register unsigned long __arg1 asm("rdi") = __arg1;                                             \
    register unsigned long __arg2 asm("rsi") = __arg2;                                             \
    register unsigned long __arg3 asm("rdx") = __arg3;                                             \
    register unsigned long __arg4 asm("r10") = __arg4;                                             \
    register unsigned long __arg5 asm("r8") = __arg5;

#define __HYPERCALL_0PARAM "=r"(__res), ASM_CALL_CONSTRAINT
#define __HYPERCALL_1PARAM __HYPERCALL_0PARAM, "+r"(__arg1)
#define __HYPERCALL_2PARAM __HYPERCALL_1PARAM, "+r"(__arg2)
#define __HYPERCALL_3PARAM __HYPERCALL_2PARAM, "+r"(__arg3)
#define __HYPERCALL_4PARAM __HYPERCALL_3PARAM, "+r"(__arg4)
#define __HYPERCALL_5PARAM __HYPERCALL_4PARAM, "+r"(__arg5)

#define __HYPERCALL_0ARG()
#define __HYPERCALL_1ARG(a1) __HYPERCALL_0ARG() __arg1 = (unsigned long)(a1);
#define __HYPERCALL_2ARG(a1, a2) __HYPERCALL_1ARG(a1) __arg2 = (unsigned long)(a2);
#define __HYPERCALL_3ARG(a1, a2, a3) __HYPERCALL_2ARG(a1, a2) __arg3 = (unsigned long)(a3);
#define __HYPERCALL_4ARG(a1, a2, a3, a4) __HYPERCALL_3ARG(a1, a2, a3) __arg4 = (unsigned long)(a4);
#define __HYPERCALL_5ARG(a1, a2, a3, a4, a5)                                                       \
    __HYPERCALL_4ARG(a1, a2, a3, a4) __arg5 = (unsigned long)(a5);

#define __HYPERCALL_CLOBBER5 "memory"
#define __HYPERCALL_CLOBBER4 __HYPERCALL_CLOBBER5, "r8"
#define __HYPERCALL_CLOBBER3 __HYPERCALL_CLOBBER4, "r10"
#define __HYPERCALL_CLOBBER2 __HYPERCALL_CLOBBER3, "rdx"
#define __HYPERCALL_CLOBBER1 __HYPERCALL_CLOBBER2, "rsi"
#define __HYPERCALL_CLOBBER0 __HYPERCALL_CLOBBER1, "rdi"

#define _hypercall(N, type, name, ...)                                                             \
    ({                                                                                             \
        __HYPERCALL_DECLS;                                                                         \
        __HYPERCALL_##N##ARG(__VA_ARGS__);                                                         \
        asm volatile(__HYPERCALL                                                                   \
                     : __HYPERCALL_##N##PARAM                                                      \
                     : __HYPERCALL_ENTRY(name)                                                     \
                     : __HYPERCALL_CLOBBER##N);                                                    \
        (type) __res;                                                                              \
    })
#define _hypercall0(type, name) _hypercall(0, type, name, )
#define _hypercall1(type, name, a1) _hypercall(1, type, name, a1)
#define _hypercall2(type, name, a1, a2) _hypercall(2, type, name, a1, a2)
#define _hypercall3(type, name, a1, a2, a3) _hypercall(3, type, name, a1, a2, a3)
#define _hypercall4(type, name, a1, a2, a3, a4) _hypercall(4, type, name, a1, a2, a3, a4)
#define _hypercall5(type, name, a1, a2, a3, a4, a5) _hypercall(5, type, name, a1, a2, a3, a4, a5)

#endif

static inline int HC(console_io)(int cmd, int count, char *str)
{
    return _hypercall3(int, console_io, cmd, count, str);
}
static inline int HC(xen_version)(int cmd, void *arg)
{
    return _hypercall2(int, xen_version, cmd, arg);
}
static inline int HC(event_channel_op)(int cmd, void *arg)
{
    return _hypercall2(int, event_channel_op, cmd, arg);
}
static inline int HC(grant_table_op)(unsigned int cmd, void *uop, unsigned int count)
{
    return _hypercall3(int, grant_table_op, cmd, uop, count);
}
static inline unsigned long HC(hvm_op)(int op, void *arg)
{
    return _hypercall2(unsigned long, hvm_op, op, arg);
}
static inline int HC(vcpu_op)(int cmd, int vcpuid, void *extra_args)
{
    return _hypercall3(int, vcpu_op, cmd, vcpuid, extra_args);
}
static inline int HC(sched_op)(int cmd, void *arg)
{
    return _hypercall2(int, sched_op, cmd, arg);
}
static inline long HC(arch_0)(void)
{
    return _hypercall0(long, arch_0);
}
static inline long HC(arch_1)(usize a1)
{
    return _hypercall1(long, arch_1, a1);
}
static inline long HC(arch_2)(usize a1, usize a2)
{
    return _hypercall2(long, arch_2, a1, a2);
}
static inline long HC(arch_3)(usize a1, usize a2, usize a3)
{
    return _hypercall3(long, arch_3, a1, a2, a3);
}
static inline long HC(arch_4)(usize a1, usize a2, usize a3, usize a4)
{
    return _hypercall4(long, arch_4, a1, a2, a3, a4);
}
static inline long HC(arch_5)(usize a1, usize a2, usize a3, usize a4, usize a5)
{
    return _hypercall5(long, arch_5, a1, a2, a3, a4, a5);
}
