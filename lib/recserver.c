/* recserver: one request in, one reply out, then close (recserver.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "recserver.h"

struct rec_reply {
	struct rec_server *s;
	ev_io io;
	ev_timer timeout;
	char *req;                   /* max_req + 1 bytes */
	size_t req_len;
	char *out;
	size_t out_len, out_cap, out_off;
	bool failed;                 /* out of memory: no reply */
};

/* Room for n more bytes and a NUL; false once memory has run out. */
static bool rec_room(struct rec_reply *r, size_t n)
{
	size_t cap;
	char *p;

	if (r->failed)
		return false;
	if (n < r->out_cap - r->out_len)
		return true;
	cap = (r->out_len + n + 1) * 2;
	if (!(p = realloc(r->out, cap))) {
		r->failed = true;
		return false;
	}
	r->out = p;
	r->out_cap = cap;
	return true;
}

void rec_add(struct rec_reply *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->failed)
		return;
	va_start(ap, fmt);
	n = vsnprintf(r->out ? r->out + r->out_len : NULL, r->out_cap - r->out_len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= r->out_cap - r->out_len) {
		if (!rec_room(r, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(r->out + r->out_len, r->out_cap - r->out_len, fmt, ap);
		va_end(ap);
	}
	r->out_len += (size_t)n;
}

void rec_write(struct rec_reply *r, const void *p, size_t n)
{
	if (!n || !rec_room(r, n))
		return;
	memcpy(r->out + r->out_len, p, n);
	r->out_len += n;
}

void rec_field(struct rec_reply *r, const char *key, const char *val)
{
	rec_add(r, "%s%s=", r->out_len && r->out[r->out_len - 1] != '\n' ? " " : "", key);
	for (const unsigned char *p = (const unsigned char *)val; *p; p++)
		rec_add(r, *p <= ' ' || *p == '%' || *p == '=' || *p >= 0x7f ? "%%%02X" : "%c", *p);
}

void rec_num(struct rec_reply *r, const char *key, unsigned long long v)
{
	char buf[24];

	snprintf(buf, sizeof buf, "%llu", v);
	rec_field(r, key, buf);
}

void rec_end(struct rec_reply *r)
{
	rec_add(r, "\n");
}

void rec_ok(struct rec_reply *r)
{
	rec_field(r, "ok", "1");
	rec_end(r);
}

void rec_error(struct rec_reply *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	rec_field(r, "ok", "0");
	rec_field(r, "error", msg);
	rec_end(r);
}

static void rec_close(struct rec_reply *r)
{
	ev_io_stop(r->s->loop, &r->io);
	ev_timer_stop(r->s->loop, &r->timeout);
	close(r->io.fd);
	r->s->conns--;
	free(r->req);
	free(r->out);
	free(r);
}

static void rec_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rec_reply *r = w->data;

	while (!r->failed && r->out_off < r->out_len) {
		ssize_t n = send(w->fd, r->out + r->out_off, r->out_len - r->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		r->out_off += (size_t)n;
	}
	rec_close(r);
}

static void rec_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rec_reply *r = w->data;
	struct rec_server *s = r->s;
	size_t seen = r->req_len;
	ssize_t n = recv(w->fd, r->req + seen, s->max_req - seen, MSG_DONTWAIT);

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0)
		return rec_close(r);
	r->req_len += (size_t)n;
	r->req[r->req_len] = 0;
	if (r->req_len < s->max_req &&
	    !(s->whole ? s->whole(r->req, r->req_len, seen) : memchr(r->req + seen, '\n', (size_t)n) != NULL))
		return;
	ev_io_stop(loop, w);
	s->handle(r, r->req, s->data);
	ev_io_init(w, rec_write_cb, w->fd, EV_WRITE);
	ev_io_start(loop, w);
}

static void rec_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	rec_close(w->data);
}

static void rec_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rec_server *s = w->data;
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct rec_reply *r = NULL;

	if (fd < 0)
		return;
	if (s->conns >= s->max_conns || !(r = calloc(1, sizeof *r)) || !(r->req = malloc(s->max_req + 1))) {
		free(r);
		close(fd);
		return;
	}
	s->conns++;
	r->s = s;
	ev_io_init(&r->io, rec_read_cb, fd, EV_READ);
	r->io.data = r;
	ev_io_start(loop, &r->io);
	ev_timer_init(&r->timeout, rec_timeout_cb, s->timeout, 0);
	r->timeout.data = r;
	ev_timer_start(loop, &r->timeout);
}

void rec_server_start(struct rec_server *s, int fd)
{
	s->conns = 0;
	if (!s->max_req)
		s->max_req = REC_MAX_REQ;
	ev_io_init(&s->w, rec_accept_cb, fd, EV_READ);
	s->w.data = s;
	ev_io_start(s->loop, &s->w);
}
