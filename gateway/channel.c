/* channel: session and direct-tcpip channels, relayed to tenant fds. */
#include "channel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>            /* struct tcp_info with tcpi_min_rtt */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "fdpass.h"
#include "gateway.h"
#include "log.h"
#include "session.h"
#include "sshmsg.h"

static unsigned chan_last_id;

/* ---- small buffers ---- */

/* Keep what the destination did not take. Allocated only while bytes
 * wait, so an idle channel holds no buffer at all. */
static int buf_keep(struct gw_buf *b, const uint8_t *p, size_t n)
{
	if (b->len == 0) {
		free(b->data);
		b->data = malloc(n);
		if (!b->data)
			return -1;
		memcpy(b->data, p, n);
		b->off = 0;
		b->len = n;
		return 0;
	}
	/* Only ever called on an empty buffer: one chunk at a time. */
	return -1;
}

static void buf_consume(struct gw_buf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0) {
		free(b->data);
		b->data = NULL;
		b->off = 0;
	}
}

static void buf_free(struct gw_buf *b)
{
	free(b->data);
	*b = (struct gw_buf){ 0 };
}

static void chan_watch(ev_io *w, bool on)
{
	if (on && !ev_is_active(w))
		ev_io_start(W.loop, w);
	else if (!on && ev_is_active(w))
		ev_io_stop(W.loop, w);
}

static struct gw_channel *chan_find(struct gw_session *s, ssh_channel ch)
{
	for (struct gw_channel *c = s->channels; c; c = c->next)
		if (c->ch == ch && ch)
			return c;
	return NULL;
}

/* ---- libssh callbacks: they only record, or write to a tenant fd ---- */

/* The tenant will take nothing more: drop what is buffered, like a write
 * to a closed pipe, and stop accepting client data for it. */
static void chan_in_broken(struct gw_channel *c)
{
	buf_free(&c->to_tenant);
	c->in_done = true;
	if (c->in_fd >= 0 && !c->out.shared) {
		ev_io_stop(W.loop, &c->in_io);
		close(c->in_fd);
		c->in_fd = -1;
	}
}

static int chan_data_cb(ssh_session ss, ssh_channel ch, void *data, uint32_t len, int is_stderr,
			void *u)
{
	struct gw_channel *c = u;
	ssize_t n;

	/* Nobody will ever read it: consume, so the window keeps moving. */
	if (is_stderr || c->in_done)
		return (int)len;
	if (!c->running || c->to_tenant.len) {
		c->backlog = len;
		return 0;
	}
	n = write(c->in_fd, data, len);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		chan_in_broken(c);
		c->backlog = 0;
		return (int)len;
	}
	if (n < 0)
		n = 0;
	c->backlog = len - (uint32_t)n;
	return (int)n;
}

static void chan_eof_cb(ssh_session ss, ssh_channel ch, void *u)
{
	struct gw_channel *c = u;

	c->client_eof = true;
}

static void chan_close_cb(ssh_session ss, ssh_channel ch, void *u)
{
	struct gw_channel *c = u;

	c->client_closed = true;
}

struct chan_signame {
	const char *name;
	int signo;
};

/* RFC 4254 section 6.10 names, plus job control. */
static const struct chan_signame chan_signals[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
	{ "ABRT", SIGABRT }, { "FPE", SIGFPE }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
	{ "SEGV", SIGSEGV }, { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },
	{ "TERM", SIGTERM }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "TSTP", SIGTSTP },
	{ "TTIN", SIGTTIN }, { "TTOU", SIGTTOU }, { "WINCH", SIGWINCH },
};

static void chan_signal_cb(ssh_session ss, ssh_channel ch, const char *name, void *u)
{
	struct gw_channel *c = u;

	for (size_t i = 0; name && i < sizeof chan_signals / sizeof chan_signals[0]; i++)
		if (!strcmp(name, chan_signals[i].name)) {
			if (agentc_signal(&c->agent, chan_signals[i].signo) < 0)
				log_debug("%s: channel %u: signal %s not delivered", c->s->tenant, c->id, name);
			return;
		}
	log_debug("%s: channel %u: unknown signal name refused", c->s->tenant, c->id);
}

/* ---- creation ---- */

static void chan_retry_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void chan_linger_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void chan_hold_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void chan_pace_cb(struct ev_loop *loop, ev_timer *t, int revents);

static struct gw_channel *chan_new(struct gw_session *s, enum chan_kind kind)
{
	struct gw_channel *c;

