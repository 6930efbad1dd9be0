/* Tests for lib/proto.c and lib/fdpass.c: every message round-trips, a
 * table of malformed packets each gets its own error, no prefix or byte
 * change of a valid packet makes the decoder read outside it, and fds
 * pass (or are refused and closed) as promised. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdpass.h"
#include "proto.h"

/* A packet buffer per test, sized for the largest message plus slack. */
struct fx {
	uint8_t buf[PROTO_MAX_MSG + 64];
	uint8_t copy[PROTO_MAX_MSG + 64];
	char big[PROTO_MAX_COMMAND + 2];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	if (!f)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

/* Encode m, decode it back, and check the bytes are canonical: encoding
 * the decoded message gives the same packet. */
static ssize_t roundtrip(struct fx *f, const struct proto_msg *m, struct proto_msg *out)
{
	ssize_t n = proto_encode(m, f->buf, sizeof f->buf), n2;

	assert_true(n >= PROTO_HEADER_LEN);
	assert_int_equal(proto_decode(f->buf, (size_t)n, out), 0);
	assert_int_equal(out->type, m->type);
	n2 = proto_encode(out, f->copy, sizeof f->copy);
	assert_int_equal(n2, n);
	assert_memory_equal(f->buf, f->copy, (size_t)n);
	return n;
}

/* ---- round trips ---- */

static void test_pty_roundtrip(void **state)
{
	struct proto_msg m = { .type = PROTO_PTY }, d;

	m.u.pty = (struct proto_pty){ .term = "xterm-256color", .rows = 50, .cols = 132,
				      .xpixel = 1024, .ypixel = 768, .command = "ls -l 'a b'" };
	m.u.pty.env.v[0] = "LANG=de_DE.UTF-8";
	m.u.pty.env.v[1] = "LC_ALL=C";
	m.u.pty.env.v[2] = "EMPTY=";
	m.u.pty.env.n = 3;
	roundtrip(*state, &m, &d);
	assert_string_equal(d.u.pty.term, "xterm-256color");
	assert_int_equal(d.u.pty.rows, 50);
	assert_int_equal(d.u.pty.cols, 132);
	assert_int_equal(d.u.pty.xpixel, 1024);
	assert_int_equal(d.u.pty.ypixel, 768);
	assert_string_equal(d.u.pty.command, "ls -l 'a b'");
	assert_int_equal(d.u.pty.env.n, 3);
	assert_string_equal(d.u.pty.env.v[2], "EMPTY=");
}

static void test_pty_login_shell(void **state)
{
	struct proto_msg m = { .type = PROTO_PTY }, d;

	m.u.pty = (struct proto_pty){ .term = "vt100", .command = "" };
	roundtrip(*state, &m, &d);
	assert_string_equal(d.u.pty.command, "");
	assert_int_equal(d.u.pty.env.n, 0);
	assert_int_equal(d.u.pty.rows, 0);
}

static void test_pipes_roundtrip(void **state)
{
	struct proto_msg m = { .type = PROTO_PIPES }, d;

	m.u.pipes.command = "git-receive-pack 'repo.git'";
	m.u.pipes.env.v[0] = "GIT_PROTOCOL=version=2";
	m.u.pipes.env.n = 1;
	roundtrip(*state, &m, &d);
	assert_string_equal(d.u.pipes.command, "git-receive-pack 'repo.git'");
	assert_string_equal(d.u.pipes.env.v[0], "GIT_PROTOCOL=version=2");
}

static void test_connect_roundtrip(void **state)
{
	static const char *const hosts[] = { "127.0.0.1", "::1", "fe80::1%lo", "localhost" };
	struct proto_msg m = { .type = PROTO_CONNECT }, d;

	for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
		m.u.connect.host = hosts[i];
		m.u.connect.port = (uint16_t)(6379 + i);
		roundtrip(*state, &m, &d);
		assert_string_equal(d.u.connect.host, hosts[i]);
		assert_int_equal(d.u.connect.port, 6379 + i);
	}
	m.u.connect.port = 65535;
	roundtrip(*state, &m, &d);
	assert_int_equal(d.u.connect.port, 65535);
}

