/* recserver: the daemon's side of a control socket (launcher.sock,
 * router-control.sock), on the daemon's libev loop.
 *
 * One request line per connection; the daemon's handler answers it with
 * records (see records.h), which go out once it returns, and then the
 * connection closes. A peer that sends no whole line within the timeout
 * is dropped; a line longer than REC_MAX_REQ is handed over cut short;
 * connections beyond max_conns are closed on accept. A reply that could
 * not get its memory is not sent at all (the peer sees the connection
 * close with no reply), never half of one. */
#ifndef FIEF_RECSERVER_H
#define FIEF_RECSERVER_H

#include <ev.h>
#include <stddef.h>

#define REC_MAX_REQ 512              /* bytes of a request line, its newline included */

struct rec_reply;

/* line: the request, NUL-terminated, its newline (if any) still there. */
typedef void rec_handler(struct rec_reply *r, const char *line, void *data);

struct rec_server {
	struct ev_loop *loop;
	rec_handler *handle;
	void *data;                  /* handed to handle */
	int max_conns;               /* connections open at once */
	double timeout;              /* seconds for a connection's whole life */
	/* private */
	ev_io w;
	int conns;
};

/* Serve the listening socket fd (non-blocking), with the fields above set. */
void rec_server_start(struct rec_server *s, int fd);

void rec_add(struct rec_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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
