/* recserver: a server of one request per connection, on the daemon's
 * libev loop: the launcher's and the router's control sockets
 * (launcher.sock, router-control.sock) and the launcher's metrics.
 *
 * A request is read until it is whole (by default: a newline has come),
 * the daemon's handler writes the reply, which goes out once it returns,
 * and then the connection closes. A peer that sends no whole request
 * within the timeout is dropped; a request longer than max_req is handed
 * over cut short; connections beyond max_conns are closed on accept. A
 * reply that could not get its memory is not sent at all (the peer sees
 * the connection close with no reply), never half of one.
 *
 * Control sockets reply with records (see records.h): rec_ok or
 * rec_error first, then records of rec_field and rec_num, each ended by
 * rec_end. */
#ifndef FIEF_RECSERVER_H
#define FIEF_RECSERVER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#define REC_MAX_REQ 512              /* default max_req: a request line, its newline included */

struct rec_reply;

/* req: the request, NUL-terminated, as it came (its newline too). */
typedef void rec_handler(struct rec_reply *r, const char *req, void *data);
/* Whether the len bytes of req (NUL-terminated, and possibly holding
 * NULs of the peer's) are a whole request. The first seen bytes were
 * looked at before and did not end it: a request that trickles in a
 * byte at a time must not be scanned again from its start each time. */
typedef bool rec_whole(const char *req, size_t len, size_t seen);

struct rec_server {
	struct ev_loop *loop;
	rec_handler *handle;
	void *data;                  /* handed to handle */
	int max_conns;               /* connections open at once */
	double timeout;              /* seconds for a connection's whole life */
	size_t max_req;              /* bytes of a request; 0: REC_MAX_REQ */
	rec_whole *whole;            /* NULL: a newline ends the request */
	/* private */
	ev_io w;
	int conns;
};

/* Serve the listening socket fd (non-blocking), with the fields above set. */
void rec_server_start(struct rec_server *s, int fd);

void rec_add(struct rec_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* n bytes as they are. */
void rec_write(struct rec_reply *r, const void *p, size_t n);
/* key=value, the value percent-encoded so that a record stays one line;
 * a space before it unless it starts the record. */
void rec_field(struct rec_reply *r, const char *key, const char *val);
void rec_num(struct rec_reply *r, const char *key, unsigned long long v);
/* End the record. */
void rec_end(struct rec_reply *r);
/* The reply's first record: "ok=1", and "ok=0 error=MESSAGE". */
void rec_ok(struct rec_reply *r);
void rec_error(struct rec_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
