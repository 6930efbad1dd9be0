/* authkeys: parsing the OpenSSH authorized_keys format.
 *
 * A line is "[OPTIONS] TYPE BASE64 [COMMENT]". OPTIONS is a comma
 * separated list, values in double quotes where only \" is an escape, as
 * OpenSSH reads them (auth-options.c). Everything is bounded by the line,
 * which is bounded by AUTHKEYS_MAX_LINE; nothing here trusts the input to
 * be NUL-terminated, printable or short. */
#include "authkeys.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Key types a line may name. Certificates and DSA are refused by name so
 * the reason is precise; anything else is an option list or garbage. */
static const char *const authkeys_types[] = {
	"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
};

/* The cursor over one line. */
struct ak_rd {
	const char *p, *end;
	char *why;
	size_t wlen;
};

static int ak_fail(struct ak_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int ak_fail(struct ak_rd *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, r->wlen, fmt, ap);
	va_end(ap);
	return -1;
}

static bool ak_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static void ak_skip_space(struct ak_rd *r)
{
	while (r->p < r->end && ak_space(*r->p))
		r->p++;
}

/* The next run of non-space bytes. */
static size_t ak_token(struct ak_rd *r, const char **tok)
{
	const char *s = r->p;

	while (r->p < r->end && !ak_space(*r->p))
		r->p++;
	*tok = s;
	return (size_t)(r->p - s);
}

static bool ak_eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && !memcmp(s, lit, n);
}

static bool ak_ieq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(s, lit, n);
}

static bool ak_is_cert(const char *s, size_t n)
{
	static const char suffix[] = "-cert-v01@openssh.com";
	size_t m = sizeof suffix - 1;

	return n > m && !memcmp(s + n - m, suffix, m);
}

static bool ak_known_type(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof authkeys_types / sizeof authkeys_types[0]; i++)
		if (ak_eq(s, n, authkeys_types[i]))
			return true;
	return false;
}

/* Does the first field name a key type (so the line has no options)? */
static bool ak_looks_like_type(const char *s, size_t n)
{
	return ak_known_type(s, n) || ak_eq(s, n, "ssh-dss") || ak_is_cert(s, n);
}

