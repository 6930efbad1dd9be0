/* fwd: the data path of fief-router.
 *
 * One libev loop watches every tenant's tun and the host tun. Each packet
 * is read whole with its virtio-net header (a GSO packet moves up to
 * 64 KiB in one read), checked, counted and written whole to where its
 * destination lives: the tenant owning that address, or the host tun for
 * the router itself and the rest of the world. The router never rewrites
 * a packet, so partial checksums and GSO metadata pass through as they
 * came and the kernel on the far side finishes them.
 *
 * Fairness: a watcher reads at most FWD_BUDGET_PKTS packets or
 * FWD_BUDGET_BYTES per wakeup and then yields to the others (epoll is
 * level-triggered, so a tenant with more to send is simply called again
 * in the next round): one flooding tenant gets one share per round, not
 * the whole router. A full destination never blocks the loop: the packet
 * is dropped and counted, as a router does, and TCP backs off. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "packet.h"
#include "router.h"
#include "../launcher/tun.h"

#define FWD_BUDGET_PKTS 64
#define FWD_BUDGET_BYTES (512 * 1024)
#define FWD_HOST_BUDGET_PKTS 256
#define FWD_HASH_SIZE 4096           /* address buckets; chains beyond that */
#define FWD_MIN_BURST (2.0 * 65536)  /* a bucket must hold two GSO packets */
#ifndef FWD_SPIN
#define FWD_SPIN 0.0                 /* seconds of polling after the last packet (off: see below) */
#endif
/* Bytes of the router's packets a device may hold before a write to it
 * fails (EAGAIN) and the packet is dropped as "full": about 32 GSO
 * packets, or the kernel's whole backlog of small ones. */
#define FWD_DEVICE_QUEUE (2 << 20)

const char *const rt_drop_names[DROP_MAX] = {
	"spoof", "fw_out", "fw_in", "no_route", "malformed", "ipv6_off", "mtu", "full", "rate", "error",
};

static size_t fwd_hash(const struct router *R, uint32_t a)
{
	a ^= a >> 16;
	a *= 0x45d9f3bu;
	a ^= a >> 16;
	return a & R->hash_mask;
}

static struct rt_tenant *fwd_by_addr(const struct router *R, uint32_t addr)
{
	for (struct rt_tenant *t = R->hash[fwd_hash(R, addr)]; t; t = t->hnext)
		if (t->addr == addr)
			return t;
	return NULL;
}

static size_t fwd_hash6(const struct router *R, const uint8_t a[16])
{
	uint32_t h;

	memcpy(&h, a + 12, 4);
	return fwd_hash(R, h);
}

static struct rt_tenant *fwd_by_addr6(const struct router *R, const uint8_t a[16])
{
	for (struct rt_tenant *t = R->hash6[fwd_hash6(R, a)]; t; t = t->h6next)
		if (!memcmp(t->addr6, a, 16))
			return t;
	return NULL;
}

