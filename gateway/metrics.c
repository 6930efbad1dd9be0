/* metrics: the gateway's shared counters and their Prometheus text. */
#include "metrics.h"

#include <errno.h>
#include <ev.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "value.h"

#define GWM_OTHER GWM_TENANTS      /* the overflow slot */
#define GWM_SPIN 1000              /* waits for a slot another process is naming */
#define GWM_MAX_CONN 8
#define GWM_CONN_TIMEOUT 2.0

enum { SLOT_EMPTY, SLOT_NAMING, SLOT_READY };

struct gwm_tenant {
	uint32_t state;
	char name[36];
	uint64_t ok, failed;
};

struct gwm_shared {
	uint64_t unknown_failed;
	struct gwm_tenant t[GWM_TENANTS + 1];
	int32_t open[GWM_PROCS][GWM_TENANTS + 1];   /* one row per worker process */
};

static struct gwm_shared *G;
static int gwm_row = -1;          /* worker: its row */

/* master only */
static pid_t gwm_pids[GWM_PROCS];  /* 0 free, -1 reserved for a fork */
static size_t gwm_high;            /* rows ever used: rendering reads no further */
static time_t gwm_started;
static bool gwm_warned;

struct gwm_conn {
	struct gwm_conn *next;
	ev_io io;
	ev_timer timeout;
	char *out;
	size_t len, off;
};

static struct {
	int fd;
	ev_io io;
	char path[sizeof ((struct sockaddr_un *)0)->sun_path];
	ino_t ino;
	struct gwm_conn *conns;
	int n_conns;
} S = { .fd = -1 };