static void test_signal_roundtrip(void **state)
{
	static const int sigs[] = { SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2, SIGTERM,
				    SIGCONT, SIGSTOP, SIGTSTP, SIGWINCH };
	struct proto_msg m = { .type = PROTO_SIGNAL }, d;

	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		m.u.signo = sigs[i];
		roundtrip(*state, &m, &d);
		assert_int_equal(d.u.signo, sigs[i]);
	}
}

static void test_replies_roundtrip(void **state)
{
	struct proto_msg m = { .type = PROTO_OK, .u.ok = { 3, 4242 } }, d;

	roundtrip(*state, &m, &d);
	assert_int_equal(d.u.ok.nfds, 3);
	assert_int_equal(d.u.ok.pid, 4242);

	m = (struct proto_msg){ .type = PROTO_ERROR };
	m.u.error = (struct proto_error){ PROTO_E_SPAWN, "cannot start /bin/zsh" };
	roundtrip(*state, &m, &d);
	assert_int_equal(d.u.error.code, PROTO_E_SPAWN);
	assert_string_equal(d.u.error.msg, "cannot start /bin/zsh");

	m = (struct proto_msg){ .type = PROTO_EXIT, .u.exit = { PROTO_EXITED, 42, false } };
	roundtrip(*state, &m, &d);
	assert_int_equal(d.u.exit.how, PROTO_EXITED);
	assert_int_equal(d.u.exit.value, 42);

	m = (struct proto_msg){ .type = PROTO_EXIT, .u.exit = { PROTO_SIGNALED, SIGSEGV, true } };
	roundtrip(*state, &m, &d);
	assert_int_equal(d.u.exit.how, PROTO_SIGNALED);
	assert_int_equal(d.u.exit.value, SIGSEGV);
	assert_true(d.u.exit.core);
}

/* The largest values every bound allows are accepted. */
static void test_bounds_accepted(void **state)
{
	struct fx *f = *state;
	static char term[PROTO_MAX_TERM + 1], entry[PROTO_MAX_ENV_LEN + 1];
	struct proto_msg m = { .type = PROTO_PTY }, d;

	memset(term, 'x', PROTO_MAX_TERM);
	memset(f->big, 'c', PROTO_MAX_COMMAND);
	f->big[PROTO_MAX_COMMAND] = 0;
	m.u.pty = (struct proto_pty){ .term = term, .rows = PROTO_MAX_ROWS, .cols = PROTO_MAX_COLS,
				      .xpixel = PROTO_MAX_PIXELS, .ypixel = PROTO_MAX_PIXELS,
				      .command = f->big };
	roundtrip(f, &m, &d);

	memcpy(entry, "NAME=", 5);
	memset(entry + 5, 'v', PROTO_MAX_ENV_LEN - 5);
	m = (struct proto_msg){ .type = PROTO_PIPES };
	m.u.pipes.command = "";
	m.u.pipes.env.v[0] = entry;
	m.u.pipes.env.n = 1;
	roundtrip(f, &m, &d);
	assert_int_equal(strlen(d.u.pipes.env.v[0]), PROTO_MAX_ENV_LEN);

	for (size_t i = 0; i < PROTO_MAX_ENV; i++)
		m.u.pipes.env.v[i] = "LC_ALL=C";
	m.u.pipes.env.n = PROTO_MAX_ENV;
	roundtrip(f, &m, &d);
	assert_int_equal(d.u.pipes.env.n, PROTO_MAX_ENV);
}

/* The encoder refuses what the decoder would, with the same code. */
static void test_encoder_validates(void **state)
{
	struct fx *f = *state;
	struct proto_msg m = { .type = PROTO_PTY };

	m.u.pty = (struct proto_pty){ .term = "xterm;rm", .command = "" };
	assert_int_equal(proto_encode(&m, f->buf, sizeof f->buf), -PROTO_E_TERM);
	m.u.pty.term = "xterm";
	m.u.pty.env.v[0] = "LD_PRELOAD=/tmp/x.so";
	m.u.pty.env.n = 1;
	assert_int_equal(proto_encode(&m, f->buf, sizeof f->buf), -PROTO_E_ENV_FORBIDDEN);
	m = (struct proto_msg){ .type = PROTO_SIGNAL, .u.signo = 0 };
	assert_int_equal(proto_encode(&m, f->buf, sizeof f->buf), -PROTO_E_SIGNAL);
	m = (struct proto_msg){ .type = PROTO_ERROR, .u.error = { PROTO_E_BUSY, "tab\there" } };
	assert_int_equal(proto_encode(&m, f->buf, sizeof f->buf), -PROTO_E_FIELD);
	m = (struct proto_msg){ .type = 0x42 };
	assert_int_equal(proto_encode(&m, f->buf, sizeof f->buf), -PROTO_E_TYPE);
	/* A buffer too small is refused, never overrun. */
	m = (struct proto_msg){ .type = PROTO_CONNECT, .u.connect = { "127.0.0.1", 80 } };
	assert_int_equal(proto_encode(&m, f->buf, 12), -PROTO_E_TOO_BIG);
}

