/* agentc: requests to a tenant's session agent, from the event loop. */
#include "agentc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdpass.h"
#include "gateway.h"
#include "log.h"

int agentc_path(const char *tenant, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/agents/%s.sock", W.host->state_dir, tenant);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* What an OK must carry for each request. */
static size_t agentc_want(uint8_t type, enum fdpass_kind kinds[3])
{
	switch (type) {
	case PROTO_PTY:
		kinds[0] = FDPASS_PTY_MASTER;
		return 1;
	case PROTO_PIPES:
		kinds[0] = FDPASS_PIPE_WRITE;
		kinds[1] = kinds[2] = FDPASS_PIPE_READ;
		return 3;
	default:
		kinds[0] = FDPASS_TCP;
		return 1;
	}
}

/* Exactly the fds asked for, each of its kind; then non-blocking, which
 * the agent does not mind: it keeps no copy of what it passed. */
static int agentc_check_fds(struct agentc *a, const struct proto_msg *m, int *fds, size_t nfds)
{
	enum fdpass_kind kinds[3];
	size_t want = agentc_want(a->type, kinds);

	if (m->u.ok.nfds != want || nfds != want)
		return -1;
	for (size_t i = 0; i < nfds; i++) {
		int fl;

		if (fdpass_check(fds[i], kinds[i]) < 0)
			return -1;
		fl = fcntl(fds[i], F_GETFL);
		if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0)
			return -1;
	}
	return 0;
}

static void agentc_finish(struct agentc *a, enum agentc_event ev, int *fds, size_t nfds,
			  const struct proto_exit *exit, const char *why)
{
	ev_timer_stop(W.loop, &a->timer);
	a->fn(a, ev, fds, nfds, exit, why);
}

/* The first reply: OK with its fds, or ERROR. */
static void agentc_first(struct agentc *a, const struct proto_msg *m, int *fds, size_t nfds)
{
	char why[PROTO_MAX_ERRMSG + 32];

	if (m->type == PROTO_OK && agentc_check_fds(a, m, fds, nfds) == 0) {
		a->answered = true;
		agentc_finish(a, AGENTC_OK, fds, nfds, NULL, NULL);
		return;
	}
	fdpass_close_all(fds, nfds);
	a->code = m->type == PROTO_ERROR ? m->u.error.code : 0;
	if (m->type == PROTO_ERROR)
		snprintf(why, sizeof why, "%s", m->u.error.msg[0] ? m->u.error.msg : proto_strerror(m->u.error.code));
	else
		snprintf(why, sizeof why, "unexpected %s from the agent", proto_type_name(m->type));
	agentc_close(a);
	agentc_finish(a, AGENTC_FAILED, NULL, 0, NULL, why);
}

static void agentc_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct agentc *a = w->data;
	uint8_t buf[1024];
	int fds[FDPASS_MAX];
	size_t nfds = 0;
	struct proto_msg m;
	ssize_t n = fdpass_recv(a->fd, buf, sizeof buf, fds, a->answered ? 0 : FDPASS_MAX, &nfds);

	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n <= 0 || proto_decode_reply(buf, (size_t)n, &m) < 0) {
		bool gone = n == 0 || n == -ECONNRESET;

		fdpass_close_all(fds, nfds);
		if (!gone)
			log_warn("malformed packet from an agent; hanging up");
		agentc_close(a);
		if (a->answered)
			agentc_finish(a, AGENTC_GONE, NULL, 0, NULL, NULL);
		else
			agentc_finish(a, AGENTC_FAILED, NULL, 0, NULL, gone ? "the agent hung up" : "malformed reply");
		return;
	}
	if (!a->answered) {
		agentc_first(a, &m, fds, nfds);
		return;
	}
	if (m.type == PROTO_EXIT) {
		struct proto_exit e = m.u.exit;
		agentc_close(a);
		agentc_finish(a, AGENTC_EXIT, NULL, 0, &e, NULL);
		return;
	}
	log_warn("unexpected %s from an agent; hanging up", proto_type_name(m.type));
	agentc_close(a);
	agentc_finish(a, AGENTC_GONE, NULL, 0, NULL, NULL);
}

static void agentc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agentc *a = w->data;

	agentc_close(a);
	agentc_finish(a, AGENTC_FAILED, NULL, 0, NULL, "the agent did not answer in time");
}

static int agentc_connect(const char *tenant)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	if (agentc_path(tenant, sa.sun_path, sizeof sa.sun_path) < 0)
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A Unix connect completes at once or fails (EAGAIN: backlog full). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
		return fd;
	e = errno;
	close(fd);
	return -e;
}

int agentc_open(struct agentc *a, const char *tenant, const struct proto_msg *req,
		double timeout, agentc_fn fn, void *data)
{
	static uint8_t buf[PROTO_MAX_MSG];
	ssize_t n = proto_encode(req, buf, sizeof buf);
	int fd, r;

	*a = (struct agentc){ .fd = -1, .type = req->type, .fn = fn, .data = data };
	if (n < 0) {
		log_warn("cannot encode a %s request: %s", proto_type_name(req->type), proto_strerror((int)n));
		return -EINVAL;
	}
	fd = agentc_connect(tenant);
	if (fd < 0)
		return fd;
	r = fdpass_send(fd, buf, (size_t)n, NULL, 0);
	if (r < 0) {
		close(fd);
		return r;
	}
	a->fd = fd;
	ev_io_init(&a->io, agentc_io_cb, fd, EV_READ);
	a->io.data = a;
	ev_io_start(W.loop, &a->io);
	ev_timer_init(&a->timer, agentc_timer_cb, timeout, 0);
	a->timer.data = a;
	ev_timer_start(W.loop, &a->timer);
	return 0;
}

int agentc_signal(struct agentc *a, int signo)
{
	struct proto_msg m = { .type = PROTO_SIGNAL, .u.signo = signo };
	uint8_t buf[64];
	ssize_t n;

	if (a->fd < 0 || !a->answered)
		return -ENOTCONN;
	n = proto_encode(&m, buf, sizeof buf);
	if (n < 0)
		return -EINVAL;
	return fdpass_send(a->fd, buf, (size_t)n, NULL, 0);
}

void agentc_close(struct agentc *a)
{
	ev_timer_stop(W.loop, &a->timer);
	if (a->fd < 0)
		return;
	ev_io_stop(W.loop, &a->io);
	close(a->fd);
	a->fd = -1;
}
