/* fwd: the data path of fief-router.
 *
 * router.threads forwarding threads, each with its own epoll set: thread
 * i reads queue i of every tenant's tun and of the host tun (tuns are
 * IFF_MULTI_QUEUE when there is more than one thread; the kernel keeps
 * each flow on one queue, see docs/router.md) and writes to the
 * destination's queue i. The main thread owns the tenant table and the
 * sockets (link.c, control.c). Each packet
 * is read whole with its virtio-net header (a GSO packet moves up to
 * 64 KiB in one read), checked, counted and written whole to where its
 * destination lives: the tenant owning that address, or the host tun for
 * the router itself and the rest of the world. The router never rewrites
 * a packet, so partial checksums and GSO metadata pass through as they
 * came and the kernel on the far side finishes them.
 *
 * System calls: with io_uring (router.io_uring, the default) a round
 * reads each ready queue's first packet with read(2), then hands the
 * kernel the writes of what it has read together with the next reads in
 * one io_uring_enter, until the queues are empty or out of budget
 * (fwd_serve_batched). Without it, one read(2) and one write(2) per
 * packet (fwd_tenant_queue, fwd_host_queue). Both paths share every
 * check and count: only fwd_send differs.
 *
 * Fairness: a queue is read at most FWD_BUDGET_PKTS packets or
 * FWD_BUDGET_BYTES per wakeup and then yields to the others (epoll is
 * level-triggered, so a tenant with more to send is simply called again
 * in the next round): one flooding tenant gets one share per round of
 * each thread, not the whole router. A full destination never blocks the loop: the packet
 * is dropped and counted, as a router does, and TCP backs off. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
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
#define FWD_EVENTS 64                /* epoll events per wake-up of a thread */
#define FWD_REAP_INTERVAL 0.05       /* seconds between looks at the dead */
#ifndef FWD_PIN
#define FWD_PIN 0                    /* 1: pin thread i to CPU i (an experiment, see docs/benchmarks.md) */
#endif
/* With io_uring a thread reads up to FWD_BATCH packets in one system
 * call, at most FWD_QUEUE_READS of them from one queue, and their writes
 * go with the next such call: on a VM where a system call costs a
 * microsecond, the two per packet of read(2) and write(2) were a tenth
 * or more of the router's CPU (docs/benchmarks.md). */
#define FWD_BATCH 32
#define FWD_QUEUE_READS 8
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

/* Bytes of the router's packets a device may hold before a write to it
 * fails (EAGAIN) and the packet is dropped as "full": about 32 GSO
 * packets, or the kernel's whole backlog of small ones. */
#define FWD_DEVICE_QUEUE (2 << 20)

const char *const rt_drop_names[DROP_MAX] = {
	"spoof", "fw_out", "fw_in", "no_route", "malformed", "ipv6_off", "mtu", "full", "rate", "error",
};

static double fwd_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

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

