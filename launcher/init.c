/* init: pid 1 inside a tenant.
 *
 * As root, in its fresh namespaces: hostname, loopback, the filesystem,
 * then it keeps only the capabilities it still needs (changing uid/gid,
 * signalling and chowning for its children) and serves: it reaps every
 * zombie, and on SIGTERM or a stop message from the launcher it ends all
 * its children (SIGTERM, a grace period, SIGKILL) and exits. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "apps.h"
#include "fdpass.h"
#include "launcher.h"
#include "log.h"
#include "mounts.h"
#include "reload.h"
#include "tenantproc.h"
#include "tun.h"

#define INIT_STOP_GRACE 5.0      /* seconds between SIGTERM and SIGKILL */

struct init_state {
	struct ev_loop *loop;
	const struct init_args *a;
	int sync_fd;
	bool stopping;
	ev_io signal_w, sync_w;
	ev_timer grace_w;
};

static __attribute__((noreturn, format(printf, 2, 3))) void init_fail(int sync_fd, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	msg[0] = SYNC_ERROR;
	va_start(ap, fmt);
	vsnprintf(msg + 1, sizeof msg - 1, fmt, ap);
	va_end(ap);
	if (send(sync_fd, msg, strlen(msg), MSG_NOSIGNAL) < 0)
		log_error("%s", msg + 1);
	_exit(1);
}

/* Close every fd above 2 but the kept ones, with close_range over the gaps
 * between them: a loop of close() up to the fd limit costs ~80 ms here. */
static void init_close_others(const struct init_args *a)
{
	int keep[3] = { a->sync_fd, a->agent_fd, a->log_fd };
	unsigned from = 3;

	for (int i = 0; i < 3; i++)              /* sort the three */
		for (int j = i + 1; j < 3; j++)
			if (keep[j] < keep[i]) {
				int x = keep[i];
				keep[i] = keep[j];
				keep[j] = x;
			}
	for (int i = 0; i < 3; i++) {
		if (keep[i] < (int)from)
			continue;
		if ((unsigned)keep[i] > from)
			close_range(from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	close_range(from, ~0U, 0);
}

/* Forget everything inherited from the launcher but our own fds. */
static void init_reset_process(const struct init_args *a)
{
	sigset_t all;
	int null;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		close(null);
	}
	/* stdout and stderr stay: they are the launcher's log (journald). */
	init_close_others(a);
	log_set_context(a->cfg->name);
}

static void init_setup(const struct init_args *a, struct timespec *ts)
{
	const struct config_host *h = a->host;
	const struct config_tenant *c = a->cfg;
	char distro[4096], home[4096], run[4096], logs[4096], scratch[4096], etc[4096], err[256];
	struct mounts_plan p = {
		.distro_root = distro, .home_src = home, .tenant = c->name, .run_src = run,
		.opt_src = h->opt_dir, .logs_src = logs, .scratch = scratch, .etc_src = etc,
		.tmp_size = c->limits.tmp, .uid = a->uid, .gid = a->gid,
	};

	snprintf(distro, sizeof distro, "%s/%s", h->distros_dir, c->distro);
	snprintf(home, sizeof home, "%s/%s", h->homes_dir, c->name);
	snprintf(run, sizeof run, "%s/tenants/%s/run", h->state_dir, c->name);
	snprintf(logs, sizeof logs, "%s/%s", h->log_dir, c->name);
	snprintf(scratch, sizeof scratch, "%s/tenants/%s/root", h->state_dir, c->name);
	snprintf(etc, sizeof etc, "%s/tenants/%s/etc", h->state_dir, c->name);
	if (mounts_set_hostname(c->hostname, err, sizeof err) < 0 ||
	    mounts_loopback_up(err, sizeof err) < 0)
		init_fail(a->sync_fd, "%s", err);
	clock_gettime(CLOCK_MONOTONIC, ts);
	if (mounts_build(&p, err, sizeof err) < 0)
		init_fail(a->sync_fd, "%s", err);
}

/* Keep what pid 1 needs to run children as the tenant and end them: the
 * bounding set loses everything else, so nothing below can regain it. */
static void init_drop_caps(int sync_fd)
{
	static const cap_value_t keep[] = { CAP_SETUID, CAP_SETGID, CAP_KILL, CAP_CHOWN,
					    CAP_SETPCAP, CAP_FOWNER };
	cap_t caps;

	for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
		bool kept = false;
		for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
			kept |= keep[i] == c;
		if (!kept && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			init_fail(sync_fd, "PR_CAPBSET_DROP %d: %s", (int)c, strerror(errno));
	}
	caps = cap_init();
	if (!caps || cap_set_flag(caps, CAP_EFFECTIVE, 6, keep, CAP_SET) < 0 ||
	    cap_set_flag(caps, CAP_PERMITTED, 6, keep, CAP_SET) < 0 || cap_set_proc(caps) < 0)
		init_fail(sync_fd, "cap_set_proc: %s", strerror(errno));
	cap_free(caps);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		init_fail(sync_fd, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
}

static void init_exit_if_done(struct init_state *s)
{
	if (s->stopping && waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
		_exit(0);
}

static void init_reap(struct init_state *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		tenantproc_exited(pid, status);
	init_exit_if_done(s);
}

static void init_grace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	kill(-1, SIGKILL);
	ev_timer_stop(loop, w);
}

static void init_stop(struct init_state *s)
{
	if (s->stopping)
		return;
	s->stopping = true;
	agent_stop();
	apps_stop();
	tenantproc_stop_all();
	/* kill(-1) from pid 1 reaches every process of the namespace but us. */
	kill(-1, SIGTERM);
	kill(-1, SIGCONT);
	ev_timer_init(&s->grace_w, init_grace_cb, INIT_STOP_GRACE, 0);
	ev_timer_start(s->loop, &s->grace_w);
	init_exit_if_done(s);
}

static void init_signal_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct init_state *s = w->data;
	struct signalfd_siginfo si;

	while (read(w->fd, &si, sizeof si) == sizeof si) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			init_stop(s);
	}
	init_reap(s);
}

