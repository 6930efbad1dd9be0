/* apps: what a tenant init runs for its tenant: apps, daemons and (through
 * cronrun.c) cron jobs.
 *
 * Every app and daemon is a "unit": one process group started as the
 * tenant by tenantproc, its stdout and stderr a pipe that the init drains
 * into log_dir/NAME/UNIT.log (logs.c), restarted with backoff when it
 * dies, and put on a slow retry when it keeps dying (a crash loop).
 *
 *   wsgi, psgi, rack  uWSGI from the distro, as the tenant: master,
 *                     `workers` workers, lazy apps unless lazy_apps is
 *                     false, a uwsgi-protocol socket at /run/NAME.sock, no
 *                     request log unless env sets UWSGI_DISABLE_LOGGING
 *   command           /bin/sh -c COMMAND with FIEF_SOCKET=/run/NAME.sock;
 *                     the server speaks HTTP on that socket
 *   daemons           /bin/sh -c COMMAND; must stay in the foreground
 *
 * A live reload (the launcher sends the new tenant file over the sync
 * socket) re-parses the file and restarts only the units whose command
 * line, directory or environment changed; cron lines are replaced. */
#ifndef FIEF_APPS_H
#define FIEF_APPS_H

#include <ev.h>
#include <stddef.h>

struct init_args;

#define APPS_UWSGI           "/usr/bin/uwsgi"
#define APPS_BACKOFF_FIRST   0.1     /* seconds before the first restart */
#define APPS_BACKOFF_MAX     30.0
#define APPS_STABLE_AFTER    30.0    /* a run this long forgets past deaths */
#define APPS_CRASH_MAX       5       /* deaths ... */
#define APPS_CRASH_WINDOW    60.0    /* ... within this many seconds: a crash loop */
#define APPS_CRASH_RETRY     60.0    /* in a crash loop: one try a minute */
#define APPS_STOP_GRACE      10.0    /* SIGTERM, then SIGKILL of the group */
/* uWSGI (--die-on-term) ends its workers at once on SIGTERM, in-flight
 * requests included, then its master idles a second before it exits:
 * SIGKILL after this grace instead. */
#define APPS_UWSGI_STOP_GRACE 0.05
/* An app switched to a new instance: the previous one still answers what
 * it accepted before the switch for this long, then stops. */
#define APPS_SWITCH_DRAIN    0.5

/* Start every app, daemon and cron line of a->cfg. The init hands its own
 * args: a live reload replaces a->cfg, which tenantproc and the agent
 * read from there. */
void apps_start(struct ev_loop *loop, struct init_args *a);
/* After READY: send SYNC_SETTLED on sync_fd once every app apps_start
 * started is up (its first worker accepts), has died or was stopped; at
 * once when there is none. */
void apps_settle_begin(int sync_fd);
/* The tenant is stopping and the init ends every process: no restarts,
 * no new cron jobs from now on. */
void apps_stop(void);
/* A SYNC_CONFIG_PART or SYNC_CONFIG message from the launcher on sync_fd;
 * a file the init cannot take is answered with SYNC_ERROR there. */
void apps_sync_message(int sync_fd, const char *msg, size_t len);

#endif