struct rt_tenant *fwd_tenant_find(struct router *R, const char *name)
{
	for (struct rt_tenant *t = R->tenants; t; t = t->next)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

/* ---- token buckets ---- */

static void bucket_init(struct rt_bucket *b, uint64_t rate, ev_tstamp now)
{
	b->rate = rate;
	b->burst = (double)rate / 10 > FWD_MIN_BURST ? (double)rate / 10 : FWD_MIN_BURST;
	b->tokens = b->burst;
	b->last = now;
}

static void bucket_refill(struct rt_bucket *b, ev_tstamp now)
{
	if (now > b->last) {
		b->tokens += (now - b->last) * (double)b->rate;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
	}
	b->last = now;
}

/* ---- writing ---- */

static int fwd_write(int fd, const uint8_t *buf, size_t len)
{
	ssize_t n;

	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		return -EIO;
	return errno == EAGAIN || errno == ENOBUFS || errno == ENOMEM ? -EAGAIN : -errno;
}

/* Deliver to tenant dst. Its firewall.in, MTU and inbound rate decide;
 * drops count against dst. Returns true when written. */
static bool fwd_to_tenant(struct router *R, struct rt_tenant *dst, const uint8_t *buf, size_t len,
			  const struct packet_info *pi)
{
	int r;

	if (!(pi->family == 4 ? filter_allows(&R->fw_in, pi->src, pi->dst, NULL)
			      : filter_allows6(&R->fw_in, pi->src6, pi->dst6, NULL))) {
		dst->c.drops[DROP_FW_IN]++;
		return false;
	}
	if (pi->seg_len > TUN_MTU) {
		dst->c.drops[DROP_MTU]++;
		return false;
	}
	if (dst->in_tb.rate) {
		bucket_refill(&dst->in_tb, ev_now(R->loop));
		if (dst->in_tb.tokens <= 0) {
			dst->c.drops[DROP_RATE]++;
			return false;
		}
		dst->in_tb.tokens -= pi->ip_len;
	}
	r = fwd_write(dst->fd, buf, len);
	if (r < 0) {
		dst->c.drops[r == -EAGAIN ? DROP_FULL : DROP_ERROR]++;
		return false;
	}
	dst->c.in_bytes += pi->ip_len;
	dst->c.in_packets++;
	return true;
}

static bool fwd_in_subnet(const struct router *R, uint32_t a)
{
	return (a & R->mask) == R->net && a != R->addr;
}

static bool fwd_in_subnet6(const struct router *R, const uint8_t a[16])
{
	return cidr6_contains(&R->net6, a) && memcmp(a, R->net6.addr, 16);
}

/* The tenant a packet is addressed to, NULL for the router itself and
 * the world beyond; *subnet tells whether the address is a tenant's. */
static struct rt_tenant *fwd_dest(const struct router *R, const struct packet_info *pi, bool *subnet)
{
	if (pi->family == 4) {
		*subnet = fwd_in_subnet(R, pi->dst);
		return *subnet ? fwd_by_addr(R, pi->dst) : NULL;
	}
	*subnet = fwd_in_subnet6(R, pi->dst6);
	return *subnet ? fwd_by_addr6(R, pi->dst6) : NULL;
}

/* One packet read from tenant t's tun. */
static void fwd_from_tenant(struct router *R, struct rt_tenant *t, size_t len)
{
	struct packet_info pi;
	struct rt_tenant *dst;
	bool subnet;
	int r;

	if (packet_parse(R->buf, len, &pi) != PACKET_OK) {
		t->c.drops[DROP_MALFORMED]++;
		return;
	}
	len = PACKET_VNET_LEN + pi.ip_len;
	if (pi.family == 6 && !t->has6) {
		t->c.drops[DROP_IPV6_OFF]++;
		return;
	}
	/* Anti-spoofing. The address is the one the launcher gave us from
	 * the tenant's file, and the tenant cannot change eth0 (it has no
	 * CAP_NET_ADMIN in its namespace), but anything that gets a packet
	 * into that tun is checked here, so this one comparison is the whole
	 * guarantee that every packet from t carries t's address. */
	if (pi.family == 4 ? pi.src != t->addr : memcmp(pi.src6, t->addr6, 16) != 0) {
		t->c.drops[DROP_SPOOF]++;
		return;
	}
	if (!(pi.family == 4 ? filter_allows(&R->fw_out, pi.src, pi.dst, NULL)
			     : filter_allows6(&R->fw_out, pi.src6, pi.dst6, NULL))) {
		t->c.drops[DROP_FW_OUT]++;
		return;
	}
	if (pi.seg_len > TUN_MTU) {
		t->c.drops[DROP_MTU]++;
		return;
	}
	dst = fwd_dest(R, &pi, &subnet);
	if (subnet) {
		if (!dst) {
			t->c.drops[DROP_NO_ROUTE]++;
			return;
		}
		if (!fwd_to_tenant(R, dst, R->buf, len, &pi))
			return;
	} else if ((r = fwd_write(R->host_fd, R->buf, len)) < 0) {
		t->c.drops[r == -EAGAIN ? DROP_FULL : DROP_ERROR]++;
		return;
	}
	t->c.out_bytes += pi.ip_len;
	t->c.out_packets++;
}

/* ---- reading ---- */

/* Latency: a reply usually comes back within tens of microseconds, and
 * being woken from epoll_wait for it costs about as much again. With
 * FWD_SPIN > 0, after traffic the loop keeps polling (an idle watcher
 * makes libev poll with a zero timeout) for that long, then sleeps.
 * Measured on 2 vCPUs (bench/router-vs-veth, docs/benchmarks.md), 50 us
 * of spinning made request/response latency worse (p50 109 us against
 * 80 us without) and cost 0.16 core per 10 Gbit/s: the spinning router
 * takes the CPU the two endpoints need. So it is off; on a host with
 * cores to spare it may pay. */
static void fwd_spin_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct router *R = w->data;

