/* libFuzzer target: fief-router's packet parser (lib/packet.c) and its
 * firewall (router/filter.c) over whatever a tenant could write to its tun.
 *
 * Input: one byte choosing a rule set shape, then the packet as read from
 * the tun (virtio-net header + IP). An accepted packet must have lengths
 * that fit what was read and a segment size no larger than the packet; the
 * firewall must decide with a rule index in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packet.h"
#include "../../router/filter.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_filter(uint8_t shape, const struct packet_info *pi)
{
	struct fw_rule rules[4];
	struct filter f;
	size_t n = (size_t)(shape & 3) + 1;
	int which;
	bool allow;

	for (size_t i = 0; i < n; i++) {
		rules[i].action = (shape >> (2 + i)) & 1 ? FW_ALLOW : FW_DENY;
		rules[i].src = (struct cidr){ pi->src ^ (uint32_t)(i * 0x01010101u), (int)((i * 11 + shape) % 33) };
		rules[i].dst = (struct cidr){ pi->dst, (int)((i * 7 + shape) % 33) };
		rules[i].family = i == 3 ? FW_ANY : pi->family == 6 && i != 2 ? FW_IPV6 : FW_IPV4;
		memcpy(rules[i].src6.addr, pi->src6, 16);
		rules[i].src6.addr[15] ^= (uint8_t)i;
		rules[i].src6.prefix = (int)((i * 37 + shape) % 129);
		memcpy(rules[i].dst6.addr, pi->dst6, 16);
		rules[i].dst6.prefix = (int)((i * 19 + shape) % 129);
	}
	if (filter_compile(&f, rules, n) < 0)
		return;
	allow = pi->family == 6 ? filter_allows6(&f, pi->src6, pi->dst6, &which)
			       : filter_allows(&f, pi->src, pi->dst, &which);
	if (which < -1 || which >= (int)n)
		abort();
	if (which >= 0 && allow != (rules[which].action == FW_ALLOW))
		abort();
	if (which == -1 && allow)
		abort();
	filter_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct packet_info pi;
	uint8_t *copy;

	if (size < 1 || size > PACKET_MAX + 1)
		return 0;
	/* an exact-size heap copy, so ASan sees any read past the end */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	switch (packet_parse(copy, size - 1, &pi)) {
	case PACKET_OK:
		if (PACKET_VNET_LEN + (size_t)pi.ip_len > size - 1 || pi.ip_len < (pi.family == 6 ? 40 : 20) ||
		    (pi.family != 4 && pi.family != 6) ||
		    pi.seg_len > pi.ip_len || pi.seg_len == 0)
			abort();
		if (pi.gso_type != PACKET_GSO_NONE && pi.gso_size == 0)
			abort();
		check_filter(data[0], &pi);
		break;
	case PACKET_MALFORMED:
		break;
	default:
		abort();
	}
	free(copy);
	return 0;
}
