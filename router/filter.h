/* filter: the router's ordered firewall, compiled from the host file's
 * `allow|deny [SRC [DST]]` rules into masks for the fast path. */
#ifndef FIEF_ROUTER_FILTER_H
#define FIEF_ROUTER_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"

struct filter_rule {
	enum fw_family family;                   /* FW_ANY matches both */
	bool allow;
	uint32_t src, src_mask, dst, dst_mask;   /* IPv4: host byte order, addr already masked */
	uint64_t src6[2], src6_mask[2], dst6[2], dst6_mask[2];  /* IPv6: big-endian halves as integers */
};

struct filter {
	struct filter_rule *r;
	size_t n;
};

/* Compile rules (copied). 0, or -ENOMEM. */
int filter_compile(struct filter *f, const struct fw_rule *rules, size_t n);
void filter_free(struct filter *f);

/* The action of the first rule that matches an IPv4 packet; no match
 * denies, so a rule set that forgets its final "deny" still fails closed.
 * Returns the index of the rule that decided in *which (or -1 for the
 * implicit deny). IPv6 rules never match an IPv4 packet. */
bool filter_allows(const struct filter *f, uint32_t src, uint32_t dst, int *which);

/* The same for an IPv6 packet (addresses in network byte order); IPv4
 * rules never match it. */
bool filter_allows6(const struct filter *f, const uint8_t src[16], const uint8_t dst[16], int *which);

#endif
