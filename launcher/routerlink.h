/* routerlink: the launcher's side of state_dir/router.sock. It hands each
 * tenant's tun fds (one per queue) to fief-router, keeps its own
 * duplicates in t->tun_fds,
 * and when the router restarts it reconnects and hands every fd over
 * again, so tenants keep their interface and need no restart. */
#ifndef FIEF_ROUTERLINK_H
#define FIEF_ROUTERLINK_H

#include "launcher.h"

/* Start connecting (when router.enabled); retries until the router runs. */
void routerlink_start(struct launcher *L);
/* The init sent its tun: take fds[0..n), its queues in order (closed when
 * not wanted), into t->tun_fds and pass them on. */
void routerlink_tenant_tun(struct tenant *t, const int *fds, size_t n);
/* The init is gone: tell the router, close t->tun_fds. */
void routerlink_tenant_gone(struct tenant *t);

#endif
