/*
 * fief-probe: a static program the integration tests run inside tenants.
 *
 *   fief-probe                  print one JSON object describing the process
 *                               and what it can see (ids, capabilities,
 *                               seccomp, cgroup, mounts, pids, env...)
 *   fief-probe alloc MB [HOLD]  allocate and touch MB MiB, 1 MiB at a time
 *                               (progress on stderr), optionally hold the
 *                               memory HOLD seconds, then print a JSON result
 *   fief-probe forkbomb N       fork up to N sleeping children, report how
 *                               many succeeded and the first errno, kill them
 *   fief-probe spin SECONDS     busy loop, then report wall and cpu time
 *   fief-probe sleep SECONDS    sleep
 *
 * Built with -std=gnu11 -Wall -Wextra -Werror -O2 -static and nothing else,
 * so it runs in any root filesystem. It avoids everything that would need
 * NSS (user and group names) for the same reason.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- a growing output buffer and a minimal JSON writer ---- */

struct json {
	char *buf;
	size_t len, cap;
	int depth;
	int first[64];   /* no element written yet at this depth */
	int after_key;   /* a key was written: the value needs no comma */
};

static void oom(void)
{
	static const char msg[] = "fief-probe: out of memory\n";
	ssize_t r = write(2, msg, sizeof msg - 1);
	(void)r;
	_exit(1);
}

static void put(struct json *j, const char *s, size_t n)
{
	if (j->len + n + 1 > j->cap) {
		size_t cap = j->cap ? j->cap : 4096;
		while (j->len + n + 1 > cap)
			cap *= 2;
		char *nb = realloc(j->buf, cap);
		if (!nb)
			oom();
		j->buf = nb;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void puts_raw(struct json *j, const char *s)
{
	put(j, s, strlen(s));
}

static void putf(struct json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct json *j, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof tmp)
		n = sizeof tmp - 1;
	put(j, tmp, (size_t)n);
}

/* Called before every value and every key: writes the comma if needed. */
static void sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (!j->first[j->depth])
		put(j, ",", 1);
	j->first[j->depth] = 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* A JSON string. Bytes that are not valid UTF-8 come out as \u00XX, so
 * the output always parses, whatever the environment or paths hold. */
static void put_string(struct json *j, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	put(j, "\"", 1);
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			put(j, e, 2);
			i++;
		} else if (c == '\n') {
			puts_raw(j, "\\n");
			i++;
		} else if (c == '\t') {
			puts_raw(j, "\\t");
			i++;
		} else if (c == '\r') {
			puts_raw(j, "\\r");
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			putf(j, "\\u%04x", c);
			i++;
		} else {
			size_t l = utf8_len(p + i, n - i);
			if (l == 0) {
				putf(j, "\\u%04x", c);
				i++;
			} else {
				put(j, s + i, l);
				i += l;
			}
		}
	}
	put(j, "\"", 1);
}

static void j_str(struct json *j, const char *s)
{
	sep(j);
	if (s)
		put_string(j, s, strlen(s));
	else
		puts_raw(j, "null");
}

static void j_int(struct json *j, long long v)
{
	sep(j);
	putf(j, "%lld", v);
}

static void j_null(struct json *j)
{
	sep(j);
	puts_raw(j, "null");
}

static void j_key(struct json *j, const char *k)
{
	sep(j);
	put_string(j, k, strlen(k));
	put(j, ":", 1);
	j->after_key = 1;
}

static void j_open(struct json *j, char c)
{
	sep(j);
	put(j, &c, 1);
	if (j->depth + 1 >= (int)(sizeof j->first / sizeof j->first[0]))
		oom();
	j->first[++j->depth] = 1;
}

