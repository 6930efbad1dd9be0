/* tenant: the life of one tenant, from its file to its last process.
 *
 *   STOPPED --start--> STARTING --ready--> RUNNING
 *   STARTING/RUNNING --init died--> BACKOFF --timer--> STARTING
 *   BACKOFF after TENANT_MAX_CRASHES quick deaths --> FAILED (slow retries)
 *   any --stop--> STOPPING --init gone--> STOPPED, then `next`
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "fdpass.h"
#include "launcher.h"
#include "log.h"
#include "nginxmap.h"
#include "reload.h"
#include "routerlink.h"

#define BACKOFF_FIRST   0.25     /* seconds before the first restart */
#define BACKOFF_MAX     30.0
#define STABLE_AFTER    30.0     /* running this long resets the crash count */
#define MAX_CRASHES     6        /* quick deaths in a row before FAILED */
#define FAILED_RETRY    300.0    /* seconds between tries of a failed tenant */
#define STOP_TIMEOUT    10.0     /* then the whole cgroup is killed */
#define TENANT_SETTLE_MAX 10.0   /* a start holds its slot at most this long */

static void tenant_child_cb(struct ev_loop *loop, ev_child *w, int revents);
static void tenant_settled(struct tenant *t);
static void tenant_kick_queue(struct launcher *L);

const char *tenant_state_name(enum tenant_state s)
{
	static const char *names[] = { "stopped", "starting", "running", "stopping", "backoff", "failed" };
	return names[s];
}

struct tenant *tenant_find(struct launcher *L, const char *name)
{
	for (struct tenant *t = L->tenants; t; t = t->next_t)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

static double since(const struct timespec *ts)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - ts->tv_sec) + (double)(now.tv_nsec - ts->tv_nsec) / 1e9;
}

static void tenant_timer(struct tenant *t, ev_tstamp after, void (*cb)(struct ev_loop *, ev_timer *, int))
{
	ev_timer_stop(t->L->loop, &t->timer_w);
	ev_timer_init(&t->timer_w, cb, after, 0);
	t->timer_w.data = t;
	ev_timer_start(t->L->loop, &t->timer_w);
}

static void tenant_close_sync(struct tenant *t)
{
	if (t->sync_fd >= 0) {
		ev_io_stop(t->L->loop, &t->sync_w);
		close(t->sync_fd);
		t->sync_fd = -1;
	}
}

static void tenant_sync_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tenant *t = w->data;
	char msg[300];
	/* fdpass_recv: SYNC_TUN comes with the tenant's tun fds, one per
	 * queue (fief-router). */
	int fds[FDPASS_MAX_ANY];
	size_t nfd = 0;
	ssize_t n = fdpass_recv(w->fd, msg, sizeof msg - 1, fds, CONFIG_ROUTER_MAX_THREADS, &nfd);

	if (n == -EAGAIN || n == -EMSGSIZE || n == -EBADMSG)
		return;
	if (n <= 0) {
		ev_io_stop(loop, w);     /* the init is exiting; its child watcher reports */
		return;
	}
	msg[n] = 0;
	if (msg[0] == SYNC_TUN && nfd >= 1 &&
	    adopt_parse_fds(msg + 1, t->init_tun_fds, CONFIG_ROUTER_MAX_THREADS) == (int)nfd) {
		t->n_init_tun = (int)nfd;
		routerlink_tenant_tun(t, fds, nfd);      /* takes the fds */
		adopt_record(t);                 /* with the init's tun fd numbers */
		return;
	}
	fdpass_close_all(fds, nfd);
	if (msg[0] == SYNC_SETTLED) {
		tenant_settled(t);
		return;
	}
	if (msg[0] == SYNC_READY && t->state == TS_STARTING) {
		t->state = TS_RUNNING;
		t->last_error[0] = 0;
		log_info("%s: running (init pid %d, uid %u)", t->name, (int)t->pid, (unsigned)t->uid);
	} else if (msg[0] == SYNC_ERROR) {
		snprintf(t->last_error, sizeof t->last_error, "%.250s", msg + 1);
		log_error("%s: %s", t->name, msg + 1);
	}
}

static void tenant_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tenant *t = w->data;

	ev_timer_stop(loop, w);
	if (t->state == TS_BACKOFF || t->state == TS_FAILED)
		tenant_start(t);
}