	if (ev_time() - R->last_packet > FWD_SPIN)
		ev_idle_stop(loop, w);
}

static void fwd_activity(struct router *R)
{
	if (FWD_SPIN <= 0)
		return;
	R->last_packet = ev_time();
	if (!ev_is_active(&R->spin_w))
		ev_idle_start(R->loop, &R->spin_w);
}

static void fwd_pause(struct router *R, struct rt_tenant *t)
{
	double wait = (1.0 - t->out_tb.tokens) / (double)t->out_tb.rate;

	ev_io_stop(R->loop, &t->io);
	ev_timer_set(&t->resume_w, wait > 0.001 ? wait : 0.001, 0);
	ev_timer_start(R->loop, &t->resume_w);
}

static void fwd_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rt_tenant *t = w->data;

	ev_timer_stop(loop, w);
	ev_io_start(loop, &t->io);
}

static void fwd_tenant_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rt_tenant *t = w->data;
	struct router *R = t->R;
	size_t bytes = 0;

	for (int i = 0; i < FWD_BUDGET_PKTS && bytes < FWD_BUDGET_BYTES; i++) {
		ssize_t n;

		/* Outbound over the limit: stop reading and let the tenant's
		 * own queue push back, instead of dropping what it sent. */
		if (t->out_tb.rate) {
			bucket_refill(&t->out_tb, ev_now(loop));
			if (t->out_tb.tokens <= 0)
				return fwd_pause(R, t);
		}
		n = read(t->fd, R->buf, PACKET_MAX);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			/* The device went away under us (EBADFD): nothing more
			 * will come; the launcher's removal frees the entry. */
			log_warn_r(n < 0 ? errno : 0, "%s: reading its tun stopped", t->name);
			ev_io_stop(loop, w);
			return;
		}
		bytes += (size_t)n;
		if (t->out_tb.rate)
			t->out_tb.tokens -= (double)n;
		fwd_from_tenant(R, t, (size_t)n);
	}
	if (bytes)
		fwd_activity(R);
}

/* One packet read from the host tun: only tenants are behind us. */
static void fwd_from_host(struct router *R, size_t len)
{
	struct packet_info pi;
	struct rt_tenant *dst;
	bool subnet;

	if (packet_parse(R->buf, len, &pi) != PACKET_OK) {
		R->host_c.drops[DROP_MALFORMED]++;
		return;
	}
	if (pi.family == 6 && !R->has6) {
		R->host_c.drops[DROP_IPV6_OFF]++;
		return;
	}
	dst = fwd_dest(R, &pi, &subnet);
	if (!dst) {
		R->host_c.drops[DROP_NO_ROUTE]++;
		return;
	}
	if (fwd_to_tenant(R, dst, R->buf, PACKET_VNET_LEN + pi.ip_len, &pi)) {
		R->host_c.out_bytes += pi.ip_len;
		R->host_c.out_packets++;
	}
}

