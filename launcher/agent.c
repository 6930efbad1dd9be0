/* agent: the session agent of a tenant init.
 *
 * It runs inside pid 1 of the tenant, as root with the few capabilities
 * the init keeps, so every byte a connection sends is untrusted until
 * proto.c has decoded and bounded it, and a connection can only ask for
 * what the closed set of requests offers: a process that runs as the
 * tenant, or a TCP connection the tenant could make itself. The agent
 * moves no data and keeps no copy of an fd it passes; it never blocks:
 * every socket is non-blocking and each callback does bounded work. */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "fdpass.h"
#include "launcher.h"
#include "log.h"
#include "proto.h"
#include "tenantproc.h"

#define AGENT_ACCEPT_BURST 64    /* connections taken per wake-up */
#define AGENT_DRAIN_MAX 16       /* unread packets discarded before a close */
#define AGENT_PAUSE 1.0          /* seconds without accepting after EMFILE */

enum agent_state {
	AS_REQUEST,      /* waiting for the one request */
	AS_CONNECTING,   /* CONNECT: a TCP connect is in progress */
	AS_RUNNING,      /* a child runs: SIGNAL accepted, EXIT follows */
	AS_ORPHAN,       /* the requester is gone, the child not yet */
};

struct agent_conn {
	unsigned id;
	enum agent_state state;
	int fd;                          /* the requester; -1 once closed */
	pid_t pid;                       /* the session's child and its group; 0 = none */
	int tcp_fd;                      /* CONNECT in progress; -1 = none */
	struct sockaddr_storage addr[2]; /* CONNECT candidates, tried in order */
	socklen_t addr_len[2];
	int n_addr, next_addr;
	ev_io io, tcp_io;
	ev_timer timer;
	struct agent_conn *prev, *next;
};

static struct {
	struct ev_loop *loop;
	const struct init_args *a;
	int listen_fd;
	ev_io accept_w;
	ev_timer pause_w;
	struct agent_conn *conns;
	unsigned n_open, n_pending, last_id;
	bool full;                       /* accepting stopped at a limit */
} ag = { .listen_fd = -1 };

/* One packet buffer for every connection: the loop handles one packet at
 * a time, and nothing decoded from it outlives the callback. */
static uint8_t ag_buf[PROTO_MAX_MSG + 1];

/* ---- replies ---- */

static int agent_send(int fd, const struct proto_msg *m, const int *fds, size_t nfds)
{
	uint8_t buf[512];
	ssize_t n = proto_encode(m, buf, sizeof buf);

	if (n < 0) {
		log_error("cannot encode a %s reply: %s", proto_type_name(m->type),
			  proto_strerror((int)n));
		return -EINVAL;
	}
	return fdpass_send(fd, buf, (size_t)n, fds, nfds);
}

/* Best effort: the connection is closed right after, whatever happens. */
static void agent_send_error(int fd, int code, const char *why)
{
	char msg[PROTO_MAX_ERRMSG + 1];
	struct proto_msg m = { .type = PROTO_ERROR };
	size_t i;

	for (i = 0; why[i] && i < PROTO_MAX_ERRMSG; i++)
		msg[i] = why[i] >= 0x20 && why[i] < 0x7f ? why[i] : '?';
	msg[i] = 0;
	m.u.error.code = (uint16_t)code;
	m.u.error.msg = msg;
	agent_send(fd, &m, NULL, 0);
}

/* ---- connection lifecycle ---- */

/* At the connection limits the agent stops accepting: new requesters wait
 * in the listen backlog instead of being turned away, and are taken as
 * soon as a slot frees. */
static bool agent_full(void)
{
	return ag.n_open >= AGENT_MAX_CONNS || ag.n_pending >= AGENT_MAX_PENDING;
}

static void agent_resume(void)
{
	if (ag.full && !agent_full() && ag.listen_fd >= 0) {
		ag.full = false;
		if (!ev_is_active(&ag.pause_w))
			ev_io_start(ag.loop, &ag.accept_w);
	}
}

static void agent_conn_state(struct agent_conn *c, enum agent_state s)
{
	if (c->state == AS_REQUEST && s != AS_REQUEST) {
		ag.n_pending--;
		agent_resume();
	}
	c->state = s;
}