/* ---- base64 ---- */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long authkeys_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	size_t n = 0, bits = 0, pad = 0;

	while (len > 0 && in[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	if (pad && (len + pad) % 4)
		return -1;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* Leftover bits must be zero, or two spellings decode alike. */
	if (bits && (acc & ((1u << bits) - 1)))
		return -1;
	return (long)n;
}

/* ---- options ---- */

/* A quoted value: '"', bytes where \" stands for ", '"'. */
static char *ak_dequote(struct ak_rd *r)
{
	size_t cap = (size_t)(r->end - r->p), n = 0;
	char *v;

	if (r->p >= r->end || *r->p != '"') {
		ak_fail(r, "option value must be in double quotes");
		return NULL;
	}
	r->p++;
	v = malloc(cap + 1);
	if (!v) {
		ak_fail(r, "out of memory");
		return NULL;
	}
	while (r->p < r->end && *r->p != '"') {
		if (r->p[0] == '\\' && r->p + 1 < r->end && r->p[1] == '"')
			r->p++;
		v[n++] = *r->p++;
	}
	if (r->p >= r->end) {
		free(v);
		ak_fail(r, "missing closing quote");
		return NULL;
	}
	r->p++;
	v[n] = 0;
	return v;
}

static int ak_set_once(struct ak_rd *r, char **slot, char *v, const char *name)
{
	if (*slot) {
		free(v);
		return ak_fail(r, "option '%s' given twice", name);
	}
	*slot = v;
	return 0;
}

/* "host:port" with host a name, an address or [IPv6], port a number or *. */
static bool ak_permitopen_ok(const char *v)
{
	const char *colon = v[0] == '[' ? strstr(v, "]:") : strrchr(v, ':');
	const char *port;
	char *end;
	unsigned long p;

	if (!colon || colon == v)
		return false;
	port = colon + (v[0] == '[' ? 2 : 1);
	if (v[0] != '[' && memchr(v, ':', (size_t)(colon - v)))
		return false;            /* a bare IPv6 address needs brackets */
	if (!strcmp(port, "*"))
		return true;
	if (!isdigit((unsigned char)port[0]))
		return false;
	p = strtoul(port, &end, 10);
	return !*end && p >= 1 && p <= 65535;
}

static int ak_add_permitopen(struct ak_rd *r, struct authkey *k, char *v)
{
	size_t old = k->permitopen ? strlen(k->permitopen) : 0;
	char *joined;

	if (!v[0] || strchr(v, ',') || !ak_permitopen_ok(v)) {
		ak_fail(r, "permitopen=\"%.64s\" is not host:port", v);
		free(v);
		return -1;
	}
	joined = realloc(k->permitopen, old + strlen(v) + 2);
	if (!joined) {
		free(v);
		return ak_fail(r, "out of memory");
	}
	sprintf(joined + old, "%s%s", old ? "," : "", v);
	k->permitopen = joined;
	free(v);
	return 0;
}

/* Options with a value. */
static int ak_option_value(struct ak_rd *r, struct authkey *k, const char *name, size_t n)
{
	char *v;

	if (ak_ieq(name, n, "command")) {
		v = ak_dequote(r);
		return v ? ak_set_once(r, &k->command, v, "command") : -1;
	}
	if (ak_ieq(name, n, "from")) {
		v = ak_dequote(r);
		if (!v)
			return -1;
		/* Checked now: a list we cannot read must refuse the key at
		 * parse time, not let it through at login. */
		if (authkeys_from_match(v, "0.0.0.0") < 0) {
			ak_fail(r, "from=\"%.64s\" is not a valid pattern list", v);
			free(v);
			return -1;
		}
		return ak_set_once(r, &k->from, v, "from");
	}
	if (ak_ieq(name, n, "permitopen")) {
		v = ak_dequote(r);
		return v ? ak_add_permitopen(r, k, v) : -1;
	}
	if (ak_ieq(name, n, "principals") || ak_ieq(name, n, "environment") ||
	    ak_ieq(name, n, "tunnel") || ak_ieq(name, n, "expiry-time") ||
	    ak_ieq(name, n, "permitlisten"))
		return ak_fail(r, "option '%.*s' is not supported", (int)n, name);
	return ak_fail(r, "unknown option '%.*s'", (int)(n > 32 ? 32 : n), name);
}

/* Options without a value. The permissive ones name features the gateway
 * never offers (agent and X11 forwarding, ~/.ssh/rc): allowing what does
 * not exist changes nothing, and the restrictive ones hold by construction. */
static int ak_option_flag(struct ak_rd *r, struct authkey *k, const char *name, size_t n)
{
	static const char *const moot[] = { "no-agent-forwarding", "no-x11-forwarding", "no-user-rc",
					    "agent-forwarding", "x11-forwarding", "user-rc" };

	if (ak_ieq(name, n, "restrict")) {
		k->no_pty = k->no_port_forwarding = true;
		return 0;
	}
	if (ak_ieq(name, n, "no-pty") || ak_ieq(name, n, "pty")) {
		k->no_pty = name[0] == 'n' || name[0] == 'N';
		return 0;
	}
	if (ak_ieq(name, n, "no-port-forwarding") || ak_ieq(name, n, "port-forwarding")) {
		k->no_port_forwarding = name[0] == 'n' || name[0] == 'N';
		return 0;
	}
	for (size_t i = 0; i < sizeof moot / sizeof moot[0]; i++)
		if (ak_ieq(name, n, moot[i]))
			return 0;
	if (ak_ieq(name, n, "cert-authority") || ak_ieq(name, n, "no-touch-required") ||
	    ak_ieq(name, n, "verify-required"))
		return ak_fail(r, "option '%.*s' is not supported", (int)n, name);
	return ak_fail(r, "unknown option '%.*s'", (int)(n > 32 ? 32 : n), name);
}

/* How much of the line to quote in a message: the line has no NUL. */
static int ak_show(const struct ak_rd *r, const char *p)
{
	return r->end - p < 16 ? (int)(r->end - p) : 16;
}

static bool ak_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* The option list ends at the first space outside quotes. */
static int ak_options(struct ak_rd *r, struct authkey *k)
{
	for (;;) {
		const char *name = r->p;
		size_t n;
		int ret;

		while (r->p < r->end && ak_name_char(*r->p))
			r->p++;
		n = (size_t)(r->p - name);
		if (n == 0)
			return ak_fail(r, "bad option list near '%.*s'", ak_show(r, name), name);
		if (r->p < r->end && *r->p == '=') {
			r->p++;
			ret = ak_option_value(r, k, name, n);
		} else {
			ret = ak_option_flag(r, k, name, n);
		}
		if (ret < 0)
			return -1;
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p >= r->end || ak_space(*r->p))
			return 0;
		return ak_fail(r, "bad option list near '%.*s'", ak_show(r, r->p), r->p);
	}
}

/* ---- the key ---- */

