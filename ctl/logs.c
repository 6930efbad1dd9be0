/* fiefctl logs: a tenant's app, daemon and cron logs (log_dir/NAME/X.log). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"

static const char logs_usage[] =
	"usage: fiefctl logs NAME [LOG] [-n LINES] [-f]\n"
	"\n"
	"Print the end of a tenant's logs: LOG is an app or daemon name, or cron;\n"
	"without LOG, every log of the tenant. -f follows, through rotations.\n";

#define LOGS_MAX 64

struct logfile {
	char path[4096];
	char name[64];
	int fd;
	ino_t ino;
};

/* Print the last `lines` lines of fd and leave it at the end. */
static void logs_tail(int fd, long lines)
{
	off_t end = lseek(fd, 0, SEEK_END), pos = end;
	char buf[8192];
	long seen = 0;

	if (lines == 0)
		return;                  /* at the end already: only follow */
	while (pos > 0 && seen <= lines) {
		size_t n = pos > (off_t)sizeof buf ? sizeof buf : (size_t)pos;
		pos -= (off_t)n;
		if (pread(fd, buf, n, pos) != (ssize_t)n)
			break;
		for (size_t i = n; i-- > 0;)
			if (buf[i] == '\n' && ++seen > lines && (pos + (off_t)i + 1 != end)) {
				pos += (off_t)i + 1;
				goto found;
			}
	}
	pos = 0;
found:
	lseek(fd, pos, SEEK_SET);
	for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
		fwrite(buf, 1, (size_t)n, stdout);
	fflush(stdout);
}

static int logs_open(struct logfile *l)
{
	struct stat st;

	/* O_NOFOLLOW and a regular-file check: the folder is root's, but be
	 * as careful as anywhere else near tenant data. */
	l->fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (l->fd < 0)
		return -errno;
	if (fstat(l->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(l->fd);
		l->fd = -1;
		return -EINVAL;
	}
	l->ino = st.st_ino;
	return 0;
}

/* New bytes, or the file was rotated: reopen and read from its start. */
static void logs_follow_one(struct logfile *l, bool many)
{
	char buf[8192];
	struct stat st;
	ssize_t n;

	while ((n = read(l->fd, buf, sizeof buf)) > 0) {
		if (many)
			printf("%s| ", l->name);
		fwrite(buf, 1, (size_t)n, stdout);
	}
	fflush(stdout);
	if (stat(l->path, &st) == 0 && st.st_ino != l->ino) {
		close(l->fd);
		if (logs_open(l) == 0)
			logs_follow_one(l, many);
	}
}

static int logs_collect(const char *dir, const char *only, struct logfile *ls, int max)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < max) {
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".log") || len - 4 >= sizeof ls->name)
			continue;
		snprintf(ls[n].name, sizeof ls[n].name, "%.*s", (int)(len - 4), de->d_name);
		if (only && strcmp(ls[n].name, only))
			continue;
		snprintf(ls[n].path, sizeof ls[n].path, "%s/%s", dir, de->d_name);
		if (logs_open(&ls[n]) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int ctl_logs(struct ctl *ctl, int argc, char **argv)
{
	static struct logfile ls[LOGS_MAX];
	struct config_errors errs;
	struct config_host *host;
	char dir[3800];
	long lines = 20;
	bool follow = false;
	int c, n;

	if (argc > 1 && !strcmp(argv[1], "--help"))
		return fputs(logs_usage, stdout), 0;
	while ((c = getopt(argc, argv, "n:fh")) != -1) {
		switch (c) {
		case 'n': lines = atol(optarg); break;
		case 'f': follow = true; break;
		case 'h': fputs(logs_usage, stdout); return 0;
		default: fputs(logs_usage, stderr); return CTL_EXIT_USAGE;
		}
	}
	if (argc - optind < 1 || argc - optind > 2 || !value_is_tenant_name(argv[optind]) || lines < 0)
		return fputs(logs_usage, stderr), CTL_EXIT_USAGE;
	host = config_host_load(ctl->host_path, &errs);
	if (!host)
		return config_errors_print(&errs, stderr), 1;
	snprintf(dir, sizeof dir, "%s/%s", host->log_dir, argv[optind]);
	config_host_free(host);
	n = logs_collect(dir, argv[optind + 1], ls, LOGS_MAX);
	if (n <= 0) {
		fprintf(stderr, "fiefctl: no %s%slog for tenant %s in %s\n", argv[optind + 1] ? argv[optind + 1] : "",
			argv[optind + 1] ? " " : "", argv[optind], dir);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		if (n > 1)
			printf("==> %s <==\n", ls[i].name);
		logs_tail(ls[i].fd, lines);
	}
	while (follow) {
		poll(NULL, 0, 250);
		for (int i = 0; i < n; i++)
			logs_follow_one(&ls[i], n > 1);
	}
	return 0;
}
