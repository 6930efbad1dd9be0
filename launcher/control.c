/* control: state_dir/launcher.sock, for fiefctl (root only).
 *
 * One request line per connection ("list", "status NAME", "stop NAME",
 * "start NAME", "reload NAME"); the reply is records of key=value fields,
 * one record per line, values percent-encoded, then the connection
 * closes. The first record says "ok=1" or "ok=0 error=...". */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cgroup.h"
#include "launcher.h"
#include "log.h"

#define CONTROL_MAX_REQ 512
#define CONTROL_TIMEOUT 5.0
#define CONTROL_MAX_CONN 64

struct conn {
	struct launcher *L;
	ev_io io;
	ev_timer timeout;
	char req[CONTROL_MAX_REQ];
	size_t req_len;
	char *out;
	size_t out_len, out_cap, out_off;
};

static ev_io control_w;
static int control_conns;

static void out_add(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_add(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = c->out_cap - c->out_len;
		va_start(ap, fmt);
		n = vsnprintf(c->out ? c->out + c->out_len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			c->out_len += (size_t)n;
			return;
		}
		size_t cap = (c->out_cap + (size_t)n + 1) * 2;
		char *p = realloc(c->out, cap);
		if (!p)
			return;
		c->out = p;
		c->out_cap = cap;
	}
}

/* key=value with the value percent-encoded, so a record stays one line. */
static void out_field(struct conn *c, const char *key, const char *val)
{
	out_add(c, "%s%s=", c->out_len && c->out[c->out_len - 1] != '\n' ? " " : "", key);
	for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
		if (*p <= ' ' || *p == '%' || *p == '=' || *p >= 0x7f)
			out_add(c, "%%%02X", *p);
		else
			out_add(c, "%c", *p);
	}
}

static void out_num(struct conn *c, const char *key, unsigned long long v)
{
	char buf[32];

	snprintf(buf, sizeof buf, "%llu", v);
	out_field(c, key, buf);
}

static void out_tenant(struct conn *c, struct tenant *t)
{
	struct cg_usage u = { 0 };
	char addr[16] = "";
	time_t up = t->pid && t->started_wall ? time(NULL) - t->started_wall : 0;

	if (t->pid)
		cg_usage(t->name, &u);
	if (t->cfg && t->cfg->network.has_address)
		ipv4_format(t->cfg->network.address, addr, sizeof addr);
	out_field(c, "name", t->name);
	out_field(c, "state", tenant_state_name(t->state));
	out_num(c, "pid", (unsigned long long)t->pid);
	out_num(c, "uid", t->uid == (uid_t)-1 ? 0 : t->uid);
	out_num(c, "uptime", (unsigned long long)up);
	out_num(c, "restarts", t->restarts);
	out_num(c, "crashes", t->crashes);
	out_num(c, "memory", u.memory);
	out_num(c, "memory_limit", t->cfg ? t->cfg->limits.memory : 0);
	out_num(c, "cpu_usec", u.cpu_usec);
	out_num(c, "cpu_limit_millis", t->cfg ? (unsigned long long)t->cfg->limits.cpu_millis : 0);
	out_num(c, "pids", u.pids);
	out_num(c, "pids_limit", t->cfg ? (unsigned long long)t->cfg->limits.pids : 0);
	out_num(c, "oom_kills", u.oom_kills);
	out_field(c, "distro", t->cfg ? t->cfg->distro : "");
	out_field(c, "address", addr);
	out_field(c, "held", t->held ? "1" : "0");
	out_field(c, "last_error", t->last_error);
	out_add(c, "\n");
}

static void reply_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply_error(struct conn *c, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	out_field(c, "ok", "0");
	out_field(c, "error", msg);
	out_add(c, "\n");
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct tenant *const *)a)->name, (*(struct tenant *const *)b)->name);
}

