/* fief-launcher: the Emperor. Loads the host file, sets up the cgroup
 * parent and the state directories, then runs tenants from tenants_dir. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cgroup.h"
#include "daemon.h"
#include "fsutil.h"
#include "launcher.h"
#include "log.h"
#include "nginxmap.h"
#include "metrics.h"
#include "routerlink.h"
#include "seccomp.h"
#include "zygote.h"

static struct launcher L;
static ev_signal sig_term, sig_int, sig_quit;

static void on_stop_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (L.shutting_down)
		return;
	log_info("signal %d: stopping every tenant", w->signum);
	tenant_shutdown_all(&L);
}

/* SIGQUIT: leave, but let the tenants run (a new launcher adopts them). */
static void on_quit_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("SIGQUIT: exiting, tenants keep running");
	L.detach = true;
	ev_break(loop, EVBREAK_ALL);
}

/* The group of the gateway's user may connect to agent sockets; without
 * that user (tests, a host without the gateway) only root may. */
static gid_t agent_group(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (pw)
		return pw->pw_gid;
	log_info("no user '%s': agent sockets are for root only", user);
	return 0;
}

static int prepare_state(void)
{
	const struct config_host *h = L.host;
	char path[4096];
	int r;

	if ((r = fs_mkdir_p(h->state_dir, 0755, 0, 0)) < 0 ||
	    (r = launcher_path(&L, path, sizeof path, "tenants")) < 0 ||
	    (r = fs_mkdir_p(path, 0755, 0, 0)) < 0 ||
	    (r = launcher_path(&L, path, sizeof path, "metrics")) < 0 ||
	    (r = fs_mkdir_p(path, 0755, 0, 0)) < 0 ||
	    (r = fs_mkdir_p(h->tenants_dir, 0755, (uid_t)-1, (gid_t)-1)) < 0 ||
	    (r = fs_mkdir_p(h->log_dir, 0755, (uid_t)-1, (gid_t)-1)) < 0 ||
	    (r = fs_mkdir_p(h->homes_dir, 0755, (uid_t)-1, (gid_t)-1)) < 0) {
		log_error_r(r, "cannot prepare the state directories");
		return -1;
	}
	return 0;
}

/* launcher.start_concurrency: auto is one per core. A start is nearly all
 * CPU (uWSGI loading Python): more at once only makes each dearer. On 2
 * cores, 200 app tenants took 18.4 and 21.3 s with 2 slots, 21.1 and
 * 34.7 s with 4 (CPU per tenant 161-179 ms against 181-198 ms). */
static unsigned start_slots(int64_t configured)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (configured > 0)
		return (unsigned)configured;
	return cores > 0 ? (unsigned)cores : 1;
}

int main(int argc, char **argv)
{
	struct daemon_args args = { 0 };
	int code;

	L.host = daemon_start(argc, argv, "fief-launcher",
			      "The launcher: runs each tenant of tenants_dir in its own namespaces and cgroup.",
			      &args, &code);
	if (!L.host)
		return code;
	L.host_path = args.host_path;
	if (geteuid() != 0) {
		log_error("must run as root");
		return DAEMON_EXIT_SYSCALL;
	}
	/* Children of tenants are reaped by their init; orphans of ours by us. */
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	L.loop = ev_default_loop(EVFLAG_AUTO);
	L.agent_gid = agent_group(L.host->gateway.user);
	L.start_max = start_slots(L.host->launcher.start_concurrency);
	/* Compiled once, here: every init inherits the program and each of
	 * its children only loads it. */
	int r = seccomp_tenant_prepare();
	if (r < 0)
		log_warn_r(-r, "cannot compile the system call filter ahead; each tenant process will");
	if (prepare_state() < 0 || cg_init(L.host->cgroup_parent) < 0)
		return DAEMON_EXIT_SYSCALL;
	/* Before any tenant is read: the zygote's heap stays this small. */
	r = zygote_start(&L);
	if (r < 0)
		log_warn_r(-r, "cannot start the zygote; the launcher forks the inits itself");
	ev_signal_init(&sig_term, on_stop_signal, SIGTERM);
	ev_signal_init(&sig_int, on_stop_signal, SIGINT);
	ev_signal_init(&sig_quit, on_quit_signal, SIGQUIT);
	ev_signal_start(L.loop, &sig_term);
	ev_signal_start(L.loop, &sig_int);
	ev_signal_start(L.loop, &sig_quit);
	signal(SIGPIPE, SIG_IGN);
	log_info("started: tenants from %s, cgroup v%d, %u starting at once", L.host->tenants_dir,
		 cg_version(), L.start_max);
	/* Tenants a previous launcher left running are taken back first, so
	 * the scan of tenants_dir finds them and leaves unchanged ones alone. */
	nginxmap_start(&L);              /* domains: written once the loop runs */
	routerlink_start(&L);            /* fief-router: hand over tenant tuns */
	adopt_all(&L);                   /* (adopted tenants' tuns go to the router too) */
	metrics_start(&L);
	/* launcher.sock appears last: whoever waits for it (fiefctl,
	 * scripts, tests) finds every other listener already up. */
	if (control_start(&L) < 0 || watch_start(&L) < 0)
		return DAEMON_EXIT_SYSCALL;
	ev_run(L.loop, 0);
	zygote_stop();
	log_info("%s", L.detach ? "detached from the running tenants" : "every tenant stopped");
	config_host_free(L.host);
	return 0;
}
