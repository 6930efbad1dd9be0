/* apps: the tenant init's supervisor of apps and daemons (see apps.h).
 *
 * A unit moves through these states:
 *
 *   IDLE --spawn--> RUNNING --died--> BACKOFF --timer--> RUNNING
 *                   RUNNING --died, APPS_CRASH_MAX in the window--> CRASHLOOP
 *                   CRASHLOOP --APPS_CRASH_RETRY--> RUNNING (dies fast: CRASHLOOP)
 *   any --changed or removed--> STOPPING --group empty--> the new spec, or freed
 *
 * Everything runs as the tenant through tenantproc; the init itself only
 * forks, signals, reads pipes and writes log files. */
#include "apps.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "cronrun.h"
#include "launcher.h"
#include "log.h"
#include "logs.h"
#include "tenantproc.h"

#define UNIT_POLL    0.05            /* seconds between looks at a stopping group */
#define UNIT_POLL_FAST 0.01          /* the same for a uWSGI group */
#define UNIT_READ_MAX (256 * 1024)   /* bytes of output per wakeup, for fairness */

enum unit_state { US_IDLE, US_RUNNING, US_STOPPING, US_BACKOFF, US_CRASHLOOP };

/* What to run: everything a change of the tenant file can change. */
struct unit_spec {
	bool daemon;
	char **argv;                 /* owned, NULL-terminated */
	char *cwd;                   /* owned */
	char *extra_env;             /* FIEF_SOCKET=... or UWSGI_DISABLE_LOGGING=1, or NULL */
	size_t sock_arg;             /* uWSGI: argv index of "/run/NAME.sock"; 0 otherwise */
	bool single;                 /* uWSGI as one process, without its master */
};

struct unit {
	struct unit *next;
	char name[40];
	struct unit_spec spec;
	struct unit_spec pending;    /* replaces spec once stopped (has_pending) */
	bool has_pending, removing, killed, crashloop;
	enum unit_state state;
	pid_t pid;                   /* leader and process group, 0 = none */
	bool leader_gone;            /* STOPPING: reaped, the group may linger */
	/* Switching a uWSGI app to a new spec: `pid` is the new instance on a
	 * temporary socket, `old_pid` the previous one, serving until the new
	 * one renames its socket over /run/NAME.sock (its accepting1
	 * hook: its app is loaded), then drained and stopped. */
	bool switching;
	pid_t old_pid;
	int old_phase;               /* OLD_SERVING, OLD_DRAINING, OLD_TERMED */
	unsigned gen;                /* numbers the temporary sockets */
	char tmp_sock[64];           /* the new instance's, while switching */
	bool awaiting_up;            /* started by apps_start, app not loaded yet */
	ev_timer old_timer;
	ev_tstamp started, stop_began;
	ev_tstamp deaths[APPS_CRASH_MAX]; /* ring of the last deaths */
	unsigned n_deaths;           /* deaths since the last stable run */
	int out_r, out_w;            /* the output pipe, for the unit's lifetime */
	ev_io out_w_io;
	ev_timer timer;              /* backoff, crash-loop retry, stop polling */
	struct logfile log;
};

enum { OLD_SERVING, OLD_DRAINING, OLD_TERMED };

static struct {
	struct ev_loop *loop;
	struct init_args *a;
	struct unit *units;
	bool stopping;
	ev_timer kill_w;             /* the tenant stops: SIGKILL of uWSGI groups */
	int ino_fd;                  /* inotify on /run, made at the first switch; -1 none */
	bool ino_failed;
	ev_io ino_w;
	int settle_fd;               /* the launcher, told once the first apps are up; -1 */
	unsigned settle_left;        /* apps of the first start not up yet */
	char *cfg_buf;               /* a tenant file arriving in parts */
	size_t cfg_len;
	bool cfg_overflow;
} A;

static void unit_spawn(struct unit *u);
static void unit_stopped(struct unit *u);
static void unit_old_kill(struct unit *u);
static void unit_old_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* ---- specs ---- */

struct argvb {
	char **v;
	size_t n, cap;
	bool failed;
};

