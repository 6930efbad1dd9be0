/* server: the master process and its workers.
 *
 * The master stays root and never reads a byte from the network: it
 * loads the host file and the host keys, binds one listening socket per
 * endpoint per worker (SO_REUSEPORT, so the kernel spreads connections),
 * forks the workers and restarts any that dies. Each worker closes the
 * other workers' sockets, drops to gateway.user, installs its seccomp
 * filter and only then accepts.
 *
 * SIGHUP: the master reloads the host file and the keys and starts a new
 * generation of workers, which take over the listening sockets; the old
 * ones stop accepting and exit when their last session ends, so no
 * session is dropped. SIGTERM or SIGINT: every session ends, then all. */
#ifndef FIEF_GATEWAY_SERVER_H
#define FIEF_GATEWAY_SERVER_H

#include "config.h"

/* Run the gateway until told to stop. Takes host. Returns the exit code. */
int server_run(const char *host_path, struct config_host *host);

#endif
