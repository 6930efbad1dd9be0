/* fief-gateway: entry point. The service itself lands with issue 5; until
 * then this binary validates its host file (-t) and refuses to start. */
#include <stdio.h>

#include "config.h"
#include "daemon.h"
#include "log.h"

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
	config_host_free(host);
	if (args.test_only)
		return 0;
	log_error("this build has no gateway service yet (see issue 5); use -t to check the host file");
	return 1;
}
