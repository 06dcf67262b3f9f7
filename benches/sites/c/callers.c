/* The peers' C callers: the bench's work loop and per-arity sites (`benches/sites/src/lib.rs`) written in C
 * against the peers' hypercall prototypes (Linux `include/xen/arm/hypercall.h`; Unikraft declares the same
 * ones), compiled by clang at -Os. Built with -DPEER=linux or -DPEER=unikraft. */

typedef unsigned long usize;

struct State {
    usize v[8];
};

#define PASTE3(a, b, c) a##b##c
#define XPASTE3(a, b, c) PASTE3(a, b, c)
#define HC(n) XPASTE3(PEER, _HYPERVISOR_, n)
#define FN(kind, n) XPASTE3(kind, PEER, n)

#if defined(__x86_64__)
#include "x86-hypercall.h"
#else
int HC(console_io)(int cmd, int count, char *str);
int HC(xen_version)(int cmd, void *arg);
int HC(event_channel_op)(int cmd, void *arg);
int HC(grant_table_op)(unsigned int cmd, void *uop, unsigned int count);
unsigned long HC(hvm_op)(int op, void *arg);
int HC(vcpu_op)(int cmd, int vcpuid, void *extra_args);
int HC(sched_op)(int cmd, void *arg);
long HC(arch_0)(void);
long HC(arch_1)(usize);
long HC(arch_2)(usize, usize);
long HC(arch_3)(usize, usize, usize);
long HC(arch_4)(usize, usize, usize, usize);
long HC(arch_5)(usize, usize, usize, usize, usize);
#endif

/* The work loop: the example guest's nine hypercalls, results feeding later calls. */
usize FN(work_, ) (struct State *s)
{
    usize a = s->v[0], b = s->v[1], c = s->v[2], d = s->v[3];
    usize e = s->v[4], f = s->v[5], g = s->v[6], h = s->v[7];
    long written = HC(console_io)(0, (int)a, (char *)b);
    long version = HC(xen_version)(0, 0);
    long port = HC(event_channel_op)(6, (void *)c);
    long sent = HC(event_channel_op)(4, (void *)(d ^ (usize)port));
    long frames = HC(grant_table_op)(6, (void *)e, 1);
    long irq = (long)HC(hvm_op)(1, (void *)f);
    long vcpu = HC(vcpu_op)(10, 0, (void *)g);
    long closed = HC(event_channel_op)(3, (void *)(h ^ (usize)sent));
    (void)HC(sched_op)(0, 0);
    usize sum = (usize)(written ^ version ^ port ^ frames ^ irq ^ vcpu ^ closed);
    s->v[0] = a ^ sum;
    s->v[2] = c + sum;
    s->v[4] = e ^ sum;
    s->v[6] = g + sum;
    return sum + (a ^ b ^ c ^ d ^ e ^ f ^ g ^ h);
}

/* Rust's rotate_left, in the branch-free form clang turns into one rotate. */
static inline usize rotl(usize v, unsigned k)
{
    const unsigned mask = 8 * sizeof(usize) - 1;
    return (v << (k & mask)) | (v >> (-k & mask));
}

/* One hypercall of arity N with eight live values. */
#define SITE(N, CALL)                                                                              \
    usize FN(site_, _##N)(struct State *s)                                                         \
    {                                                                                              \
        usize v0 = s->v[0], v1 = s->v[1], v2 = s->v[2], v3 = s->v[3];                              \
        usize v4 = s->v[4], v5 = s->v[5], v6 = s->v[6], v7 = s->v[7];                              \
        usize r = (usize)(CALL);                                                                   \
        usize out = (v0 + r) ^ (v1 * (r | 1)) ^ rotl(v2, (unsigned)r & 31) ^ (v3 - r) ^            \
                    ((v4 ^ r) * 3) ^ (v5 + (r << 1)) ^ (v6 * (r ^ 7)) ^ (v7 - (r >> 1));           \
        s->v[0] = out;                                                                             \
        return out;                                                                                \
    }

SITE(0, HC(arch_0)())
SITE(1, HC(arch_1)(v0))
SITE(2, HC(arch_2)(v0, v1))
SITE(3, HC(arch_3)(v0, v1, v2))
SITE(4, HC(arch_4)(v0, v1, v2, v3))
SITE(5, HC(arch_5)(v0, v1, v2, v3, v4))
