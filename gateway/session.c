/* session: an ssh connection driven by libev. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"

static unsigned session_last_id;

static const char *session_who(const struct gw_session *s)
{
	return s->tenant ? s->tenant : "-";
}

/* ---- list and counters ---- */

static void session_link(struct gw_session *s)
{
	s->prev = W.last;
	if (W.last)
		W.last->next = s;
	else
		W.first = s;
	W.last = s;
	W.n_sessions++;
	W.n_unauth++;
}

static void session_unlink(struct gw_session *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		W.first = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		W.last = s->prev;
	W.n_sessions--;
	if (!s->authenticated)
		W.n_unauth--;
}

/* Channels first: libssh's disconnect frees its channels, and ours hold
 * pointers to them. */
static void session_free(struct gw_session *s)
{
	/* Counted once per connection: a login, or a failed one. */
	if (s->authenticated)
		gwm_session(s->tenant, -1);
	else if (s->auth.failures)
		gwm_login(s->auth.known ? s->auth.user : NULL, false);
	while (s->channels)
		chan_free(s->channels);
	auth_free(s);
	ev_io_stop(W.loop, &s->io);
	ev_timer_stop(W.loop, &s->grace);
	session_unlink(s);
	if (s->ssh) {
		ssh_disconnect(s->ssh);
		ssh_free(s->ssh);
	}
	free(s);
	if (W.retiring && W.n_sessions == 0)
		ev_break(W.loop, EVBREAK_ALL);
}

void session_disconnect(struct gw_session *s, const char *why)
{
	if (s->state == SS_DEAD)
		return;
	if (s->authenticated)
		log_info("%s: connection from %s port %d closed: %s", session_who(s), s->addr, s->port, why);
	else if (s->auth.failures || s->state == SS_AUTH)
		log_info("%s: unauthenticated connection from %s port %d closed: %s",
			 s->auth.user[0] ? s->auth.user : "-", s->addr, s->port, why);
	else
		log_debug("connection from %s port %d closed before authentication: %s", s->addr, s->port, why);
	s->state = SS_DEAD;
}

void session_authenticated(struct gw_session *s)
{
	s->authenticated = true;
	s->tenant = s->auth.user;
	s->state = SS_OPEN;
	gwm_login(s->tenant, true);
	gwm_session(s->tenant, 1);
	auth_done(s);
	W.n_unauth--;
	ev_timer_stop(W.loop, &s->grace);
}

/* ---- messages ---- */

static void session_open(struct gw_session *s, ssh_message m)
{
	switch (ssh_message_subtype(m)) {
	case SSH_CHANNEL_SESSION:
		chan_open_session(s, m);
		return;
	case SSH_CHANNEL_DIRECT_TCPIP:
		chan_open_direct(s, m);
		return;
	default:
		/* x11, auth-agent and forwarded-tcpip are never ours to open. */
		ssh_message_reply_default(m);
		ssh_message_free(m);
	}
}

static void session_message(struct gw_session *s, ssh_message m)
{
	int type = ssh_message_type(m);

	if (type == SSH_REQUEST_AUTH) {
		auth_message(s, m);
		return;
	}
	/* Our own flag, not libssh's state: nothing past this point without it. */
	if (s->authenticated && type == SSH_REQUEST_CHANNEL_OPEN) {
		session_open(s, m);
		return;
	}
	if (s->authenticated && type == SSH_REQUEST_CHANNEL) {
		chan_request(s, m);
		return;
	}
	if (type == SSH_REQUEST_GLOBAL && ssh_message_subtype(m) == SSH_GLOBAL_REQUEST_TCPIP_FORWARD)
		log_info("%s: remote port forwarding refused", session_who(s));
	/* Service requests are accepted, keepalives answered, remote
	 * forwarding and everything else refused: libssh's default replies. */
	ssh_message_reply_default(m);
	ssh_message_free(m);
}

/* Returns how many messages were handled. */
static int session_messages(struct gw_session *s)
{
	for (int i = 0; i < SESSION_MSG_BURST && s->state != SS_DEAD; i++) {
		ssh_message m = ssh_message_get(s->ssh);

		if (!m)
			return i;
		session_message(s, m);
	}
	/* A client may queue many requests: handle the rest on the next loop
	 * iteration, after the other sessions had their turn. */
	ev_feed_event(W.loop, &s->io, EV_READ);
	return 0;
}

static void session_kex(struct gw_session *s)
{
	int r = ssh_handle_key_exchange(s->ssh);

	if (r == SSH_AGAIN)
		return;
	if (r != SSH_OK) {
		log_debug("key exchange with %s port %d failed: %s", s->addr, s->port, ssh_get_error(s->ssh));
		s->state = SS_DEAD;
		return;
	}
	s->state = SS_AUTH;
}