/* A start that could not even clone counts as a crash: same backoff. */
static void tenant_schedule_retry(struct tenant *t)
{
	double delay;

	if (t->crashes >= MAX_CRASHES) {
		t->state = TS_FAILED;
		delay = FAILED_RETRY;
		log_error("%s: failed: %u crashes in a row (last: %s); next try in %.0f s",
			  t->name, t->crashes, t->last_error[0] ? t->last_error : "unknown", delay);
	} else {
		t->state = TS_BACKOFF;
		delay = BACKOFF_FIRST * (double)(1u << (t->crashes > 0 ? t->crashes - 1 : 0));
		if (delay > BACKOFF_MAX)
			delay = BACKOFF_MAX;
		log_warn("%s: restarting in %.2f s (crash %u in a row)", t->name, delay, t->crashes);
	}
	tenant_timer(t, delay, tenant_retry_cb);
}


/* The start is over (apps up, init gone, or too long): free its slot. */
static void tenant_settled(struct tenant *t)
{
	if (!t->settling)
		return;
	t->settling = false;
	ev_timer_stop(t->L->loop, &t->settle_w);
	t->L->n_settling--;
	tenant_kick_queue(t->L);
}

static void tenant_settle_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tenant *t = w->data;

	ev_timer_stop(loop, w);
	log_info("%s: apps not up %.0f s after the start; the next tenant may start",
		 t->name, TENANT_SETTLE_MAX);
	tenant_settled(t);
}

static void tenant_spawn(struct tenant *t)
{
	char err[256];
	struct timespec ts[3];
	pid_t pid;

	if (t->pid || !t->cfg)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts[0]);
	if (spawn_prepare_host(t, err, sizeof err) < 0 ||
	    (clock_gettime(CLOCK_MONOTONIC, &ts[1]), pid = spawn_init(t, &t->sync_fd, err, sizeof err)) < 0) {
		snprintf(t->last_error, sizeof t->last_error, "%.250s", err);
		log_error("%s: cannot start: %s", t->name, err);
		t->crashes++;
		tenant_schedule_retry(t);
		return;
	}
	if (t->started_wall)
		t->restarts++;
	t->pid = pid;
	t->state = TS_STARTING;
	t->next = NEXT_NONE;
	clock_gettime(CLOCK_MONOTONIC, &t->started);
	t->started_wall = time(NULL);
	ev_child_init(&t->child_w, tenant_child_cb, pid, 0);
	t->child_w.data = t;
	ev_child_start(t->L->loop, &t->child_w);
	adopt_record(t);
	ev_io_init(&t->sync_w, tenant_sync_cb, t->sync_fd, EV_READ);
	t->sync_w.data = t;
	ev_io_start(t->L->loop, &t->sync_w);
	t->settling = true;
	t->L->n_settling++;
	ev_timer_init(&t->settle_w, tenant_settle_timeout_cb, TENANT_SETTLE_MAX, 0);
	t->settle_w.data = t;
	ev_timer_start(t->L->loop, &t->settle_w);
	clock_gettime(CLOCK_MONOTONIC, &ts[2]);
	log_debug("%s: init cloned as pid %d (host side %.2f ms, clone and cgroup %.2f ms)", t->name,
		  (int)pid, ts_ms(&ts[0], &ts[1]), ts_ms(&ts[1], &ts[2]));
}

#define DEPLOYS_PER_PASS 8

static void tenant_deploy_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* Serve the queue on the next loop pass. */
static void tenant_kick_queue(struct launcher *L)
{
	if (!L->n_deploys || L->n_settling >= L->start_max || ev_is_active(&L->deploy_w))
		return;
	ev_timer_init(&L->deploy_w, tenant_deploy_cb, 0, 0);
	L->deploy_w.data = L;
	ev_timer_start(L->loop, &L->deploy_w);
}

static void tenant_deploy_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct launcher *L = w->data;
	size_t done = 0, i;

	ev_timer_stop(loop, w);
	for (i = 0; i < L->n_deploys && done < DEPLOYS_PER_PASS && L->n_settling < L->start_max; i++) {
		struct tenant *t = L->deploys[i];
		if (!t || !t->queued)
			continue;        /* stopped or forgotten while it waited */
		t->queued = false;
		if (!t->pid && t->cfg && !t->held && !L->shutting_down) {
			tenant_spawn(t);
			done++;
		} else if (!t->pid && t->state == TS_STARTING) {
			t->state = TS_STOPPED;
		}
	}
	memmove(L->deploys, L->deploys + i, (L->n_deploys - i) * sizeof *L->deploys);
	L->n_deploys -= i;
	tenant_kick_queue(L);
}

