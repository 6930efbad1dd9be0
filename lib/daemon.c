/* daemon: the command line every fief daemon shares. */
#include "daemon.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "log.h"

static void daemon_usage(FILE *out, const char *name, const char *what)
{
	fprintf(out,
		"usage: %s [-c HOSTFILE] [-t] [-d] [-s]\n"
		"\n"
		"%s\n"
		"\n"
		"  -c HOSTFILE  host file (default /etc/fief/fief.yaml)\n"
		"  -t           check the host file and exit\n"
		"  -d           log debug messages\n"
		"  -s           log to syslog instead of stderr\n"
		"\n"
		"Runs in the foreground and logs to stderr, as systemd expects.\n",
		name, what);
}

static void daemon_parse_args(int argc, char **argv, const char *name, const char *what,
			      struct daemon_args *a)
{
	int c;

	a->host_path = "/etc/fief/fief.yaml";
	while ((c = getopt(argc, argv, "c:tdsh")) != -1) {
		switch (c) {
		case 'c': a->host_path = optarg; break;
		case 't': a->test_only = true; break;
		case 'd': a->debug = true; break;
		case 's': a->syslog = true; break;
		case 'h': daemon_usage(stdout, name, what); exit(0);
		default: daemon_usage(stderr, name, what); exit(DAEMON_EXIT_USAGE);
		}
	}
	if (optind != argc) {
		daemon_usage(stderr, name, what);
		exit(DAEMON_EXIT_USAGE);
	}
	log_init(name, a->syslog);
	if (a->debug)
		log_set_level(LOG_LVL_DEBUG);
}

struct config_host *daemon_start(int argc, char **argv, const char *name, const char *what,
				 struct daemon_args *a, int *exit_code)
{
	struct config_errors errs;
	struct config_host *host;

	daemon_parse_args(argc, argv, name, what, a);
	host = config_host_load(a->host_path, &errs);
	if (!host) {
		config_errors_print(&errs, stderr);
		*exit_code = DAEMON_EXIT_CONFIG;
		return NULL;
	}
	if (a->test_only) {
		config_host_free(host);
		*exit_code = 0;
		return NULL;
	}
	return host;
}