static void test_encoder_total_size(void **state)
{
	struct fx *f = *state;
	static char entry[PROTO_MAX_ENV_LEN + 1];
	struct proto_msg m = { .type = PROTO_PIPES };

	/* 64 KiB of command and 16 full env entries: over 128 KiB in all. */
	memset(f->big, 'c', PROTO_MAX_COMMAND);
	f->big[PROTO_MAX_COMMAND] = 0;
	memcpy(entry, "A=", 2);
	memset(entry + 2, 'v', PROTO_MAX_ENV_LEN - 2);
	m.u.pipes.command = f->big;
	for (size_t i = 0; i < 16; i++)
		m.u.pipes.env.v[i] = entry;
	m.u.pipes.env.n = 16;
	assert_int_equal(proto_encode(&m, f->buf, sizeof f->buf), -PROTO_E_TOO_BIG);
}

/* ---- malformed packets ---- */

/* A raw packet writer that bypasses validation. */
struct tb {
	uint8_t b[PROTO_MAX_MSG + 64];
	size_t n;
};

static void tb_u(struct tb *t, uint32_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		t->b[t->n++] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static void tb_bytes(struct tb *t, const void *p, size_t n)
{
	memcpy(t->b + t->n, p, n);
	t->n += n;
}

static void tb_str(struct tb *t, const char *s)
{
	tb_u(t, (uint32_t)strlen(s), 4);
	tb_bytes(t, s, strlen(s) + 1);
}

static void tb_hdr(struct tb *t, uint8_t type)
{
	t->n = 0;
	tb_u(t, PROTO_MAGIC, 2);
	tb_u(t, PROTO_VERSION, 1);
	tb_u(t, type, 1);
	tb_u(t, 0, 4);
}

/* Set the header length to the bytes written so far. */
static void tb_done(struct tb *t)
{
	for (size_t i = 0; i < 4; i++)
		t->b[4 + i] = (uint8_t)(t->n >> (8 * (3 - i)));
}

static void tb_pipes(struct tb *t, const char *cmd, const char *env1)
{
	tb_hdr(t, PROTO_PIPES);
	tb_str(t, cmd);
	tb_u(t, env1 ? 1 : 0, 2);
	if (env1)
		tb_str(t, env1);
	tb_done(t);
}

static void tb_pty(struct tb *t, const char *term, uint16_t rows, uint16_t cols)
{
	tb_hdr(t, PROTO_PTY);
	tb_u(t, rows, 2);
	tb_u(t, cols, 2);
	tb_u(t, 0, 2);
	tb_u(t, 0, 2);
	tb_str(t, term);
	tb_str(t, "");
	tb_u(t, 0, 2);
	tb_done(t);
}

#define BAD(fn) static void fn(struct tb *t)
BAD(bad_empty) { t->n = 0; }
BAD(bad_short) { tb_hdr(t, PROTO_PIPES); t->n = 7; }
BAD(bad_magic) { tb_pipes(t, "", NULL); t->b[0] = 0x12; }
BAD(bad_version2) { tb_pipes(t, "", NULL); t->b[2] = 2; }
BAD(bad_version0) { tb_pipes(t, "", NULL); t->b[2] = 0; }
BAD(bad_type) { tb_hdr(t, 0x7f); tb_done(t); }
BAD(bad_type_zero) { tb_hdr(t, 0); tb_done(t); }
BAD(bad_len_small) { tb_pipes(t, "", NULL); t->b[7] = 8; }
BAD(bad_len_large) { tb_pipes(t, "", NULL); t->b[6] = 1; }
BAD(bad_oversized) { tb_hdr(t, PROTO_PIPES); t->n = PROTO_MAX_MSG + 1; tb_done(t); }
BAD(bad_trunc_u16) { tb_hdr(t, PROTO_CONNECT); tb_u(t, 1, 1); tb_done(t); }
BAD(bad_trunc_str) { tb_hdr(t, PROTO_PIPES); tb_u(t, 100, 4); tb_bytes(t, "abc", 3); tb_done(t); }
BAD(bad_trunc_strlen_max)
{
	tb_hdr(t, PROTO_PIPES);
	tb_u(t, 0xffffffff, 4);
	tb_bytes(t, "a", 1);
	tb_done(t);
}
BAD(bad_trunc_env)
{
	tb_hdr(t, PROTO_PIPES);
	tb_str(t, "");
	tb_u(t, 3, 2);
	tb_str(t, "A=1");
	tb_done(t);
}
BAD(bad_trailing) { tb_pipes(t, "", NULL); tb_u(t, 0, 1); tb_done(t); }
BAD(bad_no_nul)
{
	tb_hdr(t, PROTO_PIPES);
	tb_u(t, 2, 4);
	tb_bytes(t, "abX", 3);
	tb_u(t, 0, 2);
	tb_done(t);
}
BAD(bad_inner_nul)
{
	tb_hdr(t, PROTO_PIPES);
	tb_u(t, 3, 4);
	tb_bytes(t, "a\0c", 4);
	tb_u(t, 0, 2);
	tb_done(t);
}
BAD(bad_term_chars) { tb_pty(t, "xterm\x1b[31m", 24, 80); }
BAD(bad_term_path) { tb_pty(t, "../../etc/passwd", 24, 80); }
BAD(bad_term_empty) { tb_pty(t, "", 24, 80); }
BAD(bad_term_long)
{
	tb_pty(t, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 24, 80);
}
BAD(bad_rows) { tb_pty(t, "xterm", PROTO_MAX_ROWS + 1, 80); }
BAD(bad_cols) { tb_pty(t, "xterm", 24, 65535); }
BAD(bad_command_long)
{
	static char cmd[PROTO_MAX_COMMAND + 2];
	memset(cmd, 'c', PROTO_MAX_COMMAND + 1);
	tb_pipes(t, cmd, NULL);
}
BAD(bad_env_count)
{
	tb_hdr(t, PROTO_PIPES);
	tb_str(t, "");
	tb_u(t, PROTO_MAX_ENV + 1, 2);
	for (int i = 0; i <= PROTO_MAX_ENV; i++)
		tb_str(t, "A=1");
	tb_done(t);
}
BAD(bad_env_count_huge) { tb_hdr(t, PROTO_PIPES); tb_str(t, ""); tb_u(t, 65535, 2); tb_done(t); }
BAD(bad_env_noeq) { tb_pipes(t, "", "NOVALUE"); }
BAD(bad_env_name) { tb_pipes(t, "", "9LIVES=x"); }
BAD(bad_env_name_dash) { tb_pipes(t, "", "A-B=x"); }
BAD(bad_env_empty_name) { tb_pipes(t, "", "=x"); }
BAD(bad_env_long)
{
	static char e[PROTO_MAX_ENV_LEN + 2];
	memcpy(e, "A=", 2);
	memset(e + 2, 'v', PROTO_MAX_ENV_LEN - 1);
	tb_pipes(t, "", e);
}
BAD(bad_env_home) { tb_pipes(t, "", "HOME=/root"); }
BAD(bad_env_path) { tb_pipes(t, "", "PATH=/tmp"); }
BAD(bad_env_ld) { tb_pipes(t, "", "LD_PRELOAD=/tmp/evil.so"); }
BAD(bad_env_fief) { tb_pipes(t, "", "FIEF_SOCKET=/x"); }
BAD(bad_host_empty) { tb_hdr(t, PROTO_CONNECT); tb_u(t, 80, 2); tb_str(t, ""); tb_done(t); }
BAD(bad_host_chars)
{
	tb_hdr(t, PROTO_CONNECT);
	tb_u(t, 80, 2);
	tb_str(t, "/run/x.sock");
	tb_done(t);
}
BAD(bad_port) { tb_hdr(t, PROTO_CONNECT); tb_u(t, 0, 2); tb_str(t, "127.0.0.1"); tb_done(t); }
BAD(bad_signal) { tb_hdr(t, PROTO_SIGNAL); tb_u(t, SIGSYS, 4); tb_done(t); }
BAD(bad_signal_wrap) { tb_hdr(t, PROTO_SIGNAL); tb_u(t, 0x80000001u, 4); tb_done(t); }
BAD(bad_ok_nfds) { tb_hdr(t, PROTO_OK); tb_u(t, 4, 1); tb_u(t, 1, 4); tb_done(t); }
BAD(bad_error_code) { tb_hdr(t, PROTO_ERROR); tb_u(t, 0, 2); tb_str(t, "x"); tb_done(t); }
BAD(bad_error_ctrl)
{
	tb_hdr(t, PROTO_ERROR);
	tb_u(t, 1, 2);
	tb_str(t, "\x1b]0;pwned\a");
	tb_done(t);
}
BAD(bad_exit_how)
{
	tb_hdr(t, PROTO_EXIT);
	tb_u(t, 2, 1);
	tb_u(t, 0, 1);
	tb_u(t, 0, 1);
	tb_done(t);
}
BAD(bad_exit_core)
{
	tb_hdr(t, PROTO_EXIT);
	tb_u(t, 0, 1);
	tb_u(t, 0, 1);
	tb_u(t, 1, 1);
	tb_done(t);
}
BAD(bad_exit_flag)
{
	tb_hdr(t, PROTO_EXIT);
	tb_u(t, 1, 1);
	tb_u(t, 9, 1);
	tb_u(t, 2, 1);
	tb_done(t);
}
BAD(bad_exit_sig0)
{
	tb_hdr(t, PROTO_EXIT);
	tb_u(t, 1, 1);
	tb_u(t, 0, 1);
	tb_u(t, 0, 1);
	tb_done(t);
}

static const struct bad_case {
	const char *name;
	void (*build)(struct tb *t);
	int want;
} bad_cases[] = {
	{ "empty packet", bad_empty, PROTO_E_SHORT },
	{ "7-byte header", bad_short, PROTO_E_SHORT },
	{ "wrong magic", bad_magic, PROTO_E_MAGIC },
	{ "version 2", bad_version2, PROTO_E_VERSION },
	{ "version 0", bad_version0, PROTO_E_VERSION },
	{ "unknown type", bad_type, PROTO_E_TYPE },
	{ "type 0", bad_type_zero, PROTO_E_TYPE },
	{ "header length too small", bad_len_small, PROTO_E_LENGTH },
	{ "header length too large", bad_len_large, PROTO_E_LENGTH },
	{ "over 128 KiB", bad_oversized, PROTO_E_TOO_BIG },
	{ "port cut in half", bad_trunc_u16, PROTO_E_TRUNCATED },
	{ "string past the end", bad_trunc_str, PROTO_E_TRUNCATED },
	{ "string length 2^32-1", bad_trunc_strlen_max, PROTO_E_TRUNCATED },
	{ "fewer env entries than counted", bad_trunc_env, PROTO_E_TRUNCATED },
	{ "trailing byte", bad_trailing, PROTO_E_TRAILING },
	{ "string without NUL", bad_no_nul, PROTO_E_STRING },
	{ "NUL inside a string", bad_inner_nul, PROTO_E_STRING },
	{ "escape in term", bad_term_chars, PROTO_E_TERM },
	{ "path as term", bad_term_path, PROTO_E_TERM },
	{ "empty term", bad_term_empty, PROTO_E_TERM },
	{ "65-byte term", bad_term_long, PROTO_E_TERM },
	{ "rows over the bound", bad_rows, PROTO_E_WINSIZE },
	{ "cols 65535", bad_cols, PROTO_E_WINSIZE },
	{ "command 64 KiB + 1", bad_command_long, PROTO_E_COMMAND },
	{ "257 env entries", bad_env_count, PROTO_E_ENV_COUNT },
	{ "65535 env entries claimed", bad_env_count_huge, PROTO_E_ENV_COUNT },
	{ "env without =", bad_env_noeq, PROTO_E_ENV_ENTRY },
	{ "env name starts with a digit", bad_env_name, PROTO_E_ENV_ENTRY },
	{ "env name with a dash", bad_env_name_dash, PROTO_E_ENV_ENTRY },
	{ "env with empty name", bad_env_empty_name, PROTO_E_ENV_ENTRY },
	{ "env entry 8 KiB + 1", bad_env_long, PROTO_E_ENV_ENTRY },
	{ "env HOME", bad_env_home, PROTO_E_ENV_FORBIDDEN },
	{ "env PATH", bad_env_path, PROTO_E_ENV_FORBIDDEN },
	{ "env LD_PRELOAD", bad_env_ld, PROTO_E_ENV_FORBIDDEN },
	{ "env FIEF_*", bad_env_fief, PROTO_E_ENV_FORBIDDEN },
	{ "empty host", bad_host_empty, PROTO_E_HOST },
	{ "path as host", bad_host_chars, PROTO_E_HOST },
	{ "port 0", bad_port, PROTO_E_PORT },
	{ "SIGSYS", bad_signal, PROTO_E_SIGNAL },
	{ "signal 2^31+1", bad_signal_wrap, PROTO_E_SIGNAL },
	{ "OK with 4 fds", bad_ok_nfds, PROTO_E_FIELD },
	{ "ERROR code 0", bad_error_code, PROTO_E_FIELD },
	{ "ERROR with escapes", bad_error_ctrl, PROTO_E_FIELD },
	{ "EXIT how 2", bad_exit_how, PROTO_E_FIELD },
	{ "EXIT core without signal", bad_exit_core, PROTO_E_FIELD },
	{ "EXIT core flag 2", bad_exit_flag, PROTO_E_FIELD },
	{ "EXIT signal 0", bad_exit_sig0, PROTO_E_FIELD },
};

static void test_malformed_table(void **state)
{
	static struct tb t;
	struct proto_msg m;
	int fails = 0;

	assert_true(sizeof bad_cases / sizeof bad_cases[0] >= 20);
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const struct bad_case *c = &bad_cases[i];
		int got;

		memset(&t, 0, sizeof t);
		c->build(&t);
		/* An exact-size copy, so ASan sees any read past the packet. */
		uint8_t *p = malloc(t.n ? t.n : 1);
		assert_non_null(p);
		memcpy(p, t.b, t.n);
		got = proto_decode(p, t.n, &m);
		free(p);
		if (got != -c->want) {
			print_error("%s: got %d (%s), want %d (%s)\n", c->name, -got, proto_strerror(got),
				    c->want, proto_strerror(c->want));
			fails++;
		}
	}
	assert_int_equal(fails, 0);
}

