/* packet: the headers fief-router reads from a tun device, parsed as the
 * untrusted bytes they are.
 *
 * A tun opened with IFF_VNET_HDR|IFF_NO_PI hands over a virtio-net header
 * (struct virtio_net_hdr, native byte order, PACKET_VNET_LEN bytes) and
 * then one IP packet (IPv4 or IPv6), which may be a GSO "super packet" of up to 64 KiB
 * that the kernel cuts into gso_size segments further on. The router only
 * needs the addresses, the protocol, the length and, for its MTU check,
 * the size of the largest segment the packet stands for. */
#ifndef FIEF_PACKET_H
#define FIEF_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define PACKET_VNET_LEN 10           /* sizeof(struct virtio_net_hdr) */
#define PACKET_MAX (PACKET_VNET_LEN + 65535)

/* virtio gso_type values (linux/virtio_net.h; UDP_L4 is newer than some
 * installed headers). */
#define PACKET_GSO_NONE   0
#define PACKET_GSO_TCPV4  1
#define PACKET_GSO_UDP    3          /* UFO: never produced for us, refused */
#define PACKET_GSO_TCPV6  4
#define PACKET_GSO_UDP_L4 5          /* USO */
#define PACKET_GSO_ECN    0x80
#define PACKET_F_NEEDS_CSUM 1

enum packet_status {
	PACKET_OK = 0,
	PACKET_MALFORMED,                /* too short, lengths that lie, bad GSO metadata, not IP */
};

struct packet_info {
	uint8_t family;                  /* 4 or 6 */
	uint32_t src, dst;               /* IPv4: host byte order */
	uint8_t src6[16], dst6[16];      /* IPv6: network byte order */
	uint8_t proto;                   /* IPPROTO_*; IPv6: the first next header */
	uint8_t gso_type;                /* PACKET_GSO_*, ECN bit cleared */
	uint16_t gso_size;
	uint16_t ip_len;                 /* the IP packet's total length */
	uint16_t seg_len;                /* largest IP packet on the wire: ip_len, or headers + gso_size */
	int df;                          /* don't fragment is set */
};

/* Parse vnet header + IPv4 or IPv6 packet in buf[0..len). On PACKET_OK, *info is
 * filled and PACKET_VNET_LEN + info->ip_len <= len (trailing bytes are not
 * part of the packet). */
enum packet_status packet_parse(const uint8_t *buf, size_t len, struct packet_info *info);

#endif