static void fwd_host_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct router *R = w->data;

	for (int i = 0; i < FWD_HOST_BUDGET_PKTS; i++) {
		ssize_t n = read(w->fd, R->buf, PACKET_MAX);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			log_error_r(n < 0 ? errno : 0, "reading %s failed; stopping", R->host->router.device);
			ev_break(loop, EVBREAK_ALL);
			return;
		}
		R->host_c.in_bytes += (uint64_t)n > PACKET_VNET_LEN ? (uint64_t)n - PACKET_VNET_LEN : 0;
		R->host_c.in_packets++;
		fwd_from_host(R, (size_t)n);
	}
	fwd_activity(R);
}

/* ---- the tenant table ---- */

static void fwd_unhash(struct router *R, struct rt_tenant *t)
{
	for (struct rt_tenant **pp = &R->hash[fwd_hash(R, t->addr)]; *pp; pp = &(*pp)->hnext)
		if (*pp == t) {
			*pp = t->hnext;
			break;
		}
	if (t->has6)
		for (struct rt_tenant **pp = &R->hash6[fwd_hash6(R, t->addr6)]; *pp; pp = &(*pp)->h6next)
			if (*pp == t) {
				*pp = t->h6next;
				break;
			}
}

static void fwd_tenant_free(struct router *R, struct rt_tenant *t)
{
	for (struct rt_tenant **pp = &R->tenants; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	fwd_unhash(R, t);
	ev_io_stop(R->loop, &t->io);
	ev_timer_stop(R->loop, &t->resume_w);
	close(t->fd);
	R->n_tenants--;
	free(t);
}

int fwd_tenant_del(struct router *R, const char *name)
{
	struct rt_tenant *t = fwd_tenant_find(R, name);

	if (!t)
		return -ENOENT;
	log_info("%s: removed (out %llu B, in %llu B)", name, (unsigned long long)t->c.out_bytes,
		 (unsigned long long)t->c.in_bytes);
	fwd_tenant_free(R, t);
	return 0;
}

static int fwd_check_new(struct router *R, const char *name, uint32_t addr, const uint8_t *addr6,
			 int fd, char *err, size_t errlen)
{
	struct rt_tenant *owner;
	uint8_t zero[16] = { 0 };
	int r;

	if (!value_is_tenant_name(name))
		return snprintf(err, errlen, "bad tenant name"), -EINVAL;
	/* Only host addresses of our subnet: never the router, the network
	 * or the broadcast address (the loader checks this too). */
	if (!fwd_in_subnet(R, addr) || addr == R->net || addr == (R->net | ~R->mask))
		return snprintf(err, errlen, "address outside the tenant subnet"), -EINVAL;
	owner = fwd_by_addr(R, addr);
	if (owner && strcmp(owner->name, name))
		return snprintf(err, errlen, "address already belongs to tenant %s", owner->name), -EEXIST;
	if (addr6) {
		struct cidr6 sub = R->net6;
		/* the subnet-router anycast address (host part zero) is no tenant's */
		for (int i = 0, p = sub.prefix; i < 16; i++, p -= 8)
			sub.addr[i] &= p >= 8 ? 0xff : p <= 0 ? 0 : (uint8_t)(0xff << (8 - p));
		if (!R->has6)
			return snprintf(err, errlen, "an IPv6 address, and the router has none"), -EINVAL;
		if (!fwd_in_subnet6(R, addr6) || !memcmp(addr6, sub.addr, 16) || !memcmp(addr6, zero, 16))
			return snprintf(err, errlen, "IPv6 address outside the tenant subnet"), -EINVAL;
		owner = fwd_by_addr6(R, addr6);
		if (owner && strcmp(owner->name, name))
			return snprintf(err, errlen, "IPv6 address already belongs to tenant %s", owner->name), -EEXIST;
	}
	if ((r = tun_check_fd(fd)) < 0)
		return snprintf(err, errlen, "not a tun with a vnet header: %s", strerror(-r)), r;
	if ((r = tun_set_queue_limit(fd, FWD_DEVICE_QUEUE)) < 0)
		log_warn_r(r, "%s: cannot bound its queue (TUNSETSNDBUF)", name);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return r = -errno, snprintf(err, errlen, "O_NONBLOCK: %s", strerror(-r)), r;
	return 0;
}

int fwd_tenant_add(struct router *R, const char *name, uint32_t addr, const uint8_t *addr6,
		   uint64_t rate, int fd, char *err, size_t errlen)
{
	struct rt_tenant *t, *old;
	int r = fwd_check_new(R, name, addr, addr6, fd, err, errlen);

	if (r < 0 || !(t = calloc(1, sizeof *t))) {
		if (r == 0)
			snprintf(err, errlen, "out of memory"), r = -ENOMEM;
		close(fd);
		return r;
	}
	/* A restarted tenant (or a resync) replaces its old entry. */
	if ((old = fwd_tenant_find(R, name)))
		fwd_tenant_free(R, old);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->addr = addr;
	t->fd = fd;
	t->R = R;
	bucket_init(&t->out_tb, rate, ev_now(R->loop));
	bucket_init(&t->in_tb, rate, ev_now(R->loop));
	ev_io_init(&t->io, fwd_tenant_cb, fd, EV_READ);
	t->io.data = t;
	ev_init(&t->resume_w, fwd_resume_cb);
	t->resume_w.data = t;
	ev_io_start(R->loop, &t->io);
	t->hnext = R->hash[fwd_hash(R, addr)];
	R->hash[fwd_hash(R, addr)] = t;
	if (addr6) {
		t->has6 = true;
		memcpy(t->addr6, addr6, 16);
		t->h6next = R->hash6[fwd_hash6(R, addr6)];
		R->hash6[fwd_hash6(R, addr6)] = t;
	}
	t->next = R->tenants;
	R->tenants = t;
	R->n_tenants++;
	return 0;
}

int fwd_init(struct router *R, int host_fd)
{
	const struct cidr *c = &R->host->router.address;
	int r;

	R->addr = c->addr;
	R->mask = cidr_mask(c->prefix);
	R->net = c->addr & R->mask;
	R->hash_mask = FWD_HASH_SIZE - 1;
	R->hash = calloc(FWD_HASH_SIZE, sizeof *R->hash);
	R->hash6 = calloc(FWD_HASH_SIZE, sizeof *R->hash6);
	R->buf = malloc(PACKET_MAX);
	R->has6 = R->host->router.has_address6;
	R->net6 = R->host->router.address6;
	if (!R->hash || !R->hash6 || !R->buf)
		return -ENOMEM;
	if ((r = filter_compile(&R->fw_out, R->host->router.firewall.out.v, R->host->router.firewall.out.n)) < 0 ||
	    (r = filter_compile(&R->fw_in, R->host->router.firewall.in.v, R->host->router.firewall.in.n)) < 0)
		return r;
	if (fcntl(host_fd, F_SETFL, fcntl(host_fd, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	R->host_fd = host_fd;
	if ((r = tun_set_queue_limit(host_fd, FWD_DEVICE_QUEUE)) < 0)
		log_warn_r(r, "%s: cannot bound its queue (TUNSETSNDBUF)", R->host->router.device);
	ev_idle_init(&R->spin_w, fwd_spin_cb);
	R->spin_w.data = R;
	ev_io_init(&R->host_io, fwd_host_cb, host_fd, EV_READ);
	R->host_io.data = R;
	ev_io_start(R->loop, &R->host_io);
	return 0;
}

void fwd_shutdown(struct router *R)
{
	while (R->tenants)
		fwd_tenant_free(R, R->tenants);
	ev_io_stop(R->loop, &R->host_io);
	ev_idle_stop(R->loop, &R->spin_w);
	filter_free(&R->fw_out);
	filter_free(&R->fw_in);
	free(R->hash);
	free(R->hash6);
	free(R->buf);
}
