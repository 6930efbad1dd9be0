/* server: listening sockets, the master's workers, and accepting. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libssh/callbacks.h>

#include "auth.h"
#include "daemon.h"
#include "gateway.h"
#include "hostkeys.h"
#include "log.h"
#include "metrics.h"
#include "privdrop.h"
#include "ratelimit.h"
#include "session.h"

#define SRV_BACKLOG 1024
#define SRV_ACCEPT_BURST 64        /* connections taken per wake-up */
#define SRV_PAUSE 1.0              /* seconds without accepting after EMFILE */
#define SRV_STOP_GRACE 10.0        /* seconds for workers to end at shutdown */
#define SRV_NOFILE 65536           /* fds: 1000 idle connections, 200 sessions... */
#define SRV_KEX "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256," \
	"ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group16-sha512," \
	"diffie-hellman-group18-sha512,diffie-hellman-group14-sha256"
#define SRV_MACS "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha2-512"

struct gw_worker W;

/* One worker position: its process and its listening sockets. */
struct srv_slot {
	pid_t pid;                       /* 0: not running */
	ev_tstamp started;
	unsigned quick_deaths;           /* exits soon after start, in a row */
	ev_timer respawn;
	int *fds;                        /* one per endpoint */
};

static struct {
	const char *path;
	struct config_host *host;
	struct hostkeys keys;
	struct privdrop_user user;
	struct srv_slot *slots;
	size_t n_slots;
	pid_t *old;                      /* workers of earlier generations, retiring */
	size_t n_old;
	bool stopping;
	int exit_code;
	pid_t pid;
	ev_signal hup, term, intr;
	ev_child child;
	ev_timer kill_timer;
} M;

int gw_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)len);
		return ntohs(in->sin_port);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, (socklen_t)len);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)len);
		return ntohs(in6->sin6_port);
	}
	snprintf(buf, len, "?");
	return 0;
}

/* ---- listening sockets (master, root) ---- */

static socklen_t srv_sockaddr(const struct endpoint *ep, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (ep->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(ep->port);
		memcpy(&in->sin_addr, ep->addr, 4);
		return sizeof *in;
	}
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(ep->port);
	memcpy(&in6->sin6_addr, ep->addr, 16);
	return sizeof *in6;
}

/* SO_REUSEPORT lets any process of the same user join a port and take a
 * share of its connections, a second gateway included. Before we take a
 * port, make sure nobody has it: a plain bind fails if anyone listens. */
