/* seccomp: the system call filter of every tenant process.
 *
 * Capabilities and namespaces already refuse most of what is listed here;
 * the filter is the second wall, and the only one for what the kernel
 * lets any user do: user namespaces (a root of one's own, and with it a
 * much larger kernel surface), the kernel keyring (not namespaced), BPF,
 * perf events, userfaultfd, io_uring, and faking terminal input with
 * TIOCSTI. */
#include "seccomp.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Far more than the filter below compiles to (about 80). */
#define SECCOMP_MAX_INSNS 512

/* Refused outright with EPERM. */
static const char *const seccomp_denied[] = {
	"mount", "umount2", "pivot_root", "chroot", "setns",
	"open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"keyctl", "add_key", "request_key",
	"bpf", "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module", "open_by_handle_at",
	"swapon", "swapoff", "reboot", "acct", "quotactl", "iopl", "ioperm",
	"lookup_dcookie", "syslog", "vhangup", "nfsservctl", "uselib",
	/* io_uring reaches much of the kernel by paths of its own, and has
	 * been the way into many kernel exploits; programs that use it fall
	 * back to ordinary system calls on EPERM, which is also what
	 * kernel.io_uring_disabled answers. */
	"io_uring_setup", "io_uring_enter", "io_uring_register",
};

static int seccomp_deny(scmp_filter_ctx ctx, const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0;        /* not on this architecture */
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
}

/* New namespaces: refused whichever call asks for one (a rule per flag:
 * the filter can test "all bits of a mask", not "any"). clone3 passes its
 * flags in memory the filter cannot read, so it reports ENOSYS and libc
 * falls back to clone, whose flags the filter sees. */
static int seccomp_deny_namespaces(scmp_filter_ctx ctx)
{
	static const scmp_datum_t flags[] = { CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET,
					      CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP, CLONE_NEWTIME };
	int r = 0;

	for (size_t i = 0; r == 0 && i < sizeof flags / sizeof flags[0]; i++) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, flags[i], flags[i]));
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
					     SCMP_A0(SCMP_CMP_MASKED_EQ, flags[i], flags[i]));
	}
	return r;
}

/* The filter as libseccomp builds it. 0 or -errno. */
static int seccomp_build(scmp_filter_ctx *out)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = ctx ? 0 : -ENOMEM;

	for (size_t i = 0; r == 0 && i < sizeof seccomp_denied / sizeof seccomp_denied[0]; i++)
		r = seccomp_deny(ctx, seccomp_denied[i]);
	if (r == 0)
		r = seccomp_deny_namespaces(ctx);
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
	if (r < 0 && ctx) {
		seccomp_release(ctx);
		ctx = NULL;
	}
	*out = ctx;
	return r;
}

/* The compiled program, once seccomp_tenant_prepare() has run: building
 * it costs about 1.5 ms of CPU, in every child otherwise, where each page
 * libseccomp's allocations touch is also a copy. */
static struct {
	struct sock_filter insn[SECCOMP_MAX_INSNS];
	unsigned short len;
} seccomp_prog;

int seccomp_tenant_prepare(void)
{
	scmp_filter_ctx ctx;
	int r = seccomp_build(&ctx), fd = -1;
	ssize_t n = 0;
	char extra;

	if (r < 0)
		return r;
	fd = memfd_create("fief-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		r = -errno;
	if (r == 0)
		r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (r == 0) {
		n = pread(fd, seccomp_prog.insn, sizeof seccomp_prog.insn, 0);
		if (n < 0)
			r = -errno;
		/* Anything beyond the buffer, or a torn instruction: refuse. */
		else if (n == 0 || n % sizeof seccomp_prog.insn[0] ||
			 pread(fd, &extra, 1, n) != 0)
			r = -E2BIG;
	}
	if (fd >= 0)
		close(fd);
	seccomp_prog.len = r == 0 ? (unsigned short)(n / sizeof seccomp_prog.insn[0]) : 0;
	return r;
}

bool seccomp_tenant_prepared(void)
{
	return seccomp_prog.len > 0;
}

int seccomp_tenant_install(void)
{
	scmp_filter_ctx ctx;
	int r;

	if (seccomp_prog.len) {
		struct sock_fprog prog = { .len = seccomp_prog.len, .filter = seccomp_prog.insn };

		return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0 ? -errno : 0;
	}
	r = seccomp_build(&ctx);
	if (r == 0)
		r = seccomp_load(ctx);
	if (ctx)
		seccomp_release(ctx);
	return r;
}
