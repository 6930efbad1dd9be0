/* Tests for launcher/tenantproc.c: a spawned process is the tenant (uid,
 * gid, no capabilities, no_new_privs, the seccomp filter), whether it was
 * forked or cloned into the spawner's memory; and the kernel rule that
 * makes the clone safe: once the child has switched to the tenant's uid,
 * the memory it shares with the spawner is out of the tenant's reach.
 * Runs as root (make check does). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../lib/config.h"
#include "../../launcher/launcher.h"
#include "../../launcher/seccomp.h"
#include "../../launcher/tenantproc.h"

#define TENANT_UID 65534
#define TENANT_GID 65534

static struct config_tenant cfg;
static struct init_args args;

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "test_tenantproc: needs root\n");
		return -1;
	}
	cfg.name = "unit";
	cfg.ssh.shell = "/bin/sh";
	args.cfg = &cfg;
	args.uid = TENANT_UID;
	args.gid = TENANT_GID;
	tenantproc_init(NULL, &args);
	return 0;
}

static bool suid_dumpable_is_0(void)
{
	char c = 0;
	int fd = open("/proc/sys/fs/suid_dumpable", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &c, 1) != 1)
			c = 0;
		close(fd);
	}
	return c == '0';
}

/* Spawn a shell that prints who it is; returns its output. */
static void spawn_and_read(char *out, size_t size)
{
	char *argv[] = { "/bin/sh", "-c",
			 "id -u; id -g; id -G; grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "
			 "/proc/self/status; echo \"$USER $HOME\"", NULL };
	int p[2], status;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = tenantproc_spawn(&(struct tp_spec){
		.path = argv[0], .argv = argv, .cwd = "/", .fd_in = -1, .fd_out = p[1],
		.fd_err = p[1], .ctty = -1,
	});
	assert_true(pid > 0);
	close(p[1]);
	while (n < size - 1 && (r = read(p[0], out + n, size - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void assert_is_tenant(const char *out)
{
	static const char *const want[] = {
		"65534\n65534\n65534\n",            /* uid, gid, and no other group */
		"CapInh:\t0000000000000000", "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000",
		"CapBnd:\t0000000000000000", "CapAmb:\t0000000000000000",
		"NoNewPrivs:\t1", "Seccomp:\t2", "unit /home/unit",
	};

	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (!strstr(out, want[i]))
			fail_msg("missing %s in:\n%s", want[i], out);
}

/* Without a compiled filter the child builds its own: a fork, which leaves
 * the spawner's memory as it was (still dumpable). */
static void test_forked_child_is_the_tenant(void **state)
{
	char out[2048];

	(void)state;
	assert_false(seccomp_tenant_prepared());
	assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
	spawn_and_read(out, sizeof out);
	assert_is_tenant(out);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
}

/* With it, the child runs in the spawner's memory: the switch to the
 * tenant's uid made that memory non-dumpable, which is visible from here. */
static void test_cloned_child_is_the_tenant_and_shares_no_reach(void **state)
{
	char out[2048];

	(void)state;
	if (!suid_dumpable_is_0())
		skip();    /* tenantproc forks then; covered above */
#ifdef __SANITIZE_ADDRESS__
	skip();            /* tenantproc always forks under AddressSanitizer */
#endif
	assert_int_equal(seccomp_tenant_prepare(), 0);
	assert_true(seccomp_tenant_prepared());
	assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
	spawn_and_read(out, sizeof out);
	assert_is_tenant(out);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
}

/* With fs.suid_dumpable at anything but 0 the uid switch would leave the
 * shared memory dumpable: tenantproc must fork. The sysctl is the host's,
 * so the test shows tenantproc another value: a child of its own, in a
 * mount namespace of its own, writes the value into a file on a tmpfs of
 * that namespace and binds it over the sysctl. Nothing of the host's is
 * touched. Exit status: 0 forked, 1 shared memory, 2 could not set up. */
static int spawn_with_suid_dumpable(const char *value)
{
	static const char path[] = "/tmp/suid_dumpable";
	char out[2048];
	int fd, status;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("none", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") < 0 ||
		    (fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0 ||
		    write(fd, value, strlen(value)) != (ssize_t)strlen(value) || close(fd) < 0 ||
		    mount(path, "/proc/sys/fs/suid_dumpable", NULL, MS_BIND, NULL) < 0 ||
		    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			_exit(2);
		spawn_and_read(out, sizeof out);
		_exit(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_a_suid_dumpable_other_than_0_means_fork(void **state)
{
	(void)state;
	/* compiled, so that only the sysctl can make it fork */
	assert_true(seccomp_tenant_prepared() || seccomp_tenant_prepare() == 0);
	assert_int_equal(spawn_with_suid_dumpable("1\n"), 0);
	assert_int_equal(spawn_with_suid_dumpable("2\n"), 0);
	assert_int_equal(spawn_with_suid_dumpable(""), 0);
#ifndef __SANITIZE_ADDRESS__
	/* and the same setup with 0 does share: the bind is what was read */
	assert_int_equal(spawn_with_suid_dumpable("0\n"), 1);
#endif
}

/* The rule itself, held open: a child in this process's memory switches to
 * the tenant's uid and waits. A process of the tenant can neither attach
 * to it, nor write its memory through /proc or process_vm_writev. */
static volatile int shared_word;

static int waiting_child(void *arg)
{
	int fd = *(int *)arg;
	char c = 'x';

	if (setresgid(TENANT_GID, TENANT_GID, TENANT_GID) < 0 ||
	    setresuid(TENANT_UID, TENANT_UID, TENANT_UID) < 0)
		_exit(1);
	if (write(fd, &c, 1) != 1)
		_exit(2);
	for (int i = 0; i < 200; i++)
		usleep(50000);    /* killed long before */
	_exit(0);
}

static void test_a_child_in_shared_memory_is_out_of_the_tenants_reach(void **state)
{
	static char stack[64 * 1024] __attribute__((aligned(16)));
	int ready[2], res[2], status;
	pid_t child, attacker;
	char c, verdict[3];

	(void)state;
	if (!suid_dumpable_is_0())
		skip();
	assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(res, O_CLOEXEC), 0);
	child = clone(waiting_child, stack + sizeof stack, CLONE_VM | SIGCHLD, &ready[1]);
	assert_true(child > 0);
	assert_int_equal(read(ready[0], &c, 1), 1);

	attacker = fork();
	assert_true(attacker >= 0);
	if (attacker == 0) {
		char path[64];
		int v = 1, fd;
		struct iovec local = { (void *)&v, sizeof v }, remote = { (void *)&shared_word, sizeof v };

		if (setresgid(TENANT_GID, TENANT_GID, TENANT_GID) < 0 ||
		    setresuid(TENANT_UID, TENANT_UID, TENANT_UID) < 0)
			_exit(9);
		verdict[0] = ptrace(PTRACE_ATTACH, child, NULL, NULL) < 0 && errno == EPERM ? 'y' : 'n';
		snprintf(path, sizeof path, "/proc/%d/mem", (int)child);
		fd = open(path, O_RDWR);
		verdict[1] = fd < 0 && errno == EACCES ? 'y' : 'n';
		verdict[2] = process_vm_writev(child, &local, 1, &remote, 1, 0) < 0 && errno == EPERM ? 'y' : 'n';
		_exit(write(res[1], verdict, 3) == 3 ? 0 : 8);
	}
	close(res[1]);
	assert_int_equal(waitpid(attacker, &status, 0), attacker);
	assert_int_equal(read(res[0], verdict, 3), 3);
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);
	close(ready[0]);
	close(ready[1]);
	close(res[0]);
	assert_int_equal(shared_word, 0);
	assert_memory_equal(verdict, "yyy", 3);
	/* and the switch is what closed it: our memory is no longer dumpable */
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
	assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* in this order: the filter is compiled by the second */
		cmocka_unit_test(test_forked_child_is_the_tenant),
		cmocka_unit_test(test_cloned_child_is_the_tenant_and_shares_no_reach),
		cmocka_unit_test(test_a_suid_dumpable_other_than_0_means_fork),
		cmocka_unit_test(test_a_child_in_shared_memory_is_out_of_the_tenants_reach),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
