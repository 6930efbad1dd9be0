/* authkeys: the OpenSSH authorized_keys format, parsed by us.
 *
 * The same parser reads the keys of a tenant file (ssh.authorized_keys)
 * and the ~/.ssh/authorized_keys a tenant writes itself, which is hostile
 * input. Every option is either honoured or makes the whole line refused
 * with a reason: a restriction we silently ignored would give a key more
 * than its owner meant it to have. The module needs only libc, so it is
 * unit-tested and fuzzed on its own. */
#ifndef FIEF_GATEWAY_AUTHKEYS_H
#define FIEF_GATEWAY_AUTHKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTHKEYS_MAX_FILE (64 * 1024)   /* bytes of authorized_keys we accept */
#define AUTHKEYS_MAX_LINE (16 * 1024)   /* bytes of one line */
#define AUTHKEYS_MAX_KEYS 512           /* keys kept from one file */
#define AUTHKEYS_MAX_BLOB 8192          /* bytes of one decoded public key */
#define AUTHKEYS_WHY 160

/* One accepted line: the key and what its options allow. */
struct authkey {
	char type[48];                  /* "ssh-ed25519", as written */
	uint8_t *blob;                  /* the decoded key (wire format) */
	size_t blob_len;
	bool no_pty;                    /* no-pty, or restrict without pty */
	bool no_port_forwarding;        /* no-port-forwarding, or restrict */
	char *command;                  /* command="...": forced command, or NULL */
	char *from;                     /* from="...": pattern list, or NULL */
	char *permitopen;               /* permitopen="..." entries joined by ',', or NULL */
	char *comment;                  /* may be "" */
	int line;                       /* 1-based line number in its file */
};

struct authkeys {
	struct authkey *v;
	size_t n;
};

/* Parse one line (no newline). Returns 1 with *k filled (free it with
 * authkey_free), 0 for a blank or comment line, -1 when the line is
 * refused, with the reason in why. */
int authkeys_parse_line(const char *line, size_t len, struct authkey *k, char *why, size_t wlen);
void authkey_free(struct authkey *k);

/* Called for every refused line of a file. */
typedef void (*authkeys_warn_fn)(void *data, int line, const char *why);

/* Parse a whole file (text need not end in a NUL or a newline). Refused
 * lines are reported and skipped; the others land in *out. 0, or -1 when
 * memory runs out. */
int authkeys_parse(const char *text, size_t len, struct authkeys *out, authkeys_warn_fn warn,
		   void *data);
void authkeys_free(struct authkeys *ks);

/* The entry whose key is exactly this wire-format blob, or NULL. */
const struct authkey *authkeys_find(const struct authkeys *ks, const uint8_t *blob, size_t len);

/* Does a from= pattern list admit the client address ip (numeric text)?
 * 1 yes, 0 no, -1 when the list is malformed (then the key is refused). */
int authkeys_from_match(const char *patterns, const char *ip);

/* Does a permitopen list allow a connection to host:port? */
bool authkeys_permitopen(const char *list, const char *host, unsigned port);

/* Decode standard base64 (padding optional). Returns the byte count or
 * -1 on a bad character or length. out must hold len * 3 / 4 + 3 bytes. */
long authkeys_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

#endif
