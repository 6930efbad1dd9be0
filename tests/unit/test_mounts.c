/* Tests for launcher/mounts.c. The tenant tree is built for real: a child
 * unshares the namespaces a tenant init gets, forks so the grandchild is
 * pid 1, runs mounts_build on a tiny busybox rootfs and checks everything
 * from inside, reporting failures through a pipe and its exit code. Those
 * tests need root and are skipped, with the reason, without it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../launcher/mounts.h"

#define TENANT "alice"
#define TENANT_UID 20001
#define TENANT_HOSTNAME "alice-test"
#define TMP_SIZE (8ull << 20)
#define TTY_GID 5
#define NS_TENANT (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET)

struct fx {
	char dir[64];                 /* /tmp/fief-mounts-XXXXXX on the host */
	char distro[128], home[128], run[128], opt[128], logs[128], scratch[128];
	char home_link[128];
	const char *expect_err;       /* refusal tests: part of the message */
	int with_logs;                /* the full test: ~/logs gets mounted */
	struct mounts_plan plan;
};

/* ---- reporting from inside the namespaces (no cmocka in a child) ---- */

static int rep_fd = 2;
static int rep_fails;

static void rep_check(int ok, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void rep_check(int ok, int line, const char *fmt, ...)
{
	char msg[512];
	int e = errno;
	va_list ap;

	if (ok)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	dprintf(rep_fd, "  inside, line %d: %s%s%s\n", line, msg, e ? ": " : "", e ? strerror(e) : "");
	rep_fails++;
	errno = e;
}

/* errno is cleared first so a report shows only the errno of its check. */
#define CHECK(ok, ...) do { errno = 0; rep_check(!!(ok), __LINE__, __VA_ARGS__); } while (0)

/* ---- small file helpers, used on both sides ---- */

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t len = (ssize_t)strlen(text);

	if (fd < 0)
		return -1;
	if (write(fd, text, (size_t)len) != len) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static int text_is(const char *path, const char *want)
{
	char buf[256];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	return strcmp(buf, want) == 0;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[65536];
	ssize_t n = 0;
	int in, out;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof buf)) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	close(in);
	if (close(out) < 0 || n < 0)
		return -1;
	return fchmodat(AT_FDCWD, to, mode, 0);
}

/* ---- fixture: a tiny rootfs and the tenant's host directories ---- */

static int fx_mkdir(struct fx *f, const char *rel, uid_t uid)
{
	char path[256];

	snprintf(path, sizeof path, "%s/%s", f->dir, rel);
	if (mkdir(path, 0755) < 0)
		return -1;
	return chown(path, uid, uid);
}

static int fx_put(struct fx *f, const char *rel, const char *text)
{
	char path[256];

	snprintf(path, sizeof path, "%s/%s", f->dir, rel);
	return write_text(path, text);
}

static int fx_rootfs(struct fx *f)
{
	static const char *const dirs[] = {
		"distro", "distro/bin", "distro/home", "distro/run", "distro/tmp",
		"distro/proc", "distro/dev", "distro/opt", "distro/sys", "distro/var",
		"distro/var/run", "distro/etc",
	};
	char bb[192];
	size_t i;

	for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if (fx_mkdir(f, dirs[i], 0) < 0)
			return -1;
	snprintf(bb, sizeof bb, "%s/bin/busybox", f->distro);
	if (copy_file("/bin/busybox", bb, 0755) < 0)
		return -1;
	return fx_put(f, "distro/etc/group", "root:x:0:\ntty:x:5:\nusers:x:100:\n");
}

static int fx_hostdirs(struct fx *f)
{
	if (fx_mkdir(f, "homes", 0) < 0 || fx_mkdir(f, "homes/" TENANT, TENANT_UID) < 0 ||
	    fx_mkdir(f, "state", 0) < 0 || fx_mkdir(f, "state/run", TENANT_UID) < 0 ||
	    fx_mkdir(f, "state/root", 0) < 0 || fx_mkdir(f, "opt", 0) < 0 ||
	    fx_mkdir(f, "logs", 0) < 0 || fx_mkdir(f, "logs/" TENANT, 0) < 0)
		return -1;
	if (fx_put(f, "opt/hello", "opt\n") < 0 || fx_put(f, "logs/" TENANT "/app.log", "log line\n") < 0)
		return -1;
	return 0;
}

