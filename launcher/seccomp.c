/* seccomp: the system call filter of every tenant process.
 *
 * Capabilities and namespaces already refuse most of what is listed here;
 * the filter is the second wall, and the only one for what the kernel
 * lets any user do: user namespaces (a root of one's own, and with it a
 * much larger kernel surface), the kernel keyring (not namespaced), BPF,
 * perf events, userfaultfd, and faking terminal input with TIOCSTI. */
#include "seccomp.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <sys/ioctl.h>

/* Refused outright with EPERM. */
static const char *const seccomp_denied[] = {
	"mount", "umount2", "pivot_root", "chroot", "setns",
	"open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"keyctl", "add_key", "request_key",
	"bpf", "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module", "open_by_handle_at",
	"swapon", "swapoff", "reboot", "acct", "quotactl", "iopl", "ioperm",
	"lookup_dcookie", "syslog", "vhangup", "nfsservctl", "uselib",
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

int seccomp_tenant_install(void)
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
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}