	if (s->n_channels >= SESSION_MAX_CHANNELS)
		return NULL;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->s = s;
	c->id = ++chan_last_id;
	c->kind = kind;
	c->in_fd = -1;
	c->agent.fd = -1;
	c->out = (struct gw_out){ .c = c, .fd = -1 };
	c->err = (struct gw_out){ .c = c, .fd = -1, .is_stderr = true, .eof = true };
	ev_timer_init(&c->out.hold, chan_hold_cb, CHAN_BATCH_WAIT, 0);
	c->out.hold.data = &c->out;
	ev_timer_init(&c->err.hold, chan_hold_cb, CHAN_BATCH_WAIT, 0);
	c->err.hold.data = &c->err;
	c->ws = (struct winsize){ .ws_row = 24, .ws_col = 80 };
	ev_timer_init(&c->retry, chan_retry_cb, 0.02, 0);
	ev_timer_init(&c->pace, chan_pace_cb, CHAN_PACE_STALL, 0);
	c->pace.data = c;
	c->retry.data = c;
	ev_timer_init(&c->linger, chan_linger_cb, CHAN_PTY_QUIET, CHAN_PTY_QUIET);
	c->linger.data = c;
	c->next = s->channels;
	if (s->channels)
		s->channels->prev = c;
	s->channels = c;
	s->n_channels++;
	return c;
}

/* Callbacks go on before the channel can see its first packet. */
static void chan_bind(struct gw_channel *c, ssh_channel ch)
{
	c->ch = ch;
	c->cb = (struct ssh_channel_callbacks_struct){
		.userdata = c,
		.channel_data_function = chan_data_cb,
		.channel_eof_function = chan_eof_cb,
		.channel_close_function = chan_close_cb,
		.channel_signal_function = chan_signal_cb,
	};
	ssh_callbacks_init(&c->cb);
	ssh_set_channel_callbacks(ch, &c->cb);
}

void chan_open_session(struct gw_session *s, ssh_message m)
{
	struct gw_channel *c = chan_new(s, CK_SESSION);
	ssh_channel ch;

	if (!c) {
		ssh_message_reply_default(m);
		ssh_message_free(m);
		return;
	}
	ch = ssh_message_channel_request_open_reply_accept(m);
	ssh_message_free(m);
	if (!ch) {
		c->dead = true;
		return;
	}
	chan_bind(c, ch);
	snprintf(c->what, sizeof c->what, "session");
}

/* ---- tenant fds: reading, writing ---- */

static void chan_out_cb(struct ev_loop *loop, ev_io *w, int revents);
static void chan_in_cb(struct ev_loop *loop, ev_io *w, int revents);
static void chan_agent_cb(struct agentc *a, enum agentc_event ev, int *fds, size_t nfds,
			  const struct proto_exit *exit, const char *why);

static void chan_out_init(struct gw_out *o, int fd, bool shared)
{
	o->fd = fd;
	o->eof = false;
	o->shared = shared;
	ev_io_init(&o->io, chan_out_cb, fd, EV_READ);
	o->io.data = o;
}

/* What our own send took from the window: not to be mistaken for an
 * adjust, which libssh may also have taken in while it wrote. */
static void chan_sent(struct gw_channel *c, uint32_t before, uint32_t w)
{
	c->win_last = w < before ? before - w : 0;
	c->since_adjust = c->since_adjust + w < c->since_adjust ? UINT32_MAX : c->since_adjust + w;
}

/* Hand bytes to the channel; whatever it does not take waits in pend. */
static void chan_send(struct gw_channel *c, struct gw_out *o, const uint8_t *p, size_t n)
{
	uint32_t before = ssh_channel_window_size(c->ch);
	int w;

	w = o->is_stderr ? ssh_channel_write_stderr(c->ch, p, (uint32_t)n)
			 : ssh_channel_write(c->ch, p, (uint32_t)n);
	if (w < 0)
		w = 0;                   /* the session is failing: settle will see it */
	chan_sent(c, before, (uint32_t)w);
	c->last_output = ev_now(W.loop);
	o->run = c->last_output - o->last_send <= CHAN_BATCH_GAP ? o->run + n : n;
	o->last_send = c->last_output;
	if ((size_t)w < n && buf_keep(&o->pend, p + w, n - (size_t)w) < 0) {
		log_error("%s: channel %u: out of memory; closing it", c->s->tenant, c->id);
		o->eof = true;
	}
}

/* How much may go to the client now: its window, but not all of it.
 * OpenSSH's client grants 2 MiB and hands window back as its consumer
 * (sftp, a terminal, a pipe) takes the bytes; a server that fills the
 * whole window leaves up to 2 MiB waiting in the client's channel buffer,
 * and the client pays for that backlog on every packet (the buffer is
 * compacted and regrown by copying). On a 1 GiB sftp get the client's CPU
 * per MiB about halves with a 512 KiB cap: the bytes wait in the tenant's
 * pipe instead, which costs nobody anything.
 *
 * A cap must never leave a client waiting for bytes it will not ask for
 * again: a client that adjusts only once its window runs low would stall.
 * So the 512 KiB cap is kept for clients seen adjusting early: with more
 * than half their window left, or again after less than a quarter of it
 * (OpenSSH hands back what its consumer took every few packets, paramiko
 * every tenth of the window). Any other client is held only past half
 * its window plus a margin, which the usual rule (adjust below half)
 * answers. A client held at the cap for CHAN_PACE_STALL without an adjust
 * loosens it one step (512 KiB, then half, then none). */