/* Main thread only (it alone changes the list). */
struct rt_tenant *fwd_tenant_find(struct router *R, const char *name)
{
	for (struct rt_tenant *t = R->tenants; t; t = t->next)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

void fwd_counters_add(struct rt_counters *sum, const struct rt_counters *k)
{
	sum->out_bytes += __atomic_load_n(&k->out_bytes, __ATOMIC_RELAXED);
	sum->out_packets += __atomic_load_n(&k->out_packets, __ATOMIC_RELAXED);
	sum->in_bytes += __atomic_load_n(&k->in_bytes, __ATOMIC_RELAXED);
	sum->in_packets += __atomic_load_n(&k->in_packets, __ATOMIC_RELAXED);
	for (int d = 0; d < DROP_MAX; d++)
		sum->drops[d] += __atomic_load_n(&k->drops[d], __ATOMIC_RELAXED);
}

void fwd_counters(const struct router *R, const struct rt_counters *per_thread, struct rt_counters *sum)
{
	memset(sum, 0, sizeof *sum);
	for (int i = 0; i < R->nthreads; i++)
		fwd_counters_add(sum, &per_thread[i]);
}

/* ---- token buckets ---- */

/* A tenant's buckets are shared by every thread that reads one of its
 * queues or writes to one: they are only touched with tb_lock held, and
 * only for tenants with a rate limit (the others never take the lock). */
static void bucket_init(struct rt_bucket *b, uint64_t rate, double now)
{
	b->rate = rate;
	b->burst = (double)rate / 10 > FWD_MIN_BURST ? (double)rate / 10 : FWD_MIN_BURST;
	b->tokens = b->burst;
	b->last = now;
}

/* Each thread has its own clock reading: time only moves forward here,
 * so a thread a little behind another never refills twice. */
static void bucket_refill(struct rt_bucket *b, double now)
{
	if (now > b->last) {
		b->tokens += (now - b->last) * (double)b->rate;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
		b->last = now;
	}
}

/* ---- writing ---- */

/* What a packet's write counts, once its result is known: the source's
 * out_* and the destination's in_* when it was written whole, a drop
 * (full or error) against `fail` when not. */
struct fwd_acct {
	struct rt_counters *src;     /* out_bytes, out_packets; NULL: none */
	struct rt_counters *dst;     /* in_bytes, in_packets; NULL: none */
	struct rt_counters *fail;
	uint32_t ip_len;
};

/* The io_uring of a thread: two sets of FWD_BATCH buffers, one read into
 * each, at most one write out of each. A submission carries the writes
 * of the packets read into one set and the next reads, into the other. */
#define FWD_SLOTS (2 * FWD_BATCH)
#define FWD_WRITE_TAG 0x10000u       /* in user_data: a write (else a read) */

struct fwd_slot {
	struct rt_queue *q;          /* the queue read into this buffer */
	int act;                     /* its index in the round's active queues */
	int res;                     /* the read's result: length or -errno */
	bool ring;                   /* read through the ring (else with read(2)) */
	int fd;                      /* the write queued from this buffer */
	uint32_t len;
	struct fwd_acct acct;
};

struct fwd_batch {
	struct io_uring ring;
	int cur;                     /* the slot being forwarded; -1: write at once */
	int nwrites;                 /* writes queued in this submission */
	bool broken;                 /* the kernel refused a read without waiting */
	uint8_t *buf[FWD_SLOTS];
	struct fwd_slot slot[FWD_SLOTS];
};

/* A write's outcome as fwd_account takes it: 0 written, -EAGAIN the
 * device is full, another -errno an error. */
static int fwd_write_result(ssize_t n, size_t len, int err)
{
	if (n == (ssize_t)len)
		return 0;
	if (n >= 0)
		return -EIO;
	return err == EAGAIN || err == ENOBUFS || err == ENOMEM ? -EAGAIN : -err;
}

static int fwd_write(int fd, const uint8_t *buf, size_t len)
{
	ssize_t n;

	do
		n = write(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return fwd_write_result(n, len, errno);
}

static void fwd_account(const struct fwd_acct *a, int r)
{
	if (r < 0) {
		RT_INC(a->fail->drops[r == -EAGAIN ? DROP_FULL : DROP_ERROR]);
		return;
	}
	if (a->dst) {
		RT_ADD(a->dst->in_bytes, a->ip_len);
		RT_INC(a->dst->in_packets);
	}
	if (a->src) {
		RT_ADD(a->src->out_bytes, a->ip_len);
		RT_INC(a->src->out_packets);
	}
}

/* Send the packet in buf to fd and count it: at once with write(2), or
 * queued on the thread's ring (the buffer is the current slot's, and
 * stays untouched until the batch's writes are done). */
static void fwd_send(struct rt_worker *w, int fd, const uint8_t *buf, size_t len, const struct fwd_acct *a)
{
	struct fwd_batch *b = w->batch;
	struct io_uring_sqe *sqe;

	if (b && b->cur >= 0 && (sqe = io_uring_get_sqe(&b->ring))) {
		struct fwd_slot *s = &b->slot[b->cur];

		io_uring_prep_write(sqe, fd, buf, (unsigned)len, 0);
		/* A full device fails at once (EAGAIN) instead of waiting:
		 * the packet is dropped and counted, as with write(2) on the
		 * non-blocking fd. */
		sqe->rw_flags = RWF_NOWAIT;
		sqe->user_data = FWD_WRITE_TAG | (uint64_t)b->cur;
		s->fd = fd;
		s->len = (uint32_t)len;
		s->acct = *a;
		b->nwrites++;
		return;
	}
	fwd_account(a, fwd_write(fd, buf, len));
}

/* Deliver to tenant dst. Its firewall.in, MTU and inbound rate decide;
 * drops count against dst; a packet written counts as src's out (src:
 * the sending tenant's counters, or the host side's) and dst's in. The
 * write goes to dst's queue of the same index as the writing thread, so
 * the kernel records this flow on that queue and sends the flow's
 * packets back to the same thread. */
static void fwd_to_tenant(struct rt_worker *w, struct rt_tenant *dst, const uint8_t *buf, size_t len,
			  const struct packet_info *pi, struct rt_counters *src)
{
	struct router *R = w->R;
	struct rt_counters *dc = &dst->c[w->idx];
	struct fwd_acct a = { .src = src, .dst = dc, .fail = dc, .ip_len = pi->ip_len };

	if (!(pi->family == 4 ? filter_allows(&R->fw_in, pi->src, pi->dst, NULL)
			      : filter_allows6(&R->fw_in, pi->src6, pi->dst6, NULL))) {
		RT_INC(dc->drops[DROP_FW_IN]);
		return;
	}
	if (pi->seg_len > TUN_MTU) {
		RT_INC(dc->drops[DROP_MTU]);
		return;
	}
	if (dst->in_tb.rate) {
		bool over;

		pthread_mutex_lock(&dst->tb_lock);
		bucket_refill(&dst->in_tb, w->now);
		over = dst->in_tb.tokens <= 0;
		if (!over)
			dst->in_tb.tokens -= pi->ip_len;
		pthread_mutex_unlock(&dst->tb_lock);
		if (over) {
			RT_INC(dc->drops[DROP_RATE]);
			return;
		}
	}
	fwd_send(w, dst->q[w->idx % dst->nq].fd, buf, len, &a);
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

/* One packet read from tenant t's tun into buf. */
static void fwd_from_tenant(struct rt_worker *w, struct rt_tenant *t, const uint8_t *buf, size_t len)
{
	struct router *R = w->R;
	struct rt_counters *c = &t->c[w->idx];
	struct packet_info pi;
	struct rt_tenant *dst;
	bool subnet;

	if (packet_parse(buf, len, &pi) != PACKET_OK) {
		RT_INC(c->drops[DROP_MALFORMED]);
		return;
	}
	len = PACKET_VNET_LEN + pi.ip_len;
	if (pi.family == 6 && !t->has6) {
		RT_INC(c->drops[DROP_IPV6_OFF]);
		return;
	}
	/* Anti-spoofing. The address is the one the launcher gave us from
	 * the tenant's file, and the tenant cannot change eth0 (it has no
	 * CAP_NET_ADMIN in its namespace), but anything that gets a packet
	 * into that tun is checked here, so this one comparison is the whole
	 * guarantee that every packet from t carries t's address. */
	if (pi.family == 4 ? pi.src != t->addr : memcmp(pi.src6, t->addr6, 16) != 0) {
		RT_INC(c->drops[DROP_SPOOF]);
		return;
	}
	if (!(pi.family == 4 ? filter_allows(&R->fw_out, pi.src, pi.dst, NULL)
			     : filter_allows6(&R->fw_out, pi.src6, pi.dst6, NULL))) {
		RT_INC(c->drops[DROP_FW_OUT]);
		return;
	}
	if (pi.seg_len > TUN_MTU) {
		RT_INC(c->drops[DROP_MTU]);
		return;
	}
	dst = fwd_dest(R, &pi, &subnet);
	if (!subnet) {
		struct fwd_acct a = { .src = c, .fail = c, .ip_len = pi.ip_len };

		fwd_send(w, w->host_q.fd, buf, len, &a);
	} else if (dst) {
		fwd_to_tenant(w, dst, buf, len, &pi, c);
	} else {
		RT_INC(c->drops[DROP_NO_ROUTE]);
	}
}

/* ---- reading ---- */

/* Outbound over the rate: this thread stops polling the queue until the
 * bucket has a token again, and the tenant's own queue pushes back on its
 * sockets (nothing is dropped that a TCP sender would have to resend).
 * The other threads pause their queues of the tenant the same way. */
static void fwd_pause(struct rt_worker *w, struct rt_queue *q, double wait)
{
	struct epoll_event ev = { .events = 0, .data.ptr = q };

	if (epoll_ctl(w->ep, EPOLL_CTL_MOD, q->fd, &ev) < 0)
		return;                  /* gone from the set: nothing to pause */
	q->paused = true;
	q->resume_at = w->now + (wait > 0.001 ? wait : 0.001);
	q->pnext = w->paused;
	w->paused = q;
}

/* Paused queues whose time has come are polled again; those of dead
 * tenants are forgotten (before this thread's next epoch, so before the
 * main thread may free them). Returns the epoll timeout in ms. */
static int fwd_resume(struct rt_worker *w)
{
	double next = -1;

	for (struct rt_queue **pp = &w->paused; *pp;) {
		struct rt_queue *q = *pp;

		if (q->t->dead || q->stopped) {
			*pp = q->pnext;
			q->paused = false;
			continue;
		}
		if (w->now >= q->resume_at) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = q };
			epoll_ctl(w->ep, EPOLL_CTL_MOD, q->fd, &ev);
			q->paused = false;
			*pp = q->pnext;
			continue;
		}
		if (next < 0 || q->resume_at < next)
			next = q->resume_at;
		pp = &q->pnext;
	}
	if (next < 0)
		return -1;
	return (int)((next - w->now) * 1000) + 1;
}

/* Over its outbound rate, tenant queue q is paused (true). */
static bool fwd_over_rate(struct rt_worker *w, struct rt_queue *q)
{
	struct rt_tenant *t = q->t;
	double wait = 0;
	bool over;

	if (!t->out_tb.rate)
		return false;
	pthread_mutex_lock(&t->tb_lock);
	bucket_refill(&t->out_tb, w->now);
	over = t->out_tb.tokens <= 0;
	if (over)
		wait = (1.0 - t->out_tb.tokens) / (double)t->out_tb.rate;
	pthread_mutex_unlock(&t->tb_lock);
	if (over)
		fwd_pause(w, q, wait);
	return over;
}

static void fwd_take_tokens(struct rt_tenant *t, ssize_t n)
{
	if (t->out_tb.rate) {
		pthread_mutex_lock(&t->tb_lock);
		t->out_tb.tokens -= (double)n;
		pthread_mutex_unlock(&t->tb_lock);
	}
}

/* Reading tenant queue q failed with err (0: end of file). The device
 * went away under us (EBADFD): nothing more will come; the launcher's
 * removal frees the entry. */
static void fwd_queue_stopped(struct rt_worker *w, struct rt_queue *q, int err)
{
	if (q->stopped)
		return;
	log_warn_r(err, "%s: reading its tun stopped", q->t->name);
	epoll_ctl(w->ep, EPOLL_CTL_DEL, q->fd, NULL);
	q->stopped = true;
}

static void fwd_tenant_queue(struct rt_worker *w, struct rt_queue *q)
{
	struct rt_tenant *t = q->t;
	size_t bytes = 0;

	for (int i = 0; i < FWD_BUDGET_PKTS && bytes < FWD_BUDGET_BYTES; i++) {
		ssize_t n;

		if (fwd_over_rate(w, q))
			return;
		n = read(q->fd, w->buf, PACKET_MAX);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0)
			return fwd_queue_stopped(w, q, n < 0 ? errno : 0);
		bytes += (size_t)n;
		fwd_take_tokens(t, n);
		fwd_from_tenant(w, t, w->buf, (size_t)n);
	}
}

