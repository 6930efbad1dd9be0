/* ratelimit: a shared, fixed-size table of token buckets. */
#include "ratelimit.h"

#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#define RL_PROBE 8                 /* slots looked at per source */
#define RL_SPIN 1000               /* lock attempts before giving up */
#define RL_FULL ((int64_t)RATELIMIT_BURST * 1000)

struct rl_slot {
	uint8_t key[16];
	uint8_t used;
	int64_t milli_tokens;          /* tokens x 1000 */
	int64_t stamp_ms;              /* when milli_tokens was last brought up to date */
};

struct rl_table {
	uint32_t seed;                 /* keyed hash: probe chains cannot be aimed at */
	char lock;
	struct rl_slot slot[RATELIMIT_SLOTS];
};

static struct rl_table *rl;

int ratelimit_init(void)
{
	void *p = mmap(NULL, sizeof *rl, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	rl = p;
	if (getrandom(&rl->seed, sizeof rl->seed, 0) != sizeof rl->seed)
		rl->seed = (uint32_t)time(NULL);
	return 0;
}

static int64_t rl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* IPv4 (and IPv4-mapped IPv6) by address, other IPv6 by /64: one host
 * owns a whole /64, so counting its addresses one by one would not limit
 * anything. */
bool ratelimit_source(const struct sockaddr *sa, uint8_t key[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, mapped, 12);
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	if (memcmp(key, mapped, 12))
		memset(key + 8, 0, 8);
	return true;
}

static uint32_t rl_hash(const uint8_t key[16])
{
	uint32_t h = 2166136261u ^ rl->seed;

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	return h ^ (h >> 15);
}

/* A spin lock held for a few hundred instructions. A worker that died
 * holding it must not stop logins: after RL_SPIN tries we go without. */
static bool rl_lock(void)
{
	for (int i = 0; i < RL_SPIN; i++) {
		if (!__atomic_test_and_set(&rl->lock, __ATOMIC_ACQUIRE))
			return true;
		sched_yield();
	}
	return false;
}

static void rl_unlock(void)
{
	__atomic_clear(&rl->lock, __ATOMIC_RELEASE);
}

static void rl_refill(struct rl_slot *s, int64_t now)
{
	int64_t gained = (now - s->stamp_ms) * 1000 / RATELIMIT_REFILL_MS;

	if (gained > 0) {
		s->milli_tokens = s->milli_tokens + gained > RL_FULL ? RL_FULL : s->milli_tokens + gained;
		s->stamp_ms = now;
	}
}

/* The source's slot, or (when create) a new one in place of the fullest
 * bucket of its probe chain. NULL: not tracked, so not limited. */
static struct rl_slot *rl_find(const uint8_t key[16], int64_t now, bool create)
{
	uint32_t h = rl_hash(key);
	struct rl_slot *victim = NULL;

	for (int i = 0; i < RL_PROBE; i++) {
		struct rl_slot *s = &rl->slot[(h + (uint32_t)i) % RATELIMIT_SLOTS];

		if (s->used) {
			rl_refill(s, now);
			if (!memcmp(s->key, key, 16))
				return s;
		}
		if (!victim || !s->used || (victim->used && s->milli_tokens > victim->milli_tokens))
			victim = s;
	}
	if (!create)
		return NULL;
	memcpy(victim->key, key, 16);
	victim->used = 1;
	victim->milli_tokens = RL_FULL;
	victim->stamp_ms = now;
	return victim;
}

bool ratelimit_allowed(const struct sockaddr *sa)
{
	uint8_t key[16];
	struct rl_slot *s;
	bool ok = true;

	if (!rl || !ratelimit_source(sa, key) || !rl_lock())
		return true;
	s = rl_find(key, rl_now_ms(), false);
	if (s && s->milli_tokens < 1000)
		ok = false;
	rl_unlock();
	return ok;
}

bool ratelimit_failed(const struct sockaddr *sa)
{
	uint8_t key[16];
	struct rl_slot *s;
	bool spent = false;

	if (!rl || !ratelimit_source(sa, key) || !rl_lock())
		return false;
	s = rl_find(key, rl_now_ms(), true);
	if (s && s->milli_tokens >= 1000) {
		s->milli_tokens -= 1000;
		spent = s->milli_tokens < 1000;
	}
	rl_unlock();
	return spent;
}