static int srv_probe(const struct endpoint *ep)
{
	struct sockaddr_storage ss;
	socklen_t len = srv_sockaddr(ep, &ss);
	int fd = socket(ep->family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, r = 0;

	if (fd < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ep->family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 && errno == EADDRINUSE) {
		log_error("%s is already in use (another gateway or sshd?)", ep->text);
		r = -1;
	}
	close(fd);
	return r;
}

static int srv_listen(const struct endpoint *ep)
{
	struct sockaddr_storage ss;
	socklen_t len = srv_sockaddr(ep, &ss);
	int fd, one = 1;

	fd = socket(ep->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* One socket per worker on the same port; [::] must not swallow the
	 * IPv4 endpoint, which has its own sockets. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    (ep->family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, SRV_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	log_error_r(errno, "cannot listen on %s", ep->text);
	if (fd >= 0)
		close(fd);
	return -1;
}

static void srv_close_fds(int *fds, size_t n)
{
	for (size_t i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

/* A copy of the socket the old configuration had for this slot and
 * endpoint: the same accept queue, so nothing waiting in it is lost, and
 * the old set stays whole should the reload fail half-way. */
static int srv_reuse(struct srv_slot *old, size_t n_old, const struct config_host *oldh,
		     size_t slot, const struct endpoint *ep)
{
	if (!old || slot >= n_old)
		return -1;
	for (size_t e = 0; e < oldh->gateway.listen.n; e++)
		if (old[slot].fds[e] >= 0 && !strcmp(oldh->gateway.listen.v[e].text, ep->text))
			return fcntl(old[slot].fds[e], F_DUPFD_CLOEXEC, 3);
	return -1;
}

static size_t srv_worker_count(const struct config_host *h)
{
	long n = h->gateway.workers ? h->gateway.workers : sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (size_t)n;
}

/* Slots for host h, with their sockets (reusing those of old). */
static struct srv_slot *srv_make_slots(const struct config_host *h, size_t *n,
				       struct srv_slot *old, size_t n_old, const struct config_host *oldh)
{
	size_t ns = srv_worker_count(h), ne = h->gateway.listen.n;
	struct srv_slot *slots = calloc(ns, sizeof *slots);

	if (!slots)
		return NULL;
	for (size_t e = 0; e < ne; e++) {
		int fd = srv_reuse(old, n_old, oldh, 0, &h->gateway.listen.v[e]);

		if (fd >= 0)
			close(fd);
		else if (srv_probe(&h->gateway.listen.v[e]) < 0)
			goto fail;
	}
	for (size_t i = 0; i < ns; i++) {
		slots[i].fds = malloc(ne * sizeof(int));
		if (!slots[i].fds)
			goto fail;
		for (size_t e = 0; e < ne; e++)
			slots[i].fds[e] = -1;
		for (size_t e = 0; e < ne; e++) {
			const struct endpoint *ep = &h->gateway.listen.v[e];
			int fd = srv_reuse(old, n_old, oldh, i, ep);

			if (fd < 0)
				fd = srv_listen(ep);
			if (fd < 0)
				goto fail;
			slots[i].fds[e] = fd;
		}
	}
	*n = ns;
	return slots;
fail:
	for (size_t i = 0; i < ns; i++)
		srv_close_fds(slots[i].fds, ne);
	free(slots);
	return NULL;
}

static void srv_free_slots(struct srv_slot *slots, size_t n, size_t n_eps)
{
	for (size_t i = 0; i < n; i++) {
		ev_timer_stop(EV_DEFAULT, &slots[i].respawn);
		srv_close_fds(slots[i].fds, n_eps);
	}
	free(slots);
}

/* ---- the worker ---- */

static ev_io *wk_listeners;
static size_t wk_n_listeners;
static ev_timer wk_pause;
static ev_signal wk_term, wk_intr, wk_usr2;

static void wk_pause_accepting(int err)
{
	log_warn_r(err, "accept; pausing for %.0f s", SRV_PAUSE);
	for (size_t i = 0; i < wk_n_listeners; i++)
		ev_io_stop(W.loop, &wk_listeners[i]);
	ev_timer_set(&wk_pause, SRV_PAUSE, 0);
	ev_timer_start(W.loop, &wk_pause);
}

static void wk_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	ev_timer_stop(loop, t);
	if (!W.retiring)
		for (size_t i = 0; i < wk_n_listeners; i++)
			ev_io_start(loop, &wk_listeners[i]);
}

/* Cheap checks first: a source over its failure budget, or no room for
 * one more unauthenticated connection, costs us one accept and a close. */
static void wk_admit(int fd, struct sockaddr_storage *peer)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof local;
	char addr[64];
	int one = 1;

	if (!ratelimit_allowed((struct sockaddr *)peer)) {
		gw_addr_text((struct sockaddr *)peer, addr, sizeof addr);
		log_debug("connection from %s refused: too many failed logins", addr);
		close(fd);
		return;
	}
	if (W.n_unauth >= (unsigned)W.host->gateway.max_unauthenticated && !session_make_room(peer)) {
		gw_addr_text((struct sockaddr *)peer, addr, sizeof addr);
		log_info("connection from %s refused: %u connections not yet authenticated", addr, W.n_unauth);
		close(fd);
		return;
	}
	/* Logins are a handful of small round trips: Nagle would add a
	 * delayed-ACK stall to several of them. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (getsockname(fd, (struct sockaddr *)&local, &len) < 0)
		memset(&local, 0, sizeof local);
	session_accept(fd, peer, &local);
}

static void wk_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	for (int i = 0; i < SRV_ACCEPT_BURST; i++) {
		struct sockaddr_storage peer;
		socklen_t len = sizeof peer;
		int fd = accept4(w->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			wk_admit(fd, &peer);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			wk_pause_accepting(errno);
		else if (errno != EAGAIN)
			log_warn_r(errno, "accept");
		return;
	}
}

/* SIGUSR2 from the master: a new generation took over the sockets. */
static void wk_retire_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	if (W.retiring)
		return;
	W.retiring = true;
	ev_timer_stop(loop, &wk_pause);
	for (size_t i = 0; i < wk_n_listeners; i++) {
		ev_io_stop(loop, &wk_listeners[i]);
		close(wk_listeners[i].fd);
	}
	log_info("worker %d retiring: %u session(s) left", W.index, W.n_sessions);
	if (W.n_sessions == 0)
		ev_break(loop, EVBREAK_ALL);
}

static void wk_stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	session_close_all();
	ev_break(loop, EVBREAK_ALL);
}

static void wk_libssh_log(int priority, const char *function, const char *buffer, void *userdata)
{
	log_debug("libssh: %s", buffer);
}

static int wk_make_bind(void)
{
	int no = 0;

	W.bind = ssh_bind_new();
	if (!W.bind)
		return -1;
	/* Nothing from /etc/ssh: the gateway's algorithms are the ones here. */
	if (ssh_bind_options_set(W.bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no) != SSH_OK ||
	    ssh_bind_options_set(W.bind, SSH_BIND_OPTIONS_KEY_EXCHANGE, SRV_KEX) != SSH_OK ||
	    ssh_bind_options_set(W.bind, SSH_BIND_OPTIONS_HMAC_C_S, SRV_MACS) != SSH_OK ||
	    ssh_bind_options_set(W.bind, SSH_BIND_OPTIONS_HMAC_S_C, SRV_MACS) != SSH_OK) {
		log_error("cannot configure libssh: %s", ssh_get_error(W.bind));
		return -1;
	}
	return hostkeys_give(&M.keys, W.bind);
}

/* Keep our own listening sockets; close every other fd the master had. */
static void wk_take_listeners(size_t slot)
{
	size_t ne = M.host->gateway.listen.n;

	for (size_t i = 0; i < M.n_slots; i++)
		for (size_t e = 0; e < ne; e++)
			if (i != slot && M.slots[i].fds[e] >= 0)
				close(M.slots[i].fds[e]);
	wk_listeners = calloc(ne, sizeof *wk_listeners);
	wk_n_listeners = wk_listeners ? ne : 0;
	for (size_t e = 0; e < wk_n_listeners; e++) {
		ev_io_init(&wk_listeners[e], wk_accept_cb, M.slots[slot].fds[e], EV_READ);
		ev_io_start(W.loop, &wk_listeners[e]);
	}
}

static void wk_signals(void)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	ev_signal_init(&wk_term, wk_stop_cb, SIGTERM);
	ev_signal_init(&wk_intr, wk_stop_cb, SIGINT);
	ev_signal_init(&wk_usr2, wk_retire_cb, SIGUSR2);
	ev_signal_start(W.loop, &wk_term);
	ev_signal_start(W.loop, &wk_intr);
	ev_signal_start(W.loop, &wk_usr2);
}

/* Everything that needs root happens before the drop; the first byte from
 * the network is read after the seccomp filter is in place. */
static __attribute__((noreturn)) void wk_main(size_t slot, int metrics_row)
{
	ev_loop_fork(EV_DEFAULT);
	gwm_worker_start(metrics_row);
	ev_signal_stop(EV_DEFAULT, &M.hup);
	ev_signal_stop(EV_DEFAULT, &M.term);
	ev_signal_stop(EV_DEFAULT, &M.intr);
	ev_child_stop(EV_DEFAULT, &M.child);
	ev_timer_stop(EV_DEFAULT, &M.kill_timer);
	for (size_t i = 0; i < M.n_slots; i++)
		ev_timer_stop(EV_DEFAULT, &M.slots[i].respawn);
	W.loop = EV_DEFAULT;
	W.host = M.host;
	W.index = (int)slot;
	W.scratch = malloc(GW_SCRATCH);
	ev_timer_init(&wk_pause, wk_pause_cb, SRV_PAUSE, 0);
	prctl(PR_SET_NAME, "fief-gw-worker", 0, 0, 0);
	if (!W.scratch || wk_make_bind() < 0)
		_exit(DAEMON_EXIT_SYSCALL);
	auth_worker_init();
	if (privdrop_drop(&M.user) < 0)
		_exit(DAEMON_EXIT_SYSCALL);
	/* The death signal is reset by the drop: set it after. */
	prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	if (getppid() != M.pid)
		_exit(0);
	if (privdrop_sandbox() < 0)
		_exit(DAEMON_EXIT_SYSCALL);
	wk_signals();
	wk_take_listeners(slot);
	log_info("worker %zu ready as %s (pid %d)", slot, M.user.name, (int)getpid());
	ev_run(W.loop, 0);
	session_close_all();
	exit(0);
}

/* ---- the master ---- */

static void srv_spawn(size_t slot)
{
	int row = gwm_proc_alloc();
	pid_t pid = fork();

	if (pid == 0)
		wk_main(slot, row);
	gwm_proc_started(row, pid > 0 ? pid : 0);
	if (pid < 0) {
		log_error_r(errno, "fork");
		ev_timer_set(&M.slots[slot].respawn, 1.0, 0);
		ev_timer_start(EV_DEFAULT, &M.slots[slot].respawn);
		return;
	}
	M.slots[slot].pid = pid;
	M.slots[slot].started = ev_now(EV_DEFAULT);
}

static void srv_respawn_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	size_t slot = (size_t)(uintptr_t)t->data;

	ev_timer_stop(loop, t);
	if (!M.stopping && slot < M.n_slots && &M.slots[slot].respawn == t && M.slots[slot].pid == 0)
		srv_spawn(slot);
}

