/* session: one ssh connection, from accept to close.
 *
 * The connection's fd is watched by one ev_io; every time it is ready
 * (and after anything else touched the session: an agent reply, a tenant
 * fd, a timer) the session is "settled": libssh reads what has arrived
 * and queues requests as messages, we handle each message, every channel
 * moves what it can, and only then is anything freed. Nothing is freed
 * inside a libssh callback. */
#ifndef FIEF_GATEWAY_SESSION_H
#define FIEF_GATEWAY_SESSION_H

#include <ev.h>
#include <libssh/libssh.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "auth.h"

#define SESSION_MAX_CHANNELS 64
#define SESSION_MSG_BURST 64       /* messages handled per wake-up */
#define SESSION_PASSES 8           /* settle passes per wake-up */

enum session_state {
	SS_KEX,                          /* key exchange */
	SS_AUTH,                         /* waiting for a successful userauth */
	SS_OPEN,                         /* authenticated: channels */
	SS_DEAD,                         /* to be freed at the end of this settle */
};

struct gw_channel;

struct gw_session {
	struct gw_session *prev, *next;  /* W's list, oldest first */
	unsigned id;
	enum session_state state;
	ssh_session ssh;
	int fd;
	ev_io io;
	ev_timer grace;                  /* login_grace */
	ev_tstamp accepted;
	struct sockaddr_storage peer, local;
	uint8_t source[16];              /* ratelimit_source() of peer: what limits count */
	char addr[64];                   /* peer address, numeric */
	int port;
	char local_addr[64];
	int local_port;
	bool authenticated;              /* our own flag: every channel open checks it */
	const char *tenant;              /* == auth.user once authenticated */
	struct auth auth;
	struct gw_channel *channels;
	unsigned n_channels;
	bool spoke;                      /* the client has sent something */
	bool readable;                   /* the socket woke us: read and handle requests */
	bool backed_up;                  /* libssh holds bytes the socket did not take */
	struct ssh_counter_struct rx;    /* packets libssh has handled, whoever made it read */
	bool settling;                   /* inside session_settle */
	bool again;                      /* settle once more: more messages may wait */
};

/* A new connection (fd non-blocking, peer and local filled in). Takes fd. */
void session_accept(int fd, const struct sockaddr_storage *peer, const struct sockaddr_storage *local);

/* Do everything pending for s; s may be freed on return. */
void session_settle(struct gw_session *s);

/* End the connection (logged with why); freed by the settle that follows. */
void session_disconnect(struct gw_session *s, const char *why);

/* The user authenticated: called by auth. */
void session_authenticated(struct gw_session *s);

/* At the limit of unauthenticated connections, a newcomer from peer: make
 * room by closing one unauthenticated connection of the address that holds
 * the most of them, the oldest whose client has not said a word yet if
 * there is one, else (only if that address holds at least two more than
 * peer's) its oldest. Returns true if one was closed. */
bool session_make_room(const struct sockaddr_storage *peer);

/* Every session of the worker: end them all now (SIGTERM). */
void session_close_all(void);

#endif
