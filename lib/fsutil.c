/* fsutil: careful file system helpers for host paths near tenant data. */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Check that fd is a directory we may hand out, then set owner and mode. */
static int fs_fix_dir(int fd, mode_t mode, uid_t uid, gid_t gid)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0)
		return -errno;
	if (fchmod(fd, mode) < 0)
		return -errno;
	return 0;
}

int fs_mkdir_p(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	char buf[PATH_MAX];
	int dfd, ret;

	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf || buf[0] != '/')
		return -EINVAL;
	dfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (char *p = buf + 1, *slash; dfd >= 0 && *p; p = slash + 1) {
		int next;

		slash = strchr(p, '/');
		if (slash)
			*slash = 0;
		if (*p && mkdirat(dfd, p, mode) < 0 && errno != EEXIST) {
			ret = -errno;
			close(dfd);
			return ret;
		}
		/* O_NOFOLLOW: a symlink planted anywhere on the way is refused. */
		next = *p ? openat(dfd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : dup(dfd);
		close(dfd);
		dfd = next;
		if (!slash)
			break;
	}
	if (dfd < 0)
		return -errno;
	ret = fs_fix_dir(dfd, mode, uid, gid);
	close(dfd);
	return ret;
}

static int fs_rm_at(int dfd, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, ret = 0;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if ((errno != EISDIR && errno != EPERM) || depth > 64)
		return -errno;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			int r = fs_rm_at(dirfd(d), de->d_name, depth + 1);
			if (r < 0 && !ret)
				ret = r;
		}
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !ret)
		ret = -errno;
	return ret;
}

int fs_rm_rf(const char *path)
{
	char buf[PATH_MAX], *slash;
	int dfd, ret;

	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -ENAMETOOLONG;
	slash = strrchr(buf, '/');
	if (!slash || !slash[1])
		return -EINVAL;
	*slash = 0;
	dfd = open(slash == buf ? "/" : buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	ret = fs_rm_at(dfd, slash + 1, 0);
	close(dfd);
	return ret;
}

static int fs_write_file(const char *path, const void *buf, size_t len, mode_t mode, bool sync)
{
	char tmp[PATH_MAX];
	const char *p = buf;
	int fd, ret = 0;

	if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			ret = -errno;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (!ret && (fchmod(fd, mode) < 0 || (sync && fsync(fd) < 0)))
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

int fs_write_atomic(const char *path, const void *buf, size_t len, mode_t mode)
{
	return fs_write_file(path, buf, len, mode, true);
}

int fs_write_replace(const char *path, const void *buf, size_t len, mode_t mode)
{
	return fs_write_file(path, buf, len, mode, false);
}

int fs_read_small(const char *path, char *buf, size_t len)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return (int)n;
}
