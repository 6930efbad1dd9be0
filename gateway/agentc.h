/* agentc: the gateway's side of the session agent protocol.
 *
 * One connection per request, as docs/protocol.md says: connect to
 * state_dir/agents/TENANT.sock, send one request, wait for OK (with its
 * fds) or ERROR, then, for sessions, for EXIT. The agent is a process of
 * the tenant's init: every packet from it is decoded and bounded by
 * proto.c, and the fds it passes must be exactly the ones the request
 * calls for, each of the right kind, or the reply counts as an error. */
#ifndef FIEF_GATEWAY_AGENTC_H
#define FIEF_GATEWAY_AGENTC_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

enum agentc_event {
	AGENTC_OK,        /* the request is served: fds[0..nfds) are ours (O_NONBLOCK) */
	AGENTC_FAILED,    /* refused, timed out, malformed, or the agent went away first */
	AGENTC_EXIT,      /* the session's child ended: *exit */
	AGENTC_GONE,      /* the agent closed after OK without an EXIT */
};

struct agentc;
typedef void (*agentc_fn)(struct agentc *a, enum agentc_event ev, int *fds, size_t nfds,
			  const struct proto_exit *exit, const char *why);

struct agentc {
	int fd;                          /* -1 when closed */
	uint8_t type;                    /* the request: PROTO_PTY, _PIPES or _CONNECT */
	bool answered;                   /* OK seen */
	int code;                        /* with AGENTC_FAILED: the ERROR's code, or 0 */
	ev_io io;
	ev_timer timer;
	agentc_fn fn;
	void *data;
};

/* Connect and send req. 0: fn will be called later (it may free a, after
 * calling agentc_close). -errno when the tenant cannot be reached now:
 * -ENOENT and -ECONNREFUSED mean it is not running. */
int agentc_open(struct agentc *a, const char *tenant, const struct proto_msg *req,
		double timeout, agentc_fn fn, void *data);

/* Pass a signal on to the running session. 0 or -errno. */
int agentc_signal(struct agentc *a, int signo);

/* Hang up: the agent then hangs up on the session (SIGHUP). Idempotent. */
void agentc_close(struct agentc *a);

/* state_dir/agents/TENANT.sock into buf; -1 when it does not fit. */
int agentc_path(const char *tenant, char *buf, size_t len);

#endif