static void test_direction(void **state)
{
	struct fx *f = *state;
	struct proto_msg m = { .type = PROTO_OK, .u.ok = { 1, 0 } }, d;
	ssize_t n = proto_encode(&m, f->buf, sizeof f->buf);

	assert_int_equal(proto_decode_request(f->buf, (size_t)n, &d), -PROTO_E_TYPE);
	assert_int_equal(proto_decode_reply(f->buf, (size_t)n, &d), 0);
	m = (struct proto_msg){ .type = PROTO_SIGNAL, .u.signo = SIGTERM };
	n = proto_encode(&m, f->buf, sizeof f->buf);
	assert_int_equal(proto_decode_reply(f->buf, (size_t)n, &d), -PROTO_E_TYPE);
	assert_int_equal(proto_decode_request(f->buf, (size_t)n, &d), 0);
}

/* Every prefix of a valid packet, with the header length made to match,
 * and every byte of it set to a few nasty values: the decoder answers
 * each without reading outside the exact-size copy (run under ASan). */
static void test_prefixes_and_mutations(void **state)
{
	struct fx *f = *state;
	static const uint8_t nasty[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
	struct proto_msg m = { .type = PROTO_PTY }, d;
	ssize_t n;

	m.u.pty = (struct proto_pty){ .term = "xterm", .rows = 24, .cols = 80,
				      .command = "echo hi" };
	m.u.pty.env.v[0] = "LANG=C.UTF-8";
	m.u.pty.env.n = 1;
	n = proto_encode(&m, f->buf, sizeof f->buf);
	assert_true(n > 0);
	for (size_t cut = 0; cut < (size_t)n; cut++) {
		uint8_t *p = malloc(cut ? cut : 1);
		memcpy(p, f->buf, cut);
		if (cut >= PROTO_HEADER_LEN)
			p[7] = (uint8_t)cut;
		assert_true(proto_decode(p, cut, &d) < 0);
		free(p);
	}
	for (size_t at = 0; at < (size_t)n; at++)
		for (size_t k = 0; k < sizeof nasty; k++) {
			uint8_t *p = malloc((size_t)n);
			memcpy(p, f->buf, (size_t)n);
			p[at] = nasty[k];
			/* What still decodes must be canonical: the same bytes. */
			if (proto_decode(p, (size_t)n, &d) == 0) {
				assert_int_equal(proto_encode(&d, f->copy, sizeof f->copy), n);
				assert_memory_equal(f->copy, p, (size_t)n);
			}
			free(p);
		}
}

static void test_field_rules(void **state)
{
	assert_true(proto_term_ok("xterm-256color"));
	assert_false(proto_term_ok("rxvt unicode"));
	assert_true(proto_term_ok("rxvt_unicode"));
	assert_true(proto_term_ok("screen.xterm+256"));
	assert_false(proto_term_ok(NULL));
	assert_true(proto_env_check("LC_ALL=C") == 0);
	assert_true(proto_env_check("_X=1") == 0);
	assert_int_equal(proto_env_check("LOGNAME=root"), -PROTO_E_ENV_FORBIDDEN);
	assert_int_equal(proto_env_check("SHELL=/bin/sh"), -PROTO_E_ENV_FORBIDDEN);
	assert_int_equal(proto_env_check("LD_LIBRARY_PATH=/x"), -PROTO_E_ENV_FORBIDDEN);
	/* Only the exact names and the prefixes are refused. */
	assert_true(proto_env_check("HOMEPAGE=x") == 0);
	assert_true(proto_env_check("PATHS=x") == 0);
	assert_true(proto_host_ok("fe80::1%eth0"));
	assert_false(proto_host_ok("a b"));
	assert_false(proto_signal_ok(0));
	assert_false(proto_signal_ok(SIGSYS));
	assert_false(proto_signal_ok(-1));
	assert_true(proto_signal_ok(SIGKILL));
}

static void test_exit_status(void **state)
{
	struct proto_exit e;
	int st;
	pid_t pid = fork();

	if (pid == 0)
		_exit(3);
	waitpid(pid, &st, 0);
	proto_exit_from_status(st, &e);
	assert_int_equal(e.how, PROTO_EXITED);
	assert_int_equal(proto_exit_code(&e), 3);

	pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	kill(pid, SIGTERM);
	waitpid(pid, &st, 0);
	proto_exit_from_status(st, &e);
	assert_int_equal(e.how, PROTO_SIGNALED);
	assert_int_equal(e.value, SIGTERM);
	assert_false(e.core);
	assert_int_equal(proto_exit_code(&e), 128 + SIGTERM);
	assert_string_equal(proto_strerror(-PROTO_E_TOO_BIG), "message too big");
	assert_string_equal(proto_strerror(9999), "unknown error");
}

/* ---- fdpass ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void seqpair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void test_fdpass_pipes(void **state)
{
	int sv[2], p[2], q[2], fds[3] = { -1, -1, -1 };
	size_t nfds;
	char buf[16];

	seqpair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(q, O_CLOEXEC), 0);
	assert_int_equal(fdpass_send(sv[0], "hi", 2, (int[3]){ p[1], p[0], q[0] }, 3), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof buf, fds, 3, &nfds), 2);
	assert_int_equal(nfds, 3);
	assert_int_equal(fdpass_check(fds[0], FDPASS_PIPE_WRITE), 0);
	assert_int_equal(fdpass_check(fds[1], FDPASS_PIPE_READ), 0);
	assert_int_equal(fdpass_check(fds[0], FDPASS_PIPE_READ), -EPROTOTYPE);
	assert_int_equal(fdpass_check(fds[1], FDPASS_PTY_MASTER), -EPROTOTYPE);
	assert_int_equal(fdpass_check(fds[1], FDPASS_TCP), -EPROTOTYPE);
	assert_true(fcntl(fds[2], F_GETFD) & FD_CLOEXEC);
	/* The received end is the same pipe. */
	assert_int_equal(write(fds[0], "x", 1), 1);
	assert_int_equal(read(p[0], buf, 1), 1);
	fdpass_close_all(fds, 3);
	fdpass_close_all((int[6]){ p[0], p[1], q[0], q[1], sv[0], sv[1] }, 6);
}