/* A cap of C bytes ahead of the adjusts lets at most C per round trip
 * through: 512 KiB is 500 MiB/s at 1 ms, but 10 MiB/s to a customer 50 ms
 * away, whose client OpenSSH's own 2 MiB window would let run four times
 * faster. So the cap is only for a client whose TCP round trip is under
 * CHAN_PACE_NEAR_RTT: where its backlog, not the path, is what a full
 * window costs. The kernel's minimum RTT (looked at once a second) is
 * the path's; the smoothed one also holds the peer's delayed ACKs, tens
 * of ms on loopback to a slow reader. */
static bool chan_near(struct gw_channel *c)
{
	ev_tstamp now = ev_now(W.loop);
	struct tcp_info ti;
	socklen_t len = sizeof ti;

	/* Test hook (the gateway's environment, which only root sets): a
	 * threshold of 0 makes every client far, as on a long path. */
	static long near_rtt = -1;

	if (near_rtt < 0) {
		const char *e = getenv("FIEF_GW_PACE_NEAR_RTT");
		near_rtt = e && *e ? strtol(e, NULL, 10) : CHAN_PACE_NEAR_RTT;
		if (near_rtt < 0)
			near_rtt = CHAN_PACE_NEAR_RTT;
	}
	if (c->rtt_seen && now - c->rtt_seen < 1.0)
		return c->near;
	c->rtt_seen = now;
	memset(&ti, 0, sizeof ti);
	c->near = getsockopt(c->s->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
		  len >= offsetof(struct tcp_info, tcpi_min_rtt) + sizeof ti.tcpi_min_rtt &&
		  (long)ti.tcpi_min_rtt < near_rtt;
	return c->near;
}

static uint32_t chan_cap(struct gw_channel *c)
{
	uint32_t half = c->win_peak / 2 + CHAN_PACE_MARGIN;

	if (c->pace_off || !chan_near(c))
		return UINT32_MAX;
	if (c->early && !c->not_early)
		return CHAN_INFLIGHT;
	return half > CHAN_INFLIGHT ? half : CHAN_INFLIGHT;
}

static uint32_t chan_room(struct gw_channel *c)
{
	uint32_t win = ssh_channel_window_size(c->ch), used, cap;

	/* The window grew: an adjust came in. The client is early if it
	 * came with more than half of the window still open, or if less
	 * than a quarter of it was sent since the adjust before (a client
	 * that waits for half its window to go sends one adjust per half). */
	if (win > c->win_last && c->win_peak) {
		if (c->win_last > c->win_peak / 2 || (c->adjusted && c->since_adjust < c->win_peak / 4))
			c->early = true;
		c->adjusted = true;
		c->since_adjust = 0;
	}
	c->win_last = win;
	if (win > c->win_peak)
		c->win_peak = win;
	cap = chan_cap(c);
	used = c->win_peak - win;
	if (used >= cap)
		return 0;
	return win < cap - used ? win : cap - used;
}

/* The window is open, but the cap holds the channel back. */
static bool chan_paced(struct gw_channel *c)
{
	return !c->pace_off && ssh_channel_window_size(c->ch) > 0 && chan_room(c) == 0;
}

static void chan_pace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_channel *c = t->data;

	if (c->ch && chan_paced(c)) {
		if (c->early && !c->not_early)
			c->not_early = true;
		else
			c->pace_off = true;
		log_debug("%s: channel %u: no window adjust at the cap; loosening it", c->s->tenant, c->id);
	}
	session_settle(c->s);
}

/* Read as much as the client's window allows, in one chunk: a pty gives
 * at most a few KiB per read, and fewer, larger packets cost less. */
static void chan_read_out(struct gw_channel *c, struct gw_out *o)
{
	uint32_t win = chan_room(c);
	size_t room = win < GW_SCRATCH ? win : GW_SCRATCH, len = 0;

	while (len < room) {
		size_t want = room - len;
		ssize_t n = read(o->fd, W.scratch + len, want);

		if (n > 0) {
			len += (size_t)n;
			/* A pipe or a socket gave all it had. A pty master
			 * hands out at most 4 KiB per read, and a kernel
			 * worker refills it meanwhile, often part way: read
			 * on until it is empty. Stopping at the first short
			 * read sent more, smaller packets and left the writer
			 * blocked longer (pty output 5-8 % slower, side by
			 * side); a keystroke costs one read more. */
			if ((size_t)n < want && !c->pty)
				break;
			continue;
		}
		/* EIO is how a pty master says every slave is closed. */
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			o->eof = true;
		break;
	}
	if (len)
		chan_send(c, o, W.scratch, len);
}

/* In a stream from a pipe or a socket, a readable fd holding less than a
 * batch means the writer is slower than we are: reading it now would
 * send a small packet per write of the writer (sftp-server's replies are
 * caught a page or two at a time). Give it a moment to fill the pipe
 * instead. Keystrokes and lone replies are never streams; a pty is read
 * as it comes. */
static bool chan_hold_back(struct gw_channel *c, struct gw_out *o)
{
	uint32_t win;
	int avail;

	if (c->pty || c->agent_gone || o->run < CHAN_BATCH_RUN ||
	    ev_now(W.loop) - o->last_send > CHAN_BATCH_GAP)
		return false;
	win = ssh_channel_window_size(c->ch);
	if (ioctl(o->fd, FIONREAD, &avail) < 0 || (size_t)avail >= CHAN_BATCH_MIN || (uint32_t)avail >= win)
		return false;
	ev_io_stop(W.loop, &o->io);
	ev_timer_set(&o->hold, CHAN_BATCH_WAIT, 0);
	ev_timer_start(W.loop, &o->hold);
	return true;
}

