/* LD_PRELOAD shim for Debian's user-mode-linux (6.1) on hosts whose XSAVE
 * area is larger than UML's own buffer (Intel CPUs with AMX: 11008 bytes).
 *
 * UML saves and restores a guest process's FPU state with
 * PTRACE_GETREGSET / PTRACE_SETREGSET(NT_X86_XSTATE) through a buffer of a
 * size fixed when UML was built (2696 bytes in 6.1um4: the standard XSAVE
 * layout up to PKRU).  Reading a short buffer is fine (the host truncates),
 * but the host's xstateregs_set() (arch/x86/kernel/fpu/regset.c) wants a
 * whole XSAVE buffer:
 *
 *     if (pos != 0 || count != fpu_user_cfg.max_size)
 *         return -EFAULT;
 *
 * (ptrace_regset() in kernel/ptrace.c first clips a longer iov_len to the
 * regset's size, so a buffer at least as large as the host's works).  On a
 * host whose size is larger, the first context switch fails with "ptrace set
 * fp regs failed, errno = 14" and the guest's init is killed.
 *
 * This shim changes nothing where the host accepts UML's buffer.  Where it
 * is shorter than the host's XSAVE size, it copies UML's bytes into a buffer
 * of the host's size, zero-filled beyond them, and hands that to the host.
 * The state components past UML's buffer (AMX tile state) are then in their
 * initial state: their XSTATE_BV bits in the header, which UML's buffer
 * carries, are clear because a guest process can never enable AMX (that
 * needs arch_prctl(ARCH_REQ_XCOMP_PERM), which UML does not pass on).
 * Every register UML knows of, AVX-512 included, is therefore saved and
 * restored whole.
 *
 * An earlier version instead made UML's NT_X86_XSTATE probe fail, so that
 * UML fell back to PTRACE_GETFPREGS/SETFPREGS (FXSAVE: x87 and SSE only).
 * That loses the upper halves of the YMM/ZMM registers whenever a guest
 * process takes a page fault: the fault reaches UML as a signal, the host
 * resets the extended state to its initial values on signal delivery
 * (fpu__clear_user_states()), and UML restores only the FXSAVE part.  glibc
 * then copies memory wrongly with its AVX memcpy, which GLIBC_TUNABLES did
 * not switch off (its AVX_Fast_Unaligned_Load preference stays set).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef long (*ptrace_fn)(enum __ptrace_request, pid_t, void *, void *);

/* Large enough for any XSAVE layout the host may report (the architectural
 * maximum today is under 12 KiB). */
#define PROBE_SIZE (64 * 1024)

static ptrace_fn real_ptrace(void)
{
    static ptrace_fn fn;
    if (!fn)
        fn = (ptrace_fn)dlsym(RTLD_NEXT, "ptrace");
    return fn;
}

/* The host's XSAVE size for ptrace: GETREGSET with a large buffer reports
 * the bytes it wrote, which is the regset's whole size.  0 if unknown. */
static size_t host_xstate_size(pid_t pid)
{
    static size_t size;
    if (size == 0) {
        void *buf = calloc(1, PROBE_SIZE);
        struct iovec iov = {buf, PROBE_SIZE};
        if (buf && real_ptrace()(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) == 0)
            size = iov.iov_len;
        free(buf);
    }
    return size;
}

long ptrace(enum __ptrace_request request, ...)
{
    va_list ap;
    pid_t pid;
    void *addr, *data;

    va_start(ap, request);
    pid = va_arg(ap, pid_t);
    addr = va_arg(ap, void *);
    data = va_arg(ap, void *);
    va_end(ap);

    if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) && (long)addr == NT_X86_XSTATE &&
        data != NULL) {
        struct iovec *in = data;
        size_t full = host_xstate_size(pid);
        /* Tests only: behave as a UML whose buffer has this many bytes, to
         * exercise the padding below on hosts that do not need it. */
        const char *sim = getenv("SGPY_UMLFIX_SIMULATE_BUFFER");
        if (sim != NULL && strtoul(sim, NULL, 10) > 0 && strtoul(sim, NULL, 10) < in->iov_len)
            in->iov_len = strtoul(sim, NULL, 10);
        if (request == PTRACE_SETREGSET && full > in->iov_len && full <= PROBE_SIZE) {
            void *buf = calloc(1, full);
            struct iovec iov = {buf, full};
            long r;
            int saved;
            if (buf == NULL) {
                errno = ENOMEM;
                return -1;
            }
            memcpy(buf, in->iov_base, in->iov_len);
            r = real_ptrace()(request, pid, addr, &iov);
            saved = errno;
            free(buf);
            errno = saved;
            return r;
        }
    }
    return real_ptrace()(request, pid, addr, data);
}
