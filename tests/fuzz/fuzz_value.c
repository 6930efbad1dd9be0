/* libFuzzer target: every line of the input through every value parser.
 *
 * Each accepted value must survive a round trip where the module has a
 * formatter (CIDR, endpoint, firewall rule), and the parsed fields must stay
 * inside their ranges; each refused one must come with a reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "value.h"

#define MAX_LINE 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A refusal always explains itself. */
static void refused(int r, const char *why)
{
	if (r != -1 || !why[0])
		abort();
}

static void numbers(const char *s)
{
	char why[WHY_LEN] = "", again[64];
	uint64_t u;
	int64_t i, j;
	bool b;

	if (value_size(s, &u, why) < 0)
		refused(-1, why);
	why[0] = 0;
	if (value_duration_ms(s, &i, why) == 0) {
		if (i < 0)
			abort();
	} else {
		refused(-1, why);
	}
	why[0] = 0;
	if (value_cpu_millis(s, &i, why) == 0) {
		if (i < 0 || i > 100000999)
			abort();
	} else {
		refused(-1, why);
	}
	why[0] = 0;
	if (value_int(s, &i, why) == 0) {
		snprintf(again, sizeof again, "%lld", (long long)i);
		if (value_int(again, &j, NULL) < 0 || i != j)
			abort();
	} else {
		refused(-1, why);
	}
	why[0] = 0;
	if (value_bool(s, &b, why) < 0)
		refused(-1, why);
}

static void addresses(const char *s)
{
	char why[WHY_LEN] = "", text[96];
	uint32_t a;
	struct cidr c, c2;
	struct endpoint e, e2;

	if (value_ipv4(s, &a, why) == 0) {
		ipv4_format(a, text, sizeof text);
		if (strcmp(text, s))     /* only the canonical spelling is accepted */
			abort();
	}
	why[0] = 0;
	if (value_cidr(s, &c, why) == 0) {
		if (c.prefix < 0 || c.prefix > 32 || !cidr_contains(&c, c.addr))
			abort();
		cidr_format(&c, text, sizeof text);
		if (value_cidr(text, &c2, NULL) < 0 || c2.addr != c.addr || c2.prefix != c.prefix)
			abort();
	} else {
		refused(-1, why);
	}
	why[0] = 0;
	if (value_endpoint(s, &e, why) == 0) {
		if ((e.family != AF_INET && e.family != AF_INET6) || e.port == 0 ||
		    value_endpoint(e.text, &e2, NULL) < 0 || e2.family != e.family || e2.port != e.port ||
		    memcmp(e2.addr, e.addr, sizeof e.addr) || strcmp(e2.text, e.text))
			abort();
	} else {
		refused(-1, why);
	}
}

static void rules(const char *s)
{
	char why[WHY_LEN] = "", text[96];
	struct fw_rule r, r2;
	struct cron_entry c;

	if (value_fw_rule(s, &r, why) == 0) {
		fw_rule_format(&r, text, sizeof text);
		if (value_fw_rule(text, &r2, NULL) < 0 || r2.action != r.action || r2.src.addr != r.src.addr ||
		    r2.src.prefix != r.src.prefix || r2.dst.addr != r.dst.addr || r2.dst.prefix != r.dst.prefix ||
		    r2.family != r.family || memcmp(&r2.src6, &r.src6, sizeof r.src6) ||
		    memcmp(&r2.dst6, &r.dst6, sizeof r.dst6))
			abort();
	} else {
		refused(-1, why);
	}
	why[0] = 0;
	if (value_cron(s, &c, why) == 0) {
		if (!c.command || !c.command[0] || c.command[0] == ' ' || c.command[0] == '\t' ||
		    !c.minute || c.minute >> 60 || !c.hour || c.hour >> 24 || !(c.mday >> 1) || (c.mday & 1) ||
		    !(c.month >> 1) || (c.month & 1) || c.month >> 13 || !c.wday || c.wday >> 7)
			abort();
		/* Walk a week of January and a few other days: no shift is out of range. */
		for (int d = 1; d <= 31; d += 6)
			for (int m = 1; m <= 12; m += 11)
				(void)cron_matches(&c, d % 60, d % 24, d, m, d % 7);
		free(c.command);
	} else {
		refused(-1, why);
		if (c.command)
			abort();
	}
}

static void names(const char *s)
{
	/* A tenant name is an item name; it need not be a host name ("a-"). */
	if (value_is_tenant_name(s) && !value_is_item_name(s))
		abort();
	if (value_is_domain(s) && strncmp(s, "*.", 2) && !value_is_hostname(s))
		abort();
	if (value_is_abs_path(s) && s[0] != '/')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[MAX_LINE + 1];
	size_t start = 0;

	while (start <= size) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) : size, n = end - start;

		if (n > MAX_LINE)
			n = MAX_LINE;
		memcpy(line, data + start, n);
		line[n] = 0;
		numbers(line);
		addresses(line);
		rules(line);
		names(line);
		start = end + 1;
	}
	return 0;
}
