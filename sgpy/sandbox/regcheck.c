/* Register-integrity check run inside a sandbox guest (python -m sgpy.sandbox --check).
 *
 * User-Mode Linux keeps a guest process's registers in the host process that
 * runs it and saves and restores them through ptrace whenever the guest
 * kernel takes over: at every system call, and at every page fault (which
 * reaches UML as a host signal).  If any part of the FPU/vector state is not
 * carried across these, guest programs compute wrong results without
 * crashing at once (glibc's AVX memcpy copies wrong bytes).  This program
 * loads known patterns into every vector register the host CPU has enabled
 * (XCR0, read with XGETBV: XMM, YMM, ZMM and the AVX-512 opmask registers),
 * and the x87 and SSE control words, crosses a system call, a page fault and
 * a signal handler, and compares.  It also copies memory with glibc across
 * fresh pages.
 *
 * Output: one line per check, "regcheck NAME ok|BAD ...", and a last line
 * "regcheck result ok|BAD".  Exit status 0 when every check passed.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ROUNDS 300

enum cross { VIA_SYSCALL, VIA_FAULT, VIA_SIGNAL };
static const char *cross_name[] = {"system call", "page fault", "signal"};

static volatile sig_atomic_t signals;
static void on_usr1(int sig) { (void)sig; signals++; }

static uint64_t xcr0(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
        return 3; /* x87 and SSE only */
    __asm__ volatile("xgetbv" : "=a"(a), "=d"(d) : "c"(0));
    return ((uint64_t)d << 32) | a;
}

/* The guest kernel takes over between the loads and the stores. */
static void cross(enum cross how, volatile char *page)
{
    if (how == VIA_SYSCALL)
        getppid();
    else if (how == VIA_FAULT)
        *page = 1;
    else
        raise(SIGUSR1);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 13 + seed * 7 + 1);
}

/* Each check loads the registers from `in`, crosses, stores into `out`.
 * Everything between is asm: the compiler cannot spill or reuse them. */
#define CROSS_ASM(loads, stores, ...)                                                    \
    __asm__ volatile(loads                                                               \
                     "cmp $1, %[how]\n jb 1f\n je 2f\n"                                  \
                     "mov $62, %%eax\n mov %[pid], %%rdi\n mov $10, %%esi\n syscall\n"   \
                     "jmp 3f\n"                                                          \
                     "1: mov $110, %%eax\n syscall\n jmp 3f\n"                           \
                     "2: movb $1, (%[page])\n"                                           \
                     "3:\n" stores                                                       \
                     :                                                                   \
                     : [in] "r"(in), [out] "r"(out), [how] "r"((long)how),               \
                       [page] "r"(page), [pid] "r"((long)getpid())                       \
                     : "rax", "rcx", "rdx", "rsi", "rdi", "r11", "memory", __VA_ARGS__)

#define X(n) "movdqu " #n "*16(%[in]), %%xmm" #n "\n"
#define XS(n) "movdqu %%xmm" #n ", " #n "*16(%[out])\n"
#define Y(n) "vmovdqu " #n "*32(%[in]), %%ymm" #n "\n"
#define YS(n) "vmovdqu %%ymm" #n ", " #n "*32(%[out])\n"
#define Z(n) "vmovdqu64 " #n "*64(%[in]), %%zmm" #n "\n"
#define ZS(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%[out])\n"
#define K(n) "kmovw 2048+" #n "*8(%[in]), %%k" #n "\n"
#define KS(n) "kmovw %%k" #n ", 2048+" #n "*8(%[out])\n"
#define R16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define R32(M) R16(M) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) \
    M(28) M(29) M(30) M(31)
#define XMM_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
    "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

static int run_xmm(unsigned char *in, unsigned char *out, enum cross how, volatile char *page)
{
    CROSS_ASM(R16(X), R16(XS), XMM_CLOBBERS);
    return 16 * 16;
}

static int run_ymm(unsigned char *in, unsigned char *out, enum cross how, volatile char *page)
{
    CROSS_ASM(R16(Y), R16(YS) "vzeroupper\n", XMM_CLOBBERS);
    return 16 * 32;
}

__attribute__((target("avx512f"))) static int run_zmm(unsigned char *in, unsigned char *out, enum cross how, volatile char *page)
{
    /* k1-k7 (kmovw: AVX512F), two bytes each in 8-byte slots after the ZMM bytes. */
    memset(in + 2048, 0, 64);
    for (int k = 1; k < 8; k++)
        memcpy(in + 2048 + 8 * k, in + 100 * k, 2);
    CROSS_ASM(R32(Z) K(1) K(2) K(3) K(4) K(5) K(6) K(7),
              R32(ZS) KS(1) KS(2) KS(3) KS(4) KS(5) KS(6) KS(7) "vzeroupper\n",
              XMM_CLOBBERS, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",
              "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31");
    return 32 * 64 + 64;
}

