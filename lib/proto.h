/* proto: the session agent protocol (docs/protocol.md).
 *
 * One message per SOCK_SEQPACKET packet: an 8-byte header (magic,
 * version, type, total length) and a body whose layout depends on the
 * type. Every field is bounded; the decoder reads only inside the packet
 * it was given and checks every bound the encoder checks, so both ends
 * agree on what is valid. Decoded strings point into the packet buffer
 * (the wire format carries their NUL terminator), so a decoded message
 * lives as long as that buffer. */
#ifndef FIEF_PROTO_H
#define FIEF_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_MAGIC        0xF1EFu
#define PROTO_VERSION      1
#define PROTO_HEADER_LEN   8

#define PROTO_MAX_MSG      (128 * 1024)   /* whole packet, header included */
#define PROTO_MAX_TERM     64             /* bytes of a terminal name */
#define PROTO_MAX_COMMAND  (64 * 1024)    /* bytes of a shell command */
#define PROTO_MAX_ENV      256            /* entries */
#define PROTO_MAX_ENV_LEN  (8 * 1024)     /* bytes of one NAME=value */
#define PROTO_MAX_ENV_NAME 128            /* bytes of NAME */
#define PROTO_MAX_HOST     255            /* bytes of a CONNECT host */
#define PROTO_MAX_ROWS     4096
#define PROTO_MAX_COLS     4096
#define PROTO_MAX_PIXELS   32768
#define PROTO_MAX_ERRMSG   255
#define PROTO_MAX_FDS      3              /* fds that ride on one OK */

/* A closed set: anything else is PROTO_E_TYPE. Requests go to the agent,
 * replies (high bit set) come back. */
enum proto_type {
	PROTO_PTY = 0x01,      /* pty session: term, window, command, env */
	PROTO_PIPES = 0x02,    /* pipes session: command, env */
	PROTO_CONNECT = 0x03,  /* TCP connection inside the tenant */
	PROTO_SIGNAL = 0x04,   /* signal the running session */
	PROTO_OK = 0x81,       /* request served; fds attached */
	PROTO_ERROR = 0x82,    /* request refused; the agent closes */
	PROTO_EXIT = 0x83,     /* the session's child ended; the agent closes */
};

/* Why a message is refused. Decoding returns -code; an ERROR reply
 * carries code. Values are part of the wire format: append only. */
enum proto_err {
	PROTO_E_SHORT = 1,       /* fewer bytes than a header */
	PROTO_E_MAGIC,           /* not our protocol */
	PROTO_E_VERSION,         /* a version we do not speak */
	PROTO_E_TYPE,            /* unknown type, or not valid in this direction */
	PROTO_E_LENGTH,          /* header length differs from the packet size */
	PROTO_E_TOO_BIG,         /* over PROTO_MAX_MSG */
	PROTO_E_TRUNCATED,       /* a field runs past the end of the packet */
	PROTO_E_TRAILING,        /* bytes left after the last field */
	PROTO_E_STRING,          /* string without its NUL, or with a NUL inside */
	PROTO_E_TERM,            /* empty, too long, or a bad character */
	PROTO_E_WINSIZE,         /* rows, cols or pixels out of range */
	PROTO_E_COMMAND,         /* command too long */
	PROTO_E_ENV_COUNT,       /* too many env entries */
	PROTO_E_ENV_ENTRY,       /* not NAME=value, bad NAME, or too long */
	PROTO_E_ENV_FORBIDDEN,   /* a name the client may never set */
	PROTO_E_HOST,            /* empty, too long, or a bad character */
	PROTO_E_PORT,            /* port 0 */
	PROTO_E_SIGNAL,          /* a signal not in the allowed set */
	PROTO_E_FIELD,           /* any other field out of range */
	/* Only in ERROR replies, from the agent: */
	PROTO_E_BUSY = 32,       /* too many connections */
	PROTO_E_TIMEOUT,         /* no request in time, or connect timed out */
	PROTO_E_STATE,           /* a valid message at the wrong time */
	PROTO_E_SPAWN,           /* could not start the child */
	PROTO_E_CONNECT,         /* could not connect */
	PROTO_E_INTERNAL,        /* the agent failed (out of fds, memory) */
	PROTO_E_FDS,             /* file descriptors where none belong */
	PROTO_E_PEER,            /* the peer may not use the agent */
};