static void j_close(struct json *j, char c)
{
	put(j, &c, 1);
	j->depth--;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int j_finish(struct json *j)
{
	put(j, "\n", 1);
	int r = write_all(1, j->buf, j->len);
	free(j->buf);
	j->buf = NULL;
	j->len = j->cap = 0;
	if (r < 0) {
		fprintf(stderr, "fief-probe: write: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

/* ---- helpers ---- */

/* The whole of a (proc) file, NUL-terminated; NULL on error. */
static char *read_file(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		oom();
	for (;;) {
		if (cap - len < 2) {
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (!nb)
				oom();
			buf = nb;
		}
		size_t r = fread(buf + len, 1, cap - len - 1, f);
		len += r;
		if (r == 0)
			break;
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		free(buf);
		return NULL;
	}
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
}

/* The value of "Key:" in /proc/self/status, whitespace trimmed. */
static char *status_field(const char *status, const char *key)
{
	size_t kl = strlen(key);
	const char *p = status;
	while (p && *p) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ':') {
			const char *v = p + kl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			const char *e = strchr(v, '\n');
			size_t n = e ? (size_t)(e - v) : strlen(v);
			while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
				n--;
			return strndup(v, n);
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

/* Undo the octal escapes (\040 and friends) of /proc/self/mountinfo. */
static void unescape_octal(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

/* ---- the report ---- */

static void report_status(struct json *j)
{
	static const struct {
		const char *key, *field;
	} caps[] = {
		{"cap_inh", "CapInh"}, {"cap_prm", "CapPrm"}, {"cap_eff", "CapEff"},
		{"cap_bnd", "CapBnd"}, {"cap_amb", "CapAmb"},
	};
	char *status = read_file("/proc/self/status", NULL);
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		char *v = status ? status_field(status, caps[i].field) : NULL;
		j_key(j, caps[i].key);
		j_str(j, v);
		free(v);
	}
	char *v = status ? status_field(status, "Seccomp") : NULL;
	j_key(j, "seccomp");
	if (v && all_digits(v))
		j_int(j, strtol(v, NULL, 10));
	else
		j_null(j);
	free(v);
	free(status);
}

static void report_lines(struct json *j, const char *key, const char *path)
{
	j_key(j, key);
	char *text = read_file(path, NULL);
	if (!text) {
		j_null(j);
		return;
	}
	j_open(j, '[');
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		j_str(j, line);
	j_close(j, ']');
	free(text);
}

static void report_mounts(struct json *j)
{
	j_key(j, "mounts");
	char *text = read_file("/proc/self/mountinfo", NULL);
	if (!text) {
		j_null(j);
		return;
	}
	j_open(j, '[');
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* ID PARENT MAJ:MIN ROOT TARGET OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
		char *f[32];
		int n = 0;
		char *s2 = NULL;
		for (char *t = strtok_r(line, " ", &s2); t && n < 32; t = strtok_r(NULL, " ", &s2))
			f[n++] = t;
		int dash = -1;
		for (int i = 6; i < n; i++)
			if (strcmp(f[i], "-") == 0) {
				dash = i;
				break;
			}
		if (n < 6 || dash < 0 || dash + 2 >= n)
			continue;
		unescape_octal(f[3]);
		unescape_octal(f[4]);
		unescape_octal(f[dash + 2]);
		j_open(j, '{');
		j_key(j, "target");
		j_str(j, f[4]);
		j_key(j, "fstype");
		j_str(j, f[dash + 1]);
		j_key(j, "options");
		j_str(j, f[5]);
		j_key(j, "source");
		j_str(j, f[dash + 2]);
		j_key(j, "root");
		j_str(j, f[3]);
		j_key(j, "super_options");
		j_str(j, dash + 3 < n ? f[dash + 3] : "");
		j_key(j, "id");
		j_int(j, strtol(f[0], NULL, 10));
		j_key(j, "parent");
		j_int(j, strtol(f[1], NULL, 10));
		j_close(j, '}');
	}
	j_close(j, ']');
	free(text);
}

static void report_pids(struct json *j)
{
	j_key(j, "pids");
	DIR *d = opendir("/proc");
	if (!d) {
		j_null(j);
		return;
	}
	size_t n = 0, cap = 256;
	long *pids = malloc(cap * sizeof *pids);
	if (!pids)
		oom();
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!all_digits(e->d_name))
			continue;
		if (n == cap) {
			cap *= 2;
			long *np = realloc(pids, cap * sizeof *pids);
			if (!np)
				oom();
			pids = np;
		}
		pids[n++] = strtol(e->d_name, NULL, 10);
	}
	closedir(d);
	qsort(pids, n, sizeof *pids, cmp_long);
	j_open(j, '[');
	for (size_t i = 0; i < n; i++)
		j_int(j, pids[i]);
	j_close(j, ']');
	free(pids);
}

static void report_namespaces(struct json *j)
{
	static const char *const names[] = {"cgroup", "ipc", "mnt", "net", "pid", "user", "uts", "time"};
	j_key(j, "namespaces");
	j_open(j, '{');
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char path[64], link[128];
		snprintf(path, sizeof path, "/proc/self/ns/%s", names[i]);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		j_key(j, names[i]);
		j_str(j, link);
	}
	j_close(j, '}');
}

static int cmd_report(void)
{
	struct json j = {0};
	j.first[0] = 1;
	j_open(&j, '{');

	struct utsname u;
	j_key(&j, "hostname");
	j_str(&j, uname(&u) == 0 ? u.nodename : NULL);

	j_key(&j, "pid");
	j_int(&j, getpid());
	j_key(&j, "ppid");
	j_int(&j, getppid());
	j_key(&j, "pgid");
	j_int(&j, getpgrp());
	j_key(&j, "sid");
	j_int(&j, getsid(0));
	j_key(&j, "uid");
	j_int(&j, getuid());
	j_key(&j, "gid");
	j_int(&j, getgid());
	j_key(&j, "euid");
	j_int(&j, geteuid());
	j_key(&j, "egid");
	j_int(&j, getegid());

	j_key(&j, "groups");
	int ng = getgroups(0, NULL);
	gid_t *groups = ng > 0 ? calloc((size_t)ng, sizeof *groups) : NULL;
	if (ng > 0 && !groups)
		oom();
	if (ng > 0)
		ng = getgroups(ng, groups);
	if (ng < 0) {
		j_null(&j);
	} else {
		j_open(&j, '[');
		for (int i = 0; i < ng; i++)
			j_int(&j, groups[i]);
		j_close(&j, ']');
	}
	free(groups);

	j_key(&j, "no_new_privs");
	int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	if (nnp < 0)
		j_null(&j);
	else
		j_int(&j, nnp);

	report_status(&j);
	report_lines(&j, "cgroup", "/proc/self/cgroup");

	char cwd[PATH_MAX];
	j_key(&j, "cwd");
	j_str(&j, getcwd(cwd, sizeof cwd));

	j_key(&j, "tty");
	char *tty = isatty(0) ? ttyname(0) : NULL;
	j_str(&j, tty);

	j_key(&j, "umask");
	mode_t m = umask(0);
	umask(m);
	j_int(&j, m);

	report_mounts(&j);
	report_pids(&j);
	report_namespaces(&j);

	j_key(&j, "rlimits");
	j_open(&j, '{');
	static const struct {
		const char *name;
		int res;
	} lims[] = {{"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"as", RLIMIT_AS}, {"core", RLIMIT_CORE}};
	for (size_t i = 0; i < sizeof lims / sizeof lims[0]; i++) {
		struct rlimit rl;
		if (getrlimit(lims[i].res, &rl) < 0)
			continue;
		j_key(&j, lims[i].name);
		j_open(&j, '[');
		if (rl.rlim_cur == RLIM_INFINITY)
			j_int(&j, -1);
		else
			j_int(&j, (long long)rl.rlim_cur);
		if (rl.rlim_max == RLIM_INFINITY)
			j_int(&j, -1);
		else
			j_int(&j, (long long)rl.rlim_max);
		j_close(&j, ']');
	}
	j_close(&j, '}');

	j_key(&j, "env");
	j_open(&j, '[');
	for (char **e = environ; e && *e; e++)
		j_str(&j, *e);
	j_close(&j, ']');

	j_close(&j, '}');
	return j_finish(&j);
}

/* ---- subcommands ---- */

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > 1e9)
		return -1;
	*out = v;
	return 0;
}

static double now(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_seconds(double secs)
{
	struct timespec ts;
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *errno_name(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "unknown";
}

static int usage(void);

static int cmd_alloc(long mb, double hold)
{
	const size_t chunk = 1024 * 1024;
	long page = sysconf(_SC_PAGESIZE);
	if (page <= 0)
		page = 4096;
	long done = 0;
	for (; done < mb; done++) {
		char *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			fprintf(stderr, "fief-probe: alloc: failed after %ld MiB: %s\n", done, strerror(e));
			printf("{\"requested_mb\":%ld,\"allocated_mb\":%ld,\"errno\":%d,\"error\":\"%s\"}\n", mb, done, e,
			       errno_name(e));
			return 1;
		}
		/* Write every page so the memory is really charged. */
		for (size_t off = 0; off < chunk; off += (size_t)page)
			p[off] = (char)(done + 1);
		fprintf(stderr, "fief-probe: alloc: %ld MiB\n", done + 1);
	}
	if (hold > 0)
		sleep_seconds(hold);
	printf("{\"requested_mb\":%ld,\"allocated_mb\":%ld,\"errno\":0,\"error\":null}\n", mb, done);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_forkbomb(long n)
{
	pid_t *kids = calloc(n > 0 ? (size_t)n : 1, sizeof *kids);
	if (!kids)
		oom();
	pid_t parent = getpid();
	long ok = 0;
	int first_errno = 0;
	fflush(NULL);
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			first_errno = errno;
			break;
		}
		if (pid == 0) {
			/* Die with the parent, whatever happens to it. */
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			if (getppid() != parent)
				_exit(0);
			for (;;)
				pause();
		}
		kids[ok++] = pid;
	}
	for (long i = 0; i < ok; i++)
		kill(kids[i], SIGKILL);
	for (long i = 0; i < ok; i++)
		while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
			;
	free(kids);
	if (first_errno)
		printf("{\"requested\":%ld,\"forked\":%ld,\"errno\":%d,\"error\":\"%s\"}\n", n, ok, first_errno,
		       errno_name(first_errno));
	else
		printf("{\"requested\":%ld,\"forked\":%ld,\"errno\":0,\"error\":null}\n", n, ok);
	return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_spin(double secs)
{
	double start = now(CLOCK_MONOTONIC), cpu0 = now(CLOCK_PROCESS_CPUTIME_ID);
	volatile unsigned long x = 0;
	while (now(CLOCK_MONOTONIC) - start < secs)
		for (int i = 0; i < 100000; i++)
			x += (unsigned long)i;
	(void)x;
	double wall = now(CLOCK_MONOTONIC) - start, cpu = now(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	printf("{\"wall_seconds\":%.6f,\"cpu_seconds\":%.6f}\n", wall, cpu);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* ---- attempts that tests expect to be refused (or to work) ---- */

static int try_result(const char *action, int rc)
{
	int e = rc < 0 ? errno : 0;

	printf("{\"action\":\"%s\",\"ok\":%s,\"errno\":%d,\"error\":%s%s%s}\n", action,
	       rc < 0 ? "false" : "true", e, e ? "\"" : "", e ? errno_name(e) : "null", e ? "\"" : "");
	return 0;
}

static int try_open_write(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0)
		close(fd);
	return fd < 0 ? -1 : 0;
}

static int try_setns(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	int r = setns(fd, 0);
	close(fd);
	return r;
}

static int try_socket(int domain, int type, int proto)
{
	int fd = socket(domain, type, proto);
	if (fd >= 0)
		close(fd);
	return fd < 0 ? -1 : 0;
}

static int try_action(const char *a, const char *arg)
{
	if (!strcmp(a, "mount"))
		return mount("none", arg ? arg : "/tmp", "tmpfs", 0, NULL);
	if (!strcmp(a, "bind"))
		return mount(arg ? arg : "/", "/tmp", NULL, MS_BIND, NULL);
	if (!strcmp(a, "umount"))
		return umount2(arg ? arg : "/proc", MNT_DETACH);
	if (!strcmp(a, "pivot_root"))
		return (int)syscall(SYS_pivot_root, "/tmp", "/tmp");
	if (!strcmp(a, "chroot"))
		return chroot(arg ? arg : "/tmp");
	if (!strcmp(a, "unshare-mnt"))
		return unshare(CLONE_NEWNS);
	if (!strcmp(a, "unshare-net"))
		return unshare(CLONE_NEWNET);
	if (!strcmp(a, "unshare-user"))
		return unshare(CLONE_NEWUSER);
	if (!strcmp(a, "unshare-pid"))
		return unshare(CLONE_NEWPID);
	if (!strcmp(a, "setns"))
		return try_setns(arg ? arg : "/proc/1/ns/mnt");
	if (!strcmp(a, "setuid0"))
		return setuid(0);
	if (!strcmp(a, "setgid0"))
		return setgid(0);
	if (!strcmp(a, "ptrace"))
		return (int)ptrace(PTRACE_ATTACH, (pid_t)(arg ? atoi(arg) : 1), NULL, NULL);
	if (!strcmp(a, "kill"))
		return kill((pid_t)(arg ? atoi(arg) : 1), SIGKILL);
	if (!strcmp(a, "mknod"))
		return mknod(arg ? arg : "/tmp/null2", S_IFCHR | 0666, makedev(1, 3));
	if (!strcmp(a, "chown-root"))
		return chown(arg, 0, 0);
	if (!strcmp(a, "write"))
		return try_open_write(arg);
	if (!strcmp(a, "read")) {
		int fd = open(arg, O_RDONLY);
		if (fd >= 0)
			close(fd);
		return fd < 0 ? -1 : 0;
	}
	if (!strcmp(a, "raw-socket"))
		return try_socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	if (!strcmp(a, "packet-socket"))
		return try_socket(AF_PACKET, SOCK_RAW, 0);
	if (!strcmp(a, "add-key"))
		return (int)syscall(SYS_add_key, "user", "fief-test", "x", 1, -2 /* session keyring */);
	if (!strcmp(a, "keyctl-join"))
		return (int)syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, "fief");
	if (!strcmp(a, "perf")) {
		/* a zeroed perf_event_attr: the kernel or the filter refuses it */
		char attr[128] = { 0 };
		*(unsigned *)(attr + 4) = sizeof attr;
		return (int)syscall(SYS_perf_event_open, attr, 0, -1, -1, 0);
	}
	if (!strcmp(a, "bpf")) {
		char attr[128] = { 0 };
		return (int)syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr);
	}
	if (!strcmp(a, "userfaultfd"))
		return (int)syscall(SYS_userfaultfd, 0);
	if (!strcmp(a, "io-uring")) {
		/* a zeroed struct io_uring_params: a ring of 4 entries
		 * unfiltered */
		char params[120] = { 0 };
		return (int)syscall(SYS_io_uring_setup, 4, params);
	}
	if (!strcmp(a, "hardlink"))
		return link(arg, "hardlink-probe");      /* into the cwd: the home */
	if (!strcmp(a, "chmod-suid"))
		return chmod(arg, 04755);
	if (!strcmp(a, "iopl"))
		return (int)syscall(SYS_iopl, 3);
	if (!strcmp(a, "reboot"))
		return (int)syscall(SYS_reboot, 0xfee1dead, 672274793, 0x4321FEDC, NULL);
	if (!strcmp(a, "sethostname"))
		return sethostname("pwned", 5);
	if (!strcmp(a, "tiocsti")) {
		char c = 'x';
		int fd = open(arg ? arg : "/dev/tty", O_RDWR);
		if (fd < 0)
			return -1;
		int r = ioctl(fd, TIOCSTI, &c);
		close(fd);
		return r;
	}
	errno = EINVAL;
	return -2;
}

static int cmd_try(int argc, char **argv)
{
	int r = try_action(argv[0], argc > 1 ? argv[1] : NULL);
	if (r == -2) {
		fprintf(stderr, "fief-probe: unknown action %s\n", argv[0]);
		return 2;
	}
	try_result(argv[0], r);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* SysV IPC: make one queue, semaphore set and segment; or count them. */
static int cmd_ipc(const char *what)
{
	if (!strcmp(what, "make")) {
		int q = msgget(IPC_PRIVATE, 0666), s = semget(IPC_PRIVATE, 1, 0666),
		    m = shmget(IPC_PRIVATE, 4096, 0666);
		printf("{\"msg\":%d,\"sem\":%d,\"shm\":%d}\n", q, s, m);
		return q < 0 || s < 0 || m < 0;
	}
	const char *files[3] = { "/proc/sysvipc/msg", "/proc/sysvipc/sem", "/proc/sysvipc/shm" };
	long counts[3];
	for (int i = 0; i < 3; i++) {
		size_t len = 0;
		char *text = read_file(files[i], &len);
		counts[i] = -1;           /* header line excluded */
		for (size_t k = 0; text && k < len; k++)
			counts[i] += text[k] == '\n';
		free(text);
	}
	printf("{\"msg\":%ld,\"sem\":%ld,\"shm\":%ld}\n", counts[0], counts[1], counts[2]);
	return 0;
}

static int sock_addr(const char *kind, const char *addr, struct sockaddr_storage *ss, socklen_t *len,
		     int *domain)
{
	memset(ss, 0, sizeof *ss);
	if (!strcmp(kind, "tcp")) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)atoi(addr));
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof *in;
		*domain = AF_INET;
		return 0;
	}
	if (!strcmp(kind, "abstract") && strlen(addr) < 100) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path + 1, addr, strlen(addr));
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(addr));
		*domain = AF_UNIX;
		return 0;
	}
	return -1;
}

