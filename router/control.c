/* control: state_dir/router-control.sock, for fiefctl stats (root only).
 *
 * As the launcher's control socket: one request line per connection, a
 * reply of key=value records (values percent-encoded), then close.
 *
 *   "stats"        ok=1, then one kind=router record (the host side), then
 *                  one kind=tenant record per tenant, sorted by name
 *   "stats NAME"   ok=1, the router record and that tenant's record
 *
 * Requests only read counters: nothing here changes the data path. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "router.h"

#define CTL_MAX_REQ 256
#define CTL_TIMEOUT 5.0
#define CTL_MAX_CONN 32

struct ctl_conn {
	struct router *R;
	ev_io io;
	ev_timer timeout;
	char req[CTL_MAX_REQ];
	size_t req_len;
	char *out;
	size_t out_len, out_cap, out_off;
	bool failed;                 /* out of memory: drop the reply */
};

static ev_io ctl_listen_w;
static int ctl_conns;

static void ctl_add(struct ctl_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ctl_add(struct ctl_conn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(c->out ? c->out + c->out_len : NULL, c->out_cap - c->out_len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= c->out_cap - c->out_len) {
		size_t cap = (c->out_cap + (size_t)n + 1) * 2;
		char *p = realloc(c->out, cap);
		if (!p) {
			c->failed = true;
			return;
		}
		c->out = p;
		c->out_cap = cap;
		va_start(ap, fmt);
		vsnprintf(c->out + c->out_len, c->out_cap - c->out_len, fmt, ap);
		va_end(ap);
	}
	c->out_len += (size_t)n;
}

/* key=value, the value percent-encoded so a record stays one line. */
static void ctl_field(struct ctl_conn *c, const char *key, const char *val)
{
	ctl_add(c, "%s%s=", c->out_len && c->out[c->out_len - 1] != '\n' ? " " : "", key);
	for (const unsigned char *p = (const unsigned char *)val; *p; p++)
		ctl_add(c, *p <= ' ' || *p == '%' || *p == '=' || *p >= 0x7f ? "%%%02X" : "%c", *p);
}

static void ctl_num(struct ctl_conn *c, const char *key, unsigned long long v)
{
	char buf[24];

	snprintf(buf, sizeof buf, "%llu", v);
	ctl_field(c, key, buf);
}

static void ctl_counters(struct ctl_conn *c, const struct rt_counters *k)
{
	char key[32];
	uint64_t total = 0;

	ctl_num(c, "out_bytes", k->out_bytes);
	ctl_num(c, "out_packets", k->out_packets);
	ctl_num(c, "in_bytes", k->in_bytes);
	ctl_num(c, "in_packets", k->in_packets);
	for (int i = 0; i < DROP_MAX; i++)
		total += k->drops[i];
	ctl_num(c, "drops", total);
	for (int i = 0; i < DROP_MAX; i++) {
		snprintf(key, sizeof key, "drop_%s", rt_drop_names[i]);
		ctl_num(c, key, k->drops[i]);
	}
}

static void ctl_tenant(struct ctl_conn *c, const struct rt_tenant *t)
{
	struct rt_counters sum;
	char addr[16];

	ipv4_format(t->addr, addr, sizeof addr);
	ctl_field(c, "kind", "tenant");
	ctl_field(c, "name", t->name);
	ctl_field(c, "address", addr);
	if (t->has6) {
		char addr6[48];
		ipv6_format(t->addr6, addr6, sizeof addr6);
		ctl_field(c, "address6", addr6);
	}
	ctl_num(c, "rate_limit", t->out_tb.rate);
	ctl_num(c, "queues", (unsigned long long)t->nq);
	fwd_counters(c->R, t->c, &sum);
	ctl_counters(c, &sum);
	ctl_add(c, "\n");
}

/* The host side: in = read from the host tun, out = delivered to tenants. */
static void ctl_router(struct ctl_conn *c)
{
	const struct router *R = c->R;
	struct rt_counters sum;
	char addr[24];

	/* The host side's counters live in each thread's struct. */
	memset(&sum, 0, sizeof sum);
	for (int i = 0; i < R->nthreads; i++)
		fwd_counters_add(&sum, &R->w[i].host_c);

	cidr_format(&R->host->router.address, addr, sizeof addr);
	ctl_field(c, "kind", "router");
	ctl_field(c, "device", R->host->router.device);
	ctl_field(c, "address", addr);
	if (R->has6) {
		char addr6[48];
		cidr6_format(&R->net6, addr6, sizeof addr6);
		ctl_field(c, "address6", addr6);
	}
	ctl_num(c, "tenants", R->n_tenants);
	ctl_num(c, "threads", (unsigned long long)R->nthreads);
	/* forwarding threads moving packets in batches through io_uring */
	unsigned long long uring = 0;
	for (int i = 0; i < R->nthreads; i++)
		uring += __atomic_load_n(&R->w[i].batch, __ATOMIC_ACQUIRE) != NULL;
	ctl_num(c, "io_uring", uring);
	ctl_counters(c, &sum);
	ctl_add(c, "\n");
}

static int ctl_by_name(const void *a, const void *b)
{
	return strcmp((*(struct rt_tenant *const *)a)->name, (*(struct rt_tenant *const *)b)->name);
}

static void ctl_reply_error(struct ctl_conn *c, const char *msg)
{
	ctl_field(c, "ok", "0");
	ctl_field(c, "error", msg);
	ctl_add(c, "\n");
}

/* A closed set of requests, each only reading counters. */
static void ctl_handle(struct ctl_conn *c)
{
	struct router *R = c->R;
	char verb[16] = "", name[64] = "";
	struct rt_tenant **all;
	size_t n = 0;

	c->req[c->req_len] = 0;
	if (sscanf(c->req, "%15s %63s", verb, name) < 1 || strcmp(verb, "stats"))
		return ctl_reply_error(c, "unknown request");
	if (name[0] && !fwd_tenant_find(R, name))
		return ctl_reply_error(c, "no tenant with networking by that name");
	all = calloc(R->n_tenants + 1, sizeof *all);
	if (!all)
		return ctl_reply_error(c, "out of memory");
	for (struct rt_tenant *t = R->tenants; t && n < R->n_tenants; t = t->next)
		if (!name[0] || !strcmp(t->name, name))
			all[n++] = t;
	qsort(all, n, sizeof *all, ctl_by_name);
	ctl_field(c, "ok", "1");
	ctl_add(c, "\n");
	ctl_router(c);
	for (size_t i = 0; i < n; i++)
		ctl_tenant(c, all[i]);
	free(all);
}

static void ctl_close(struct ctl_conn *c)
{
	ev_io_stop(c->R->loop, &c->io);
	ev_timer_stop(c->R->loop, &c->timeout);
	close(c->io.fd);
	free(c->out);
	free(c);
	ctl_conns--;
}

static void ctl_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *c = w->data;

	while (!c->failed && c->out_off < c->out_len) {
		ssize_t n = send(w->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
	ctl_close(c);
}

static void ctl_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_conn *c = w->data;
	ssize_t n = recv(w->fd, c->req + c->req_len, sizeof c->req - 1 - c->req_len, MSG_DONTWAIT);

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0)
		return ctl_close(c);
	c->req_len += (size_t)n;
	if (!memchr(c->req, '\n', c->req_len) && c->req_len < sizeof c->req - 1)
		return;
	ev_io_stop(loop, w);
	ctl_handle(c);
	ev_io_init(w, ctl_write_cb, w->fd, EV_WRITE);
	ev_io_start(loop, w);
}

static void ctl_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ctl_close(w->data);
}

static void ctl_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *R = w->data;
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct ctl_conn *c;

	if (fd < 0)
		return;
	if (ctl_conns >= CTL_MAX_CONN || !(c = calloc(1, sizeof *c))) {
		close(fd);
		return;
	}
	ctl_conns++;
	c->R = R;
	ev_io_init(&c->io, ctl_read_cb, fd, EV_READ);
	c->io.data = c;
	ev_io_start(loop, &c->io);
	ev_timer_init(&c->timeout, ctl_timeout_cb, CTL_TIMEOUT, 0);
	c->timeout.data = c;
	ev_timer_start(loop, &c->timeout);
}

int control_start(struct router *R)
{
	int fd = router_listen(R, ROUTER_CONTROL_SOCK, SOCK_STREAM);

	if (fd < 0) {
		log_error_r(fd, "cannot listen on %s/%s", R->host->state_dir, ROUTER_CONTROL_SOCK);
		return -1;
	}
	ev_io_init(&ctl_listen_w, ctl_accept_cb, fd, EV_READ);
	ctl_listen_w.data = R;
	ev_io_start(R->loop, &ctl_listen_w);
	return 0;
}
