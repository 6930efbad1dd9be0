/* proto: encoding and decoding of the session agent protocol.
 *
 * Integers are big-endian. A string is a u32 byte count n, n bytes that
 * contain no NUL, then one NUL byte: the decoder can hand out pointers
 * into the packet, and the count and the NUL must agree. Decoding walks
 * the packet with a cursor whose every read is checked against what is
 * left, and then runs the same validator the encoder runs. */
#include "proto.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

/* ---- reading ---- */

struct proto_rd {
	const uint8_t *p;
	size_t left;
	int err;                         /* first error, sticky */
};

static bool rd_take(struct proto_rd *r, size_t n, const uint8_t **out)
{
	if (r->err)
		return false;
	if (n > r->left) {
		r->err = PROTO_E_TRUNCATED;
		return false;
	}
	*out = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static uint32_t rd_uint(struct proto_rd *r, size_t n)
{
	const uint8_t *b;
	uint32_t v = 0;

	if (!rd_take(r, n, &b))
		return 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | b[i];
	return v;
}

static const char *rd_str(struct proto_rd *r)
{
	uint32_t n = rd_uint(r, 4);
	const uint8_t *b;

	/* n + 1 cannot wrap: the check compares n against left - 1 first. */
	if (!r->err && (r->left == 0 || n > r->left - 1)) {
		r->err = PROTO_E_TRUNCATED;
		return NULL;
	}
	if (!rd_take(r, (size_t)n + 1, &b))
		return NULL;
	if (b[n] != 0 || memchr(b, 0, n)) {
		r->err = PROTO_E_STRING;
		return NULL;
	}
	return (const char *)b;
}

static void rd_env(struct proto_rd *r, struct proto_env *env)
{
	uint32_t n = rd_uint(r, 2);

	/* Checked before the loop: the array has room for PROTO_MAX_ENV. */
	if (!r->err && n > PROTO_MAX_ENV)
		r->err = PROTO_E_ENV_COUNT;
	env->n = 0;
	for (uint32_t i = 0; i < n && !r->err; i++)
		env->v[env->n++] = rd_str(r);
}

static void rd_body(struct proto_rd *r, struct proto_msg *m)
{
	uint32_t v;

	switch (m->type) {
	case PROTO_PTY:
		m->u.pty.rows = (uint16_t)rd_uint(r, 2);
		m->u.pty.cols = (uint16_t)rd_uint(r, 2);
		m->u.pty.xpixel = (uint16_t)rd_uint(r, 2);
		m->u.pty.ypixel = (uint16_t)rd_uint(r, 2);
		m->u.pty.term = rd_str(r);
		m->u.pty.command = rd_str(r);
		rd_env(r, &m->u.pty.env);
		break;
	case PROTO_PIPES:
		m->u.pipes.command = rd_str(r);
		rd_env(r, &m->u.pipes.env);
		break;
	case PROTO_CONNECT:
		m->u.connect.port = (uint16_t)rd_uint(r, 2);
		m->u.connect.host = rd_str(r);
		break;
	case PROTO_SIGNAL:
		v = rd_uint(r, 4);
		/* Out of int range would wrap: make it a value the check refuses. */
		m->u.signo = v > 0xffff ? -1 : (int)v;
		break;
	case PROTO_OK:
		m->u.ok.nfds = (uint8_t)rd_uint(r, 1);
		m->u.ok.pid = rd_uint(r, 4);
		break;
	case PROTO_ERROR:
		m->u.error.code = (uint16_t)rd_uint(r, 2);
		m->u.error.msg = rd_str(r);
		break;
	case PROTO_EXIT:
		m->u.exit.how = (uint8_t)rd_uint(r, 1);
		m->u.exit.value = (uint8_t)rd_uint(r, 1);
		v = rd_uint(r, 1);
		/* One encoding per meaning: the flag is 0 or 1. */
		if (v > 1 && !r->err)
			r->err = PROTO_E_FIELD;
		m->u.exit.core = v == 1;
		break;
	default:
		r->err = PROTO_E_TYPE;
	}
}

static bool type_known(int type)
{
	switch (type) {
	case PROTO_PTY: case PROTO_PIPES: case PROTO_CONNECT: case PROTO_SIGNAL:
	case PROTO_OK: case PROTO_ERROR: case PROTO_EXIT:
		return true;
	}
	return false;
}

/* The header, in a fixed order so each bad packet has one answer:
 * short, magic, version, too big, length, type. */
static int rd_header(struct proto_rd *r, size_t len, uint8_t *type)
{
	uint32_t magic, version, length;

	if (len < PROTO_HEADER_LEN)
		return PROTO_E_SHORT;
	magic = rd_uint(r, 2);
	version = rd_uint(r, 1);
	*type = (uint8_t)rd_uint(r, 1);
	length = rd_uint(r, 4);
	if (magic != PROTO_MAGIC)
		return PROTO_E_MAGIC;
	if (version != PROTO_VERSION)
		return PROTO_E_VERSION;
	if (len > PROTO_MAX_MSG)
		return PROTO_E_TOO_BIG;
	if (length != len)
		return PROTO_E_LENGTH;
	if (!type_known(*type))
		return PROTO_E_TYPE;
	return 0;
}

int proto_decode(const void *buf, size_t len, struct proto_msg *m)
{
	struct proto_rd r = { buf, len, 0 };
	int err;

	memset(m, 0, sizeof *m);
	err = rd_header(&r, len, &m->type);
	if (err)
		return -err;
	rd_body(&r, m);
	if (!r.err && r.left)
		r.err = PROTO_E_TRAILING;
	if (r.err)
		return -r.err;
	return proto_validate(m);
}

static int decode_dir(const void *buf, size_t len, struct proto_msg *m, bool reply)
{
	int ret = proto_decode(buf, len, m);

	if (ret == 0 && ((m->type & 0x80) != 0) != reply)
		return -PROTO_E_TYPE;
	return ret;
}

int proto_decode_request(const void *buf, size_t len, struct proto_msg *m)
{
	return decode_dir(buf, len, m, false);
}

int proto_decode_reply(const void *buf, size_t len, struct proto_msg *m)
{
	return decode_dir(buf, len, m, true);
}

/* ---- field rules ---- */

static bool char_in(char c, const char *extra)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr(extra, c));
}