/* Unread packets would make the peer's next read fail with ECONNRESET
 * before it sees our last reply: discard a few first. */
static void agent_drain(int fd)
{
	int none[1];
	size_t n;

	for (int i = 0; i < AGENT_DRAIN_MAX; i++) {
		ssize_t r = fdpass_recv(fd, ag_buf, sizeof ag_buf, none, 0, &n);
		if (r == 0 || r == -EAGAIN || r == -ECONNRESET)
			break;
	}
}

/* Close the requester's side and everything but the child. */
static void agent_conn_close(struct agent_conn *c)
{
	ev_timer_stop(ag.loop, &c->timer);
	if (c->tcp_fd >= 0) {
		ev_io_stop(ag.loop, &c->tcp_io);
		close(c->tcp_fd);
		c->tcp_fd = -1;
	}
	if (c->fd < 0)
		return;
	agent_conn_state(c, AS_ORPHAN);
	ev_io_stop(ag.loop, &c->io);
	agent_drain(c->fd);
	close(c->fd);
	c->fd = -1;
	ag.n_open--;
	agent_resume();
}

static void agent_conn_free(struct agent_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		ag.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

/* The requester is gone or misbehaved. Like sshd when a client drops, hang
 * up on the session: SIGHUP to its process group, and SIGCONT so a stopped
 * group sees it. The struct lives until the child is reaped, since
 * tenantproc holds a pointer to it. */
static void agent_hangup(struct agent_conn *c)
{
	agent_conn_close(c);
	if (c->pid <= 0) {
		agent_conn_free(c);
		return;
	}
	log_info("session %u: requester gone, hanging up on pid %d", c->id, (int)c->pid);
	killpg(c->pid, SIGHUP);
	killpg(c->pid, SIGCONT);
}

static void agent_refuse(struct agent_conn *c, int code, const char *why)
{
	log_info("session %u: refused: %s", c->id, why);
	if (c->fd >= 0)
		agent_send_error(c->fd, code, why);
	agent_hangup(c);
}

/* ---- sessions: pty and pipes ---- */

static void agent_child_exited(pid_t pid, int status, void *data)
{
	struct agent_conn *c = data;
	struct proto_msg m = { .type = PROTO_EXIT };

	c->pid = 0;
	proto_exit_from_status(status, &m.u.exit);
	log_info("session %u: pid %d %s %d", c->id, (int)pid,
		 m.u.exit.how == PROTO_SIGNALED ? "killed by signal" : "exited with", m.u.exit.value);
	if (c->fd >= 0 && agent_send(c->fd, &m, NULL, 0) < 0)
		log_warn("session %u: cannot report the exit status", c->id);
	agent_conn_close(c);
	agent_conn_free(c);
}

/* Start the tenant's shell: "-bash" style for a login, "bash -c CMD"
 * for a command. term (may be NULL) is appended to the request's env. */
static int agent_spawn(struct agent_conn *c, const char *command, const struct proto_env *env,
		       char *term, const int stdio[3], int ctty, char *why, size_t wlen)
{
	const char *shell = tenantproc_shell(), *base = strrchr(shell, '/');
	char argv0[256], *extra[PROTO_MAX_ENV + 1], **envp;
	bool login = command[0] == 0;
	char *argv[] = { argv0, login ? NULL : "-c", (char *)command, NULL };
	size_t n = 0;
	pid_t pid;

	snprintf(argv0, sizeof argv0, "%s%s", login ? "-" : "", base ? base + 1 : shell);
	for (size_t i = 0; i < env->n; i++)
		extra[n++] = (char *)env->v[i];
	if (term)
		extra[n++] = term;
	envp = tenantproc_env(extra, n);
	if (!envp) {
		snprintf(why, wlen, "out of memory");
		return -PROTO_E_INTERNAL;
	}
	pid = tenantproc_spawn(&(struct tp_spec){
		.path = shell, .argv = argv, .envp = envp, .fd_in = stdio[0], .fd_out = stdio[1],
		.fd_err = stdio[2], .ctty = ctty, .on_exit = agent_child_exited, .data = c,
	});
	tenantproc_env_free(envp);
	if (pid < 0) {
		snprintf(why, wlen, "cannot start %s: %s", shell, strerror(errno));
		return -PROTO_E_SPAWN;
	}
	c->pid = pid;
	return 0;
}

/* Hand the requester its fds and forget them. If they cannot be sent the
 * session has no one at the other end: kill it. */
static int agent_started(struct agent_conn *c, const char *what, int *fds, size_t nfds,
			 char *why, size_t wlen)
{
	struct proto_msg m = { .type = PROTO_OK, .u.ok = { (uint8_t)nfds, (uint32_t)c->pid } };
	int r = agent_send(c->fd, &m, fds, nfds);

	fdpass_close_all(fds, nfds);
	if (r < 0) {
		snprintf(why, wlen, "cannot pass the fds: %s", strerror(-r));
		if (c->pid > 0)
			killpg(c->pid, SIGKILL);
		return -PROTO_E_INTERNAL;
	}
	log_info("session %u: %s, pid %d", c->id, what, (int)c->pid);
	return 0;
}

/* A new pty of the tenant's own devpts (we are inside its mount namespace,
 * and /dev is the init's tmpfs, not the tenant's to change). The slave is
 * opened through the master, never by a path, and given to the tenant. */
static int agent_pty_open(const struct proto_pty *p, int *master, int *slave)
{
	struct winsize ws = { p->rows ? p->rows : 24, p->cols ? p->cols : 80, p->xpixel, p->ypixel };
	struct termios tio;
	int m, s;

	m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	if (grantpt(m) < 0 || unlockpt(m) < 0 || ioctl(m, TIOCSWINSZ, &ws) < 0)
		goto fail;
	s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		goto fail;
	/* Mode first: once the tenant owns it, root needs CAP_FOWNER. */
	if (fchmod(s, 0620) < 0 || fchown(s, ag.a->uid, (gid_t)-1) < 0) {
		int e = errno;
		close(s);
		errno = e;
		goto fail;
	}
	/* Logins default to UTF-8 (LANG=C.UTF-8): let the line editor know. */
	if (tcgetattr(s, &tio) == 0) {
		tio.c_iflag |= IUTF8;
		tcsetattr(s, TCSANOW, &tio);
	}
	*master = m;
	*slave = s;
	return 0;
fail:
	s = errno;
	close(m);
	return -s;
}

static int agent_do_pty(struct agent_conn *c, const struct proto_msg *msg, char *why, size_t wlen)
{
	const struct proto_pty *p = &msg->u.pty;
	char term[PROTO_MAX_TERM + 8];
	int master = -1, slave = -1, r;

	r = agent_pty_open(p, &master, &slave);
	if (r < 0) {
		snprintf(why, wlen, "cannot allocate a pty: %s", strerror(-r));
		return -PROTO_E_SPAWN;
	}
	/* The term field wins over a TERM in the env: it names this pty. */
	snprintf(term, sizeof term, "TERM=%s", p->term);
	r = agent_spawn(c, p->command, &p->env, term, (int[3]){ slave, slave, slave }, slave, why,
			wlen);
	close(slave);
	if (r < 0) {
		close(master);
		return r;
	}
	return agent_started(c, "pty", &master, 1, why, wlen);
}

static int agent_do_pipes(struct agent_conn *c, const struct proto_msg *msg, char *why, size_t wlen)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, r;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		snprintf(why, wlen, "pipe: %s", strerror(errno));
		fdpass_close_all((int[6]){ in[0], in[1], out[0], out[1], err[0], err[1] }, 6);
		return -PROTO_E_INTERNAL;
	}
	r = agent_spawn(c, msg->u.pipes.command, &msg->u.pipes.env, NULL,
			(int[3]){ in[0], out[1], err[1] }, -1, why, wlen);
	fdpass_close_all((int[3]){ in[0], out[1], err[1] }, 3);
	if (r < 0) {
		fdpass_close_all((int[3]){ in[1], out[0], err[0] }, 3);
		return r;
	}
	return agent_started(c, "pipes", (int[3]){ in[1], out[0], err[0] }, 3, why, wlen);
}

