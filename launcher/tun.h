/* tun: tun devices with virtio-net headers and offloads, for both ends of
 * fief's tenant networking: "eth0" inside each tenant (made by the tenant
 * init, see tun_tenant_setup) and the router's host device (fief-router
 * links this file too). */
#ifndef FIEF_TUN_H
#define FIEF_TUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TUN_MTU 1500                 /* the path MTU of the outside world */
#define TUN_TENANT_IFNAME "eth0"

struct config_host;
struct config_tenant;

/* Open /dev/net/tun as IFF_TUN|IFF_NO_PI|IFF_VNET_HDR device `name` in the
 * caller's network namespace, with a PACKET_VNET_LEN vnet header and the
 * checksum, TSO and (when the kernel has it) USO offloads, so that one
 * read or write moves a whole 64 KiB GSO packet. O_CLOEXEC, blocking.
 * Returns the fd or -1 with err filled. */
int tun_open(const char *name, char *err, size_t errlen);

/* The same with nq queues (1 to 16): nq == 1 is tun_open; more opens the
 * device IFF_MULTI_QUEUE, one fd per queue, into fds[0..nq). The kernel
 * sends each flow's packets to one queue (a flow hash, and the queue
 * that last wrote that flow's packets). 0, or -1 with err (nothing open). */
int tun_open_queues(const char *name, int nq, int *fds, char *err, size_t errlen);

/* 1 when fd is a queue of an IFF_MULTI_QUEUE tun, 0 when not, -errno. */
int tun_is_multi_queue(int fd);

/* Give `name` an IPv4 address with a prefix (and a peer address when
 * peer != 0), the MTU, and bring it up. Host byte order. */
int tun_configure(const char *name, uint32_t addr, int prefix, uint32_t peer, int mtu,
		  char *err, size_t errlen);

/* Before `name` goes up: IPv6 on, but no link-local address and no
 * router advertisements. 0, or -1 with err. */
int tun_prepare6(const char *name, char *err, size_t errlen);

/* Add IPv6 address addr/prefix to the (up) device `name`, and with
 * default_route a ::/0 route through it. 0, or -1 with err. */
int tun_configure6(const char *name, const uint8_t addr[16], int prefix, bool default_route,
		   char *err, size_t errlen);

/* Check that fd is a tun in the mode above (for fds that came over a
 * socket). 0 or -errno (-EPROTOTYPE: not such a tun). */
int tun_check_fd(int fd);

/* What a writer of fd may have in flight inside the kernel (the skbs it
 * wrote that the stack behind the device has not consumed yet): beyond
 * it, a non-blocking write fails with EAGAIN instead of queueing. The
 * default is unbounded. 0 or -errno. */
int tun_set_queue_limit(int fd, int bytes);

/* In the tenant's fresh network namespace, before /dev is replaced:
 * create "eth0" with config_router_threads(h) queues (fds[0..n), the
 * return value), with the tenant's address/32, the router as its peer and
 * default gateway; with network.address6 also that address/128 and an
 * IPv6 default route, otherwise IPv6 off. Returns the number of queues,
 * -2 when the tenant has no network (no address, or the router is
 * disabled), -1 with err on error. */
int tun_tenant_setup(const struct config_host *h, const struct config_tenant *c, int *fds,
		     char *err, size_t errlen);

#endif