/* One packet read from the host tun: only tenants are behind us. */
static void fwd_from_host(struct rt_worker *w, const uint8_t *buf, size_t len)
{
	struct router *R = w->R;
	struct packet_info pi;
	struct rt_tenant *dst;
	bool subnet;

	RT_ADD(w->host_c.in_bytes, len > PACKET_VNET_LEN ? len - PACKET_VNET_LEN : 0);
	RT_INC(w->host_c.in_packets);
	if (packet_parse(buf, len, &pi) != PACKET_OK) {
		RT_INC(w->host_c.drops[DROP_MALFORMED]);
		return;
	}
	if (pi.family == 6 && !R->has6) {
		RT_INC(w->host_c.drops[DROP_IPV6_OFF]);
		return;
	}
	dst = fwd_dest(R, &pi, &subnet);
	if (!dst) {
		RT_INC(w->host_c.drops[DROP_NO_ROUTE]);
		return;
	}
	fwd_to_tenant(w, dst, buf, PACKET_VNET_LEN + pi.ip_len, &pi, &w->host_c);
}

static bool fwd_host_failed(struct rt_worker *w, int err)
{
	log_error_r(err, "reading %s (queue %d) failed; stopping", w->R->host->router.device, w->idx);
	return false;
}

/* Returns false when the host tun failed (the router stops). */
static bool fwd_host_queue(struct rt_worker *w)
{
	for (int i = 0; i < FWD_HOST_BUDGET_PKTS; i++) {
		ssize_t n = read(w->host_q.fd, w->buf, PACKET_MAX);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0)
			return fwd_host_failed(w, n < 0 ? errno : 0);
		fwd_from_host(w, w->buf, (size_t)n);
	}
	return true;
}