static void fx_plan(struct fx *f)
{
	snprintf(f->distro, sizeof f->distro, "%s/distro", f->dir);
	snprintf(f->home, sizeof f->home, "%s/homes/" TENANT, f->dir);
	snprintf(f->home_link, sizeof f->home_link, "%s/homes/link", f->dir);
	snprintf(f->run, sizeof f->run, "%s/state/run", f->dir);
	snprintf(f->scratch, sizeof f->scratch, "%s/state/root", f->dir);
	snprintf(f->opt, sizeof f->opt, "%s/opt", f->dir);
	snprintf(f->logs, sizeof f->logs, "%s/logs/" TENANT, f->dir);
	f->plan = (struct mounts_plan){
		.distro_root = f->distro, .home_src = f->home, .tenant = TENANT,
		.run_src = f->run, .opt_src = f->opt, .logs_src = f->logs,
		.scratch = f->scratch, .tmp_size = TMP_SIZE, .tmp_noexec = true,
		.run_noexec = false, .uid = TENANT_UID, .gid = TENANT_UID,
	};
}

static int fx_setup(void **state)
{
	struct fx *f;

	*state = NULL;
	if (geteuid() != 0)
		return 0;
	f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	*state = f;
	snprintf(f->dir, sizeof f->dir, "/tmp/fief-mounts-XXXXXX");
	if (!mkdtemp(f->dir)) {
		f->dir[0] = '\0';
		return -1;
	}
	fx_plan(f);
	if (fx_rootfs(f) < 0 || fx_hostdirs(f) < 0) {
		perror("test_mounts fixture");
		return -1;
	}
	return 0;
}

/* Does any mount on the host still name the fixture? Then nothing under it
 * may be deleted: rm -rf through a leftover bind would hit its source. */
static int host_mounts_mention(const char *dir)
{
	char line[4096];
	int found = 0;
	FILE *m = fopen("/proc/self/mountinfo", "re");

	if (!m)
		return 1;
	while (fgets(line, sizeof line, m))
		if (strstr(line, dir))
			found = 1;
	fclose(m);
	return found;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	int rc = 0;

	if (!f)
		return 0;
	if (f->dir[0] && host_mounts_mention(f->dir)) {
		fprintf(stderr, "mounts left on the host under %s: not removing it\n", f->dir);
		rc = -1;
	} else if (f->dir[0] && nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0) {
		perror("remove fixture");
		rc = -1;
	}
	free(f);
	return rc;
}

static struct fx *need_root(void **state)
{
	if (geteuid() != 0) {
		print_message("[  SKIPPED ] needs root: it builds mount, pid, uts and net "
			      "namespaces and mounts for real\n");
		skip();
	}
	assert_non_null(*state);
	return *state;
}

/* ---- running code as the tenant init ---- */

typedef int (*inside_fn)(struct fx *f);

static int ns_child(struct fx *f, int nsflags, inside_fn fn)
{
	pid_t pid;
	int st;

	if (nsflags && unshare(nsflags) < 0) {
		dprintf(rep_fd, "unshare: %s\n", strerror(errno));
		return 100;
	}
	/* unshare(CLONE_NEWPID) moves only later children: fork to get pid 1. */
	pid = fork();
	if (pid < 0)
		return 101;
	if (pid == 0)
		_exit(fn(f));
	if (waitpid(pid, &st, 0) != pid)
		return 102;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run fn in fresh namespaces; returns its exit code, its report in out. */
static int run_in_ns(struct fx *f, int nsflags, inside_fn fn, char *out, size_t outlen)
{
	char buf[4096];
	size_t n = 0;
	ssize_t r;
	pid_t pid;
	int p[2], st;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		rep_fd = p[1];
		_exit(ns_child(f, nsflags, fn));
	}
	close(p[1]);
	/* Keep reading past a full buffer so the child never blocks on us. */
	while ((r = read(p[0], buf, sizeof buf)) > 0) {
		size_t take = (size_t)r < outlen - 1 - n ? (size_t)r : outlen - 1 - n;
		memcpy(out + n, buf, take);
		n += take;
	}
	out[n] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- checks made from inside the finished tenant ---- */

static void check_identity(void)
{
	struct dirent *e;
	struct utsname u;
	int others = 0;
	DIR *d;

	CHECK(getpid() == 1, "pid is %d, not 1", (int)getpid());
	d = opendir("/proc");
	CHECK(d != NULL, "opendir /proc");
	while (d && (e = readdir(d)) != NULL)
		if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && strcmp(e->d_name, "1") != 0)
			others++;
	if (d)
		closedir(d);
	CHECK(others == 0, "/proc shows %d pids besides our own", others);
	memset(&u, 0, sizeof u);
	CHECK(uname(&u) == 0, "uname");
	CHECK(strcmp(u.nodename, TENANT_HOSTNAME) == 0, "hostname is %s", u.nodename);
}

