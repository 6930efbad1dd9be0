/* control: state_dir/router-control.sock, for fiefctl stats (root only).
 *
 * As the launcher's control socket (lib/recserver): one request line per
 * connection, a reply of key=value records (values percent-encoded), then
 * close.
 *
 *   "stats"        ok=1, then one kind=router record (the host side), then
 *                  one kind=tenant record per tenant, sorted by name
 *   "stats NAME"   ok=1, the router record and that tenant's record
 *
 * Requests only read counters: nothing here changes the data path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "recserver.h"
#include "router.h"

#define CTL_TIMEOUT 5.0
#define CTL_MAX_CONN 32

static struct rec_server ctl;

static void ctl_counters(struct rec_reply *r, const struct rt_counters *k)
{
	char key[32];
	uint64_t total = 0;

	rec_num(r, "out_bytes", k->out_bytes);
	rec_num(r, "out_packets", k->out_packets);
	rec_num(r, "in_bytes", k->in_bytes);
	rec_num(r, "in_packets", k->in_packets);
	for (int i = 0; i < DROP_MAX; i++)
		total += k->drops[i];
	rec_num(r, "drops", total);
	for (int i = 0; i < DROP_MAX; i++) {
		snprintf(key, sizeof key, "drop_%s", rt_drop_names[i]);
		rec_num(r, key, k->drops[i]);
	}
}

static void ctl_tenant(struct rec_reply *r, const struct router *R, const struct rt_tenant *t)
{
	struct rt_counters sum;
	char addr[16];

	ipv4_format(t->addr, addr, sizeof addr);
	rec_field(r, "kind", "tenant");
	rec_field(r, "name", t->name);
	rec_field(r, "address", addr);
	if (t->has6) {
		char addr6[48];
		ipv6_format(t->addr6, addr6, sizeof addr6);
		rec_field(r, "address6", addr6);
	}
	rec_num(r, "rate_limit", t->out_tb.rate);
	rec_num(r, "queues", (unsigned long long)t->nq);
	fwd_counters(R, t->c, &sum);
	ctl_counters(r, &sum);
	rec_end(r);
}

/* The host side: in = read from the host tun, out = delivered to tenants. */
static void ctl_router(struct rec_reply *r, const struct router *R)
{
	struct rt_counters sum;
	char addr[24];

	/* The host side's counters live in each thread's struct. */
	memset(&sum, 0, sizeof sum);
	for (int i = 0; i < R->nthreads; i++)
		fwd_counters_add(&sum, &R->w[i].host_c);

	cidr_format(&R->host->router.address, addr, sizeof addr);
	rec_field(r, "kind", "router");
	rec_field(r, "device", R->host->router.device);
	rec_field(r, "address", addr);
	if (R->has6) {
		char addr6[48];
		cidr6_format(&R->net6, addr6, sizeof addr6);
		rec_field(r, "address6", addr6);
	}
	rec_num(r, "tenants", R->n_tenants);
	rec_num(r, "threads", (unsigned long long)R->nthreads);
	/* forwarding threads moving packets in batches through io_uring */
	unsigned long long uring = 0;
	for (int i = 0; i < R->nthreads; i++)
		uring += __atomic_load_n(&R->w[i].batch, __ATOMIC_ACQUIRE) != NULL;
	rec_num(r, "io_uring", uring);
	ctl_counters(r, &sum);
	rec_end(r);
}

static int ctl_by_name(const void *a, const void *b)
{
	return strcmp((*(struct rt_tenant *const *)a)->name, (*(struct rt_tenant *const *)b)->name);
}

/* A closed set of requests, each only reading counters. */
static void ctl_handle(struct rec_reply *r, const char *line, void *data)
{
	struct router *R = data;
	char verb[16] = "", name[64] = "";
	struct rt_tenant **all;
	size_t n = 0;

	if (sscanf(line, "%15s %63s", verb, name) < 1 || strcmp(verb, "stats"))
		return rec_error(r, "unknown request");
	if (name[0] && !fwd_tenant_find(R, name))
		return rec_error(r, "no tenant with networking by that name");
	all = calloc(R->n_tenants + 1, sizeof *all);
	if (!all)
		return rec_error(r, "out of memory");
	for (struct rt_tenant *t = R->tenants; t && n < R->n_tenants; t = t->next)
		if (!name[0] || !strcmp(t->name, name))
			all[n++] = t;
	qsort(all, n, sizeof *all, ctl_by_name);
	rec_ok(r);
	ctl_router(r, R);
	for (size_t i = 0; i < n; i++)
		ctl_tenant(r, R, all[i]);
	free(all);
}

int control_start(struct router *R)
{
	int fd = router_listen(R, ROUTER_CONTROL_SOCK, SOCK_STREAM);

	if (fd < 0) {
		log_error_r(fd, "cannot listen on %s/%s", R->host->state_dir, ROUTER_CONTROL_SOCK);
		return -1;
	}
	ctl = (struct rec_server){ .loop = R->loop, .handle = ctl_handle, .data = R,
				   .max_conns = CTL_MAX_CONN, .timeout = CTL_TIMEOUT };
	rec_server_start(&ctl, fd);
	return 0;
}