/* A terminal name becomes TERM and a terminfo lookup: keep it to the
 * characters terminfo names use, so it cannot be a path or carry junk. */
bool proto_term_ok(const char *term)
{
	size_t n = term ? strnlen(term, PROTO_MAX_TERM + 1) : 0;

	if (n == 0 || n > PROTO_MAX_TERM)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!char_in(term[i], "._+-"))
			return false;
	return true;
}

bool proto_env_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > PROTO_MAX_ENV_NAME || (name[0] >= '0' && name[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!char_in(name[i], "_"))
			return false;
	return true;
}

bool proto_env_forbidden(const char *name, size_t len)
{
	static const char *const exact[] = { "HOME", "USER", "LOGNAME", "SHELL", "MAIL", "PATH" };
	static const char *const prefix[] = { "LD_", "FIEF_" };

	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (len == strlen(exact[i]) && !memcmp(name, exact[i], len))
			return true;
	for (size_t i = 0; i < sizeof prefix / sizeof prefix[0]; i++)
		if (len >= strlen(prefix[i]) && !memcmp(name, prefix[i], strlen(prefix[i])))
			return true;
	return false;
}

int proto_env_check(const char *entry)
{
	size_t n = entry ? strnlen(entry, PROTO_MAX_ENV_LEN + 1) : 0;
	const char *eq = n ? memchr(entry, '=', n) : NULL;

	if (n > PROTO_MAX_ENV_LEN || !eq || !proto_env_name_ok(entry, (size_t)(eq - entry)))
		return -PROTO_E_ENV_ENTRY;
	if (proto_env_forbidden(entry, (size_t)(eq - entry)))
		return -PROTO_E_ENV_FORBIDDEN;
	return 0;
}

/* Only literals and "localhost" get past the agent's parser anyway; this
 * keeps names, paths and control bytes out before that. */
bool proto_host_ok(const char *host)
{
	size_t n = host ? strnlen(host, PROTO_MAX_HOST + 1) : 0;

	if (n == 0 || n > PROTO_MAX_HOST)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!char_in(host[i], ".:%_-"))
			return false;
	return true;
}

/* What a user may ask for: the signals of RFC 4254 section 6.10 plus job
 * control and window change. All of them reach only the session's own
 * processes, which already run as the tenant. */
bool proto_signal_ok(int signo)
{
	static const int allowed[] = { SIGHUP,  SIGINT,  SIGQUIT, SIGILL,  SIGABRT, SIGFPE,
				       SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM,
				       SIGTERM, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU,
				       SIGWINCH };

	for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
		if (allowed[i] == signo)
			return true;
	return false;
}