static void chan_out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_out *o = w->data;
	struct gw_channel *c = o->c;

	if (chan_hold_back(c, o))
		return;
	chan_read_out(c, o);
	session_settle(c->s);
}

static void chan_flush_out(struct gw_channel *c, struct gw_out *o)
{
	while (o->pend.len) {
		uint32_t win = ssh_channel_window_size(c->ch);
		size_t n = o->pend.len < win ? o->pend.len : win;
		int w;

		if (n == 0)
			return;
		w = o->is_stderr ? ssh_channel_write_stderr(c->ch, o->pend.data + o->pend.off, (uint32_t)n)
				 : ssh_channel_write(c->ch, o->pend.data + o->pend.off, (uint32_t)n);
		if (w <= 0)
			return;          /* re-keying: try again after the next packet */
		chan_sent(c, win, (uint32_t)w);
		buf_consume(&o->pend, (size_t)w);
	}
}

/* Read a tenant fd only when its bytes can go straight on: nothing of
 * ours pending, the window open, the socket not backed up. */
static bool chan_may_read(struct gw_channel *c, struct gw_out *o, bool backed_up)
{
	return o->fd >= 0 && !o->eof && o->pend.len == 0 && c->ch && !c->eof_sent &&
	       !c->client_closed && !backed_up && !ev_is_active(&o->hold) &&
	       chan_room(c) > 0;
}

static void chan_hold_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_out *o = t->data;
	struct gw_channel *c = o->c;

	/* A settle since the hold began may have paused or closed it. */
	if (chan_may_read(c, o, c->s->backed_up))
		chan_read_out(c, o);
	session_settle(c->s);
}

static void chan_close_out(struct gw_out *o)
{
	ev_io_stop(W.loop, &o->io);
	ev_timer_stop(W.loop, &o->hold);
	if (o->fd >= 0 && !o->shared)
		close(o->fd);
	o->fd = -1;
}

/* Client to tenant: first what we hold, then what libssh holds. */
static void chan_drain_in(struct gw_channel *c)
{
	while (c->in_fd >= 0 && !c->in_done) {
		ssize_t n;
		int k;

		if (c->to_tenant.len) {
			n = write(c->in_fd, c->to_tenant.data + c->to_tenant.off, c->to_tenant.len);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (n < 0) {
				chan_in_broken(c);
				return;
			}
			buf_consume(&c->to_tenant, (size_t)n);
			if (c->to_tenant.len)
				return;
			continue;
		}
		if (!c->backlog || !c->ch)
			return;
		k = ssh_channel_read_nonblocking(c->ch, W.scratch,
						 c->backlog < GW_SCRATCH ? c->backlog : GW_SCRATCH, 0);
		if (k <= 0) {
			c->backlog = 0;
			return;
		}
		c->backlog -= (uint32_t)k < c->backlog ? (uint32_t)k : c->backlog;
		n = write(c->in_fd, W.scratch, (size_t)k);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			chan_in_broken(c);
			return;
		}
		if (n < 0)
			n = 0;
		if (n < k && buf_keep(&c->to_tenant, W.scratch + n, (size_t)(k - n)) < 0) {
			chan_in_broken(c);
			return;
		}
	}
}

static void chan_in_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_channel *c = w->data;

	chan_drain_in(c);
	session_settle(c->s);
}

/* The client sent EOF and all its bytes are in: let the tenant see EOF. */
static void chan_finish_in(struct gw_channel *c)
{
	if (!c->client_eof || c->in_done || c->in_fd < 0 || c->backlog || c->to_tenant.len)
		return;
	if (c->pty)
		return;                  /* a terminal has no EOF but ^D, the client's to send */
	c->in_done = true;
	ev_io_stop(W.loop, &c->in_io);
	if (c->out.shared) {
		shutdown(c->in_fd, SHUT_WR);
	} else {
		close(c->in_fd);
		c->in_fd = -1;
	}
}

/* ---- starting a session: the agent ---- */

/* Bigger pipes, fewer wake-ups: each one moves up to a scratch chunk.
 * Best effort (the tenant's pipe quota may say no). */
static void chan_grow_pipe(int fd)
{
	fcntl(fd, F_SETPIPE_SZ, CHAN_PIPE_SIZE);
}

static void chan_attach(struct gw_channel *c, int *fds)
{
	bool single = c->pty || c->kind == CK_DIRECT;

	if (!single)
		for (int i = 0; i < 3; i++)
			chan_grow_pipe(fds[i]);
	c->in_fd = fds[0];
	ev_io_init(&c->in_io, chan_in_cb, c->in_fd, EV_WRITE);
	c->in_io.data = c;
	chan_out_init(&c->out, single ? fds[0] : fds[1], single);
	if (!single) {
		chan_out_init(&c->err, fds[2], false);
		c->err.is_stderr = true;
	}
	/* A window change may have come while the agent was starting. */
	if (c->pty)
		ioctl(c->in_fd, TIOCSWINSZ, &c->ws);
	c->running = true;
	c->last_output = ev_now(W.loop);
}

