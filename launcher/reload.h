/* reload: apply a changed tenant file to a running tenant without
 * restarting it, when only what can change live has changed.
 *
 * Live: apps, daemons, cron and env (the init re-parses the file, which
 * the launcher sends over the sync socket, and restarts only what changed)
 * and the memory, cpu and pids limits (the launcher writes the cgroup).
 * Everything else (uid, distro, hostname, the /tmp size, network, ssh)
 * is set up before the init drops its privileges: the tenant restarts. */
#ifndef FIEF_RELOAD_H
#define FIEF_RELOAD_H

#include <stdbool.h>

#include "config.h"

struct tenant;

/* Parts of the file per message; the config itself is at most
 * CONFIG_MAX_FILE, so at most 17 messages. */
#define RELOAD_CHUNK (60 * 1024)
#define SYNC_MSG_MAX (RELOAD_CHUNK + 1)

/* Can the change from old to new be applied to the running tenant? */
bool reload_is_live(const struct config_tenant *old, const struct config_tenant *new_cfg);
/* t->cfg and t->file_buf are the new file already: set the cgroup limits
 * and send the file to the init. 0, or -1 when the tenant has to be
 * restarted instead (not running, no sync channel, a failed send). */
int reload_live(struct tenant *t);

#endif