static void init_sync_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct init_state *s = w->data;
	static char msg[SYNC_MSG_MAX];   /* a new tenant file comes in large parts */
	ssize_t n = recv(w->fd, msg, sizeof msg, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The launcher went away. The tenant goes on; a new launcher
		 * adopts it and talks to it with signals. */
		ev_io_stop(loop, w);
		close(w->fd);
		s->sync_fd = -1;
		return;
	}
	if (msg[0] == SYNC_STOP)
		init_stop(s);
	else if (!s->stopping && (msg[0] == SYNC_CONFIG_PART || msg[0] == SYNC_CONFIG))
		apps_sync_message(w->fd, msg, (size_t)n);
}

static void init_serve(struct init_state *s)
{
	sigset_t set;
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGPIPE);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		init_fail(s->sync_fd, "signalfd: %s", strerror(errno));
	ev_io_init(&s->signal_w, init_signal_cb, sfd, EV_READ);
	s->signal_w.data = s;
	ev_io_start(s->loop, &s->signal_w);
	ev_io_init(&s->sync_w, init_sync_cb, s->sync_fd, EV_READ);
	s->sync_w.data = s;
	ev_io_start(s->loop, &s->sync_w);
}

/* Give back what the start left resident and no longer needs: the free
 * chunks of the heap inherited from the launcher (malloc_trim), and the
 * stack pages below this frame that the setup dirtied (path buffers of
 * init_setup and the mounts: tens of KiB). The init lives as long as its
 * tenant, idle most of the time: its PSS counts once per tenant. */
static __attribute__((noinline)) void init_release_memory(void)
{
	char line[256], here;
	uintptr_t lo = 0, hi = 0, below = ((uintptr_t)&here - 4096) & ~(uintptr_t)4095;
	FILE *f;

	malloc_trim(0);
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		if (strstr(line, "[stack]") && sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2)
			break;
	fclose(f);
	if (lo && below > lo && below < hi && madvise((void *)lo, below - lo, MADV_DONTNEED) < 0)
		log_debug("madvise of the stack: %s", strerror(errno));
}

/* The uWSGI starts, their banners in the logs and the launcher's messages
 * dirty stack and heap pages again after the first release. */
