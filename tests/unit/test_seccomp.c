/* Tests for launcher/seccomp.c: the filter, compiled ahead and loaded, or
 * compiled in the process itself, refuses what docs/security.md lists and
 * lets ordinary calls through. Each case runs in a child, which installs
 * the filter and reports the first call that misbehaved as its exit code.
 * Every probe is chosen so that, unfiltered, it fails with another errno
 * or changes nothing outside the child. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../launcher/seccomp.h"

/* 0 when the call failed with exactly `want`. */
static int refused(long r, int want)
{
	return r == -1 && errno == want ? 0 : 1;
}

static int seccomp_mode(void)
{
	char line[128];
	int mode = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode;
}

/* In the child: install, then probe. Exit 0, or the number of the probe
 * that went wrong. */
static __attribute__((noreturn)) void probe_child(bool ahead)
{
	struct clone_args ca = { .flags = CLONE_NEWUSER, .exit_signal = SIGCHLD };

	if (ahead && seccomp_tenant_prepare() < 0)
		_exit(90);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(91);
	if (seccomp_tenant_install() < 0)
		_exit(92);
	if (seccomp_mode() != 2)
		_exit(1);
	/* Unfiltered, a missing mount point gives ENOENT. */
	if (refused(mount("none", "/nonexistent-fief-seccomp", "tmpfs", 0, NULL), EPERM))
		_exit(2);
	if (refused(unshare(CLONE_NEWUSER), EPERM))
		_exit(3);
	if (refused(unshare(CLONE_NEWNS | CLONE_NEWNET), EPERM))
		_exit(4);
	if (refused(syscall(SYS_clone3, &ca, sizeof ca), ENOSYS))
		_exit(5);
	/* KEYCTL_GET_KEYRING_ID of the session keyring: harmless unfiltered. */
	if (refused(syscall(SYS_keyctl, 0, -3, 0), EPERM))
		_exit(6);
	/* Unfiltered, a closed fd gives EBADF. */
	if (refused(ioctl(-1, TIOCSTI, "x"), EPERM))
		_exit(7);
	if (refused(syscall(SYS_bpf, 0, NULL, 0), EPERM))
		_exit(8);
	/* Unfiltered: EFAULT for the missing parameters, EBADF for the fd. */
	if (refused(syscall(SYS_io_uring_setup, 1, NULL), EPERM) ||
	    refused(syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0), EPERM) ||
	    refused(syscall(SYS_io_uring_register, -1, 0, NULL, 0), EPERM))
		_exit(9);
	/* Ordinary calls still work: a fork (through clone), a pipe, I/O. */
	int p[2];
	if (pipe(p) < 0 || write(p[1], "ok", 2) != 2)
		_exit(10);
	pid_t pid = fork();
	if (pid < 0)
		_exit(11);
	if (pid == 0)
		_exit(0);
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		_exit(12);
	_exit(0);
}

static int run_probe(bool ahead)
{
	int st;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		probe_child(ahead);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_compiled_ahead_refuses_and_allows(void **state)
{
	(void)state;
	assert_int_equal(run_probe(true), 0);
}

static void test_compiled_in_the_child_refuses_and_allows(void **state)
{
	(void)state;
	assert_int_equal(run_probe(false), 0);
}

/* The prepared program stays in this process: a second install from it,
 * in another child, behaves the same. */
static void test_program_is_reused(void **state)
{
	(void)state;
	assert_int_equal(seccomp_tenant_prepare(), 0);
	assert_int_equal(run_probe(false), 0);
	assert_int_equal(run_probe(false), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compiled_in_the_child_refuses_and_allows),
		cmocka_unit_test(test_compiled_ahead_refuses_and_allows),
		cmocka_unit_test(test_program_is_reused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
