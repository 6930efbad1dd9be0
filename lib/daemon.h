/* daemon: the command line every fief daemon shares. */
#ifndef FIEF_DAEMON_H
#define FIEF_DAEMON_H

#include <stdbool.h>

#define DAEMON_EXIT_USAGE 100   /* bad command line (as s6 does) */
#define DAEMON_EXIT_CONFIG 78   /* EX_CONFIG: the host file is invalid */
#define DAEMON_EXIT_SYSCALL 111 /* a system call the daemon cannot live without failed */

struct daemon_args {
	const char *host_path;      /* -c PATH, default /etc/fief/fief.yaml */
	bool test_only;             /* -t: check the host file and exit */
	bool debug;                 /* -d: debug logging */
	bool syslog;                /* -s: log to syslog instead of stderr */
};

struct config_host;

/* The command line, "[-c PATH] [-t] [-d] [-s] [-h]" (it exits on -h or a
 * bad option), then the host file it names. NULL when the daemon is
 * to exit at once with *exit_code: the file is invalid (its errors are
 * printed; DAEMON_EXIT_CONFIG), or it is valid and -t asked only that (0). */
struct config_host *daemon_start(int argc, char **argv, const char *name, const char *what,
				 struct daemon_args *a, int *exit_code);

#endif