/* ---- settling ---- */

/* Push out what libssh has buffered, and learn whether anything is left.
 * ssh_get_poll_flags cannot tell: libssh asks for POLLOUT after every
 * write, buffered bytes or not, and writes again only once a poll has
 * seen the socket writable. ssh_blocking_flush with no timeout is that
 * poll when bytes wait, and costs nothing when none do. */
static void session_flush(struct gw_session *s)
{
	if (s->state == SS_DEAD)
		return;
	s->backed_up = ssh_blocking_flush(s->ssh, 0) != SSH_OK;
}

static void session_watch(struct gw_session *s)
{
	int want = EV_READ | (s->backed_up ? EV_WRITE : 0);

	if ((s->io.events & (EV_READ | EV_WRITE)) == want && ev_is_active(&s->io))
		return;
	ev_io_stop(W.loop, &s->io);
	ev_io_set(&s->io, s->fd, want);
	ev_io_start(W.loop, &s->io);
}

static void session_channels(struct gw_session *s)
{
	struct gw_channel *c = s->channels, *next;

	for (; c; c = next) {
		next = c->next;
		if (!chan_settle(c))
			chan_free(c);
	}
}

/* libssh's error text, said plainly when it is just the client leaving. */
static const char *session_why(struct gw_session *s, int status)
{
	const char *e = ssh_get_error(s->ssh);

	if (!(status & SSH_CLOSED_ERROR) || !e || !e[0])
		return "closed by the client";
	if (strstr(e, "SSH_MSG_DISCONNECT"))
		return "the client disconnected";
	if (!strcmp(e, "Socket error: disconnected"))
		return "the client went away";
	return e;
}

static bool session_alive(struct gw_session *s)
{
	int st = ssh_get_status(s->ssh);

	if (st & (SSH_CLOSED | SSH_CLOSED_ERROR)) {
		session_disconnect(s, session_why(s, st));
		return false;
	}
	return s->state != SS_DEAD;
}

void session_settle(struct gw_session *s)
{
	int passes = 0;

	if (s->settling) {
		s->again = true;
		return;
	}
	s->settling = true;
	do {
		uint64_t packets;

		s->again = false;
		if (s->state == SS_KEX)
			session_kex(s);
		/* Requests reach us only through reading the socket: when it
		 * woke us, or when libssh read it while we wrote. */
		if ((s->state == SS_AUTH || s->state == SS_OPEN) && s->readable)
			session_messages(s);
		s->readable = false;
		packets = s->rx.in_packets;
		if (session_alive(s))
			session_channels(s);
		session_flush(s);
		/* Writing and flushing run a round of libssh's packet handling
		 * too. Whatever it read (requests, a window adjust, the end of
		 * a key re-exchange that held our writes back) calls for one
		 * more pass: nothing else would wake us for it. */
		if (s->rx.in_packets != packets && s->state != SS_DEAD) {
			s->readable = true;
			s->again = true;
		}
	} while (s->again && session_alive(s) && ++passes < SESSION_PASSES);
	s->settling = false;
	if (!session_alive(s)) {
		session_free(s);
		return;
	}
	/* Out of passes with work left: carry on after the other sessions. */
	if (s->again)
		ev_feed_event(W.loop, &s->io, EV_READ);
	for (struct gw_channel *c = s->channels; c; c = c->next)
		chan_watch_all(c, s->backed_up);
	session_watch(s);
}

static void session_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gw_session *s = w->data;

	if (revents & EV_READ)
		s->spoke = true;
	s->readable = true;
	session_settle(s);
}

static void session_grace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_session *s = t->data;

	if (!s->authenticated)
		session_disconnect(s, "login grace time over");
	session_settle(s);
}

/* ---- birth and death ---- */

/* libssh owns fd once accept_fd got far enough; make sure it is closed
 * exactly once either way. */
static void session_drop_fd(int fd)
{
	if (fcntl(fd, F_GETFD) >= 0)
		close(fd);
}