static void test_fdpass_types(void **state)
{
	int ptm = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int sv[2];

	seqpair(sv);
	if (ptm >= 0) {
		assert_int_equal(fdpass_check(ptm, FDPASS_PTY_MASTER), 0);
		assert_int_equal(fdpass_check(ptm, FDPASS_TCP), -EPROTOTYPE);
		close(ptm);
	}
	assert_int_equal(fdpass_check(tcp, FDPASS_TCP), 0);
	assert_int_equal(fdpass_check(udp, FDPASS_TCP), -EPROTOTYPE);
	assert_int_equal(fdpass_check(sv[0], FDPASS_TCP), -EPROTOTYPE);
	assert_int_equal(fdpass_check(sv[0], FDPASS_PIPE_READ), -EPROTOTYPE);
	fdpass_close_all((int[4]){ tcp, udp, sv[0], sv[1] }, 4);
}

/* More fds than the receiver takes: an error, and nothing left open. */
static void test_fdpass_too_many(void **state)
{
	int sv[2], p[2], fds[3] = { -1, -1, -1 }, before;
	size_t nfds = 99;
	char buf[16];

	seqpair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	before = count_fds();
	assert_int_equal(fdpass_send(sv[0], "x", 1, (int[3]){ p[0], p[1], p[0] }, 3), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof buf, fds, 1, &nfds), -EBADMSG);
	assert_int_equal(nfds, 0);
	assert_int_equal(count_fds(), before);
	/* None expected at all. */
	assert_int_equal(fdpass_send(sv[0], "x", 1, p, 1), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof buf, fds, 0, &nfds), -EBADMSG);
	assert_int_equal(count_fds(), before);
	fdpass_close_all((int[4]){ p[0], p[1], sv[0], sv[1] }, 4);
}