/* ---- sessions: connect ---- */

/* Literal addresses only, and "localhost": a name lookup in pid 1 would
 * read the tenant's resolver configuration and block. */
static int agent_resolve(struct agent_conn *c, const char *host, uint16_t port)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&c->addr[0];
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&c->addr[0];
	char buf[PROTO_MAX_HOST + 1], *scope;

	c->n_addr = 1;
	if (!strcmp(host, "localhost")) {
		host = "127.0.0.1";
		c->n_addr = 2;
		v6 = (struct sockaddr_in6 *)&c->addr[1];
		*v6 = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = htons(port),
					     .sin6_addr = IN6ADDR_LOOPBACK_INIT };
		c->addr_len[1] = sizeof *v6;
	}
	*v4 = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port) };
	c->addr_len[0] = sizeof *v4;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1)
		return 0;
	snprintf(buf, sizeof buf, "%s", host);
	scope = strchr(buf, '%');
	if (scope)
		*scope++ = 0;
	*v6 = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = htons(port) };
	c->addr_len[0] = sizeof *v6;
	if (inet_pton(AF_INET6, buf, &v6->sin6_addr) != 1)
		return -EINVAL;
	if (scope && !(v6->sin6_scope_id = if_nametoindex(scope))) {
		char *end;
		unsigned long id = strtoul(scope, &end, 10);
		if (!*scope || *end || id == 0 || id > 0xffffffffUL)
			return -EINVAL;
		v6->sin6_scope_id = (uint32_t)id;
	}
	return 0;
}

