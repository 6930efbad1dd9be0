/* fiefctl: failures, the host file and daemon requests, shared by every
 * command (see ctl.h for the exit codes and the JSON error object). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "records.h"

#define CTL_REPLY_MAX (64 * 1024 * 1024)
#define CTL_REPLY_TIMEOUT_MS 30000

static void ctl_json_error(int code, const char *msg)
{
	printf("{\"ok\":false,\"code\":%d,\"error\":", code);
	json_string(stdout, msg);
	puts("}");
	fflush(stdout);
}

int ctl_fail(struct ctl *ctl, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "fiefctl: %s\n", msg);
	if (ctl->json)
		ctl_json_error(code, msg);
	return code;
}

int ctl_usage_error(struct ctl *ctl, const char *usage)
{
	fputs(usage, stderr);
	if (usage[0] && usage[strlen(usage) - 1] != '\n')
		fputc('\n', stderr);
	if (ctl->json) {
		/* the usage line alone: "usage: fiefctl ..." */
		char line[256];
		snprintf(line, sizeof line, "bad command line; %.*s", (int)strcspn(usage, "\n"), usage);
		ctl_json_error(CTL_EXIT_USAGE, line);
	}
	return CTL_EXIT_USAGE;
}

struct config_host *ctl_host(struct ctl *ctl)
{
	struct config_errors errs;
	struct config_host *h = config_host_load(ctl->host_path, &errs);
	char msg[1024] = "", one[512];

	if (h)
		return h;
	config_errors_print(&errs, stderr);
	if (ctl->json) {
		for (size_t i = 0; i < errs.n; i++) {
			config_error_format(&errs, i, one, sizeof one);
			snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%s%s", i ? "; " : "", one);
		}
		ctl_json_error(CTL_EXIT_FAIL, msg[0] ? msg : "the host file is invalid");
	}
	return NULL;
}

int ctl_request(struct ctl *ctl, const char *sock, const char *daemon, const char *req, char **reply)
{
	struct config_host *h = ctl_host(ctl);
	char path[4096];
	int r;

	if (!h)
		return CTL_EXIT_FAIL;
	snprintf(path, sizeof path, "%s/%s", h->state_dir, sock);
	config_host_free(h);
	r = rec_request(path, req, CTL_REPLY_MAX, CTL_REPLY_TIMEOUT_MS, reply);
	if (r == -EACCES || r == -EPERM)
		return ctl_fail(ctl, CTL_EXIT_FAIL, "%s: %s (fiefctl needs root)", path, strerror(-r));
	if (r == -EAGAIN)
		return ctl_fail(ctl, CTL_EXIT_DAEMON, "%s is not answering (%s: its queue is full)", daemon, path);
	if (r < 0)
		return ctl_fail(ctl, CTL_EXIT_DAEMON, "%s is not running (%s: %s)", daemon, path, strerror(-r));
	if (!**reply) {
		free(*reply);
		return ctl_fail(ctl, CTL_EXIT_DAEMON, "%s did not answer (%s)", daemon, path);
	}
	return 0;
}