/* A packet larger than the buffer is consumed and refused, fds closed. */
static void test_fdpass_truncated(void **state)
{
	int sv[2], p[2], fds[3], before;
	size_t nfds;
	char big[100] = { 0 }, buf[10];

	seqpair(sv);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	before = count_fds();
	assert_int_equal(fdpass_send(sv[0], big, sizeof big, p, 2), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof buf, fds, 3, &nfds), -EMSGSIZE);
	assert_int_equal(count_fds(), before);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof buf, fds, 3, &nfds), -EAGAIN);
	/* a message carries at most FDPASS_MAX_ANY (a tun's queues) */
	int many[FDPASS_MAX_ANY + 1];
	for (int i = 0; i <= FDPASS_MAX_ANY; i++)
		many[i] = p[0];
	assert_int_equal(fdpass_send(sv[0], "x", 1, many, FDPASS_MAX_ANY + 1), -EINVAL);
	/* more than the receiver takes: all closed, the message refused */
	assert_int_equal(fdpass_send(sv[0], "x", 1, many, FDPASS_MAX_ANY), 0);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof buf, fds, 3, &nfds), -EBADMSG);
	assert_int_equal(nfds, 0);
	assert_int_equal(count_fds(), before);
	close(sv[0]);
	assert_int_equal(fdpass_recv(sv[1], buf, sizeof buf, fds, 3, &nfds), 0);
	fdpass_close_all((int[3]){ p[0], p[1], sv[1] }, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pty_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pty_login_shell, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipes_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signal_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replies_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounds_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encoder_validates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_encoder_total_size, setup, teardown),
		cmocka_unit_test(test_malformed_table),
		cmocka_unit_test_setup_teardown(test_direction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefixes_and_mutations, setup, teardown),
		cmocka_unit_test(test_field_rules),
		cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_fdpass_pipes),
		cmocka_unit_test(test_fdpass_types),
		cmocka_unit_test(test_fdpass_too_many),
		cmocka_unit_test(test_fdpass_truncated),
	};

	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
