/* records: key=value reply lines and JSON output (see records.h). */
#include "records.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void rec_unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		int hi, lo;
		if (*s == '%' && (hi = hexval(s[1])) >= 0 && (lo = hexval(s[2])) >= 0) {
			*o++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

void rec_parse(char *line, struct record *r)
{
	char *save = NULL;

	r->n = 0;
	for (char *f = strtok_r(line, " \n", &save); f && r->n < REC_MAX_FIELDS; f = strtok_r(NULL, " \n", &save)) {
		char *eq = strchr(f, '=');
		if (!eq || eq == f)
			continue;
		*eq = 0;
		rec_unescape(eq + 1);
		r->key[r->n] = f;
		r->val[r->n++] = eq + 1;
	}
}

const char *rec_get(const struct record *r, const char *key)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->key[i], key))
			return r->val[i];
	return "";
}

bool rec_is_number(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (s[n] < '0' || s[n] > '9')
			return false;
	/* No leading zeros (not JSON), and at most 20 digits (any uint64). */
	return n > 0 && n <= 20 && (n == 1 || s[0] != '0');
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void json_string_n(FILE *out, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;

	putc('"', out);
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t l;

		if (c == '"' || c == '\\') {
			putc('\\', out);
			putc(c, out);
			i++;
		} else if (c == '\n') {
			fputs("\\n", out), i++;
		} else if (c == '\t') {
			fputs("\\t", out), i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c), i++;
		} else if ((l = utf8_len(s + i, n - i)) == 0) {
			fputs("\\ufffd", out), i++;
		} else {
			fwrite(s + i, 1, l, out);
			i += l;
		}
	}
	putc('"', out);
}

void json_string(FILE *out, const char *s)
{
	json_string_n(out, s, strlen(s));
}

void rec_json(FILE *out, const struct record *r, const char *skip)
{
	bool first = true;

	putc('{', out);
	for (int i = 0; i < r->n; i++) {
		if (skip && !strcmp(r->key[i], skip))
			continue;
		if (!first)
			putc(',', out);
		first = false;
		json_string(out, r->key[i]);
		putc(':', out);
		if (rec_is_number(r->val[i]) && strcmp(r->key[i], "name"))
			fputs(r->val[i], out);
		else
			json_string(out, r->val[i]);
	}
	putc('}', out);
}

static long rec_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

int rec_request(const char *path, const char *req, size_t max, int timeout_ms, char **reply)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = 0, cap = 65536;
	long deadline = rec_now_ms() + timeout_ms;
	size_t rlen = strlen(req);
	char *buf;
	int fd, err;

	if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path) >= (int)sizeof sa.sun_path)
		return -ENAMETOOLONG;
	/* Non-blocking: a peer whose backlog is full is "not answering" (EAGAIN),
	 * not a reason to wait forever. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    send(fd, req, rlen, MSG_NOSIGNAL) != (ssize_t)rlen) {
		err = errno;
		close(fd);
		return -err;
	}
	if (!(buf = malloc(cap))) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long left = deadline - rec_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		if (len + 1 == cap) {
			char *nb = cap < max ? realloc(buf, cap * 2) : NULL;
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	*reply = buf;
	return 0;
}