static int run_control(unsigned char *in, unsigned char *out, enum cross how, volatile char *page)
{
    /* x87 control word (rounding toward zero, precision 53 bits) and
     * MXCSR (flush-to-zero, rounding down); both put back afterwards. */
    uint16_t fcw = 0x0e7f, fcw_saved;
    uint32_t mxcsr = 0x3f80 | 0x8000, mxcsr_saved;
    memcpy(in, &fcw, 2);
    memcpy(in + 4, &mxcsr, 4);
    __asm__ volatile("fnstcw %0\n stmxcsr %1" : "=m"(fcw_saved), "=m"(mxcsr_saved));
    __asm__ volatile("fldcw %0\n ldmxcsr %1" ::"m"(fcw), "m"(mxcsr));
    cross(how, page);
    __asm__ volatile("fnstcw %0\n stmxcsr %1" : "=m"(*(uint16_t *)out), "=m"(*(uint32_t *)(out + 4)));
    __asm__ volatile("fldcw %0\n ldmxcsr %1" ::"m"(fcw_saved), "m"(mxcsr_saved));
    out[2] = in[2];
    out[3] = in[3];
    return 8;
}

typedef int (*check_fn)(unsigned char *, unsigned char *, enum cross, volatile char *);

static int check(const char *name, check_fn fn, enum cross how, int extra)
{
    static unsigned char in[4096] __attribute__((aligned(64)));
    static unsigned char out[4096] __attribute__((aligned(64)));
    long bad = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) {
            perror("regcheck: mmap");
            exit(2);
        }
        fill(in, sizeof in, (unsigned)round);
        memset(out, 0, sizeof out);
        int n = fn(in, out, how, page) + extra;
        munmap(page, 4096);
        if (memcmp(in, out, (size_t)n) != 0)
            bad++;
    }
    printf("regcheck %s across a %s %s (%ld of %d rounds changed)\n", name, cross_name[how],
           bad ? "BAD" : "ok", bad, ROUNDS);
    return bad == 0;
}

static int check_memcpy(void)
{
    /* glibc's memcpy/memset over fresh pages (a page fault every 4 KiB, in
     * the middle of its vector loops). */
    long bad = 0;
    for (int round = 0; round < 20; round++) {
        size_t n = 256 * 1024 + (size_t)round * 4099;
        unsigned char *a = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        unsigned char *b = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (a == MAP_FAILED || b == MAP_FAILED) {
            perror("regcheck: mmap");
            exit(2);
        }
        memset(a, 0x5a + round, n);
        memcpy(b, a, n);
        for (size_t i = 0; i < n; i++)
            bad += b[i] != (unsigned char)(0x5a + round);
        munmap(a, n);
        munmap(b, n);
    }
    printf("regcheck memcpy across page faults %s (%ld bytes wrong)\n", bad ? "BAD" : "ok", bad);
    return bad == 0;
}

int main(void)
{
    uint64_t x = xcr0();
    int ok = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    unsigned a, b, c, d;
    __cpuid_count(0xd, 0, a, b, c, d);
    printf("regcheck xcr0 %#llx:%s%s%s%s, XSAVE area %u bytes\n", (unsigned long long)x, " sse",
           (x & 4) ? " avx" : "", (x & 0xe0) == 0xe0 ? " avx512" : "", (x & 0x60000) ? " amx" : "", b);
    for (int how = VIA_SYSCALL; how <= VIA_SIGNAL; how++) {
        ok &= check("x87/SSE control", run_control, (enum cross)how, 0);
        ok &= check("xmm0-15", run_xmm, (enum cross)how, 0);
        if (x & 4)
            ok &= check("ymm0-15", run_ymm, (enum cross)how, 0);
        if ((x & 0xe0) == 0xe0)
            ok &= check("zmm0-31 k1-7", run_zmm, (enum cross)how, 0);
    }
    ok &= check_memcpy();
    if (signals != ROUNDS * (2 + !!(x & 4) + ((x & 0xe0) == 0xe0))) {
        printf("regcheck signals BAD (%d delivered)\n", (int)signals);
        ok = 0;
    }
    printf("regcheck result %s\n", ok ? "ok" : "BAD");
    return ok ? 0 : 1;
}