static void srv_spawn_all(void)
{
	for (size_t i = 0; i < M.n_slots; i++) {
		ev_timer_init(&M.slots[i].respawn, srv_respawn_cb, 1.0, 0);
		M.slots[i].respawn.data = (void *)(uintptr_t)i;
		srv_spawn(i);
	}
}

static bool srv_forget_old(pid_t pid)
{
	for (size_t i = 0; i < M.n_old; i++)
		if (M.old[i] == pid) {
			M.old[i] = M.old[--M.n_old];
			return true;
		}
	return false;
}

static size_t srv_running(void)
{
	size_t n = M.n_old;

	for (size_t i = 0; i < M.n_slots; i++)
		n += M.slots[i].pid != 0;
	return n;
}

static void srv_stop_all(void);

/* A worker that cannot start (bad user, no privileges) will not start
 * next time either: stop with its code. Other deaths are restarted, with
 * a growing pause when they come right after the start. */
static void srv_worker_died(struct srv_slot *sl, size_t slot, int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
	double delay;

	sl->pid = 0;
	if (M.stopping)
		return;
	if (code == DAEMON_EXIT_SYSCALL || code == DAEMON_EXIT_CONFIG) {
		log_error("worker %zu could not start (exit %d); stopping", slot, code);
		M.exit_code = code;
		srv_stop_all();
		return;
	}
	if (WIFSIGNALED(status))
		log_error("worker %zu killed by signal %d; restarting it", slot, WTERMSIG(status));
	else
		log_warn("worker %zu exited with %d; restarting it", slot, code);
	sl->quick_deaths = ev_now(EV_DEFAULT) - sl->started < 5.0 ? sl->quick_deaths + 1 : 0;
	delay = sl->quick_deaths ? 0.1 * (1 << (sl->quick_deaths < 7 ? sl->quick_deaths : 7)) : 0.0;
	ev_timer_set(&sl->respawn, delay, 0);
	ev_timer_start(EV_DEFAULT, &sl->respawn);
}

