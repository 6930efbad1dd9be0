/* logs: the log files of a tenant's apps, daemons and cron jobs.
 *
 * The tenant init writes them into log_dir/NAME on the host. After
 * pivot_root it cannot name that folder any more, so the launcher opens it
 * (O_DIRECTORY) before the clone and the init works relative to that fd.
 * The folder is root:tenant-gid 0750 and every file root:tenant-gid 0640:
 * the tenant reads them (at ~/logs) and cannot write, rename or plant
 * symlinks there. Files rotate by size: NAME.log, NAME.log.1 ... .KEEP. */
#ifndef FIEF_LOGS_H
#define FIEF_LOGS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LOGS_ROTATE_BYTES (10u * 1024 * 1024)
#define LOGS_KEEP 3

struct logfile {
	int dirfd;                   /* log_dir/NAME, not owned; -1 = nowhere */
	char name[64];               /* "web.log" */
	gid_t gid;                   /* group of new files: the tenant's */
	int fd;                      /* -1 = not open (yet, or failed) */
	uint64_t size;
	uint64_t dropped;            /* bytes lost since the last good write */
	int drop_errno;
};

/* Size limit and number of old files kept, for every logfile (the init
 * reads FIEF_LOG_ROTATE_BYTES, a test hook). */
void logs_configure(uint64_t rotate_bytes, unsigned keep);

void logfile_init(struct logfile *l, int dirfd, const char *name, gid_t gid);
/* Append bytes, rotating first when they would take the file past the
 * limit. Only the local disk can make it wait; a failed write is counted
 * as dropped and reported in the file by the next write that works. */
void logfile_write(struct logfile *l, const void *buf, size_t len);
/* One line of fief's own: "[fief TIME] message\n" (local time, TZ). */
void logfile_note(struct logfile *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void logfile_vnote(struct logfile *l, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void logfile_close(struct logfile *l);

/* Launcher side: make DIR/logs, owned by the tenant, in a home the
 * launcher has just created (nothing of the tenant's exists there yet).
 * The mounts bind log_dir/NAME there, read-only. 0 or -errno. */
int logs_make_home_dir(const char *home, uid_t uid, gid_t gid);

#endif
