/* routerlink: keep fief-router supplied with tenant tuns.
 *
 * The router is a separate daemon that may start later, crash or be
 * restarted. We keep one entry per tenant that has a tun (the fds of its
 * queues live in t->tun_fds, with the address and rate it was set up with) and a
 * short queue of requests for the router (see router/link.c for the
 * protocol). Whenever a connection is made, the queue becomes: the
 * removals that could not be sent, then an "add" for every entry. A lost
 * connection is retried every RL_RETRY seconds. Nothing here ever blocks
 * the launcher: a full socket waits for EV_WRITE. */
#include "routerlink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdpass.h"
#include "log.h"
#include "tun.h"

#define RL_RETRY 0.5                 /* seconds between connection attempts */
#define RL_SNDBUF (1 << 20)
#define RL_MAX_OPS 65536             /* removals kept while disconnected */

struct rl_entry {
	struct tenant *t;
	char name[40];
	uint32_t addr;
	bool has6;
	uint8_t addr6[16];
	uint64_t rate;
	struct rl_entry *next;
};

struct rl_op {
	char name[40];
	bool add;
};

static struct {
	struct launcher *L;
	int fd;
	ev_io io;
	ev_timer retry;
	struct rl_entry *entries;
	struct rl_op *ops;
	size_t n_ops, cap_ops, head;
	bool warned;
} rl = { .fd = -1 };

static struct rl_entry *rl_entry_of(const struct tenant *t)
{
	for (struct rl_entry *e = rl.entries; e; e = e->next)
		if (e->t == t)
			return e;
	return NULL;
}

static void rl_queue(const char *name, bool add)
{
	if (rl.n_ops == rl.cap_ops) {
		size_t cap = rl.cap_ops ? rl.cap_ops * 2 : 64;
		struct rl_op *p = cap <= RL_MAX_OPS ? realloc(rl.ops, cap * sizeof *p) : NULL;
		if (!p) {
			log_warn("%s: router request queue full", name);
			return;
		}
		rl.ops = p;
		rl.cap_ops = cap;
	}
	snprintf(rl.ops[rl.n_ops].name, sizeof rl.ops[rl.n_ops].name, "%s", name);
	rl.ops[rl.n_ops++].add = add;
}

static void rl_watch(int events)
{
	ev_io_stop(rl.L->loop, &rl.io);
	ev_io_set(&rl.io, rl.fd, events);
	ev_io_start(rl.L->loop, &rl.io);
}

static void rl_disconnect(const char *why)
{
	log_warn("router link lost (%s); reconnecting", why);
	ev_io_stop(rl.L->loop, &rl.io);
	close(rl.fd);
	rl.fd = -1;
	/* Adds are rebuilt from the entries at the next connection; keep
	 * only the removals that have not reached the router. */
	size_t n = 0;
	for (size_t i = rl.head; i < rl.n_ops; i++)
		if (!rl.ops[i].add)
			rl.ops[n++] = rl.ops[i];
	rl.n_ops = n;
	rl.head = 0;
	ev_timer_again(rl.L->loop, &rl.retry);
}

static int rl_send(const struct rl_op *op)
{
	char msg[192], addr[16], addr6[48] = "";
	struct rl_entry *e;

	if (!op->add) {
		snprintf(msg, sizeof msg, "del %s", op->name);
		return fdpass_send(rl.fd, msg, strlen(msg), NULL, 0);
	}
	for (e = rl.entries; e && strcmp(e->name, op->name); e = e->next)
		;
	if (!e || e->t->n_tun <= 0)
		return 0;                /* gone since it was queued */
	ipv4_format(e->addr, addr, sizeof addr);
	if (e->has6) {
		addr6[0] = ' ';
		ipv6_format(e->addr6, addr6 + 1, sizeof addr6 - 1);
	}
	snprintf(msg, sizeof msg, "add %s %s %llu%s", e->name, addr, (unsigned long long)e->rate, addr6);
	/* every queue, in order: the router's thread i reads queue i */
	return fdpass_send(rl.fd, msg, strlen(msg), e->t->tun_fds, (size_t)e->t->n_tun);
}

