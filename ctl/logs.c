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
#include "records.h"

static const char logs_usage[] =
	"usage: fiefctl [--json] logs NAME [LOG] [-n LINES] [-f]\n"
	"\n"
	"Print the end of a tenant's logs: LOG is an app or daemon name, or cron;\n"
	"without LOG, every log of the tenant. -n: lines per log (default 20).\n"
	"-f follows, through rotations.\n"
	"\n"
	"--json: one object per line of log, also with -f:\n"
	"  {\"time\": \"2026-01-02T03:04:05+0000\" or null, \"tenant\": NAME, \"log\": LOG, \"text\": ...}\n"
	"time is only known for fief's own lines (\"[fief TIME] ...\"); what apps\n"
	"print is stored as it came, without a time.\n"
	"\n"
	"Exit 0, 1 when there is no such log, 2 on a bad command line.\n";

#define LOGS_MAX 64
#define LOGS_LINE_MAX 16384        /* --json: longer lines come in pieces */

struct logfile {
	char path[4096];
	char name[64];
	int fd;
	ino_t ino;
	char *line;                    /* --json: the line being read */
	size_t line_len;
};

static const char *logs_tenant;
static bool logs_json;

/* "[fief 2026-01-02 03:04:05 +0000] ..." -> "2026-01-02T03:04:05+0000" */
static bool logs_time(const char *s, size_t n, char *out, size_t len)
{
	char d[11], t[9], z[6];

	if (n < 32 || strncmp(s, "[fief ", 6) || sscanf(s + 6, "%10s %8s %5[-+0-9]]", d, t, z) != 3 ||
	    strlen(d) != 10 || strlen(t) != 8 || strlen(z) != 5)
		return false;
	snprintf(out, len, "%sT%s%s", d, t, z);
	return true;
}

static void logs_json_line(struct logfile *l)
{
	char tm[40];

	fputs("{\"time\":", stdout);
	if (logs_time(l->line, l->line_len, tm, sizeof tm))
		printf("\"%s\"", tm);
	else
		fputs("null", stdout);
	fputs(",\"tenant\":", stdout);
	json_string(stdout, logs_tenant);
	fputs(",\"log\":", stdout);
	json_string(stdout, l->name);
	fputs(",\"text\":", stdout);
	json_string_n(stdout, l->line, l->line_len);
	puts("}");
	l->line_len = 0;
}

/* Bytes of one log: as they are, or cut into lines for --json. */
static void logs_out(struct logfile *l, const char *buf, size_t n)
{
	if (!logs_json) {
		fwrite(buf, 1, n, stdout);
		return;
	}
	if (!l->line && !(l->line = malloc(LOGS_LINE_MAX)))
		return;
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			logs_json_line(l);
			continue;
		}
		l->line[l->line_len++] = buf[i];
		if (l->line_len == LOGS_LINE_MAX)
			logs_json_line(l);
	}
}

/* Print the last `lines` lines of fd and leave it at the end. */
static void logs_tail(struct logfile *l, long lines)
{
	int fd = l->fd;
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
		logs_out(l, buf, (size_t)n);
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
		if (many && !logs_json)
			printf("%s| ", l->name);
		logs_out(l, buf, (size_t)n);
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
		default: return ctl_usage_error(ctl, logs_usage);
		}
	}
	if (argc - optind < 1 || argc - optind > 2 || !value_is_tenant_name(argv[optind]) || lines < 0)
		return ctl_usage_error(ctl, logs_usage);
	host = ctl_host(ctl);
	if (!host)
		return CTL_EXIT_FAIL;
	snprintf(dir, sizeof dir, "%s/%s", host->log_dir, argv[optind]);
	config_host_free(host);
	logs_tenant = argv[optind];
	logs_json = ctl->json;
	n = logs_collect(dir, argv[optind + 1], ls, LOGS_MAX);
	if (n <= 0)
		return ctl_fail(ctl, CTL_EXIT_FAIL, "no %s%slog for tenant %s in %s", argv[optind + 1] ? argv[optind + 1] : "",
				argv[optind + 1] ? " " : "", argv[optind], dir);
	for (int i = 0; i < n; i++) {
		if (n > 1 && !logs_json)
			printf("==> %s <==\n", ls[i].name);
		logs_tail(&ls[i], lines);
		/* without -f, a last line without its newline is still a line */
		if (logs_json && !follow && ls[i].line_len)
			logs_json_line(&ls[i]);
	}
	fflush(stdout);
	while (follow) {
		poll(NULL, 0, 250);
		for (int i = 0; i < n; i++)
			logs_follow_one(&ls[i], n > 1);
	}
	return 0;
}
