/* LD_PRELOAD shim for Debian's user-mode-linux (6.1) on hosts whose CPUs
 * have large XSAVE areas (AVX-512, AMX).
 *
 * UML 6.1 saves a guest process's FPU state with PTRACE_GETREGSET /
 * PTRACE_SETREGSET(NT_X86_XSTATE) into a fixed buffer the size of
 * struct _xstate (832 bytes).  The host kernel's xstateregs_set()
 * (arch/x86/kernel/fpu/regset.c) insists on a whole XSAVE buffer
 * ("if (pos != 0 || count != fpu_user_cfg.max_size) return -EFAULT"), so on
 * such hosts the first context switch fails with "ptrace set fp regs
 * failed, errno = 14" and the guest's init is killed.
 *
 * UML probes NT_X86_XSTATE once at start-up (arch_init_registers) and falls
 * back to PTRACE_GETFPREGS/SETFPREGS (the 512-byte FXSAVE area: x87, SSE)
 * when the probe fails.  This shim makes that probe fail.  Guest programs
 * then keep x87/SSE state across switches but not AVX state, so the
 * sandbox also tells the guest's glibc not to use AVX code paths
 * (GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX...), see sgpy/sandbox/__init__.py.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/ptrace.h>
#include <sys/types.h>

long ptrace(enum __ptrace_request request, ...)
{
    static long (*real_ptrace)(enum __ptrace_request, pid_t, void *, void *);
    va_list ap;
    pid_t pid;
    void *addr, *data;

    va_start(ap, request);
    pid = va_arg(ap, pid_t);
    addr = va_arg(ap, void *);
    data = va_arg(ap, void *);
    va_end(ap);

    if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) &&
        (long)addr == NT_X86_XSTATE) {
        errno = EIO;
        return -1;
    }
    if (!real_ptrace)
        real_ptrace = (long (*)(enum __ptrace_request, pid_t, void *, void *))
            dlsym(RTLD_NEXT, "ptrace");
    return real_ptrace(request, pid, addr, data);
}
