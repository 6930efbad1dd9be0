/* zygote: the small process that forks the tenants' inits (zygote.c). */
#ifndef FIEF_ZYGOTE_H
#define FIEF_ZYGOTE_H

#include <sys/types.h>

struct launcher;
struct tenant;

/* Fork the zygote (at the launcher's start, before any tenant is read).
 * 0 or -errno. */
int zygote_start(struct launcher *L);

/* Have the zygote clone t's init, a child of the launcher, with these fds
 * (sent, not closed: the caller closes its copies). The init's pid, or -1
 * when the zygote could not: the caller then clones the init itself. A
 * zygote that is gone is started again first. */
pid_t zygote_spawn(struct launcher *L, const struct tenant *t, int sync_fd, int agent_fd,
		   const int *cg_fds, int n_cg);

/* Kill and reap it (the launcher is exiting). */
void zygote_stop(void);

#endif