static void check_loopback(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	CHECK(s >= 0, "socket");
	if (s < 0)
		return;
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, "lo", sizeof "lo");
	CHECK(ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP), "lo is not up");
	close(s);
}

static void check_readonly(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	int e = errno;

	CHECK(fd < 0 && e == EROFS, "creating %s: %s, not EROFS", path,
	      fd < 0 ? strerror(e) : "it worked");
	if (fd >= 0)
		close(fd);
}

static void check_root(void)
{
	char cwd[64];

	check_readonly("/newfile");
	check_readonly("/etc/newfile");
	CHECK(mkdir("/home/bob", 0755) < 0 && errno == EROFS, "mkdir /home/bob");
	check_readonly("/dev/newfile");
	CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, "/") == 0, "cwd is not /");
}

static void check_size(const char *path, uint64_t want)
{
	struct statvfs sv;

	CHECK(statvfs(path, &sv) == 0, "statvfs %s", path);
	CHECK((uint64_t)sv.f_blocks * sv.f_frsize == want, "%s has %llu bytes, not %llu", path,
	      (unsigned long long)sv.f_blocks * sv.f_frsize, (unsigned long long)want);
}

static void check_writable(struct fx *f)
{
	CHECK(write_text("/tmp/t", "tmp\n") == 0, "write in /tmp");
	CHECK(write_text("/dev/shm/t", "shm\n") == 0, "write in /dev/shm");
	check_size("/tmp", f->plan.tmp_size);
	check_size("/dev/shm", f->plan.tmp_size);
	CHECK(write_text("/home/" TENANT "/hello.txt", "hello from inside\n") == 0, "write in home");
	CHECK(write_text("/run/app.test", "run\n") == 0, "write in /run");
	CHECK(write_text("/var/run/varrun.test", "var run\n") == 0, "write in /var/run");
}

static void check_shared_ro(struct fx *f)
{
	CHECK(text_is("/opt/hello", "opt\n"), "read /opt/hello");
	check_readonly("/opt/newfile");
	if (!f->with_logs)
		return;
	CHECK(text_is("/home/" TENANT "/logs/app.log", "log line\n"), "read ~/logs/app.log");
	check_readonly("/home/" TENANT "/logs/newfile");
}

static void check_link(const char *path, const char *want)
{
	char buf[64];
	ssize_t n = readlink(path, buf, sizeof buf - 1);

	CHECK(n > 0, "readlink %s", path);
	if (n > 0) {
		buf[n] = '\0';
		CHECK(strcmp(buf, want) == 0, "%s -> %s, not %s", path, buf, want);
	}
}

static void check_dev_nodes(void)
{
	char buf[16] = { 1 };
	int fd, e;

	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0 && write(fd, "abc", 3) == 3 && read(fd, buf, sizeof buf) == 0, "/dev/null");
	close(fd);
	fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, buf, sizeof buf) == sizeof buf && buf[0] == 0 && buf[15] == 0,
	      "/dev/zero");
	close(fd);
	fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
	CHECK(fd >= 0 && write(fd, "x", 1) < 0 && errno == ENOSPC, "/dev/full");
	close(fd);
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, buf, sizeof buf) == sizeof buf, "/dev/urandom");
	close(fd);
	fd = open("/dev/random", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(fd >= 0 && read(fd, buf, sizeof buf) == sizeof buf, "/dev/random");
	close(fd);
	/* ENXIO: no controlling terminal. EACCES would mean a nodev mount. */
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	e = errno;
	CHECK(fd >= 0 || e == ENXIO, "/dev/tty: %s", strerror(e));
	if (fd >= 0)
		close(fd);
}

