/* Unit tests for lib/records and lib/recserver: the key=value reply
 * records of the control sockets, JSON strings (escapes, UTF-8 repair),
 * records as JSON, one request over a real unix socket, and the daemons'
 * side of such a socket on a libev loop. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "records.h"
#include "recserver.h"

/* What a writer puts in a FILE, as a string (freed by the caller). */
#define CAPTURE(text, stmt)                                                \
	do {                                                               \
		size_t len_;                                               \
		FILE *out = open_memstream(&(text), &len_);                \
		assert_non_null(out);                                      \
		stmt;                                                      \
		fclose(out);                                               \
	} while (0)

static void test_unescape(void **state)
{
	char a[] = "a%20b%3Dc%25d", b[] = "100%", c[] = "%zz%4", d[] = "%e2%82%ac";

	rec_unescape(a);
	assert_string_equal(a, "a b=c%d");
	rec_unescape(b);                       /* a lone % stays */
	assert_string_equal(b, "100%");
	rec_unescape(c);                       /* not hex, or cut short: kept */
	assert_string_equal(c, "%zz%4");
	rec_unescape(d);
	assert_string_equal(d, "\xe2\x82\xac");
}

static void test_parse(void **state)
{
	char line[] = "ok=1 name=alice  junk =skipped last_error=no%20such%20file empty=\n";
	struct record r;

	rec_parse(line, &r);
	assert_int_equal(r.n, 4);
	assert_string_equal(rec_get(&r, "ok"), "1");
	assert_string_equal(rec_get(&r, "name"), "alice");
	assert_string_equal(rec_get(&r, "last_error"), "no such file");
	assert_string_equal(rec_get(&r, "empty"), "");
	assert_string_equal(rec_get(&r, "junk"), "");     /* absent: "" */
	assert_string_equal(rec_get(&r, "missing"), "");
}

static void test_parse_bounded(void **state)
{
	char line[REC_MAX_FIELDS * 16 + 64] = "";
	struct record r;

	for (int i = 0; i < REC_MAX_FIELDS + 10; i++)
		snprintf(line + strlen(line), sizeof line - strlen(line), "k%d=%d ", i, i);
	rec_parse(line, &r);
	assert_int_equal(r.n, REC_MAX_FIELDS);
	assert_string_equal(r.key[REC_MAX_FIELDS - 1], "k47");
}

static void test_is_number(void **state)
{
	assert_true(rec_is_number("0"));
	assert_true(rec_is_number("18446744073709551615"));
	assert_false(rec_is_number(""));
	assert_false(rec_is_number("007"));              /* not JSON */
	assert_false(rec_is_number("-1"));
	assert_false(rec_is_number("1.5"));
	assert_false(rec_is_number("123456789012345678901"));
}

static void test_json_string(void **state)
{
	static const struct { const char *in; const char *want; } rows[] = {
		{ "plain", "\"plain\"" },
		{ "q\"b\\", "\"q\\\"b\\\\\"" },
		{ "a\nb\tc\x01\x7f", "\"a\\nb\\tc\\u0001\\u007f\"" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82\"" },
		{ "bad \xff byte", "\"bad \\ufffd byte\"" },
		{ "cut \xe2\x82", "\"cut \\ufffd\\ufffd\"" },
		{ "overlong \xc0\xaf", "\"overlong \\ufffd\\ufffd\"" },
		{ "surrogate \xed\xa0\x80", "\"surrogate \\ufffd\\ufffd\\ufffd\"" },
		{ "big \xf4\x90\x80\x80", "\"big \\ufffd\\ufffd\\ufffd\\ufffd\"" },
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		char *text = NULL;
		CAPTURE(text, json_string(out, rows[i].in));
		if (strcmp(text, rows[i].want))
			print_message("    row %zu: %s\n", i, text);
		assert_string_equal(text, rows[i].want);
		free(text);
	}
	/* with a length: NUL bytes are data */
	char *text = NULL;
	CAPTURE(text, json_string_n(out, "a\0b", 3));
	assert_string_equal(text, "\"a\\u0000b\"");
	free(text);
}

