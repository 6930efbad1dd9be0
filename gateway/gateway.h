/* gateway: the state one worker process shares between its modules.
 *
 * A worker is one libev loop serving many ssh connections; there are no
 * threads, so these globals are only touched from the loop. */
#ifndef FIEF_GATEWAY_H
#define FIEF_GATEWAY_H

#include <ev.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define GW_SCRATCH (256 * 1024)    /* one relay chunk: bytes read from a tenant fd at once */

struct gw_session;

struct gw_worker {
	struct ev_loop *loop;
	const struct config_host *host;
	ssh_bind bind;
	int index;                     /* worker slot, for logs */
	struct gw_session *first, *last;   /* every session, oldest first */
	unsigned n_sessions, n_unauth;
	bool retiring;                 /* not accepting; exit when the last session ends */
	uint8_t *scratch;              /* GW_SCRATCH bytes, reused by every relay step */
};

extern struct gw_worker W;

/* Format a socket address as numeric text (IPv4-mapped IPv6 as IPv4)
 * and return its port. */
int gw_addr_text(const struct sockaddr *sa, char *buf, size_t len);

#endif
