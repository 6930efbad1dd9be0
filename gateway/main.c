/* fief-gateway: ssh TENANT@host lands inside the tenant.
 *
 * main only reads the command line and the host file; server.c runs the
 * master and its workers, session.c, auth.c and channel.c serve ssh. */

#include "config.h"
#include "daemon.h"
#include "server.h"

int main(int argc, char **argv)
{
	struct daemon_args args = { 0 };
	struct config_host *host;
	int code;

	host = daemon_start(argc, argv, "fief-gateway", "The ssh gateway: ssh TENANT@host lands inside the tenant.",
			    &args, &code);
	if (!host)
		return code;
	return server_run(args.host_path, host);
}
