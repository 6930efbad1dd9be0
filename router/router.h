/* fief-router: shared state of its modules.
 *
 *   main.c     host file, setup as root, privilege drop, the loop
 *   fwd.c      the data path: tenant table, reads, checks, writes, counters
 *   filter.c   the ordered allow/deny rules
 *   link.c     state_dir/router.sock: the launcher passes tenant tun fds
 *   control.c  state_dir/router-control.sock: stats for fiefctl
 *   nat.c      nftables masquerade and ip_forward, and their removal
 */
#ifndef FIEF_ROUTER_H
#define FIEF_ROUTER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "filter.h"

#define ROUTER_LINK_SOCK "router.sock"
#define ROUTER_CONTROL_SOCK "router-control.sock"

/* Why a packet was dropped. Names are the stats keys (drop_NAME). */
enum rt_drop {
	DROP_SPOOF,          /* from a tenant, source is not its address */
	DROP_FW_OUT,         /* firewall.out said deny */
	DROP_FW_IN,          /* firewall.in said deny */
	DROP_NO_ROUTE,       /* to an address of the subnet that no tenant has */
	DROP_MALFORMED,      /* lengths or GSO metadata that do not add up */
	DROP_IPV6_OFF,       /* IPv6, and the router or that tenant has no IPv6 address */
	DROP_MTU,            /* a segment larger than the destination's MTU */
	DROP_FULL,           /* the destination device refused it (EAGAIN, ENOBUFS) */
	DROP_RATE,           /* over the tenant's rate limit (inbound) */
	DROP_ERROR,          /* any other write error */
	DROP_MAX,
};
extern const char *const rt_drop_names[DROP_MAX];

struct rt_counters {
	uint64_t out_bytes, out_packets;     /* from the tenant, forwarded */
	uint64_t in_bytes, in_packets;       /* to the tenant, delivered */
	uint64_t drops[DROP_MAX];
};

/* A token bucket in bytes; rate 0 = unlimited. */
struct rt_bucket {
	uint64_t rate;               /* bytes per second */
	double tokens, burst;
	ev_tstamp last;
};

struct rt_tenant {
	char name[40];
	uint32_t addr;               /* host byte order */
	bool has6;
	uint8_t addr6[16];           /* network byte order */
	int fd;                      /* the tenant's tun, non-blocking */
	struct router *R;
	ev_io io;
	ev_timer resume_w;           /* reading paused by the rate limit */
	struct rt_bucket out_tb, in_tb;
	struct rt_counters c;
	struct rt_tenant *hnext;     /* address hash chain */
	struct rt_tenant *h6next;    /* IPv6 address hash chain */
	struct rt_tenant *next;      /* all tenants */
};

struct router {
	struct ev_loop *loop;
	const struct config_host *host;
	struct filter fw_out, fw_in;
	uint32_t addr, net, mask;    /* the router's address, the subnet */
	bool has6;                   /* router.address6 is set */
	struct cidr6 net6;           /* the router's IPv6 address and the IPv6 subnet */
	int host_fd;                 /* router.device */
	ev_io host_io;
	struct rt_tenant **hash, **hash6;
	size_t hash_mask;
	struct rt_tenant *tenants;
	size_t n_tenants;
	struct rt_counters host_c;   /* packets from the host side no tenant owns */
	ev_idle spin_w;              /* keeps polling for a moment after traffic */
	ev_tstamp last_packet;
	uint8_t *buf;                /* one packet, PACKET_MAX bytes */
};

/* fwd.c */
int fwd_init(struct router *R, int host_fd);
/* Take fd for tenant `name` at `addr` and, when addr6 is not NULL, IPv6
 * address addr6 (replacing a tenant of that name). On failure fd is
 * closed and a reason is in err. */
int fwd_tenant_add(struct router *R, const char *name, uint32_t addr, const uint8_t *addr6,
		   uint64_t rate, int fd, char *err, size_t errlen);
int fwd_tenant_del(struct router *R, const char *name);
struct rt_tenant *fwd_tenant_find(struct router *R, const char *name);
void fwd_shutdown(struct router *R);

/* link.c */
int link_start(struct router *R);
/* control.c */
int control_start(struct router *R);
/* Paths below state_dir, and a 0600 unix socket listening there. */
int router_path(const struct router *R, char *buf, size_t len, const char *name);
int router_listen(const struct router *R, const char *name, int type);

#endif
