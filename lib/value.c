/* value: parsers for the scalar values of fief's files. */
#include "value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int why_set(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int why_set(char *why, const char *fmt, ...)
{
	va_list ap;

	if (why) {
		va_start(ap, fmt);
		vsnprintf(why, WHY_LEN, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Parse a run of decimal digits at *p, advancing it. Refuses overflow. */
static int digits_u64(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

int value_int(const char *s, int64_t *out, char *why)
{
	const char *p = s;
	uint64_t v;
	bool neg = false;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (digits_u64(&p, &v) < 0 || *p || v > (uint64_t)INT64_MAX)
		return why_set(why, "'%s' is not an integer", s);
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

int value_bool(const char *s, bool *out, char *why)
{
	static const char *yes[] = { "true", "yes", "on", "True", "Yes", "On", "TRUE", NULL };
	static const char *no[] = { "false", "no", "off", "False", "No", "Off", "FALSE", NULL };

	for (size_t i = 0; yes[i]; i++)
		if (!strcmp(s, yes[i]))
			return *out = true, 0;
	for (size_t i = 0; no[i]; i++)
		if (!strcmp(s, no[i]))
			return *out = false, 0;
	return why_set(why, "'%s' is not a boolean (true or false)", s);
}

int value_size(const char *s, uint64_t *out, char *why)
{
	const char *p = s;
	uint64_t v, mult = 1;

	if (digits_u64(&p, &v) < 0)
		goto bad;
	switch (*p) {
	case 'k': case 'K': mult = 1ULL << 10; p++; break;
	case 'm': case 'M': mult = 1ULL << 20; p++; break;
	case 'g': case 'G': mult = 1ULL << 30; p++; break;
	case 't': case 'T': mult = 1ULL << 40; p++; break;
	}
	if (*p == 'B' && mult > 1)
		p++;
	if (*p)
		goto bad;
	if (v > UINT64_MAX / mult)
		return why_set(why, "size '%s' is too large", s);
	*out = v * mult;
	return 0;
bad:
	return why_set(why, "'%s' is not a size (a number with an optional K, M, G or T suffix)", s);
}

int value_duration_ms(const char *s, int64_t *out, char *why)
{
	const char *p = s;
	uint64_t v, mult = 1000;

	if (digits_u64(&p, &v) < 0)
		goto bad;
	if (!strcmp(p, "ms"))
		mult = 1;
	else if (!strcmp(p, "s") || !*p)
		mult = 1000;
	else if (!strcmp(p, "m"))
		mult = 60 * 1000;
	else if (!strcmp(p, "h"))
		mult = 3600 * 1000;
	else if (!strcmp(p, "d"))
		mult = 86400 * 1000;
	else
		goto bad;
	if (v > (uint64_t)INT64_MAX / mult)
		return why_set(why, "duration '%s' is too large", s);
	*out = (int64_t)(v * mult);
	return 0;
bad:
	return why_set(why, "'%s' is not a duration (a number with ms, s, m, h or d)", s);
}

/* "0.5" -> 500, "2" -> 2000, "1.25" -> 1250; at most three decimals. */
int value_cpu_millis(const char *s, int64_t *out, char *why)
{
	const char *p = s;
	uint64_t whole, frac = 0;
	int places = 0;

	if (digits_u64(&p, &whole) < 0 || whole > 100000)
		goto bad;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			goto bad;
		for (; isdigit((unsigned char)*p); p++, places++) {
			if (places == 3)
				return why_set(why, "'%s' has more than three decimals", s);
			frac = frac * 10 + (uint64_t)(*p - '0');
		}
		for (; places < 3; places++)
			frac *= 10;
	}
	if (*p)
		goto bad;
	*out = (int64_t)(whole * 1000 + frac);
	return 0;
bad:
	return why_set(why, "'%s' is not a CPU share (a number of cores such as 0.5 or 2)", s);
}

int value_ipv4(const char *s, uint32_t *out, char *why)
{
	uint32_t v = 0;
	const char *p = s;

	for (int i = 0; i < 4; i++) {
		uint64_t octet;
		const char *start = p;

		if (digits_u64(&p, &octet) < 0 || octet > 255 || p - start > 3 ||
		    (p - start > 1 && *start == '0'))
			return why_set(why, "'%s' is not an IPv4 address", s);
		v = v << 8 | (uint32_t)octet;
		if (i < 3 && *p++ != '.')
			return why_set(why, "'%s' is not an IPv4 address", s);
	}
	if (*p)
		return why_set(why, "'%s' is not an IPv4 address", s);
	*out = v;
	return 0;
}

uint32_t cidr_mask(int prefix)
{
	return prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
}

bool cidr_contains(const struct cidr *net, uint32_t addr)
{
	uint32_t m = cidr_mask(net->prefix);
	return (addr & m) == (net->addr & m);
}

int value_cidr(const char *s, struct cidr *out, char *why)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int64_t prefix = 32;

	if (alen >= sizeof buf)
		return why_set(why, "'%s' is not an IPv4 address or CIDR", s);
	memcpy(buf, s, alen);
	buf[alen] = 0;
	if (value_ipv4(buf, &out->addr, NULL) < 0)
		return why_set(why, "'%s' is not an IPv4 address or CIDR", s);
	if (slash && (value_int(slash + 1, &prefix, NULL) < 0 || prefix < 0 || prefix > 32 ||
		      !isdigit((unsigned char)slash[1])))
		return why_set(why, "'%s' has a bad prefix length (0 to 32)", s);
	out->prefix = (int)prefix;
	return 0;
}

/* Only the canonical text forms inet_pton takes, no zone ("%eth0"), no
 * IPv4-mapped addresses (they would be IPv4 packets in disguise). */
int value_ipv6(const char *s, uint8_t out[16], char *why)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (strlen(s) > 45 || !strchr(s, ':') || inet_pton(AF_INET6, s, out) != 1)
		return why_set(why, "'%s' is not an IPv6 address", s);
	if (!memcmp(out, mapped, sizeof mapped))
		return why_set(why, "'%s' is an IPv4-mapped address: write the IPv4 address", s);
	return 0;
}

int value_cidr6(const char *s, struct cidr6 *out, char *why)
{
	char buf[48];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int64_t prefix = 128;

	if (alen >= sizeof buf)
		return why_set(why, "'%s' is not an IPv6 address or CIDR", s);
	memcpy(buf, s, alen);
	buf[alen] = 0;
	if (value_ipv6(buf, out->addr, NULL) < 0)
		return why_set(why, "'%s' is not an IPv6 address or CIDR", s);
	if (slash && (value_int(slash + 1, &prefix, NULL) < 0 || prefix < 0 || prefix > 128 ||
		      !isdigit((unsigned char)slash[1])))
		return why_set(why, "'%s' has a bad prefix length (0 to 128)", s);
	out->prefix = (int)prefix;
	return 0;
}

bool cidr6_contains(const struct cidr6 *net, const uint8_t addr[16])
{
	int full = net->prefix / 8, bits = net->prefix % 8;

	if (memcmp(net->addr, addr, (size_t)full))
		return false;
	if (bits) {
		uint8_t m = (uint8_t)(0xff << (8 - bits));
		return (net->addr[full] & m) == (addr[full] & m);
	}
	return true;
}

void ipv6_format(const uint8_t addr[16], char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (!inet_ntop(AF_INET6, addr, a, sizeof a))
		snprintf(a, sizeof a, "?");
	snprintf(buf, len, "%s", a);
}

void cidr6_format(const struct cidr6 *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	ipv6_format(c->addr, a, sizeof a);
	snprintf(buf, len, "%s/%d", a, c->prefix);
}

void ipv4_format(uint32_t a, char *buf, size_t len)
{
	snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

void cidr_format(const struct cidr *c, char *buf, size_t len)
{
	char a[16];

	ipv4_format(c->addr, a, sizeof a);
	snprintf(buf, len, "%s/%d", a, c->prefix);
}

int value_endpoint(const char *s, struct endpoint *out, char *why)
{
	char host[48];
	const char *port, *hend;
	int64_t p;

	memset(out, 0, sizeof *out);
	if (*s == '[') {
		hend = strchr(s, ']');
		if (!hend || hend[1] != ':')
			goto bad;
		port = hend + 2;
		s++;
		out->family = AF_INET6;
	} else {
		hend = strrchr(s, ':');
		if (!hend)
			goto bad;
		port = hend + 1;
		out->family = AF_INET;
	}
	if ((size_t)(hend - s) >= sizeof host || hend == s)
		goto bad;
	memcpy(host, s, (size_t)(hend - s));
	host[hend - s] = 0;
	if (inet_pton(out->family, host, out->addr) != 1)
		goto bad;
	if (!isdigit((unsigned char)*port) || value_int(port, &p, NULL) < 0 || p < 1 || p > 65535)
		return why_set(why, "'%s' has a bad port (1 to 65535)", out->family == AF_INET6 ? s - 1 : s);
	out->port = (uint16_t)p;
	snprintf(out->text, sizeof out->text, out->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
		 (unsigned)out->port);
	return 0;
bad:
	return why_set(why, "'%s' is not an address:port (IPv6 as [addr]:port)",
		       out->family == AF_INET6 ? s - 1 : s);
}

/* Split s into at most n space-separated words in buf; returns the count
 * or -1 when there are more. */
static int split_words(const char *s, char *buf, size_t buflen, char **w, int n)
{
	int count = 0;
	char *p, *save = NULL;

	snprintf(buf, buflen, "%s", s);
	for (p = strtok_r(buf, " \t", &save); p; p = strtok_r(NULL, " \t", &save)) {
		if (count == n)
			return -1;
		w[count++] = p;
	}
	return count;
}

int value_fw_rule(const char *s, struct fw_rule *out, char *why)
{
	char buf[128], *w[3];
	int n;

	if (strlen(s) >= sizeof buf)
		return why_set(why, "firewall rule is too long");
	n = split_words(s, buf, sizeof buf, w, 3);
	if (n < 1)
		return why_set(why, "firewall rule '%s' must be 'allow|deny [SRC [DST]]'", s);
	if (!strcmp(w[0], "allow"))
		out->action = FW_ALLOW;
	else if (!strcmp(w[0], "deny"))
		out->action = FW_DENY;
	else
		return why_set(why, "firewall rule '%s' must start with allow or deny", s);
	out->src = (struct cidr){ 0, 0 };
	out->dst = (struct cidr){ 0, 0 };
	memset(&out->src6, 0, sizeof out->src6);
	memset(&out->dst6, 0, sizeof out->dst6);
	out->family = FW_ANY;
	if (n < 2)
		return 0;
	/* The family is the first address's; the second must agree. */
	out->family = strchr(w[1], ':') ? FW_IPV6 : FW_IPV4;
	for (int i = 1; i < n; i++) {
		bool six = strchr(w[i], ':') != NULL;
		if (six != (out->family == FW_IPV6))
			return why_set(why, "firewall rule '%s' mixes IPv4 and IPv6", s);
		if (six ? value_cidr6(w[i], i == 1 ? &out->src6 : &out->dst6, why) < 0
			: value_cidr(w[i], i == 1 ? &out->src : &out->dst, why) < 0)
			return -1;
	}
	return 0;
}

void fw_rule_format(const struct fw_rule *r, char *buf, size_t len)
{
	char s[48], d[48];
	const char *act = r->action == FW_ALLOW ? "allow" : "deny";

	if (r->family == FW_ANY) {
		snprintf(buf, len, "%s", act);
		return;
	}
	if (r->family == FW_IPV6) {
		cidr6_format(&r->src6, s, sizeof s);
		cidr6_format(&r->dst6, d, sizeof d);
	} else {
		cidr_format(&r->src, s, sizeof s);
		cidr_format(&r->dst, d, sizeof d);
	}
	snprintf(buf, len, "%s %s %s", act, s, d);
}

/* ---- cron ---- */

struct cron_field {
	const char *name;
	int lo, hi;
	const char *const *names;        /* 3-letter names, index = value - lo */
};

static const char *const cron_months[] = { "jan", "feb", "mar", "apr", "may", "jun",
					   "jul", "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const cron_days[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };

static const struct cron_field cron_fields[5] = {
	{ "minute", 0, 59, NULL },
	{ "hour", 0, 23, NULL },
	{ "day of month", 1, 31, NULL },
	{ "month", 1, 12, cron_months },
	{ "day of week", 0, 7, cron_days },
};

/* One number or name of a field, advancing *p. */
static int cron_atom(const struct cron_field *f, const char **p, int *out)
{
	uint64_t v;

	if (f->names && isalpha((unsigned char)**p)) {
		for (int i = 0; f->names[i]; i++)
			if (!strncasecmp(*p, f->names[i], 3) && !isalpha((unsigned char)(*p)[3])) {
				*out = f->lo + i;
				*p += 3;
				return 0;
			}
		return -1;
	}
	if (digits_u64(p, &v) < 0 || v > (uint64_t)f->hi || (int)v < f->lo)
		return -1;
	*out = (int)v;
	return 0;
}

/* One comma-separated element: "*", "N", "N-M", each with an optional "/S". */
static int cron_element(const struct cron_field *f, const char *e, uint64_t *bits)
{
	int lo = f->lo, hi = f->hi, step = 1;
	const char *p = e;
	uint64_t st;

	if (*p == '*') {
		p++;
	} else {
		if (cron_atom(f, &p, &lo) < 0)
			return -1;
		hi = lo;
		if (*p == '-') {
			p++;
			if (cron_atom(f, &p, &hi) < 0 || hi < lo)
				return -1;
		}
	}
	if (*p == '/') {
		p++;
		if (digits_u64(&p, &st) < 0 || st < 1 || st > (uint64_t)f->hi)
			return -1;
		step = (int)st;
		if (e[0] != '*' && hi == lo)
			hi = f->hi;              /* "5/15" means 5-max/15, as in cronie */
	}
	if (*p)
		return -1;
	for (int v = lo; v <= hi; v += step)
		*bits |= 1ULL << v;
	return 0;
}

/* A field in either form: uWSGI's -1 (any) and -N (every N), or crontab. */
static int cron_field_parse(const struct cron_field *f, const char *s, uint64_t *bits, bool *any,
			    char *why)
{
	char buf[64], *save = NULL, *e;

	*bits = 0;
	/* As in cron(8) and uWSGI, a field starting with '*' or a negative
	 * interval is unrestricted for the day-of-month/day-of-week rule. */
	*any = s[0] == '*' || s[0] == '-';
	if (s[0] == '-') {
		int64_t n;
		if (value_int(s, &n, NULL) < 0 || n >= 0 || -n > f->hi)
			return why_set(why, "cron %s '%s' is out of range", f->name, s);
		for (int v = f->lo; v <= f->hi; v++)
			if (v % (int)-n == 0)
				*bits |= 1ULL << v;
		return 0;
	}
	if (strlen(s) >= sizeof buf)
		return why_set(why, "cron %s '%s' is too long", f->name, s);
	snprintf(buf, sizeof buf, "%s", s);
	for (e = strtok_r(buf, ",", &save); e; e = strtok_r(NULL, ",", &save))
		if (cron_element(f, e, bits) < 0)
			return why_set(why, "cron %s '%s' is not valid (%d-%d, *, lists, ranges, /steps)",
				       f->name, s, f->lo, f->hi);
	if (!*bits || s[strlen(s) - 1] == ',' || s[0] == ',' || strstr(s, ",,"))
		return why_set(why, "cron %s '%s' is not valid", f->name, s);
	return 0;
}

int value_cron(const char *s, struct cron_entry *out, char *why)
{
	uint64_t bits[5];
	bool any[5];
	const char *p = s;
	char field[64];

	memset(out, 0, sizeof *out);
	for (int i = 0; i < 5; i++) {
		size_t n;
		while (*p == ' ' || *p == '\t')
			p++;
		n = strcspn(p, " \t");
		if (!n)
			return why_set(why, "cron line needs five time fields and a command");
		if (n >= sizeof field)
			return why_set(why, "cron %s field is too long", cron_fields[i].name);
		memcpy(field, p, n);
		field[n] = 0;
		p += n;
		if (cron_field_parse(&cron_fields[i], field, &bits[i], &any[i], why) < 0)
			return -1;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p)
		return why_set(why, "cron line has no command");
	out->minute = bits[0];
	out->hour = (uint32_t)bits[1];
	out->mday = (uint32_t)bits[2];
	out->month = (uint16_t)bits[3];
	/* Sunday is both 0 and 7 in crontab. */
	out->wday = (uint8_t)((bits[4] & 0x7f) | ((bits[4] >> 7) & 1));
	out->mday_any = any[2];
	out->wday_any = any[4];
	out->command = strdup(p);
	if (!out->command)
		return why_set(why, "out of memory");
	return 0;
}

bool cron_matches(const struct cron_entry *c, int min, int hour, int mday, int mon, int wday)
{
	bool dom = c->mday >> mday & 1, dow = c->wday >> wday & 1, day;

	if (!(c->minute >> min & 1) || !(c->hour >> hour & 1) || !(c->month >> mon & 1))
		return false;
	/* crontab(5): with both day fields restricted, either one matching is enough. */
	if (c->mday_any || c->wday_any)
		day = dom && dow;
	else
		day = dom || dow;
	return day;
}

/* ---- names ---- */

static bool name_chars(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n < 1 || n > max || !(*s >= 'a' && *s <= 'z'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || strchr(extra, *s)))
			return false;
	return true;
}

bool value_is_tenant_name(const char *s)
{
	return name_chars(s, 32, "-");
}

bool value_is_item_name(const char *s)
{
	return name_chars(s, 32, "-_");
}

bool value_is_hostname(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n < 1 || n > 253 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && !(*p == '-' && label > 0))
			return false;
		if (++label > 63)
			return false;
	}
	return s[n - 1] != '-';
}

bool value_is_domain(const char *s)
{
	if (!strncmp(s, "*.", 2))
		s += 2;
	return strchr(s, '.') && value_is_hostname(s);
}

bool value_is_abs_path(const char *s)
{
	if (s[0] != '/' || strlen(s) > 1024)
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	for (const char *p = s; (p = strstr(p, "..")); p += 2)
		if (p[-1] == '/' && (p[2] == '/' || !p[2]))
			return false;
	return true;
}