static void test_record_json(void **state)
{
	char line[] = "kind=tenant name=123 pid=42 memory=007 state=running msg=a%22b";
	struct record r;
	char *text = NULL;

	rec_parse(line, &r);
	CAPTURE(text, rec_json(out, &r, "kind"));
	/* "name" stays a string even when it looks like a number */
	assert_string_equal(text, "{\"name\":\"123\",\"pid\":42,\"memory\":\"007\",\"state\":\"running\",\"msg\":\"a\\\"b\"}");
	free(text);
	CAPTURE(text, rec_json(out, &r, NULL));
	assert_true(!strncmp(text, "{\"kind\":\"tenant\",", 17));
	free(text);
}

/* A private folder for a test socket, and the socket's path in it. The
 * six letters mkdtemp replaces are written at run time. */
static void sock_path(char *dir, size_t dlen, char *path, size_t plen)
{
	int n = snprintf(dir, dlen, "/tmp/fief-rec-");

	assert_true(n > 0 && (size_t)n + 7 <= dlen);
	memset(dir + n, 'X', 6);
	dir[n + 6] = 0;
	assert_non_null(mkdtemp(dir));
	snprintf(path, plen, "%s/s.sock", dir);
}

/* A unix stream socket listening at path. */
static int listen_at(const char *path, int backlog, int flags)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | flags, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(fd, backlog), 0);
	return fd;
}

static void test_request(void **state)
{
	char dir[32], path[64], *reply = NULL;
	int srv, status;
	pid_t pid;

	sock_path(dir, sizeof dir, path, sizeof path);
	/* nobody there */
	assert_int_equal(rec_request(path, "list\n", 1 << 20, 1000, &reply), -ENOENT);
	srv = listen_at(path, 1, 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* one connection: echo the request back in a record, in pieces */
		char req[64] = "", big[200000];
		int c = accept(srv, NULL, NULL);
		ssize_t n = c >= 0 ? read(c, req, sizeof req - 1) : -1;
		if (n <= 0)
			_exit(1);
		req[strcspn(req, "\n")] = 0;
		dprintf(c, "ok=1\nreq=%s\n", req);
		memset(big, 'x', sizeof big);
		big[sizeof big - 1] = '\n';
		if (write(c, big, sizeof big) != (ssize_t)sizeof big)
			_exit(1);
		_exit(0);
	}
	close(srv);
	assert_int_equal(rec_request(path, "status alice\n", 1 << 20, 5000, &reply), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	assert_true(!strncmp(reply, "ok=1\nreq=status alice\n", 22));
	assert_int_equal(strlen(reply), 22 + 200000);          /* the whole reply, past the first buffer */
	free(reply);
	unlink(path);
	rmdir(dir);
}

/* rec_request with a 1 MiB cap, timed: its result goes to *rc, the
 * milliseconds it took are returned. */
static long timed_request(const char *path, const char *req, int timeout_ms, char **reply, int *rc)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	*rc = rec_request(path, req, 1 << 20, timeout_ms, reply);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
}

/* A peer that never answers costs the deadline; one whose backlog is
 * full is refused at once, not waited for. */
static void test_request_bounded(void **state)
{
	char dir[32], path[64], *reply = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int srv, fds[200], n = 0, r;
	long ms;

	sock_path(dir, sizeof dir, path, sizeof path);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	srv = listen_at(path, 1, 0);
	ms = timed_request(path, "list\n", 200, &reply, &r);
	assert_int_equal(r, 0);
	assert_string_equal(reply, "");
	free(reply);
	assert_true(ms >= 150 && ms < 1500);
	/* fill the backlog (never accepted) */
	while (n < 200) {
		fds[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(fds[n], (struct sockaddr *)&sa, sizeof sa) < 0) {
			close(fds[n]);
			break;
		}
		n++;
	}
	assert_true(n < 200);
	ms = timed_request(path, "list\n", 5000, &reply, &r);
	assert_int_equal(r, -EAGAIN);
	assert_true(ms < 2000);
	while (n > 0)
		close(fds[--n]);
	close(srv);
	unlink(path);
	rmdir(dir);
}