static void chan_run_held(struct gw_channel *c);
static void chan_handle(struct gw_channel *c, ssh_message m);

static void chan_agent_ok(struct gw_channel *c, int *fds)
{
	if (c->kind == CK_DIRECT) {
		ssh_channel ch = ssh_message_channel_request_open_reply_accept(c->pending);

		/* The agent's part is over: the socket is ours now. */
		agentc_close(&c->agent);
		ssh_message_free(c->pending);
		c->pending = NULL;
		if (!ch) {
			fdpass_close_all(fds, 1);
			c->dead = true;
			return;
		}
		chan_bind(c, ch);
		chan_attach(c, fds);
		log_info("%s: channel %u: direct-tcpip connected", c->s->tenant, c->id);
		return;
	}
	if (c->client_closed) {
		/* Too late: the client has closed the channel meanwhile. */
		fdpass_close_all(fds, c->pty ? 1 : 3);
		ssh_message_free(c->pending);
		c->pending = NULL;
		return;
	}
	chan_attach(c, fds);
	ssh_message_channel_request_reply_success(c->pending);
	ssh_message_free(c->pending);
	c->pending = NULL;
	log_info("%s: channel %u: %s started%s", c->s->tenant, c->id, c->what, c->pty ? " on a pty" : "");
	chan_run_held(c);
}

static int chan_agent_send(struct gw_channel *c);

/* A busy agent (its backlog or its limit of new requests full) clears up
 * in moments: try again a few times, a little later each time. */
static bool chan_retry_later(struct gw_channel *c)
{
	double delay;

	if (c->tries >= CHAN_AGENT_TRIES)
		return false;
	delay = 0.02 * (1 << c->tries);
	c->tries++;
	ev_timer_set(&c->retry, delay < 0.5 ? delay : 0.5, 0);
	ev_timer_start(W.loop, &c->retry);
	return true;
}

static void chan_agent_failed(struct gw_channel *c, const char *why)
{
	log_info("%s: channel %u: %s refused by the tenant: %s", c->s->tenant, c->id, c->what, why);
	ssh_message_reply_default(c->pending);
	ssh_message_free(c->pending);
	c->pending = NULL;
	if (c->kind == CK_DIRECT)
		c->dead = true;
	else
		chan_run_held(c);
}

static void chan_linger_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_channel *c = t->data;
	ev_tstamp now = ev_now(loop);

	/* The shell is gone; a background job may hold the pty open. */
	if (now - c->last_output >= CHAN_PTY_QUIET || now - c->exited_at >= CHAN_PTY_LINGER) {
		ev_timer_stop(loop, t);
		c->out.eof = true;
	}
	session_settle(c->s);
}

static void chan_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_channel *c = t->data;
	int r = chan_agent_send(c);

	if (r < 0 && (r != -EAGAIN || !chan_retry_later(c)))
		chan_agent_failed(c, strerror(-r));
	session_settle(c->s);
}

static void chan_agent_cb(struct agentc *a, enum agentc_event ev, int *fds, size_t nfds,
			  const struct proto_exit *exit, const char *why)
{
	struct gw_channel *c = a->data;

	switch (ev) {
	case AGENTC_OK:
		chan_agent_ok(c, fds);
		break;
	case AGENTC_FAILED:
		if (a->code != PROTO_E_BUSY || !chan_retry_later(c))
			chan_agent_failed(c, why);
		break;
	case AGENTC_EXIT:
		c->exited = true;
		c->status = *exit;
		/* fall through */
	case AGENTC_GONE:
		c->agent_gone = true;
		c->exited_at = ev_now(W.loop);
		if (c->pty)
			ev_timer_start(W.loop, &c->linger);
		break;
	}
	session_settle(c->s);
}

/* ---- requests ---- */

/* ssh.accept_env entries are names, or prefixes ending in '*'. */
static bool chan_env_match(const char *pattern, const char *name)
{
	size_t n = strlen(pattern);

	if (n && pattern[n - 1] == '*')
		return !strncmp(pattern, name, n - 1);
	return !strcmp(pattern, name);
}

static bool chan_env_allowed(struct gw_channel *c, const char *name)
{
	const struct string_vec *accept = &c->s->auth.accept_env;

	if (!strcmp(name, "LANG") || !strcmp(name, "TERM") || !strncmp(name, "LC_", 3))
		return true;
	for (size_t i = 0; i < accept->n; i++)
		if (chan_env_match(accept->v[i], name))
			return true;
	return false;
}