static void srv_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	pid_t pid = w->rpid;

	gwm_proc_reaped(pid);
	if (!srv_forget_old(pid))
		for (size_t i = 0; i < M.n_slots; i++)
			if (M.slots[i].pid == pid) {
				srv_worker_died(&M.slots[i], i, w->rstatus);
				break;
			}
	if (M.stopping && srv_running() == 0)
		ev_break(loop, EVBREAK_ALL);
}

static void srv_kill_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	log_warn("workers still running after %.0f s; killing them", SRV_STOP_GRACE);
	for (size_t i = 0; i < M.n_slots; i++)
		if (M.slots[i].pid)
			kill(M.slots[i].pid, SIGKILL);
	for (size_t i = 0; i < M.n_old; i++)
		kill(M.old[i], SIGKILL);
}

static void srv_stop_all(void)
{
	M.stopping = true;
	for (size_t i = 0; i < M.n_slots; i++)
		if (M.slots[i].pid)
			kill(M.slots[i].pid, SIGTERM);
	for (size_t i = 0; i < M.n_old; i++)
		kill(M.old[i], SIGTERM);
	if (srv_running() == 0) {
		ev_break(EV_DEFAULT, EVBREAK_ALL);
		return;
	}
	ev_timer_set(&M.kill_timer, SRV_STOP_GRACE, 0);
	ev_timer_start(EV_DEFAULT, &M.kill_timer);
}

static void srv_stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("signal %d: stopping", w->signum);
	srv_stop_all();
}

/* Move the running workers to the retiring list and tell them. */
static void srv_retire_all(void)
{
	pid_t *old = realloc(M.old, (M.n_old + M.n_slots) * sizeof *old);

	if (old)
		M.old = old;
	for (size_t i = 0; i < M.n_slots; i++) {
		ev_timer_stop(EV_DEFAULT, &M.slots[i].respawn);
		if (!M.slots[i].pid)
			continue;
		kill(M.slots[i].pid, SIGUSR2);
		if (old)
			M.old[M.n_old++] = M.slots[i].pid;
	}
}

