/* tun: the devices both ends of tenant networking are made of.
 *
 * Everything here is ioctls: no netlink library, and nothing a tenant can
 * influence (names and addresses come from the validated host and tenant
 * files). */
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>              /* before the linux/ headers, which then skip struct ifreq */
#include <linux/if_tun.h>
#include <linux/route.h>
#include <linux/ipv6_route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "packet.h"

/* UDP segmentation offload arrived in Linux 6.2; older headers lack it. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

static int tun_fail(char *err, size_t errlen, int e, const char *what, const char *name)
{
	snprintf(err, errlen, "%s %s: %s", what, name, strerror(e));
	return -1;
}

/* What the kernel may hand us: partial checksums and TCP (and UDP when it
 * knows how) super packets. Older kernels refuse USO with EINVAL. */
static int tun_set_offloads(int fd)
{
	unsigned base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;

	if (ioctl(fd, TUNSETOFFLOAD, base | TUN_F_USO4 | TUN_F_USO6) == 0)
		return 0;
	return ioctl(fd, TUNSETOFFLOAD, base);
}

static int tun_open_one(const char *name, short flags, char *err, size_t errlen)
{
	struct ifreq ifr;
	int fd, hdr = PACKET_VNET_LEN;

	if (strlen(name) >= IFNAMSIZ) {
		snprintf(err, errlen, "interface name %s is too long", name);
		return -1;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return tun_fail(err, errlen, errno, "open /dev/net/tun for", name);
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, name, strlen(name));
	ifr.ifr_flags = (short)(IFF_TUN | IFF_NO_PI | IFF_VNET_HDR | flags);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    tun_set_offloads(fd) < 0) {
		int e = errno;
		close(fd);
		return tun_fail(err, errlen, e, "create tun", name);
	}
	return fd;
}

int tun_open(const char *name, char *err, size_t errlen)
{
	return tun_open_one(name, 0, err, errlen);
}

int tun_open_queues(const char *name, int nq, int *fds, char *err, size_t errlen)
{
	if (nq < 1 || nq > CONFIG_ROUTER_MAX_THREADS) {
		snprintf(err, errlen, "%d queues for %s (1 to %d)", nq, name, CONFIG_ROUTER_MAX_THREADS);
		return -1;
	}
	if (nq == 1)
		return (fds[0] = tun_open(name, err, errlen)) < 0 ? -1 : 0;
	/* The first TUNSETIFF creates the device, each next one attaches
	 * one more queue to it. */
	for (int i = 0; i < nq; i++)
		if ((fds[i] = tun_open_one(name, IFF_MULTI_QUEUE, err, errlen)) < 0) {
			while (i-- > 0)
				close(fds[i]);
			return -1;
		}
	return 0;
}

int tun_is_multi_queue(int fd)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof ifr);
	if (ioctl(fd, TUNGETIFF, &ifr) < 0)
		return -errno;
	return (ifr.ifr_flags & IFF_MULTI_QUEUE) ? 1 : 0;
}

static void tun_sin(struct sockaddr *sa, uint32_t addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(addr) };

	memcpy(sa, &sin, sizeof sin);
}

static int tun_ifreq(int s, unsigned long req, struct ifreq *ifr, const char *name,
		     const char *what, char *err, size_t errlen)
{
	snprintf(ifr->ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, req, ifr) < 0)
		return tun_fail(err, errlen, errno, what, name);
	return 0;
}

int tun_configure(const char *name, uint32_t addr, int prefix, uint32_t peer, int mtu,
		  char *err, size_t errlen)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = -1;

	if (s < 0)
		return tun_fail(err, errlen, errno, "socket to configure", name);
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_mtu = mtu;
	if (tun_ifreq(s, SIOCSIFMTU, &ifr, name, "set the MTU of", err, errlen) < 0)
		goto out;
	tun_sin(&ifr.ifr_addr, addr);
	if (tun_ifreq(s, SIOCSIFADDR, &ifr, name, "set the address of", err, errlen) < 0)
		goto out;
	tun_sin(&ifr.ifr_netmask, cidr_mask(prefix));
	if (tun_ifreq(s, SIOCSIFNETMASK, &ifr, name, "set the netmask of", err, errlen) < 0)
		goto out;
	if (peer) {
		tun_sin(&ifr.ifr_dstaddr, peer);
		if (tun_ifreq(s, SIOCSIFDSTADDR, &ifr, name, "set the peer of", err, errlen) < 0)
			goto out;
	}
	if (tun_ifreq(s, SIOCGIFFLAGS, &ifr, name, "get the flags of", err, errlen) < 0)
		goto out;
	ifr.ifr_flags |= IFF_UP;
	if (tun_ifreq(s, SIOCSIFFLAGS, &ifr, name, "bring up", err, errlen) < 0)
		goto out;
	r = 0;
out:
	close(s);
	return r;
}

int tun_set_queue_limit(int fd, int bytes)
{
	return ioctl(fd, TUNSETSNDBUF, &bytes) < 0 ? -errno : 0;
}

int tun_check_fd(int fd)
{
	struct ifreq ifr;
	int hdr = 0;

	memset(&ifr, 0, sizeof ifr);
	if (ioctl(fd, TUNGETIFF, &ifr) < 0)
		return errno == EBADFD || errno == ENOTTY || errno == EINVAL ? -EPROTOTYPE : -errno;
	if ((ifr.ifr_flags & (IFF_TUN | IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)) !=
	    (IFF_TUN | IFF_NO_PI | IFF_VNET_HDR))
		return -EPROTOTYPE;
	if (ioctl(fd, TUNGETVNETHDRSZ, &hdr) < 0)
		return -errno;
	return hdr == PACKET_VNET_LEN ? 0 : -EPROTOTYPE;
}

