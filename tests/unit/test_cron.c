/* Tests for launcher/cron.c: next-fire times, the scheduler's cursor and
 * its clock, with fake clocks (plain time_t values) in UTC and in a zone
 * with daylight saving time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../launcher/cron.h"

/* Seconds since the epoch of a UTC date. */
static time_t utc(int y, int mon, int d, int h, int min)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = min };

	return timegm(&tm);
}

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static int tz_utc(void **state)
{
	set_tz("UTC");
	return 0;
}

static int tz_rome(void **state)
{
	if (access("/usr/share/zoneinfo/Europe/Rome", R_OK) < 0) {
		print_message("no /usr/share/zoneinfo/Europe/Rome (tzdata): "
			      "zone tests use a POSIX rule\n");
		set_tz("CET-1CEST,M3.5.0,M10.5.0/3");
	} else {
		set_tz("Europe/Rome");
	}
	return 0;
}

static struct cron_entry entry(const char *line)
{
	struct cron_entry c;
	char why[WHY_LEN];

	if (value_cron(line, &c, why) < 0)
		fail_msg("'%s': %s", line, why);
	free(c.command);
	c.command = NULL;
	return c;
}

static void assert_next(const char *line, time_t after, time_t want)
{
	struct cron_entry c = entry(line);
	time_t got = cron_next(&c, after);

	if (got != want) {
		char a[40], b[40];
		struct tm tm;
		strftime(a, sizeof a, "%F %T %Z", (gmtime_r(&want, &tm), &tm));
		strftime(b, sizeof b, "%F %T %Z", (gmtime_r(&got, &tm), &tm));
		fail_msg("'%s': want %s (%lld), got %s (%lld)", line, want < 0 ? "none" : a,
			 (long long)want, got < 0 ? "none" : b, (long long)got);
	}
}

static void test_next_utc(void **state)
{
	/* 2024-06-07 is a Friday. */
	assert_next("*/5 * * * 6 cmd", utc(2024, 6, 7, 12, 0), utc(2024, 6, 8, 0, 0));
	assert_next("*/5 * * * 6 cmd", utc(2024, 6, 8, 0, 0), utc(2024, 6, 8, 0, 5));
	assert_next("*/5 * * * 6 cmd", utc(2024, 6, 8, 23, 57), utc(2024, 6, 15, 0, 0));
	/* uWSGI form: -1 any, -N every N */
	assert_next("59 23 -1 -1 -1 cmd", utc(2024, 1, 1, 0, 0), utc(2024, 1, 1, 23, 59));
	assert_next("59 23 -1 -1 -1 cmd", utc(2024, 12, 31, 23, 59), utc(2025, 1, 1, 23, 59));
	assert_next("-15 -1 -1 -1 -1 cmd", utc(2024, 1, 1, 0, 1), utc(2024, 1, 1, 0, 15));
	assert_next("* * * * * cmd", utc(2024, 1, 1, 0, 0) + 59, utc(2024, 1, 1, 0, 1));
	/* names, lists, ranges */
	assert_next("0 9 * jan,jul mon-fri cmd", utc(2024, 2, 1, 0, 0), utc(2024, 7, 1, 9, 0));
	/* both day fields restricted: either one (the 1st, or a Monday) */
	assert_next("0 12 1 * 1 cmd", utc(2024, 6, 1, 12, 0), utc(2024, 6, 3, 12, 0));
	assert_next("0 12 1 * 1 cmd", utc(2024, 6, 24, 12, 0), utc(2024, 7, 1, 12, 0));
	assert_next("0 0 13 * fri cmd", utc(2024, 1, 1, 0, 0), utc(2024, 1, 5, 0, 0));
	/* a field starting with '*' counts as unrestricted: then both must
	 * hold (days 1, 11, 21, 31 that are Mondays) */
	assert_next("0 0 */10 * mon cmd", utc(2024, 1, 1, 0, 0), utc(2024, 3, 11, 0, 0));
	assert_next("0 0 13 * * cmd", utc(2024, 1, 1, 0, 0), utc(2024, 1, 13, 0, 0));
	/* Sunday as 7 */
	assert_next("0 0 * * 7 cmd", utc(2024, 6, 7, 0, 0), utc(2024, 6, 9, 0, 0));
	/* leap day, and a day that never comes */
	assert_next("0 0 29 2 * cmd", utc(2024, 3, 1, 0, 0), utc(2028, 2, 29, 0, 0));
	assert_next("0 0 31 2 * cmd", utc(2024, 1, 1, 0, 0), -1);
	assert_next("0 0 31 4,6,9,11 * cmd", utc(2024, 1, 1, 0, 0), -1);
	/* seconds in `after` are ignored; it is never returned itself */
	assert_next("30 10 * * * cmd", utc(2024, 1, 1, 10, 30) + 1, utc(2024, 1, 2, 10, 30));
	assert_next("30 10 * * * cmd", utc(2024, 1, 1, 10, 29) + 59, utc(2024, 1, 1, 10, 30));
}

