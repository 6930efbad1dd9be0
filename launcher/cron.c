/* cron: when cron lines fire (see cron.h for the rules). */
#include "cron.h"


int64_t cron_local_key(time_t t)
{
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return 0;
	return ((((int64_t)tm.tm_year + 1900) * 100 + tm.tm_mon + 1) * 100 + tm.tm_mday) * 10000 +
	       tm.tm_hour * 100 + tm.tm_min;
}

static bool cron_day_ok(const struct cron_entry *c, const struct tm *tm)
{
	/* cron_matches() with a minute and hour that surely match: the day rule. */
	struct cron_entry any = *c;

	any.minute = ~0ULL;
	any.hour = ~0U;
	return cron_matches(&any, 0, 0, tm->tm_mday, tm->tm_mon + 1, tm->tm_wday);
}

bool cron_fires_at(const struct cron_entry *c, time_t t)
{
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return false;
	return cron_matches(c, tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon + 1, tm.tm_wday);
}

/* Local midnight of the day after tm's, or the first hour after tm's. */
static time_t cron_skip(struct tm tm, bool whole_day)
{
	if (whole_day) {
		tm.tm_mday++;
		tm.tm_hour = 0;
	} else {
		tm.tm_hour++;
	}
	tm.tm_min = 0;
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

/* Walk forward in local time: whole days while the day does not match,
 * whole hours while the hour does not, then minutes. */
time_t cron_next(const struct cron_entry *c, time_t after)
{
	time_t t = after - (after % 60 + 60) % 60 + 60;
	time_t limit = after + (time_t)CRON_SEARCH_YEARS * 366 * 86400;
	struct tm tm;

	while (t <= limit) {
		time_t next;

		if (!localtime_r(&t, &tm))
			return -1;
		if (!(c->month >> (tm.tm_mon + 1) & 1) || !cron_day_ok(c, &tm))
			next = cron_skip(tm, true);
		else if (!(c->hour >> tm.tm_hour & 1))
			next = cron_skip(tm, false);
		else if (!(c->minute >> tm.tm_min & 1))
			next = t + 60;
		else
			return t;
		/* mktime may land on or before t around a DST change: creep on. */
		t = next > t ? next - (next % 60 + 60) % 60 : t + 60;
	}
	return -1;
}

void cron_clock_init(struct cron_clock *c, double real_now, double offset, double scale)
{
	c->base = real_now;
	c->offset = offset;
	c->scale = scale > 0 ? scale : 1;
}

double cron_clock_now(const struct cron_clock *c, double real_now)
{
	return c->base + c->offset + (real_now - c->base) * c->scale;
}

double cron_clock_until_next_minute(const struct cron_clock *c, double real_now)
{
	double fake = cron_clock_now(c, real_now);
	/* floor() without libm: fake clocks are far from the limits of int64. */
	int64_t minutes = (int64_t)(fake / 60);
	double next;

	if ((double)minutes * 60 > fake)
		minutes--;
	next = (double)(minutes + 1) * 60;

	return (next - fake) / c->scale;
}

static time_t cron_minute_of(time_t t)
{
	return t - (t % 60 + 60) % 60;
}

void cron_cursor_init(struct cron_cursor *cur, time_t now)
{
	cur->last_minute = cron_minute_of(now);
	cur->last_key = cron_local_key(cur->last_minute);
}

size_t cron_cursor_advance(struct cron_cursor *cur, time_t now, time_t *out, size_t max)
{
	time_t minute = cron_minute_of(now), from;
	size_t n = 0;

	if (minute <= cur->last_minute) {
		/* Same minute, or the clock went back: wait for it, unless it
		 * went back so far that waiting would stop cron for hours. */
		if (cur->last_minute - minute > CRON_RESET_BACKWARD)
			cron_cursor_init(cur, now);
		return 0;
	}
	from = cur->last_minute + 60;
	if (minute - from >= (time_t)CRON_CATCHUP_MINUTES * 60)
		from = minute;
	for (time_t m = from; m <= minute && n < max; m += 60) {
		int64_t key = cron_local_key(m);
		if (key > cur->last_key) {
			out[n++] = m;
			cur->last_key = key;
		}
	}
	cur->last_minute = minute;
	return n;
}