static void agent_tcp_cb(struct ev_loop *loop, ev_io *w, int revents);

/* The connection is made: pass it on, in blocking mode like every fd the
 * agent passes, and close this request. */
static void agent_connected(struct agent_conn *c, int fd)
{
	char why[160];
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if (agent_started(c, "connect", &fd, 1, why, sizeof why) < 0)
		log_warn("session %u: %s", c->id, why);
	agent_hangup(c);
}

/* Try the next candidate address. 0: connected or in progress (the
 * callbacks take over), or -errno of the last attempt. */
static int agent_connect_next(struct agent_conn *c)
{
	int last = ECONNREFUSED;

	while (c->next_addr < c->n_addr) {
		int i = c->next_addr++;
		int fd = socket(c->addr[i].ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
				IPPROTO_TCP);
		if (fd < 0) {
			last = errno;
			continue;
		}
		/* Done at once or not, completion is seen in agent_tcp_cb: the
		 * handler that called us must not see c freed under it. */
		if (connect(fd, (struct sockaddr *)&c->addr[i], c->addr_len[i]) == 0 ||
		    errno == EINPROGRESS) {
			c->tcp_fd = fd;
			ev_io_init(&c->tcp_io, agent_tcp_cb, fd, EV_WRITE);
			c->tcp_io.data = c;
			ev_io_start(ag.loop, &c->tcp_io);
			return 0;
		}
		last = errno;
		close(fd);
	}
	return -last;
}

static void agent_connect_failed(struct agent_conn *c, int err)
{
	char why[160];

	snprintf(why, sizeof why, "connect: %s", strerror(err));
	agent_refuse(c, PROTO_E_CONNECT, why);
}

static void agent_tcp_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct agent_conn *c = w->data;
	int err = 0, fd = c->tcp_fd, r;
	socklen_t len = sizeof err;

	ev_io_stop(loop, w);
	c->tcp_fd = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0) {
		agent_connected(c, fd);
		return;
	}
	close(fd);
	r = agent_connect_next(c);
	if (r < 0)
		agent_connect_failed(c, -r);
}

static int agent_do_connect(struct agent_conn *c, const struct proto_msg *msg, char *why,
			    size_t wlen)
{
	const struct proto_connect *p = &msg->u.connect;
	int r;

	if (agent_resolve(c, p->host, p->port) < 0) {
		snprintf(why, wlen, "not a numeric address: %s", p->host);
		return -PROTO_E_HOST;
	}
	agent_conn_state(c, AS_CONNECTING);
	ev_timer_stop(ag.loop, &c->timer);
	ev_timer_set(&c->timer, AGENT_CONNECT_TIMEOUT, 0);
	ev_timer_start(ag.loop, &c->timer);
	r = agent_connect_next(c);
	if (r < 0) {
		snprintf(why, wlen, "connect: %s", strerror(-r));
		return -PROTO_E_CONNECT;
	}
	return 0;
}

/* ---- signals ---- */

