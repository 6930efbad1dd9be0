/* keysrc: fetching and caching ~/.ssh/authorized_keys through the agent. */
#include "keysrc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentc.h"
#include "gateway.h"
#include "log.h"

#define KEYSRC_MAX_CACHED 1024

struct keysrc {
	struct keysrc *next;             /* the cache list */
	char name[40];
	unsigned refs;
	bool cached;                     /* still in the list, findable */
	bool ready, running;
	ev_tstamp expires;
	struct authkeys keys;
	struct keysrc_waiter *waiters;
	/* the fetch */
	struct agentc agent;
	int out_fd;
	ev_io out_io;
	ev_timer timer;
	char *buf;
	size_t len;
};

static struct keysrc *ks_list;
static unsigned ks_count;

bool keysrc_ready(const struct keysrc *k)
{
	return k->ready;
}

bool keysrc_running(const struct keysrc *k)
{
	char path[4096];
	struct stat st;

	/* The launcher removes the socket when it stops a tenant. */
	return k->running && agentc_path(k->name, path, sizeof path) == 0 && lstat(path, &st) == 0 &&
	       S_ISSOCK(st.st_mode);
}

const struct authkeys *keysrc_keys(const struct keysrc *k)
{
	return &k->keys;
}

static void keysrc_free(struct keysrc *k)
{
	authkeys_free(&k->keys);
	free(k->buf);
	free(k);
}

static void keysrc_uncache(struct keysrc *k)
{
	struct keysrc **pp;

	for (pp = &ks_list; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			ks_count--;
			break;
		}
	k->cached = false;
	if (k->refs == 0)
		keysrc_free(k);
}

/* Forget results that are too old to trust (all of them when the list
 * is full); a fetch still running stays. */
static void keysrc_purge(void)
{
	ev_tstamp now = ev_now(W.loop);
	struct keysrc *k = ks_list, *next;

	for (; k; k = next) {
		next = k->next;
		if (k->ready && (now >= k->expires || ks_count >= KEYSRC_MAX_CACHED))
			keysrc_uncache(k);
	}
}

static void keysrc_warn(void *data, int line, const char *why)
{
	struct keysrc *k = data;

	log_warn("%s: ~/.ssh/authorized_keys:%d: key refused: %s", k->name, line, why);
}

/* The fetch is over, one way or another: parse what we have and wake
 * every waiter. An extra reference keeps k alive through their calls. */
static void keysrc_done(struct keysrc *k, bool running, bool parse)
{
	struct keysrc_waiter *w;

	ev_timer_stop(W.loop, &k->timer);
	if (k->out_fd >= 0) {
		ev_io_stop(W.loop, &k->out_io);
		close(k->out_fd);
		k->out_fd = -1;
	}
	agentc_close(&k->agent);
	if (parse && authkeys_parse(k->buf ? k->buf : "", k->len, &k->keys, keysrc_warn, k) < 0)
		log_error("%s: out of memory parsing ~/.ssh/authorized_keys", k->name);
	free(k->buf);
	k->buf = NULL;
	k->ready = true;
	k->running = running;
	/* A stopped tenant may start any moment: do not remember that. */
	k->expires = ev_now(W.loop) + (running ? KEYSRC_TTL : 0);
	k->refs++;
	while ((w = k->waiters)) {
		k->waiters = w->next;
		w->next = NULL;
		w->fn(w);
	}
	keysrc_put(k, NULL);
}

static void keysrc_out_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct keysrc *k = io->data;
	char *nb;
	ssize_t n;

	if (!k->buf && !(k->buf = malloc(AUTHKEYS_MAX_FILE + 1))) {
		keysrc_done(k, true, false);
		return;
	}
	n = read(k->out_fd, k->buf + k->len, AUTHKEYS_MAX_FILE + 1 - k->len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		k->len += (size_t)n;
		if (k->len <= AUTHKEYS_MAX_FILE)
			return;
		/* A truncated file could end in half a line that parses as a
		 * different key or lacks its options: use none of it. */
		log_warn("%s: ~/.ssh/authorized_keys is larger than %d bytes; ignoring it", k->name,
			 AUTHKEYS_MAX_FILE);
		k->len = 0;
		keysrc_done(k, true, false);
		return;
	}
	nb = realloc(k->buf, k->len + 1);
	if (nb)
		k->buf = nb;
	keysrc_done(k, true, true);
}

static void keysrc_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct keysrc *k = w->data;

	log_warn("%s: reading ~/.ssh/authorized_keys timed out", k->name);
	keysrc_done(k, true, false);
}

static void keysrc_agent_cb(struct agentc *a, enum agentc_event ev, int *fds, size_t nfds,
			    const struct proto_exit *exit, const char *why)
{
	struct keysrc *k = a->data;

	if (ev == AGENTC_FAILED) {
		log_warn("%s: cannot read ~/.ssh/authorized_keys: %s", k->name, why);
		keysrc_done(k, true, false);
		return;
	}
	if (ev != AGENTC_OK)
		return;                  /* cat's exit: its output tells us all */
	/* cat needs no input, and says nothing useful on stderr. */
	close(fds[0]);
	close(fds[2]);
	k->out_fd = fds[1];
	ev_io_init(&k->out_io, keysrc_out_cb, k->out_fd, EV_READ);
	k->out_io.data = k;
	ev_io_start(W.loop, &k->out_io);
}

static void keysrc_start(struct keysrc *k)
{
	struct proto_msg m = { .type = PROTO_PIPES, .u.pipes = { .command = KEYSRC_COMMAND } };
	int r;

	ev_timer_init(&k->timer, keysrc_timer_cb, KEYSRC_TIMEOUT, 0);
	k->timer.data = k;
	r = agentc_open(&k->agent, k->name, &m, KEYSRC_TIMEOUT, keysrc_agent_cb, k);
	if (r == -ENOENT || r == -ECONNREFUSED) {
		keysrc_done(k, false, false);
		return;
	}
	if (r < 0) {
		if (r == -EACCES)
			log_error("%s: cannot connect to the agent: %s (is the gateway's group the "
				  "agent sockets' group?)", k->name, strerror(-r));
		else
			log_warn("%s: cannot connect to the agent: %s", k->name, strerror(-r));
		keysrc_done(k, false, false);
		return;
	}
	ev_timer_start(W.loop, &k->timer);
}

struct keysrc *keysrc_get(const char *name, struct keysrc_waiter *w)
{
	struct keysrc *k;

	keysrc_purge();
	for (k = ks_list; k; k = k->next)
		if (!strcmp(k->name, name))
			break;
	if (!k) {
		k = calloc(1, sizeof *k);
		if (!k)
			return NULL;
		snprintf(k->name, sizeof k->name, "%s", name);
		k->out_fd = -1;
		k->agent.fd = -1;
		k->cached = true;
		k->next = ks_list;
		ks_list = k;
		ks_count++;
		k->refs++;
		keysrc_start(k);
	} else {
		k->refs++;
	}
	w->src = k;
	w->next = NULL;
	if (!k->ready) {
		w->next = k->waiters;
		k->waiters = w;
	}
	return k;
}

void keysrc_put(struct keysrc *k, struct keysrc_waiter *w)
{
	if (w) {
		for (struct keysrc_waiter **pp = &k->waiters; *pp; pp = &(*pp)->next)
			if (*pp == w) {
				*pp = w->next;
				break;
			}
		w->src = NULL;
	}
	if (--k->refs == 0 && !k->cached)
		keysrc_free(k);
}
