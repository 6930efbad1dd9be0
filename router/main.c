/* fief-router: tenant networking. Loads the host file, and as root: takes
 * the router lock, creates the host tun, sets up NAT and its two sockets,
 * leaves a tiny privileged helper behind to undo NAT when it exits, drops
 * to an unprivileged user without capabilities, and only then moves its
 * first packet. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "fsutil.h"
#include "log.h"
#include "nat.h"
#include "router.h"
#include "../launcher/tun.h"

#define ROUTER_LOCK "router.lock"
#define ROUTER_LOCK_WAIT 15.0        /* seconds: a previous router's helper is cleaning up */
#define ROUTER_USER "nobody"
#define ROUTER_FALLBACK_ID 65534

static struct router R;
static ev_signal sig_term, sig_int;

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("signal %d: stopping", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/* One router per state_dir. A previous router's cleanup helper holds the
 * lock until it has removed what that router added, so a quick restart
 * (or kill -9 and restart) cannot race with that removal. */
static int router_lock(void)
{
	char path[4096];
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	int fd;

	if (router_path(&R, path, sizeof path, ROUTER_LOCK) < 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_error_r(errno, "%s", path);
		return -1;
	}
	for (int i = 0; i < (int)(ROUTER_LOCK_WAIT * 20); i++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK)
			break;
		nanosleep(&pause, NULL);
	}
	log_error("%s: another fief-router holds it", path);
	close(fd);
	return -1;
}

/* The helper: root, in the router's namespaces, asleep on a pipe. When
 * the router is gone, however it went (exit, crash, kill -9), the pipe
 * reads EOF and the helper removes NAT and the sockets, then exits,
 * releasing the lock it shares with the router. Termination signals are
 * ignored so that a service manager killing both still gets a cleanup. */
static __attribute__((noreturn)) void helper_main(int pipe_rd, int lock_fd, const struct nat_state *nat)
{
	char path[4096], c;

	prctl(PR_SET_NAME, "fief-router-cl", 0, 0, 0);
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	for (int fd = 3; fd < 1024; fd++)
		if (fd != pipe_rd && fd != lock_fd)
			close(fd);
	while (read(pipe_rd, &c, 1) < 0 && errno == EINTR)
		;
	nat_cleanup(nat);
	if (router_path(&R, path, sizeof path, ROUTER_LINK_SOCK) == 0)
		unlink(path);
	if (router_path(&R, path, sizeof path, ROUTER_CONTROL_SOCK) == 0)
		unlink(path);
	log_info("cleaned up after the router");
	_exit(0);
}

static int helper_start(int lock_fd, const struct nat_state *nat)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[1]);
		helper_main(p[0], lock_fd, nat);
	}
	close(p[0]);
	return p[1];                 /* kept open for the router's whole life */
}

#ifndef ROUTER_SCHED
#define ROUTER_SCHED 0               /* 0: as is; 1: SCHED_BATCH; 2: a longer EEVDF slice */
#endif
#ifndef ROUTER_SLICE_NS
#define ROUTER_SLICE_NS 4000000ull
#endif

/* Scheduling experiments (bench/router-vs-veth --variant): see
 * docs/benchmarks.md for what they measured. */
struct router_sched_attr {          /* the kernel's struct sched_attr (linux/sched/types.h clashes with sched.h) */
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
	uint32_t sched_util_min, sched_util_max;
};

static void router_sched(void)
{
	struct router_sched_attr a = { .size = sizeof a, .sched_policy = SCHED_OTHER };

	if (ROUTER_SCHED == 0)
		return;
	if (ROUTER_SCHED == 1)
		a.sched_policy = SCHED_BATCH;
	else
		a.sched_runtime = ROUTER_SLICE_NS;
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		log_warn_r(errno, "sched_setattr");
}

/* Everything the data path needs is open: become nobody, with no
 * capabilities in any set and no way back. */
