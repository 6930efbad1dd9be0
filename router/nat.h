/* nat: the kernel does the way out. With router.nat.enabled, fief-router
 * adds nftables table "ip fief" (masquerade of the tenant subnet on
 * nat.out_interface) and turns on net.ipv4.ip_forward, and with
 * router.address6 the same for IPv6 (table "ip6 fief",
 * net.ipv6.conf.all.forwarding); nat_cleanup takes back exactly what
 * nat_setup added. */
#ifndef FIEF_ROUTER_NAT_H
#define FIEF_ROUTER_NAT_H

#include <stdbool.h>

#include "config.h"

#define NAT_TABLE "fief"

struct nat_state {
	bool table_added;
	bool forward_enabled;        /* ip_forward was 0 and we set it to 1 */
	bool table6_added;
	bool forward6_enabled;       /* conf/all/forwarding was 0 and we set it to 1 */
};

/* 0, or -1 with the reason logged. Runs `nft -f -`. */
int nat_setup(const struct config_host *h, struct nat_state *st);
void nat_cleanup(const struct nat_state *st);

#endif
