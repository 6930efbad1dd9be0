/* privdrop: leaving root behind, and proving it. */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

int privdrop_lookup(const char *name, struct privdrop_user *u)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		log_error("gateway.user '%s' does not exist (create it with useradd --system)", name);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		log_error("gateway.user '%s' is root or in group root: refusing to run as it", name);
		return -1;
	}
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	snprintf(u->name, sizeof u->name, "%s", name);
	return 0;
}

/* Empty the bounding set and the ambient set: even a later bug that
 * regained uid 0 would come back without capabilities. */
static int privdrop_bounding(void)
{
	for (int c = 0; c <= CAP_LAST_CAP; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) {
			log_error_r(errno, "PR_CAPBSET_DROP %d", c);
			return -1;
		}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	return 0;
}

static bool privdrop_caps_empty(void)
{
	cap_t now = cap_get_proc(), none = cap_init();
	bool empty = now && none && cap_compare(now, none) == 0;

	cap_free(now);
	cap_free(none);
	return empty;
}

/* Try to get root back every way there is; any success is fatal. */
static int privdrop_verify(const struct privdrop_user *u)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) < 0 || r != u->uid || e != u->uid || s != u->uid ||
	    getresgid(&rg, &eg, &sg) < 0 || rg != u->gid || eg != u->gid || sg != u->gid) {
		log_error("uid/gid are not all %u/%u after the drop", (unsigned)u->uid, (unsigned)u->gid);
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || setresuid(0, 0, 0) == 0 || setgid(0) == 0 ||
	    setegid(0) == 0 || setgroups(0, NULL) == 0) {
		log_error("regained root after dropping privileges");
		return -1;
	}
	if (getgroups(0, NULL) != 0) {
		log_error("supplementary groups left after the drop");
		return -1;
	}
	if (!privdrop_caps_empty() || prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0) {
		log_error("capabilities left after the drop");
		return -1;
	}
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		log_error("no_new_privs is not set");
		return -1;
	}
	return 0;
}

int privdrop_drop(const struct privdrop_user *u)
{
	if (privdrop_bounding() < 0)
		return -1;
	if (setgroups(0, NULL) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0) {
		log_error_r(errno, "cannot become %s", u->name);
		return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_error_r(errno, "PR_SET_NO_NEW_PRIVS");
		return -1;
	}
	return privdrop_verify(u);
}

/* Refused with EPERM: the worker never runs a program, never starts a
 * process and never needs these kernel interfaces, so code that got
 * control of a worker through a parser bug cannot use them either. */
static const char *const privdrop_denied[] = {
	"execve", "execveat", "fork", "vfork", "clone", "ptrace", "process_vm_readv",
	"process_vm_writev", "kcmp", "mount", "umount2", "pivot_root", "chroot", "setns",
	"unshare", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
	"mount_setattr", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
	"userfaultfd", "kexec_load", "kexec_file_load", "init_module", "finit_module",
	"delete_module", "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff",
	"reboot", "acct", "quotactl", "iopl", "ioperm", "syslog", "personality", "setuid",
	"setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid",
	"setfsgid", "capset", "io_uring_setup", "memfd_create",
};

/* LeakSanitizer stops the process with a cloned thread and ptrace before
 * it reports: a sanitizer build keeps those two, and only those. */
static bool privdrop_sanitizer_needs(const char *name)
{
#if defined(__SANITIZE_ADDRESS__)
	return !strcmp(name, "clone") || !strcmp(name, "ptrace");
#else
	(void)name;
	return false;
#endif
}

static int privdrop_rule(scmp_filter_ctx ctx, const char *name, uint32_t action)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (privdrop_sanitizer_needs(name))
		return 0;

	if (nr == __NR_SCMP_ERROR)
		return 0;                /* not on this architecture */
	return seccomp_rule_add(ctx, action, nr, 0);
}

int privdrop_sandbox(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = ctx ? 0 : -ENOMEM;

	for (size_t i = 0; r == 0 && i < sizeof privdrop_denied / sizeof privdrop_denied[0]; i++)
		r = privdrop_rule(ctx, privdrop_denied[i], SCMP_ACT_ERRNO(EPERM));
	/* clone3 passes its flags in memory the filter cannot read: ENOSYS. */
	if (r == 0)
		r = privdrop_rule(ctx, "clone3", SCMP_ACT_ERRNO(ENOSYS));
	/* The worker opens Unix sockets only (agents, syslog): the network
	 * sockets it uses are the ones it accepted. No connecting out. */
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_NE, AF_UNIX));
	if (r == 0)
		r = seccomp_load(ctx);
	if (ctx)
		seccomp_release(ctx);
	if (r < 0) {
		log_error_r(-r, "cannot install the seccomp filter");
		return -1;
	}
	return 0;
}