/* ---- the server side (lib/recserver) ---- */

/* "boom" is refused; any other line comes back as a field. */
static void echo_handler(struct rec_reply *r, const char *line, void *data)
{
	int *calls = data;

	++*calls;
	if (!strncmp(line, "boom", 4))
		return rec_error(r, "no %s here", "boom");
	rec_ok(r);
	rec_field(r, "line", line);
	rec_num(r, "calls", (unsigned long long)*calls);
	rec_num(r, "big", 18446744073709551615ULL);
	rec_end(r);
}

/* A child serving path as srv says (its loop and data are filled in)
 * until it is killed. */
static pid_t serve_as(const char *path, struct rec_server srv)
{
	int fd = listen_at(path, 16, SOCK_NONBLOCK);
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static int calls;

		/* a failed assertion in the parent must not leave it behind */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		static struct rec_server s;

		s = srv;
		s.loop = ev_default_loop(EVFLAG_AUTO);
		s.data = &calls;
		rec_server_start(&s, fd);
		ev_run(s.loop, 0);
		_exit(0);
	}
	close(fd);
	return pid;
}

/* echo_handler, a newline ends a request */
static pid_t serve(const char *path, int max_conns, double timeout)
{
	return serve_as(path, (struct rec_server){ .handle = echo_handler, .max_conns = max_conns,
						   .timeout = timeout });
}

static void stop(pid_t pid, const char *dir, const char *path)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(path);
	rmdir(dir);
}

