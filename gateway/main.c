/* fief-gateway: ssh TENANT@host lands inside the tenant.
 *
 * main only reads the command line and the host file; server.c runs the
 * master and its workers, session.c, auth.c and channel.c serve ssh. */
#include <stdio.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "server.h"

int main(int argc, char **argv)
{
	struct daemon_args args = { 0 };
	struct config_errors errs;
	struct config_host *host;

	daemon_parse_args(argc, argv, "fief-gateway", "The ssh gateway: ssh TENANT@host lands inside the tenant.", &args);
	host = config_host_load(args.host_path, &errs);
	if (!host) {
		config_errors_print(&errs, stderr);
		return DAEMON_EXIT_CONFIG;
	}
	if (args.test_only) {
		config_host_free(host);
		return 0;
	}
	return server_run(args.host_path, host);
}