static void argv_add(struct argvb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void argv_add(struct argvb *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (b->failed)
		return;
	if (b->n + 2 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 32;
		char **v = realloc(b->v, cap * sizeof *v);
		if (!v) {
			b->failed = true;
			return;
		}
		b->v = v;
		b->cap = cap;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		b->failed = true;
		s = NULL;
	}
	va_end(ap);
	if (s) {
		b->v[b->n++] = s;
		b->v[b->n] = NULL;
	}
}

static void argv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void spec_free(struct unit_spec *s)
{
	argv_free(s->argv);
	free(s->cwd);
	free(s->extra_env);
	memset(s, 0, sizeof *s);
}

static bool str_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool spec_equal(const struct unit_spec *a, const struct unit_spec *b)
{
	size_t i;

	if (a->daemon != b->daemon || !str_eq(a->cwd, b->cwd) ||
	    !str_eq(a->extra_env, b->extra_env))
		return false;
	for (i = 0; a->argv[i] && b->argv[i]; i++)
		if (strcmp(a->argv[i], b->argv[i]))
			return false;
	return !a->argv[i] && !b->argv[i];
}

/* A command without shell syntax is run with "exec", so the process we
 * supervise and signal is the server itself rather than a shell. */
static bool command_is_simple(const char *cmd)
{
	static const char *const builtins[] = { "cd", "exec", "export", "set", "ulimit", "umask",
						"trap", "eval", ".", "exit", "read", "wait", "if",
						"for", "while", "until", "case", "!", NULL };
	size_t first = strcspn(cmd, " ");

	if (!*cmd || cmd[strspn(cmd, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789 _./,:+@%=-")])
		return false;
	if (memchr(cmd, '=', first))
		return false;                /* an assignment: "A=b server" */
	for (int i = 0; builtins[i]; i++)
		if (strlen(builtins[i]) == first && !strncmp(cmd, builtins[i], first))
			return false;
	return true;
}

static void argv_shell(struct argvb *b, const char *prefix, const char *cmd)
{
	argv_add(b, "/bin/sh");
	argv_add(b, "-c");
	argv_add(b, "%s%s%s", prefix, command_is_simple(cmd) ? "exec " : "", cmd);
}

/* uWSGI options shared by the three app types. Returns the index of the
 * socket path in the argv. No --vacuum: a previous instance that exits
 * after a switch would unlink the new one's socket, and uWSGI removes a
 * stale socket file itself before it binds.
 *
 * One worker runs as a single process, without uWSGI's master: the init
 * already restarts it when it dies, and the master would cost a second
 * process, a fork, and its copy-on-write faults at every start (about
 * 40 ms of CPU of the 100 a start costs). A tenant that wants the master's
 * features anyway (harakiri, max-requests) sets UWSGI_MASTER in its env
 * (uwsgi_single). */
static size_t argv_uwsgi(struct argvb *b, const struct config_app *app, bool single)
{
	size_t sock;

	argv_add(b, "--socket");
	sock = b->n;
	argv_add(b, "/run/%s.sock", app->name);
	/* nginx (www-data on the host) connects; the socket's folder on the
	 * host is state_dir/tenants/NAME/run, which nothing else can reach. */
	argv_add(b, "--chmod-socket=666");
	if (!single) {
		argv_add(b, "--master");
		argv_add(b, "--workers");
		argv_add(b, "%lld", (long long)app->workers);
		if (app->lazy_apps)
			argv_add(b, "--lazy-apps");
	}
	argv_add(b, "--die-on-term");
	argv_add(b, "--need-app");
	argv_add(b, "--chdir");
	argv_add(b, "%s", app->chdir);
	return sock;
}

/* Per app type: the uWSGI plugin, as the distro names it, and its option. */
static const struct {
	const char *plugin, *option;
} uwsgi_types[] = {
	[APP_WSGI] = { "python3", "--module" },
	[APP_PSGI] = { "psgi", "--psgi" },
	[APP_RACK] = { "rack_ruby31", "--rack" },
};

static bool env_has(const struct config_tenant *c, const char *name)
{
	for (size_t i = 0; i < c->env.n; i++)
		if (!strcmp(c->env.v[i].name, name))
			return true;
	return false;
}

/* One worker, and nothing in the tenant's env that asks uWSGI for a master
 * or for more processes (uWSGI reads UWSGI_* variables as options; more
 * processes without a master would be workers nobody respawns). */
static bool uwsgi_single(const struct config_tenant *c, const struct config_app *app)
{
	static const char *const wants_master[] = { "UWSGI_MASTER", "UWSGI_WORKERS", "UWSGI_PROCESSES" };

	if (app->workers != 1)
		return false;
	for (size_t i = 0; i < sizeof wants_master / sizeof wants_master[0]; i++)
		if (env_has(c, wants_master[i]))
			return false;
	return true;
}

static int spec_for_app(const struct config_tenant *c, const struct config_app *app,
			struct unit_spec *s)
{
	struct argvb b = { 0 };

	memset(s, 0, sizeof *s);
	switch (app->type) {
	case APP_WSGI:
	case APP_PSGI:
	case APP_RACK:
		argv_add(&b, APPS_UWSGI);
		argv_add(&b, "--plugin");
		argv_add(&b, "%s", uwsgi_types[app->type].plugin);
		argv_add(&b, "%s", uwsgi_types[app->type].option);
		argv_add(&b, "%s", app->type == APP_WSGI ? app->module : app->script);
		if (app->type == APP_RACK) {
			argv_add(&b, "--post-buffering");
			argv_add(&b, "4096");
		}
		s->single = uwsgi_single(c, app);
		s->sock_arg = argv_uwsgi(&b, app, s->single);
		/* No request logging unless the tenant asks for it in its env
		 * (UWSGI_DISABLE_LOGGING: "false"): each request would cost a
		 * write through the init. Not --disable-logging, which the
		 * environment cannot undo. */
		if (!env_has(c, "UWSGI_DISABLE_LOGGING") &&
		    !(s->extra_env = strdup("UWSGI_DISABLE_LOGGING=1")))
			b.failed = true;
		break;
	default:
		/* A stale socket from the previous run would make bind() fail;
		 * the tenant's own shell removes it (the init never touches a
		 * tenant path as root). */
		argv_shell(&b, "rm -f -- \"$FIEF_SOCKET\"\n", app->command);
		if (asprintf(&s->extra_env, "FIEF_SOCKET=/run/%s.sock", app->name) < 0)
			s->extra_env = NULL, b.failed = true;
		break;
	}
	s->cwd = strdup(app->chdir);
	s->argv = b.v;
	if (b.failed || !s->cwd || !s->argv) {
		spec_free(s);
		return -1;
	}
	return 0;
}

static int spec_for_daemon(const struct config_daemon *d, const char *home, struct unit_spec *s)
{
	struct argvb b = { 0 };

	memset(s, 0, sizeof *s);
	s->daemon = true;
	argv_shell(&b, "", d->command);
	s->argv = b.v;
	s->cwd = strdup(home);
	if (b.failed || !s->cwd || !s->argv) {
		spec_free(s);
		return -1;
	}
	return 0;
}

static const char *unit_kind(const struct unit *u)
{
	return u->spec.daemon ? "daemon" : "app";
}

/* ---- output ---- */

static void unit_out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	static char buf[65536];
	struct unit *u = w->data;
	size_t total = 0;

	while (total < UNIT_READ_MAX) {
		ssize_t n = read(u->out_r, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		logfile_write(&u->log, buf, (size_t)n);
		total += (size_t)n;
	}
}

static void unit_note(struct unit *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line in the unit's own log, for the tenant to read. */
static void unit_note(struct unit *u, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logfile_vnote(&u->log, fmt, ap);
	va_end(ap);
}

/* ---- lifecycle ---- */

static struct unit *unit_new(const char *name, struct unit_spec *spec)
{
	struct unit *u = calloc(1, sizeof *u);
	char log_name[64];
	int p[2];

	if (!u)
		return NULL;
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_warn_r(errno, "%s: cannot make an output pipe", name);
		free(u);
		return NULL;
	}
	/* Only our end is non-blocking: a unit that writes faster than the
	 * disk takes waits, and the init never does. */
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	u->out_r = p[0];
	u->out_w = p[1];
	snprintf(u->name, sizeof u->name, "%s", name);
	u->spec = *spec;
	memset(spec, 0, sizeof *spec);
	snprintf(log_name, sizeof log_name, "%s.log", name);
	logfile_init(&u->log, A.a->log_fd, log_name, A.a->gid);
	ev_io_init(&u->out_w_io, unit_out_cb, u->out_r, EV_READ);
	u->out_w_io.data = u;
	ev_io_start(A.loop, &u->out_w_io);
	ev_init(&u->timer, NULL);
	u->timer.data = u;
	ev_init(&u->old_timer, unit_old_cb);
	u->old_timer.data = u;
	u->next = A.units;
	A.units = u;
	return u;
}

static void unit_free(struct unit *u)
{
	for (struct unit **pp = &A.units; *pp; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	ev_timer_stop(A.loop, &u->timer);
	unit_old_kill(u);
	/* What is still in the pipe belongs in the log. */
	unit_out_cb(A.loop, &u->out_w_io, EV_READ);
	ev_io_stop(A.loop, &u->out_w_io);
	close(u->out_r);
	close(u->out_w);
	logfile_close(&u->log);
	spec_free(&u->spec);
	spec_free(&u->pending);
	free(u);
}

static void unit_timer(struct unit *u, ev_tstamp after,
		       void (*cb)(struct ev_loop *, ev_timer *, int))
{
	ev_timer_stop(A.loop, &u->timer);
	ev_set_cb(&u->timer, cb);
	ev_timer_set(&u->timer, after, 0);
	ev_timer_start(A.loop, &u->timer);
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

static void unit_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct unit *u = w->data;

	ev_timer_stop(loop, w);
	if (!A.stopping && (u->state == US_BACKOFF || u->state == US_CRASHLOOP))
		unit_spawn(u);
}

/* Count the deaths of the last APPS_CRASH_WINDOW seconds (the ring keeps
 * the last APPS_CRASH_MAX of them). */
static unsigned unit_recent_deaths(const struct unit *u, ev_tstamp now)
{
	unsigned n = 0, have = u->n_deaths < APPS_CRASH_MAX ? u->n_deaths : APPS_CRASH_MAX;

	for (unsigned i = 0; i < have; i++)
		n += now - u->deaths[i] <= APPS_CRASH_WINDOW;
	return n;
}

/* Died without being asked to: back off, or call it a crash loop. */
static void unit_schedule_restart(struct unit *u, const char *how)
{
	ev_tstamp now = ev_time(), delay;
	unsigned recent;

	if (u->started && now - u->started >= APPS_STABLE_AFTER) {
		u->n_deaths = 0;
		u->crashloop = false;
	}
	u->deaths[u->n_deaths % APPS_CRASH_MAX] = now;
	u->n_deaths++;
	recent = unit_recent_deaths(u, now);
	if (u->crashloop || recent >= APPS_CRASH_MAX) {
		if (!u->crashloop) {
			log_error("%s %s: crash loop: %u exits within %.0f s, the last %s; "
				  "retrying every %.0f s", unit_kind(u), u->name, recent,
				  APPS_CRASH_WINDOW, how, APPS_CRASH_RETRY);
			unit_note(u, "crash loop: %u exits within %.0f s, the last %s; "
				  "retrying every %.0f s", recent, APPS_CRASH_WINDOW, how,
				  APPS_CRASH_RETRY);
		} else {
			unit_note(u, "still failing (%s); next try in %.0f s", how,
				  APPS_CRASH_RETRY);
		}
		u->crashloop = true;
		u->state = US_CRASHLOOP;
		delay = APPS_CRASH_RETRY;
	} else {
		unsigned doublings = u->n_deaths - 1 < 16 ? u->n_deaths - 1 : 16;

		delay = APPS_BACKOFF_FIRST * (double)(1u << doublings);
		if (delay > APPS_BACKOFF_MAX)
			delay = APPS_BACKOFF_MAX;
		u->state = US_BACKOFF;
		log_warn("%s %s: %s; restarting in %.1f s", unit_kind(u), u->name, how, delay);
		unit_note(u, "%s; restarting in %.1f s", how, delay);
	}
	unit_timer(u, delay, unit_retry_cb);
}

/* Is anything left of the unit's process group? */
static bool unit_group_alive(const struct unit *u)
{
	return u->pid > 0 && (kill(-u->pid, 0) == 0 || errno == EPERM);
}

static void unit_stop_poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct unit *u = w->data;
	bool uwsgi = u->spec.sock_arg > 0;

	if (u->leader_gone && !unit_group_alive(u)) {
		unit_stopped(u);
		return;
	}
	if (!u->killed && uwsgi && ev_time() - u->stop_began >= APPS_UWSGI_STOP_GRACE) {
		/* uWSGI's SIGTERM (--die-on-term) already ends the workers
		 * at once; its master then idles for a second: no need. */
		kill(-u->pid, SIGKILL);
		u->killed = true;
	} else if (!u->killed && ev_time() - u->stop_began >= APPS_STOP_GRACE) {
		log_warn("%s %s: still running %.0f s after SIGTERM: SIGKILL", unit_kind(u),
			 u->name, APPS_STOP_GRACE);
		unit_note(u, "still running %.0f s after SIGTERM: killed", APPS_STOP_GRACE);
		kill(-u->pid, SIGKILL);
		u->killed = true;
	}
	unit_timer(u, uwsgi ? UNIT_POLL_FAST : UNIT_POLL, unit_stop_poll_cb);
}

/* ---- switching a uWSGI app without a gap ---- */

static void unit_old_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct unit *u = w->data;

	ev_timer_stop(loop, w);
	if (u->old_pid <= 0)
		return;
	if (u->old_phase == OLD_DRAINING) {
		kill(-u->old_pid, SIGTERM);
		kill(-u->old_pid, SIGCONT);
		u->old_phase = OLD_TERMED;
		ev_timer_set(w, APPS_UWSGI_STOP_GRACE, 0);
		ev_timer_start(loop, w);
	} else {
		kill(-u->old_pid, SIGKILL);
	}
}

/* The new instance serves /run/NAME.sock: give the previous one a moment
 * for what it already accepted, then end it. */
static void unit_old_retire(struct unit *u, ev_tstamp drain)
{
	if (u->old_pid <= 0 || u->old_phase != OLD_SERVING)
		return;
	u->old_phase = OLD_DRAINING;
	ev_timer_stop(A.loop, &u->old_timer);
	ev_timer_set(&u->old_timer, drain, 0);
	ev_timer_start(A.loop, &u->old_timer);
}

/* An instance that is no longer worth a word: killed with its group and
 * reaped without a callback. */
static void unit_abandon(pid_t pid)
{
	kill(-pid, SIGKILL);
	tenantproc_forget(pid);
}

/* The previous instance goes at once. */
static void unit_old_kill(struct unit *u)
{
	ev_timer_stop(A.loop, &u->old_timer);
	if (u->old_pid > 0)
		unit_abandon(u->old_pid);
	u->old_pid = 0;
}

/* Tell the launcher that this start is over, once: its slot goes to the
 * next tenant waiting to start (launcher.start_concurrency). */
static void apps_settle_check(void)
{
	char msg = SYNC_SETTLED;

	if (A.settle_fd < 0 || A.settle_left)
		return;
	if (send(A.settle_fd, &msg, 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
		log_debug("cannot tell the launcher the apps are up: %s", strerror(errno));
	A.settle_fd = -1;
	init_release_memory_soon();
}

/* A first-start app is up, or will never be (it died, it is stopped). */
static void unit_up_done(struct unit *u)
{
	if (!u->awaiting_up)
		return;
	u->awaiting_up = false;
	A.settle_left--;
	apps_settle_check();
}

/* /run/.NAME.up written: the first worker of NAME's current instance has
 * its app loaded and accepts (its accepting1 hook, unit_hooked_argv).
 * The tenant can write that file too; it then only ends its own wait. */
static void apps_up_marker(const char *name, size_t len)
{
	if (len < 5 || name[0] != '.' || strcmp(name + len - 3, ".up"))
		return;
	for (struct unit *u = A.units; u; u = u->next)
		if (u->spec.sock_arg && u->pid > 0 && strlen(u->name) == len - 4 &&
		    !strncmp(u->name, name + 1, len - 4)) {
			unit_note(u, "answering, %.0f ms after its start", (ev_time() - u->started) * 1e3);
			unit_up_done(u);
		}
}

/* A rename in /run: IN_MOVED_FROM (the source name) and IN_MOVED_TO (the
 * target), paired by their cookie. Only the current new instance's
 * temporary socket arriving at /run/NAME.sock ends a switch (not a rename
 * by an instance abandoned a moment ago, nor one by the tenant). */
static void apps_ino_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	static char from[64];
	static uint32_t from_cookie;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			size_t len = ev->len ? strlen(ev->name) : 0;

			p += sizeof *ev + ev->len;
			if (ev->mask & IN_CLOSE_WRITE) {
				apps_up_marker(ev->name, len);
				continue;
			}
			if (ev->mask & IN_MOVED_FROM) {
				snprintf(from, sizeof from, "/run/%s", len ? ev->name : "");
				from_cookie = ev->cookie;
				continue;
			}
			if (len <= 5 || strcmp(ev->name + len - 5, ".sock"))
				continue;
			for (struct unit *u = A.units; u; u = u->next)
				if (u->switching && strlen(u->name) == len - 5 &&
				    !strncmp(u->name, ev->name, len - 5) &&
				    from_cookie == ev->cookie && !strcmp(from, u->tmp_sock)) {
					u->switching = false;
					log_info("app %s: the new instance (pid %d) took the socket",
						 u->name, (int)u->pid);
					unit_note(u, "the new instance (pid %d) took over the socket",
						  (int)u->pid);
					unit_old_retire(u, APPS_SWITCH_DRAIN);
				}
		}
	}
}

/* Watch /run for the renames that end a switch. False: no switching. */
static bool apps_ino_ready(void)
{
	if (A.ino_fd >= 0)
		return true;
	if (A.ino_failed)
		return false;
	A.ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (A.ino_fd < 0 || inotify_add_watch(A.ino_fd, "/run", IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
		log_warn_r(errno, "cannot watch /run: changed apps stop before they start again");
		if (A.ino_fd >= 0)
			close(A.ino_fd);
		A.ino_fd = -1;
		A.ino_failed = true;
		return false;
	}
	ev_io_init(&A.ino_w, apps_ino_cb, A.ino_fd, EV_READ);
	ev_io_start(A.loop, &A.ino_w);
	return true;
}

static void unit_exited(pid_t pid, int status, void *data)
{
	struct unit *u = data;
	char how[96];

	if (pid == u->old_pid) {
		/* The previous instance: whatever it leaves goes with it. */
		kill(-pid, SIGKILL);
		ev_timer_stop(A.loop, &u->old_timer);
		u->old_pid = 0;
		if (u->old_phase == OLD_SERVING && !A.stopping) {
			describe_status(status, how, sizeof how);
			unit_note(u, "the previous instance %s while the new one starts", how);
		}
		return;
	}
	if (u->pid != pid)
		return;
	u->switching = false;
	unit_up_done(u);
	describe_status(status, how, sizeof how);
	if (u->state == US_STOPPING) {
		u->leader_gone = true;
		unit_note(u, "stopped (%s)", how);
		if (!unit_group_alive(u))
			unit_stopped(u);
		return;
	}
	/* What the leader leaves behind (workers, a shell's children) would
	 * hold the socket or the port against the next start. The pid cannot
	 * have been reused: the group had a member until now, or is empty. */
	kill(-pid, SIGKILL);
	u->pid = 0;
	if (A.stopping)
		return;
	unit_schedule_restart(u, how);
}

/* The argv of a uWSGI instance, with what its first worker does once the
 * app is loaded and it accepts (accepting1 hooks, run in order):
 * - it writes /run/.NAME.up (apps_up_marker: the app is up), and unlinks
 *   it at once (the event names it; nothing stays behind in /run);
 * - when it starts while the previous instance serves (`sw`), its socket
 *   is at a temporary path, which it renames over /run/NAME.sock.
 * Under a master, the -once hooks: a respawned worker must not rename
 * again. Without one, those never run, and the plain ones run once, as
 * the single process has one life.
 * NULL when out of memory. */
static char **unit_hooked_argv(struct unit *u, bool sw, char hooks[3][160])
{
	const char *opt = u->spec.single ? "--hook-accepting1" : "--hook-accepting1-once";
	size_t n = 0, k;
	char **v;

	while (u->spec.argv[n])
		n++;
	v = calloc(n + 7, sizeof *v);
	if (!v)
		return NULL;
	memcpy(v, u->spec.argv, n * sizeof *v);
	k = n;
	snprintf(hooks[0], sizeof hooks[0], "write:/run/.%s.up 1", u->name);
	snprintf(hooks[2], sizeof hooks[2], "unlink:/run/.%s.up", u->name);
	v[k++] = (char *)opt;
	v[k++] = hooks[0];
	v[k++] = (char *)opt;
	v[k++] = hooks[2];
	if (sw) {
		snprintf(u->tmp_sock, sizeof u->tmp_sock, "/run/.%s.%u.sock", u->name, ++u->gen);
		snprintf(hooks[1], sizeof hooks[1], "exec:/bin/mv -f %s /run/%s.sock", u->tmp_sock, u->name);
		v[u->spec.sock_arg] = u->tmp_sock;
		v[k++] = (char *)opt;
		v[k++] = hooks[1];
	}
	return v;
}

static void unit_spawn(struct unit *u)
{
	char *extra[1] = { u->spec.extra_env };
	char **env = tenantproc_env(extra, u->spec.extra_env ? 1 : 0);
	char hooks[3][160], **argv = u->spec.argv, **hv = NULL;
	bool sw = u->old_pid > 0 && u->spec.sock_arg && A.ino_fd >= 0;
	pid_t pid;

	if (u->spec.sock_arg && A.ino_fd >= 0 && !(hv = unit_hooked_argv(u, sw, hooks))) {
		tenantproc_env_free(env);
		env = NULL;
	}
	if (!env) {
		unit_schedule_restart(u, "could not be started: out of memory");
		return;
	}
	if (hv)
		argv = hv;
	pid = tenantproc_spawn(&(struct tp_spec){
		.path = argv[0], .argv = argv, .envp = env, .cwd = u->spec.cwd,
		.fd_in = -1, .fd_out = u->out_w, .fd_err = u->out_w, .ctty = -1,
		.on_exit = unit_exited, .data = u,
	});
	free(hv);
	u->switching = pid > 0 && sw;
	tenantproc_env_free(env);
	if (pid < 0) {
		char how[96];
		snprintf(how, sizeof how, "could not be started: %s", strerror(errno));
		unit_schedule_restart(u, how);
		return;
	}
	u->pid = pid;
	u->state = US_RUNNING;
	u->started = ev_time();
	if (A.settle_fd == -2 && u->spec.sock_arg && A.ino_fd >= 0 && !u->awaiting_up) {
		u->awaiting_up = true;       /* apps_start: the launcher waits for it */
		A.settle_left++;
	}
	u->leader_gone = u->killed = false;
	log_info("%s %s: started (pid %d)", unit_kind(u), u->name, (int)pid);
	unit_note(u, "started %s (pid %d)", unit_kind(u), (int)pid);
}

/* SIGTERM to the whole group; unit_stopped() once it is empty. */
static void unit_stop(struct unit *u)
{
	if (u->state == US_STOPPING)
		return;
	ev_timer_stop(A.loop, &u->timer);
	unit_old_kill(u);
	u->switching = false;
	if (!u->pid) {
		unit_stopped(u);
		return;
	}
	unit_up_done(u);
	u->state = US_STOPPING;
	u->stop_began = ev_time();
	u->leader_gone = u->killed = false;
	kill(-u->pid, SIGTERM);
	kill(-u->pid, SIGCONT);
	unit_timer(u, u->spec.sock_arg ? UNIT_POLL_FAST : UNIT_POLL, unit_stop_poll_cb);
}

static void unit_stopped(struct unit *u)
{
	ev_timer_stop(A.loop, &u->timer);
	u->pid = 0;
	u->state = US_IDLE;
	if (u->removing) {
		log_info("%s %s: removed", unit_kind(u), u->name);
		unit_note(u, "removed from the tenant file");
		unit_free(u);
		return;
	}
	if (u->has_pending) {
		spec_free(&u->spec);
		u->spec = u->pending;
		memset(&u->pending, 0, sizeof u->pending);
		u->has_pending = false;
		u->n_deaths = 0;
		u->crashloop = false;
		u->started = 0;
		if (!A.stopping)
			unit_spawn(u);
	}
}

/* ---- the tenant file ---- */

static struct unit *unit_find(const char *name)
{
	for (struct unit *u = A.units; u; u = u->next)
		if (!strcmp(u->name, name))
			return u;
	return NULL;
}

/* Run this spec under this name: a new unit, a changed one restarted, an
 * unchanged one left alone (unless `force`, for a changed environment). */
static void apps_apply_unit(const char *name, struct unit_spec *spec, bool force)
{
	struct unit *u = unit_find(name);

	if (!u) {
		u = unit_new(name, spec);
		if (u)
			unit_spawn(u);
		else
			spec_free(spec);
		return;
	}
	if (!u->removing && !force && spec_equal(&u->spec, spec) && !u->has_pending) {
		spec_free(spec);
		return;
	}
	if (!u->removing && u->state != US_STOPPING && u->spec.sock_arg && spec->sock_arg &&
	    ((u->state == US_RUNNING && u->pid > 0) ||
	     (u->old_pid > 0 && u->old_phase == OLD_SERVING)) && apps_ino_ready()) {
		/* A uWSGI app: the new instance starts beside the one that
		 * serves, which stops once the new one has the socket. */
		log_info("app %s: changed, starting the new instance beside the old", name);
		unit_note(u, "the tenant file changed: starting a new instance");
		if (u->pid > 0 && u->switching) {
			unit_abandon(u->pid);    /* a new instance that never served */
		} else if (u->pid > 0) {
			unit_old_kill(u);        /* one that still drains */
			u->old_pid = u->pid;
			u->old_phase = OLD_SERVING;
		}
		u->pid = 0;
		u->switching = false;
		ev_timer_stop(A.loop, &u->timer);
		spec_free(&u->spec);
		u->spec = *spec;
		memset(spec, 0, sizeof *spec);
		spec_free(&u->pending);
		u->has_pending = false;
		u->n_deaths = 0;
		u->crashloop = false;
		u->started = 0;
		unit_spawn(u);
		return;
	}
	log_info("%s %s: changed, restarting it", spec->daemon ? "daemon" : "app", name);
	u->removing = false;
	spec_free(&u->pending);
	u->pending = *spec;
	u->has_pending = true;
	memset(spec, 0, sizeof *spec);
	if (u->state == US_STOPPING)
		return;              /* unit_stopped() takes the pending spec */
	unit_note(u, "the tenant file changed: restarting");
	unit_stop(u);
}

static bool apps_cfg_has(const struct config_tenant *c, const char *name)
{
	for (size_t i = 0; i < c->apps.n; i++)
		if (!strcmp(c->apps.v[i].name, name))
			return true;
	for (size_t i = 0; i < c->daemons.n; i++)
		if (!strcmp(c->daemons.v[i].name, name))
			return true;
	return false;
}

static bool env_equal(const struct env_vec *a, const struct env_vec *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, b->v[i].name) || strcmp(a->v[i].value, b->v[i].value))
			return false;
	return true;
}

/* Bring the units in line with c; `force` restarts even unchanged ones. */
static void apps_apply(const struct config_tenant *c, bool force)
{
	struct unit_spec spec;

	if (c->apps.n)
		apps_ino_ready();    /* before any spawn: the up markers, the switches */
	for (struct unit *u = A.units, *next; u; u = next) {
		next = u->next;
		if (!u->removing && !apps_cfg_has(c, u->name)) {
			u->removing = true;
			u->has_pending = false;
			spec_free(&u->pending);
			unit_stop(u);    /* may free u */
		}
	}
	for (size_t i = 0; i < c->apps.n; i++) {
		if (spec_for_app(c, &c->apps.v[i], &spec) < 0) {
			log_error("app %s: out of memory", c->apps.v[i].name);
			continue;
		}
		apps_apply_unit(c->apps.v[i].name, &spec, force);
	}
	for (size_t i = 0; i < c->daemons.n; i++) {
		if (spec_for_daemon(&c->daemons.v[i], tenantproc_home(), &spec) < 0) {
			log_error("daemon %s: out of memory", c->daemons.v[i].name);
			continue;
		}
		apps_apply_unit(c->daemons.v[i].name, &spec, force);
	}
}

/* Tell the launcher (its log, `fiefctl status`) why a reload did not happen. */
static void apps_refuse(int sync_fd, const char *why)
{
	char msg[300];

	log_error("live reload refused: %s", why);
	snprintf(msg, sizeof msg, "%clive reload refused: %s", SYNC_ERROR, why);
	if (send(sync_fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("cannot tell the launcher: %s", strerror(errno));
}

/* The launcher checked this file with the same parser before sending it;
 * parse it again here all the same, since it is all the init gets. */
static void apps_reload(int sync_fd, const char *buf, size_t len)
{
	const struct config_tenant *old = A.a->cfg;
	struct config_tenant *cfg;
	struct config_errors errs;
	char err[300];
	bool env_changed;

	cfg = config_tenant_parse(old->file, buf, len, A.a->host, &errs);
	if (!cfg) {
		if (errs.n)
			config_error_format(&errs, 0, err, sizeof err);
		else
			snprintf(err, sizeof err, "%s: cannot parse", old->file);
		apps_refuse(sync_fd, err);
		return;
	}
	env_changed = !env_equal(&old->env, &cfg->env);
	/* From here on tenantproc, the agent and new units see the new file. */
	A.a->cfg = cfg;
	log_info("live reload%s", env_changed ? " (environment changed: every unit restarts)" : "");
	apps_apply(cfg, env_changed);
	cronrun_replace(cfg);
	/* The init owns its copy of the launcher's memory, this one included. */
	config_tenant_free((struct config_tenant *)old);
}

void apps_sync_message(int sync_fd, const char *msg, size_t len)
{
	if (len < 1 || (msg[0] != SYNC_CONFIG_PART && msg[0] != SYNC_CONFIG))
		return;
	if (!A.a || A.stopping)
		return;
	if (!A.cfg_buf && !(A.cfg_buf = malloc(CONFIG_MAX_FILE)))
		A.cfg_overflow = true;
	if (A.cfg_buf && A.cfg_len + len - 1 <= CONFIG_MAX_FILE) {
		memcpy(A.cfg_buf + A.cfg_len, msg + 1, len - 1);
		A.cfg_len += len - 1;
	} else {
		A.cfg_overflow = true;
	}
	if (msg[0] != SYNC_CONFIG)
		return;
	if (A.cfg_overflow)
		apps_refuse(sync_fd, "the tenant file is too large");
	else
		apps_reload(sync_fd, A.cfg_buf, A.cfg_len);
	free(A.cfg_buf);
	A.cfg_buf = NULL;
	A.cfg_len = 0;
	A.cfg_overflow = false;
}

static double env_double(const char *name, double dflt)
{
	const char *s = getenv(name);
	char *end;
	double v;

	if (!s || !*s)
		return dflt;
	v = strtod(s, &end);
	return *end ? dflt : v;
}

void apps_start(struct ev_loop *loop, struct init_args *a)
{
	A.loop = loop;
	A.a = a;
	A.ino_fd = -1;
	A.settle_fd = -2;            /* unit_spawn: count the apps to wait for */
	/* Test hook (the launcher's environment, which only root sets). */
	logs_configure((uint64_t)env_double("FIEF_LOG_ROTATE_BYTES", LOGS_ROTATE_BYTES), LOGS_KEEP);
	if (a->log_fd < 0)
		log_warn("no log directory: app, daemon and cron output is discarded");
	apps_apply(a->cfg, false);
	A.settle_fd = -1;
	cronrun_start(loop, a, env_double("FIEF_CRON_CLOCK_OFFSET", 0),
		      env_double("FIEF_CRON_CLOCK_SCALE", 1));
}

void apps_settle_begin(int sync_fd)
{
	A.settle_fd = sync_fd;
	apps_settle_check();
}

static void apps_kill_uwsgi_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_timer_stop(loop, w);
	for (struct unit *u = A.units; u; u = u->next) {
		if (u->spec.sock_arg && u->pid > 0)
			kill(-u->pid, SIGKILL);
		if (u->old_pid > 0)
			kill(-u->old_pid, SIGKILL);
	}
}

void apps_stop(void)
{
	A.stopping = true;
	for (struct unit *u = A.units; u; u = u->next) {
		ev_timer_stop(A.loop, &u->timer);
		ev_timer_stop(A.loop, &u->old_timer);
	}
	cronrun_stop();
	/* The init sends SIGTERM to everything; uWSGI's workers are gone in
	 * milliseconds, its master would idle a second more. */
	ev_timer_init(&A.kill_w, apps_kill_uwsgi_cb, APPS_UWSGI_STOP_GRACE, 0);
	ev_timer_start(A.loop, &A.kill_w);
}