static int connect_idle(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

static void test_server_replies_in_records(void **state)
{
	char dir[32], path[64], *reply = NULL;
	struct record rec;
	pid_t pid;

	sock_path(dir, sizeof dir, path, sizeof path);
	pid = serve(path, 4, 5.0);
	/* every byte that would break a record is escaped, and comes back */
	assert_int_equal(rec_request(path, "say %= x\x7f\x01\n", 1 << 20, 5000, &reply), 0);
	assert_string_equal(reply, "ok=1\nline=say%20%25%3D%20x%7F%01%0A calls=1 big=18446744073709551615\n");
	rec_parse(strchr(reply, '\n') + 1, &rec);
	assert_string_equal(rec_get(&rec, "line"), "say %= x\x7f\x01\n");
	free(reply);
	/* one request per connection: what follows the first newline comes
	 * with it, and gets no reply of its own */
	assert_int_equal(rec_request(path, "one\ntwo\n", 1 << 20, 5000, &reply), 0);
	assert_string_equal(reply, "ok=1\nline=one%0Atwo%0A calls=2 big=18446744073709551615\n");
	free(reply);
	assert_int_equal(rec_request(path, "boom now\n", 1 << 20, 5000, &reply), 0);
	assert_string_equal(reply, "ok=0 error=no%20boom%20here\n");
	free(reply);
	stop(pid, dir, path);
}

/* A line longer than REC_MAX_REQ is cut there; a peer that never ends
 * its line is dropped at the timeout; connections past max_conns are
 * closed on accept, and taken again once others have gone. */
static void test_server_bounds_its_peers(void **state)
{
	char dir[32], path[64], *reply = NULL, big[REC_MAX_REQ + 100];
	struct record rec;
	int idle[2], rc;
	long ms;
	pid_t pid;
	char c;

	sock_path(dir, sizeof dir, path, sizeof path);
	pid = serve(path, 2, 0.3);
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	assert_int_equal(rec_request(path, big, 1 << 20, 5000, &reply), 0);
	assert_true(!strncmp(reply, "ok=1\n", 5));
	rec_parse(reply + 5, &rec);
	assert_int_equal(strlen(rec_get(&rec, "line")), REC_MAX_REQ);
	free(reply);
	/* no newline: closed with no reply after the timeout */
	ms = timed_request(path, "list", 5000, &reply, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(reply, "");
	free(reply);
	assert_true(ms >= 250 && ms < 3000);
	/* two idle peers take both places: a third is closed at once */
	idle[0] = connect_idle(path);
	idle[1] = connect_idle(path);
	usleep(50000);
	ms = timed_request(path, "hi\n", 5000, &reply, &rc);
	/* closed before or after the request went out */
	assert_true(rc == 0 || rc == -EPIPE || rc == -ECONNRESET);
	if (rc == 0) {
		assert_string_equal(reply, "");
		free(reply);
	}
	assert_true(ms < 250);
	/* the idle ones are dropped at their timeout (EOF, no reply) */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(read(idle[i], &c, 1), 0);
		close(idle[i]);
	}
	assert_int_equal(rec_request(path, "hi\n", 1 << 20, 5000, &reply), 0);
	assert_true(!strncmp(reply, "ok=1\nline=hi%0A ", 16));
	free(reply);
	stop(pid, dir, path);
}

/* A blank line ends the request; the reply has a NUL byte in it. */
/* What the server told head_ended since the last reply (in the child). */
static size_t whole_calls, whole_seen;

static bool head_ended(const char *req, size_t len, size_t seen)
{
	whole_calls++;
	whole_seen = seen;
	return len >= 4 && !strcmp(req + len - 4, "\r\n\r\n");
}

static void raw_handler(struct rec_reply *r, const char *req, void *data)
{
	rec_add(r, "got %zu, %zu looks, the last after %zu\n", strlen(req), whole_calls, whole_seen);
	rec_write(r, "a\0b", 3);
	whole_calls = whole_seen = 0;
}

static void test_server_with_its_own_framing(void **state)
{
	char dir[32], path[64], *reply = NULL;
	pid_t pid;
	int rc;

	sock_path(dir, sizeof dir, path, sizeof path);
	pid = serve_as(path, (struct rec_server){ .handle = raw_handler, .max_conns = 4, .timeout = 0.3,
						  .max_req = 64, .whole = head_ended });
	assert_int_equal(rec_request(path, "GET /x\r\nA: b\r\n\r\n", 1 << 20, 5000, &reply), 0);
	assert_string_equal(reply, "got 16, 1 looks, the last after 0\na");
	assert_int_equal(reply[36], 'b');
	free(reply);
	/* in two pieces: the second look is told what the first saw */
	{
		char got[128] = "";
		size_t len = 0;
		ssize_t n;
		int fd = connect_idle(path);

		assert_int_equal(write(fd, "GET /x\r\n\r", 9), 9);
		usleep(100000);
		assert_int_equal(write(fd, "\n", 1), 1);
		while ((n = read(fd, got + len, sizeof got - 1 - len)) > 0)
			len += (size_t)n;
		close(fd);
		assert_string_equal(got, "got 10, 2 looks, the last after 9\na");
	}
	/* cut at max_req */
	assert_int_equal(rec_request(path, "GET /0123456789012345678901234567890123456789012345678901234567890123456789",
				     1 << 20, 5000, &reply), 0);
	assert_string_equal(reply, "got 64, 0 looks, the last after 0\na");
	free(reply);
	/* a newline alone is not the end of it: dropped at the timeout */
	assert_true(timed_request(path, "GET /x\r\n", 5000, &reply, &rc) >= 250);
	assert_int_equal(rc, 0);
	assert_string_equal(reply, "");
	free(reply);
	stop(pid, dir, path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unescape),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_bounded),
		cmocka_unit_test(test_is_number),
		cmocka_unit_test(test_json_string),
		cmocka_unit_test(test_record_json),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_request_bounded),
		cmocka_unit_test(test_server_replies_in_records),
		cmocka_unit_test(test_server_bounds_its_peers),
		cmocka_unit_test(test_server_with_its_own_framing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