static bool fwd_stopping(const struct router *R)
{
	return __atomic_load_n(&R->stopping, __ATOMIC_ACQUIRE) != 0;
}

/* ---- batches through io_uring ---- */

/* A queue being served in a round of the batched path. */
struct fwd_active {
	struct rt_queue *q;
	int pkts;                    /* read in this round */
	size_t bytes;
	int budget;                  /* packets it may give in a round */
	int want;                    /* reads to ask for in the next submission */
	int asked, got;              /* in the current one: reads, packets */
	bool done;                   /* drained, paused, stopped or out of budget */
};

static void fwd_complete(struct rt_worker *w, uint64_t ud, int res)
{
	struct fwd_batch *b = w->batch;
	unsigned idx = (unsigned)(ud & ~(uint64_t)FWD_WRITE_TAG);
	struct fwd_slot *s;
	int r;

	if (idx >= FWD_SLOTS)
		return;
	s = &b->slot[idx];
	if (!(ud & FWD_WRITE_TAG)) {
		s->res = res;
		return;
	}
	if (res == -EOPNOTSUPP)
		/* The kernel would not write to this device without
		 * waiting (RWF_NOWAIT refused): once more, with write(2) on
		 * the non-blocking fd. */
		r = fwd_write(s->fd, b->buf[idx], s->len);
	else
		r = res >= 0 ? fwd_write_result(res, s->len, 0) : fwd_write_result(-1, s->len, -res);
	fwd_account(&s->acct, r);
}

/* Submit what w's ring holds (n reads and writes) and wait until all
 * have completed: a read's result goes to its slot, a write is counted.
 * Each completes without waiting (RWF_NOWAIT), so this returns at once.
 * False when the ring itself failed: the router stops. */
static bool fwd_ring_wait(struct rt_worker *w, unsigned n)
{
	struct fwd_batch *b = w->batch;
	unsigned done = 0;

	for (int tries = 0; done < n; tries++) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int r = io_uring_submit_and_wait(&b->ring, n - done);

		if (r < 0 && r != -EINTR && r != -EAGAIN) {
			log_error_r(-r, "forwarding thread %d: io_uring_enter", w->idx);
			return false;
		}
		io_uring_for_each_cqe(&b->ring, head, cqe) {
			fwd_complete(w, cqe->user_data, cqe->res);
			seen++;
		}
		io_uring_cq_advance(&b->ring, seen);
		done += seen;
		if (!seen && tries > 1000) {
			log_error("forwarding thread %d: io_uring completes nothing", w->idx);
			return false;
		}
	}
	return true;
}

/* Queue the next reads of the round's active queues into the slots of
 * set `base` (0 or FWD_BATCH), the first queue rotating from one
 * submission to the next. Returns how many. */
static int fwd_queue_reads(struct rt_worker *w, struct fwd_active *act, int na, int first, int base)
{
	struct fwd_batch *b = w->batch;
	int nr = 0;

	for (int k = 0; k < na; k++)
		act[k].asked = act[k].got = 0;
	for (int k = 0; k < na && nr < FWD_BATCH; k++) {
		int ai = (first + k) % na;
		struct fwd_active *a = &act[ai];
		struct rt_queue *q = a->q;
		int want = a->want;

		if (a->done)
			continue;
		if (q->t && q->t->out_tb.rate) {
			/* Rate-limited: one packet at a time, the bucket looked
			 * at before each, as without io_uring. */
			if (fwd_over_rate(w, q)) {
				a->done = true;
				continue;
			}
			want = 1;
		}
		if (want > FWD_BATCH - nr)
			want = FWD_BATCH - nr;
		for (int j = 0; j < want; j++, nr++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);

			/* The ring has room for FWD_SLOTS entries, and holds
			 * at most one per slot of this set and of the other. */
			io_uring_prep_read(sqe, q->fd, b->buf[base + nr], PACKET_MAX, 0);
			sqe->rw_flags = RWF_NOWAIT;  /* an empty queue answers EAGAIN */
			sqe->user_data = (uint64_t)(base + nr);
			b->slot[base + nr].q = q;
			b->slot[base + nr].act = ai;
			b->slot[base + nr].ring = true;
		}
		a->asked = want;
	}
	return nr;
}

/* The first read of each ready queue, with read(2) into set `base`: on
 * this path an io_uring_enter costs about twice a read(2), and a round
 * often has a single packet (a request, an answer, a keystroke), which
 * then goes out with the first submission, as soon as with read(2) and
 * write(2). Returns how many. */
static int fwd_first_reads(struct rt_worker *w, struct fwd_active *act, int na, int base)
{
	struct fwd_batch *b = w->batch;
	int nr = 0;

	for (int k = 0; k < na && nr < FWD_BATCH; k++) {
		struct fwd_active *a = &act[k];
		struct fwd_slot *s = &b->slot[base + nr];
		ssize_t n;

		a->asked = a->got = 0;
		if (a->q->t && fwd_over_rate(w, a->q)) {
			a->done = true;
			continue;
		}
		n = read(a->q->fd, b->buf[base + nr], PACKET_MAX);
		s->res = n >= 0 ? (int)n : errno == EINTR ? -EAGAIN : -errno;
		s->ring = false;
		s->q = a->q;
		s->act = k;
		a->asked = 1;
		nr++;
	}
	return nr;
}

/* Forward the nr packets read into set `base`: their writes are queued
 * on the ring, to go with the next reads. False when the host tun
 * failed. */