static int agent_do_signal(struct agent_conn *c, const struct proto_msg *msg, char *why,
			   size_t wlen)
{
	int sig = msg->u.signo;

	/* The group may not exist yet if the child has not reached setsid. */
	if (killpg(c->pid, sig) < 0 && errno == ESRCH)
		kill(c->pid, sig);
	log_info("session %u: signal %d to pid %d", c->id, sig, (int)c->pid);
	return 0;
}

/* ---- dispatch ---- */

struct agent_handler {
	uint8_t type;
	enum agent_state when;
	int (*run)(struct agent_conn *c, const struct proto_msg *m, char *why, size_t wlen);
};

/* The closed set of requests. What reaches a handler has passed
 * proto_decode_request: every field within its bounds. */
static const struct agent_handler agent_handlers[] = {
	/* A process as the tenant on a new pty of the tenant's devpts. The
	 * child is the tenant before it runs anything (tenantproc drops uid,
	 * gid, groups and every capability, sets no_new_privs), so the request
	 * chooses only what the tenant could run anyway; the env names that
	 * define the login (HOME, USER, PATH, LD_*...) are refused by proto.c,
	 * and the term name is a plain token. */
	{ PROTO_PTY, AS_REQUEST, agent_do_pty },
	/* The same, with three fresh pipes instead of a pty. */
	{ PROTO_PIPES, AS_REQUEST, agent_do_pipes },
	/* A TCP connection made from the tenant's network namespace: the one
	 * any tenant process can make, through the same router and firewall.
	 * Only literal addresses are parsed: no lookup runs in pid 1. */
	{ PROTO_CONNECT, AS_REQUEST, agent_do_connect },
	/* A signal from a fixed set to this session's own process group (the
	 * child called setsid), which runs as the tenant: never the init,
	 * never another session. Valid only while the child runs. */
	{ PROTO_SIGNAL, AS_RUNNING, agent_do_signal },
};

static void agent_dispatch(struct agent_conn *c, const struct proto_msg *m)
{
	char why[PROTO_MAX_ERRMSG + 1];
	int r;

	for (size_t i = 0; i < sizeof agent_handlers / sizeof agent_handlers[0]; i++) {
		const struct agent_handler *h = &agent_handlers[i];

		if (h->type != m->type)
			continue;
		if (h->when != c->state)
			break;
		why[0] = 0;
		r = h->run(c, m, why, sizeof why);
		if (r < 0) {
			agent_refuse(c, -r, why[0] ? why : proto_strerror(r));
			return;
		}
		if (c->state == AS_REQUEST && c->pid > 0) {
			agent_conn_state(c, AS_RUNNING);
			ev_timer_stop(ag.loop, &c->timer);
		}
		return;
	}
	agent_refuse(c, PROTO_E_STATE, "message not expected now");
}

/* A packet from the requester: the request, or later a signal; EOF means
 * the requester has gone. Anything wrong ends the connection. */
static void agent_conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct agent_conn *c = w->data;
	struct proto_msg m;
	int none[1], r;
	size_t nfds;
	ssize_t n = fdpass_recv(c->fd, ag_buf, sizeof ag_buf, none, 0, &nfds);

	if (n == -EAGAIN)
		return;
	if (n == 0 || n == -ECONNRESET) {
		agent_hangup(c);
		return;
	}
	if (n < 0) {
		int code = n == -EMSGSIZE  ? PROTO_E_TOO_BIG
			   : n == -EBADMSG ? PROTO_E_FDS
					   : PROTO_E_INTERNAL;

		agent_refuse(c, code,
			     code == PROTO_E_INTERNAL ? strerror((int)-n) : proto_strerror(code));
		return;
	}
	r = proto_decode_request(ag_buf, (size_t)n, &m);
	if (r < 0) {
		agent_refuse(c, -r, proto_strerror(r));
		return;
	}
	agent_dispatch(c, &m);
}

static void agent_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agent_conn *c = w->data;

	agent_refuse(c, PROTO_E_TIMEOUT,
		  c->state == AS_CONNECTING ? "connect timed out" : "no request in time");
}

/* ---- accepting ---- */

/* The socket file lets in only root and the gateway's group, on a host
 * path the tenant cannot see. Check anyway, so a leaked fd or a wrong mode
 * does not become a way in: a peer inside this tenant's pid namespace has
 * a pid here (peers on the host read as 0), and the tenant's uid has no
 * reason to talk to its own agent. */