/* listen tcp|abstract ADDR SECONDS: serve "hi\n" to each client. */
static int cmd_listen(const char *kind, const char *addr, double secs)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int domain, one = 1;

	if (sock_addr(kind, addr, &ss, &len, &domain) < 0)
		return usage();
	int fd = socket(domain, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
		perror("fief-probe: listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	alarm((unsigned)secs + 1);
	for (;;) {
		int c = accept(fd, NULL, NULL);
		if (c >= 0) {
			if (write(c, "hi\n", 3) < 0)
				perror("fief-probe: write");
			close(c);
		}
	}
}

static int cmd_connect(const char *kind, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int domain;

	if (sock_addr(kind, addr, &ss, &len, &domain) < 0)
		return usage();
	int fd = socket(domain, SOCK_STREAM, 0);
	int r = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&ss, len);
	try_result("connect", r);
	return 0;
}

static int usage(void)
{
	fputs("usage: fief-probe                   print a JSON report of this process\n"
	      "       fief-probe alloc MB [HOLD]   allocate and touch MB MiB (hold HOLD s)\n"
	      "       fief-probe forkbomb N        fork up to N sleeping children\n"
	      "       fief-probe spin SECONDS      busy loop\n"
	      "       fief-probe sleep SECONDS     sleep\n"
	      "       fief-probe try ACTION [ARG]  attempt ACTION, print whether it worked\n"
	      "       fief-probe ipc make|count    SysV IPC objects\n"
	      "       fief-probe listen tcp|abstract ADDR SECONDS\n"
	      "       fief-probe connect tcp|abstract ADDR\n",
	      stderr);
	return 2;
}

