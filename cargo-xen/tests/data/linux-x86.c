/*
 * x86-64 Xen hypercalls in the shapes C guests use, for the audit's tests (`linux-x86-Os.o` is this file
 * built with `clang --target=x86_64-unknown-none-elf -Os -ffreestanding -fno-pic -c`).
 *
 * - Linux (arch/x86/include/asm/xen/hypercall.h): `static inline` HYPERVISOR_<name> wrappers whose
 *   `_hypercallN` puts the arguments in rdi, rsi, rdx, r10, r8 and does `call hypercall_page+nr*32`.
 * - An inline `vmmcall` (an HVM/PVH guest on AMD) and an inline `syscall` (PV) with the number in rax.
 * - A per-hypercall stub in the shape of Xen's PVH page entry (`mov $nr, %eax; vmmcall; ret`) and a
 *   generic one (the number as first C argument, rdi -> rax, the arguments moved down, `syscall; ret`).
 *
 * Expected sites (function: hypercalls, kind):
 *   xh_evtchn_send:   event_channel_op/send            hypercall page
 *   xh_yield:         sched_op/yield                   hypercall page
 *   xh_console_write: console_io/write                 hypercall page
 *   xh_work:          xen_version/version, event_channel_op/close, sched_op/yield, hypercall page
 *   xh_vmmcall_send:  event_channel_op/send            inline vmmcall
 *   xh_syscall_yield: sched_op/yield                   inline syscall
 *   xh_stub_send:     event_channel_op/send            per-hypercall stub
 *   xh_generic_query: grant_table_op/query_size        generic stub, arity 3
 */

#define __HYPERVISOR_console_io 18
#define __HYPERVISOR_grant_table_op 20
#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_sched_op 29
#define __HYPERVISOR_event_channel_op 32

#define CONSOLEIO_write 0
#define XENVER_version 0
#define SCHEDOP_yield 0
#define EVTCHNOP_close 3
#define EVTCHNOP_send 4
#define GNTTABOP_query_size 6

extern struct { char _entry[32]; } hypercall_page[];

#define __HYPERCALL "call hypercall_page+%c[offset]"
#define __HYPERCALL_ENTRY(x) [offset] "i"(__HYPERVISOR_##x * sizeof(hypercall_page[0]))

#define __HYPERCALL_DECLS                                                                                   \
	register unsigned long __res asm("rax");                                                           \
	register unsigned long __arg1 asm("rdi") = __arg1;                                                 \
	register unsigned long __arg2 asm("rsi") = __arg2;                                                 \
	register unsigned long __arg3 asm("rdx") = __arg3;                                                 \
	register unsigned long __arg4 asm("r10") = __arg4;                                                 \
	register unsigned long __arg5 asm("r8") = __arg5;

#define __HYPERCALL_0PARAM "=r"(__res)
#define __HYPERCALL_1PARAM __HYPERCALL_0PARAM, "+r"(__arg1)
#define __HYPERCALL_2PARAM __HYPERCALL_1PARAM, "+r"(__arg2)
#define __HYPERCALL_3PARAM __HYPERCALL_2PARAM, "+r"(__arg3)

#define __HYPERCALL_CLOBBER3 "memory", "r10", "r8"
#define __HYPERCALL_CLOBBER2 __HYPERCALL_CLOBBER3, "rdx"

#define _hypercall2(type, name, a1, a2)                                                                     \
	({                                                                                                  \
		__HYPERCALL_DECLS;                                                                          \
		__arg1 = (unsigned long)(a1);                                                               \
		__arg2 = (unsigned long)(a2);                                                               \
		asm volatile(__HYPERCALL : __HYPERCALL_2PARAM : __HYPERCALL_ENTRY(name) : __HYPERCALL_CLOBBER2); \
		(type)__res;                                                                                \
	})

#define _hypercall3(type, name, a1, a2, a3)                                                                 \
	({                                                                                                  \
		__HYPERCALL_DECLS;                                                                          \
		__arg1 = (unsigned long)(a1);                                                               \
		__arg2 = (unsigned long)(a2);                                                               \
		__arg3 = (unsigned long)(a3);                                                               \
		asm volatile(__HYPERCALL : __HYPERCALL_3PARAM : __HYPERCALL_ENTRY(name) : __HYPERCALL_CLOBBER3); \
		(type)__res;                                                                                \
	})