static uint32_t ak_be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int ak_key(struct ak_rd *r, struct authkey *k)
{
	const char *type, *b64;
	size_t tn, bn;
	long n;

	ak_skip_space(r);
	tn = ak_token(r, &type);
	if (tn == 0)
		return ak_fail(r, "no key after the options");
	if (ak_eq(type, tn, "ssh-dss"))
		return ak_fail(r, "DSA keys are not accepted");
	if (ak_is_cert(type, tn))
		return ak_fail(r, "certificates are not supported");
	if (!ak_known_type(type, tn))
		return ak_fail(r, "unknown key type '%.*s'", (int)(tn > 40 ? 40 : tn), type);
	memcpy(k->type, type, tn);
	k->type[tn] = 0;
	ak_skip_space(r);
	bn = ak_token(r, &b64);
	if (bn == 0)
		return ak_fail(r, "key data missing");
	if (bn / 4 * 3 > AUTHKEYS_MAX_BLOB)
		return ak_fail(r, "key too long");
	k->blob = malloc(bn / 4 * 3 + 3);
	if (!k->blob)
		return ak_fail(r, "out of memory");
	n = authkeys_base64_decode(b64, bn, k->blob, bn / 4 * 3 + 3);
	if (n < 0)
		return ak_fail(r, "key data is not base64");
	k->blob_len = (size_t)n;
	/* The blob names its own type: it must be the one the line claims. */
	if (k->blob_len < 4 || ak_be32(k->blob) != tn || k->blob_len - 4 < tn ||
	    memcmp(k->blob + 4, k->type, tn))
		return ak_fail(r, "key data does not match its type %s", k->type);
	return 0;
}

static int ak_comment(struct ak_rd *r, struct authkey *k)
{
	const char *end = r->end;

	ak_skip_space(r);
	while (end > r->p && ak_space(end[-1]))
		end--;
	k->comment = strndup(r->p, (size_t)(end - r->p));
	return k->comment ? 0 : ak_fail(r, "out of memory");
}

int authkeys_parse_line(const char *line, size_t len, struct authkey *k, char *why, size_t wlen)
{
	struct ak_rd r = { line, line + len, why, wlen };
	const char *first;
	size_t fn;

	memset(k, 0, sizeof *k);
	if (wlen)
		why[0] = 0;
	ak_skip_space(&r);
	if (r.p >= r.end || *r.p == '#')
		return 0;
	if (len > AUTHKEYS_MAX_LINE)
		return ak_fail(&r, "line longer than %d bytes", AUTHKEYS_MAX_LINE);
	if (memchr(line, 0, len))
		return ak_fail(&r, "NUL byte in the line");
	fn = ak_token(&r, &first);
	r.p = first;
	if (!ak_looks_like_type(first, fn) && ak_options(&r, k) < 0)
		goto fail;
	if (ak_key(&r, k) < 0 || ak_comment(&r, k) < 0)
		goto fail;
	return 1;
fail:
	authkey_free(k);
	return -1;
}

void authkey_free(struct authkey *k)
{
	free(k->blob);
	free(k->command);
	free(k->from);
	free(k->permitopen);
	free(k->comment);
	memset(k, 0, sizeof *k);
}

int authkeys_parse(const char *text, size_t len, struct authkeys *out, authkeys_warn_fn warn,
		   void *data)
{
	size_t start = 0;
	int lineno = 0;

	out->v = NULL;
	out->n = 0;
	while (start < len) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - text) : len;
		char why[AUTHKEYS_WHY];
		struct authkey k;
		int r;

		lineno++;
		r = authkeys_parse_line(text + start, end - start, &k, why, sizeof why);
		start = end + 1;
		if (r < 0 && warn)
			warn(data, lineno, why);
		if (r <= 0)
			continue;
		if (out->n >= AUTHKEYS_MAX_KEYS) {
			if (warn)
				warn(data, lineno, "too many keys; the rest are ignored");
			authkey_free(&k);
			break;
		}
		if (out->n % 16 == 0) {
			struct authkey *v = realloc(out->v, (out->n + 16) * sizeof *v);
			if (!v) {
				authkey_free(&k);
				authkeys_free(out);
				return -1;
			}
			out->v = v;
		}
		k.line = lineno;
		out->v[out->n++] = k;
	}
	return 0;
}

void authkeys_free(struct authkeys *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		authkey_free(&ks->v[i]);
	free(ks->v);
	ks->v = NULL;
	ks->n = 0;
}

const struct authkey *authkeys_find(const struct authkeys *ks, const uint8_t *blob, size_t len)
{
	for (size_t i = 0; ks && i < ks->n; i++)
		if (ks->v[i].blob_len == len && !memcmp(ks->v[i].blob, blob, len))
			return &ks->v[i];
	return NULL;
}

/* ---- from= ---- */

struct ak_addr {
	int family;                      /* AF_INET, AF_INET6, or 0 */
	uint8_t b[16];
};