static bool fwd_forward_set(struct rt_worker *w, struct fwd_active *act, int base, int nr)
{
	struct fwd_batch *b = w->batch;
	bool ok = true;

	for (int i = base; i < base + nr; i++) {
		struct fwd_slot *s = &b->slot[i];
		struct fwd_active *a = &act[s->act];

		if (s->res == -EAGAIN) {
			a->done = true;              /* drained */
		} else if (s->ring && s->res == -EOPNOTSUPP) {
			/* This kernel's tun cannot be read without waiting:
			 * nothing was read; the thread goes back to read(2). */
			b->broken = true;
			a->done = true;
		} else if (s->res <= 0) {
			a->done = true;
			if (!s->q->t)
				ok = fwd_host_failed(w, -s->res);
			else
				fwd_queue_stopped(w, s->q, -s->res);
		} else {
			a->pkts++;
			a->got++;
			a->bytes += (size_t)s->res;
			b->cur = i;
			if (!s->q->t) {
				fwd_from_host(w, b->buf[i], (size_t)s->res);
			} else {
				fwd_take_tokens(s->q->t, s->res);
				fwd_from_tenant(w, s->q->t, b->buf[i], (size_t)s->res);
			}
			b->cur = -1;
		}
	}
	return ok;
}

/* The ready queues of a round, through w's ring. Each queue's first
 * packet comes with read(2); then each submission carries the writes of
 * the packets read before and the next reads, so a round of n packets
 * from one queue costs one read(2) and about n/8 + 2 io_uring_enter
 * beyond epoll_wait instead of 2n + 1 system calls (a read that finds
 * the queue empty included). A
 * queue is asked for as many packets as it gave in its last round (1 to
 * FWD_QUEUE_READS), twice as many each time it gave all it was asked
 * for, and stays in the round until a read finds it empty or its budget
 * is spent, as on the path without io_uring. Returns false when the host
 * tun or the ring failed. */
static bool fwd_serve_batched(struct rt_worker *w, struct rt_queue *const *ready, int na)
{
	struct fwd_active act[FWD_EVENTS];
	int first = 0, base = 0, nr;
	bool ok = true;

	for (int k = 0; k < na; k++)
		act[k] = (struct fwd_active){ .q = ready[k], .want = ready[k]->burst ? ready[k]->burst : 1,
					      .budget = ready[k]->t ? FWD_BUDGET_PKTS : FWD_HOST_BUDGET_PKTS };
	nr = fwd_first_reads(w, act, na, base);
	for (bool first_reads = true; nr > 0 || w->batch->nwrites > 0; first_reads = false) {
		if (!first_reads) {
			if (!fwd_ring_wait(w, (unsigned)(nr + w->batch->nwrites)))
				return false;
			w->batch->nwrites = 0;
		}
		if (!fwd_forward_set(w, act, base, nr))
			ok = false;
		for (int k = 0; k < na; k++) {
			struct fwd_active *a = &act[k];

			if (a->asked == 0)
				continue;                /* no room for it this time */
			if (a->got < a->asked)
				a->done = true;          /* drained */
			else if (a->asked >= a->want && a->want < FWD_QUEUE_READS)
				a->want = a->want * 2 < FWD_QUEUE_READS ? a->want * 2 : FWD_QUEUE_READS;
			/* the budget of the path without io_uring; only tenant
			 * queues have one in bytes */
			if (a->pkts >= a->budget || (a->q->t && a->bytes >= FWD_BUDGET_BYTES))
				a->done = true;
			else if (a->want > a->budget - a->pkts)
				a->want = a->budget - a->pkts;
		}
		base ^= FWD_BATCH;
		nr = ok ? fwd_queue_reads(w, act, na, first++, base) : 0;
	}
	for (int k = 0; k < na; k++) {
		int p = act[k].pkts;

		act[k].q->burst = (uint8_t)(p < 1 ? 1 : p > FWD_QUEUE_READS ? FWD_QUEUE_READS : p);
	}
	return ok;
}

/* The thread's ring and buffers, made by the thread that submits to
 * them. NULL when router.io_uring is off or the kernel refuses io_uring
 * (kernel.io_uring_disabled, a seccomp policy, an old kernel): the
 * thread then makes one system call per packet. */
static struct fwd_batch *fwd_batch_new(struct rt_worker *w)
{
	static const unsigned flags[] = { IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_SUBMIT_ALL, 0 };
	struct fwd_batch *b;
	int r = -ENOMEM;

	if (!w->R->host->router.io_uring)
		return NULL;
	if (!(b = calloc(1, sizeof *b)))
		goto fail;
	for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
		if ((r = io_uring_queue_init(FWD_SLOTS, &b->ring, flags[i])) != -EINVAL)
			break;
	if (r < 0) {
		free(b);
		goto fail;
	}
	for (int i = 0; i < FWD_SLOTS; i++)
		if (!(b->buf[i] = malloc(PACKET_MAX))) {
			r = -ENOMEM;
			io_uring_queue_exit(&b->ring);
			while (i-- > 0)
				free(b->buf[i]);
			free(b);
			goto fail;
		}
	b->cur = -1;
	if (w->idx == 0)
		log_info("forwarding through io_uring: up to %d packets per system call", FWD_BATCH);
	return b;
fail:
	if (w->idx == 0)
		log_warn_r(-r, "io_uring unavailable: one system call per packet");
	return NULL;
}

static void fwd_batch_free(struct fwd_batch *b)
{
	if (!b)
		return;
	io_uring_queue_exit(&b->ring);
	for (int i = 0; i < FWD_SLOTS; i++)
		free(b->buf[i]);
	free(b);
}

static void fwd_batch_start(struct rt_worker *w)
{
	struct fwd_batch *b = fwd_batch_new(w);

	__atomic_store_n(&w->batch, b, __ATOMIC_RELEASE);
}

