/* keysrc: the keys a tenant keeps in ~/.ssh/authorized_keys.
 *
 * The file lives inside the tenant, which may have made it a symlink to
 * anything, a fifo, or a gigabyte. So the gateway never opens it: it asks
 * the tenant's agent for a pipes session running `cat` as the tenant, in
 * the tenant's own mount namespace, and reads at most AUTHKEYS_MAX_FILE
 * bytes of its output within KEYSRC_TIMEOUT. Whatever the tenant can make
 * cat print, it could have written into the file anyway.
 *
 * Logins to one tenant that overlap share one fetch, and a result is
 * reused for KEYSRC_TTL seconds: a burst of 200 logins costs one process
 * in the tenant, and a removed key stops working within seconds. */
#ifndef FIEF_GATEWAY_KEYSRC_H
#define FIEF_GATEWAY_KEYSRC_H

#include <stdbool.h>

#include "authkeys.h"

#define KEYSRC_TIMEOUT 5.0
#define KEYSRC_TTL 2.0
#define KEYSRC_COMMAND "exec cat -- .ssh/authorized_keys 2>/dev/null"

struct keysrc;

/* Someone waiting for a fetch. */
struct keysrc_waiter {
	struct keysrc_waiter *next;
	void (*fn)(struct keysrc_waiter *w);
	struct keysrc *src;              /* set by keysrc_get */
};

/* A reference to NAME's keys: a fresh cached result, or a fetch started
 * or joined now. When the result is not ready, w->fn runs once it is.
 * Returns NULL only when memory runs out. */
struct keysrc *keysrc_get(const char *name, struct keysrc_waiter *w);
/* Drop a reference (and the waiter, if still waiting). */
void keysrc_put(struct keysrc *k, struct keysrc_waiter *w);

bool keysrc_ready(const struct keysrc *k);
/* Meaningful once ready: */
/* The agent answered, and its socket is still there: a cached answer
 * must not let a login into a tenant stopped since. */
bool keysrc_running(const struct keysrc *k);
const struct authkeys *keysrc_keys(const struct keysrc *k);

#endif