int main(int argc, char **argv)
{
	/* A test that closes our stdout must not kill us silently. */
	signal(SIGPIPE, SIG_IGN);

	if (argc == 1)
		return cmd_report();
	const char *cmd = argv[1];
	if (strcmp(cmd, "alloc") == 0 && (argc == 3 || argc == 4)) {
		long mb;
		double hold = 0;
		if (parse_long(argv[2], 0, 1L << 30, &mb) < 0 || (argc == 4 && parse_seconds(argv[3], &hold) < 0))
			return usage();
		return cmd_alloc(mb, hold);
	}
	if (strcmp(cmd, "forkbomb") == 0 && argc == 3) {
		long n;
		if (parse_long(argv[2], 0, 10000000, &n) < 0)
			return usage();
		return cmd_forkbomb(n);
	}
	if (strcmp(cmd, "spin") == 0 && argc == 3) {
		double s;
		if (parse_seconds(argv[2], &s) < 0)
			return usage();
		return cmd_spin(s);
	}
	if (strcmp(cmd, "sleep") == 0 && argc == 3) {
		double s;
		if (parse_seconds(argv[2], &s) < 0)
			return usage();
		sleep_seconds(s);
		return 0;
	}
	if (strcmp(cmd, "try") == 0 && argc >= 3)
		return cmd_try(argc - 2, argv + 2);
	if (strcmp(cmd, "ipc") == 0 && argc == 3)
		return cmd_ipc(argv[2]);
	if (strcmp(cmd, "listen") == 0 && argc == 5) {
		double s;
		if (parse_seconds(argv[4], &s) < 0)
			return usage();
		return cmd_listen(argv[2], argv[3], s);
	}
	if (strcmp(cmd, "connect") == 0 && argc == 4)
		return cmd_connect(argv[2], argv[3]);
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
		usage();
		return 0;
	}
	return usage();
}
