/* watch: tenants_dir through inotify.
 *
 * Events are only hints. The names they mention are collected until the
 * folder has been quiet for WATCH_QUIET (or WATCH_MAX_WAIT has passed),
 * then each is compared with what runs: a file whose bytes did not change
 * does nothing, so an editor's save dance (temp file, rename, chmod, a
 * burst of writes) ends in exactly one action. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher.h"
#include "log.h"

#define WATCH_QUIET    0.02      /* seconds without events before acting */
#define WATCH_COMPLETE 0.001     /* the same after a close or a rename into place */
#define WATCH_MAX_WAIT 0.25      /* act at the latest this long after the first event */
#define WATCH_MAX_PENDING 4096

static struct {
	struct launcher *L;
	ev_io io;
	ev_timer quiet;
	ev_tstamp first;
	char *pending[WATCH_MAX_PENDING];
	size_t n_pending;
	bool rescan;                 /* queue overflow or start: look at everything */
} W;

/* NAME.yaml with a safe NAME; everything else in the folder is ignored. */
static bool watch_name(const char *file, char *name, size_t len)
{
	if (file[0] == '.')
		return false;
	if (config_tenant_name_from_path(file, name, len) == 0)
		return true;
	if (strlen(file) > 5 && !strcmp(file + strlen(file) - 5, ".yaml"))
		log_error("%s/%s: ignored: a tenant file is NAME.yaml with NAME matching [a-z][a-z0-9-]{0,31}",
			  W.L->host->tenants_dir, file);
	return false;
}

static void watch_one(const char *name)
{
	struct launcher *L = W.L;
	char path[PATH_MAX];
	struct tenant *t = tenant_find(L, name);
	struct stat st;

	snprintf(path, sizeof path, "%s/%s.yaml", L->host->tenants_dir, name);
	if (stat(path, &st) < 0) {
		if (t && t->state != TS_STOPPING)
			tenant_remove(L, t);
		else if (t && t->next != NEXT_REMOVE)
			tenant_stop(t, NEXT_REMOVE);
		return;
	}
	tenant_apply_file(L, name, path);
}

static void watch_rescan(void)
{
	struct launcher *L = W.L;
	DIR *d = opendir(L->host->tenants_dir);
	struct dirent *de;
	char name[64];

	if (!d) {
		log_error_r(errno, "cannot read %s", L->host->tenants_dir);
		return;
	}
	while ((de = readdir(d)))
		if (watch_name(de->d_name, name, sizeof name))
			watch_one(name);
	closedir(d);
	/* Tenants whose file has gone. */
	for (struct tenant *t = L->tenants, *next; t; t = next) {
		next = t->next_t;
		watch_one(t->name);
	}
}

static void watch_flush(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_timer_stop(loop, w);
	W.first = 0;
	if (W.rescan) {
		W.rescan = false;
		watch_rescan();
	} else {
		for (size_t i = 0; i < W.n_pending; i++)
			watch_one(W.pending[i]);
	}
	for (size_t i = 0; i < W.n_pending; i++)
		free(W.pending[i]);
	W.n_pending = 0;
}

static void watch_note(const char *name)
{
	for (size_t i = 0; i < W.n_pending; i++)
		if (!strcmp(W.pending[i], name))
			return;
	if (W.n_pending == WATCH_MAX_PENDING) {
		W.rescan = true;
		return;
	}
	W.pending[W.n_pending] = strdup(name);
	if (W.pending[W.n_pending])
		W.n_pending++;
	else
		W.rescan = true;
}

static void watch_arm(struct ev_loop *loop, ev_tstamp quiet)
{
	ev_tstamp now = ev_now(loop), wait = quiet;

	if (!W.first)
		W.first = now;
	if (now + wait > W.first + WATCH_MAX_WAIT)
		wait = W.first + WATCH_MAX_WAIT - now;
	if (wait < 0.001)
		wait = 0.001;
	ev_timer_stop(loop, &W.quiet);
	ev_timer_set(&W.quiet, wait, 0);
	ev_timer_start(loop, &W.quiet);
}

static void watch_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	char name[64];
	bool complete = false, partial = false;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				W.rescan = true;
			else if (ev->len && watch_name(ev->name, name, sizeof name)) {
				watch_note(name);
				/* A file closed after writing or renamed into place is
				 * complete: act almost at once. Other events may be a
				 * writer halfway through: wait for quiet. */
				complete |= (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) != 0;
				partial |= (ev->mask & (IN_MODIFY | IN_CREATE)) != 0 &&
					   !(ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO));
			}
			p += sizeof *ev + ev->len;
		}
	}
	if (W.rescan || W.n_pending)
		watch_arm(loop, complete && !partial ? WATCH_COMPLETE : WATCH_QUIET);
}

int watch_start(struct launcher *L)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	W.L = L;
	if (fd < 0 || inotify_add_watch(fd, L->host->tenants_dir,
					IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM |
					IN_CREATE | IN_DELETE | IN_ATTRIB | IN_ONLYDIR) < 0) {
		log_error_r(errno, "cannot watch %s", L->host->tenants_dir);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	ev_io_init(&W.io, watch_io_cb, fd, EV_READ);
	ev_io_start(L->loop, &W.io);
	ev_init(&W.quiet, watch_flush);
	/* Everything present at start is deployed. */
	watch_rescan();
	return 0;
}