static void test_next_in_zone(void **state)
{
	/* Rome is UTC+1 in winter, UTC+2 in summer. */
	assert_next("30 9 * * * cmd", utc(2024, 1, 10, 0, 0), utc(2024, 1, 10, 8, 30));
	assert_next("30 9 * * * cmd", utc(2024, 7, 10, 0, 0), utc(2024, 7, 10, 7, 30));
	/* Midnight local is the evening before in UTC. */
	assert_next("0 0 * * * cmd", utc(2024, 1, 10, 12, 0), utc(2024, 1, 10, 23, 0));
	/* 2024-03-31 02:00 CET jumps to 03:00 CEST: 02:30 does not exist. */
	assert_next("30 2 * * * cmd", utc(2024, 3, 30, 12, 0), utc(2024, 4, 1, 0, 30));
	assert_next("0 3 * * * cmd", utc(2024, 3, 30, 12, 0), utc(2024, 3, 31, 1, 0));
	/* 2024-10-27 03:00 CEST falls back to 02:00 CET: 02:30 comes twice,
	 * cron_next names the first; the cursor test shows it fires once. */
	assert_next("30 2 * * * cmd", utc(2024, 10, 26, 12, 0), utc(2024, 10, 27, 0, 30));
	assert_next("30 2 * * * cmd", utc(2024, 10, 27, 0, 30), utc(2024, 10, 27, 1, 30));
}

static void test_fires_at(void **state)
{
	struct cron_entry c = entry("*/5 * * * 6 cmd");

	assert_true(cron_fires_at(&c, utc(2024, 6, 8, 10, 5)));
	assert_true(cron_fires_at(&c, utc(2024, 6, 8, 10, 5) + 59));
	assert_false(cron_fires_at(&c, utc(2024, 6, 8, 10, 6)));
	assert_false(cron_fires_at(&c, utc(2024, 6, 7, 10, 5)));
	assert_int_equal(cron_local_key(utc(2024, 6, 8, 10, 5) + 30), 202406081005LL);
}

static void test_cursor_ticks_and_catch_up(void **state)
{
	time_t t0 = utc(2024, 5, 1, 10, 0), out[64];
	struct cron_cursor cur;

	cron_cursor_init(&cur, t0 + 30);
	/* the minute under way is not evaluated */
	assert_int_equal(cron_cursor_advance(&cur, t0 + 59, out, 64), 0);
	assert_int_equal(cron_cursor_advance(&cur, t0 + 60, out, 64), 1);
	assert_int_equal(out[0], t0 + 60);
	/* a timer a little late or early changes nothing */
	assert_int_equal(cron_cursor_advance(&cur, t0 + 61, out, 64), 0);
	assert_int_equal(cron_cursor_advance(&cur, t0 + 121, out, 64), 1);
	assert_int_equal(out[0], t0 + 120);
	/* three minutes stalled: the missed ones, oldest first */
	assert_int_equal(cron_cursor_advance(&cur, t0 + 5 * 60 + 10, out, 64), 3);
	assert_int_equal(out[0], t0 + 180);
	assert_int_equal(out[1], t0 + 240);
	assert_int_equal(out[2], t0 + 300);
	/* an hour jump: only the current minute */
	assert_int_equal(cron_cursor_advance(&cur, t0 + 3600 + 5, out, 64), 1);
	assert_int_equal(out[0], t0 + 3600);
	/* max is honoured */
	assert_int_equal(cron_cursor_advance(&cur, t0 + 3600 + 4 * 60, out, 2), 2);
}