void tenant_start(struct tenant *t)
{
	struct launcher *L = t->L;

	if (t->pid || !t->cfg || t->queued)
		return;
	if (L->n_settling < L->start_max && !L->n_deploys)
		tenant_spawn(t);
	else
		tenant_start_soon(t);
}

void tenant_start_soon(struct tenant *t)
{
	struct launcher *L = t->L;

	if (t->pid || t->queued)
		return;

	if (L->n_deploys == L->cap_deploys) {
		size_t cap = L->cap_deploys ? L->cap_deploys * 2 : 64;
		struct tenant **d = realloc(L->deploys, cap * sizeof *d);
		if (!d) {
			tenant_spawn(t);     /* no memory for the queue: start now */
			return;
		}
		L->deploys = d;
		L->cap_deploys = cap;
	}
	L->deploys[L->n_deploys++] = t;
	t->queued = true;
	t->state = TS_STARTING;          /* `fiefctl list`: starting, no pid yet */
	tenant_kick_queue(L);
}

void tenant_forget(struct tenant *t)
{
	struct launcher *L = t->L;

	for (size_t i = 0; i < L->n_deploys; i++)
		if (L->deploys[i] == t)
			L->deploys[i] = NULL;
	for (struct tenant **pp = &L->tenants; *pp; pp = &(*pp)->next_t)
		if (*pp == t) {
			*pp = t->next_t;
			break;
		}
	L->n_tenants--;
	tenant_settled(t);
	ev_timer_stop(L->loop, &t->timer_w);
	config_tenant_free(t->cfg);
	free(t->file_buf);
	for (int i = 0; i < t->n_tun; i++)
		close(t->tun_fds[i]);
	free(t);
	nginxmap_update(L);              /* its domains are free now */
	if (L->shutting_down && !L->tenants)
		ev_break(L->loop, EVBREAK_ALL);
}

/* The init is gone: nothing of the tenant may stay behind. */
static void tenant_after_exit(struct tenant *t)
{
	ev_timer_stop(t->L->loop, &t->timer_w);
	tenant_settled(t);
	tenant_close_sync(t);
	routerlink_tenant_gone(t);       /* fief-router: drop its tun (closes t->tun_fd) */
	t->pid = 0;
	spawn_cleanup_host(t);
}

static void describe_status(int status, char *buf, size_t len)
{
	if (status < 0)
		snprintf(buf, len, "exited (adopted: no status)");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d%s", WTERMSIG(status),
			 WCOREDUMP(status) ? " (core dumped)" : "");
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

static void tenant_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	ev_child_stop(loop, w);
	tenant_init_exited(w->data, w->rstatus);
}

void tenant_init_exited(struct tenant *t, int status)
{
	enum tenant_state was = t->state;
	char how[64];

	describe_status(status, how, sizeof how);
	tenant_after_exit(t);
	if (was == TS_STOPPING) {
		log_info("%s: stopped (init %s)", t->name, how);
		t->state = TS_STOPPED;
		if (t->next == NEXT_REMOVE || t->L->shutting_down)
			tenant_forget(t);
		else if (t->next == NEXT_START && !t->held)
			tenant_start(t);
		return;
	}
	/* An unexpected death. */
	if (!t->last_error[0] || was == TS_RUNNING)
		snprintf(t->last_error, sizeof t->last_error, "init %s", how);
	log_warn("%s: init %s after %.1f s", t->name, how, since(&t->started));
	if (since(&t->started) >= STABLE_AFTER)
		t->crashes = 0;
	t->crashes++;
	tenant_schedule_retry(t);
}

static void tenant_stop_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct tenant *t = w->data;

	ev_timer_stop(loop, w);
	log_warn("%s: init did not stop in %.0f s; killing the cgroup", t->name, STOP_TIMEOUT);
	if (t->pid)
		kill(t->pid, SIGKILL);
	cg_kill_all(t->name);
}

