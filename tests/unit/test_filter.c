/* Unit tests for fief-router's firewall (router/filter.c) and its packet
 * parser (lib/packet.c): the seed's default rule set, first-match order,
 * the implicit deny, and packets good, lying and truncated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "packet.h"
#include "../../router/filter.h"

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static const char host_yaml[] =
	"state_dir: /tmp/x\ntenants_dir: /tmp/x\ndistros_dir: /tmp/x\nhomes_dir: /tmp/x\n"
	"log_dir: /tmp/x\n"
	"router: { enabled: true, address: 10.200.0.1/16 }\n";

struct fw_fixture {
	struct config_host *h;
	struct filter out, in;
};

static int setup(void **state)
{
	struct fw_fixture *f = calloc(1, sizeof *f);
	struct config_errors errs;

	assert_non_null(f);
	f->h = config_host_parse("test.yaml", host_yaml, sizeof host_yaml - 1, &errs);
	if (!f->h)
		config_errors_print(&errs, stderr);
	assert_non_null(f->h);
	assert_int_equal(filter_compile(&f->out, f->h->router.firewall.out.v, f->h->router.firewall.out.n), 0);
	assert_int_equal(filter_compile(&f->in, f->h->router.firewall.in.v, f->h->router.firewall.in.n), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fw_fixture *f = *state;

	filter_free(&f->out);
	filter_free(&f->in);
	config_host_free(f->h);
	free(f);
	return 0;
}

/* The seed's rules: tenants reach the router and the world, not each other. */
static void test_default_rules(void **state)
{
	struct fw_fixture *f = *state;
	const uint32_t alice = IP4(10, 200, 0, 2), bob = IP4(10, 200, 3, 7), router = IP4(10, 200, 0, 1);
	const uint32_t world = IP4(93, 184, 216, 34);
	int which;

	assert_true(filter_allows(&f->out, alice, router, &which));
	assert_int_equal(which, 0);
	assert_false(filter_allows(&f->out, alice, bob, &which));
	assert_int_equal(which, 1);
	assert_true(filter_allows(&f->out, alice, world, &which));
	assert_int_equal(which, 2);
	/* a source outside the subnet only meets the final deny */
	assert_false(filter_allows(&f->out, world, world, &which));
	assert_int_equal(which, 3);

	assert_true(filter_allows(&f->in, router, alice, NULL));
	assert_false(filter_allows(&f->in, bob, alice, NULL));
	assert_true(filter_allows(&f->in, world, alice, NULL));
	assert_false(filter_allows(&f->in, world, world, NULL));
}

static void test_first_match_wins(void **state)
{
	struct fw_rule rules[3];
	struct filter f;
	char why[WHY_LEN];
	int which;

	assert_int_equal(value_fw_rule("allow 10.0.0.5 192.0.2.0/24", &rules[0], why), 0);
	assert_int_equal(value_fw_rule("deny 10.0.0.0/8 192.0.2.0/24", &rules[1], why), 0);
	assert_int_equal(value_fw_rule("allow", &rules[2], why), 0);
	assert_int_equal(filter_compile(&f, rules, 3), 0);
	assert_true(filter_allows(&f, IP4(10, 0, 0, 5), IP4(192, 0, 2, 9), &which));
	assert_int_equal(which, 0);
	assert_false(filter_allows(&f, IP4(10, 0, 0, 6), IP4(192, 0, 2, 9), &which));
	assert_int_equal(which, 1);
	assert_true(filter_allows(&f, IP4(10, 0, 0, 6), IP4(192, 0, 3, 9), &which));
	assert_int_equal(which, 2);
	filter_free(&f);

	/* swapped: the deny now comes first and shadows the allow */
	assert_int_equal(value_fw_rule("deny 10.0.0.0/8 192.0.2.0/24", &rules[0], why), 0);
	assert_int_equal(value_fw_rule("allow 10.0.0.5 192.0.2.0/24", &rules[1], why), 0);
	assert_int_equal(filter_compile(&f, rules, 3), 0);
	assert_false(filter_allows(&f, IP4(10, 0, 0, 5), IP4(192, 0, 2, 9), &which));
	assert_int_equal(which, 0);
	filter_free(&f);
}

/* No rule (or none matching) denies: the set fails closed. A rule with
 * host bits in its network address still matches the whole network. */