/* One of the device's IPv6 sysctls; 0 or -errno. */
static int tun_sysctl6(const char *name, const char *key, const char *val)
{
	char path[128];
	int fd, r = 0;

	snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/%s", name, key);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		r = -errno;
	close(fd);
	return r;
}

/* The kernel's struct in6_ifreq (linux/ipv6.h clashes with netinet/in.h). */
struct tun_in6_ifreq {
	struct in6_addr addr;
	uint32_t prefixlen;
	int ifindex;
};

int tun_prepare6(const char *name, char *err, size_t errlen)
{
	int r;

	/* Only the address we give it: no link-local address (addr_gen_mode
	 * 1), so no router solicitations or MLD reports from one; no router
	 * advertisements taken. Before the device goes up. */
	if ((r = tun_sysctl6(name, "disable_ipv6", "0")) < 0 ||
	    (r = tun_sysctl6(name, "addr_gen_mode", "1")) < 0 ||
	    (r = tun_sysctl6(name, "accept_ra", "0")) < 0)
		return tun_fail(err, errlen, -r, "IPv6 settings of", name);
	return 0;
}

int tun_configure6(const char *name, const uint8_t addr[16], int prefix, bool default_route,
		   char *err, size_t errlen)
{
	struct tun_in6_ifreq ifr6;
	struct in6_rtmsg rt;
	int s = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0), idx = (int)if_nametoindex(name), r = -1;

	if (s < 0)
		return tun_fail(err, errlen, errno, "IPv6 socket to configure", name);
	if (idx <= 0) {
		tun_fail(err, errlen, errno, "find", name);
		goto out;
	}
	memset(&ifr6, 0, sizeof ifr6);
	memcpy(&ifr6.addr, addr, 16);
	ifr6.prefixlen = (uint32_t)prefix;
	ifr6.ifindex = idx;
	if (ioctl(s, SIOCSIFADDR, &ifr6) < 0) {
		tun_fail(err, errlen, errno, "set the IPv6 address of", name);
		goto out;
	}
	if (default_route) {
		/* ::/0 on the point-to-point device: the router is its only peer. */
		memset(&rt, 0, sizeof rt);
		rt.rtmsg_dst_len = 0;
		rt.rtmsg_metric = 1;
		rt.rtmsg_flags = RTF_UP;
		rt.rtmsg_ifindex = idx;
		if (ioctl(s, SIOCADDRT, &rt) < 0) {
			tun_fail(err, errlen, errno, "add the IPv6 default route via", name);
			goto out;
		}
	}
	r = 0;
out:
	close(s);
	return r;
}

/* The default route of the tenant: everything goes to the router. */
static int tun_default_route(const char *name, uint32_t gw, char *err, size_t errlen)
{
	char dev[IFNAMSIZ];
	struct rtentry rt;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	if (s < 0)
		return tun_fail(err, errlen, errno, "socket to route", name);
	memset(&rt, 0, sizeof rt);
	snprintf(dev, sizeof dev, "%s", name);
	tun_sin(&rt.rt_dst, 0);
	tun_sin(&rt.rt_genmask, 0);
	tun_sin(&rt.rt_gateway, gw);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = dev;
	if (ioctl(s, SIOCADDRT, &rt) < 0)
		r = tun_fail(err, errlen, errno, "add the default route via", name);
	close(s);
	return r;
}

/* Tenants without an IPv6 address get IPv4 only: without this the kernel
 * would give eth0 a link-local address and send router solicitations the
 * router drops. */
static void tun_no_ipv6(const char *name)
{
	char path[128];
	int fd;

	snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;                  /* no IPv6 in this kernel: nothing to turn off */
	if (write(fd, "1", 1) != 1) {
		/* not fatal: the router drops IPv6 and counts it */
	}
	close(fd);
}

static void tun_close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

int tun_tenant_setup(const struct config_host *h, const struct config_tenant *c, int *fds,
		     char *err, size_t errlen)
{
	int nq;

	if (!h->router.enabled || !c->network.has_address)
		return -2;
	bool six = c->network.has_address6 && h->router.has_address6;

	/* As many queues as the router has threads: thread i reads queue i. */
	nq = config_router_threads(h);
	if (tun_open_queues(TUN_TENANT_IFNAME, nq, fds, err, errlen) < 0)
		return -1;
	if (!six)
		tun_no_ipv6(TUN_TENANT_IFNAME);
	else if (tun_prepare6(TUN_TENANT_IFNAME, err, errlen) < 0) {
		tun_close_all(fds, nq);
		return -1;
	}
	/* address/32 with the router as the point-to-point peer: the kernel
	 * adds the route to the router, and the default route goes via it. */
	if (tun_configure(TUN_TENANT_IFNAME, c->network.address, 32, h->router.address.addr,
			  TUN_MTU, err, errlen) < 0 ||
	    tun_default_route(TUN_TENANT_IFNAME, h->router.address.addr, err, errlen) < 0 ||
	    (six && tun_configure6(TUN_TENANT_IFNAME, c->network.address6, 128, true, err, errlen) < 0)) {
		tun_close_all(fds, nq);
		return -1;
	}
	return nq;
}
