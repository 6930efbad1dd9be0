/* filter: first-match allow/deny rules on (source, destination). */
#include "filter.h"

#include <errno.h>
#include <stdlib.h>

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

		o->src_mask = cidr_mask(rules[i].src.prefix);
		o->dst_mask = cidr_mask(rules[i].dst.prefix);
		o->src = rules[i].src.addr & o->src_mask;
		o->dst = rules[i].dst.addr & o->dst_mask;
		o->allow = rules[i].action == FW_ALLOW;
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

		if ((src & r->src_mask) == r->src && (dst & r->dst_mask) == r->dst) {
			if (which)
				*which = (int)i;
			return r->allow;
		}
	}
	if (which)
		*which = -1;
	return false;
}