static bool agent_peer_ok(const struct ucred *cr)
{
	return cr->pid == 0 && cr->uid != ag.a->uid;
}

static void agent_admit(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof cr;
	struct agent_conn *c;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		log_warn_r(errno, "SO_PEERCRED");
		close(fd);
		return;
	}
	if (!agent_peer_ok(&cr)) {
		log_warn("refused a connection from pid %d uid %u gid %u", (int)cr.pid, (unsigned)cr.uid,
			 (unsigned)cr.gid);
		agent_send_error(fd, PROTO_E_PEER, "peer not allowed");
		close(fd);
		return;
	}
	if (ag.n_open < AGENT_MAX_CONNS && ag.n_pending < AGENT_MAX_PENDING)
		c = calloc(1, sizeof *c);
	else
		c = NULL;
	if (!c) {
		log_warn("busy: %u connections, %u without a request", ag.n_open, ag.n_pending);
		agent_send_error(fd, PROTO_E_BUSY, "agent busy");
		close(fd);
		return;
	}
	*c = (struct agent_conn){ .id = ++ag.last_id, .state = AS_REQUEST, .fd = fd, .tcp_fd = -1 };
	ev_io_init(&c->io, agent_conn_cb, fd, EV_READ);
	c->io.data = c;
	ev_io_start(ag.loop, &c->io);
	ev_timer_init(&c->timer, agent_timer_cb, AGENT_REQUEST_TIMEOUT, 0);
	c->timer.data = c;
	ev_timer_start(ag.loop, &c->timer);
	c->next = ag.conns;
	if (ag.conns)
		ag.conns->prev = c;
	ag.conns = c;
	ag.n_open++;
	ag.n_pending++;
	log_info("session %u: connection from uid %u gid %u", c->id, (unsigned)cr.uid,
		 (unsigned)cr.gid);
}

static void agent_pause_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_timer_stop(loop, w);
	if (!ag.full)
		ev_io_start(loop, &ag.accept_w);
}

/* Out of fds: stop accepting for a while instead of spinning on a
 * listening socket that stays readable. */
static void agent_pause(int err)
{
	log_warn_r(err, "accept; pausing for %.0f s", AGENT_PAUSE);
	ev_io_stop(ag.loop, &ag.accept_w);
	ev_timer_set(&ag.pause_w, AGENT_PAUSE, 0);
	ev_timer_start(ag.loop, &ag.pause_w);
}

static void agent_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	for (int i = 0; i < AGENT_ACCEPT_BURST; i++) {
		int fd;

		if (agent_full()) {
			ag.full = true;
			ev_io_stop(loop, w);
			return;
		}
		fd = accept4(ag.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			agent_admit(fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			agent_pause(errno);
		else if (errno != EAGAIN)
			log_warn_r(errno, "accept");
		return;
	}
}

int agent_start(struct ev_loop *loop, const struct init_args *a)
{
	int fl = fcntl(a->agent_fd, F_GETFL);

	if (fl < 0 || fcntl(a->agent_fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(a->agent_fd, F_SETFD, FD_CLOEXEC) < 0) {
		int e = errno;
		log_error_r(e, "agent socket");
		return -e;
	}
	ag.loop = loop;
	ag.a = a;
	ag.listen_fd = a->agent_fd;
	ev_io_init(&ag.accept_w, agent_accept_cb, ag.listen_fd, EV_READ);
	ev_io_start(loop, &ag.accept_w);
	ev_timer_init(&ag.pause_w, agent_pause_cb, AGENT_PAUSE, 0);
	return 0;
}

void agent_stop(void)
{
	struct agent_conn *c, *next;

	if (ag.listen_fd < 0)
		return;
	ev_io_stop(ag.loop, &ag.accept_w);
	ev_timer_stop(ag.loop, &ag.pause_w);
	close(ag.listen_fd);
	ag.listen_fd = -1;
	/* A struct whose child still runs stays until the child is reaped (or
	 * tenantproc forgets it): its exit callback still points to it. */
	for (c = ag.conns; c; c = next) {
		next = c->next;
		agent_conn_close(c);
		if (c->pid <= 0)
			agent_conn_free(c);
	}
}
