/* Unit tests for lib/value: every scalar parser, good and bad values, the
 * cron matcher and the name and path validators. Tables first, one loop
 * per table; a failing row prints itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "value.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* A row that failed names itself before the assertion stops the test.
 * cond is evaluated once: it may call a parser that allocates. */
#define CHECK(cond, ...)                                                   \
	do {                                                               \
		bool ok_ = (cond);                                         \
		if (!ok_) {                                                \
			print_message("    row: " __VA_ARGS__);            \
			print_message("\n");                               \
		}                                                          \
		_assert_true(ok_, #cond, __FILE__, __LINE__);              \
	} while (0)

/* A bad value: -1 and, when given, this exact reason. */
struct bad {
	const char *in;
	const char *why;                 /* NULL: any reason */
};

static void check_why(const char *in, const char *why, const char *want)
{
	CHECK(why[0] != 0, "'%s': empty reason", in);
	if (want)
		CHECK(!strcmp(why, want), "'%s': reason '%s', want '%s'", in, why, want);
}

static uint64_t bits(int lo, int hi, int step)
{
	uint64_t b = 0;

	for (int v = lo; v <= hi; v += step)
		b |= 1ULL << v;
	return b;
}

/* ---- numbers ---- */

static void test_size(void **state)
{
	static const struct { const char *in; uint64_t out; } good[] = {
		{ "0", 0 },
		{ "4096", 4096 },
		{ "1K", 1024 },
		{ "1k", 1024 },
		{ "1KB", 1024 },
		{ "512M", 512ULL << 20 },
		{ "512m", 512ULL << 20 },
		{ "16MB", 16ULL << 20 },
		{ "1G", 1ULL << 30 },
		{ "3g", 3ULL << 30 },
		{ "2T", 2ULL << 40 },
		{ "16777216", 16ULL << 20 },
		{ "0M", 0 },
		{ "007", 7 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ULL << 40 },
	};
	static const struct bad bad[] = {
		{ "", "'' is not a size (a number with an optional K, M, G or T suffix)" },
		{ "M", "'M' is not a size (a number with an optional K, M, G or T suffix)" },
		{ "1.5G", "'1.5G' is not a size (a number with an optional K, M, G or T suffix)" },
		{ "-1", NULL },
		{ "+1", NULL },
		{ "1X", NULL },
		{ "1 M", NULL },
		{ " 1M", NULL },
		{ "1M ", NULL },
		{ "1MiB", NULL },
		{ "1B", NULL },                  /* B only after a unit */
		{ "1KBB", NULL },
		{ "1P", NULL },
		{ "0x10", NULL },
		{ "18446744073709551616", "'18446744073709551616' is not a size (a number with an optional K, M, G or T suffix)" },
		{ "16777216T", "size '16777216T' is too large" },
		{ "17179869184G", "size '17179869184G' is too large" },
	};
	char why[WHY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		uint64_t out = 1;
		CHECK(value_size(good[i].in, &out, why) == 0, "'%s' refused: %s", good[i].in, why);
		CHECK(out == good[i].out, "'%s' -> %llu", good[i].in, (unsigned long long)out);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint64_t out = 77;
		why[0] = 0;
		CHECK(value_size(bad[i].in, &out, why) == -1, "'%s' accepted", bad[i].in);
		CHECK(out == 77, "'%s' wrote the output", bad[i].in);
		check_why(bad[i].in, why, bad[i].why);
	}
}

static void test_duration(void **state)
{
	static const struct { const char *in; int64_t out; } good[] = {
		{ "0", 0 },
		{ "30", 30000 },
		{ "30s", 30000 },
		{ "250ms", 250 },
		{ "0ms", 0 },
		{ "5m", 300000 },
		{ "1h", 3600000 },
		{ "2d", 172800000 },
		{ "9223372036854775807ms", INT64_MAX },
	};
	static const struct bad bad[] = {
		{ "", "'' is not a duration (a number with ms, s, m, h or d)" },
		{ "s", NULL },
		{ "ms", NULL },
		{ "1.5s", NULL },
		{ "10 s", NULL },
		{ "1w", NULL },
		{ "1S", NULL },
		{ "1sec", NULL },
		{ "1hm", NULL },
		{ "-1s", NULL },
		{ "1h30m", NULL },
		{ "9223372036854775807s", "duration '9223372036854775807s' is too large" },
		{ "106751991167301d", "duration '106751991167301d' is too large" },
	};
	char why[WHY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		int64_t out = -5;
		CHECK(value_duration_ms(good[i].in, &out, why) == 0, "'%s' refused: %s", good[i].in, why);
		CHECK(out == good[i].out, "'%s' -> %lld", good[i].in, (long long)out);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int64_t out = -5;
		why[0] = 0;
		CHECK(value_duration_ms(bad[i].in, &out, why) == -1, "'%s' accepted", bad[i].in);
		CHECK(out == -5, "'%s' wrote the output", bad[i].in);
		check_why(bad[i].in, why, bad[i].why);
	}
}

static void test_cpu(void **state)
{
	static const struct { const char *in; int64_t out; } good[] = {
		{ "0", 0 },
		{ "0.5", 500 },
		{ "2", 2000 },
		{ "1.25", 1250 },
		{ "0.001", 1 },
		{ "0.010", 10 },
		{ "3.0", 3000 },
		{ "100000", 100000000 },
		{ "100000.999", 100000999 },
	};
	static const struct bad bad[] = {
		{ "", "'' is not a CPU share (a number of cores such as 0.5 or 2)" },
		{ ".5", NULL },
		{ "1.", NULL },
		{ "-1", NULL },
		{ "+1", NULL },
		{ "abc", NULL },
		{ "1e3", NULL },
		{ "0,5", NULL },
		{ "1.2.3", NULL },
		{ "100001", NULL },
		{ "1.2345", "'1.2345' has more than three decimals" },
		{ "0.0001", "'0.0001' has more than three decimals" },
		{ "50%", NULL },
	};
	char why[WHY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		int64_t out = -5;
		CHECK(value_cpu_millis(good[i].in, &out, why) == 0, "'%s' refused: %s", good[i].in, why);
		CHECK(out == good[i].out, "'%s' -> %lld", good[i].in, (long long)out);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int64_t out = -5;
		why[0] = 0;
		CHECK(value_cpu_millis(bad[i].in, &out, why) == -1, "'%s' accepted", bad[i].in);
		check_why(bad[i].in, why, bad[i].why);
	}
}

static void test_int(void **state)
{
	static const struct { const char *in; int64_t out; } good[] = {
		{ "0", 0 },
		{ "42", 42 },
		{ "-5", -5 },
		{ "+7", 7 },
		{ "-0", 0 },
		{ "0010", 10 },
		{ "9223372036854775807", INT64_MAX },
		{ "-9223372036854775807", -INT64_MAX },
	};
	static const struct bad bad[] = {
		{ "", "'' is not an integer" },
		{ "-", NULL },
		{ "+", NULL },
		{ "12a", "'12a' is not an integer" },
		{ " 1", NULL },
		{ "1 ", NULL },
		{ "1.0", NULL },
		{ "0x10", NULL },
		{ "--1", NULL },
		{ "1e3", NULL },
		{ "9223372036854775808", NULL },
		{ "-9223372036854775808", NULL },
		{ "99999999999999999999999", NULL },
	};
	char why[WHY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		int64_t out = 99;
		CHECK(value_int(good[i].in, &out, why) == 0, "'%s' refused: %s", good[i].in, why);
		CHECK(out == good[i].out, "'%s' -> %lld", good[i].in, (long long)out);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int64_t out = 99;
		why[0] = 0;
		CHECK(value_int(bad[i].in, &out, why) == -1, "'%s' accepted", bad[i].in);
		CHECK(out == 99, "'%s' wrote the output", bad[i].in);
		check_why(bad[i].in, why, bad[i].why);
	}
}

static void test_bool(void **state)
{
	static const char *const yes[] = { "true", "yes", "on", "True", "Yes", "On", "TRUE" };
	static const char *const no[] = { "false", "no", "off", "False", "No", "Off", "FALSE" };
	static const char *const bad[] = { "", "1", "0", "y", "n", "tru", "truee", "YES", "oN", " true", "enabled" };
	char why[WHY_LEN];
	bool b;

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		b = false;
		CHECK(value_bool(yes[i], &b, why) == 0 && b, "'%s'", yes[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
		b = true;
		CHECK(value_bool(no[i], &b, why) == 0 && !b, "'%s'", no[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(value_bool(bad[i], &b, why) == -1, "'%s' accepted", bad[i]);
	assert_string_equal(why, "'enabled' is not a boolean (true or false)");
}

/* Every parser takes a NULL reason buffer. */
static void test_null_why(void **state)
{
	uint64_t u;
	int64_t i;
	bool b;
	uint32_t a;
	struct cidr c;
	struct endpoint e;
	struct fw_rule r;
	struct cron_entry ce;

	assert_int_equal(value_size("x", &u, NULL), -1);
	assert_int_equal(value_duration_ms("x", &i, NULL), -1);
	assert_int_equal(value_cpu_millis("x", &i, NULL), -1);
	assert_int_equal(value_int("x", &i, NULL), -1);
	assert_int_equal(value_bool("x", &b, NULL), -1);
	assert_int_equal(value_ipv4("x", &a, NULL), -1);
	assert_int_equal(value_cidr("x", &c, NULL), -1);
	assert_int_equal(value_endpoint("x", &e, NULL), -1);
	assert_int_equal(value_fw_rule("x", &r, NULL), -1);
	assert_int_equal(value_cron("x", &ce, NULL), -1);
	assert_null(ce.command);
}

/* ---- addresses ---- */

static void test_ipv4(void **state)
{
	static const struct { const char *in; uint32_t out; } good[] = {
		{ "0.0.0.0", 0 },
		{ "255.255.255.255", 0xffffffffu },
		{ "10.200.0.1", IP4(10, 200, 0, 1) },
		{ "192.168.1.0", IP4(192, 168, 1, 0) },
		{ "1.2.3.4", IP4(1, 2, 3, 4) },
	};
	static const char *const bad[] = {
		"", "1", "1.2.3", "1.2.3.4.5", "256.0.0.1", "1.2.3.256", "01.2.3.4", "1.2.3.04", "1.2.3.4 ",
		" 1.2.3.4", "a.b.c.d", "1..2.3", "1.2.3.-4", "1.2.3.+4", "1.2.3.4/8", "0x1.2.3.4", "1.2.3.",
		"1111.2.3.4", "::1", "1.2.3.4:22",
	};
	char why[WHY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		uint32_t out = 7;
		CHECK(value_ipv4(good[i].in, &out, why) == 0, "'%s' refused", good[i].in);
		CHECK(out == good[i].out, "'%s' -> %08x", good[i].in, out);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		uint32_t out = 7;
		CHECK(value_ipv4(bad[i], &out, why) == -1, "'%s' accepted", bad[i]);
		CHECK(out == 7, "'%s' wrote the output", bad[i]);
	}
	assert_string_equal(why, "'1.2.3.4:22' is not an IPv4 address");
}

static void test_cidr(void **state)
{
	static const struct { const char *in; uint32_t addr; int prefix; } good[] = {
		{ "10.0.0.0/8", IP4(10, 0, 0, 0), 8 },
		{ "1.2.3.4", IP4(1, 2, 3, 4), 32 },
		{ "0.0.0.0/0", 0, 0 },
		{ "10.200.0.1/16", IP4(10, 200, 0, 1), 16 },  /* host bits are kept */
		{ "255.255.255.255/32", 0xffffffffu, 32 },
		{ "192.168.0.0/024", IP4(192, 168, 0, 0), 24 },
	};
	static const struct bad bad[] = {
		{ "", "'' is not an IPv4 address or CIDR" },
		{ "/8", "'/8' is not an IPv4 address or CIDR" },
		{ "x/8", NULL },
		{ "10.0.0/8", NULL },
		{ "10.0.0.0/33", "'10.0.0.0/33' has a bad prefix length (0 to 32)" },
		{ "10.0.0.0/", "'10.0.0.0/' has a bad prefix length (0 to 32)" },
		{ "10.0.0.0/-1", NULL },
		{ "10.0.0.0/+8", NULL },
		{ "10.0.0.0/8x", NULL },
		{ "10.0.0.0/8/8", NULL },
		{ "10.0.0.0 /8", NULL },
		{ "10.0.0.0/ 8", NULL },
		{ "1000000000000000000000000000000000.0.0.0/8", "'1000000000000000000000000000000000.0.0.0/8' is not an IPv4 address or CIDR" },
	};
	char why[WHY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct cidr c = { 1, 1 };
		CHECK(value_cidr(good[i].in, &c, why) == 0, "'%s' refused: %s", good[i].in, why);
		CHECK(c.addr == good[i].addr && c.prefix == good[i].prefix, "'%s' -> %08x/%d", good[i].in,
		      c.addr, c.prefix);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct cidr c;
		why[0] = 0;
		CHECK(value_cidr(bad[i].in, &c, why) == -1, "'%s' accepted", bad[i].in);
		check_why(bad[i].in, why, bad[i].why);
	}
}

static void test_cidr_helpers(void **state)
{
	static const struct { int prefix; uint32_t mask; } masks[] = {
		{ -1, 0 }, { 0, 0 }, { 1, 0x80000000u }, { 8, 0xff000000u }, { 16, 0xffff0000u },
		{ 24, 0xffffff00u }, { 30, 0xfffffffcu }, { 31, 0xfffffffeu }, { 32, 0xffffffffu }, { 40, 0xffffffffu },
	};
	static const struct { const char *net, *addr; bool in; } contains[] = {
		{ "10.200.0.0/16", "10.200.0.0", true },
		{ "10.200.0.0/16", "10.200.255.255", true },
		{ "10.200.0.0/16", "10.201.0.0", false },
		{ "10.200.0.0/16", "10.199.255.255", false },
		{ "10.200.0.1/16", "10.200.7.7", true },          /* host bits of the net do not matter */
		{ "0.0.0.0/0", "255.255.255.255", true },
		{ "0.0.0.0/0", "0.0.0.0", true },
		{ "1.2.3.4/32", "1.2.3.4", true },
		{ "1.2.3.4/32", "1.2.3.5", false },
		{ "1.2.3.4", "1.2.3.4", true },
		{ "128.0.0.0/1", "127.255.255.255", false },
		{ "128.0.0.0/1", "128.0.0.0", true },
		{ "192.168.1.0/31", "192.168.1.1", true },
		{ "192.168.1.0/31", "192.168.1.2", false },
	};
	char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(masks); i++)
		CHECK(cidr_mask(masks[i].prefix) == masks[i].mask, "mask /%d -> %08x", masks[i].prefix,
		      cidr_mask(masks[i].prefix));
	for (size_t i = 0; i < ARRAY_SIZE(contains); i++) {
		struct cidr net;
		uint32_t a;
		assert_int_equal(value_cidr(contains[i].net, &net, NULL), 0);
		assert_int_equal(value_ipv4(contains[i].addr, &a, NULL), 0);
		CHECK(cidr_contains(&net, a) == contains[i].in, "%s in %s", contains[i].addr, contains[i].net);
	}
	ipv4_format(IP4(10, 200, 0, 1), buf, sizeof buf);
	assert_string_equal(buf, "10.200.0.1");
	ipv4_format(0xffffffffu, buf, sizeof buf);
	assert_string_equal(buf, "255.255.255.255");
	cidr_format(&(struct cidr){ IP4(10, 0, 0, 0), 8 }, buf, sizeof buf);
	assert_string_equal(buf, "10.0.0.0/8");
	cidr_format(&(struct cidr){ 0, 0 }, buf, sizeof buf);
	assert_string_equal(buf, "0.0.0.0/0");
	cidr_format(&(struct cidr){ IP4(1, 2, 3, 4), 32 }, buf, 8);
	assert_string_equal(buf, "1.2.3.4");              /* truncated, terminated */
}

static void test_cidr6(void **state)
{
	static const struct { const char *net, *addr; bool in; } contains[] = {
		{ "fd00:f1ef::/64", "fd00:f1ef::2", true },
		{ "fd00:f1ef::1/64", "fd00:f1ef::ffff:ffff:ffff:ffff", true },
		{ "fd00:f1ef::/64", "fd00:f1ef:0:1::2", false },
		{ "fd00:f1ef::/63", "fd00:f1ef:0:1::2", true },
		{ "fd00:f1ef::/120", "fd00:f1ef::ff", true },
		{ "fd00:f1ef::/120", "fd00:f1ef::100", false },
		{ "::/0", "2001:db8::1", true },
		{ "2001:db8::1/128", "2001:db8::1", true },
		{ "2001:db8::1/128", "2001:db8::2", false },
		{ "8000::/1", "7fff::", false },
	};
	static const struct bad bad[] = {
		{ "fd00::/", "'fd00::/' has a bad prefix length (0 to 128)" },
		{ "fd00::/-1", "'fd00::/-1' has a bad prefix length (0 to 128)" },
		{ "10.0.0.1/8", "'10.0.0.1/8' is not an IPv6 address or CIDR" },
		{ "::ffff:1.2.3.4/96", "'::ffff:1.2.3.4/96' is not an IPv6 address or CIDR" },
		{ "g::1", "'g::1' is not an IPv6 address or CIDR" },
	};
	char why[WHY_LEN], buf[64];
	struct cidr6 c;
	uint8_t a[16];

	for (size_t i = 0; i < ARRAY_SIZE(contains); i++) {
		assert_int_equal(value_cidr6(contains[i].net, &c, NULL), 0);
		assert_int_equal(value_ipv6(contains[i].addr, a, NULL), 0);
		CHECK(cidr6_contains(&c, a) == contains[i].in, "%s in %s", contains[i].addr, contains[i].net);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		why[0] = 0;
		CHECK(value_cidr6(bad[i].in, &c, why) == -1, "'%s' accepted", bad[i].in);
		check_why(bad[i].in, why, bad[i].why);
	}
	assert_int_equal(value_ipv6("1.2.3.4", a, why), -1);
	assert_string_equal(why, "'1.2.3.4' is not an IPv6 address");
	assert_int_equal(value_ipv6("::ffff:1.2.3.4", a, why), -1);
	assert_int_equal(value_cidr6("FD00:F1EF:0::1/64", &c, NULL), 0);
	cidr6_format(&c, buf, sizeof buf);
	assert_string_equal(buf, "fd00:f1ef::1/64");
	ipv6_format(c.addr, buf, sizeof buf);
	assert_string_equal(buf, "fd00:f1ef::1");
}

static void test_endpoint(void **state)
{
	static const struct { const char *in; int family; const char *addr; unsigned port; const char *text; } good[] = {
		{ "0.0.0.0:22", AF_INET, "0.0.0.0", 22, "0.0.0.0:22" },
		{ "127.0.0.1:9187", AF_INET, "127.0.0.1", 9187, "127.0.0.1:9187" },
		{ "10.0.0.1:65535", AF_INET, "10.0.0.1", 65535, "10.0.0.1:65535" },
		{ "1.2.3.4:1", AF_INET, "1.2.3.4", 1, "1.2.3.4:1" },
		{ "1.2.3.4:022", AF_INET, "1.2.3.4", 22, "1.2.3.4:22" },
		{ "[::]:22", AF_INET6, "::", 22, "[::]:22" },
		{ "[::1]:8080", AF_INET6, "::1", 8080, "[::1]:8080" },
		{ "[fe80::1:2]:443", AF_INET6, "fe80::1:2", 443, "[fe80::1:2]:443" },
		{ "[::ffff:1.2.3.4]:80", AF_INET6, "::ffff:1.2.3.4", 80, "[::ffff:1.2.3.4]:80" },
	};
	static const struct bad bad[] = {
		{ "", "'' is not an address:port (IPv6 as [addr]:port)" },
		{ "0.0.0.0", "'0.0.0.0' is not an address:port (IPv6 as [addr]:port)" },
		{ ":22", NULL },
		{ "0.0.0.0:", "'0.0.0.0:' has a bad port (1 to 65535)" },
		{ "0.0.0.0:0", "'0.0.0.0:0' has a bad port (1 to 65535)" },
		{ "0.0.0.0:65536", "'0.0.0.0:65536' has a bad port (1 to 65535)" },
		{ "0.0.0.0:-1", NULL },
		{ "0.0.0.0:+22", NULL },
		{ "0.0.0.0:22 ", NULL },
		{ "0.0.0.0:ssh", NULL },
		{ "localhost:80", "'localhost:80' is not an address:port (IPv6 as [addr]:port)" },
		{ "::1:22", NULL },
		{ "[::1]22", "'[::1]22' is not an address:port (IPv6 as [addr]:port)" },
		{ "[::1", NULL },
		{ "[::1]", NULL },
		{ "[]:22", "'[]:22' is not an address:port (IPv6 as [addr]:port)" },
		{ "[1.2.3.4]:22", NULL },
		{ "[::1]:0", "'[::1]:0' has a bad port (1 to 65535)" },
		{ "[::1]:99999999999999999999", NULL },
		{ "[0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0001]:22", NULL },
		{ "256.0.0.1:22", NULL },
	};
	char why[WHY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct endpoint e;
		uint8_t want[16] = { 0 };
		CHECK(value_endpoint(good[i].in, &e, why) == 0, "'%s' refused: %s", good[i].in, why);
		assert_int_equal(inet_pton(good[i].family, good[i].addr, want), 1);
		CHECK(e.family == good[i].family, "'%s' family %d", good[i].in, e.family);
		CHECK(!memcmp(e.addr, want, sizeof want), "'%s' address", good[i].in);
		CHECK(e.port == good[i].port, "'%s' port %u", good[i].in, e.port);
		CHECK(!strcmp(e.text, good[i].text), "'%s' text '%s'", good[i].in, e.text);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct endpoint e;
		why[0] = 0;
		CHECK(value_endpoint(bad[i].in, &e, why) == -1, "'%s' accepted", bad[i].in);
		check_why(bad[i].in, why, bad[i].why);
	}
}

/* ---- firewall rules ---- */

static void test_fw_rule(void **state)
{
	static const struct {
		const char *in;
		enum fw_action action;
		uint32_t src; int sp;
		uint32_t dst; int dp;
		const char *text;
	} good[] = {
		{ "allow", FW_ALLOW, 0, 0, 0, 0, "allow" },
		{ "deny", FW_DENY, 0, 0, 0, 0, "deny" },
		{ "allow 10.0.0.0/8", FW_ALLOW, IP4(10, 0, 0, 0), 8, 0, 0, "allow 10.0.0.0/8 0.0.0.0/0" },
		{ "deny 10.200.0.0/16 10.200.0.1", FW_DENY, IP4(10, 200, 0, 0), 16, IP4(10, 200, 0, 1), 32,
		  "deny 10.200.0.0/16 10.200.0.1/32" },
		{ "  allow\t1.2.3.4/32    5.6.7.0/24\t", FW_ALLOW, IP4(1, 2, 3, 4), 32, IP4(5, 6, 7, 0), 24,
		  "allow 1.2.3.4/32 5.6.7.0/24" },
		{ "allow 0.0.0.0/0 0.0.0.0/0", FW_ALLOW, 0, 0, 0, 0, "allow 0.0.0.0/0 0.0.0.0/0" },
	};
	static const struct bad bad[] = {
		{ "", "firewall rule '' must be 'allow|deny [SRC [DST]]'" },
		{ "   ", "firewall rule '   ' must be 'allow|deny [SRC [DST]]'" },
		{ "permit", "firewall rule 'permit' must start with allow or deny" },
		{ "ALLOW", "firewall rule 'ALLOW' must start with allow or deny" },
		{ "allowed 1.2.3.4", NULL },
		{ "allow any", "'any' is not an IPv4 address or CIDR" },
		{ "allow 1.2.3.4 x", "'x' is not an IPv4 address or CIDR" },
		{ "allow 1.2.3.4/40", "'1.2.3.4/40' has a bad prefix length (0 to 32)" },
		{ "allow 1.2.3.4 5.6.7.8 9.9.9.9", "firewall rule 'allow 1.2.3.4 5.6.7.8 9.9.9.9' must be 'allow|deny [SRC [DST]]'" },
		{ "deny 1.2.3.4,5.6.7.8", NULL },
		{ "allow 10.0.0.0/8 -> 1.2.3.4", NULL },
		{ "allow 10.0.0.0/8 ::/0", "firewall rule 'allow 10.0.0.0/8 ::/0' mixes IPv4 and IPv6" },
		{ "deny fd00::/8 0.0.0.0/0", "firewall rule 'deny fd00::/8 0.0.0.0/0' mixes IPv4 and IPv6" },
		{ "allow fd00::/129", "'fd00::/129' has a bad prefix length (0 to 128)" },
		{ "allow fd00:::1", "'fd00:::1' is not an IPv6 address or CIDR" },
		{ "allow ::ffff:10.0.0.1", "'::ffff:10.0.0.1' is not an IPv6 address or CIDR" },
		{ "allow fe80::1%eth0", "'fe80::1%eth0' is not an IPv6 address or CIDR" },
	};
	char why[WHY_LEN], text[64], longrule[200];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct fw_rule r;
		CHECK(value_fw_rule(good[i].in, &r, why) == 0, "'%s' refused: %s", good[i].in, why);
		CHECK(r.action == good[i].action, "'%s' action", good[i].in);
		CHECK(r.src.addr == good[i].src && r.src.prefix == good[i].sp, "'%s' src", good[i].in);
		CHECK(r.dst.addr == good[i].dst && r.dst.prefix == good[i].dp, "'%s' dst", good[i].in);
		fw_rule_format(&r, text, sizeof text);
		CHECK(!strcmp(text, good[i].text), "'%s' formats as '%s'", good[i].in, text);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct fw_rule r;
		why[0] = 0;
		CHECK(value_fw_rule(bad[i].in, &r, why) == -1, "'%s' accepted", bad[i].in);
		check_why(bad[i].in, why, bad[i].why);
	}
	/* IPv6 rules */
	{
		static const struct { const char *in, *text; } good6[] = {
			{ "allow fd00:f1ef::/64", "allow fd00:f1ef::/64 ::/0" },
			{ "deny fd00:f1ef::/64 fd00:f1ef::/64", "deny fd00:f1ef::/64 fd00:f1ef::/64" },
			{ "allow ::/0 FD00:F1EF::1", "allow ::/0 fd00:f1ef::1/128" },
			{ "allow 2001:db8:0:0:0:0:0:1/127 ::/0", "allow 2001:db8::1/127 ::/0" },
		};
		for (size_t i = 0; i < ARRAY_SIZE(good6); i++) {
			struct fw_rule r, r2;
			CHECK(value_fw_rule(good6[i].in, &r, why) == 0, "'%s' refused: %s", good6[i].in, why);
			CHECK(r.family == FW_IPV6, "'%s' family", good6[i].in);
			fw_rule_format(&r, text, sizeof text);
			CHECK(!strcmp(text, good6[i].text), "'%s' formats as '%s'", good6[i].in, text);
			CHECK(value_fw_rule(text, &r2, why) == 0 && !memcmp(&r2.src6, &r.src6, sizeof r.src6) &&
			      !memcmp(&r2.dst6, &r.dst6, sizeof r.dst6), "'%s' round trip", text);
		}
	}
	/* 128 bytes and more are refused before splitting. */
	memset(longrule, ' ', sizeof longrule);
	memcpy(longrule, "allow", 5);
	longrule[127] = 0;
	assert_int_equal(value_fw_rule(longrule, &(struct fw_rule){ 0 }, why), 0);
	longrule[127] = ' ';
	longrule[128] = 0;
	assert_int_equal(value_fw_rule(longrule, &(struct fw_rule){ 0 }, why), -1);
	assert_string_equal(why, "firewall rule is too long");
}

/* ---- cron ---- */

#define ALL_MIN bits(0, 59, 1)
#define ALL_HOUR ((uint32_t)bits(0, 23, 1))
#define ALL_MDAY ((uint32_t)bits(1, 31, 1))
#define ALL_MON ((uint16_t)bits(1, 12, 1))
#define ALL_WDAY 0x7f

static void test_cron_parse(void **state)
{
	/* Not static: the masks are computed. */
	const struct {
		const char *in;
		uint64_t minute; uint32_t hour, mday; uint16_t month; uint8_t wday;
		bool mday_any, wday_any;
		const char *command;
	} good[] = {
		{ "* * * * * cmd", ALL_MIN, ALL_HOUR, ALL_MDAY, ALL_MON, ALL_WDAY, true, true, "cmd" },
		{ "0 0 1 1 0 x", 1, 1, 1U << 1, 1U << 1, 1, false, false, "x" },
		{ "59 23 31 12 6 x", 1ULL << 59, 1U << 23, 1U << 31, 1U << 12, 1U << 6, false, false, "x" },
		{ "*/15 9-17 * * mon-fri cmd", bits(0, 59, 15), (uint32_t)bits(9, 17, 1), ALL_MDAY, ALL_MON,
		  0x3e, true, false, "cmd" },
		{ "0 12 1,15 jan,jul sun x", 1, 1U << 12, 1U << 1 | 1U << 15, 1U << 1 | 1U << 7, 1, false,
		  false, "x" },
		{ "0 0 * * 7 x", 1, 1, ALL_MDAY, ALL_MON, 1, true, false, "x" },        /* Sunday as 7 */
		{ "0 0 * * 5-7 x", 1, 1, ALL_MDAY, ALL_MON, 1U << 5 | 1U << 6 | 1, true, false, "x" },
		{ "0 0 * * 0,7 x", 1, 1, ALL_MDAY, ALL_MON, 1, true, false, "x" },
		{ "0 0 * * SUN,Sat x", 1, 1, ALL_MDAY, ALL_MON, 1 | 1U << 6, true, false, "x" },
		{ "0 0 * DEC * x", 1, 1, ALL_MDAY, 1U << 12, ALL_WDAY, true, true, "x" },
		{ "0 0 * feb-apr/2 * x", 1, 1, ALL_MDAY, 1U << 2 | 1U << 4, ALL_WDAY, true, true, "x" },
		{ "5/20 * * * * x", 1ULL << 5 | 1ULL << 25 | 1ULL << 45, ALL_HOUR, ALL_MDAY, ALL_MON, ALL_WDAY,
		  true, true, "x" },
		{ "0-10/5,30 * * * * x", 1ULL | 1ULL << 5 | 1ULL << 10 | 1ULL << 30, ALL_HOUR, ALL_MDAY, ALL_MON,
		  ALL_WDAY, true, true, "x" },
		{ "0 0 */2 * 1 x", 1, 1, (uint32_t)bits(1, 31, 2), ALL_MON, 1U << 1, true, false, "x" },
		{ "0 0 1-31/2 * 1 x", 1, 1, (uint32_t)bits(1, 31, 2), ALL_MON, 1U << 1, false, false, "x" },
		{ "0 0 * * */3 x", 1, 1, ALL_MDAY, ALL_MON, 1 | 1U << 3 | 1U << 6, true, true, "x" },
		/* uWSGI form: -1 any, -N every N (value % N == 0) */
		{ "-1 -1 -1 -1 -1 cmd", ALL_MIN, ALL_HOUR, ALL_MDAY, ALL_MON, ALL_WDAY, true, true, "cmd" },
		{ "59 23 -1 -1 -1 /bin/nightly", 1ULL << 59, 1U << 23, ALL_MDAY, ALL_MON, ALL_WDAY, true, true,
		  "/bin/nightly" },
		{ "-5 -2 -1 -3 -1 x", bits(0, 59, 5), (uint32_t)bits(0, 23, 2), ALL_MDAY,
		  1U << 3 | 1U << 6 | 1U << 9 | 1U << 12, ALL_WDAY, true, true, "x" },
		{ "-15 -1 -10 -1 -1 x", bits(0, 59, 15), ALL_HOUR, 1U << 10 | 1U << 20 | 1U << 30, ALL_MON,
		  ALL_WDAY, true, true, "x" },
		{ "-1 -1 -1 -1 -2 x", ALL_MIN, ALL_HOUR, ALL_MDAY, ALL_MON, 0x55, true, true, "x" },
		{ "-1 -1 -1 -1 -7 x", ALL_MIN, ALL_HOUR, ALL_MDAY, ALL_MON, 1, true, true, "x" }, /* 0 and 7 */
		{ "-59 -23 -31 -12 -7 x", 1 | 1ULL << 59, 1 | 1U << 23, 1U << 31, 1U << 12, 1, true, true, "x" },
		{ "0 3 15 -1 3 x", 1, 1U << 3, 1U << 15, ALL_MON, 1U << 3, false, false, "x" },
		/* the command is the rest of the line, inner spaces kept */
		{ "\t0  0 * * *   /bin/echo a  b ", 1, 1, ALL_MDAY, ALL_MON, ALL_WDAY, true, true,
		  "/bin/echo a  b " },
		{ "0 0 * * * a b c d e f", 1, 1, ALL_MDAY, ALL_MON, ALL_WDAY, true, true, "a b c d e f" },
	};
	char why[WHY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct cron_entry c;

		CHECK(value_cron(good[i].in, &c, why) == 0, "'%s' refused: %s", good[i].in, why);
		CHECK(c.minute == good[i].minute, "'%s' minute %llx", good[i].in, (unsigned long long)c.minute);
		CHECK(c.hour == good[i].hour, "'%s' hour %x", good[i].in, c.hour);
		CHECK(c.mday == good[i].mday, "'%s' mday %x", good[i].in, c.mday);
		CHECK(c.month == good[i].month, "'%s' month %x", good[i].in, c.month);
		CHECK(c.wday == good[i].wday, "'%s' wday %x", good[i].in, c.wday);
		CHECK(c.mday_any == good[i].mday_any, "'%s' mday_any", good[i].in);
		CHECK(c.wday_any == good[i].wday_any, "'%s' wday_any", good[i].in);
		CHECK(c.command && !strcmp(c.command, good[i].command), "'%s' command '%s'", good[i].in,
		      c.command);
		free(c.command);
	}
}

static void test_cron_bad(void **state)
{
	static const struct bad bad[] = {
		{ "", "cron line needs five time fields and a command" },
		{ "   ", "cron line needs five time fields and a command" },
		{ "* * * *", "cron line needs five time fields and a command" },
		{ "* * * * *", "cron line has no command" },
		{ "* * * * * \t ", "cron line has no command" },
		{ "-1 -1 -1 -1 -1", "cron line has no command" },
		{ "60 * * * * x", "cron minute '60' is not valid (0-59, *, lists, ranges, /steps)" },
		{ "* 24 * * * x", "cron hour '24' is not valid (0-23, *, lists, ranges, /steps)" },
		{ "* * 0 * * x", "cron day of month '0' is not valid (1-31, *, lists, ranges, /steps)" },
		{ "* * 32 * * x", "cron day of month '32' is not valid (1-31, *, lists, ranges, /steps)" },
		{ "* * * 0 * x", "cron month '0' is not valid (1-12, *, lists, ranges, /steps)" },
		{ "* * * 13 * x", "cron month '13' is not valid (1-12, *, lists, ranges, /steps)" },
		{ "* * * * 8 x", "cron day of week '8' is not valid (0-7, *, lists, ranges, /steps)" },
		{ "* * * * sunday x", "cron day of week 'sunday' is not valid (0-7, *, lists, ranges, /steps)" },
		{ "* * * * jan x", NULL },
		{ "* * * mon * x", NULL },
		{ "* * * ja * x", NULL },
		{ "*/0 * * * * x", "cron minute '*/0' is not valid (0-59, *, lists, ranges, /steps)" },
		{ "*/60 * * * * x", "cron minute '*/60' is not valid (0-59, *, lists, ranges, /steps)" },
		{ "* */24 * * * x", NULL },
		{ "*/ * * * * x", NULL },
		{ "*/-1 * * * * x", NULL },
		{ "5-1 * * * * x", "cron minute '5-1' is not valid (0-59, *, lists, ranges, /steps)" },
		{ "1- * * * * x", NULL },
		{ "-5- * * * * x", NULL },
		{ "1-2-3 * * * * x", NULL },
		{ "** * * * * x", NULL },
		{ "a * * * * x", NULL },
		{ "1.5 * * * * x", NULL },
		{ "1,,2 * * * * x", "cron minute '1,,2' is not valid" },
		{ ",1 * * * * x", "cron minute ',1' is not valid" },
		{ "1, * * * * x", "cron minute '1,' is not valid" },
		{ ", * * * * x", "cron minute ',' is not valid" },
		{ "@daily x", "cron minute '@daily' is not valid (0-59, *, lists, ranges, /steps)" },
		{ "-0 -1 -1 -1 -1 x", "cron minute '-0' is out of range" },
		{ "-61 -1 -1 -1 -1 x", "cron minute '-61' is out of range" },
		{ "-1 -25 -1 -1 -1 x", "cron hour '-25' is out of range" },
		{ "-1 -1 -32 -1 -1 x", "cron day of month '-32' is out of range" },
		{ "-1 -1 -1 -13 -1 x", "cron month '-13' is out of range" },
		{ "-1 -1 -1 -1 -8 x", "cron day of week '-8' is out of range" },
		{ "-1x -1 -1 -1 -1 x", "cron minute '-1x' is out of range" },
		{ "--1 -1 -1 -1 -1 x", NULL },
		{ "- -1 -1 -1 -1 x", NULL },
		{ "-1,-2 -1 -1 -1 -1 x", NULL },
		{ "0123456789012345678901234567890123456789012345678901234567890123 * * * * x",
		  "cron minute field is too long" },
	};
	char why[WHY_LEN];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct cron_entry c;
		why[0] = 0;
		CHECK(value_cron(bad[i].in, &c, why) == -1, "'%s' accepted", bad[i].in);
		CHECK(c.command == NULL, "'%s' left a command", bad[i].in);
		check_why(bad[i].in, why, bad[i].why);
	}
}

/* When is a Sunday? 2024-09-01 was one; tests pass explicit fields anyway. */
struct when {
	int min, hour, mday, mon, wday;
	bool fires;
};

static void check_schedule(const char *line, const struct when *w, size_t n)
{
	struct cron_entry c;
	char why[WHY_LEN];

	CHECK(value_cron(line, &c, why) == 0, "'%s' refused: %s", line, why);
	for (size_t i = 0; i < n; i++)
		CHECK(cron_matches(&c, w[i].min, w[i].hour, w[i].mday, w[i].mon, w[i].wday) == w[i].fires,
		      "'%s' at %02d:%02d mday %d mon %d wday %d should %s", line, w[i].hour, w[i].min,
		      w[i].mday, w[i].mon, w[i].wday, w[i].fires ? "fire" : "not fire");
	free(c.command);
}

#define SCHEDULE(line, ...)                                                   \
	do {                                                                  \
		static const struct when w_[] = { __VA_ARGS__ };              \
		check_schedule(line, w_, ARRAY_SIZE(w_));                    \
	} while (0)

static void test_cron_matches(void **state)
{
	/* Both day fields restricted: either may match (crontab(5)). */
	SCHEDULE("0 0 13 * 5 x",
		 { 0, 0, 13, 6, 2, true },      /* the 13th, a Tuesday */
		 { 0, 0, 7, 6, 5, true },       /* a Friday, the 7th */
		 { 0, 0, 13, 6, 5, true },      /* Friday the 13th */
		 { 0, 0, 14, 6, 6, false },
		 { 1, 0, 13, 6, 5, false },     /* wrong minute */
		 { 0, 1, 13, 6, 5, false });    /* wrong hour */
	/* Only one restricted: that one decides. */
	SCHEDULE("0 0 13 * * x",
		 { 0, 0, 13, 1, 3, true },
		 { 0, 0, 12, 1, 5, false });
	SCHEDULE("0 0 * * 5 x",
		 { 0, 0, 1, 1, 5, true },
		 { 0, 0, 13, 1, 4, false });
	/* A field starting with '*' counts as unrestricted, as in cron(8):
	 * odd days that are Mondays, not odd days or Mondays. */
	SCHEDULE("0 0 */2 * 1 x",
		 { 0, 0, 1, 1, 1, true },
		 { 0, 0, 3, 1, 1, true },
		 { 0, 0, 2, 1, 1, false },
		 { 0, 0, 1, 1, 2, false });
	/* The same days written without '*' are restricted: OR. */
	SCHEDULE("0 0 1-31/2 * 1 x",
		 { 0, 0, 2, 1, 1, true },
		 { 0, 0, 1, 1, 2, true },
		 { 0, 0, 2, 1, 2, false });
	/* Sunday is 0 and 7. */
	SCHEDULE("0 0 * * 0 x", { 0, 0, 5, 1, 0, true }, { 0, 0, 5, 1, 6, false }, { 0, 0, 5, 1, 1, false });
	SCHEDULE("0 0 * * 7 x", { 0, 0, 5, 1, 0, true }, { 0, 0, 5, 1, 6, false }, { 0, 0, 5, 1, 1, false });
	SCHEDULE("0 0 * * 6-7 x", { 0, 0, 5, 1, 0, true }, { 0, 0, 5, 1, 6, true }, { 0, 0, 5, 1, 5, false });
	/* Months and their names. */
	SCHEDULE("30 6 1 jan,dec * x",
		 { 30, 6, 1, 1, 3, true },
		 { 30, 6, 1, 12, 3, true },
		 { 30, 6, 1, 6, 3, false });
	/* Steps from a start: 5/20 is 5, 25, 45. */
	SCHEDULE("5/20 * * * * x",
		 { 5, 3, 9, 9, 1, true },
		 { 25, 3, 9, 9, 1, true },
		 { 45, 3, 9, 9, 1, true },
		 { 0, 3, 9, 9, 1, false },
		 { 20, 3, 9, 9, 1, false });
	/* uWSGI: -1 is any, -N is every N (value % N == 0). */
	SCHEDULE("-1 -1 -1 -1 -1 x",
		 { 0, 0, 1, 1, 0, true },
		 { 59, 23, 31, 12, 6, true });
	SCHEDULE("-5 -1 -1 -1 -1 x",
		 { 0, 7, 3, 3, 3, true },
		 { 55, 7, 3, 3, 3, true },
		 { 3, 7, 3, 3, 3, false });
	SCHEDULE("0 -6 -1 -1 -1 x",
		 { 0, 0, 3, 3, 3, true },
		 { 0, 18, 3, 3, 3, true },
		 { 0, 3, 3, 3, 3, false });
	SCHEDULE("0 0 -1 -3 -1 x",
		 { 0, 0, 1, 3, 3, true },
		 { 0, 0, 1, 12, 3, true },
		 { 0, 0, 1, 1, 3, false });
	SCHEDULE("59 23 -1 -1 -1 x",
		 { 59, 23, 17, 8, 4, true },
		 { 58, 23, 17, 8, 4, false });
	/* uWSGI ORs the days only when both are plain numbers: a negative
	 * day field leaves the weekday to decide alone. */
	SCHEDULE("0 0 -2 -1 5 x",
		 { 0, 0, 2, 1, 5, true },      /* even day, Friday */
		 { 0, 0, 3, 1, 5, false },     /* odd day, Friday */
		 { 0, 0, 2, 1, 4, false });    /* even day, Thursday */
	SCHEDULE("0 0 15 -1 -1 x",
		 { 0, 0, 15, 2, 0, true },
		 { 0, 0, 14, 2, 0, false });
	SCHEDULE("0 0 15 -1 3 x",
		 { 0, 0, 15, 2, 0, true },
		 { 0, 0, 16, 2, 3, true },
		 { 0, 0, 16, 2, 4, false });
	SCHEDULE("0 0 -1 -1 -7 x",
		 { 0, 0, 9, 9, 0, true },
		 { 0, 0, 9, 9, 1, false });
}

/* ---- names and paths ---- */

static void check_names(bool (*fn)(const char *), const char *what, const char *const *good, size_t ngood,
			const char *const *bad, size_t nbad)
{
	for (size_t i = 0; i < ngood; i++)
		CHECK(fn(good[i]), "%s refused '%s'", what, good[i]);
	for (size_t i = 0; i < nbad; i++)
		CHECK(!fn(bad[i]), "%s accepted '%s'", what, bad[i]);
}

#define NAMES(fn, good, bad) check_names(fn, #fn, good, ARRAY_SIZE(good), bad, ARRAY_SIZE(bad))

#define C32 "abcdefghijabcdefghijabcdefghijab"
#define L63 "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc"

static void test_tenant_name(void **state)
{
	static const char *const good[] = { "a", "alice", "a-1", "a1", "z9-", "a--b", C32 };
	static const char *const bad[] = {
		"", "A", "Alice", "1a", "-a", "a_b", C32 "c", "al ice", "al.ice", "\xc3\xa9t\xc3\xa9", "a/b", "..",
	};

	NAMES(value_is_tenant_name, good, bad);
}

static void test_item_name(void **state)
{
	static const char *const good[] = { "a", "web", "web-2", "a_b", "a_", "x-_-y", C32 };
	static const char *const bad[] = { "", "_a", "-a", "9a", "Web", "a.b", "a b", C32 "c", "a/b" };

	NAMES(value_is_item_name, good, bad);
}

static void test_hostname(void **state)
{
	static char long_ok[254], long_bad[255];
	static const char *const good[] = {
		"a", "alice", "a-b", "a-b.c", "x1.example.com", "1.2.3.4", "A.Example.COM", "0", L63, L63 ".com",
		long_ok,
	};
	static const char *const bad[] = {
		"", ".", "a.", ".a", "-a", "a-", "a..b", "a-.b", "a.-b", "a_b", "a b", L63 "d", L63 "d.com",
		"a.b-", "*.example.com", "\xc3\xa9.com", long_bad,
	};

	/* 253 characters: four 63-character labels would be 255, so 3 x 63 + 61. */
	snprintf(long_ok, sizeof long_ok, "%s.%s.%s.%.61s", L63, L63, L63, L63);
	assert_int_equal(strlen(long_ok), 253);
	snprintf(long_bad, sizeof long_bad, "%s.%s.%s.%.62s", L63, L63, L63, L63);
	assert_int_equal(strlen(long_bad), 254);
	NAMES(value_is_hostname, good, bad);
}

static void test_domain(void **state)
{
	static const char *const good[] = {
		"example.com", "*.example.com", "a.b.c", "www.alice.example.com", "xn--bcher-kva.example",
		"*.a.b",
	};
	static const char *const bad[] = {
		"", "localhost", "*.com", "*", "*.", "*example.com", "**.example.com", "*.*.example.com",
		"ex ample.com", "example.com.", ".example.com", "a.*.com", "example..com", "-a.com",
		"a_b.com", "https://example.com",
	};

	NAMES(value_is_domain, good, bad);
}

static void test_abs_path(void **state)
{
	static char p1024[1025], p1025[1026];
	static const char *const good[] = {
		"/", "/a", "/a/b", "/a/...", "/a/.b", "/a..b", "/a/./b", "/..a", "/a/b..", "/a b", "/a/", "//a",
		"/\xc3\xa9t\xc3\xa9", p1024,
	};
	static const char *const bad[] = {
		"", "a", "./a", "a/b", "/..", "/../a", "/a/..", "/a/../b", "/a/.../../b", "/a\nb", "/a\tb",
		"/a\x7f", "/a\x01", p1025, "~/a",
	};

	p1024[0] = '/';
	memset(p1024 + 1, 'a', 1023);
	p1025[0] = '/';
	memset(p1025 + 1, 'a', 1024);
	NAMES(value_is_abs_path, good, bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_cpu),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_null_why),
		cmocka_unit_test(test_ipv4),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_cidr_helpers),
		cmocka_unit_test(test_endpoint),
		cmocka_unit_test(test_fw_rule),
		cmocka_unit_test(test_cidr6),
		cmocka_unit_test(test_cron_parse),
		cmocka_unit_test(test_cron_bad),
		cmocka_unit_test(test_cron_matches),
		cmocka_unit_test(test_tenant_name),
		cmocka_unit_test(test_item_name),
		cmocka_unit_test(test_hostname),
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_abs_path),
	};

	return cmocka_run_group_tests_name("value", tests, NULL, NULL);
}
