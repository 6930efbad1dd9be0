/* reload: a changed tenant file applied live where it can be (reload.h). */
#include "reload.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "cgroup.h"
#include "launcher.h"
#include "log.h"

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool strings_same(const struct string_vec *a, const struct string_vec *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

/* Every field of struct config_tenant is either compared here or listed
 * as live in reload.h; a new field belongs here until the init can apply
 * it while running. */
bool reload_is_live(const struct config_tenant *a, const struct config_tenant *b)
{
	return a->uid == b->uid && str_same(a->distro, b->distro) &&
	       str_same(a->hostname, b->hostname) && a->limits.tmp == b->limits.tmp &&
	       a->network.has_address == b->network.has_address &&
	       a->network.address == b->network.address &&
	       a->network.rate_limit == b->network.rate_limit &&
	       strings_same(&a->ssh.authorized_keys, &b->ssh.authorized_keys) &&
	       str_same(a->ssh.shell, b->ssh.shell) &&
	       str_same(a->ssh.password_hash, b->ssh.password_hash) &&
	       strings_same(&a->ssh.accept_env, &b->ssh.accept_env);
}

/* The whole file must fit in the socket at once: a send that would block
 * is a failure (the launcher never waits on a tenant). */
static int reload_send(struct tenant *t)
{
	static char msg[SYNC_MSG_MAX];
	size_t off = 0;
	int size = 4 * CONFIG_MAX_FILE;

	if (setsockopt(t->sync_fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
		setsockopt(t->sync_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	do {
		size_t n = t->file_len - off > RELOAD_CHUNK ? RELOAD_CHUNK : t->file_len - off;
		msg[0] = off + n == t->file_len ? SYNC_CONFIG : SYNC_CONFIG_PART;
		if (n)
			memcpy(msg + 1, t->file_buf + off, n);
		if (send(t->sync_fd, msg, n + 1, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)(n + 1)) {
			log_warn_r(errno, "%s: cannot send the new file to the init", t->name);
			return -1;
		}
		off += n;
	} while (off < t->file_len);
	return 0;
}

int reload_live(struct tenant *t)
{
	const struct config_tenant *c = t->cfg;
	struct cg_limits lim = { c->limits.memory, c->limits.cpu_millis, c->limits.pids };
	int r;

	if (t->state != TS_RUNNING || t->sync_fd < 0 || !t->pid)
		return -1;
	r = cg_set_limits(t->name, &lim);
	if (r < 0) {
		log_warn_r(r, "%s: cannot change the cgroup limits live", t->name);
		return -1;
	}
	return reload_send(t);
}