static void check_dev_links(void)
{
	check_link("/dev/ptmx", "pts/ptmx");
	check_link("/dev/fd", "/proc/self/fd");
	check_link("/dev/stdin", "/proc/self/fd/0");
	check_link("/dev/stdout", "/proc/self/fd/1");
	check_link("/dev/stderr", "/proc/self/fd/2");
}

static void check_pts(void)
{
	struct statfs sf;
	struct stat st;
	int m, s, n = -1, unlock = 0;

	CHECK(statfs("/dev/pts", &sf) == 0 && sf.f_type == DEVPTS_SUPER_MAGIC, "/dev/pts is no devpts");
	m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(m >= 0, "open /dev/ptmx");
	if (m < 0)
		return;
	/* A private instance numbers from 0 whatever the host has open. */
	CHECK(ioctl(m, TIOCGPTN, &n) == 0 && n == 0, "first pty is number %d, not 0", n);
	CHECK(ioctl(m, TIOCSPTLCK, &unlock) == 0, "unlock the pty");
	s = open("/dev/pts/0", O_RDWR | O_NOCTTY | O_CLOEXEC);
	CHECK(s >= 0, "open the pty slave /dev/pts/0");
	memset(&st, 0, sizeof st);
	CHECK(stat("/dev/pts/0", &st) == 0, "stat /dev/pts/0");
	CHECK(st.st_gid == TTY_GID && (st.st_mode & 07777) == 0620, "pty slave has gid %u mode %o",
	      (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
	/* Root opens ptmx whatever its mode: check ptmxmode by the mode. */
	memset(&st, 0, sizeof st);
	CHECK(stat("/dev/pts/ptmx", &st) == 0, "stat /dev/pts/ptmx");
	CHECK((st.st_mode & 07777) == 0666, "/dev/pts/ptmx has mode %o", (unsigned)(st.st_mode & 07777));
	if (s >= 0)
		close(s);
	close(m);
}

/* Exit code of path run as "busybox true": 126 if exec was refused. */
static int run_busybox(const char *path)
{
	char *argv[] = { (char *)"busybox", (char *)"true", NULL };
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		execv(path, argv);
		_exit(errno == EACCES ? 126 : 127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void check_exec(void)
{
	CHECK(run_busybox("/bin/busybox") == 0, "busybox on the read-only root does not run");
	CHECK(copy_file("/bin/busybox", "/tmp/busybox", 0755) == 0, "copy busybox to /tmp");
	CHECK(run_busybox("/tmp/busybox") == 126, "exec from /tmp (tmp_noexec) was not refused");
	CHECK(copy_file("/bin/busybox", "/run/busybox", 0755) == 0, "copy busybox to /run");
	CHECK(run_busybox("/run/busybox") == 0, "exec from /run (run_noexec off) fails");
}

/* ---- /proc/self/mountinfo: exactly our mounts, each with its flags ---- */

struct want_mount {
	const char *path;
	int ro, nodev, noexec;
};

static const struct want_mount want_mounts[] = {
	{ "/", 1, 1, 0 },            { "/proc", 0, 1, 1 },
	{ "/tmp", 0, 1, 1 },         { "/dev", 1, 1, 1 },
	{ "/dev/null", 0, 0, 1 },    { "/dev/zero", 0, 0, 1 },
	{ "/dev/full", 0, 0, 1 },    { "/dev/random", 0, 0, 1 },
	{ "/dev/urandom", 0, 0, 1 }, { "/dev/tty", 0, 0, 1 },
	{ "/dev/pts", 0, 0, 1 },     { "/dev/shm", 0, 1, 1 },
	{ "/run", 0, 1, 0 },         { "/var/run", 0, 1, 0 },
	{ "/home", 1, 1, 1 },        { "/home/" TENANT, 0, 1, 0 },
	{ "/home/" TENANT "/logs", 1, 1, 1 }, { "/opt", 1, 1, 0 },
};
#define N_WANT (sizeof want_mounts / sizeof want_mounts[0])

static int has_opt(const char *opts, const char *name)
{
	size_t len = strlen(name);
	const char *p = opts;

	for (; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return 1;
	return 0;
}

static void check_mount_line(struct fx *f, const char *root, const char *mp, const char *opts,
			     int *hits)
{
	size_t i;

	for (i = 0; i < N_WANT && strcmp(want_mounts[i].path, mp) != 0; i++)
		;
	CHECK(i < N_WANT, "unexpected mount %s (root %s)", mp, root);
	CHECK(has_opt(opts, "nosuid"), "%s is not nosuid: %s", mp, opts);
	if (i == N_WANT)
		return;
	hits[i]++;
	CHECK(has_opt(opts, "ro") == want_mounts[i].ro, "%s: wrong ro/rw: %s", mp, opts);
	CHECK(has_opt(opts, "nodev") == want_mounts[i].nodev, "%s: wrong nodev: %s", mp, opts);
	CHECK(has_opt(opts, "noexec") == want_mounts[i].noexec, "%s: wrong noexec: %s", mp, opts);
	/* The root must be the distro bind, not the host's root. */
	if (strcmp(mp, "/") == 0)
		CHECK(strcmp(root, f->distro) == 0, "/ is %s, not the distro", root);
}

static void check_mountinfo(struct fx *f)
{
	char line[1024], root[512], mp[512], opts[256];
	int hits[N_WANT] = { 0 };
	FILE *m = fopen("/proc/self/mountinfo", "re");
	size_t i;

	CHECK(m != NULL, "open mountinfo");
	while (m && fgets(line, sizeof line, m)) {
		if (sscanf(line, "%*s %*s %*s %511s %511s %255s", root, mp, opts) != 3) {
			CHECK(0, "cannot parse mountinfo line %s", line);
			continue;
		}
		check_mount_line(f, root, mp, opts, hits);
	}
	if (m)
		fclose(m);
	for (i = 0; i < N_WANT; i++) {
		int want = strstr(want_mounts[i].path, "/logs") ? f->with_logs : 1;
		CHECK(hits[i] == want, "%s mounted %d times, want %d", want_mounts[i].path, hits[i], want);
	}
}

static int inside_tenant(struct fx *f)
{
	char err[512] = "";

	if (mounts_set_hostname(TENANT_HOSTNAME, err, sizeof err) < 0 ||
	    mounts_loopback_up(err, sizeof err) < 0 || mounts_build(&f->plan, err, sizeof err) < 0) {
		dprintf(rep_fd, "  setup failed: %s\n", err);
		return 1;
	}
	check_identity();
	check_loopback();
	check_mountinfo(f);
	check_root();
	check_writable(f);
	check_shared_ro(f);
	check_dev_nodes();
	check_dev_links();
	check_pts();
	check_exec();
	return rep_fails ? 1 : 0;
}

/* ---- the tests ---- */

static void assert_ran_clean(struct fx *f, inside_fn fn)
{
	char out[8192];
	int code = run_in_ns(f, NS_TENANT, fn, out, sizeof out);

	if (code != 0 || out[0])
		print_message("%s", out);
	assert_int_equal(code, 0);
	assert_false(host_mounts_mention(f->dir));
}

static void assert_host_text(struct fx *f, const char *rel, const char *want)
{
	char path[256];

	snprintf(path, sizeof path, "%s/%s", f->dir, rel);
	assert_true(text_is(path, want));
}

static void test_tenant_tree(void **state)
{
	struct fx *f = need_root(state);
	char logs[192];
	DIR *d;
	int entries = 0;

	snprintf(logs, sizeof logs, "%s/logs", f->home);
	assert_int_equal(mkdir(logs, 0755), 0);
	f->with_logs = 1;
	assert_ran_clean(f, inside_tenant);
	assert_host_text(f, "homes/" TENANT "/hello.txt", "hello from inside\n");
	assert_host_text(f, "state/run/app.test", "run\n");
	assert_host_text(f, "state/run/varrun.test", "var run\n");
	/* Nothing was written into the shared distro or left on scratch. */
	d = opendir(f->scratch);
	assert_non_null(d);
	while (readdir(d))
		entries++;
	closedir(d);
	assert_int_equal(entries, 2);
}

/* The tenant owns its home: a "logs" symlink there must be skipped, never
 * followed (it points at the host's /etc before the pivot). */
static void test_logs_symlink_skipped(void **state)
{
	struct fx *f = need_root(state);
	char logs[192];

	snprintf(logs, sizeof logs, "%s/logs", f->home);
	assert_int_equal(symlink("/etc", logs), 0);
	f->with_logs = 0;
	assert_ran_clean(f, inside_tenant);
	assert_host_text(f, "homes/" TENANT "/hello.txt", "hello from inside\n");
}

/* A tenant's ~/logs with no log_dir/NAME behind it yet: start anyway. */
static void test_logs_missing_source_skipped(void **state)
{
	struct fx *f = need_root(state);
	char logs[192];

	snprintf(logs, sizeof logs, "%s/logs", f->home);
	assert_int_equal(mkdir(logs, 0755), 0);
	f->plan.logs_src = "/nonexistent/fief/logs/alice";
	f->with_logs = 0;
	assert_ran_clean(f, inside_tenant);
}

static int inside_refused(struct fx *f)
{
	char err[512] = "";

	if (mounts_build(&f->plan, err, sizeof err) == 0) {
		dprintf(rep_fd, "  mounts_build succeeded, expected \"%s\"\n", f->expect_err);
		return 1;
	}
	if (!strstr(err, f->expect_err)) {
		dprintf(rep_fd, "  error \"%s\" lacks \"%s\"\n", err, f->expect_err);
		return 1;
	}
	return 0;
}

static void test_home_symlink_refused(void **state)
{
	struct fx *f = need_root(state);

	assert_int_equal(symlink(f->home, f->home_link), 0);
	f->plan.home_src = f->home_link;
	f->expect_err = "homes/link";
	assert_ran_clean(f, inside_refused);
}

static void test_home_wrong_owner_refused(void **state)
{
	struct fx *f = need_root(state);

	assert_int_equal(chown(f->home, 0, 0), 0);
	f->expect_err = "not the tenant's uid";
	assert_ran_clean(f, inside_refused);
}

static void test_distro_symlink_refused(void **state)
{
	struct fx *f = need_root(state);
	char link[192];

	snprintf(link, sizeof link, "%s/distro-link", f->dir);
	assert_int_equal(symlink(f->distro, link), 0);
	f->plan.distro_root = link;
	f->expect_err = "distro-link";
	assert_ran_clean(f, inside_refused);
}

static void expect_bad_plan(const struct mounts_plan *p, const char *want)
{
	char err[256] = "";

	CHECK(mounts_build(p, err, sizeof err) < 0, "plan accepted, expected \"%s\"", want);
	CHECK(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

static struct mounts_plan bad_plan_base(void)
{
	struct mounts_plan p = {
		.distro_root = "/nonexistent/distro", .home_src = "/nonexistent/home",
		.tenant = TENANT, .run_src = "/nonexistent/run", .scratch = "/nonexistent/root",
		.tmp_size = TMP_SIZE,
	};

	return p;
}

/* Refused before the first mount; runs in its own mount and uts
 * namespaces when root, so a regression cannot touch the host. */
static int inside_bad_plans(struct fx *unused)
{
	struct mounts_plan p;
	char err[256], longname[80];

	expect_bad_plan(NULL, "no plan");
	p = bad_plan_base();
	p.tmp_size = 0;
	expect_bad_plan(&p, "tmp_size");
	p = bad_plan_base();
	p.tenant = "..";
	expect_bad_plan(&p, "tenant");
	p.tenant = "a/b";
	expect_bad_plan(&p, "tenant");
	p.tenant = NULL;
	expect_bad_plan(&p, "tenant");
	p = bad_plan_base();
	p.home_src = "homes/alice";
	expect_bad_plan(&p, "home_src");
	p = bad_plan_base();
	p.scratch = NULL;
	expect_bad_plan(&p, "scratch");
	p = bad_plan_base();
	p.opt_src = "opt";
	expect_bad_plan(&p, "opt_src");
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	CHECK(mounts_set_hostname(longname, err, sizeof err) < 0, "79-byte hostname accepted");
	CHECK(mounts_set_hostname("", err, sizeof err) < 0, "empty hostname accepted");
	return rep_fails ? 1 : 0;
}

static void test_bad_plans(void **state)
{
	char out[4096];
	int flags = geteuid() == 0 ? CLONE_NEWNS | CLONE_NEWUTS : 0;
	int code = run_in_ns(NULL, flags, inside_bad_plans, out, sizeof out);

	if (code != 0)
		print_message("%s", out);
	assert_int_equal(code, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_plans),
		cmocka_unit_test_setup_teardown(test_tenant_tree, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_logs_symlink_skipped, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_logs_missing_source_skipped, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_home_symlink_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_home_wrong_owner_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_distro_symlink_refused, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
