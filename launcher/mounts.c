/* mounts: the tenant's filesystem, hostname and loopback (see mounts.h).
 *
 * Every mount target is opened first with openat2() below the new root,
 * following no symlink, and mount(2) is then given "/proc/self/fd/N": the
 * kernel follows that magic link to exactly the inode we opened, so a
 * symlink planted in a tree can never redirect a mount. Sources on the host
 * are opened with O_NOFOLLOW the same way. Mount points are created only in
 * tmpfs instances made here; the distro tree is shared and never written. */
#include "mounts.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Lookups below the new root stay beneath it and follow no symlink at all:
 * the distro and the home may contain links, and none of them is ours. */
#define MOUNTS_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

struct mounts_ctx {
	const struct mounts_plan *p;
	int root;       /* O_PATH fd of the new root: the distro bind on scratch */
	char *err;
	size_t errlen;
};

static int mounts_fail(char *err, size_t errlen, int e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "message[: strerror(e)]" into the caller's buffer. Always -1, so every
 * error path can be a single `return mounts_fail(...)`. */
static int mounts_fail(char *err, size_t errlen, int e, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (err && errlen)
		snprintf(err, errlen, "%s%s%s", msg, e ? ": " : "", e ? strerror(e) : "");
	errno = e ? e : EINVAL;
	return -1;
}

static const char *mounts_fdpath(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
	return buf;
}

/* glibc 2.36 has no openat2() wrapper. */
static int mounts_openat2(int dirfd, const char *path, int flags, uint64_t resolve)
{
	struct open_how how;

	memset(&how, 0, sizeof how);
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.resolve = resolve;
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* O_PATH fd of rel (relative to the new root, e.g. "dev/pts"). */
static int mounts_open_in(struct mounts_ctx *c, const char *rel, int oflags)
{
	int fd = mounts_openat2(c->root, rel, O_PATH | oflags, MOUNTS_RESOLVE);

	if (fd < 0)
		mounts_fail(c->err, c->errlen, errno, "open mount point /%s", rel);
	return fd;
}

/* O_PATH fd of a host path. O_NOFOLLOW: the last component must be the
 * thing itself; the paths above it come from the operator's config. */
static int mounts_open_src(struct mounts_ctx *c, const char *path, int oflags)
{
	int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC | oflags);

	if (fd < 0)
		mounts_fail(c->err, c->errlen, errno, "open %s", path);
	return fd;
}

/* A tenant-owned source (home, run dir): also check the owner, so a
 * launcher mix-up (a shared or root-owned directory) fails loudly here
 * instead of handing one tenant's files to another. */
static int mounts_open_owned(struct mounts_ctx *c, const char *path)
{
	struct stat st;
	int fd = mounts_open_src(c, path, O_DIRECTORY);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		mounts_fail(c->err, c->errlen, errno, "stat %s", path);
		close(fd);
		return -1;
	}
	if (st.st_uid != c->p->uid) {
		mounts_fail(c->err, c->errlen, 0, "%s is owned by uid %u, not the tenant's uid %u",
			    path, (unsigned)st.st_uid, (unsigned)c->p->uid);
		close(fd);
		return -1;
	}
	return fd;
}

static int mounts_bind_fds(struct mounts_ctx *c, int src, int tgt, const char *what)
{
	char s[32], t[32];

	if (mount(mounts_fdpath(src, s, sizeof s), mounts_fdpath(tgt, t, sizeof t),
		  NULL, MS_BIND, NULL) < 0)
		return mounts_fail(c->err, c->errlen, errno, "bind mount on %s", what);
	return 0;
}

/* Set the flags of the mount at rel. The path is opened again rather than
 * reusing the fd the mount was made on: that fd points at the directory
 * underneath, and only a fresh lookup lands on the new mount's root. */
static int mounts_remount(struct mounts_ctx *c, const char *rel, int oflags, unsigned long flags)
{
	char path[32];
	int fd, rc = 0;

	fd = mounts_open_in(c, rel, oflags);
	if (fd < 0)
		return -1;
	if (mount(NULL, mounts_fdpath(fd, path, sizeof path), NULL,
		  MS_REMOUNT | MS_BIND | flags, NULL) < 0)
		rc = mounts_fail(c->err, c->errlen, errno, "set flags on /%s", rel);
	close(fd);
	return rc;
}