struct proto_env {
	const char *v[PROTO_MAX_ENV];    /* NAME=value */
	size_t n;
};

struct proto_pty {
	const char *term;                /* e.g. "xterm-256color" */
	uint16_t rows, cols, xpixel, ypixel;
	const char *command;             /* "" = login shell */
	struct proto_env env;
};

struct proto_pipes {
	const char *command;             /* "" = login shell */
	struct proto_env env;
};

struct proto_connect {
	const char *host;                /* numeric IPv4/IPv6, or "localhost" */
	uint16_t port;
};

enum proto_exit_how { PROTO_EXITED = 0, PROTO_SIGNALED = 1 };

struct proto_exit {
	uint8_t how;                     /* enum proto_exit_how */
	uint8_t value;                   /* exit status, or signal number */
	bool core;                       /* only with PROTO_SIGNALED */
};

struct proto_ok {
	uint8_t nfds;                    /* fds attached: 1 (pty, connect) or 3 */
	uint32_t pid;                    /* the child's pid inside the tenant, 0 = none */
};

struct proto_error {
	uint16_t code;                   /* enum proto_err (others: unknown, still valid) */
	const char *msg;                 /* printable ASCII, may be "" */
};

struct proto_msg {
	uint8_t type;                    /* enum proto_type */
	union {
		struct proto_pty pty;
		struct proto_pipes pipes;
		struct proto_connect connect;
		int signo;               /* PROTO_SIGNAL */
		struct proto_ok ok;
		struct proto_error error;
		struct proto_exit exit;
	} u;
};

/* Decode one packet of len bytes. Returns 0 or -enum proto_err; on
 * success strings in *m point into buf. Reads nothing outside buf. */
int proto_decode(const void *buf, size_t len, struct proto_msg *m);
/* The same, but only requests (agent side) or only replies (requester
 * side) are valid; the other direction is PROTO_E_TYPE. */
int proto_decode_request(const void *buf, size_t len, struct proto_msg *m);
int proto_decode_reply(const void *buf, size_t len, struct proto_msg *m);

/* Check m against every bound, as the decoder would. 0 or -proto_err. */
int proto_validate(const struct proto_msg *m);
/* Validate and encode m into buf. Returns the packet length or
 * -proto_err; -PROTO_E_TOO_BIG also when cap is too small. */
ssize_t proto_encode(const struct proto_msg *m, void *buf, size_t cap);

/* Field rules, shared with the gateway so it can refuse early. */
bool proto_term_ok(const char *term);
bool proto_env_name_ok(const char *name, size_t len);
/* Names the agent never takes from a request, whatever the gateway
 * forwards: the login identity (HOME USER LOGNAME SHELL MAIL), PATH,
 * the dynamic loader's LD_* and our own FIEF_*. */
bool proto_env_forbidden(const char *name, size_t len);
/* 0, or -PROTO_E_ENV_ENTRY / -PROTO_E_ENV_FORBIDDEN for one NAME=value. */
int proto_env_check(const char *entry);
bool proto_host_ok(const char *host);
bool proto_signal_ok(int signo);

/* Fill an EXIT body from a wait(2) status. */
void proto_exit_from_status(int status, struct proto_exit *e);
/* The conventional shell status: code, or 128 + signal. */
int proto_exit_code(const struct proto_exit *e);

const char *proto_strerror(int code);   /* code or -code */
const char *proto_type_name(int type);

#endif
