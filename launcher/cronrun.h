/* cronrun: the tenant init's cron. At the start of every minute of the
 * tenant's time zone (env TZ, default UTC) it starts each cron line that
 * fires, as the tenant, with /bin/sh -c in the home; a line whose previous
 * run is still going is skipped, and said so. Output, start, skip and exit
 * status all go to log_dir/NAME/cron.log. When lines fire is cron.c's
 * business. */
#ifndef FIEF_CRONRUN_H
#define FIEF_CRONRUN_H

#include <ev.h>
#include <stdbool.h>

struct config_tenant;
struct init_args;

/* clock_offset and clock_scale shift and speed up cron's clock (tests). */
void cronrun_start(struct ev_loop *loop, const struct init_args *a, double clock_offset,
		   double clock_scale);
/* New lines (a live reload): jobs still running go on, and a line that is
 * in both the old and the new file keeps its "still running" state. */
void cronrun_replace(const struct config_tenant *cfg);
/* No new jobs from now on. */
void cronrun_stop(void);

/* Is this TZ value safe for the init (root) to hand to tzset()? Plain
 * zone names and POSIX rules are; absolute paths and ".." are not. */
bool cronrun_tz_is_safe(const char *tz);

#endif
