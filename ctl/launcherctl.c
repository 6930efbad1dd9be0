/* fiefctl list, status, stop, start, reload: requests to the launcher's
 * control socket, shown as an aligned table or as JSON. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"

#define REPLY_MAX (16 * 1024 * 1024)
#define MAX_FIELDS 32

struct record {
	char *key[MAX_FIELDS];
	char *val[MAX_FIELDS];
	int n;
};

/* Send one request line and read the whole reply. */
static int launcher_request(struct ctl *ctl, const char *req, char **reply)
{
	struct config_errors errs;
	struct config_host *h = config_host_load(ctl->host_path, &errs);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = 0, cap = 65536;
	char *buf;
	int fd;

	if (!h) {
		config_errors_print(&errs, stderr);
		return -1;
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/launcher.sock", h->state_dir);
	config_host_free(h);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "fiefctl: the launcher is not running (%s: %s)\n", sa.sun_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -CTL_EXIT_DAEMON;
	}
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0 || !(buf = malloc(cap))) {
		close(fd);
		return -CTL_EXIT_DAEMON;
	}
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;
		if (poll(&p, 1, 30000) <= 0)
			break;
		if (len + 1 == cap) {
			char *nb = cap < REPLY_MAX ? realloc(buf, cap * 2) : NULL;
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	*reply = buf;
	return 0;
}

static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		unsigned v;
		if (*s == '%' && sscanf(s + 1, "%2x", &v) == 1) {
			*o++ = (char)v;
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

/* Split one reply line into fields (in place). */
static void parse_record(char *line, struct record *r)
{
	char *save = NULL;

	r->n = 0;
	for (char *f = strtok_r(line, " ", &save); f && r->n < MAX_FIELDS; f = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(f, '=');
		if (!eq)
			continue;
		*eq = 0;
		unescape(eq + 1);
		r->key[r->n] = f;
		r->val[r->n++] = eq + 1;
	}
}

static const char *field(const struct record *r, const char *key)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->key[i], key))
			return r->val[i];
	return "";
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static bool is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void json_record(const struct record *r)
{
	putchar('{');
	for (int i = 0; i < r->n; i++) {
		if (i)
			putchar(',');
		json_string(r->key[i]);
		putchar(':');
		if (is_number(r->val[i]) && strcmp(r->key[i], "name"))
			fputs(r->val[i], stdout);
		else
			json_string(r->val[i]);
	}
	putchar('}');
}

static void human_bytes(const char *v, char *buf, size_t len)
{
	double b = strtod(v, NULL);
	const char *u = "BKMGT";

	while (b >= 1024 && u[1]) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, *u == 'B' ? "%.0f%c" : "%.1f%c", b, *u);
}

static void human_duration(const char *v, char *buf, size_t len)
{
	long s = atol(v);

	if (s < 0)
		s = 0;

	if (s >= 86400)
		snprintf(buf, len, "%ldd%ldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%ldh%ldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%ldm%lds", s / 60, s % 60);
	else
		snprintf(buf, len, "%lds", s);
}

static void table_row(const struct record *r, bool header)
{
	char mem[32], lim[32], up[48], cpu[32];

	if (header) {
		printf("%-20s %-9s %8s %8s %8s %9s %10s %6s %8s\n", "NAME", "STATE", "PID", "UPTIME",
		       "RESTARTS", "MEMORY", "LIMIT", "PIDS", "CPU");
		return;
	}
	human_bytes(field(r, "memory"), mem, sizeof mem);
	human_bytes(field(r, "memory_limit"), lim, sizeof lim);
	human_duration(field(r, "uptime"), up, sizeof up);
	snprintf(cpu, sizeof cpu, "%.1fs", strtod(field(r, "cpu_usec"), NULL) / 1e6);
	printf("%-20s %-9s %8s %8s %8s %9s %10s %6s %8s\n", field(r, "name"), field(r, "state"),
	       field(r, "pid"), up, field(r, "restarts"), mem, lim, field(r, "pids"), cpu);
}

/* Print the tenant records of a reply; returns the exit code. */
static int show_reply(struct ctl *ctl, char *reply, bool detail)
{
	struct record r;
	char *save = NULL, *line = strtok_r(reply, "\n", &save);
	bool first = true;

	if (!line)
		return fprintf(stderr, "fiefctl: empty reply from the launcher\n"), CTL_EXIT_DAEMON;
	parse_record(line, &r);
	if (strcmp(field(&r, "ok"), "1"))
		return fprintf(stderr, "fiefctl: %s\n", field(&r, "error")), 1;
	if (ctl->json && !detail)
		putchar('[');
	for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		parse_record(line, &r);
		if (ctl->json) {
			if (!first && !detail)
				putchar(',');
			json_record(&r);
		} else if (detail) {
			for (int i = 0; i < r.n; i++)
				printf("%-17s %s\n", r.key[i], r.val[i]);
		} else {
			if (first)
				table_row(&r, true);
			table_row(&r, false);
		}
		first = false;
	}
	if (ctl->json)
		puts(detail ? "" : "]");
	return 0;
}

static const char *const launcher_verbs[][2] = {
	{ "list", "usage: fiefctl [--json] list\n\nEvery tenant the launcher knows, with its state and usage." },
	{ "status", "usage: fiefctl [--json] status NAME\n\nState, init pid, uptime, restarts, limits and cgroup usage of one tenant." },
	{ "stop", "usage: fiefctl stop NAME\n\nStop a tenant and keep it stopped until `fiefctl start` or a change of its file." },
	{ "start", "usage: fiefctl start NAME\n\nStart a stopped or failed tenant now." },
	{ "reload", "usage: fiefctl reload NAME\n\nRead the tenant's file again and restart the tenant with it." },
};

int ctl_launcher(struct ctl *ctl, int argc, char **argv)
{
	const char *verb = argv[0], *help = NULL;
	bool needs_name = strcmp(verb, "list") != 0;
	char req[128], *reply;
	int r;

	for (size_t i = 0; i < sizeof launcher_verbs / sizeof launcher_verbs[0]; i++)
		if (!strcmp(launcher_verbs[i][0], verb))
			help = launcher_verbs[i][1];
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return puts(help), 0;
	if (argc > 1 && !strcmp(argv[argc - 1], "--json")) {
		ctl->json = true;
		argc--;
	}
	if (argc != (needs_name ? 2 : 1) || (needs_name && !value_is_tenant_name(argv[1])))
		return fprintf(stderr, "%s\n", help), CTL_EXIT_USAGE;
	snprintf(req, sizeof req, "%s%s%s\n", verb, needs_name ? " " : "", needs_name ? argv[1] : "");
	r = launcher_request(ctl, req, &reply);
	if (r < 0)
		return -r == CTL_EXIT_DAEMON ? CTL_EXIT_DAEMON : 1;
	r = show_reply(ctl, reply, needs_name);
	free(reply);
	return r;
}
