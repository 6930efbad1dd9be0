/* agent: the session agent that each tenant init runs (docs/protocol.md).
 *
 * It serves the listening socket the launcher bound at
 * state_dir/agents/NAME.sock: one request per connection, a child started
 * inside the tenant (or a TCP connection made there), its fds passed back,
 * then its exit status on the same connection. */
#ifndef FIEF_AGENT_H
#define FIEF_AGENT_H

#include <ev.h>

struct init_args;

#define AGENT_MAX_CONNS        1024   /* open connections, sessions included */
#define AGENT_MAX_PENDING      64     /* connections that have not sent a request yet */
#define AGENT_REQUEST_TIMEOUT  10.0   /* seconds to send the request */
#define AGENT_CONNECT_TIMEOUT  10.0   /* seconds for a CONNECT to complete */

/* Serve a->agent_fd on loop. 0 or -errno. */
int agent_start(struct ev_loop *loop, const struct init_args *a);
/* Stop accepting and drop every connection (the tenant is stopping: its
 * processes are being ended by the init). */
void agent_stop(void);

#endif