static bool chan_env(struct gw_channel *c, ssh_message m)
{
	const char *name = ssh_message_channel_request_env_name(m);
	const char *value = ssh_message_channel_request_env_value(m);
	size_t nl, vl;
	char *e;

	if (!name || !value || c->started || c->n_env >= CHAN_MAX_ENV)
		return false;
	nl = strlen(name);
	vl = strlen(value);
	if (nl + vl + 2 > PROTO_MAX_ENV_LEN || !chan_env_allowed(c, name))
		return false;
	e = malloc(nl + vl + 2);
	if (!e)
		return false;
	memcpy(e, name, nl);
	e[nl] = '=';
	memcpy(e + nl + 1, value, vl + 1);
	/* The agent enforces the same rules; refusing here keeps the
	 * request from failing as a whole later. */
	if (proto_env_check(e) < 0) {
		free(e);
		return false;
	}
	c->env[c->n_env++] = e;
	return true;
}

static uint16_t chan_clamp(int v, int max)
{
	return v < 0 ? 0 : v > max ? (uint16_t)max : (uint16_t)v;
}

static bool chan_pty_req(struct gw_channel *c, ssh_message m)
{
	const char *term = NULL;
	int cols, rows, xp, yp;

	if (c->started || c->pty)
		return false;
	if (c->s->auth.grant.no_pty) {
		log_info("%s: channel %u: pty refused (no-pty)", c->s->tenant, c->id);
		return false;
	}
	sshmsg_pty(m, &term, &cols, &rows, &xp, &yp);
	if (!term || !proto_term_ok(term))
		return false;
	snprintf(c->term, sizeof c->term, "%s", term);
	c->ws = (struct winsize){ chan_clamp(rows, PROTO_MAX_ROWS), chan_clamp(cols, PROTO_MAX_COLS),
				  chan_clamp(xp, PROTO_MAX_PIXELS), chan_clamp(yp, PROTO_MAX_PIXELS) };
	c->pty = true;
	return true;
}

static bool chan_window_change(struct gw_channel *c, ssh_message m)
{
	int cols, rows, xp, yp;

	if (!c->pty)
		return false;
	sshmsg_pty(m, NULL, &cols, &rows, &xp, &yp);
	c->ws = (struct winsize){ chan_clamp(rows, PROTO_MAX_ROWS), chan_clamp(cols, PROTO_MAX_COLS),
				  chan_clamp(xp, PROTO_MAX_PIXELS), chan_clamp(yp, PROTO_MAX_PIXELS) };
	/* The ioctl on the master delivers SIGWINCH to the pty's foreground. */
	if (c->running && c->in_fd >= 0)
		ioctl(c->in_fd, TIOCSWINSZ, &c->ws);
	return true;
}

/* The env a session starts with: the accepted requests, then what sshd
 * sets (SSH_CONNECTION, SSH_CLIENT, SSH_ORIGINAL_COMMAND). */
static size_t chan_build_env(struct gw_channel *c, const char *original, struct proto_env *env,
			     char extra[3][PROTO_MAX_ENV_LEN + 1])
{
	struct gw_session *s = c->s;
	size_t n = 0;

	for (unsigned i = 0; i < c->n_env && n < PROTO_MAX_ENV - 3; i++)
		env->v[n++] = c->env[i];
	snprintf(extra[0], PROTO_MAX_ENV_LEN + 1, "SSH_CONNECTION=%s %d %s %d", s->addr, s->port,
		 s->local_addr, s->local_port);
	snprintf(extra[1], PROTO_MAX_ENV_LEN + 1, "SSH_CLIENT=%s %d %d", s->addr, s->port, s->local_port);
	env->v[n++] = extra[0];
	env->v[n++] = extra[1];
	if (original && strlen(original) + 22 <= PROTO_MAX_ENV_LEN) {
		snprintf(extra[2], PROTO_MAX_ENV_LEN + 1, "SSH_ORIGINAL_COMMAND=%s", original);
		if (proto_env_check(extra[2]) == 0)
			env->v[n++] = extra[2];
	}
	env->n = n;
	return n;
}

/* The request for the agent, from what the channel has gathered. */
static int chan_agent_send(struct gw_channel *c)
{
	static char extra[3][PROTO_MAX_ENV_LEN + 1];
	struct proto_msg req;
	struct proto_env env;

	if (c->kind == CK_DIRECT) {
		req = (struct proto_msg){ .type = PROTO_CONNECT,
					  .u.connect = { .host = c->host, .port = c->port } };
	} else {
		chan_build_env(c, c->original, &env, extra);
		if (c->pty)
			req = (struct proto_msg){ .type = PROTO_PTY, .u.pty = {
				.term = c->term, .rows = c->ws.ws_row, .cols = c->ws.ws_col,
				.xpixel = c->ws.ws_xpixel, .ypixel = c->ws.ws_ypixel,
				.command = c->command, .env = env } };
		else
			req = (struct proto_msg){ .type = PROTO_PIPES,
						  .u.pipes = { .command = c->command, .env = env } };
	}
	return agentc_open(&c->agent, c->s->tenant, &req, CHAN_AGENT_TIMEOUT, chan_agent_cb, c);
}

/* Ask the agent, keeping m to answer once it has replied. A full agent
 * backlog (EAGAIN) is tried again later; other errors refuse m now. */
static bool chan_ask_agent(struct gw_channel *c, ssh_message m)
{
	int r = chan_agent_send(c);

	if (r < 0 && (r != -EAGAIN || !chan_retry_later(c))) {
		log_info("%s: channel %u: %s refused: agent: %s", c->s->tenant, c->id, c->what, strerror(-r));
		return false;
	}
	c->pending = m;
	return true;
}