/* Bind src onto rel. MS_BIND ignores every other flag on the first call,
 * hence the remount that actually applies nosuid, nodev and friends. */
static int mounts_bind(struct mounts_ctx *c, int src, const char *rel, int oflags,
		       unsigned long flags)
{
	char what[PATH_MAX + 2];
	int tgt, rc;

	tgt = mounts_open_in(c, rel, oflags);
	if (tgt < 0)
		return -1;
	snprintf(what, sizeof what, "/%s", rel);
	rc = mounts_bind_fds(c, src, tgt, what);
	close(tgt);
	if (rc == 0)
		rc = mounts_remount(c, rel, oflags, flags);
	if (rc == 0)
		log_debug("bound %s", what);
	return rc;
}

/* A new filesystem instance (proc, tmpfs, devpts) on the directory rel. */
static int mounts_new_fs(struct mounts_ctx *c, const char *rel, const char *type,
			 unsigned long flags, const char *data)
{
	char path[32];
	int tgt, rc = 0;

	tgt = mounts_open_in(c, rel, O_DIRECTORY);
	if (tgt < 0)
		return -1;
	if (mount(type, mounts_fdpath(tgt, path, sizeof path), type, flags, data) < 0)
		rc = mounts_fail(c->err, c->errlen, errno, "mount %s on /%s", type, rel);
	else
		log_debug("mounted %s on /%s", type, rel);
	close(tgt);
	return rc;
}

/* tmpfs sized by the plan (/tmp and /dev/shm): both are where a tenant
 * would put files to run, so both obey tmp_noexec. */
static int mounts_tmpfs_sized(struct mounts_ctx *c, const char *rel)
{
	char data[64];
	unsigned long flags = MS_NOSUID | MS_NODEV;

	if (c->p->tmp_noexec)
		flags |= MS_NOEXEC;
	snprintf(data, sizeof data, "size=%llu,mode=1777", (unsigned long long)c->p->tmp_size);
	return mounts_new_fs(c, rel, "tmpfs", flags, data);
}

static int mounts_root(struct mounts_ctx *c)
{
	const struct mounts_plan *p = c->p;
	int src, tgt, rc;

	/* Private first: under systemd "/" is shared, and every mount below
	 * would otherwise propagate to the host and outlive the tenant. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return mounts_fail(c->err, c->errlen, errno, "make / private");
	src = mounts_open_src(c, p->distro_root, O_DIRECTORY);
	if (src < 0)
		return -1;
	tgt = mounts_open_src(c, p->scratch, O_DIRECTORY);
	/* Plain bind, not MS_REC: mounts under the distro stay on the host. */
	rc = tgt < 0 ? -1 : mounts_bind_fds(c, src, tgt, p->scratch);
	close(src);
	if (tgt >= 0)
		close(tgt);
	if (rc < 0)
		return -1;
	/* Reopen by name to get the bind itself, not the directory under it. */
	c->root = mounts_open_src(c, p->scratch, O_DIRECTORY);
	if (c->root < 0)
		return -1;
	/* Read-only now rather than last: nothing here writes to the distro,
	 * and it is shared by every tenant, so it is never writable at all. */
	return mounts_remount(c, ".", O_DIRECTORY, MS_RDONLY | MS_NOSUID | MS_NODEV);
}

/* The distro's tty group, for devpts gid=: pty slaves then belong to it
 * (mode 0620) as write(1) and mesg(1) expect. Read from the distro, not the
 * host, because the distro's /etc/group names the groups inside. Returns 1
 * when found. RESOLVE_IN_ROOT keeps absolute links inside the distro. */
