/* fiefctl [--json] stats [NAME]: fief-router's counters, from its control
 * socket (state_dir/router-control.sock), as a table, as the details of
 * one tenant, or as JSON:
 *
 *   {"router": {...}, "tenants": [{"name": ..., "out_bytes": ...}, ...]}
 *
 * "out" is what a tenant sent (forwarded from its tun), "in" what it was
 * delivered; drops come by reason (drop_spoof, drop_fw_out, ...). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "records.h"

static const char stats_help[] =
	"usage: fiefctl [--json] stats [NAME]\n\n"
	"Bytes and packets each tenant sent (out) and received (in) through\n"
	"fief-router, and the packets dropped, by reason. With NAME, the\n"
	"details of one tenant.\n"
	"--json: {\"router\": {...}, \"tenants\": [{\"name\", \"address\", \"out_bytes\", ...}]}.\n\n"
	"Exit 0, 1 for an unknown tenant, 3 when fief-router is not running.";


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

static void stats_row(const struct record *r)
{
	char ob[16], ib[16];

	if (!r) {
		printf("%-20s %-15s %9s %10s %9s %10s %9s\n", "NAME", "ADDRESS", "OUT", "OUT_PKTS",
		       "IN", "IN_PKTS", "DROPS");
		return;
	}
	stats_human(rec_get(r, "out_bytes"), ob, sizeof ob);
	stats_human(rec_get(r, "in_bytes"), ib, sizeof ib);
	printf("%-20s %-15s %9s %10s %9s %10s %9s\n", rec_get(r, "name"), rec_get(r, "address"), ob,
	       rec_get(r, "out_packets"), ib, rec_get(r, "in_packets"), rec_get(r, "drops"));
}

/* Print the reply; returns the exit code. */
static int stats_show(struct ctl *ctl, char *reply, bool detail)
{
	struct record r;
	char *save = NULL, *line = strtok_r(reply, "\n", &save);
	int tenants = 0, routers = 0;

	if (!line)
		return ctl_fail(ctl, CTL_EXIT_DAEMON, "empty reply from fief-router");
	rec_parse(line, &r);
	if (strcmp(rec_get(&r, "ok"), "1"))
		return ctl_fail(ctl, CTL_EXIT_FAIL, "%s", rec_get(&r, "error"));
	if (ctl->json)
		fputs("{\"router\":", stdout);
	for (line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		bool router;

		rec_parse(line, &r);
		router = !strcmp(rec_get(&r, "kind"), "router");
		if (ctl->json && router && routers++)
			continue;          /* one router object */
		if (ctl->json && !router && !routers++)
			fputs("null", stdout);
		if (ctl->json) {
			if (!router)
				fputs(tenants ? "," : ",\"tenants\":[", stdout);
			rec_json(stdout, &r, "kind");
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
	if (ctl->json && !routers)
		fputs("null", stdout);
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
		if (!name && value_is_tenant_name(argv[i]))
			name = argv[i];
		else
			return ctl_usage_error(ctl, stats_help);
	}
	snprintf(req, sizeof req, "stats%s%s\n", name ? " " : "", name ? name : "");
	r = ctl_request(ctl, "router-control.sock", "fief-router", req, &reply);
	if (r)
		return r;
	r = stats_show(ctl, reply, name != NULL);
	free(reply);
	return r;
}