static bool chan_start(struct gw_channel *c, ssh_message m, const char *what, const char *command)
{
	const char *forced = c->s->auth.grant.command;

	if (c->started)
		return false;
	if (forced) {
		c->original = command[0] ? strdup(command) : NULL;
		command = forced;
	}
	if (strlen(command) > PROTO_MAX_COMMAND || !(c->command = strdup(command)))
		return false;
	snprintf(c->what, sizeof c->what, "%s", what);
	c->started = true;
	return chan_ask_agent(c, m);
}

/* Returns true when m was kept (answered later). */
static bool chan_handle_session(struct gw_channel *c, ssh_message m)
{
	bool ok = false;

	switch (ssh_message_subtype(m)) {
	case SSH_CHANNEL_REQUEST_PTY:
		ok = chan_pty_req(c, m);
		break;
	case SSH_CHANNEL_REQUEST_ENV:
		ok = chan_env(c, m);
		break;
	case SSH_CHANNEL_REQUEST_WINDOW_CHANGE:
		ok = chan_window_change(c, m);
		break;
	case SSH_CHANNEL_REQUEST_SHELL:
		if (chan_start(c, m, "shell", ""))
			return true;
		break;
	case SSH_CHANNEL_REQUEST_EXEC: {
		const char *cmd = ssh_message_channel_request_command(m);
		if (cmd && chan_start(c, m, "exec", cmd))
			return true;
		break;
	}
	case SSH_CHANNEL_REQUEST_SUBSYSTEM: {
		const char *sub = ssh_message_channel_request_subsystem(m);
		if (sub && !strcmp(sub, "sftp") && chan_start(c, m, "sftp", CHAN_SFTP_SERVER))
			return true;
		break;
	}
	default:
		/* x11-req, break and anything unknown: a plain failure. libssh
		 * 0.10 gives no way to tell a break from other requests. */
		break;
	}
	if (ok)
		ssh_message_channel_request_reply_success(m);
	else
		ssh_message_reply_default(m);
	return false;
}

static void chan_handle(struct gw_channel *c, ssh_message m)
{
	if (c->kind == CK_SESSION && chan_handle_session(c, m))
		return;
	if (c->kind != CK_SESSION)
		ssh_message_reply_default(m);
	ssh_message_free(m);
}

/* Requests that queued behind a start, in their order. */
static void chan_run_held(struct gw_channel *c)
{
	while (c->n_held && !c->pending) {
		ssh_message m = c->held[0];

		memmove(&c->held[0], &c->held[1], (c->n_held - 1) * sizeof c->held[0]);
		c->n_held--;
		chan_handle(c, m);
	}
}

void chan_request(struct gw_session *s, ssh_message m)
{
	struct gw_channel *c = chan_find(s, ssh_message_channel_request_channel(m));

	if (!c || c->close_sent) {
		ssh_message_reply_default(m);
		ssh_message_free(m);
		return;
	}
	/* Replies must keep the order of the requests. */
	if (c->pending) {
		if (c->n_held == CHAN_MAX_HELD) {
			ssh_message_free(m);
			session_disconnect(s, "too many channel requests in flight");
			return;
		}
		c->held[c->n_held++] = m;
		return;
	}
	chan_handle(c, m);
}

/* ---- direct-tcpip ---- */

void chan_open_direct(struct gw_session *s, ssh_message m)
{
	const char *host = ssh_message_channel_request_open_destination(m);
	int port = ssh_message_channel_request_open_destination_port(m);
	const struct auth_grant *g = &s->auth.grant;
	struct gw_channel *c;

	if (g->no_port_forwarding || !host || !proto_host_ok(host) || port <= 0 || port > 65535 ||
	    (g->permitopen && !authkeys_permitopen(g->permitopen, host, (unsigned)port))) {
		log_info("%s: direct-tcpip to %.64s port %d refused", s->tenant, host ? host : "?", port);
		goto refuse;
	}
	c = chan_new(s, CK_DIRECT);
	if (!c)
		goto refuse;
	snprintf(c->what, sizeof c->what, "direct-tcpip");
	c->port = (uint16_t)port;
	if (!(c->host = strdup(host)) || !chan_ask_agent(c, m)) {
		c->dead = true;
		goto refuse;
	}
	return;
refuse:
	ssh_message_reply_default(m);
	ssh_message_free(m);
}

/* ---- the end of a channel ---- */

static const char *chan_signame(int sig)
{
	for (size_t i = 0; i < sizeof chan_signals / sizeof chan_signals[0]; i++)
		if (chan_signals[i].signo == sig)
			return chan_signals[i].name;
	return sigabbrev_np(sig);
}

static void chan_send_status(struct gw_channel *c)
{
	const char *name;

	if (!c->exited)
		return;                  /* the agent vanished: there is no status */
	if (c->status.how == PROTO_SIGNALED && (name = chan_signame(c->status.value)))
		ssh_channel_request_send_exit_signal(c->ch, name, c->status.core, "", "");
	else
		ssh_channel_request_send_exit_status(c->ch, proto_exit_code(&c->status));
}