int gwm_init(void)
{
	void *p = mmap(NULL, sizeof *G, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	G = p;
	gwm_started = time(NULL);
	return 0;
}

/* ---- slots ---- */

static uint32_t gwm_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The slot of a tenant name, taking a free one on first use. Another
 * process may be naming the same slot: wait for it, a little. A slot that
 * stays "naming" (its process was killed in between) is skipped; should
 * the name then end up in two slots, rendering adds them up. */
static size_t gwm_slot(const char *name)
{
	size_t start, len = strlen(name);

	if (!G || !value_is_tenant_name(name) || len >= sizeof G->t[0].name)
		return GWM_OTHER;
	start = gwm_hash(name) % GWM_TENANTS;
	for (size_t i = 0; i < GWM_TENANTS; i++) {
		struct gwm_tenant *t = &G->t[(start + i) % GWM_TENANTS];
		uint32_t st = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);

		if (st == SLOT_EMPTY) {
			uint32_t want = SLOT_EMPTY;
			if (__atomic_compare_exchange_n(&t->state, &want, SLOT_NAMING, false,
							__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
				memcpy(t->name, name, len + 1);
				__atomic_store_n(&t->state, SLOT_READY, __ATOMIC_RELEASE);
				return (start + i) % GWM_TENANTS;
			}
			st = want;
		}
		for (int spin = 0; st == SLOT_NAMING && spin < GWM_SPIN; spin++) {
			sched_yield();
			st = __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
		}
		if (st == SLOT_READY && !strcmp(t->name, name))
			return (start + i) % GWM_TENANTS;
	}
	return GWM_OTHER;
}

void gwm_login(const char *tenant, bool ok)
{
	if (!G)
		return;
	if (!tenant) {
		__atomic_add_fetch(&G->unknown_failed, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_add_fetch(ok ? &G->t[gwm_slot(tenant)].ok : &G->t[gwm_slot(tenant)].failed, 1, __ATOMIC_RELAXED);
}

void gwm_session(const char *tenant, int delta)
{
	if (!G || gwm_row < 0 || !tenant)
		return;
	__atomic_add_fetch(&G->open[gwm_row][gwm_slot(tenant)], delta, __ATOMIC_RELAXED);
}

/* ---- worker rows ---- */

int gwm_proc_alloc(void)
{
	for (size_t i = 0; i < GWM_PROCS; i++)
		if (gwm_pids[i] == 0) {
			gwm_pids[i] = -1;
			if (i >= gwm_high)
				gwm_high = i + 1;
			return (int)i;
		}
	if (!gwm_warned)
		log_warn("metrics: more than %d workers alive; the sessions of the next ones are not counted", GWM_PROCS);
	gwm_warned = true;
	return -1;
}

static void gwm_row_clear(size_t i)
{
	if (G)
		memset(G->open[i], 0, sizeof G->open[i]);
	gwm_pids[i] = 0;
}

void gwm_proc_started(int proc, pid_t pid)
{
	if (proc < 0 || proc >= GWM_PROCS)
		return;
	if (pid > 0)
		gwm_pids[proc] = pid;
	else
		gwm_row_clear((size_t)proc);
}

void gwm_proc_reaped(pid_t pid)
{
	for (size_t i = 0; i < gwm_high; i++)
		if (gwm_pids[i] == pid) {
			gwm_row_clear(i);
			return;
		}
}

/* ---- the text ---- */

struct gwm_entry {
	char name[sizeof ((struct gwm_tenant *)0)->name];
	size_t slot;
};

static int gwm_by_name(const void *a, const void *b)
{
	return strcmp(((const struct gwm_entry *)a)->name, ((const struct gwm_entry *)b)->name);
}

static long long gwm_open_sum(size_t slot)
{
	long long n = 0;

	for (size_t p = 0; p < gwm_high; p++)
		n += __atomic_load_n(&G->open[p][slot], __ATOMIC_RELAXED);
	return n;
}

struct gwm_row {
	const char *name;
	unsigned long long ok, failed;
	long long open;
};

static char *gwm_render(size_t *len)
{
	struct gwm_entry *e = calloc(GWM_TENANTS, sizeof *e);
	struct gwm_row *row = calloc(GWM_TENANTS + 1, sizeof *row);
	const struct gwm_tenant *other = &G->t[GWM_OTHER];
	size_t n = 0, r = 0;
	char *text = NULL;
	FILE *f = NULL;

	if (!e || !row || !(f = open_memstream(&text, len))) {
		free(e);
		free(row);
		return NULL;
	}
	/* The workers that write the table parse hostile bytes: take a copy
	 * of each name and print only what is still a tenant name, so that
	 * a subverted worker cannot make us read past a name or write
	 * arbitrary text into the scrape. */
	for (size_t i = 0; i < GWM_TENANTS; i++) {
		if (__atomic_load_n(&G->t[i].state, __ATOMIC_ACQUIRE) != SLOT_READY)
			continue;
		memcpy(e[n].name, G->t[i].name, sizeof e[n].name);
		e[n].name[sizeof e[n].name - 1] = 0;
		e[n].slot = i;
		if (value_is_tenant_name(e[n].name))
			n++;
	}
	qsort(e, n, sizeof *e, gwm_by_name);
	/* One series per name: add up a name held by two slots (rare). */
	for (size_t i = 0; i < n; i++) {
		if (!r || strcmp(row[r - 1].name, e[i].name))
			row[r++].name = e[i].name;
		row[r - 1].open += gwm_open_sum(e[i].slot);
		row[r - 1].ok += __atomic_load_n(&G->t[e[i].slot].ok, __ATOMIC_RELAXED);
		row[r - 1].failed += __atomic_load_n(&G->t[e[i].slot].failed, __ATOMIC_RELAXED);
	}
	/* The overflow slot, only once it was used. */
	row[r] = (struct gwm_row){ "_other", __atomic_load_n(&other->ok, __ATOMIC_RELAXED),
				   __atomic_load_n(&other->failed, __ATOMIC_RELAXED), gwm_open_sum(GWM_OTHER) };
	if (row[r].ok || row[r].failed || row[r].open)
		r++;

	fputs("# HELP fief_gateway_ssh_sessions Authenticated ssh connections open now, per tenant "
	      "(a connection may carry several channels).\n"
	      "# TYPE fief_gateway_ssh_sessions gauge\n", f);
	for (size_t i = 0; i < r; i++)
		fprintf(f, "fief_gateway_ssh_sessions{tenant=\"%s\"} %lld\n", row[i].name,
			row[i].open < 0 ? 0 : row[i].open);
	fputs("# HELP fief_gateway_logins_total Connections that logged in (result=\"ok\") or ended without "
	      "logging in after a refused attempt (result=\"failed\"); tenant=\"_unknown\" for names that are "
	      "not tenants.\n"
	      "# TYPE fief_gateway_logins_total counter\n", f);
	for (size_t i = 0; i < r; i++)
		fprintf(f, "fief_gateway_logins_total{tenant=\"%s\",result=\"ok\"} %llu\n"
			   "fief_gateway_logins_total{tenant=\"%s\",result=\"failed\"} %llu\n",
			row[i].name, row[i].ok, row[i].name, row[i].failed);
	fprintf(f, "fief_gateway_logins_total{tenant=\"_unknown\",result=\"failed\"} %llu\n",
		(unsigned long long)__atomic_load_n(&G->unknown_failed, __ATOMIC_RELAXED));
	fputs("# HELP fief_gateway_tenant_slots_used Slots of the gateway's tenant table in use "
	      "(when all are, further tenants count as _other).\n"
	      "# TYPE fief_gateway_tenant_slots_used gauge\n", f);
	fprintf(f, "fief_gateway_tenant_slots_used %zu\n", n);
	fputs("# HELP fief_gateway_start_time_seconds When the gateway started: its counters start from zero then.\n"
	      "# TYPE fief_gateway_start_time_seconds gauge\n", f);
	fprintf(f, "fief_gateway_start_time_seconds %lld\n", (long long)gwm_started);
	free(e);
	free(row);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* ---- serving (master) ---- */

static void gwm_conn_close(struct gwm_conn *c)
{
	for (struct gwm_conn **p = &S.conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	ev_io_stop(EV_DEFAULT, &c->io);
	ev_timer_stop(EV_DEFAULT, &c->timeout);
	close(c->io.fd);
	free(c->out);
	free(c);
	S.n_conns--;
}

static void gwm_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct gwm_conn *c = w->data;

	while (c->off < c->len) {
		ssize_t n = send(w->fd, c->out + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			break;
		c->off += (size_t)n;
	}
	gwm_conn_close(c);
}

static void gwm_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	gwm_conn_close(t->data);
}

/* Every connection gets the whole text, then the close: no request. */
static void gwm_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	for (int i = 0; i < GWM_MAX_CONN; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct gwm_conn *c;

		if (fd < 0)
			return;
		if (S.n_conns >= GWM_MAX_CONN || !(c = calloc(1, sizeof *c))) {
			close(fd);
			continue;
		}
		c->out = gwm_render(&c->len);
		c->next = S.conns;
		S.conns = c;
		S.n_conns++;
		ev_io_init(&c->io, gwm_write_cb, fd, EV_WRITE);
		c->io.data = c;
		ev_timer_init(&c->timeout, gwm_timeout_cb, GWM_CONN_TIMEOUT, 0);
		c->timeout.data = c;
		if (!c->out) {
			gwm_conn_close(c);
			continue;
		}
		ev_io_start(loop, &c->io);
		ev_timer_start(loop, &c->timeout);
	}
}

void gwm_serve_stop(void)
{
	struct stat st;

	while (S.conns)
		gwm_conn_close(S.conns);
	if (S.fd < 0)
		return;
	ev_io_stop(EV_DEFAULT, &S.io);
	close(S.fd);
	S.fd = -1;
	/* Only our own socket: a newer gateway may have replaced it. */
	if (lstat(S.path, &st) == 0 && st.st_ino == S.ino)
		unlink(S.path);
}

int gwm_serve(const char *state_dir, gid_t gid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof sa.sun_path];
	struct stat st;
	mode_t old;
	int fd, r;

	if (!G)
		return -ENOMEM;
	if (snprintf(dir, sizeof dir, "%s/metrics", state_dir) >= (int)sizeof dir ||
	    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/gateway.sock", dir) >= (int)sizeof sa.sun_path) {
		log_warn("metrics: %s/metrics/gateway.sock is too long a path; not served", state_dir);
		return -ENAMETOOLONG;
	}
	if (S.fd >= 0 && !strcmp(S.path, sa.sun_path))
		return chown(S.path, 0, gid) < 0 ? -errno : 0;     /* the user may be another */
	gwm_serve_stop();
	/* The launcher makes it the same way; whoever comes first. */
	if ((r = fs_mkdir_p(dir, 0755, 0, 0)) < 0) {
		log_warn_r(-r, "metrics: cannot make %s; not served", dir);
		return r;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path);
	old = umask(0117);            /* born 0660: no moment open to others */
	r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0 || chown(sa.sun_path, 0, gid) < 0 || chmod(sa.sun_path, 0660) < 0 ||
	    lstat(sa.sun_path, &st) < 0 || listen(fd, 16) < 0) {
		r = -errno;
		log_warn_r(-r, "metrics: cannot serve %s", sa.sun_path);
		close(fd);
		return r;
	}
	S.fd = fd;
	S.ino = st.st_ino;
	memcpy(S.path, sa.sun_path, sizeof S.path);
	ev_io_init(&S.io, gwm_accept_cb, fd, EV_READ);
	ev_io_start(EV_DEFAULT, &S.io);
	return 0;
}

void gwm_worker_start(int proc)
{
	/* The master's watchers are on the loop the worker inherited. */
	while (S.conns) {
		struct gwm_conn *c = S.conns;
		S.conns = c->next;
		ev_io_stop(EV_DEFAULT, &c->io);
		ev_timer_stop(EV_DEFAULT, &c->timeout);
		close(c->io.fd);
		free(c->out);
		free(c);
	}
	S.n_conns = 0;
	if (S.fd >= 0) {
		ev_io_stop(EV_DEFAULT, &S.io);
		close(S.fd);
		S.fd = -1;
	}
	gwm_row = proc;
}