static inline int HYPERVISOR_event_channel_op(int cmd, void *arg)
{
	return _hypercall2(int, event_channel_op, cmd, arg);
}

static inline int HYPERVISOR_sched_op(int cmd, void *arg)
{
	return _hypercall2(int, sched_op, cmd, arg);
}

static inline int HYPERVISOR_console_io(int cmd, int count, const char *str)
{
	return _hypercall3(int, console_io, cmd, count, str);
}

static inline int HYPERVISOR_xen_version(int cmd, void *arg)
{
	return _hypercall2(int, xen_version, cmd, arg);
}

struct evtchn_send {
	unsigned port;
};

struct evtchn_close {
	unsigned port;
};

int xh_evtchn_send(unsigned port)
{
	struct evtchn_send s = { port };
	return HYPERVISOR_event_channel_op(EVTCHNOP_send, &s);
}

void xh_yield(void)
{
	HYPERVISOR_sched_op(SCHEDOP_yield, 0);
}

int xh_console_write(const char *str, int len)
{
	return HYPERVISOR_console_io(CONSOLEIO_write, len, str);
}

int xh_work(unsigned port)
{
	int v = HYPERVISOR_xen_version(XENVER_version, 0);
	struct evtchn_close c = { port };
	HYPERVISOR_event_channel_op(EVTCHNOP_close, &c);
	HYPERVISOR_sched_op(SCHEDOP_yield, 0);
	return v;
}

/* Inline traps, the number in rax. */
static inline long vmmcall2(unsigned long nr, unsigned long a1, unsigned long a2)
{
	register unsigned long rdi asm("rdi") = a1;
	register unsigned long rsi asm("rsi") = a2;
	long res;
	asm volatile("vmmcall" : "=a"(res), "+r"(rdi), "+r"(rsi) : "a"(nr) : "memory");
	return res;
}

static inline long syscall2(unsigned long nr, unsigned long a1, unsigned long a2)
{
	register unsigned long rdi asm("rdi") = a1;
	register unsigned long rsi asm("rsi") = a2;
	long res;
	asm volatile("syscall" : "=a"(res), "+r"(rdi), "+r"(rsi) : "a"(nr) : "memory", "rcx", "r11");
	return res;
}

long xh_vmmcall_send(unsigned port)
{
	struct evtchn_send s = { port };
	return vmmcall2(__HYPERVISOR_event_channel_op, EVTCHNOP_send, (unsigned long)&s);
}

long xh_syscall_yield(void)
{
	return syscall2(__HYPERVISOR_sched_op, SCHEDOP_yield, 0);
}

/* Stubs, recognised by their code (their names say nothing). */
asm(".text\n"
    ".globl evtchn_entry\n"
    ".type evtchn_entry, @function\n"
    "evtchn_entry:\n"
    "	mov $32, %eax\n"
    "	vmmcall\n"
    "	ret\n"
    ".size evtchn_entry, . - evtchn_entry\n"
    ".globl call_xen\n"
    ".type call_xen, @function\n"
    "call_xen:\n"
    "	mov %rdi, %rax\n"
    "	mov %rsi, %rdi\n"
    "	mov %rdx, %rsi\n"
    "	mov %rcx, %rdx\n"
    "	syscall\n"
    "	ret\n"
    ".size call_xen, . - call_xen\n");

extern long evtchn_entry(int cmd, void *arg);
extern long call_xen(unsigned long nr, unsigned long a1, unsigned long a2, unsigned long a3);

long xh_stub_send(unsigned port)
{
	struct evtchn_send s = { port };
	return evtchn_entry(EVTCHNOP_send, &s);
}

struct gnttab_query_size {
	unsigned short dom;
	unsigned nr_frames, max_nr_frames;
	short status;
};

long xh_generic_query(void)
{
	struct gnttab_query_size q = { 0x7ff0 };
	return call_xen(__HYPERVISOR_grant_table_op, GNTTABOP_query_size, (unsigned long)&q, 1);
}