/* After a round in which the kernel refused to read a tun without
 * waiting: this thread forwards with read(2) and write(2) from now on. */
static void fwd_batch_drop(struct rt_worker *w)
{
	struct fwd_batch *b = w->batch;

	log_warn("forwarding thread %d: this kernel's tun cannot be read through io_uring without "
		 "waiting; one system call per packet from now on", w->idx);
	__atomic_store_n(&w->batch, NULL, __ATOMIC_RELEASE);
	fwd_batch_free(b);
}

/* One round of w's events: a new epoch, epoll_wait (timeout ms), every
 * ready queue served, paused queues looked at. Level-triggered epoll: a
 * queue with more than its budget is simply reported again in the next
 * round, so every queue of this thread gets its share per round
 * (fairness). The table's read lock is held for the round: taken once
 * per wake-up, uncontended but for the rare tenant added or removed.
 * Returns the timeout for the next round (-1: none), or -2 when the host
 * tun (or epoll) failed: the router stops. */
static int fwd_round(struct rt_worker *w, int timeout)
{
	struct router *R = w->R;
	struct epoll_event evs[FWD_EVENTS];
	struct rt_queue *ready[FWD_EVENTS];
	int n, nready = 0;
	bool ok = true;

	/* A new epoch: no event this thread holds from here on can name a
	 * tenant removed before this point (see fwd_reap). */
	__atomic_store_n(&w->epoch, w->epoch + 1, __ATOMIC_RELEASE);
	n = epoll_wait(w->ep, evs, FWD_EVENTS, timeout);
	if (n < 0) {
		if (errno != EINTR) {
			log_error_r(errno, "epoll_wait");
			return -2;
		}
		n = 0;
	}
	w->now = fwd_clock();
	pthread_rwlock_rdlock(&R->lock);
	/* The queues to serve: the wake-up taken, the dead, paused and
	 * stopped left out. */
	for (int i = 0; i < n; i++) {
		struct rt_queue *q = evs[i].data.ptr;

		if (!q) {
			uint64_t v;
			if (read(w->wake_fd, &v, sizeof v) < 0) {
				/* EAGAIN: another wake-up took it */
			}
		} else if (!q->t || (!q->t->dead && !q->paused && !q->stopped)) {
			ready[nready++] = q;
		}
	}
	if (w->batch) {
		ok = fwd_serve_batched(w, ready, nready);
	} else {
		for (int i = 0; i < nready && ok; i++)
			if (!ready[i]->t)
				ok = fwd_host_queue(w);
			else
				fwd_tenant_queue(w, ready[i]);
	}
	if (!ok) {
		pthread_rwlock_unlock(&R->lock);
		return -2;
	}
	timeout = w->paused ? fwd_resume(w) : -1;
	pthread_rwlock_unlock(&R->lock);
	if (w->batch && w->batch->broken)
		fwd_batch_drop(w);
	return timeout;
}

/* A forwarding thread (router.threads > 1). */
static void *fwd_worker_main(void *arg)
{
	struct rt_worker *w = arg;
	struct router *R = w->R;
	char name[16];
	int timeout = -1;

	snprintf(name, sizeof name, "fief-fwd%d", w->idx);
	pthread_setname_np(pthread_self(), name);
#if FWD_PIN
	/* Experiment (docs/benchmarks.md): thread i on CPU i. */
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(w->idx, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
		log_warn("forwarding thread %d: cannot pin it", w->idx);
#endif
	fwd_batch_start(w);
	while (!fwd_stopping(R)) {
		timeout = fwd_round(w, timeout);
		if (timeout == -2) {
			__atomic_store_n(&R->stopping, 1, __ATOMIC_RELEASE);
			ev_async_send(R->loop, &R->fail_w);
			return NULL;
		}
	}
	return NULL;
}

/* router.threads 1: no thread at all. The one forwarding epoll set is
 * watched by the main loop and served there, between the sockets'
 * callbacks: one thread in the process, as before multi-queue (the
 * table's lock is then never contended, and the kernel's fd lookups take
 * no file references). */
static void fwd_inline_round(struct router *R)
{
	struct rt_worker *w = &R->w[0];
	int next = fwd_round(w, 0);

	if (next == -2)
		return ev_break(R->loop, EVBREAK_ALL);
	ev_timer_stop(R->loop, &R->inline_timer);
	if (next >= 0) {
		ev_timer_set(&R->inline_timer, next / 1000.0, 0);
		ev_timer_start(R->loop, &R->inline_timer);
	}
}

static void fwd_inline_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	fwd_inline_round(w->data);
}

static void fwd_inline_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	fwd_inline_round(w->data);
}

static void fwd_wake(struct rt_worker *w)
{
	uint64_t one = 1;

	if (write(w->wake_fd, &one, sizeof one) < 0) {
		/* the counter is full: the thread is woken anyway */
	}
}

/* ---- the tenant table (main thread, write lock) ---- */

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

static void fwd_tenant_free(struct rt_tenant *t)
{
	for (int j = 0; j < t->nq; j++)
		close(t->q[j].fd);
	pthread_mutex_destroy(&t->tb_lock);
	free(t->c);
	free(t);
}

/* Free the dead every thread has moved past. A thread bumps its epoch
 * before each epoll_wait; the removal noted each thread's epoch e with
 * the write lock held, after taking the tenant's fds out of every epoll
 * set. At e + 2 the thread has finished a whole round that began after
 * the removal: the events it held from before are consumed (found dead
 * under the read lock), its paused list no longer names the tenant, and
 * no later epoll_wait can return its fds. */