void session_accept(int fd, const struct sockaddr_storage *peer, const struct sockaddr_storage *local)
{
	struct gw_session *s = calloc(1, sizeof *s);

	if (!s || !(s->ssh = ssh_new())) {
		log_error("out of memory accepting a connection");
		free(s);
		close(fd);
		return;
	}
	s->id = ++session_last_id;
	s->fd = fd;
	s->peer = *peer;
	s->local = *local;
	ratelimit_source((const struct sockaddr *)peer, s->source);
	/* A client whose version line was waiting in the socket before we
	 * accepted it has spoken too: the io callback will never see that
	 * first read, libssh does it below. */
	{
		char b;

		if (recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1)
			s->spoke = true;
	}
	s->port = gw_addr_text((const struct sockaddr *)peer, s->addr, sizeof s->addr);
	s->local_port = gw_addr_text((const struct sockaddr *)local, s->local_addr, sizeof s->local_addr);
	s->accepted = ev_now(W.loop);
	if (ssh_bind_accept_fd(W.bind, s->ssh, fd) != SSH_OK) {
		log_error("cannot start a session: %s", ssh_get_error(W.bind));
		ssh_free(s->ssh);
		session_drop_fd(fd);
		free(s);
		return;
	}
	/* Non-blocking before the first byte, and no callbacks to install:
	 * every request comes through the message queue (see auth.h). */
	ssh_set_blocking(s->ssh, 0);
	ssh_set_counters(s->ssh, NULL, &s->rx);
	ssh_set_auth_methods(s->ssh, SSH_AUTH_METHOD_PUBLICKEY | SSH_AUTH_METHOD_PASSWORD);
	auth_init(s);
	s->state = SS_KEX;
	s->readable = true;
	session_link(s);
	ev_io_init(&s->io, session_io_cb, fd, EV_READ);
	s->io.data = s;
	ev_io_start(W.loop, &s->io);
	ev_timer_init(&s->grace, session_grace_cb, (double)W.host->gateway.login_grace_ms / 1000.0, 0);
	s->grace.data = s;
	ev_timer_start(W.loop, &s->grace);
	session_settle(s);
}

static int session_by_source(const void *a, const void *b)
{
	const struct gw_session *x = *(const struct gw_session *const *)a;
	const struct gw_session *y = *(const struct gw_session *const *)b;
	int c = memcmp(x->source, y->source, sizeof x->source);

	return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* Bytes waiting that our io callback has not seen yet (accepted and
 * spoken to within one loop iteration) mean the client has spoken. */
static bool session_has_input(const struct gw_session *s)
{
	char b;

	return recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

/* A client that has not sent a single byte, not even its version line,
 * is the one to let go: real clients speak the moment they connect. But
 * it is taken from the address holding the most slots: otherwise one
 * address opening connections and answering slowly (its version line,
 * then nothing until the login grace runs out) would keep every slot, and
 * a real customer who had not spoken yet would be the idle one to go.
 * Sorting costs O(n log n) for n = max_unauthenticated, paid only when
 * full. */
bool session_make_room(const struct sockaddr_storage *peer)
{
	uint8_t mine_key[16];
	struct gw_session **v;
	size_t n = 0;
	bool done = false;

	if (W.n_unauth == 0)
		return false;
	/* Another family than IPv4/IPv6 keys as zeros: one source, as they
	 * are counted in s->source too. */
	ratelimit_source((const struct sockaddr *)peer, mine_key);
	v = malloc(W.n_unauth * sizeof *v);
	if (!v)
		return false;
	for (struct gw_session *s = W.first; s && n < W.n_unauth; s = s->next)
		if (!s->authenticated && s->state != SS_DEAD && !s->settling)
			v[n++] = s;
	qsort(v, n, sizeof *v, session_by_source);
	for (int round = 0; round < 16 && !done; round++) {
		struct gw_session *oldest = NULL, *silent = NULL, *victim;
		size_t best = 0, mine = 0;

		for (size_t i = 0, j; i < n; i = j) {
			struct gw_session *quiet = NULL;

			for (j = i; j < n && !memcmp(v[j]->source, v[i]->source, sizeof mine_key); j++)
				if (!quiet && !v[j]->spoke)
					quiet = v[j];
			if (!memcmp(v[i]->source, mine_key, sizeof mine_key))
				mine = j - i;
			if (j - i > best || (j - i == best && quiet && !silent)) {
				best = j - i;
				oldest = v[i];
				silent = quiet;
			}
		}
		if (silent && session_has_input(silent)) {
			silent->spoke = true;      /* look again */
			continue;
		}
		victim = silent ? silent : (oldest && best >= mine + 2 ? oldest : NULL);
		if (!victim)
			break;
		session_disconnect(victim, silent ? "too many unauthenticated connections"
						  : "too many unauthenticated connections from its address");
		session_free(victim);
		done = true;
	}
	free(v);
	return done;
}

void session_close_all(void)
{
	while (W.first) {
		struct gw_session *s = W.first;

		session_disconnect(s, "the gateway is shutting down");
		session_free(s);
	}
}
