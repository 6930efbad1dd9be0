/* fiefctl: shared state of the operator CLI and its commands. */
#ifndef FIEF_CTL_H
#define FIEF_CTL_H

#include <stdbool.h>

#define CTL_EXIT_USAGE 2      /* bad command line */
#define CTL_EXIT_DAEMON 3     /* a daemon is not running or did not answer */

struct ctl {
	const char *host_path;    /* -c, default /etc/fief/fief.yaml */
	bool host_path_given;
	bool json;                /* --json */
};

int ctl_check(struct ctl *ctl, int argc, char **argv);
int ctl_schema(struct ctl *ctl, int argc, char **argv);
/* list, status, stop, start, reload: argv[0] is the verb */
int ctl_launcher(struct ctl *ctl, int argc, char **argv);
int ctl_enter(struct ctl *ctl, int argc, char **argv);
int ctl_new(struct ctl *ctl, int argc, char **argv);
int ctl_stats(struct ctl *ctl, int argc, char **argv);
int ctl_logs(struct ctl *ctl, int argc, char **argv);

#endif
