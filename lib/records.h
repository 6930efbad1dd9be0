/* records: the key=value reply lines of the daemons' control sockets
 * (launcher.sock, router-control.sock), and JSON output for them.
 *
 * A record is one line of space-separated key=value fields; values are
 * percent-encoded (%XX) so that a record stays one line. Parsing works in
 * place on the line. JSON strings are written as valid UTF-8 whatever the
 * bytes: an invalid sequence becomes U+FFFD. */
#ifndef FIEF_RECORDS_H
#define FIEF_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define REC_MAX_FIELDS 48

struct record {
	char *key[REC_MAX_FIELDS];
	char *val[REC_MAX_FIELDS];
	int n;
};

/* Decode %XX escapes in place. */
void rec_unescape(char *s);
/* Split one line into fields, in place; fields without '=' are skipped,
 * fields beyond REC_MAX_FIELDS are dropped. */
void rec_parse(char *line, struct record *r);
/* A field's value, or "" when absent. */
const char *rec_get(const struct record *r, const char *key);
/* Only decimal digits (and at least one): written to JSON as a number. */
bool rec_is_number(const char *s);

/* JSON text: a string (quoted, escaped, valid UTF-8) of len bytes. */
void json_string_n(FILE *out, const char *s, size_t len);
void json_string(FILE *out, const char *s);
/* The record as one JSON object, numbers as numbers (except for the keys
 * "name" and, when not NULL, without the field `skip`. */
void rec_json(FILE *out, const struct record *r, const char *skip);

/* Connect to a unix stream socket, send req, read the whole reply (until
 * the peer closes, at most about max bytes, all within timeout_ms: what
 * came by then is the reply). Never blocks past the deadline, not even in
 * connect. Returns 0 with a NUL-terminated *reply, or -errno (ENOENT,
 * ECONNREFUSED: nobody there; EAGAIN: its backlog is full). */
int rec_request(const char *path, const char *req, size_t max, int timeout_ms, char **reply);

#endif