void tenant_stop(struct tenant *t, enum tenant_next next)
{
	char stop = SYNC_STOP;

	if (t->state == TS_STOPPING) {
		if (next > t->next)
			t->next = next;
		return;
	}
	ev_timer_stop(t->L->loop, &t->timer_w);
	if (!t->pid) {
		/* Nothing runs (stopped, queued, backoff, failed): act at once. */
		t->queued = false;
		t->state = TS_STOPPED;
		if (next == NEXT_REMOVE || t->L->shutting_down) {
			spawn_cleanup_host(t);
			tenant_forget(t);
		} else if (next == NEXT_START && !t->held) {
			tenant_start(t);
		}
		return;
	}
	t->state = TS_STOPPING;
	t->next = next;
	/* The init ends its children gracefully; SIGTERM does the same when
	 * the sync channel is gone (an adopted tenant). */
	if (t->sync_fd < 0 || send(t->sync_fd, &stop, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
		kill(t->pid, SIGTERM);
	tenant_timer(t, STOP_TIMEOUT, tenant_stop_timeout_cb);
}

void tenant_adopted(struct tenant *t, pid_t pid, int pidfd, void (*exit_cb)(struct ev_loop *, ev_io *, int))
{
	t->pid = pid;
	t->state = TS_RUNNING;
	clock_gettime(CLOCK_MONOTONIC, &t->started);
	t->started_wall = time(NULL);
	ev_io_init(&t->pidfd_w, exit_cb, pidfd, EV_READ);
	t->pidfd_w.data = t;
	ev_io_start(t->L->loop, &t->pidfd_w);
}

void tenant_reload(struct tenant *t)
{
	t->crashes = 0;
	log_info("%s: reloading", t->name);
	tenant_stop(t, NEXT_START);
}

struct tenant *tenant_new(struct launcher *L, const char *name)
{
	struct tenant *t = calloc(1, sizeof *t);

	if (!t)
		return NULL;
	snprintf(t->name, sizeof t->name, "%s", name);
	t->L = L;
	t->sync_fd = -1;
	t->n_tun = 0;
	t->n_init_tun = 0;
	t->uid = (uid_t)-1;
	t->state = TS_STOPPED;
	ev_init(&t->timer_w, NULL);
	ev_init(&t->settle_w, NULL);
	t->next_t = L->tenants;
	L->tenants = t;
	L->n_tenants++;
	return t;
}

/* Install a newly validated config into t. */
static void tenant_take_config(struct tenant *t, struct config_tenant *cfg, char *buf, size_t len)
{
	config_tenant_free(t->cfg);
	free(t->file_buf);
	t->cfg = cfg;
	t->file_buf = buf;
	t->file_len = len;
}

void tenant_apply_file(struct launcher *L, const char *name, const char *path)
{
	struct tenant *t = tenant_find(L, name);
	struct config_errors errs;
	struct config_tenant *cfg;
	char *buf, err[256];
	size_t len;
	int r = config_read_file(path, CONFIG_MAX_FILE, &buf, &len);

	if (r < 0) {
		log_error("%s: cannot read: %s", path, strerror(-r));
		return;
	}
	if (t && t->file_buf && t->file_len == len && !memcmp(t->file_buf, buf, len)) {
		free(buf);                   /* touched, not changed */
		return;
	}
	cfg = config_tenant_parse(path, buf, len, L->host, &errs);
	if (!cfg) {
		/* A bad file never touches a tenant that runs. */
		for (size_t i = 0; i < errs.n; i++) {
			config_error_format(&errs, i, err, sizeof err);
			log_error("%s", err);
		}
		if (t)
			log_warn("%s: keeps running with its previous configuration", name);
		free(buf);
		return;
	}
	if (!t && !(t = tenant_new(L, name))) {
		config_tenant_free(cfg);
		free(buf);
		return;
	}
	if (spawn_resolve_uid(L, t, cfg, err, sizeof err) < 0) {
		log_error("%s: %s", path, err);
		config_tenant_free(cfg);
		free(buf);
		if (!t->cfg)
			tenant_forget(t);
		return;
	}
	bool fresh = !t->cfg;
	bool live = !fresh && reload_is_live(t->cfg, cfg);
	tenant_take_config(t, cfg, buf, len);
	nginxmap_update(L);
	if (fresh) {
		log_info("%s: deploying", name);
		tenant_start_soon(t);
	} else if (live && reload_live(t) == 0) {
		/* apps, daemons, cron, env, limits: the init restarts what changed */
		log_info("%s: reloaded live", name);
		adopt_record(t);
	} else {
		tenant_reload(t);
	}
}

void tenant_remove(struct launcher *L, struct tenant *t)
{
	log_info("%s: file removed, stopping", t->name);
	tenant_stop(t, NEXT_REMOVE);
}

void tenant_shutdown_all(struct launcher *L)
{
	struct tenant *t, *next;

	L->shutting_down = true;
	if (!L->tenants) {
		ev_break(L->loop, EVBREAK_ALL);
		return;
	}
	for (t = L->tenants; t; t = next) {
		next = t->next_t;
		tenant_stop(t, NEXT_REMOVE);
	}
}
