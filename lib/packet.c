/* packet: vnet header + IPv4/IPv6 header parsing for fief-router.
 *
 * Every length in the packet is checked against the bytes actually read
 * before it is used: a tenant controls all of them. The kernel checks
 * the vnet metadata again when the router writes the packet on, so the
 * checks here are about what the router itself relies on (addresses,
 * protocol, lengths, segment size), not a full validation. */
#include "packet.h"

#include <netinet/in.h>
#include <string.h>

static uint16_t rd16be(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32be(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The vnet header is in the host's byte order (no TUNSETVNETLE/BE). */
struct packet_vnet {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

static void packet_vnet_read(const uint8_t *buf, struct packet_vnet *v)
{
	v->flags = buf[0];
	v->gso_type = buf[1];
	memcpy(&v->hdr_len, buf + 2, 2);
	memcpy(&v->gso_size, buf + 4, 2);
	memcpy(&v->csum_start, buf + 6, 2);
	memcpy(&v->csum_offset, buf + 8, 2);
}

/* Headers in front of each segment of a GSO packet, or 0 when the packet
 * cannot be what its gso_type claims. */
static size_t packet_gso_headers(const uint8_t *ip, size_t ihl, size_t total, int fragmented,
				 uint8_t gso_type)
{
	switch (gso_type) {
	case PACKET_GSO_TCPV4: {
		size_t doff;
		if (ip[9] != IPPROTO_TCP || fragmented || total < ihl + 20)
			return 0;
		doff = (size_t)(ip[ihl + 12] >> 4) * 4;
		return doff >= 20 && ihl + doff <= total ? ihl + doff : 0;
	}
	case PACKET_GSO_UDP_L4:
		if (ip[9] != IPPROTO_UDP || fragmented || total < ihl + 8)
			return 0;
		return ihl + 8;
	default:
		/* UFO is never offered to us, TCPV6 cannot ride on IPv4. */
		return 0;
	}
}

/* IPv6: the same for a packet whose first next header is nh. GSO packets
 * the kernel makes carry TCP or UDP right after the fixed header; a GSO
 * packet with extension headers in front is refused rather than walked. */
static size_t packet_gso_headers6(const uint8_t *ip, uint8_t nh, size_t total, uint8_t gso_type)
{
	switch (gso_type) {
	case PACKET_GSO_TCPV6: {
		size_t doff;
		if (nh != IPPROTO_TCP || total < 40 + 20)
			return 0;
		doff = (size_t)(ip[40 + 12] >> 4) * 4;
		return doff >= 20 && 40 + doff <= total ? 40 + doff : 0;
	}
	case PACKET_GSO_UDP_L4:
		return nh == IPPROTO_UDP && total >= 40 + 8 ? 40 + 8 : 0;
	default:
		return 0;
	}
}

static enum packet_status packet_parse6(const uint8_t *buf, size_t l3, struct packet_info *info)
{
	const uint8_t *ip = buf + PACKET_VNET_LEN;
	struct packet_vnet v;
	size_t total, seg;

	if (l3 < 40)
		return PACKET_MALFORMED;
	total = 40 + (size_t)rd16be(ip + 4);     /* payload length 0 (jumbograms) stays 40 */
	if (total > l3 || total > 65535)
		return PACKET_MALFORMED;
	packet_vnet_read(buf, &v);
	if (v.flags & ~3)
		return PACKET_MALFORMED;
	if ((v.flags & PACKET_F_NEEDS_CSUM) &&
	    (v.csum_start < 40 || (size_t)v.csum_start + v.csum_offset + 2 > total))
		return PACKET_MALFORMED;
	info->family = 6;
	info->proto = ip[6];
	info->gso_type = v.gso_type & (uint8_t)~PACKET_GSO_ECN;
	seg = total;
	if (info->gso_type != PACKET_GSO_NONE) {
		size_t hdrs = packet_gso_headers6(ip, info->proto, total, info->gso_type);
		if (!hdrs || v.gso_size == 0)
			return PACKET_MALFORMED;
		info->gso_size = v.gso_size;
		if (hdrs + v.gso_size < total)
			seg = hdrs + v.gso_size;
	}
	memcpy(info->src6, ip + 8, 16);
	memcpy(info->dst6, ip + 24, 16);
	info->ip_len = (uint16_t)total;
	info->seg_len = (uint16_t)seg;
	info->df = 1;                            /* routers never fragment IPv6 */
	return PACKET_OK;
}

enum packet_status packet_parse(const uint8_t *buf, size_t len, struct packet_info *info)
{
	struct packet_vnet v;
	const uint8_t *ip = buf + PACKET_VNET_LEN;
	size_t l3, ihl, total, seg;
	uint16_t frag;
	int fragmented;

	memset(info, 0, sizeof *info);
	if (len <= PACKET_VNET_LEN)
		return PACKET_MALFORMED;
	l3 = len - PACKET_VNET_LEN;
	if (ip[0] >> 4 == 6)
		return packet_parse6(buf, l3, info);
	if (ip[0] >> 4 != 4)
		return PACKET_MALFORMED;
	if (l3 < 20)
		return PACKET_MALFORMED;
	ihl = (size_t)(ip[0] & 0x0f) * 4;
	total = rd16be(ip + 2);
	if (ihl < 20 || total < ihl || total > l3)
		return PACKET_MALFORMED;
	frag = rd16be(ip + 6);
	fragmented = (frag & 0x3fff) != 0;       /* MF set or an offset */

	packet_vnet_read(buf, &v);
	if (v.flags & ~3)                        /* NEEDS_CSUM, DATA_VALID */
		return PACKET_MALFORMED;
	if ((v.flags & PACKET_F_NEEDS_CSUM) &&
	    (v.csum_start < ihl || (size_t)v.csum_start + v.csum_offset + 2 > total))
		return PACKET_MALFORMED;
	info->gso_type = v.gso_type & (uint8_t)~PACKET_GSO_ECN;
	seg = total;
	if (info->gso_type != PACKET_GSO_NONE) {
		size_t hdrs = packet_gso_headers(ip, ihl, total, fragmented, info->gso_type);
		if (!hdrs || v.gso_size == 0)
			return PACKET_MALFORMED;
		info->gso_size = v.gso_size;
		if (hdrs + v.gso_size < total)
			seg = hdrs + v.gso_size;
	}
	info->family = 4;
	info->src = rd32be(ip + 12);
	info->dst = rd32be(ip + 16);
	info->proto = ip[9];
	info->ip_len = (uint16_t)total;
	info->seg_len = (uint16_t)seg;
	info->df = (frag & 0x4000) != 0;
	return PACKET_OK;
}