static void test_implicit_deny_and_masking(void **state)
{
	struct fw_rule r;
	struct filter f;
	char why[WHY_LEN];
	int which = 7;

	assert_int_equal(filter_compile(&f, NULL, 0), 0);
	assert_false(filter_allows(&f, 1, 2, &which));
	assert_int_equal(which, -1);
	filter_free(&f);

	assert_int_equal(value_fw_rule("allow 10.1.2.3/16 0.0.0.0/0", &r, why), 0);
	assert_int_equal(filter_compile(&f, &r, 1), 0);
	assert_true(filter_allows(&f, IP4(10, 1, 200, 1), IP4(8, 8, 8, 8), NULL));
	assert_false(filter_allows(&f, IP4(10, 2, 0, 1), IP4(8, 8, 8, 8), &which));
	assert_int_equal(which, -1);
	filter_free(&f);
}

/* ---- packets ---- */

struct pkt {
	uint8_t b[PACKET_VNET_LEN + 2048];
	size_t len;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* vnet header (native order) + IPv4/TCP with `payload` bytes. */
static void make_tcp(struct pkt *p, uint8_t gso_type, uint16_t gso_size, size_t payload)
{
	uint8_t *ip = p->b + PACKET_VNET_LEN;
	uint16_t v;

	memset(p, 0, sizeof *p);
	p->b[0] = PACKET_F_NEEDS_CSUM;
	p->b[1] = gso_type;
	v = gso_size;
	memcpy(p->b + 4, &v, 2);
	v = 20;                          /* csum_start: the TCP header */
	memcpy(p->b + 6, &v, 2);
	v = 16;                          /* csum_offset: TCP checksum field */
	memcpy(p->b + 8, &v, 2);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + 32 + payload));
	put16(ip + 6, 0x4000);           /* DF */
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, "\x0a\xc8\x00\x02", 4);
	memcpy(ip + 16, "\xc6\x12\x00\x02", 4);
	ip[20 + 12] = 8 << 4;            /* data offset: 32 bytes */
	p->len = PACKET_VNET_LEN + 20 + 32 + payload;
}

static void test_parse_plain_and_gso(void **state)
{
	struct packet_info pi;
	struct pkt p;

	make_tcp(&p, PACKET_GSO_NONE, 0, 100);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_OK);
	assert_int_equal(pi.src, IP4(10, 200, 0, 2));
	assert_int_equal(pi.dst, IP4(198, 18, 0, 2));
	assert_int_equal(pi.proto, 6);
	assert_int_equal(pi.ip_len, 152);
	assert_int_equal(pi.seg_len, 152);
	assert_true(pi.df);

	/* a super packet stands for segments of headers + gso_size */
	make_tcp(&p, PACKET_GSO_TCPV4 | PACKET_GSO_ECN, 1448, 2000);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_OK);
	assert_int_equal(pi.gso_type, PACKET_GSO_TCPV4);
	assert_int_equal(pi.gso_size, 1448);
	assert_int_equal(pi.ip_len, 2052);
	assert_int_equal(pi.seg_len, 20 + 32 + 1448);

	/* trailing bytes after the IP packet are not part of it */
	make_tcp(&p, PACKET_GSO_NONE, 0, 10);
	assert_int_equal(packet_parse(p.b, p.len + 100, &pi), PACKET_OK);
	assert_int_equal(pi.ip_len, 62);
}

static void test_parse_refuses_lies(void **state)
{
	struct packet_info pi;
	struct pkt p;
	uint16_t v;

	/* too short for a vnet header, for an IPv4 header */
	make_tcp(&p, PACKET_GSO_NONE, 0, 0);
	for (size_t n = 0; n < PACKET_VNET_LEN + 20; n++)
		assert_int_equal(packet_parse(p.b, n, &pi), PACKET_MALFORMED);
	/* total length beyond what was read */
	make_tcp(&p, PACKET_GSO_NONE, 0, 100);
	assert_int_equal(packet_parse(p.b, p.len - 1, &pi), PACKET_MALFORMED);
	/* header length below 20 or beyond the total */
	p.b[PACKET_VNET_LEN] = 0x44;
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	p.b[PACKET_VNET_LEN] = 0x4f;
	put16(p.b + PACKET_VNET_LEN + 2, 40);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	/* checksum offsets out of the packet */
	make_tcp(&p, PACKET_GSO_NONE, 0, 0);
	v = 60;
	memcpy(p.b + 6, &v, 2);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	/* unknown vnet flags */
	make_tcp(&p, PACKET_GSO_NONE, 0, 0);
	p.b[0] = 0x80;
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	/* GSO: size 0, UFO, TCPV6 on IPv4, TCP GSO on UDP, fragmented */
	make_tcp(&p, PACKET_GSO_TCPV4, 0, 3000);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	make_tcp(&p, PACKET_GSO_UDP, 1400, 3000);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	make_tcp(&p, PACKET_GSO_TCPV6, 1400, 3000);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	make_tcp(&p, PACKET_GSO_TCPV4, 1400, 3000);
	p.b[PACKET_VNET_LEN + 9] = 17;
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	make_tcp(&p, PACKET_GSO_TCPV4, 1400, 3000);
	put16(p.b + PACKET_VNET_LEN + 6, 0x2000);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	/* a TCP data offset that runs past the packet */
	make_tcp(&p, PACKET_GSO_TCPV4, 1400, 0);
	p.b[PACKET_VNET_LEN + 20 + 12] = 15 << 4;
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	/* USO on UDP is fine */
	make_tcp(&p, PACKET_GSO_UDP_L4, 1000, 1800);
	p.b[PACKET_VNET_LEN + 9] = 17;
	v = 6;                           /* UDP checksum field */
	memcpy(p.b + 8, &v, 2);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_OK);
	assert_int_equal(pi.seg_len, 20 + 8 + 1000);
}

