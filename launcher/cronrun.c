/* cronrun: the tenant init's cron (see cronrun.h). */
#include "cronrun.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "cron.h"
#include "launcher.h"
#include "log.h"
#include "logs.h"
#include "tenantproc.h"

#define CRONRUN_SLACK 0.005          /* real seconds past the minute to wake up */

/* One cron line, and its run when one is going on. */
struct job {
	struct job *next;
	struct cron_entry e;         /* e.command owned */
	unsigned id;                 /* 1-based position in the file */
	bool retired;                /* gone from the file, still running */
	pid_t pid;                   /* 0 = not running */
	int out_r;                   /* the run's output, -1 = closed */
	ev_io out_io;
	ev_tstamp started;
};

static struct {
	struct ev_loop *loop;
	const struct init_args *a;
	struct job *jobs;
	struct cron_clock clock;
	struct cron_cursor cursor;
	ev_timer tick;
	struct logfile log;
	bool stopped;
} C;

bool cronrun_tz_is_safe(const char *tz)
{
	if (*tz == ':')
		tz++;
	if (!*tz || *tz == '/' || strlen(tz) > 128 || strstr(tz, ".."))
		return false;
	return !tz[strspn(tz, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			      "0123456789_+-,.<>:/")];
}

/* cron's time zone is the init's own: it has nothing else to keep in local
 * time. A name resolves below /usr/share/zoneinfo of the read-only distro. */
static void cronrun_set_tz(const struct config_tenant *cfg)
{
	const char *tz = NULL;

	for (size_t i = 0; i < cfg->env.n; i++)
		if (!strcmp(cfg->env.v[i].name, "TZ"))
			tz = cfg->env.v[i].value;
	if (tz && *tz && !cronrun_tz_is_safe(tz)) {
		log_warn("TZ '%s' is not a time zone name or rule: cron runs in UTC", tz);
		tz = NULL;
	}
	setenv("TZ", tz && *tz ? tz : "UTC", 1);
	tzset();
}

static void job_out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	static char buf[65536];
	struct job *j = w->data;

	for (int i = 0; i < 4; i++) {
		ssize_t n = read(j->out_r, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0) {
			logfile_write(&C.log, buf, (size_t)n);
			continue;
		}
		if (n == 0) {            /* every writer is gone */
			ev_io_stop(loop, w);
			close(j->out_r);
			j->out_r = -1;
		}
		return;
	}
}

static void job_close_output(struct job *j)
{
	if (j->out_r < 0)
		return;
	ev_io_stop(C.loop, &j->out_io);
	close(j->out_r);
	j->out_r = -1;
}

static void job_free(struct job *j)
{
	for (struct job **pp = &C.jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	job_close_output(j);
	free(j->e.command);
	free(j);
}

static void job_exited(pid_t pid, int status, void *data)
{
	struct job *j = data;
	char how[96];

	/* Everything it wrote is in the pipe by now; a background child that
	 * still holds the pipe loses its output from here on. */
	if (j->out_r >= 0) {
		job_out_cb(C.loop, &j->out_io, EV_READ);
		job_close_output(j);
	}
	if (WIFSIGNALED(status))
		snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
	logfile_note(&C.log, "cron[%u] `%s`: %s after %.1f s", j->id, j->e.command, how,
		     ev_time() - j->started);
	log_debug("cron[%u]: pid %d %s", j->id, (int)pid, how);
	j->pid = 0;
	if (j->retired)
		job_free(j);
}

static void job_run(struct job *j, time_t minute)
{
	char *argv[] = { (char *)"sh", (char *)"-c", j->e.command, NULL };
	char when[32];
	struct tm tm;
	int p[2];
	pid_t pid;

	if (!localtime_r(&minute, &tm) || !strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm))
		snprintf(when, sizeof when, "%lld", (long long)minute);
	if (j->pid) {
		logfile_note(&C.log, "cron[%u] `%s`: skipped at %s: the previous run (pid %d) "
			     "is still running", j->id, j->e.command, when, (int)j->pid);
		log_info("cron[%u]: skipped at %s: pid %d still running", j->id, when, (int)j->pid);
		return;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		logfile_note(&C.log, "cron[%u] `%s`: not started at %s: %s", j->id, j->e.command,
			     when, strerror(errno));
		return;
	}
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	pid = tenantproc_spawn(&(struct tp_spec){
		.path = "/bin/sh", .argv = argv, .envp = NULL, .cwd = NULL,
		.fd_in = -1, .fd_out = p[1], .fd_err = p[1], .ctty = -1,
		.on_exit = job_exited, .data = j,
	});
	close(p[1]);
	if (pid < 0) {
		logfile_note(&C.log, "cron[%u] `%s`: not started at %s: %s", j->id, j->e.command,
			     when, strerror(errno));
		close(p[0]);
		return;
	}
	j->pid = pid;
	j->started = ev_time();
	j->out_r = p[0];
	ev_io_init(&j->out_io, job_out_cb, p[0], EV_READ);
	j->out_io.data = j;
	ev_io_start(C.loop, &j->out_io);
	logfile_note(&C.log, "cron[%u] `%s`: started for %s (pid %d)", j->id, j->e.command, when,
		     (int)pid);
	log_debug("cron[%u]: started for %s (pid %d)", j->id, when, (int)pid);
}

