/* filter: first-match allow/deny rules on (source, destination). */
#include "filter.h"

#include <errno.h>
#include <stdlib.h>

static uint64_t rd64be(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint64_t mask64(int bits)
{
	return bits <= 0 ? 0 : bits >= 64 ? ~0ull : ~((1ull << (64 - bits)) - 1);
}

static void compile6(const struct cidr6 *c, uint64_t addr[2], uint64_t mask[2])
{
	mask[0] = mask64(c->prefix);
	mask[1] = mask64(c->prefix - 64);
	addr[0] = rd64be(c->addr) & mask[0];
	addr[1] = rd64be(c->addr + 8) & mask[1];
}

int filter_compile(struct filter *f, const struct fw_rule *rules, size_t n)
{
	f->r = NULL;
	f->n = 0;
	if (!n)
		return 0;
	f->r = calloc(n, sizeof *f->r);
	if (!f->r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct filter_rule *o = &f->r[i];

		o->family = rules[i].family;
		o->allow = rules[i].action == FW_ALLOW;
		if (o->family == FW_IPV6) {
			compile6(&rules[i].src6, o->src6, o->src6_mask);
			compile6(&rules[i].dst6, o->dst6, o->dst6_mask);
		} else if (o->family == FW_IPV4) {
			o->src_mask = cidr_mask(rules[i].src.prefix);
			o->dst_mask = cidr_mask(rules[i].dst.prefix);
			o->src = rules[i].src.addr & o->src_mask;
			o->dst = rules[i].dst.addr & o->dst_mask;
		}
		/* FW_ANY: every mask stays 0, so every packet matches */
	}
	f->n = n;
	return 0;
}

void filter_free(struct filter *f)
{
	free(f->r);
	f->r = NULL;
	f->n = 0;
}

bool filter_allows(const struct filter *f, uint32_t src, uint32_t dst, int *which)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct filter_rule *r = &f->r[i];

		if (r->family != FW_IPV6 && (src & r->src_mask) == r->src && (dst & r->dst_mask) == r->dst) {
			if (which)
				*which = (int)i;
			return r->allow;
		}
	}
	if (which)
		*which = -1;
	return false;
}

bool filter_allows6(const struct filter *f, const uint8_t src[16], const uint8_t dst[16], int *which)
{
	uint64_t s0 = rd64be(src), s1 = rd64be(src + 8), d0 = rd64be(dst), d1 = rd64be(dst + 8);

	for (size_t i = 0; i < f->n; i++) {
		const struct filter_rule *r = &f->r[i];

		if (r->family != FW_IPV4 &&
		    (s0 & r->src6_mask[0]) == r->src6[0] && (s1 & r->src6_mask[1]) == r->src6[1] &&
		    (d0 & r->dst6_mask[0]) == r->dst6[0] && (d1 & r->dst6_mask[1]) == r->dst6[1]) {
			if (which)
				*which = (int)i;
			return r->allow;
		}
	}
	if (which)
		*which = -1;
	return false;
}