static void fwd_reap(struct router *R)
{
	bool lagging[ROUTER_MAX_QUEUES] = { false };

	for (struct rt_tenant **pp = &R->dead; *pp;) {
		struct rt_tenant *t = *pp;
		bool past = true;

		/* Two epochs: the first round that began after the removal
		 * (it also drops the tenant's paused queues) is over. */
		for (int i = 0; i < R->nthreads; i++)
			if (R->w[i].started &&
			    __atomic_load_n(&R->w[i].epoch, __ATOMIC_ACQUIRE) - t->dead_epoch[i] < 2)
				past = false, lagging[i] = true;
		if (past) {
			*pp = t->next;
			fwd_tenant_free(t);
		} else {
			pp = &t->next;
		}
	}
	/* An idle thread sleeps in epoll_wait: wake it into its next epoch
	 * (each wake-up is one; without traffic the dead would wait for the
	 * next packet, their tuns held open meanwhile). */
	for (int i = 0; i < R->nthreads; i++)
		if (lagging[i])
			fwd_wake(&R->w[i]);
	if (!R->dead)
		ev_timer_stop(R->loop, &R->reap_w);
}

static void fwd_reap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	fwd_reap(w->data);
}

/* Take t out of the table. Called with the write lock held: no thread
 * is in a round of events, so none is looking at t. */
static void fwd_tenant_kill(struct router *R, struct rt_tenant *t)
{
	for (struct rt_tenant **pp = &R->tenants; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	fwd_unhash(R, t);
	for (int j = 0; j < t->nq; j++)
		epoll_ctl(R->w[t->q[j].worker].ep, EPOLL_CTL_DEL, t->q[j].fd, NULL);
	t->dead = true;
	for (int i = 0; i < R->nthreads; i++)
		t->dead_epoch[i] = __atomic_load_n(&R->w[i].epoch, __ATOMIC_ACQUIRE);
	t->next = R->dead;
	R->dead = t;
	R->n_tenants--;
}

/* After a removal: wake every thread into a new epoch, and free the dead
 * when they have all been through one. */
static void fwd_after_kill(struct router *R)
{
	for (int i = 0; i < R->nthreads; i++)
		if (R->w[i].started)
			fwd_wake(&R->w[i]);
	if (!ev_is_active(&R->reap_w)) {
		ev_timer_set(&R->reap_w, FWD_REAP_INTERVAL, FWD_REAP_INTERVAL);
		ev_timer_start(R->loop, &R->reap_w);
	}
}

int fwd_tenant_del(struct router *R, const char *name)
{
	struct rt_tenant *t = fwd_tenant_find(R, name);
	struct rt_counters sum;

	if (!t)
		return -ENOENT;
	fwd_counters(R, t->c, &sum);
	log_info("%s: removed (out %llu B, in %llu B)", name, (unsigned long long)sum.out_bytes,
		 (unsigned long long)sum.in_bytes);
	pthread_rwlock_wrlock(&R->lock);
	fwd_tenant_kill(R, t);
	pthread_rwlock_unlock(&R->lock);
	fwd_after_kill(R);
	return 0;
}

static int fwd_check_new(struct router *R, const char *name, uint32_t addr, const uint8_t *addr6,
			 const int *fds, size_t nfds, char *err, size_t errlen)
{
	struct rt_tenant *owner;
	uint8_t zero[16] = { 0 };
	int r;

	if (!value_is_tenant_name(name))
		return snprintf(err, errlen, "bad tenant name"), -EINVAL;
	if (nfds < 1 || nfds > ROUTER_MAX_QUEUES)
		return snprintf(err, errlen, "%zu tun queues (1 to %d)", nfds, ROUTER_MAX_QUEUES), -EINVAL;
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
	for (size_t j = 0; j < nfds; j++) {
		if ((r = tun_check_fd(fds[j])) < 0)
			return snprintf(err, errlen, "not a tun with a vnet header: %s", strerror(-r)), r;
		if (nfds > 1 && (r = tun_is_multi_queue(fds[j])) <= 0)
			return snprintf(err, errlen, "%zu fds, and one is not a queue of a multi-queue tun", nfds),
			       r < 0 ? r : -EPROTOTYPE;
		if ((r = tun_set_queue_limit(fds[j], FWD_DEVICE_QUEUE)) < 0)
			log_warn_r(r, "%s: cannot bound its queue (TUNSETSNDBUF)", name);
		if (fcntl(fds[j], F_SETFL, fcntl(fds[j], F_GETFL) | O_NONBLOCK) < 0)
			return r = -errno, snprintf(err, errlen, "O_NONBLOCK: %s", strerror(-r)), r;
	}
	return 0;
}

static void fwd_close_fds(const int *fds, size_t nfds)
{
	for (size_t j = 0; j < nfds; j++)
		close(fds[j]);
}

int fwd_tenant_add(struct router *R, const char *name, uint32_t addr, const uint8_t *addr6,
		   uint64_t rate, const int *fds, size_t nfds, char *err, size_t errlen)
{
	struct rt_tenant *t, *old;
	double now = fwd_clock();
	int r = fwd_check_new(R, name, addr, addr6, fds, nfds, err, errlen);

	if (r < 0) {
		fwd_close_fds(fds, nfds);
		return r;
	}
	t = calloc(1, sizeof *t);
	if (!t || !(t->c = aligned_alloc(64, sizeof *t->c * (size_t)R->nthreads))) {
		free(t);
		fwd_close_fds(fds, nfds);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memset(t->c, 0, sizeof *t->c * (size_t)R->nthreads);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->addr = addr;
	t->nq = (int)nfds;
	pthread_mutex_init(&t->tb_lock, NULL);
	bucket_init(&t->out_tb, rate, now);
	bucket_init(&t->in_tb, rate, now);
	if (addr6) {
		t->has6 = true;
		memcpy(t->addr6, addr6, 16);
	}
	/* Queue j goes to thread j % threads: with as many queues as threads
	 * (what the launcher makes) thread i reads queue i. */
	for (int j = 0; j < t->nq; j++) {
		t->q[j].t = t;
		t->q[j].fd = fds[j];
		t->q[j].worker = j % R->nthreads;
	}
	pthread_rwlock_wrlock(&R->lock);
	/* A restarted tenant (or a resync) replaces its old entry. */
	old = fwd_tenant_find(R, name);
	if (old)
		fwd_tenant_kill(R, old);
	t->hnext = R->hash[fwd_hash(R, addr)];
	R->hash[fwd_hash(R, addr)] = t;
	if (addr6) {
		t->h6next = R->hash6[fwd_hash6(R, addr6)];
		R->hash6[fwd_hash6(R, addr6)] = t;
	}
	t->next = R->tenants;
	R->tenants = t;
	R->n_tenants++;
	for (int j = 0; j < t->nq; j++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &t->q[j] };
		if (epoll_ctl(R->w[t->q[j].worker].ep, EPOLL_CTL_ADD, fds[j], &ev) < 0)
			log_warn_r(errno, "%s: cannot poll its queue %d", name, j);
	}
	pthread_rwlock_unlock(&R->lock);
	if (old)
		fwd_after_kill(R);
	return 0;
}

static void fwd_fail_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

int fwd_init(struct router *R, const int *host_fds)
{
	const struct cidr *c = &R->host->router.address;
	int r;

	R->addr = c->addr;
	R->mask = cidr_mask(c->prefix);
	R->net = c->addr & R->mask;
	R->hash_mask = FWD_HASH_SIZE - 1;
	R->hash = calloc(FWD_HASH_SIZE, sizeof *R->hash);
	R->hash6 = calloc(FWD_HASH_SIZE, sizeof *R->hash6);
	R->has6 = R->host->router.has_address6;
	R->net6 = R->host->router.address6;
	R->w = aligned_alloc(64, sizeof *R->w * (size_t)R->nthreads);
	if (!R->hash || !R->hash6 || !R->w)
		return -ENOMEM;
	memset(R->w, 0, sizeof *R->w * (size_t)R->nthreads);
	if ((r = pthread_rwlock_init(&R->lock, NULL)) != 0)
		return -r;
	if ((r = filter_compile(&R->fw_out, R->host->router.firewall.out.v, R->host->router.firewall.out.n)) < 0 ||
	    (r = filter_compile(&R->fw_in, R->host->router.firewall.in.v, R->host->router.firewall.in.n)) < 0)
		return r;
	for (int i = 0; i < R->nthreads; i++) {
		struct rt_worker *w = &R->w[i];
		struct epoll_event ev = { .events = EPOLLIN };

		w->R = R;
		w->idx = i;
		w->host_q.fd = host_fds[i];
		w->host_q.worker = i;
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->buf = malloc(PACKET_MAX);
		if (w->ep < 0 || w->wake_fd < 0 || !w->buf)
			return -ENOMEM;
		if (fcntl(host_fds[i], F_SETFL, fcntl(host_fds[i], F_GETFL) | O_NONBLOCK) < 0)
			return -errno;
		if ((r = tun_set_queue_limit(host_fds[i], FWD_DEVICE_QUEUE)) < 0)
			log_warn_r(r, "%s: cannot bound its queue (TUNSETSNDBUF)", R->host->router.device);
		ev.data.ptr = NULL;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0)
			return -errno;
		ev.data.ptr = &w->host_q;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, host_fds[i], &ev) < 0)
			return -errno;
	}
	ev_init(&R->reap_w, fwd_reap_cb);
	R->reap_w.data = R;
	ev_async_init(&R->fail_w, fwd_fail_cb);
	ev_async_start(R->loop, &R->fail_w);
	return 0;
}

