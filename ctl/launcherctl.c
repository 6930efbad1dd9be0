/* fiefctl list, status, stop, start, reload: requests to the launcher's
 * control socket, shown as an aligned table or as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "records.h"


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
	human_bytes(rec_get(r, "memory"), mem, sizeof mem);
	human_bytes(rec_get(r, "memory_limit"), lim, sizeof lim);
	human_duration(rec_get(r, "uptime"), up, sizeof up);
	snprintf(cpu, sizeof cpu, "%.1fs", strtod(rec_get(r, "cpu_usec"), NULL) / 1e6);
	printf("%-20s %-9s %8s %8s %8s %9s %10s %6s %8s\n", rec_get(r, "name"), rec_get(r, "state"),
	       rec_get(r, "pid"), up, rec_get(r, "restarts"), mem, lim, rec_get(r, "pids"), cpu);
}

/* Print the tenant records of a reply; returns the exit code.
 * JSON: list is an array of tenant objects, status one tenant object,
 * stop/start/reload {"ok": true, "action": VERB, "name": NAME, "tenant": {...}}. */
static int show_reply(struct ctl *ctl, const char *verb, char *reply)
{
	bool detail = strcmp(verb, "list") != 0, action = detail && strcmp(verb, "status") != 0;
	struct record r;
	char *save = NULL, *line = strtok_r(reply, "\n", &save);
	bool first = true;

	if (!line)
		return ctl_fail(ctl, CTL_EXIT_DAEMON, "empty reply from the launcher");
	rec_parse(line, &r);
	if (strcmp(rec_get(&r, "ok"), "1"))
		return ctl_fail(ctl, CTL_EXIT_FAIL, "%s", rec_get(&r, "error"));
	if (ctl->json && !detail)
		putchar('[');
	for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		rec_parse(line, &r);
		if (ctl->json) {
			if (!first && !detail)
				putchar(',');
			if (action) {
				printf("{\"ok\":true,\"action\":\"%s\",\"name\":", verb);
				json_string(stdout, rec_get(&r, "name"));
				fputs(",\"tenant\":", stdout);
			}
			rec_json(stdout, &r, NULL);
			if (action)
				putchar('}');
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
	if (ctl->json && detail && first)
		return ctl_fail(ctl, CTL_EXIT_DAEMON, "the launcher's reply has no tenant record");
	if (ctl->json)
		puts(detail ? "" : "]");
	return 0;
}

static const char *const launcher_verbs[][2] = {
	{ "list", "usage: fiefctl [--json] list\n\nEvery tenant the launcher knows, with its state and usage.\n"
		  "--json: an array of tenant objects (name, state, pid, uid, uptime, restarts,\n"
		  "memory, memory_limit, cpu_usec, pids, ...).\n\n"
		  "Exit 0, 3 when the launcher is not running." },
	{ "status", "usage: fiefctl [--json] status NAME\n\nState, init pid, uptime, restarts, limits and cgroup usage of one tenant.\n"
		    "--json: the tenant object, as in list.\n\n"
		    "Exit 0, 1 when the launcher knows no such tenant, 3 when it is not running." },
	{ "stop", "usage: fiefctl [--json] stop NAME\n\nStop a tenant and keep it stopped until `fiefctl start` or a change of its file.\n"
		  "--json: {\"ok\": true, \"action\": \"stop\", \"name\", \"tenant\": {...}}.\n\n"
		  "Exit 0, 1 for an unknown tenant, 3 when the launcher is not running." },
	{ "start", "usage: fiefctl [--json] start NAME\n\nStart a stopped or failed tenant now.\n"
		   "--json: {\"ok\": true, \"action\": \"start\", \"name\", \"tenant\": {...}}.\n\n"
		   "Exit 0, 1 for an unknown tenant, 3 when the launcher is not running." },
	{ "reload", "usage: fiefctl [--json] reload NAME\n\nRead the tenant's file again and restart the tenant with it.\n"
		    "--json: {\"ok\": true, \"action\": \"reload\", \"name\", \"tenant\": {...}}.\n\n"
		    "Exit 0, 1 for an unknown tenant, 3 when the launcher is not running." },
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
	if (argc != (needs_name ? 2 : 1) || (needs_name && !value_is_tenant_name(argv[1])))
		return ctl_usage_error(ctl, help);
	snprintf(req, sizeof req, "%s%s%s\n", verb, needs_name ? " " : "", needs_name ? argv[1] : "");
	r = ctl_request(ctl, "launcher.sock", "the launcher", req, &reply);
	if (r)
		return r;
	r = show_reply(ctl, verb, reply);
	free(reply);
	return r;
}