static void test_cursor_clock_back(void **state)
{
	time_t t0 = utc(2024, 5, 1, 10, 0), out[8];
	struct cron_cursor cur;

	cron_cursor_init(&cur, t0);
	assert_int_equal(cron_cursor_advance(&cur, t0 + 600, out, 8), 1);
	/* set back ten minutes: nothing fires again until the clock is past 10:10 */
	assert_int_equal(cron_cursor_advance(&cur, t0 + 60, out, 8), 0);
	assert_int_equal(cron_cursor_advance(&cur, t0 + 600, out, 8), 0);
	assert_int_equal(cron_cursor_advance(&cur, t0 + 660, out, 8), 1);
	assert_int_equal(out[0], t0 + 660);
	/* set back four hours: start over rather than stop for four hours */
	assert_int_equal(cron_cursor_advance(&cur, t0 - 4 * 3600, out, 8), 0);
	assert_int_equal(cron_cursor_advance(&cur, t0 - 4 * 3600 + 60, out, 8), 1);
	assert_int_equal(out[0], t0 - 4 * 3600 + 60);
}

/* Step a real clock minute by minute over a DST change in Rome and count
 * how often each of two lines fires. */
static void count_over(time_t from, time_t to, const char *a, const char *b, int *na, int *nb)
{
	struct cron_entry ca = entry(a), cb = entry(b);
	struct cron_cursor cur;
	time_t out[8];

	*na = *nb = 0;
	cron_cursor_init(&cur, from);
	for (time_t now = from + 60; now <= to; now += 60) {
		size_t n = cron_cursor_advance(&cur, now + 1, out, 8);
		for (size_t i = 0; i < n; i++) {
			*na += cron_fires_at(&ca, out[i]);
			*nb += cron_fires_at(&cb, out[i]);
		}
	}
}

static void test_cursor_dst(void **state)
{
	int na, nb;

	/* fall back: local 02:00-02:59 twice; 02:30 fires once, and so does
	 * every other local minute (the repeated hour is skipped as a whole) */
	count_over(utc(2024, 10, 26, 23, 0), utc(2024, 10, 27, 3, 0), "30 2 * * * a",
		   "* * * * * b", &na, &nb);
	assert_int_equal(na, 1);
	assert_int_equal(nb, 4 * 60 - 60);
	/* spring forward: 02:30 never comes; 03:00 comes once */
	count_over(utc(2024, 3, 30, 23, 0), utc(2024, 3, 31, 3, 0), "30 2 * * * a",
		   "0 3 * * * b", &na, &nb);
	assert_int_equal(na, 0);
	assert_int_equal(nb, 1);
}

static void test_clock(void **state)
{
	struct cron_clock c;

	cron_clock_init(&c, 1000, 0, 0);
	assert_true(cron_clock_now(&c, 1234.5) == 1234.5);
	assert_true(cron_clock_until_next_minute(&c, 1234.5) == 1260 - 1234.5);
	/* shifted and thirty times as fast: a minute every two seconds */
	cron_clock_init(&c, 1000, 500, 30);
	assert_true(cron_clock_now(&c, 1000) == 1500);
	assert_true(cron_clock_now(&c, 1002) == 1560);
	assert_true(cron_clock_until_next_minute(&c, 1000) == 2);
	assert_true(cron_clock_until_next_minute(&c, 1002) == 2);
	/* negative offsets go before the epoch's minute boundaries correctly */
	cron_clock_init(&c, 100, -130, 1);
	assert_true(cron_clock_now(&c, 100) == -30);
	assert_true(cron_clock_until_next_minute(&c, 100) == 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_next_utc, tz_utc),
		cmocka_unit_test_setup(test_next_in_zone, tz_rome),
		cmocka_unit_test_setup(test_fires_at, tz_utc),
		cmocka_unit_test_setup(test_cursor_ticks_and_catch_up, tz_utc),
		cmocka_unit_test_setup(test_cursor_clock_back, tz_utc),
		cmocka_unit_test_setup(test_cursor_dst, tz_rome),
		cmocka_unit_test_setup(test_clock, tz_utc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