static int mounts_tty_gid(struct mounts_ctx *c, gid_t *gid)
{
	struct group grp, *res;
	char buf[16384];
	int fd, found = 0;
	FILE *f;

	fd = mounts_openat2(c->root, "etc/group", O_RDONLY | O_NONBLOCK,
			    RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
	if (fd < 0)
		return 0;
	f = fdopen(fd, "re");
	if (!f) {
		close(fd);
		return 0;
	}
	while (!found && fgetgrent_r(f, &grp, buf, sizeof buf, &res) == 0) {
		if (strcmp(grp.gr_name, "tty") == 0) {
			*gid = grp.gr_gid;
			found = 1;
		}
	}
	fclose(f);
	return found;
}

/* One host device node bound onto an empty file in our /dev. A bind has
 * mount flags of its own, so these six mounts are the only ones without
 * nodev: the /dev tmpfs around them keeps nodev, and a node made there by
 * anyone could not be opened as a device. */
static int mounts_dev_node(struct mounts_ctx *c, int dev, const char *name)
{
	char host[32], rel[32];
	struct stat st;
	int src, fd, rc;

	snprintf(host, sizeof host, "/dev/%s", name);
	snprintf(rel, sizeof rel, "dev/%s", name);
	src = mounts_open_src(c, host, 0);
	if (src < 0)
		return -1;
	if (fstat(src, &st) < 0 || !S_ISCHR(st.st_mode)) {
		close(src);
		return mounts_fail(c->err, c->errlen, 0, "%s is not a character device", host);
	}
	fd = openat(dev, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		close(src);
		return mounts_fail(c->err, c->errlen, errno, "create /%s", rel);
	}
	close(fd);
	rc = mounts_bind(c, src, rel, 0, MS_NOSUID | MS_NOEXEC);
	close(src);
	return rc;
}

static int mounts_dev_pts(struct mounts_ctx *c, int dev)
{
	char data[96];
	gid_t gid;

	if (mkdirat(dev, "pts", 0755) < 0)
		return mounts_fail(c->err, c->errlen, errno, "mkdir /dev/pts");
	if (mounts_tty_gid(c, &gid))
		snprintf(data, sizeof data, "newinstance,ptmxmode=0666,mode=0620,gid=%u",
			 (unsigned)gid);
	else
		snprintf(data, sizeof data, "newinstance,ptmxmode=0666,mode=0620");
	/* Not nodev: ptmx and the pty slaves are device nodes on this very
	 * mount. Safe, since only the kernel creates nodes in a devpts. A new
	 * instance also numbers the tenant's ptys from 0, apart from the host. */
	return mounts_new_fs(c, "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, data);
}

static int mounts_dev_links(struct mounts_ctx *c, int dev)
{
	static const char *const links[][2] = {
		{ "ptmx", "pts/ptmx" },
		{ "fd", "/proc/self/fd" },
		{ "stdin", "/proc/self/fd/0" },
		{ "stdout", "/proc/self/fd/1" },
		{ "stderr", "/proc/self/fd/2" },
	};
	size_t i;

	for (i = 0; i < sizeof links / sizeof links[0]; i++)
		if (symlinkat(links[i][1], dev, links[i][0]) < 0)
			return mounts_fail(c->err, c->errlen, errno, "symlink /dev/%s", links[i][0]);
	return 0;
}

static int mounts_dev_fill(struct mounts_ctx *c, int dev)
{
	static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
	size_t i;

	for (i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
		if (mounts_dev_node(c, dev, nodes[i]) < 0)
			return -1;
	if (mounts_dev_pts(c, dev) < 0 || mounts_dev_links(c, dev) < 0)
		return -1;
	if (mkdirat(dev, "shm", 01777) < 0)
		return mounts_fail(c->err, c->errlen, errno, "mkdir /dev/shm");
	return mounts_tmpfs_sized(c, "dev/shm");
}

static int mounts_dev(struct mounts_ctx *c)
{
	int dev, rc;

	if (mounts_new_fs(c, "dev", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=64k,mode=0755") < 0)
		return -1;
	dev = mounts_open_in(c, "dev", O_DIRECTORY);
	if (dev < 0)
		return -1;
	rc = mounts_dev_fill(c, dev);
	close(dev);
	/* Read-only once filled: the init keeps no reason to change it, and
	 * after the privilege drop nobody else could anyway. Note: a tun device
	 * must be opened (/dev/net/tun) before mounts_build, not after. */
	if (rc == 0)
		rc = mounts_remount(c, "dev", O_DIRECTORY,
				    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
	return rc;
}

static int mounts_run(struct mounts_ctx *c)
{
	unsigned long flags = MS_NOSUID | MS_NODEV;
	int src, probe, rc;

	if (c->p->run_noexec)
		flags |= MS_NOEXEC;
	src = mounts_open_owned(c, c->p->run_src);
	if (src < 0)
		return -1;
	rc = mounts_bind(c, src, "run", O_DIRECTORY, flags);
	/* Debian's /var/run is a symlink to /run and needs nothing; a distro
	 * with a real /var/run directory gets the same tree bound there too. */
	if (rc == 0) {
		probe = mounts_openat2(c->root, "var/run", O_PATH | O_DIRECTORY, MOUNTS_RESOLVE);
		if (probe >= 0) {
			close(probe);
			rc = mounts_bind(c, src, "var/run", O_DIRECTORY, flags);
		}
	}
	close(src);
	return rc;
}

/* log_dir/NAME, read-only, at /home/NAME/logs, and only when the tenant
 * made that directory. Why there and not /var/log/fief: the distro is
 * shared and read-only, so /var/log/fief would have to be prepared by hand
 * in every distro, and mount points are only ever created in tmpfs we own.
 * A tenant who wants its logs runs `mkdir ~/logs`. The lookup follows no
 * symlink and stays beneath the root, so a planted "logs -> /etc" is
 * skipped, never mounted over. */
static int mounts_logs(struct mounts_ctx *c)
{
	char rel[NAME_MAX + 16];
	int src, probe, rc;

	if (!c->p->logs_src)
		return 0;
	snprintf(rel, sizeof rel, "home/%s/logs", c->p->tenant);
	probe = mounts_openat2(c->root, rel, O_PATH | O_DIRECTORY, MOUNTS_RESOLVE);
	if (probe < 0) {
		if (errno == ENOENT)
			log_debug("no ~/logs in the home: logs not mounted");
		else
			log_warn_r(errno, "~/logs is not a plain directory: logs not mounted");
		return 0;
	}
	close(probe);
	/* No log directory yet is no reason to keep a tenant from starting. */
	src = open(c->p->logs_src, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	if (src < 0 && errno == ENOENT) {
		log_warn("%s does not exist: ~/logs stays empty", c->p->logs_src);
		return 0;
	}
	if (src < 0)
		return mounts_fail(c->err, c->errlen, errno, "open %s", c->p->logs_src);
	rc = mounts_bind(c, src, rel, O_DIRECTORY, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
	close(src);
	return rc;
}

/* /home is a small tmpfs of our own holding only the NAME mount point: the
 * tenant sees no other home, and the distro's /home stays untouched. */
static int mounts_home(struct mounts_ctx *c)
{
	char rel[NAME_MAX + 16];
	int home, src, rc;

	if (mounts_new_fs(c, "home", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "size=1m,mode=0755") < 0)
		return -1;
	home = mounts_open_in(c, "home", O_DIRECTORY);
	if (home < 0)
		return -1;
	rc = mkdirat(home, c->p->tenant, 0755);
	close(home);
	if (rc < 0)
		return mounts_fail(c->err, c->errlen, errno, "mkdir /home/%s", c->p->tenant);
	src = mounts_open_owned(c, c->p->home_src);
	if (src < 0)
		return -1;
	snprintf(rel, sizeof rel, "home/%s", c->p->tenant);
	rc = mounts_bind(c, src, rel, O_DIRECTORY, MS_NOSUID | MS_NODEV);
	close(src);
	if (rc == 0)
		rc = mounts_logs(c);
	if (rc == 0)
		rc = mounts_remount(c, "home", O_DIRECTORY,
				    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
	return rc;
}

static int mounts_opt(struct mounts_ctx *c)
{
	int src, rc;

	if (!c->p->opt_src)
		return 0;
	src = mounts_open_src(c, c->p->opt_src, O_DIRECTORY);
	if (src < 0)
		return -1;
	rc = mounts_bind(c, src, "opt", O_DIRECTORY, MS_RDONLY | MS_NOSUID | MS_NODEV);
	close(src);
	return rc;
}

/* The tenant's passwd and group, over the distro's: files the launcher
 * wrote as root in a root-owned directory, bound read-only. */
static int mounts_etc(struct mounts_ctx *c)
{
	static const char *const files[] = { "passwd", "group" };
	char path[PATH_MAX], rel[32];
	int rc = 0;

	if (!c->p->etc_src)
		return 0;
	for (size_t i = 0; rc == 0 && i < sizeof files / sizeof files[0]; i++) {
		int src;

		snprintf(path, sizeof path, "%s/%s", c->p->etc_src, files[i]);
		snprintf(rel, sizeof rel, "etc/%s", files[i]);
		src = mounts_open_src(c, path, 0);
		if (src < 0)
			return -1;
		rc = mounts_bind(c, src, rel, 0, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
		close(src);
	}
	return rc;
}

/* pivot_root(".", ".") stacks the old root on top of the new one, and the
 * detach then drops it with every host mount under it. No directory is
 * needed to park the old root in, which a read-only distro could not give. */
static int mounts_pivot(struct mounts_ctx *c)
{
	if (fchdir(c->root) < 0)
		return mounts_fail(c->err, c->errlen, errno, "chdir %s", c->p->scratch);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return mounts_fail(c->err, c->errlen, errno, "pivot_root into %s", c->p->scratch);
	if (umount2(".", MNT_DETACH) < 0)
		return mounts_fail(c->err, c->errlen, errno, "detach the old root");
	if (chdir("/") < 0)
		return mounts_fail(c->err, c->errlen, errno, "chdir /");
	return 0;
}

static int mounts_check_path(const char *name, const char *path, int required,
			     char *err, size_t errlen)
{
	if (!path && !required)
		return 0;
	if (!path || path[0] != '/')
		return mounts_fail(err, errlen, 0, "mounts: %s must be an absolute path", name);
	return 0;
}

/* Everything that can be refused without touching the system, so a bad
 * plan fails before the first mount. */
static int mounts_check_plan(const struct mounts_plan *p, char *err, size_t errlen)
{
	size_t len;

	if (!p)
		return mounts_fail(err, errlen, 0, "mounts: no plan");
	if (mounts_check_path("distro_root", p->distro_root, 1, err, errlen) < 0 ||
	    mounts_check_path("home_src", p->home_src, 1, err, errlen) < 0 ||
	    mounts_check_path("run_src", p->run_src, 1, err, errlen) < 0 ||
	    mounts_check_path("scratch", p->scratch, 1, err, errlen) < 0 ||
	    mounts_check_path("opt_src", p->opt_src, 0, err, errlen) < 0 ||
	    mounts_check_path("logs_src", p->logs_src, 0, err, errlen) < 0 ||
	    mounts_check_path("etc_src", p->etc_src, 0, err, errlen) < 0)
		return -1;
	len = p->tenant ? strlen(p->tenant) : 0;
	if (len == 0 || len > NAME_MAX || strchr(p->tenant, '/') ||
	    strcmp(p->tenant, ".") == 0 || strcmp(p->tenant, "..") == 0)
		return mounts_fail(err, errlen, 0, "mounts: bad tenant name");
	/* size=0 means "no limit" to tmpfs: one tenant could fill the RAM. */
	if (p->tmp_size == 0)
		return mounts_fail(err, errlen, 0, "mounts: tmp_size must not be 0 (unlimited tmpfs)");
	return 0;
}

int mounts_build(const struct mounts_plan *p, char *err, size_t errlen)
{
	struct mounts_ctx c = { .p = p, .root = -1, .err = err, .errlen = errlen };
	int rc;

	if (mounts_check_plan(p, err, errlen) < 0)
		return -1;
	rc = mounts_root(&c);
	if (rc == 0)
		rc = mounts_new_fs(&c, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	if (rc == 0)
		rc = mounts_tmpfs_sized(&c, "tmp");
	if (rc == 0)
		rc = mounts_dev(&c);
	if (rc == 0)
		rc = mounts_run(&c);
	if (rc == 0)
		rc = mounts_home(&c);
	if (rc == 0)
		rc = mounts_opt(&c);
	if (rc == 0)
		rc = mounts_etc(&c);
	if (rc == 0)
		rc = mounts_pivot(&c);
	if (c.root >= 0)
		close(c.root);
	return rc;
}

int mounts_set_hostname(const char *name, char *err, size_t errlen)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > HOST_NAME_MAX)
		return mounts_fail(err, errlen, 0, "hostname must be 1 to %d bytes", HOST_NAME_MAX);
	if (sethostname(name, len) < 0)
		return mounts_fail(err, errlen, errno, "sethostname %s", name);
	return 0;
}

/* A new network namespace starts with "lo" down: local daemons (redis on
 * 127.0.0.1) and the apps talking to them need it up. */
int mounts_loopback_up(char *err, size_t errlen)
{
	struct ifreq ifr;
	int s, rc = 0;

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return mounts_fail(err, errlen, errno, "socket for lo");
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, "lo", sizeof "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		rc = mounts_fail(err, errlen, errno, "get flags of lo");
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			rc = mounts_fail(err, errlen, errno, "bring lo up");
	}
	close(s);
	return rc;
}
