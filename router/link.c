/* link: state_dir/router.sock, where the launcher hands over tenant tuns.
 *
 * SOCK_SEQPACKET, one request per packet, no replies:
 *
 *   "add NAME A.B.C.D RATE [IPV6]"
 *                             with the tenant's tun attached: one fd, or
 *                             one fd per queue (2 to 16) of an
 *                             IFF_MULTI_QUEUE tun, in queue order; RATE
 *                             is bytes/s (0 = unlimited); IPV6 its IPv6
 *                             address when it has one. An add for a
 *                             known name replaces it.
 *
 * Compatibility: with router.threads 1 the launcher sends one fd, which
 * is all an older router accepted; a router of any thread count takes
 * any number of queues (thread i reads queues i, i + threads, ...). An
 * older router given several fds refuses the request and closes the
 * link: mixing versions needs router.threads 1 until both are updated.
 *   "del NAME"                the tenant stopped: close its tun.
 *
 * Only root may connect (the socket is 0600 and the peer's uid is checked
 * again), and still every field and fd is checked as if it were hostile:
 * the fd must be a tun in our mode, the address a host address of our
 * subnet not owned by another tenant. Anything else closes the peer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdpass.h"
#include "log.h"
#include "router.h"

#define LINK_MAX_CONN 8
#define LINK_MSG_MAX 192

struct link_conn {
	struct router *R;
	ev_io io;
};

static ev_io link_listen_w;
static int link_conns;

static void link_close(struct link_conn *c)
{
	ev_io_stop(c->R->loop, &c->io);
	close(c->io.fd);
	free(c);
	link_conns--;
}

/* One request; returns -1 when the peer broke the protocol. */
static int link_handle(struct router *R, char *msg, int *fds, size_t nfds)
{
	char verb[8], name[48], addr_s[20], addr6_s[48] = "", err[160];
	unsigned long long rate = 0;
	uint32_t addr;
	uint8_t addr6[16];
	int n = sscanf(msg, "%7s %47s %19s %llu %47s", verb, name, addr_s, &rate, addr6_s);

	if ((n == 4 || n == 5) && !strcmp(verb, "add") && nfds >= 1 && nfds <= ROUTER_MAX_QUEUES &&
	    value_ipv4(addr_s, &addr, NULL) == 0 && (n == 4 || value_ipv6(addr6_s, addr6, NULL) == 0)) {
		int tun[ROUTER_MAX_QUEUES];
		memcpy(tun, fds, nfds * sizeof *fds);
		for (size_t i = 0; i < nfds; i++)
			fds[i] = -1;     /* fwd_tenant_add owns them now, even on failure */
		if (fwd_tenant_add(R, name, addr, n == 5 ? addr6 : NULL, rate, tun, nfds, err, sizeof err) < 0) {
			log_error("%.40s: refused: %s", name, err);
			return 0;
		}
		log_info("%s: attached at %s%s%s%s, %zu queue%s", name, addr_s, n == 5 ? " and " : "", addr6_s,
			 rate ? " (rate limited)" : "", nfds, nfds == 1 ? "" : "s");
		return 0;
	}
	if (n == 2 && !strcmp(verb, "del") && nfds == 0) {
		if (fwd_tenant_del(R, name) < 0)
			log_debug("%.40s: removal of an unknown tenant", name);
		return 0;
	}
	log_error("launcher link: bad request '%.60s' with %zu fds", msg, nfds);
	return -1;
}

static void link_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct link_conn *c = w->data;
	char msg[LINK_MSG_MAX + 1];
	int fds[FDPASS_MAX_ANY];
	size_t nfds = 0;

	/* A bounded number per wakeup: the launcher shares the loop fairly. */
	for (int i = 0; i < 64; i++) {
		ssize_t n = fdpass_recv(w->fd, msg, LINK_MSG_MAX, fds, FDPASS_MAX_ANY, &nfds);

		if (n == -EAGAIN)
			return;
		if (n == 0 || (n < 0 && n != -EMSGSIZE && n != -EBADMSG)) {
			log_info("launcher link closed");
			return link_close(c);
		}
		if (n < 0) {
			log_error("launcher link: %s", strerror((int)-n));
			return link_close(c);
		}
		msg[n] = 0;
		int r = link_handle(c->R, msg, fds, nfds);
		fdpass_close_all(fds, nfds);
		if (r < 0)
			return link_close(c);
	}
}

static bool link_peer_is_root(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof cred;

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == 0;
}

static void link_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *R = w->data;
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct link_conn *c;

	if (fd < 0)
		return;
	if (!link_peer_is_root(fd) || link_conns >= LINK_MAX_CONN || !(c = calloc(1, sizeof *c))) {
		log_warn("launcher link: connection refused");
		close(fd);
		return;
	}
	link_conns++;
	c->R = R;
	ev_io_init(&c->io, link_read_cb, fd, EV_READ);
	c->io.data = c;
	ev_io_start(loop, &c->io);
	log_info("launcher connected");
}

int router_path(const struct router *R, char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", R->host->state_dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* A unix socket at state_dir/name, mode 0600 from the start. */
int router_listen(const struct router *R, const char *name, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd;

	if (router_path(R, sa.sun_path, sizeof sa.sun_path, name) < 0)
		return -ENAMETOOLONG;
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) {
		int e = -errno;
		umask(old);
		close(fd);
		return e;
	}
	umask(old);
	return fd;
}

int link_start(struct router *R)
{
	int fd = router_listen(R, ROUTER_LINK_SOCK, SOCK_SEQPACKET);

	if (fd < 0) {
		log_error_r(fd, "cannot listen on %s/%s", R->host->state_dir, ROUTER_LINK_SOCK);
		return -1;
	}
	ev_io_init(&link_listen_w, link_accept_cb, fd, EV_READ);
	link_listen_w.data = R;
	ev_io_start(R->loop, &link_listen_w);
	return 0;
}