static void chan_close(struct gw_channel *c)
{
	if (!c->eof_sent && !c->client_closed)
		ssh_channel_send_eof(c->ch);
	c->eof_sent = true;
	ssh_channel_close(c->ch);
	c->close_sent = true;
}

/* Session channels end when the child has, and its output with it. */
static void chan_end_session(struct gw_channel *c)
{
	bool flushed = c->out.pend.len == 0 && c->err.pend.len == 0;

	if (!c->running || !c->agent_gone || !flushed || !c->out.eof || !c->err.eof)
		return;
	chan_send_status(c);
	chan_close(c);
	log_info("%s: channel %u: %s ended (%s %d)", c->s->tenant, c->id, c->what,
		 !c->exited ? "no status" : c->status.how == PROTO_SIGNALED ? "signal" : "exit",
		 c->exited ? c->status.value : 0);
}

/* A forwarded connection ends when both directions have. */
static void chan_end_direct(struct gw_channel *c)
{
	if (!c->running)
		return;
	if (c->out.eof && c->out.pend.len == 0 && !c->eof_sent) {
		ssh_channel_send_eof(c->ch);
		c->eof_sent = true;
	}
	if (c->eof_sent && c->in_done)
		chan_close(c);
}

/* Decided last, once nothing else will touch libssh in this settle: a
 * flush after the decision could otherwise leave every reader stopped
 * with nothing left to wake it. */
void chan_watch_all(struct gw_channel *c, bool backed_up)
{
	bool in_wait;

	if (c->dead || !c->ch || c->close_sent || c->client_closed)
		return;
	in_wait = c->in_fd >= 0 && !c->in_done && (c->to_tenant.len || c->backlog);
	if (c->running)
		chan_watch(&c->in_io, in_wait);
	for (struct gw_out *o = &c->out; o; o = o == &c->out ? &c->err : NULL)
		if (o->fd >= 0)
			chan_watch(&o->io, chan_may_read(c, o, backed_up));
	/* Held at the cap: the timer runs until an adjust frees room. */
	if (c->running && !c->eof_sent && chan_paced(c)) {
		/* Set each time: a stopped libev timer keeps only what was
		 * left of its time, and the hold is measured afresh. */
		if (!ev_is_active(&c->pace)) {
			ev_timer_set(&c->pace, CHAN_PACE_STALL, 0);
			ev_timer_start(W.loop, &c->pace);
		}
	} else {
		ev_timer_stop(W.loop, &c->pace);
	}
}

/* Outputs at EOF with nothing left to send are done with. */
static void chan_close_finished(struct gw_channel *c)
{
	for (struct gw_out *o = &c->out; o; o = o == &c->out ? &c->err : NULL)
		if (o->fd >= 0 && o->eof && o->pend.len == 0)
			chan_close_out(o);
}

bool chan_settle(struct gw_channel *c)
{
	if (c->dead)
		return false;
	if (c->client_closed) {
		/* The client is done with it: hang up on the child, answer the close. */
		if (c->ch && !c->close_sent)
			ssh_channel_close(c->ch);
		return false;
	}
	if (!c->ch)
		return true;             /* a direct-tcpip open still waiting */
	if (c->close_sent)
		return true;             /* waiting for the client's close */
	if (c->running) {
		chan_drain_in(c);
		chan_finish_in(c);
		chan_flush_out(c, &c->out);
		chan_flush_out(c, &c->err);
	}
	chan_close_finished(c);
	if (c->kind == CK_SESSION)
		chan_end_session(c);
	else
		chan_end_direct(c);
	if (c->close_sent) {
		ev_io_stop(W.loop, &c->in_io);
		chan_close_out(&c->out);
		chan_close_out(&c->err);
	}
	return true;
}

void chan_free(struct gw_channel *c)
{
	struct gw_session *s = c->s;

	agentc_close(&c->agent);
	ev_timer_stop(W.loop, &c->linger);
	ev_timer_stop(W.loop, &c->retry);
	ev_timer_stop(W.loop, &c->pace);
	free(c->command);
	free(c->original);
	free(c->host);
	ev_io_stop(W.loop, &c->in_io);
	chan_close_out(&c->out);
	chan_close_out(&c->err);
	if (c->in_fd >= 0)
		close(c->in_fd);
	buf_free(&c->out.pend);
	buf_free(&c->err.pend);
	buf_free(&c->to_tenant);
	if (c->pending) {
		/* An open still waiting gets its failure; a request on a channel
		 * the client closed gets nothing. */
		if (!c->client_closed)
			ssh_message_reply_default(c->pending);
		ssh_message_free(c->pending);
	}
	for (unsigned i = 0; i < c->n_held; i++)
		ssh_message_free(c->held[i]);
	for (unsigned i = 0; i < c->n_env; i++)
		free(c->env[i]);
	/* libssh may still call back after a free: take the callbacks off first. */
	if (c->ch) {
		ssh_remove_channel_callbacks(c->ch, &c->cb);
		ssh_channel_free(c->ch);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->channels = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_channels--;
	free(c);
}