static int drop_privileges(void)
{
	struct passwd *pw = getpwnam(ROUTER_USER);
	uid_t uid = pw ? pw->pw_uid : ROUTER_FALLBACK_ID;
	gid_t gid = pw ? pw->pw_gid : ROUTER_FALLBACK_ID;

	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return log_error_r(errno, "PR_CAPBSET_DROP"), -1;
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return log_error_r(errno, "cannot drop to uid %u", (unsigned)uid), -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return log_error_r(errno, "prctl"), -1;
	/* Check the drop by trying to undo it. */
	if (setresuid(0, 0, 0) == 0 || setresgid(0, 0, 0) == 0) {
		log_error("privileges came back after the drop");
		return -1;
	}
	log_debug("running as uid %u gid %u without capabilities", (unsigned)uid, (unsigned)gid);
	return 0;
}

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Root-only setup: host tun (one queue per forwarding thread), NAT,
 * sockets. Fills host_fds[0..R.nthreads). */
static int router_setup(struct nat_state *nat, int *host_fds)
{
	const struct config_host *h = R.host;
	char err[256];
	int fd;

	fd = tun_open_queues(h->router.device, R.nthreads, host_fds, err, sizeof err) < 0 ? -1 : host_fds[0];
	if (fd < 0 || (h->router.has_address6 && tun_prepare6(h->router.device, err, sizeof err) < 0) ||
	    tun_configure(h->router.device, h->router.address.addr, h->router.address.prefix,
			  0, TUN_MTU, err, sizeof err) < 0 ||
	    (h->router.has_address6 && tun_configure6(h->router.device, h->router.address6.addr,
						      h->router.address6.prefix, false, err, sizeof err) < 0)) {
		log_error("%s", err);
		if (fd >= 0)
			close_fds(host_fds, R.nthreads);
		return -1;
	}
	if (nat_setup(h, nat) < 0 || link_start(&R) < 0 || control_start(&R) < 0) {
		nat_cleanup(nat);
		close_fds(host_fds, R.nthreads);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct daemon_args args = { 0 };
	struct config_host *host;
	struct nat_state nat;
	char addr[24];
	int host_fds[ROUTER_MAX_QUEUES];
	int lock_fd, helper_fd, r;

	host = daemon_start(argc, argv, "fief-router", "The tenant router: tun networking, firewall and accounting.",
			    &args, &r);
	if (!host)
		return r;
	if (!host->router.enabled) {
		log_info("router.enabled is false in %s: nothing to do", args.host_path);
		config_host_free(host);
		return 0;
	}
	if (geteuid() != 0) {
		log_error("must start as root (it drops privileges after setup)");
		return DAEMON_EXIT_SYSCALL;
	}
	signal(SIGPIPE, SIG_IGN);
	R.host = host;
	R.nthreads = config_router_threads(host);
	R.loop = ev_default_loop(EVBACKEND_EPOLL);
	if (!R.loop)
		return DAEMON_EXIT_SYSCALL;
	if ((r = fs_mkdir_p(host->state_dir, 0755, 0, 0)) < 0) {
		log_error_r(r, "%s", host->state_dir);
		return DAEMON_EXIT_SYSCALL;
	}
	if ((lock_fd = router_lock()) < 0 || router_setup(&nat, host_fds) < 0)
		return DAEMON_EXIT_SYSCALL;
	helper_fd = helper_start(lock_fd, &nat);
	router_sched();
	if (helper_fd < 0 || drop_privileges() < 0 || (r = fwd_init(&R, host_fds)) < 0 ||
	    (r = fwd_start(&R)) < 0) {
		if (helper_fd < 0)
			nat_cleanup(&nat);
		return DAEMON_EXIT_SYSCALL;
	}
	ev_signal_init(&sig_term, on_signal, SIGTERM);
	ev_signal_init(&sig_int, on_signal, SIGINT);
	ev_signal_start(R.loop, &sig_term);
	ev_signal_start(R.loop, &sig_int);
	cidr_format(&host->router.address, addr, sizeof addr);
	log_info("started: %s %s, %d forwarding thread%s, waiting for tenants on %s/%s", host->router.device,
		 addr, R.nthreads, R.nthreads == 1 ? "" : "s", host->state_dir, ROUTER_LINK_SOCK);
	ev_run(R.loop, 0);
	fwd_shutdown(&R);            /* closes the host tun's queues */
	close(helper_fd);            /* the helper removes NAT and the sockets */
	config_host_free(host);
	return 0;
}