/* ---- validation ---- */

static int check_env(const struct proto_env *env)
{
	if (env->n > PROTO_MAX_ENV)
		return -PROTO_E_ENV_COUNT;
	for (size_t i = 0; i < env->n; i++) {
		int ret = proto_env_check(env->v[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int check_command(const char *cmd)
{
	if (!cmd)
		return -PROTO_E_STRING;
	return strnlen(cmd, PROTO_MAX_COMMAND + 1) > PROTO_MAX_COMMAND ? -PROTO_E_COMMAND : 0;
}

static int check_pty(const struct proto_pty *p)
{
	int ret;

	if (!proto_term_ok(p->term))
		return -PROTO_E_TERM;
	if (p->rows > PROTO_MAX_ROWS || p->cols > PROTO_MAX_COLS || p->xpixel > PROTO_MAX_PIXELS ||
	    p->ypixel > PROTO_MAX_PIXELS)
		return -PROTO_E_WINSIZE;
	ret = check_command(p->command);
	return ret < 0 ? ret : check_env(&p->env);
}

static bool printable(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static int check_exit(const struct proto_exit *e)
{
	if (e->how == PROTO_EXITED)
		return e->core ? -PROTO_E_FIELD : 0;
	if (e->how == PROTO_SIGNALED)
		return e->value >= 1 && e->value <= 64 ? 0 : -PROTO_E_FIELD;
	return -PROTO_E_FIELD;
}

int proto_validate(const struct proto_msg *m)
{
	int ret;

	switch (m->type) {
	case PROTO_PTY:
		return check_pty(&m->u.pty);
	case PROTO_PIPES:
		ret = check_command(m->u.pipes.command);
		return ret < 0 ? ret : check_env(&m->u.pipes.env);
	case PROTO_CONNECT:
		if (!proto_host_ok(m->u.connect.host))
			return -PROTO_E_HOST;
		return m->u.connect.port ? 0 : -PROTO_E_PORT;
	case PROTO_SIGNAL:
		return proto_signal_ok(m->u.signo) ? 0 : -PROTO_E_SIGNAL;
	case PROTO_OK:
		return m->u.ok.nfds >= 1 && m->u.ok.nfds <= PROTO_MAX_FDS ? 0 : -PROTO_E_FIELD;
	case PROTO_ERROR:
		if (!m->u.error.code || !m->u.error.msg)
			return -PROTO_E_FIELD;
		return printable(m->u.error.msg, PROTO_MAX_ERRMSG) ? 0 : -PROTO_E_FIELD;
	case PROTO_EXIT:
		return check_exit(&m->u.exit);
	}
	return -PROTO_E_TYPE;
}

/* ---- writing ---- */

struct proto_wr {
	uint8_t *p;
	size_t cap, len;
	bool full;
};

static void wr_uint(struct proto_wr *w, uint32_t v, size_t n)
{
	if (w->full || w->cap - w->len < n) {
		w->full = true;
		return;
	}
	for (size_t i = 0; i < n; i++)
		w->p[w->len + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	w->len += n;
}

/* Validation ran first, so strlen is bounded by the field limits. */
static void wr_str(struct proto_wr *w, const char *s)
{
	size_t n = strlen(s);

	wr_uint(w, (uint32_t)n, 4);
	if (w->full || w->cap - w->len < n + 1) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->len, s, n + 1);
	w->len += n + 1;
}

static void wr_env(struct proto_wr *w, const struct proto_env *env)
{
	wr_uint(w, (uint32_t)env->n, 2);
	for (size_t i = 0; i < env->n; i++)
		wr_str(w, env->v[i]);
}

static void wr_body(struct proto_wr *w, const struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_PTY:
		wr_uint(w, m->u.pty.rows, 2);
		wr_uint(w, m->u.pty.cols, 2);
		wr_uint(w, m->u.pty.xpixel, 2);
		wr_uint(w, m->u.pty.ypixel, 2);
		wr_str(w, m->u.pty.term);
		wr_str(w, m->u.pty.command);
		wr_env(w, &m->u.pty.env);
		break;
	case PROTO_PIPES:
		wr_str(w, m->u.pipes.command);
		wr_env(w, &m->u.pipes.env);
		break;
	case PROTO_CONNECT:
		wr_uint(w, m->u.connect.port, 2);
		wr_str(w, m->u.connect.host);
		break;
	case PROTO_SIGNAL:
		wr_uint(w, (uint32_t)m->u.signo, 4);
		break;
	case PROTO_OK:
		wr_uint(w, m->u.ok.nfds, 1);
		wr_uint(w, m->u.ok.pid, 4);
		break;
	case PROTO_ERROR:
		wr_uint(w, m->u.error.code, 2);
		wr_str(w, m->u.error.msg);
		break;
	case PROTO_EXIT:
		wr_uint(w, m->u.exit.how, 1);
		wr_uint(w, m->u.exit.value, 1);
		wr_uint(w, m->u.exit.core, 1);
		break;
	}
}

ssize_t proto_encode(const struct proto_msg *m, void *buf, size_t cap)
{
	struct proto_wr w = { buf, cap < PROTO_MAX_MSG ? cap : PROTO_MAX_MSG, 0, false };
	int ret = proto_validate(m);

	if (ret < 0)
		return ret;
	wr_uint(&w, PROTO_MAGIC, 2);
	wr_uint(&w, PROTO_VERSION, 1);
	wr_uint(&w, m->type, 1);
	wr_uint(&w, 0, 4);               /* the length, filled in below */
	wr_body(&w, m);
	if (w.full)
		return -PROTO_E_TOO_BIG;
	for (size_t i = 0; i < 4; i++)
		w.p[4 + i] = (uint8_t)(w.len >> (8 * (3 - i)));
	return (ssize_t)w.len;
}

/* ---- helpers ---- */

void proto_exit_from_status(int status, struct proto_exit *e)
{
	memset(e, 0, sizeof *e);
	if (WIFSIGNALED(status)) {
		e->how = PROTO_SIGNALED;
		e->value = (uint8_t)WTERMSIG(status);
		e->core = WCOREDUMP(status) != 0;
	} else {
		e->how = PROTO_EXITED;
		e->value = WIFEXITED(status) ? (uint8_t)WEXITSTATUS(status) : 255;
	}
}

int proto_exit_code(const struct proto_exit *e)
{
	return e->how == PROTO_SIGNALED ? 128 + e->value : e->value;
}

const char *proto_strerror(int code)
{
	static const char *const msg[] = {
		[PROTO_E_SHORT] = "message shorter than a header",
		[PROTO_E_MAGIC] = "not an agent protocol message",
		[PROTO_E_VERSION] = "unsupported protocol version",
		[PROTO_E_TYPE] = "unknown or unexpected message type",
		[PROTO_E_LENGTH] = "header length does not match the message size",
		[PROTO_E_TOO_BIG] = "message too big",
		[PROTO_E_TRUNCATED] = "message truncated",
		[PROTO_E_TRAILING] = "unexpected bytes after the message",
		[PROTO_E_STRING] = "malformed string",
		[PROTO_E_TERM] = "invalid terminal name",
		[PROTO_E_WINSIZE] = "window size out of range",
		[PROTO_E_COMMAND] = "command too long",
		[PROTO_E_ENV_COUNT] = "too many environment variables",
		[PROTO_E_ENV_ENTRY] = "invalid environment variable",
		[PROTO_E_ENV_FORBIDDEN] = "environment variable not allowed",
		[PROTO_E_HOST] = "invalid host",
		[PROTO_E_PORT] = "invalid port",
		[PROTO_E_SIGNAL] = "signal not allowed",
		[PROTO_E_FIELD] = "field out of range",
		[PROTO_E_BUSY] = "agent busy",
		[PROTO_E_TIMEOUT] = "timed out",
		[PROTO_E_STATE] = "message not expected now",
		[PROTO_E_SPAWN] = "cannot start the session",
		[PROTO_E_CONNECT] = "cannot connect",
		[PROTO_E_INTERNAL] = "agent error",
		[PROTO_E_FDS] = "unexpected file descriptors",
		[PROTO_E_PEER] = "peer not allowed",
	};

	if (code < 0)
		code = -code;
	if (code <= 0 || (size_t)code >= sizeof msg / sizeof msg[0] || !msg[code])
		return "unknown error";
	return msg[code];
}

const char *proto_type_name(int type)
{
	switch (type) {
	case PROTO_PTY: return "pty";
	case PROTO_PIPES: return "pipes";
	case PROTO_CONNECT: return "connect";
	case PROTO_SIGNAL: return "signal";
	case PROTO_OK: return "ok";
	case PROTO_ERROR: return "error";
	case PROTO_EXIT: return "exit";
	}
	return "unknown";
}
