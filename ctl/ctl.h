/* fiefctl: shared state of the operator CLI and its commands.
 *
 * Exit codes, the same for every command:
 *   0  done
 *   1  failed: an invalid file, a refusal (no such tenant), nothing to show
 *   2  bad command line (usage)
 *   3  a daemon is not running or did not answer
 * (`enter` returns the command's own status, 255 when fiefctl failed.)
 *
 * With --json, stdout carries JSON only: one document per command (one
 * object per line for `logs`), and on failure exactly one error object
 * {"ok": false, "code": N, "error": "..."} where N is the exit code.
 * Human-readable messages go to stderr in both modes. */
#ifndef FIEF_CTL_H
#define FIEF_CTL_H

#include <stdbool.h>

#include "config.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_FAIL 1       /* invalid, refused, not found */
#define CTL_EXIT_USAGE 2      /* bad command line */
#define CTL_EXIT_DAEMON 3     /* a daemon is not running or did not answer */

struct ctl {
	const char *host_path;    /* -c, default /etc/fief/fief.yaml */
	bool host_path_given;
	bool json;                /* --json, before or after the command */
};

int ctl_check(struct ctl *ctl, int argc, char **argv);
int ctl_schema(struct ctl *ctl, int argc, char **argv);
/* list, status, stop, start, reload: argv[0] is the verb */
int ctl_launcher(struct ctl *ctl, int argc, char **argv);
int ctl_enter(struct ctl *ctl, int argc, char **argv);
int ctl_new(struct ctl *ctl, int argc, char **argv);
int ctl_stats(struct ctl *ctl, int argc, char **argv);
int ctl_logs(struct ctl *ctl, int argc, char **argv);

/* common.c */
/* Report a failure (stderr; with --json also the error object on
 * stdout) and return code. */
int ctl_fail(struct ctl *ctl, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Usage text to stderr (and the error object), returns CTL_EXIT_USAGE. */
int ctl_usage_error(struct ctl *ctl, const char *usage);
/* The host file of -c, or NULL after reporting why (exit CTL_EXIT_FAIL). */
struct config_host *ctl_host(struct ctl *ctl);
/* One request to a daemon's socket state_dir/SOCK: 0 with *reply, or the
 * exit code after reporting (CTL_EXIT_DAEMON when nobody answers). */
int ctl_request(struct ctl *ctl, const char *sock, const char *daemon, const char *req, char **reply);

#endif
