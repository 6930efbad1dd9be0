/* fiefctl stats [NAME] [--json]: fief-router's counters, from its control
 * socket (state_dir/router-control.sock), as a table, as the details of
 * one tenant, or as JSON:
 *
 *   {"router": {...}, "tenants": [{"name": ..., "out_bytes": ...}, ...]}
 *
 * "out" is what a tenant sent (forwarded from its tun), "in" what it was
 * delivered; drops come by reason (drop_spoof, drop_fw_out, ...). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"

#define STATS_REPLY_MAX (64 * 1024 * 1024)
#define STATS_FIELDS 40
#define STATS_TIMEOUT_MS 10000

static const char stats_help[] =
	"usage: fiefctl [--json] stats [NAME] [--json]\n\n"
	"Bytes and packets each tenant sent (out) and received (in) through\n"
	"fief-router, and the packets dropped, by reason.";

struct stats_rec {
	char *key[STATS_FIELDS];
	char *val[STATS_FIELDS];
	int n;
};

/* Send one request line and read the whole reply (bounded in size and time). */
static int stats_request(struct ctl *ctl, const char *req, char **reply)
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
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/router-control.sock", h->state_dir);
	config_host_free(h);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "fiefctl: fief-router is not running (%s: %s)\n", sa.sun_path, strerror(errno));
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

		if (poll(&p, 1, STATS_TIMEOUT_MS) <= 0)
			break;
		if (len + 1 == cap) {
			char *nb = cap < STATS_REPLY_MAX ? realloc(buf, cap * 2) : NULL;
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

static void stats_unescape(char *s)
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

static void stats_parse(char *line, struct stats_rec *r)
{
	char *save = NULL;

	r->n = 0;
	for (char *f = strtok_r(line, " ", &save); f && r->n < STATS_FIELDS; f = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(f, '=');
		if (!eq)
			continue;
		*eq = 0;
		stats_unescape(eq + 1);
		r->key[r->n] = f;
		r->val[r->n++] = eq + 1;
	}
}

static const char *stats_get(const struct stats_rec *r, const char *key)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->key[i], key))
			return r->val[i];
	return "";
}

static bool stats_is_number(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void stats_json_string(const char *s)
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

/* One record as a JSON object, without its "kind" field. */
static void stats_json_rec(const struct stats_rec *r)
{
	bool first = true;

	putchar('{');
	for (int i = 0; i < r->n; i++) {
		if (!strcmp(r->key[i], "kind"))
			continue;
		if (!first)
			putchar(',');
		first = false;
		stats_json_string(r->key[i]);
		putchar(':');
		if (stats_is_number(r->val[i]) && strcmp(r->key[i], "name"))
			fputs(r->val[i], stdout);
		else
			stats_json_string(r->val[i]);
	}
	putchar('}');
}

static void stats_human(const char *v, char *buf, size_t len)
{
	double b = strtod(v, NULL);
	const char *u = "BKMGTP";

	while (b >= 1024 && u[1]) {
		b /= 1024;
		u++;
	}
	snprintf(buf, len, *u == 'B' ? "%.0f%c" : "%.1f%c", b, *u);
}

static void stats_row(const struct stats_rec *r)
{
	char ob[16], ib[16];

	if (!r) {
		printf("%-20s %-15s %9s %10s %9s %10s %9s\n", "NAME", "ADDRESS", "OUT", "OUT_PKTS",
		       "IN", "IN_PKTS", "DROPS");
		return;
	}
	stats_human(stats_get(r, "out_bytes"), ob, sizeof ob);
	stats_human(stats_get(r, "in_bytes"), ib, sizeof ib);
	printf("%-20s %-15s %9s %10s %9s %10s %9s\n", stats_get(r, "name"), stats_get(r, "address"), ob,
	       stats_get(r, "out_packets"), ib, stats_get(r, "in_packets"), stats_get(r, "drops"));
}

/* Print the reply; returns the exit code. */
static int stats_show(struct ctl *ctl, char *reply, bool detail)
{
	struct stats_rec r;
	char *save = NULL, *line = strtok_r(reply, "\n", &save);
	int tenants = 0;

	if (!line)
		return fprintf(stderr, "fiefctl: empty reply from fief-router\n"), CTL_EXIT_DAEMON;
	stats_parse(line, &r);
	if (strcmp(stats_get(&r, "ok"), "1"))
		return fprintf(stderr, "fiefctl: %s\n", stats_get(&r, "error")), 1;
	if (ctl->json)
		fputs("{\"router\":", stdout);
	for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool router;

		stats_parse(line, &r);
		router = !strcmp(stats_get(&r, "kind"), "router");
		if (ctl->json) {
			if (!router)
				fputs(tenants ? "," : ",\"tenants\":[", stdout);
			stats_json_rec(&r);
		} else if (detail && !router) {
			for (int i = 0; i < r.n; i++)
				if (strcmp(r.key[i], "kind"))
					printf("%-17s %s\n", r.key[i], r.val[i]);
		} else if (!detail && !router) {
			if (!tenants)
				stats_row(NULL);
			stats_row(&r);
		}
		tenants += !router;
	}
	if (ctl->json)
		puts(tenants ? "]}" : ",\"tenants\":[]}");
	return 0;
}


int ctl_stats(struct ctl *ctl, int argc, char **argv)
{
	const char *name = NULL;
	char req[96], *reply;
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return puts(stats_help), 0;
		if (!strcmp(argv[i], "--json"))
			ctl->json = true;
		else if (!name && value_is_tenant_name(argv[i]))
			name = argv[i];
		else
			return fprintf(stderr, "%s\n", stats_help), CTL_EXIT_USAGE;
	}
	snprintf(req, sizeof req, "stats%s%s\n", name ? " " : "", name ? name : "");
	r = stats_request(ctl, req, &reply);
	if (r < 0)
		return -r == CTL_EXIT_DAEMON ? CTL_EXIT_DAEMON : 1;
	r = stats_show(ctl, reply, name != NULL);
	free(reply);
	return r;
}
