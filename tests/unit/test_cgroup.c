/* test_cgroup: launcher/cgroup.c against the running kernel's cgroups.
 *
 * Needs root (tests skip, saying why, otherwise). Everything lives under a
 * parent group "fief-test-PID" below our own cgroup; each test's teardown
 * destroys the groups it made and reaps its children, the group teardown
 * removes the parent, so a failing assertion leaves nothing behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../launcher/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024 * 1024)

static const char *ctrls[] = {"memory", "cpu", "pids", "cpuacct"};
static char parent[64];
static bool ready; /* root, and cg_init succeeded */
static const char *skip_reason = "not set up";
struct kid {
	pid_t pid; /* 0 once reaped */
	int go; /* write a byte to let the child run its body */
	int out; /* what the child reports */
};

static struct kid kids[16];
static size_t nkids;

/* ---- helpers ---- */

static void need_ready(void)
{
	if (!ready) {
		print_message("skipped: %s\n", skip_reason);
		skip();
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Wait up to ms for the child to end; its wait status, or -1 on timeout. */
static int wait_exit(struct kid *k, long ms)
{
	int st;

	for (long waited = 0; waited <= ms; waited += 10) {
		if (waitpid(k->pid, &st, WNOHANG) == k->pid) {
			k->pid = 0; /* reaped: its pid may be reused now */
			return st;
		}
		sleep_ms(10);
	}
	return -1;
}

/* Fork a child that waits for "go", then runs body. It dies with us. */
static struct kid *spawn(void (*body)(int out))
{
	int gp[2], op[2];
	char c;
	pid_t pid;

	assert_true(nkids < sizeof kids / sizeof *kids);
	assert_int_equal(pipe2(gp, O_CLOEXEC), 0);
	assert_int_equal(pipe2(op, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(gp[1]);
		close(op[0]);
		if (read(gp[0], &c, 1) != 1)
			_exit(100);
		body(op[1]);
		_exit(0);
	}
	close(gp[0]);
	close(op[1]);
	kids[nkids] = (struct kid){.pid = pid, .go = gp[1], .out = op[0]};
	return &kids[nkids++];
}

static void go(struct kid *k)
{
	assert_int_equal(write(k->go, "g", 1), 1);
	close(k->go);
	k->go = -1;
}

/* Read exactly len bytes the child reports, within 5 s. */
static void read_report(struct kid *k, void *buf, size_t len)
{
	struct pollfd p = {.fd = k->out, .events = POLLIN};

	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_int_equal(read(k->out, buf, len), (ssize_t)len);
}

static void ctl_path(const char *name, const char *ctrl, const char *file, char *buf,
		     size_t len)
{
	char dir[PATH_MAX];

	assert_int_equal(cg_dir(name, ctrl, dir, sizeof dir), 0);
	assert_true(snprintf(buf, len, "%s/%s", dir, file) < (int)len);
}

static bool has_ctl(const char *name, const char *ctrl, const char *file)
{
	char path[PATH_MAX];

	ctl_path(name, ctrl, file, path, sizeof path);
	return access(path, F_OK) == 0;
}

/* Contents of a control file, without the trailing newline. */
static void read_ctl(const char *name, const char *ctrl, const char *file, char *buf,
		     size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	ctl_path(name, ctrl, file, path, sizeof path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, len - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

static void assert_ctl(const char *name, const char *ctrl, const char *file, const char *want)
{
	char got[256];

	read_ctl(name, ctrl, file, got, sizeof got);
	if (strcmp(got, want))
		print_error("%s %s: got \"%s\", want \"%s\"\n", name, file, got, want);
	assert_string_equal(got, want);
}

/* Limits as the kernel shows them, in whichever version each controller runs. */
static void check_limits(const char *name, uint64_t mem, int64_t quota, const char *pids)
{
	char want[64];

	snprintf(want, sizeof want, "%" PRIu64, mem);
	if (has_ctl(name, "memory", "memory.limit_in_bytes")) {
		assert_ctl(name, "memory", "memory.limit_in_bytes", want);
		if (has_ctl(name, "memory", "memory.memsw.limit_in_bytes"))
			assert_ctl(name, "memory", "memory.memsw.limit_in_bytes", want);
		else
			assert_ctl(name, "memory", "memory.swappiness", "0");
	} else {
		assert_ctl(name, "memory", "memory.max", want);
		if (has_ctl(name, "memory", "memory.swap.max"))
			assert_ctl(name, "memory", "memory.swap.max", "0");
	}
	if (has_ctl(name, "cpu", "cpu.cfs_quota_us")) {
		assert_ctl(name, "cpu", "cpu.cfs_period_us", "100000");
		snprintf(want, sizeof want, "%" PRId64, quota ? quota : -1);
		assert_ctl(name, "cpu", "cpu.cfs_quota_us", want);
	} else {
		if (quota)
			snprintf(want, sizeof want, "%" PRId64 " 100000", quota);
		else
			snprintf(want, sizeof want, "max 100000");
		assert_ctl(name, "cpu", "cpu.max", want);
	}
	assert_ctl(name, "pids", "pids.max", pids);
}

static bool procs_has(const char *name, const char *ctrl, pid_t pid)
{
	char path[PATH_MAX];
	bool found = false;
	int p;
	FILE *f;

	ctl_path(name, ctrl, "cgroup.procs", path, sizeof path);
	f = fopen(path, "re");
	assert_non_null(f);
	while (!found && fscanf(f, "%d", &p) == 1)
		found = p == pid;
	fclose(f);
	return found;
}

/* ---- child bodies (no cmocka in here: report through `out`, or exit) ---- */

static void body_pause(int out)
{
	for (;;)
		pause();
}

/* Fork until the kernel refuses, report how far we got, then sit. Each
 * child keeps forking too (its own children sit), so the pids limit is all
 * that stops the bomb. */
static void body_bomb(int out)
{
	int msg[2] = {0, 0};
	pid_t p;

	for (int i = 0; i < 64 && !msg[1]; i++) {
		p = fork();
		if (p == 0) {
			while (fork() != 0)
				sleep_ms(1);
			for (;;)
				pause();
		}
		if (p < 0)
			msg[1] = errno;
		else
			msg[0]++;
	}
	if (write(out, msg, sizeof msg) != sizeof msg)
		_exit(101);
	for (;;)
		pause();
}

/* Touch 256 MiB, one page at a time; a memory limit must stop us first. */
static void body_hog(int out)
{
	for (int i = 0; i < 256; i++) {
		volatile char *p = malloc(MiB);

		if (!p)
			_exit(102);
		for (size_t j = 0; j < MiB; j += 4096)
			p[j] = 1;
	}
	_exit(0);
}

static void body_spin(int out)
{
	struct timespec t0, now;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &now);
	while ((now.tv_sec - t0.tv_sec) * 1000000000L + (now.tv_nsec - t0.tv_nsec) < 1000000000L);
	_exit(0);
}

/* ---- setup and cleanup ---- */

/* Destroy every group under the test parent, kill and reap our children
 * and anything orphaned to us (we are a subreaper). */
static int cleanup_groups(void)
{
	char **names = NULL;
	size_t n = 0;
	int failed = 0;

	for (size_t i = 0; i < nkids; i++) {
		if (kids[i].pid > 0)
			kill(kids[i].pid, SIGKILL);
		if (kids[i].go >= 0)
			close(kids[i].go);
		close(kids[i].out);
	}
	if (cg_list(&names, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (cg_destroy(names[i]) < 0)
				failed = -1;
			free(names[i]);
		}
		free(names);
	}
	for (int waited = 0; waited < 5000; waited += 10) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
			break;
		sleep_ms(10);
	}
	nkids = 0;
	return failed;
}

/* rmdir the test parent in every controller (v2 shares one dir). */
static int remove_parent(void)
{
	char dir[PATH_MAX];
	int failed = 0;

	for (size_t i = 0; i < sizeof ctrls / sizeof *ctrls; i++) {
		if (cg_dir("x", ctrls[i], dir, sizeof dir) < 0)
			continue;
		if (rmdir(dirname(dir)) < 0 && errno != ENOENT) {
			print_error("rmdir %s: %s\n", dir, strerror(errno));
			failed = -1;
		}
	}
	return failed;
}

static void cleanup_at_exit(void)
{
	if (!ready)
		return;
	cleanup_groups();
	remove_parent();
	ready = false;
}

static int setup_all(void **state)
{
	if (geteuid() != 0) {
		skip_reason = "creating cgroups needs root";
		return 0;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	snprintf(parent, sizeof parent, "fief-test-%d", (int)getpid());
	if (cg_init(parent) < 0) {
		print_error("cg_init(%s) failed as root, see the log above\n", parent);
		return -1;
	}
	ready = true;
	atexit(cleanup_at_exit);
	return 0;
}

static int teardown_all(void **state)
{
	int r;

	if (!ready)
		return 0;
	r = cleanup_groups();
	r |= remove_parent();
	ready = false;
	return r;
}

static int teardown_test(void **state)
{
	return ready ? cleanup_groups() : 0;
}

/* ---- tests ---- */

static void test_bad_names(void **state)
{
	struct cg_limits lim = {.memory = 64 * MiB, .cpu_millis = 0, .pids = 10};
	const char *bad[] = {"", ".", "..", "../x", "a/b", "/abs", "new\nline"};
	char dir[PATH_MAX];

	need_ready();
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(cg_create(bad[i], &lim), -EINVAL);
		assert_false(cg_exists(bad[i]));
	}
	assert_int_equal(cg_create(NULL, &lim), -EINVAL);
	assert_int_equal(cg_create("ok", NULL), -EINVAL);
	assert_int_equal(cg_dir("ok", "freezer", dir, sizeof dir), -EINVAL);
	assert_int_equal(cg_dir("ok", "memory", dir, 4), -ENAMETOOLONG);
	assert_int_equal(cg_set_limits("absent", &lim), -ENOENT);
	assert_true(cg_version() == 1 || cg_version() == 2);

	/* A bad parent is refused and leaves the module as it was. */
	assert_int_equal(cg_init(NULL), -EINVAL);
	assert_int_equal(cg_init("../up"), -EINVAL);
	assert_int_equal(cg_init("/abs"), -EINVAL);
	assert_int_equal(cg_init("a//b"), -EINVAL);
	assert_int_equal(cg_init("launcher/x"), -EINVAL);
	assert_int_equal(cg_create("ok", &lim), 0);
	assert_true(cg_exists("ok"));
}

static void test_create_and_update_limits(void **state)
{
	struct cg_limits lim = {.memory = 64 * MiB, .cpu_millis = 500, .pids = 100};

	need_ready();
	assert_int_equal(cg_create("lim", &lim), 0);
	assert_true(cg_exists("lim"));
	check_limits("lim", 64 * MiB, 50000, "100");

	/* Raising past the current swap limit needs memsw written first on v1. */
	lim = (struct cg_limits){.memory = 128 * MiB, .cpu_millis = 0, .pids = 0};
	assert_int_equal(cg_set_limits("lim", &lim), 0);
	check_limits("lim", 128 * MiB, 0, "max");

	lim = (struct cg_limits){.memory = 32 * MiB, .cpu_millis = 1500, .pids = 7};
	assert_int_equal(cg_set_limits("lim", &lim), 0);
	check_limits("lim", 32 * MiB, 150000, "7");

	/* Creating an existing group updates it; tiny quotas round up to 1 ms. */
	lim = (struct cg_limits){.memory = 48 * MiB, .cpu_millis = 5, .pids = 9};
	assert_int_equal(cg_create("lim", &lim), 0);
	check_limits("lim", 48 * MiB, 1000, "9");

	/* A bad update is refused before anything is written. */
	lim = (struct cg_limits){.memory = 16 * MiB, .cpu_millis = -1, .pids = 3};
	assert_int_equal(cg_set_limits("lim", &lim), -EINVAL);
	check_limits("lim", 48 * MiB, 1000, "9");
}

static void test_list(void **state)
{
	struct cg_limits lim = {.memory = 64 * MiB, .cpu_millis = 0, .pids = 10};
	char **names;
	size_t n;
	bool a = false, b = false;

	need_ready();
	assert_int_equal(cg_create("alpha", &lim), 0);
	assert_int_equal(cg_create("beta", &lim), 0);
	assert_int_equal(cg_list(&names, &n), 0);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		a |= !strcmp(names[i], "alpha");
		b |= !strcmp(names[i], "beta");
		free(names[i]);
	}
	free(names);
	assert_true(a && b);
}

static void test_attach_procs_usage(void **state)
{
	struct cg_limits lim = {.memory = 64 * MiB, .cpu_millis = 0, .pids = 10};
	char dir[PATH_MAX];
	struct cg_usage u;
	struct kid *k;
	pid_t got[8];
	int st;

	need_ready();
	k = spawn(body_pause);
	assert_int_equal(cg_create("att", &lim), 0);
	assert_int_equal(cg_attach("att", k->pid), 0);
	for (size_t i = 0; i < sizeof ctrls / sizeof *ctrls; i++)
		if (cg_dir("att", ctrls[i], dir, sizeof dir) == 0) /* cpuacct: v1 only */
			assert_true(procs_has("att", ctrls[i], k->pid));
	assert_int_equal(cg_procs("att", got, 8), 1);
	assert_int_equal(got[0], k->pid);
	assert_int_equal(cg_usage("att", &u), 0);
	assert_int_equal(u.pids, 1);
	assert_int_equal(u.oom_kills, 0);

	assert_int_equal(cg_attach("att", 0), -EINVAL);
	assert_true(cg_attach("absent", k->pid) < 0);

	/* Killing empties the group but keeps it. */
	assert_int_equal(cg_kill_all("att"), 0);
	st = wait_exit(k, 2000);
	assert_true(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(cg_procs("att", got, 8), 0);
	assert_true(cg_exists("att"));
}

static void test_fork_bomb(void **state)
{
	struct cg_limits lim = {.memory = 64 * MiB, .cpu_millis = 0, .pids = 5};
	struct cg_usage u;
	struct kid *k;
	pid_t got[16];
	int msg[2], st;

	need_ready();
	k = spawn(body_bomb);
	assert_int_equal(cg_create("bomb", &lim), 0);
	assert_int_equal(cg_attach("bomb", k->pid), 0);
	go(k);
	read_report(k, msg, sizeof msg);
	print_message("bomb root forked %d times, then: %s\n", msg[0], strerror(msg[1]));
	assert_int_equal(msg[1], EAGAIN);
	assert_in_range(msg[0], 1, 4);
	assert_int_equal(cg_usage("bomb", &u), 0);
	assert_int_equal(u.pids, 5);
	assert_int_equal(cg_procs("bomb", got, 16), 5);

	assert_int_equal(cg_destroy("bomb"), 0);
	assert_false(cg_exists("bomb"));
	st = wait_exit(k, 2000);
	assert_true(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void test_oom_kill(void **state)
{
	struct cg_limits lim = {.memory = 32 * MiB, .cpu_millis = 0, .pids = 16};
	struct cg_usage u;
	struct kid *k;
	int st;

	need_ready();
	k = spawn(body_hog);
	assert_int_equal(cg_create("oom", &lim), 0);
	assert_int_equal(cg_attach("oom", k->pid), 0);
	go(k);
	st = wait_exit(k, 10000);
	assert_true(st != -1);
	if (!WIFSIGNALED(st))
		print_error("hog was not killed: exit status %d\n", WEXITSTATUS(st));
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(cg_usage("oom", &u), 0);
	print_message("oom: kills %" PRIu64 ", max seen %" PRIu64 " bytes\n", u.oom_kills,
		      u.memory_max_seen);
	assert_true(u.oom_kills >= 1);
	if (u.memory_max_seen) /* 0: not tracked by this kernel */
		assert_in_range(u.memory_max_seen, 8 * MiB, 33 * MiB);
}

static void test_cpu_quota_and_usage(void **state)
{
	struct cg_limits lim = {.memory = 64 * MiB, .cpu_millis = 200, .pids = 10};
	char dir[PATH_MAX];
	struct cg_usage u;
	struct kid *k;
	bool accounted;
	int st;

	need_ready();
	k = spawn(body_spin);
	assert_int_equal(cg_create("cpu", &lim), 0);
	assert_int_equal(cg_attach("cpu", k->pid), 0);
	go(k);
	st = wait_exit(k, 5000);
	assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(cg_usage("cpu", &u), 0);
	print_message("spun 1 s at 0.2 cpu: used %" PRIu64 " us\n", u.cpu_usec);
	/* Without the quota, 1 s of spinning would use about 1,000,000 us.
	 * cpu_usec stays 0 only on v1 hosts without cpuacct. */
	accounted = cg_dir("cpu", "cpuacct", dir, sizeof dir) == 0 ||
		    !has_ctl("cpu", "cpu", "cpu.cfs_quota_us");
	if (accounted)
		assert_in_range(u.cpu_usec, 10000, 600000);
}

static void test_destroy(void **state)
{
	struct cg_limits lim = {.memory = 64 * MiB, .cpu_millis = 100, .pids = 10};
	char dir[PATH_MAX], sub[PATH_MAX + 8];
	struct stat st;
	struct kid *k;
	int ws;

	need_ready();
	k = spawn(body_pause);
	assert_int_equal(cg_create("gone", &lim), 0);
	assert_int_equal(cg_attach("gone", k->pid), 0);
	/* A nested group must not stop the removal. */
	assert_int_equal(cg_dir("gone", "pids", dir, sizeof dir), 0);
	snprintf(sub, sizeof sub, "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0755), 0);

	assert_int_equal(cg_destroy("gone"), 0);
	ws = wait_exit(k, 2000);
	assert_true(ws != -1 && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
	for (size_t i = 0; i < sizeof ctrls / sizeof *ctrls; i++) {
		if (cg_dir("gone", ctrls[i], dir, sizeof dir) < 0)
			continue; /* controller not on this host */
		assert_int_equal(stat(dir, &st), -1);
		assert_int_equal(errno, ENOENT);
	}
	assert_false(cg_exists("gone"));
	assert_int_equal(cg_destroy("gone"), 0);
	assert_int_equal(cg_kill_all("gone"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_bad_names, teardown_test),
		cmocka_unit_test_teardown(test_create_and_update_limits, teardown_test),
		cmocka_unit_test_teardown(test_list, teardown_test),
		cmocka_unit_test_teardown(test_attach_procs_usage, teardown_test),
		cmocka_unit_test_teardown(test_fork_bomb, teardown_test),
		cmocka_unit_test_teardown(test_oom_kill, teardown_test),
		cmocka_unit_test_teardown(test_cpu_quota_and_usage, teardown_test),
		cmocka_unit_test_teardown(test_destroy, teardown_test),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
