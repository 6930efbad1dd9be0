/* tenantproc: processes that the tenant init runs as the tenant. */
#include "tenantproc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "launcher.h"
#include "log.h"
#include "seccomp.h"

#define TP_MAX_WATCHED 4096

struct tp_watch {
	pid_t pid;
	tenantproc_exit_fn fn;
	void *data;
};

static struct {
	const struct init_args *a;
	char home[300];
	struct tp_watch w[TP_MAX_WATCHED];
	size_t n;
} tp;

void tenantproc_init(struct ev_loop *loop, const struct init_args *a)
{
	tp.a = a;
	snprintf(tp.home, sizeof tp.home, "/home/%s", a->cfg->name);
}

const char *tenantproc_home(void)
{
	return tp.home;
}

const char *tenantproc_shell(void)
{
	return tp.a->cfg->ssh.shell;
}

/* Runs in the child, still root: become the tenant, for good. */
static int tp_drop(void)
{
	gid_t gid = tp.a->gid;
	uid_t uid = tp.a->uid;

	for (int c = 0; c <= 63; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return -1;
	/* Check the drop by trying to undo it. */
	if (setuid(0) == 0 || setgid(0) == 0)
		return -1;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static void tp_child_fds(const struct tp_spec *s)
{
	int null = open("/dev/null", O_RDWR);
	int in = s->fd_in >= 0 ? s->fd_in : null, out = s->fd_out >= 0 ? s->fd_out : null,
	    err = s->fd_err >= 0 ? s->fd_err : null;

	/* Move the sources above 2 first, so no dup2 clobbers another. */
	in = fcntl(in, F_DUPFD, 10);
	out = fcntl(out, F_DUPFD, 10);
	err = fcntl(err, F_DUPFD, 10);
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	closefrom(3);
}

/* The child, still root: from the init's process to the tenant's
 * program. It may share the init's memory (tenantproc_spawn), so it only
 * makes system calls, allocates nothing and returns nowhere; the signals
 * are all blocked when it starts, and the init's handlers are gone before
 * it unblocks them. */
static __attribute__((noreturn)) void tp_child(const struct tp_spec *s, char *const *envp)
{
	sigset_t none;
	int fd;

	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	if (s->ctty >= 0 && ioctl(s->ctty, TIOCSCTTY, 0) < 0)
		_exit(126);
	tp_child_fds(s);
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "0", 1) < 0) {
			/* stays at the init's value: harmless */
		}
		close(fd);
	}
	if (tp_drop() < 0) {
		dprintf(2, "fief: cannot drop privileges: %s\n", strerror(errno));
		_exit(126);
	}
	if (seccomp_tenant_install() < 0) {
		dprintf(2, "fief: cannot install the system call filter\n");
		_exit(126);
	}
	/* Only now, as the tenant, touch a path the tenant controls. */
	if (chdir(s->cwd ? s->cwd : tp.home) < 0 && chdir("/") < 0)
		_exit(126);
	execve(s->path, s->argv, envp);
	dprintf(2, "fief: cannot run %s: %s\n", s->path, strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

struct tp_start {
	const struct tp_spec *spec;
	char *const *envp;
};

static int tp_child_entry(void *arg)
{
	const struct tp_start *st = arg;

	tp_child(st->spec, st->envp);
}

/* Whether a child may share the init's memory. Between its switch to the
 * tenant's uid and its execve, such a child is a process of the tenant
 * whose memory is the init's. The kernel makes its memory non-dumpable at
 * the switch when fs.suid_dumpable is 0, which keeps the tenant's ptrace,
 * /proc/PID/mem and process_vm_writev out; with 1 it would not. So: only
 * with the sysctl at 0, read at every spawn, since an operator can change
 * it at any time. (A tenant can still SIGSTOP that child and so hold its
 * own init until it continues it or the launcher kills the tenant; that
 * touches no other tenant.) */
#ifdef __SANITIZE_ADDRESS__
/* AddressSanitizer keeps the bookkeeping of each stack frame in memory the
 * child would share, and the child's frames would corrupt it (its CHECK on
 * kCurrentStackFrameMagic fails in the init afterwards). */
static bool tp_may_share_memory(void)
{
	return false;
}
#else
static bool tp_may_share_memory(void)
{
	char c = 0;
	int fd;

	if (!seccomp_tenant_prepared())
		return false;    /* the child would build the filter: it allocates */
	fd = open("/proc/sys/fs/suid_dumpable", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (read(fd, &c, 1) != 1)
		c = 0;
	close(fd);
	return c == '0';
}
#endif

/* When tp_may_share_memory(), the child shares the init's memory and the
 * init waits until it has called execve (CLONE_VM | CLONE_VFORK, as
 * posix_spawn does): no page tables to copy, and no copy-on-write faults
 * on either side afterwards, which on a virtual machine cost about 1.5 ms
 * of CPU per process. Otherwise a plain fork. */
static pid_t tp_clone(const struct tp_spec *spec, char *const *envp)
{
	/* The child's stack: the init's own, which it does not use while it
	 * waits. dprintf needs about 10 KiB of it. */
	char stack[64 * 1024] __attribute__((aligned(16)));
	struct tp_start st = { spec, envp };
	sigset_t all, old;
	pid_t pid;
	int err;

	if (!tp_may_share_memory()) {
		pid = fork();
		if (pid == 0)
			tp_child(spec, envp);
		return pid;
	}
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = clone(tp_child_entry, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &st);
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return pid;
}

pid_t tenantproc_spawn(const struct tp_spec *spec)
{
	char *const *envp = spec->envp;
	char **own = NULL;
	pid_t pid;

	if (spec->on_exit && tp.n == TP_MAX_WATCHED) {
		errno = EAGAIN;
		return -1;
	}
	if (!envp && !(envp = own = tenantproc_env(NULL, 0)))
		return -1;
	pid = tp_clone(spec, envp);
	if (own) {
		int err = errno;

		tenantproc_env_free(own);
		errno = err;
	}
	if (pid < 0)
		return -1;
	if (spec->on_exit)
		tp.w[tp.n++] = (struct tp_watch){ pid, spec->on_exit, spec->data };
	return pid;
}

void tenantproc_exited(pid_t pid, int status)
{
	for (size_t i = 0; i < tp.n; i++)
		if (tp.w[i].pid == pid) {
			struct tp_watch w = tp.w[i];
			tp.w[i] = tp.w[--tp.n];
			w.fn(pid, status, w.data);
			return;
		}
}

void tenantproc_forget(pid_t pid)
{
	for (size_t i = 0; i < tp.n; i++)
		if (tp.w[i].pid == pid) {
			tp.w[i] = tp.w[--tp.n];
			return;
		}
}

void tenantproc_stop_all(void)
{
	tp.n = 0;
}

static void env_set(char **env, size_t *n, const char *kv)
{
	size_t klen = strcspn(kv, "=");

	for (size_t i = 0; i < *n; i++)
		if (!strncmp(env[i], kv, klen) && env[i][klen] == '=') {
			free(env[i]);
			env[i] = strdup(kv);
			return;
		}
	env[(*n)++] = strdup(kv);
}

char **tenantproc_env(char *const *extra, size_t n_extra)
{
	const struct config_tenant *c = tp.a->cfg;
	size_t cap = 8 + c->env.n + n_extra, n = 0;
	char **env = calloc(cap + 1, sizeof *env), buf[4352];

	if (!env)
		return NULL;
	snprintf(buf, sizeof buf, "HOME=%s", tp.home);
	env_set(env, &n, buf);
	snprintf(buf, sizeof buf, "USER=%s", c->name);
	env_set(env, &n, buf);
	snprintf(buf, sizeof buf, "LOGNAME=%s", c->name);
	env_set(env, &n, buf);
	snprintf(buf, sizeof buf, "SHELL=%s", c->ssh.shell);
	env_set(env, &n, buf);
	env_set(env, &n, "PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin");
	env_set(env, &n, "LANG=C.UTF-8");
	for (size_t i = 0; i < c->env.n; i++) {
		snprintf(buf, sizeof buf, "%s=%s", c->env.v[i].name, c->env.v[i].value);
		env_set(env, &n, buf);
	}
	for (size_t i = 0; i < n_extra; i++)
		env_set(env, &n, extra[i]);
	for (size_t i = 0; i < n; i++)
		if (!env[i]) {
			tenantproc_env_free(env);
			return NULL;
		}
	return env;
}

void tenantproc_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}