static time_t cronrun_now(void)
{
	double fake = cron_clock_now(&C.clock, ev_time());
	time_t t = (time_t)fake;

	return (double)t > fake ? t - 1 : t;
}

static bool cronrun_has_lines(void)
{
	for (struct job *j = C.jobs; j; j = j->next)
		if (!j->retired)
			return true;
	return false;
}

static void cronrun_arm(void)
{
	bool was_active = ev_is_active(&C.tick);

	ev_timer_stop(C.loop, &C.tick);
	if (C.stopped || !cronrun_has_lines())
		return;
	/* Idle until now: what happened meanwhile is not ours to catch up. */
	if (!was_active)
		cron_cursor_init(&C.cursor, cronrun_now());
	ev_timer_set(&C.tick, cron_clock_until_next_minute(&C.clock, ev_time()) + CRONRUN_SLACK, 0);
	ev_timer_start(C.loop, &C.tick);
}

static void cronrun_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	time_t minutes[CRON_CATCHUP_MINUTES + 1];
	size_t n = cron_cursor_advance(&C.cursor, cronrun_now(), minutes, CRON_CATCHUP_MINUTES + 1);

	for (size_t i = 0; i < n && !C.stopped; i++)
		for (struct job *j = C.jobs; j; j = j->next)
			if (!j->retired && cron_fires_at(&j->e, minutes[i]))
				job_run(j, minutes[i]);
	ev_timer_stop(loop, w);
	if (C.stopped || !cronrun_has_lines())
		return;
	ev_timer_set(w, cron_clock_until_next_minute(&C.clock, ev_time()) + CRONRUN_SLACK, 0);
	ev_timer_start(loop, w);
}

static bool entry_equal(const struct cron_entry *a, const struct cron_entry *b)
{
	return a->minute == b->minute && a->hour == b->hour && a->mday == b->mday &&
	       a->month == b->month && a->wday == b->wday && a->mday_any == b->mday_any &&
	       a->wday_any == b->wday_any && !strcmp(a->command, b->command);
}

static struct job *job_new(const struct cron_entry *e, unsigned id)
{
	struct job *j = calloc(1, sizeof *j);

	if (!j || !(j->e.command = strdup(e->command))) {
		free(j);
		log_error("cron[%u]: out of memory", id);
		return NULL;
	}
	j->e.minute = e->minute;
	j->e.hour = e->hour;
	j->e.mday = e->mday;
	j->e.month = e->month;
	j->e.wday = e->wday;
	j->e.mday_any = e->mday_any;
	j->e.wday_any = e->wday_any;
	j->id = id;
	j->out_r = -1;
	j->next = C.jobs;
	C.jobs = j;
	return j;
}

/* Retire every line, then take back the running ones that are still in
 * the file (so the overlap rule holds across a reload) and add the rest. */
static void cronrun_load(const struct config_tenant *cfg)
{
	for (struct job *j = C.jobs, *next; j; j = next) {
		next = j->next;
		j->retired = true;
		if (!j->pid)
			job_free(j);
	}
	for (size_t i = 0; i < cfg->cron.n; i++) {
		struct job *found = NULL;
		for (struct job *j = C.jobs; j && !found; j = j->next)
			if (j->retired && entry_equal(&j->e, &cfg->cron.v[i]))
				found = j;
		if (found) {
			found->retired = false;
			found->id = (unsigned)i + 1;
		} else {
			job_new(&cfg->cron.v[i], (unsigned)i + 1);
		}
	}
}

void cronrun_start(struct ev_loop *loop, const struct init_args *a, double clock_offset,
		   double clock_scale)
{
	C.loop = loop;
	C.a = a;
	logfile_init(&C.log, a->log_fd, "cron.log", a->gid);
	ev_init(&C.tick, cronrun_tick_cb);
	cron_clock_init(&C.clock, ev_time(), clock_offset, clock_scale);
	if (clock_offset != 0 || clock_scale != 1)
		log_info("cron clock: offset %.0f s, %.1f times real time (test hook)",
			 clock_offset, clock_scale);
	cronrun_set_tz(a->cfg);
	cronrun_load(a->cfg);
	cronrun_arm();
}

void cronrun_replace(const struct config_tenant *cfg)
{
	if (C.stopped || !C.loop)
		return;
	cronrun_set_tz(cfg);
	cronrun_load(cfg);
	cronrun_arm();
}

void cronrun_stop(void)
{
	C.stopped = true;
	if (C.loop)
		ev_timer_stop(C.loop, &C.tick);
}