#define INIT_RELEASE_DELAY 1.0

static struct ev_loop *init_loop;
static ev_timer init_release_w;

static void init_release_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	init_release_memory();
}

void init_release_memory_soon(void)
{
	if (!init_loop || ev_is_active(&init_release_w))
		return;
	ev_timer_init(&init_release_w, init_release_cb, INIT_RELEASE_DELAY, 0);
	ev_timer_start(init_loop, &init_release_w);
}

void init_main(const struct init_args *a)
{
	static struct init_state s;
	static struct init_args args;    /* ours to change: a live reload swaps cfg */
	char ready = SYNC_READY;
	/* debug log: where a start goes (reset, eth0, hostname and lo,
	 * mounts, capabilities, loop + agent + apps) */
	struct timespec ts[7], cpu;

	clock_gettime(CLOCK_MONOTONIC, &ts[0]);
	args = *a;
	a = &args;
	init_reset_process(a);
	clock_gettime(CLOCK_MONOTONIC, &ts[1]);
	/* fief-router: eth0 before init_setup replaces /dev. Its fd goes to
	 * the launcher (SYNC_TUN); our copy stays open on purpose, so the
	 * interface outlives a restart of the launcher or the router. */
	char tun_err[256], tun_msg[16 * CONFIG_ROUTER_MAX_THREADS];
	int tun_fds[CONFIG_ROUTER_MAX_THREADS];
	int n_tun = tun_tenant_setup(a->host, a->cfg, tun_fds, tun_err, sizeof tun_err);
	/* One fd per queue. The message names our own fd numbers too: a later
	 * launcher takes its copies from us with pidfd_getfd (adopt.c). */
	size_t tun_len = (size_t)snprintf(tun_msg, sizeof tun_msg, "%c", SYNC_TUN);
	for (int i = 0; i < n_tun; i++)
		tun_len += (size_t)snprintf(tun_msg + tun_len, sizeof tun_msg - tun_len, "%s%d", i ? "," : "", tun_fds[i]);
	if (n_tun == -1 || (n_tun > 0 && fdpass_send(a->sync_fd, tun_msg, tun_len, tun_fds, (size_t)n_tun) < 0))
		init_fail(a->sync_fd, "%s", n_tun == -1 ? tun_err : "cannot hand eth0 to the launcher");
	clock_gettime(CLOCK_MONOTONIC, &ts[2]);
	init_setup(a, &ts[3]);
	clock_gettime(CLOCK_MONOTONIC, &ts[4]);
	init_drop_caps(a->sync_fd);
	clock_gettime(CLOCK_MONOTONIC, &ts[5]);
	s.a = a;
	s.sync_fd = a->sync_fd;
	/* A loop of our own: the launcher's default loop is not ours to use. */
	s.loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOSIGMASK);
	if (!s.loop)
		init_fail(a->sync_fd, "cannot create the event loop");
	init_serve(&s);
	init_loop = s.loop;
	tenantproc_init(s.loop, a);
	if (agent_start(s.loop, a) < 0)
		init_fail(a->sync_fd, "cannot start the session agent");
	apps_start(s.loop, &args);
	if (send(a->sync_fd, &ready, 1, MSG_NOSIGNAL) != 1)
		log_warn_r(errno, "cannot report ready");
	apps_settle_begin(a->sync_fd);
	init_release_memory();
	clock_gettime(CLOCK_MONOTONIC, &ts[6]);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	log_debug("init ready in %.2f ms: reset %.2f, eth0 %.2f, hostname+lo %.2f, mounts %.2f, "
		  "caps %.2f, loop+agent+apps %.2f; CPU %.2f ms", ts_ms(&ts[0], &ts[6]),
		  ts_ms(&ts[0], &ts[1]), ts_ms(&ts[1], &ts[2]), ts_ms(&ts[2], &ts[3]),
		  ts_ms(&ts[3], &ts[4]), ts_ms(&ts[4], &ts[5]), ts_ms(&ts[5], &ts[6]),
		  (double)cpu.tv_sec * 1e3 + (double)cpu.tv_nsec / 1e6);
	ev_run(s.loop, 0);
	_exit(0);
}