static void rl_flush(void)
{
	if (rl.fd < 0)
		return;
	while (rl.head < rl.n_ops) {
		int r = rl_send(&rl.ops[rl.head]);
		if (r == -EAGAIN)
			return rl_watch(EV_READ | EV_WRITE);
		if (r < 0)
			return rl_disconnect(strerror(-r));
		rl.head++;
	}
	rl.n_ops = rl.head = 0;
	rl_watch(EV_READ);
}

static void rl_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	char buf[64];

	if (revents & EV_READ) {
		/* The router never writes: readable means it went away. */
		ssize_t n = recv(rl.fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return rl_disconnect(n == 0 ? "closed" : strerror(errno));
	}
	if (revents & EV_WRITE)
		rl_flush();
}

static void rl_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, buf = RL_SNDBUF;

	if (launcher_path(rl.L, sa.sun_path, sizeof sa.sun_path, "router.sock") < 0)
		return;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (!rl.warned)
			log_info("fief-router not reachable at %s (%s); retrying every %.1f s",
				 sa.sun_path, strerror(errno), RL_RETRY);
		rl.warned = true;
		if (fd >= 0)
			close(fd);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
	rl.fd = fd;
	rl.warned = false;
	ev_timer_stop(rl.L->loop, &rl.retry);
	ev_io_init(&rl.io, rl_io_cb, fd, EV_READ);
	ev_io_start(rl.L->loop, &rl.io);
	size_t n = 0;
	for (struct rl_entry *e = rl.entries; e; e = e->next, n++)
		rl_queue(e->name, true);
	log_info("connected to fief-router; handing over %zu tenant tun%s", n, n == 1 ? "" : "s");
	rl_flush();
}

static void rl_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	if (rl.fd < 0)
		rl_connect();
}

void routerlink_start(struct launcher *L)
{
	rl.L = L;
	if (!L->host->router.enabled)
		return;
	ev_init(&rl.retry, rl_retry_cb);
	rl.retry.repeat = RL_RETRY;
	rl_connect();
	if (rl.fd < 0)
		ev_timer_again(L->loop, &rl.retry);
}

static void rl_close_tun(struct tenant *t)
{
	for (int i = 0; i < t->n_tun; i++)
		close(t->tun_fds[i]);
	t->n_tun = 0;
}

void routerlink_tenant_tun(struct tenant *t, const int *fds, size_t n)
{
	struct rl_entry *e;
	bool ok = n >= 1 && n <= CONFIG_ROUTER_MAX_THREADS;

	/* Only a tenant that should have a network gets to register one, and
	 * only with a real tun in the mode the router reads (several fds:
	 * each a queue of a multi-queue tun). */
	for (size_t i = 0; ok && i < n; i++)
		ok = tun_check_fd(fds[i]) == 0 && (n == 1 || tun_is_multi_queue(fds[i]) == 1);
	if (!ok || !rl.L || !rl.L->host->router.enabled || !t->cfg || !t->cfg->network.has_address) {
		log_warn("%s: unexpected tun fds from the init; ignored", t->name);
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		return;
	}
	rl_close_tun(t);
	memcpy(t->tun_fds, fds, n * sizeof *fds);
	t->n_tun = (int)n;
	if (!(e = rl_entry_of(t))) {
		if (!(e = calloc(1, sizeof *e))) {
			log_error("%s: out of memory for the router link", t->name);
			return;
		}
		e->t = t;
		snprintf(e->name, sizeof e->name, "%s", t->name);
		e->next = rl.entries;
		rl.entries = e;
	}
	e->addr = t->cfg->network.address;
	e->has6 = t->cfg->network.has_address6 && rl.L->host->router.has_address6;
	memcpy(e->addr6, t->cfg->network.address6, 16);
	e->rate = t->cfg->network.rate_limit;
	log_debug("%s: tun received", t->name);
	if (rl.fd >= 0) {
		rl_queue(t->name, true);
		rl_flush();
	}
}

void routerlink_tenant_gone(struct tenant *t)
{
	struct rl_entry *e = rl_entry_of(t);

	rl_close_tun(t);
	if (!e)
		return;
	for (struct rl_entry **pp = &rl.entries; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	free(e);
	rl_queue(t->name, false);
	rl_flush();
}
