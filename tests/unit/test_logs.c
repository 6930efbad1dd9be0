/* Tests for launcher/logs.c: appending, size rotation, ownership, lost
 * output, and ~/logs in a fresh home. Each test works in a temp folder. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../launcher/logs.h"

struct fx {
	char dir[64];
	int dfd;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	snprintf(f->dir, sizeof f->dir, "/tmp/fief-logs-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	f->dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	logs_configure(LOGS_ROTATE_BYTES, LOGS_KEEP);
	*state = f;
	return f->dfd < 0 ? -1 : 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	close(f->dfd);
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static long file_size(struct fx *f, const char *name)
{
	struct stat st;

	return fstatat(f->dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -1 : (long)st.st_size;
}

static char *file_text(struct fx *f, const char *name)
{
	static char buf[8192];
	int fd = openat(f->dfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);

	if (fd >= 0)
		close(fd);
	buf[n < 0 ? 0 : n] = 0;
	return buf;
}

static void test_append_and_note(void **state)
{
	struct fx *f = *state;
	struct logfile l;

	logfile_init(&l, f->dfd, "web.log", getgid());
	logfile_write(&l, "one\n", 4);
	logfile_note(&l, "started app (pid %d)", 7);
	logfile_close(&l);
	/* a new writer appends */
	logfile_init(&l, f->dfd, "web.log", getgid());
	logfile_write(&l, "two\n", 4);
	logfile_close(&l);
	assert_non_null(strstr(file_text(f, "web.log"), "one\n[fief "));
	assert_non_null(strstr(file_text(f, "web.log"), "] started app (pid 7)\ntwo\n"));
}

static void test_rotation_keeps_three(void **state)
{
	struct fx *f = *state;
	static const char *const names[] = { "web.log", "web.log.1", "web.log.2", "web.log.3" };
	struct logfile l;
	char line[100];

	logs_configure(1024, 3);
	logfile_init(&l, f->dfd, "web.log", getgid());
	for (int i = 0; i < 100; i++) {
		int n = snprintf(line, sizeof line, "line %03d %040d\n", i, i);
		logfile_write(&l, line, (size_t)n);
	}
	logfile_close(&l);
	for (size_t i = 0; i < 4; i++) {
		assert_true(file_size(f, names[i]) > 0);
		assert_true(file_size(f, names[i]) <= 1024);
	}
	assert_int_equal(file_size(f, "web.log.4"), -1);
	assert_non_null(strstr(file_text(f, "web.log"), "line 099"));
	assert_null(strstr(file_text(f, "web.log.3"), "line 000"));
}

static void test_files_for_the_tenant_group(void **state)
{
	struct fx *f = *state;
	struct logfile l;
	struct stat st;

	if (geteuid() != 0)
		skip();
	logfile_init(&l, f->dfd, "cron.log", 20001);
	logfile_write(&l, "x\n", 2);
	logfile_close(&l);
	assert_int_equal(fstatat(f->dfd, "cron.log", &st, 0), 0);
	assert_int_equal(st.st_uid, 0);
	assert_int_equal(st.st_gid, 20001);
	assert_int_equal(st.st_mode & 07777, 0640);
}

static void test_symlink_is_not_followed(void **state)
{
	struct fx *f = *state;
	struct logfile l;

	assert_int_equal(symlinkat("/etc/passwd-fief-never", f->dfd, "web.log"), 0);
	logfile_init(&l, f->dfd, "web.log", getgid());
	logfile_write(&l, "x\n", 2);
	assert_int_equal(l.dropped, 2);
	assert_int_equal(access("/etc/passwd-fief-never", F_OK), -1);
	/* once the name is a file again, the loss is reported */
	assert_int_equal(unlinkat(f->dfd, "web.log", 0), 0);
	logfile_write(&l, "y\n", 2);
	logfile_close(&l);
	assert_non_null(strstr(file_text(f, "web.log"), "2 bytes of output were lost"));
	assert_non_null(strstr(file_text(f, "web.log"), "\ny\n"));
}

static void test_no_folder_drops(void **state)
{
	struct logfile l;

	logfile_init(&l, -1, "web.log", 0);
	logfile_write(&l, "abc", 3);
	logfile_note(&l, "x");
	assert_true(l.dropped > 3);
}

static void test_home_logs_dir(void **state)
{
	struct fx *f = *state;
	char home[128];
	struct stat st;

	snprintf(home, sizeof home, "%s/home", f->dir);
	assert_int_equal(mkdir(home, 0750), 0);
	assert_int_equal(logs_make_home_dir(home, getuid(), getgid()), 0);
	assert_int_equal(fstatat(f->dfd, "home/logs", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* twice is fine */
	assert_int_equal(logs_make_home_dir(home, getuid(), getgid()), 0);
	/* a home that is a symlink is refused */
	snprintf(home, sizeof home, "%s/link", f->dir);
	assert_int_equal(symlink("home", home), 0);
	assert_true(logs_make_home_dir(home, getuid(), getgid()) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_append_and_note, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rotation_keeps_three, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_files_for_the_tenant_group, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_symlink_is_not_followed, fx_setup, fx_teardown),
		cmocka_unit_test(test_no_folder_drops),
		cmocka_unit_test_setup_teardown(test_home_logs_dir, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
