/* channel: one ssh channel and the tenant fds it relays.
 *
 * A session channel collects its requests (pty-req, env), then asks the
 * tenant's agent for a pty or pipes session (shell, exec, subsystem sftp)
 * and answers the request once the agent has. A direct-tcpip channel asks
 * the agent for a TCP connection made inside the tenant before it accepts
 * the open. Then bytes move both ways, with backpressure:
 *
 *  - tenant to client: a tenant fd is read only while nothing of ours
 *    waits to be written to the channel, the client's window is open and
 *    libssh has nothing queued for the socket, so at most one chunk per
 *    stream is ever held, and a slow client slows the tenant down; no
 *    more than CHAN_INFLIGHT bytes are sent ahead of what the client has
 *    handed back (window adjusts) when its TCP round trip is under
 *    CHAN_PACE_NEAR_RTT, so the client's own buffers stay short (see
 *    chan_room, chan_near); in
 *    a stream, a pipe or socket with less than a batch waiting is given
 *    a moment to fill first, so a slow writer is not sent a few KiB at a
 *    time;
 *  - client to tenant: data is written to the tenant fd from libssh's
 *    data callback; what the fd does not take stays in libssh's channel
 *    buffer (its window shrinks, so the client stops) and is pulled with
 *    ssh_channel_read_nonblocking once the fd is writable again.
 *
 * At the end: exit-status or exit-signal, then EOF, then close, and only
 * when the child has exited, its output has reached EOF and every byte has
 * gone to the channel. */
#ifndef FIEF_GATEWAY_CHANNEL_H
#define FIEF_GATEWAY_CHANNEL_H

#include <ev.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include "agentc.h"
#include "proto.h"

#define CHAN_MAX_ENV 64             /* env requests kept per channel */
#define CHAN_MAX_HELD 16            /* requests waiting behind a start */
#define CHAN_AGENT_TIMEOUT 15.0     /* seconds for the agent to start a session */
#define CHAN_AGENT_TRIES 34         /* attempts while the agent is busy (about 15 s) */
#define CHAN_PIPE_SIZE (1024 * 1024) /* capacity asked for the stdio pipes */
#define CHAN_PTY_QUIET 0.1          /* after the exit: output still on its way */
#define CHAN_PTY_LINGER 2.0         /* after the exit: give up on a chatty pty */
#define CHAN_BATCH_MIN (64 * 1024)  /* in a stream, a pipe read worth doing at once */
#define CHAN_BATCH_RUN (256 * 1024) /* bytes sent back to back that make a stream */
#define CHAN_BATCH_GAP 0.002        /* seconds between sends that still continue one */
#define CHAN_BATCH_WAIT 0.0005      /* how long a stream waits for a fuller pipe */
#define CHAN_INFLIGHT (512 * 1024) /* bytes sent ahead of an early-adjusting client */
#define CHAN_PACE_MARGIN (64 * 1024) /* past half its window for any other client */
#define CHAN_PACE_STALL 1.0         /* held that long at the cap: loosen it */
#define CHAN_PACE_NEAR_RTT 1000     /* microseconds: a client this close is paced */
#define CHAN_SFTP_SERVER "/usr/lib/openssh/sftp-server"

struct gw_session;
struct gw_channel;

/* Bytes read from the tenant that the channel did not take yet. */
struct gw_buf {
	uint8_t *data;
	size_t off, len;
};

/* Tenant to client: stdout or stderr pipe, pty master or socket. */
struct gw_out {
	struct gw_channel *c;
	int fd;                          /* -1: none or closed */
	bool is_stderr;
	bool eof;
	bool shared;                     /* the same fd as in_fd (pty, socket) */
	ev_io io;
	struct gw_buf pend;
	/* Batching a stream: a writer that is slower than us would otherwise
	 * be read a few KiB at a time, each its own packet and wake-up. */
	ev_timer hold;                   /* running: wait for more before reading */
	ev_tstamp last_send;
	size_t run;                      /* bytes sent with gaps under CHAN_BATCH_GAP */
};

enum chan_kind { CK_SESSION, CK_DIRECT };

struct gw_channel {
	struct gw_channel *prev, *next;
	struct gw_session *s;
	unsigned id;
	enum chan_kind kind;
	ssh_channel ch;                  /* NULL while a direct-tcpip open waits */
	struct ssh_channel_callbacks_struct cb;
	/* before the start */
	bool pty;
	char term[PROTO_MAX_TERM + 1];
	struct winsize ws;
	char *env[CHAN_MAX_ENV];
	unsigned n_env;
	ssh_message pending;             /* the start (or open) awaiting the agent */
	ssh_message held[CHAN_MAX_HELD]; /* requests that came in behind it */
	unsigned n_held;
	bool started;                    /* shell, exec or subsystem accepted */
	char what[16];                   /* "shell", "exec", "sftp", "direct-tcpip" */
	/* the agent request, kept to try again while the agent is busy */
	char *command;                   /* what runs (a forced one included) */
	char *original;                  /* the client's command under a forced one */
	char *host;                      /* direct-tcpip destination */
	uint16_t port;
	unsigned tries;
	ev_timer retry;
	/* the agent */
	struct agentc agent;
	bool running;                    /* fds in place */
	bool exited, agent_gone;
	struct proto_exit status;
	ev_tstamp exited_at, last_output;
	ev_timer linger;
	/* client to tenant */
	int in_fd;                       /* stdin pipe, pty master or socket */
	ev_io in_io;
	struct gw_buf to_tenant;
	uint32_t backlog;                /* bytes libssh holds for us */
	bool in_done;                    /* stdin closed, socket shut down */
	/* tenant to client */
	struct gw_out out, err;
	/* pacing (chan_room) */
	uint32_t win_peak;               /* the largest client window seen */
	uint32_t win_last;               /* the window when last looked at */
	uint32_t since_adjust;           /* bytes sent since the client's last adjust */
	bool adjusted;                   /* an adjust has come in */
	bool early;                      /* the client adjusts well before it runs low */
	bool not_early;                  /* ... but once held at CHAN_INFLIGHT for a stall */
	bool pace_off;                   /* held at half for a stall too: no cap */
	ev_timer pace;                   /* running while held at the cap */
	bool near;                       /* TCP round trip under CHAN_PACE_NEAR_RTT */
	ev_tstamp rtt_seen;              /* when `near` was last looked at; 0 never */
	/* the ssh side */
	bool client_eof, client_closed;
	bool eof_sent, close_sent;
	bool dead;                       /* free it at the end of the settle */
};

/* Channel opens (authenticated sessions only). They take m. */
void chan_open_session(struct gw_session *s, ssh_message m);
void chan_open_direct(struct gw_session *s, ssh_message m);
/* A channel request (pty-req, env, exec, ...). Takes m. */
void chan_request(struct gw_session *s, ssh_message m);

/* Move what can move and advance the channel's end; false once c is
 * ready to be freed. Never called from a libssh callback. */
bool chan_settle(struct gw_channel *c);
/* Start or stop watching c's tenant fds, from the state libssh is in
 * now (backed_up: bytes wait for the socket): the last thing a settle does. */
void chan_watch_all(struct gw_channel *c, bool backed_up);
/* Free c and everything it holds (its child gets a hang-up). */
void chan_free(struct gw_channel *c);

#endif
