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
#include <pthread.h>
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

/* One thread's counts. Each forwarding thread adds to its own copy
 * (plain loads and stores, relaxed so that the control thread may read
 * them while they move: no locked instruction on the data path); readers
 * sum the copies. A cache line or two each, so threads never share one. */
struct rt_counters {
	uint64_t out_bytes, out_packets;     /* from the tenant, forwarded */
	uint64_t in_bytes, in_packets;       /* to the tenant, delivered */
	uint64_t drops[DROP_MAX];
} __attribute__((aligned(64)));

/* Add v to a counter of the calling thread's own copy. */
#define RT_ADD(field, v) __atomic_store_n(&(field), (field) + (v), __ATOMIC_RELAXED)
#define RT_INC(field) RT_ADD(field, 1)

#define ROUTER_MAX_QUEUES CONFIG_ROUTER_MAX_THREADS

/* A token bucket in bytes; rate 0 = unlimited. */
struct rt_bucket {
	uint64_t rate;               /* bytes per second */
	double tokens, burst;
	double last;
};

struct rt_tenant;

/* One queue of a tun (a tenant's or the host's): one fd, read by exactly
 * one forwarding thread. Its paused/stopped state belongs to that thread. */
struct rt_queue {
	struct rt_tenant *t;         /* NULL: a queue of the host tun */
	int fd;
	int worker;                  /* index of the thread that reads it */
	bool paused;                 /* over the outbound rate: not polled until resume_at */
	bool stopped;                /* reading failed: never polled again */
	uint8_t burst;               /* packets it gave in its last round (io_uring reads to ask for) */
	double resume_at;
	struct rt_queue *pnext;      /* the worker's list of paused queues */
};

/* The tenant table (hash chains, list, dead) is changed only by the main
 * thread, holding the table's write lock; forwarding threads read it
 * holding the read lock for one batch of events. A removed tenant is
 * unhashed and marked dead under the write lock and freed only once every
 * thread has started a new epoll_wait since (see fwd.c). */
struct rt_tenant {
	char name[40];
	uint32_t addr;               /* host byte order */
	bool has6;
	uint8_t addr6[16];           /* network byte order */
	int nq;                      /* queues of its tun (fds), 1..ROUTER_MAX_QUEUES */
	struct rt_queue q[ROUTER_MAX_QUEUES];
	bool dead;                   /* removed; under the write lock */
	pthread_mutex_t tb_lock;     /* the buckets (taken only when rate != 0) */
	struct rt_bucket out_tb, in_tb;
	struct rt_counters *c;       /* one per forwarding thread */
	uint64_t dead_epoch[ROUTER_MAX_QUEUES]; /* each thread's epoch when it died */
	struct rt_tenant *hnext;     /* address hash chain */
	struct rt_tenant *h6next;    /* IPv6 address hash chain */
	struct rt_tenant *next;      /* all tenants, or the dead awaiting their free */
};

/* A forwarding thread: its own epoll set with queue i of every tenant
 * (and queue j of tenants with more queues than threads, j % threads ==
 * i) and queue i of the host tun. */
struct rt_worker {
	struct router *R;
	int idx;
	pthread_t th;
	bool started;
	int ep;                      /* epoll fd */
	int wake_fd;                 /* eventfd: the main thread wants a new epoch */
	uint64_t epoch;              /* bumped before each epoll_wait (atomic store, read by main) */
	uint8_t *buf;                /* one packet, PACKET_MAX bytes */
	struct fwd_batch *batch;     /* io_uring and its buffers; NULL: one system call per packet */
	double now;                  /* CLOCK_MONOTONIC after the last epoll_wait */
	struct rt_queue host_q;      /* queue idx of the host tun */
	struct rt_queue *paused;
	struct rt_counters host_c;   /* packets from the host side no tenant owns */
} __attribute__((aligned(64)));

struct router {
	struct ev_loop *loop;        /* the main thread's: sockets, signals, reaping */
	const struct config_host *host;
	struct filter fw_out, fw_in;
	uint32_t addr, net, mask;    /* the router's address, the subnet */
	bool has6;                   /* router.address6 is set */
	struct cidr6 net6;           /* the router's IPv6 address and the IPv6 subnet */
	int nthreads;                /* forwarding threads = queues of the host tun */
	struct rt_worker *w;
	pthread_rwlock_t lock;       /* the tenant table */
	struct rt_tenant **hash, **hash6;
	size_t hash_mask;
	struct rt_tenant *tenants;   /* main thread only */
	size_t n_tenants;
	struct rt_tenant *dead;      /* removed, waiting for every thread's next epoch */
	ev_timer reap_w;
	ev_async fail_w;             /* a thread lost the host tun: stop */
	bool inline_fwd;             /* router.threads 1: forwarding runs in the main loop */
	ev_io inline_io;             /* ... on the forwarding epoll set */
	ev_timer inline_timer;       /* ... and for queues paused by a rate limit */
	int stopping;                /* atomic */
};

/* fwd.c */
/* host_fds: R->nthreads queues of the host tun (taken). */
int fwd_init(struct router *R, const int *host_fds);
/* Start the forwarding threads (after the privilege drop). */
int fwd_start(struct router *R);
/* Take fds[0..nfds) (the queues of one tun) for tenant `name` at `addr`
 * and, when addr6 is not NULL, IPv6 address addr6 (replacing a tenant of
 * that name). On failure every fd is closed and a reason is in err. */
int fwd_tenant_add(struct router *R, const char *name, uint32_t addr, const uint8_t *addr6,
		   uint64_t rate, const int *fds, size_t nfds, char *err, size_t errlen);
/* The sum of every thread's copy. */
void fwd_counters(const struct router *R, const struct rt_counters *per_thread, struct rt_counters *sum);
/* Add one thread's copy k to sum (read while that thread may be adding). */
void fwd_counters_add(struct rt_counters *sum, const struct rt_counters *k);
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
