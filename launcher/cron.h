/* cron: when cron lines fire.
 *
 * Pure time arithmetic over struct cron_entry (lib/value.h), in the local
 * time zone of the process (TZ), plus a clock that tests can shift and
 * speed up. The tenant init's runner, which starts the jobs, is cronrun.c.
 *
 * Rules, as cron(8) users expect them:
 * - a line fires at most once per local minute, at the start of it;
 * - when the clock moves on by a few minutes at once (a stalled host),
 *   the minutes in between still fire, up to CRON_CATCHUP_MINUTES of them;
 *   a larger jump fires only the current minute;
 * - when daylight saving time ends, the repeated local hour does not fire
 *   again; when it starts, the skipped local hour never happens;
 * - a clock set back by more than CRON_RESET_BACKWARD starts over. */
#ifndef FIEF_CRON_H
#define FIEF_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "value.h"

#define CRON_CATCHUP_MINUTES 5
#define CRON_RESET_BACKWARD  (3 * 3600)
#define CRON_SEARCH_YEARS    5

/* YYYYMMDDhhmm of the local time of t: orders local minutes. */
int64_t cron_local_key(time_t t);
/* Does c fire in the local minute that contains t? */
bool cron_fires_at(const struct cron_entry *c, time_t t);
/* The first minute after `after` in which c fires, or -1 when there is
 * none within CRON_SEARCH_YEARS (e.g. "0 0 31 2 *"). */
time_t cron_next(const struct cron_entry *c, time_t after);

/* A clock for the scheduler: fake = real + offset, running `scale` times
 * as fast as real time from the moment it was set (tests only; 0 and 1
 * mean real time). */
struct cron_clock {
	double base, offset, scale;
};

void cron_clock_init(struct cron_clock *c, double real_now, double offset, double scale);
double cron_clock_now(const struct cron_clock *c, double real_now);
/* Real seconds from real_now until the fake clock starts its next minute. */
double cron_clock_until_next_minute(const struct cron_clock *c, double real_now);

/* Which minutes are due, given the last one evaluated. */
struct cron_cursor {
	time_t last_minute;          /* UTC start of the last minute evaluated */
	int64_t last_key;            /* its local key; later keys only */
};

/* Start at now: the minute under way is not evaluated (cron starts jobs at
 * the beginning of a minute, and this one has begun). */
void cron_cursor_init(struct cron_cursor *cur, time_t now);
/* Store the minutes to evaluate now, oldest first, at most max (one more
 * than CRON_CATCHUP_MINUTES is enough), and return how many. */
size_t cron_cursor_advance(struct cron_cursor *cur, time_t now, time_t *out, size_t max);

#endif