/* SIGHUP: everything new is ready before anything old is touched, so a
 * bad host file or a failed bind leaves the running generation alone. */
static void srv_reload_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct config_errors errs;
	struct config_host *h = config_host_load(M.path, &errs);
	struct hostkeys keys;
	struct privdrop_user user;
	struct srv_slot *slots;
	size_t n;

	if (M.stopping)
		return;
	log_info("SIGHUP: reloading %s", M.path);
	if (!h) {
		config_errors_print(&errs, stderr);
		log_error("reload failed: the host file is invalid; keeping the running configuration");
		return;
	}
	if (privdrop_lookup(h->gateway.user, &user) < 0 || hostkeys_load(h->gateway.host_keys_dir, &keys) < 0) {
		log_error("reload failed; keeping the running configuration");
		config_host_free(h);
		return;
	}
	slots = srv_make_slots(h, &n, M.slots, M.n_slots, M.host);
	if (!slots) {
		log_error("reload failed: cannot listen; keeping the running configuration");
		hostkeys_free(&keys);
		config_host_free(h);
		return;
	}
	srv_retire_all();
	srv_free_slots(M.slots, M.n_slots, M.host->gateway.listen.n);
	config_host_free(M.host);
	hostkeys_free(&M.keys);
	M.host = h;
	M.keys = keys;
	M.user = user;
	M.slots = slots;
	M.n_slots = n;
	gwm_serve(M.host->state_dir, M.user.gid);
	srv_spawn_all();
}

/* Each session needs a few fds (connection, agent, pipes): make the soft
 * limit as high as we may. */
static void srv_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_max < SRV_NOFILE) {
		struct rlimit want = { SRV_NOFILE, SRV_NOFILE };
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

static void srv_signals(void)
{
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&M.hup, srv_reload_cb, SIGHUP);
	ev_signal_init(&M.term, srv_stop_cb, SIGTERM);
	ev_signal_init(&M.intr, srv_stop_cb, SIGINT);
	ev_signal_start(EV_DEFAULT, &M.hup);
	ev_signal_start(EV_DEFAULT, &M.term);
	ev_signal_start(EV_DEFAULT, &M.intr);
	ev_child_init(&M.child, srv_child_cb, 0, 0);
	ev_child_start(EV_DEFAULT, &M.child);
	ev_timer_init(&M.kill_timer, srv_kill_cb, SRV_STOP_GRACE, 0);
}

static void srv_libssh_logging(void)
{
	if (getenv("FIEF_LOG_LEVEL") && !strcmp(getenv("FIEF_LOG_LEVEL"), "debug")) {
		ssh_set_log_callback(wk_libssh_log);
		ssh_set_log_level(SSH_LOG_WARN);
	}
}

int server_run(const char *host_path, struct config_host *host)
{
	M.path = host_path;
	M.host = host;
	M.pid = getpid();
	if (geteuid() != 0) {
		log_error("fief-gateway must start as root (it binds, reads host keys, then drops to %s)",
			  host->gateway.user);
		return DAEMON_EXIT_SYSCALL;
	}
	srv_raise_nofile();
	if (ssh_init() < 0 || ratelimit_init() < 0) {
		log_error("cannot initialise libssh or the rate limiter");
		return DAEMON_EXIT_SYSCALL;
	}
	srv_libssh_logging();
	if (privdrop_lookup(host->gateway.user, &M.user) < 0)
		return DAEMON_EXIT_CONFIG;
	if (hostkeys_load(host->gateway.host_keys_dir, &M.keys) < 0)
		return DAEMON_EXIT_SYSCALL;
	M.slots = srv_make_slots(host, &M.n_slots, NULL, 0, NULL);
	if (!M.slots)
		return DAEMON_EXIT_SYSCALL;
	/* Counters are not worth refusing logins over: without them, none. */
	if (gwm_init() < 0 || gwm_serve(host->state_dir, M.user.gid) < 0)
		log_warn("no gateway metrics");
	srv_signals();
	srv_spawn_all();
	log_info("listening with %zu worker(s) on %zu endpoint(s)", M.n_slots, host->gateway.listen.n);
	ev_run(EV_DEFAULT, 0);
	gwm_serve_stop();
	srv_free_slots(M.slots, M.n_slots, M.host->gateway.listen.n);
	hostkeys_free(&M.keys);
	config_host_free(M.host);
	free(M.old);
	ssh_finalize();
	log_info("stopped");
	return M.exit_code;
}