static void control_list(struct conn *c)
{
	struct tenant **all = calloc(c->L->n_tenants + 1, sizeof *all);
	size_t n = 0;

	if (!all)
		return reply_error(c, "out of memory");
	for (struct tenant *t = c->L->tenants; t && n < c->L->n_tenants; t = t->next_t)
		all[n++] = t;
	qsort(all, n, sizeof *all, by_name);
	out_field(c, "ok", "1");
	out_add(c, "\n");
	for (size_t i = 0; i < n; i++)
		out_tenant(c, all[i]);
	free(all);
}

/* Every request is a closed set of verbs on tenants the launcher knows. */
static void control_handle(struct conn *c)
{
	struct launcher *L = c->L;
	char verb[16] = "", name[64] = "";
	struct tenant *t = NULL;

	c->req[c->req_len] = 0;
	if (sscanf(c->req, "%15s %63s", verb, name) < 1)
		return reply_error(c, "empty request");
	if (!strcmp(verb, "list"))
		return control_list(c);
	if (strcmp(verb, "status") && strcmp(verb, "stop") && strcmp(verb, "start") &&
	    strcmp(verb, "reload"))
		return reply_error(c, "unknown request '%s'", verb);
	if (!name[0] || !(t = tenant_find(L, name)))
		return reply_error(c, "no tenant named '%s'", name);
	if (!strcmp(verb, "stop")) {
		t->held = true;
		tenant_stop(t, NEXT_NONE);
	} else if (!strcmp(verb, "start")) {
		t->held = false;
		t->crashes = 0;
		if (t->state == TS_STOPPED || t->state == TS_FAILED || t->state == TS_BACKOFF) {
			ev_timer_stop(L->loop, &t->timer_w);
			tenant_start(t);
		}
	} else if (!strcmp(verb, "reload")) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s.yaml", L->host->tenants_dir, t->name);
		/* Forget the bytes so the file is taken again even if unchanged. */
		free(t->file_buf);
		t->file_buf = NULL;
		t->held = false;
		tenant_apply_file(L, t->name, path);
	}
	out_field(c, "ok", "1");
	out_add(c, "\n");
	out_tenant(c, t);
}

static void conn_close(struct conn *c)
{
	ev_io_stop(c->L->loop, &c->io);
	ev_timer_stop(c->L->loop, &c->timeout);
	close(c->io.fd);
	free(c->out);
	free(c);
	control_conns--;
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	while (c->out_off < c->out_len) {
		ssize_t n = send(w->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
	conn_close(c);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	ssize_t n = recv(w->fd, c->req + c->req_len, sizeof c->req - 1 - c->req_len, MSG_DONTWAIT);

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0)
		return conn_close(c);
	c->req_len += (size_t)n;
	if (!memchr(c->req, '\n', c->req_len) && c->req_len < sizeof c->req - 1)
		return;
	ev_io_stop(loop, w);
	control_handle(c);
	ev_io_init(w, conn_write_cb, w->fd, EV_WRITE);
	ev_io_start(loop, w);
}

static void conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	conn_close(w->data);
}

static void control_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct launcher *L = w->data;
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct conn *c;

	if (fd < 0)
		return;
	if (control_conns >= CONTROL_MAX_CONN || !(c = calloc(1, sizeof *c))) {
		close(fd);
		return;
	}
	control_conns++;
	c->L = L;
	ev_io_init(&c->io, conn_read_cb, fd, EV_READ);
	c->io.data = c;
	ev_io_start(loop, &c->io);
	ev_timer_init(&c->timeout, conn_timeout_cb, CONTROL_TIMEOUT, 0);
	c->timeout.data = c;
	ev_timer_start(loop, &c->timeout);
}

int control_start(struct launcher *L)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd;

	if (launcher_path(L, sa.sun_path, sizeof sa.sun_path, "launcher.sock") < 0)
		return -1;
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* Created 0600 from the start: no window where others may connect. */
	old = umask(0177);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) {
		umask(old);
		log_error_r(errno, "control socket %s", sa.sun_path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	umask(old);
	ev_io_init(&control_w, control_accept_cb, fd, EV_READ);
	control_w.data = L;
	ev_io_start(L->loop, &control_w);
	return 0;
}