int fwd_start(struct router *R)
{
	sigset_t all, old;
	int r = 0;

	if (R->nthreads == 1) {
		ev_io_init(&R->inline_io, fwd_inline_io_cb, R->w[0].ep, EV_READ);
		R->inline_io.data = R;
		ev_init(&R->inline_timer, fwd_inline_timer_cb);
		R->inline_timer.data = R;
		ev_io_start(R->loop, &R->inline_io);
		fwd_batch_start(&R->w[0]);
		R->w[0].started = true;
		R->inline_fwd = true;
		return 0;
	}
	/* Signals are the main loop's: the threads start with them blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < R->nthreads && r == 0; i++) {
		r = pthread_create(&R->w[i].th, NULL, fwd_worker_main, &R->w[i]);
		if (r != 0)
			log_error_r(r, "cannot start forwarding thread %d", i);
		else
			R->w[i].started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}

void fwd_shutdown(struct router *R)
{
	__atomic_store_n(&R->stopping, 1, __ATOMIC_RELEASE);
	if (R->inline_fwd) {
		ev_io_stop(R->loop, &R->inline_io);
		ev_timer_stop(R->loop, &R->inline_timer);
		R->w[0].started = false;
	}
	for (int i = 0; i < R->nthreads; i++)
		if (R->w[i].started) {
			fwd_wake(&R->w[i]);
			pthread_join(R->w[i].th, NULL);
			R->w[i].started = false;
		}
	while (R->tenants) {
		struct rt_tenant *t = R->tenants;
		R->tenants = t->next;
		fwd_tenant_free(t);
	}
	while (R->dead) {
		struct rt_tenant *t = R->dead;
		R->dead = t->next;
		fwd_tenant_free(t);
	}
	ev_timer_stop(R->loop, &R->reap_w);
	ev_async_stop(R->loop, &R->fail_w);
	for (int i = 0; i < R->nthreads; i++) {
		close(R->w[i].ep);
		close(R->w[i].wake_fd);
		close(R->w[i].host_q.fd);
		free(R->w[i].buf);
		fwd_batch_free(R->w[i].batch);
	}
	filter_free(&R->fw_out);
	filter_free(&R->fw_in);
	pthread_rwlock_destroy(&R->lock);
	free(R->w);
	free(R->hash);
	free(R->hash6);
}