/* vnet header + IPv6/TCP with `payload` bytes, fd00:f1ef::2 -> 2001:2::2. */
static void make_tcp6(struct pkt *p, uint8_t gso_type, uint16_t gso_size, size_t payload)
{
	uint8_t *ip = p->b + PACKET_VNET_LEN;
	uint16_t v;

	memset(p, 0, sizeof *p);
	p->b[0] = PACKET_F_NEEDS_CSUM;
	p->b[1] = gso_type;
	v = gso_size;
	memcpy(p->b + 4, &v, 2);
	v = 40;
	memcpy(p->b + 6, &v, 2);
	v = 16;
	memcpy(p->b + 8, &v, 2);
	ip[0] = 0x60;
	put16(ip + 4, (uint16_t)(32 + payload));
	ip[6] = 6;
	ip[7] = 64;
	memcpy(ip + 8, "\xfd\x00\xf1\xef\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
	memcpy(ip + 24, "\x20\x01\x00\x02\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
	ip[40 + 12] = 8 << 4;
	p->len = PACKET_VNET_LEN + 40 + 32 + payload;
}

static void test_parse_ipv6(void **state)
{
	struct packet_info pi;
	struct pkt p;
	uint16_t v;

	make_tcp6(&p, PACKET_GSO_NONE, 0, 100);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_OK);
	assert_int_equal(pi.family, 6);
	assert_memory_equal(pi.src6, "\xfd\x00\xf1\xef\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
	assert_memory_equal(pi.dst6, "\x20\x01\x00\x02\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
	assert_int_equal(pi.proto, 6);
	assert_int_equal(pi.ip_len, 172);
	assert_int_equal(pi.seg_len, 172);
	/* a TSO super packet: segments of 40 + 32 + 1428 */
	make_tcp6(&p, PACKET_GSO_TCPV6, 1428, 1900);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_OK);
	assert_int_equal(pi.seg_len, 40 + 32 + 1428);
	/* trailing bytes are not part of it */
	make_tcp6(&p, PACKET_GSO_NONE, 0, 10);
	assert_int_equal(packet_parse(p.b, p.len + 50, &pi), PACKET_OK);
	assert_int_equal(pi.ip_len, 82);
	/* lies: payload length beyond what was read, the IPv4 GSO type, a
	 * data offset past the end, extension headers in front of a GSO
	 * packet, a checksum offset outside, truncated fixed header */
	make_tcp6(&p, PACKET_GSO_NONE, 0, 100);
	assert_int_equal(packet_parse(p.b, p.len - 1, &pi), PACKET_MALFORMED);
	make_tcp6(&p, PACKET_GSO_TCPV4, 1428, 1900);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	make_tcp6(&p, PACKET_GSO_TCPV6, 1428, 0);
	p.b[PACKET_VNET_LEN + 40 + 12] = 15 << 4;
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	make_tcp6(&p, PACKET_GSO_TCPV6, 1428, 1900);
	p.b[PACKET_VNET_LEN + 6] = 0;            /* hop-by-hop options first */
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	make_tcp6(&p, PACKET_GSO_NONE, 0, 10);
	v = 2000;
	memcpy(p.b + 8, &v, 2);
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	make_tcp6(&p, PACKET_GSO_NONE, 0, 10);
	assert_int_equal(packet_parse(p.b, PACKET_VNET_LEN + 39, &pi), PACKET_MALFORMED);
}

static void test_parse_other_versions(void **state)
{
	struct packet_info pi;
	struct pkt p;

	make_tcp(&p, PACKET_GSO_NONE, 0, 40);
	p.b[PACKET_VNET_LEN] = 0x00;
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	p.b[PACKET_VNET_LEN] = 0x50;
	assert_int_equal(packet_parse(p.b, p.len, &pi), PACKET_MALFORMED);
	p.b[PACKET_VNET_LEN] = 0x60;
	assert_int_equal(packet_parse(p.b, PACKET_VNET_LEN + 1, &pi), PACKET_MALFORMED);
}

/* IPv6 rules: the defaults with router.address6, families kept apart,
 * and "deny" with no address matching both. */
static void test_ipv6_rules(void **state)
{
	static const char yaml[] =
		"state_dir: /tmp/x\ntenants_dir: /tmp/x\ndistros_dir: /tmp/x\nhomes_dir: /tmp/x\n"
		"log_dir: /tmp/x\n"
		"router: { enabled: true, address: 10.200.0.1/16, address6: 'fd00:f1ef::1/64' }\n";
	uint8_t alice[16], bob[16], router[16], world[16];
	struct config_errors errs;
	struct config_host *h = config_host_parse("t.yaml", yaml, sizeof yaml - 1, &errs);
	struct filter out, in, f;
	struct fw_rule rules[3];
	char why[WHY_LEN];
	int which;

	if (!h)
		config_errors_print(&errs, stderr);
	assert_non_null(h);
	assert_int_equal(value_ipv6("fd00:f1ef::2", alice, why), 0);
	assert_int_equal(value_ipv6("fd00:f1ef::3:7", bob, why), 0);
	assert_int_equal(value_ipv6("fd00:f1ef::1", router, why), 0);
	assert_int_equal(value_ipv6("2001:db8::34", world, why), 0);
	assert_int_equal(filter_compile(&out, h->router.firewall.out.v, h->router.firewall.out.n), 0);
	assert_int_equal(filter_compile(&in, h->router.firewall.in.v, h->router.firewall.in.n), 0);
	assert_int_equal(out.n, 7);
	assert_true(filter_allows6(&out, alice, router, &which));
	assert_int_equal(which, 3);
	assert_false(filter_allows6(&out, alice, bob, &which));
	assert_int_equal(which, 4);
	assert_true(filter_allows6(&out, alice, world, &which));
	assert_int_equal(which, 5);
	assert_false(filter_allows6(&out, world, world, &which));
	assert_int_equal(which, 6);
	assert_true(filter_allows6(&in, router, alice, NULL));
	assert_false(filter_allows6(&in, bob, alice, NULL));
	assert_true(filter_allows6(&in, world, alice, NULL));
	/* the IPv4 rules are unchanged and ignore nothing of theirs */
	assert_true(filter_allows(&out, IP4(10, 200, 0, 2), IP4(93, 184, 216, 34), &which));
	assert_int_equal(which, 2);
	filter_free(&out);
	filter_free(&in);
	config_host_free(h);

	/* an IPv4 rule never matches IPv6 and the other way round; a rule
	 * without addresses matches both */
	assert_int_equal(value_fw_rule("allow 0.0.0.0/0 0.0.0.0/0", &rules[0], why), 0);
	assert_int_equal(value_fw_rule("deny ::/0 2001:db8::/32", &rules[1], why), 0);
	assert_int_equal(value_fw_rule("allow", &rules[2], why), 0);
	assert_int_equal(filter_compile(&f, rules, 3), 0);
	assert_false(filter_allows6(&f, alice, world, &which));
	assert_int_equal(which, 1);
	assert_true(filter_allows6(&f, alice, router, &which));
	assert_int_equal(which, 2);
	assert_true(filter_allows(&f, 1, 2, &which));
	assert_int_equal(which, 0);
	filter_free(&f);
	/* prefixes across the 64-bit halves */
	assert_int_equal(value_fw_rule("deny fd00:f1ef::3:0/112", &rules[0], why), 0);
	assert_int_equal(filter_compile(&f, rules, 1), 0);
	assert_false(filter_allows6(&f, bob, world, &which));
	assert_int_equal(which, 0);
	assert_false(filter_allows6(&f, alice, world, &which));
	assert_int_equal(which, -1);
	filter_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_rules, setup, teardown),
		cmocka_unit_test(test_first_match_wins),
		cmocka_unit_test(test_implicit_deny_and_masking),
		cmocka_unit_test(test_parse_plain_and_gso),
		cmocka_unit_test(test_parse_refuses_lies),
		cmocka_unit_test(test_parse_other_versions),
		cmocka_unit_test(test_parse_ipv6),
		cmocka_unit_test(test_ipv6_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
