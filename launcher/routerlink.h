/* routerlink: the launcher's side of state_dir/router.sock. It hands each
 * tenant's tun fd to fief-router, keeps its own duplicate in t->tun_fd,
 * and when the router restarts it reconnects and hands every fd over
 * again, so tenants keep their interface and need no restart. */
#ifndef FIEF_ROUTERLINK_H
#define FIEF_ROUTERLINK_H

#include "launcher.h"

/* Start connecting (when router.enabled); retries until the router runs. */
void routerlink_start(struct launcher *L);
/* The init sent its tun: take fd (closed when not wanted) into t->tun_fd
 * and pass it on. */
void routerlink_tenant_tun(struct tenant *t, int fd);
/* The init is gone: tell the router, close t->tun_fd. */
void routerlink_tenant_gone(struct tenant *t);

#endif
