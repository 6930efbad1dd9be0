/* logs: the log files of a tenant's apps, daemons and cron jobs. */
#include "logs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t logs_rotate_bytes = LOGS_ROTATE_BYTES;
static unsigned logs_keep = LOGS_KEEP;

void logs_configure(uint64_t rotate_bytes, unsigned keep)
{
	if (rotate_bytes >= 1024)
		logs_rotate_bytes = rotate_bytes;
	if (keep >= 1 && keep <= 99)
		logs_keep = keep;
}

void logfile_init(struct logfile *l, int dirfd, const char *name, gid_t gid)
{
	memset(l, 0, sizeof *l);
	l->dirfd = dirfd;
	l->gid = gid;
	l->fd = -1;
	snprintf(l->name, sizeof l->name, "%s", name);
}

/* Open (or create) the file. The folder is root's, so no name in it can
 * be a tenant's symlink; O_NOFOLLOW says so all the same. */
static int logfile_open(struct logfile *l)
{
	struct stat st;
	int fd;

	if (l->dirfd < 0)
		return -EBADF;
	fd = openat(l->dirfd, l->name,
		    O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	/* Readable by the tenant's group, whatever made the file. */
	if ((st.st_uid != 0 || st.st_gid != l->gid) && fchown(fd, 0, l->gid) < 0) {
		/* stays as it is: the tenant may not read it, nothing worse */
	}
	if ((st.st_mode & 07777) != 0640 && fchmod(fd, 0640) < 0) {
		/* same */
	}
	l->fd = fd;
	l->size = (uint64_t)st.st_size;
	return 0;
}

/* NAME.log.(KEEP-1) -> .KEEP, ..., NAME.log -> .1, and a fresh NAME.log. */
static void logfile_rotate(struct logfile *l)
{
	char from[80], to[80];

	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	for (unsigned i = logs_keep; i >= 1; i--) {
		if (i == 1)
			snprintf(from, sizeof from, "%s", l->name);
		else
			snprintf(from, sizeof from, "%s.%u", l->name, i - 1);
		snprintf(to, sizeof to, "%s.%u", l->name, i);
		if (renameat(l->dirfd, from, l->dirfd, to) < 0 && errno != ENOENT) {
			/* a missing older file is the normal case */
		}
	}
	logfile_open(l);
}

/* Write all of buf, or say why not. */
static int logfile_put(struct logfile *l, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(l->fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		l->size += (uint64_t)w;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

static void logfile_drop(struct logfile *l, size_t len, int err)
{
	l->dropped += len;
	l->drop_errno = err;
}

static void logfile_stamp(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	if (!localtime_r(&now, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm))
		snprintf(buf, len, "%lld", (long long)now);
}

void logfile_write(struct logfile *l, const void *buf, size_t len)
{
	int r;

	if (!len)
		return;
	if (l->fd >= 0 && l->size > 0 && l->size + len > logs_rotate_bytes)
		logfile_rotate(l);
	if (l->fd < 0 && (r = logfile_open(l)) < 0) {
		logfile_drop(l, len, -r);
		return;
	}
	if (l->dropped) {
		char note[200], stamp[40];
		int n;

		logfile_stamp(stamp, sizeof stamp);
		n = snprintf(note, sizeof note, "[fief %s] %llu bytes of output were lost: %s\n",
			     stamp, (unsigned long long)l->dropped, strerror(l->drop_errno));
		if ((r = logfile_put(l, note, (size_t)n)) < 0) {
			logfile_drop(l, len, -r);
			return;
		}
		l->dropped = 0;
	}
	r = logfile_put(l, buf, len);
	if (r < 0)
		logfile_drop(l, len, -r);
}

void logfile_vnote(struct logfile *l, const char *fmt, va_list ap)
{
	char line[1200], stamp[40];
	int n, m;

	logfile_stamp(stamp, sizeof stamp);
	n = snprintf(line, sizeof line, "[fief %s] ", stamp);
	m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	if (m > 0)
		n += m;
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	logfile_write(l, line, (size_t)n);
}

void logfile_note(struct logfile *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	logfile_vnote(l, fmt, ap);
	va_end(ap);
}

void logfile_close(struct logfile *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

int logs_make_home_dir(const char *home, uid_t uid, gid_t gid)
{
	int dfd = open(home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r = 0;

	if (dfd < 0)
		return -errno;
	if (mkdirat(dfd, "logs", 0755) < 0 && errno != EEXIST)
		r = -errno;
	/* AT_SYMLINK_NOFOLLOW: even a symlink in its place gets nothing. */
	else if (fchownat(dfd, "logs", uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	close(dfd);
	return r;
}
