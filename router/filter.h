/* filter: the router's ordered firewall, compiled from the host file's
 * `allow|deny [SRC [DST]]` rules into masks for the fast path. */
#ifndef FIEF_ROUTER_FILTER_H
#define FIEF_ROUTER_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"

struct filter_rule {
	uint32_t src, src_mask, dst, dst_mask;   /* host byte order, addr already masked */
	bool allow;
};

struct filter {
	struct filter_rule *r;
	size_t n;
};

/* Compile rules (copied). 0, or -ENOMEM. */
int filter_compile(struct filter *f, const struct fw_rule *rules, size_t n);
void filter_free(struct filter *f);

/* The action of the first rule that matches; no match denies, so a rule
 * set that forgets its final "deny" still fails closed. Returns the index
 * of the rule that decided in *which (or -1 for the implicit deny). */
bool filter_allows(const struct filter *f, uint32_t src, uint32_t dst, int *which);

#endif