/* Numeric text to an address; IPv4-mapped IPv6 becomes IPv4. */
static bool ak_addr_parse(const char *s, size_t n, struct ak_addr *a)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char buf[INET6_ADDRSTRLEN + 1];

	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, s, n);
	buf[n] = 0;
	memset(a, 0, sizeof *a);
	if (inet_pton(AF_INET, buf, a->b) == 1) {
		a->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, buf, a->b) != 1)
		return false;
	a->family = AF_INET6;
	if (!memcmp(a->b, mapped, sizeof mapped)) {
		memmove(a->b, a->b + 12, 4);
		memset(a->b + 4, 0, 12);
		a->family = AF_INET;
	}
	return true;
}

/* "addr/len": -1 malformed, else 1 when ip is inside. */
static int ak_cidr_match(const char *s, size_t n, const struct ak_addr *ip)
{
	const char *slash = memchr(s, '/', n);
	struct ak_addr net;
	unsigned long bits;
	char lenbuf[4], *end;
	size_t ln = n - (size_t)(slash - s) - 1;

	if (!ak_addr_parse(s, (size_t)(slash - s), &net) || ln == 0 || ln >= sizeof lenbuf ||
	    !isdigit((unsigned char)slash[1]))
		return -1;
	memcpy(lenbuf, slash + 1, ln);
	lenbuf[ln] = 0;
	bits = strtoul(lenbuf, &end, 10);
	if (*end || bits > (net.family == AF_INET ? 32u : 128u))
		return -1;
	if (ip->family != net.family)
		return 0;
	for (unsigned long i = 0; i < bits; i++) {
		unsigned byte = (unsigned)(i / 8), bit = 0x80u >> (i % 8);
		if ((ip->b[byte] & bit) != (net.b[byte] & bit))
			return 0;
	}
	return 1;
}

/* Shell-style * and ?, case-insensitive, with one backtrack point: linear
 * enough for hostile patterns of a few KiB. */
static bool ak_glob(const char *p, size_t pn, const char *s)
{
	size_t pi = 0, si = 0, star = (size_t)-1, mark = 0, sn = strlen(s);

	while (si < sn) {
		if (pi < pn && (p[pi] == '?' || tolower((unsigned char)p[pi]) == tolower((unsigned char)s[si]))) {
			pi++;
			si++;
		} else if (pi < pn && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (star != (size_t)-1) {
			pi = star + 1;
			si = ++mark;
		} else {
			return false;
		}
	}
	while (pi < pn && p[pi] == '*')
		pi++;
	return pi == pn;
}

/* One entry: 1 match, 0 no match, -1 malformed. The client has no host
 * name here (no reverse lookups), so names and wildcards match against
 * the address text, as sshd does with UseDNS off. */
static int ak_from_entry(const char *s, size_t n, const struct ak_addr *ip, const char *iptext)
{
	struct ak_addr lit;

	if (n == 0)
		return -1;
	if (memchr(s, '/', n))
		return ak_cidr_match(s, n, ip);
	if (ak_addr_parse(s, n, &lit))
		return lit.family == ip->family && !memcmp(lit.b, ip->b, sizeof lit.b);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("*?.:-_", s[i]))
			return -1;
	return ak_glob(s, n, iptext);
}

int authkeys_from_match(const char *patterns, const char *ip)
{
	struct ak_addr a;
	bool allowed = false, denied = false;
	const char *p = patterns;

	if (!ak_addr_parse(ip, strlen(ip), &a))
		memset(&a, 0, sizeof a);
	if (!*p)
		return -1;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		bool neg = n > 0 && *p == '!';
		int m = ak_from_entry(p + neg, n - neg, &a, ip);

		if (m < 0)
			return -1;
		if (m > 0) {
			if (neg)
				denied = true;
			else
				allowed = true;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	/* A negated match wins over any positive one, as in OpenSSH. */
	return allowed && !denied;
}

/* ---- permitopen ---- */

bool authkeys_permitopen(const char *list, const char *host, unsigned port)
{
	const char *p = list;
	size_t hn = strlen(host);

	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		const char *colon = NULL, *h = p;
		size_t len;

		for (size_t i = n; i > 0; i--)
			if (p[i - 1] == ':') {
				colon = p + i - 1;
				break;
			}
		if (colon) {
			len = (size_t)(colon - p);
			if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
				h++;
				len -= 2;
			}
			if (len == hn && !strncasecmp(h, host, hn)) {
				size_t pn = n - (size_t)(colon - p) - 1;
				char buf[8];

				if (pn == 1 && colon[1] == '*')
					return true;
				if (pn > 0 && pn < sizeof buf) {
					memcpy(buf, colon + 1, pn);
					buf[pn] = 0;
					if (strtoul(buf, NULL, 10) == port)
						return true;
				}
			}
		}
		p = comma ? comma + 1 : NULL;
	}
	return false;
}
