/* spawn: a tenant's host directories, its agent socket, and the clone of
 * its init into new namespaces inside its cgroup. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "fsutil.h"
#include "launcher.h"
#include "log.h"
#include "logs.h"
#include "zygote.h"

#define AUTO_UID_FIRST 200000
#define AUTO_UID_LAST  299999

int launcher_path(const struct launcher *L, char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(buf, len, "%s/", L->host->state_dir);

	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	n = vsnprintf(buf + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return n < 0 || strlen(buf) + 1 >= len ? -ENAMETOOLONG : 0;
}

static bool uid_taken(struct launcher *L, const struct tenant *self, uid_t uid, const char **by)
{
	for (struct tenant *o = L->tenants; o; o = o->next_t)
		if (o != self && o->uid == uid && o->cfg) {
			*by = o->name;
			return true;
		}
	return false;
}

/* "auto": the owner of an existing home keeps it; otherwise the first uid
 * of the auto range that no tenant and no home uses. */
static uid_t auto_uid(struct launcher *L, const struct tenant *t)
{
	char path[4096];
	struct stat st;
	const char *by;

	snprintf(path, sizeof path, "%s/%s", L->host->homes_dir, t->name);
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid >= AUTO_UID_FIRST &&
	    st.st_uid <= AUTO_UID_LAST && !uid_taken(L, t, st.st_uid, &by))
		return st.st_uid;
	for (uid_t u = AUTO_UID_FIRST; u <= AUTO_UID_LAST; u++) {
		bool home_uses = false;
		if (uid_taken(L, t, u, &by))
			continue;
		for (struct tenant *o = L->tenants; o && !home_uses; o = o->next_t) {
			snprintf(path, sizeof path, "%s/%s", L->host->homes_dir, o->name);
			home_uses = o != t && lstat(path, &st) == 0 && st.st_uid == u;
		}
		if (!home_uses)
			return u;
	}
	return (uid_t)-1;
}

int spawn_resolve_uid(struct launcher *L, struct tenant *t, const struct config_tenant *cfg,
		      char *err, size_t errlen)
{
	const char *by;
	uid_t uid = cfg->uid == CONFIG_UID_AUTO ? auto_uid(L, t) : (uid_t)cfg->uid;

	if (uid == (uid_t)-1) {
		snprintf(err, errlen, "no free uid left in the auto range");
		return -1;
	}
	/* Two tenants under one uid could reach each other's files: refuse. */
	if (uid_taken(L, t, uid, &by)) {
		snprintf(err, errlen, "uid %u is already used by tenant %s", (unsigned)uid, by);
		return -1;
	}
	t->uid = uid;
	t->gid = (gid_t)uid;
	return 0;
}

/* The home belongs to the tenant; create it when missing, and never hand
 * out one that someone else owns. */
static int prepare_home(struct tenant *t, char *err, size_t errlen)
{
	char path[4096];
	struct stat st;
	int r;

	snprintf(path, sizeof path, "%s/%s", t->L->host->homes_dir, t->name);
	if (lstat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "home %s is not a directory", path);
			return -1;
		}
		if (st.st_uid != t->uid) {
			snprintf(err, errlen, "home %s is owned by uid %u, not the tenant's uid %u",
				 path, (unsigned)st.st_uid, (unsigned)t->uid);
			return -1;
		}
		return 0;
	}
	r = fs_mkdir_p(t->L->host->homes_dir, 0755, (uid_t)-1, (gid_t)-1);
	if (r == 0)
		r = fs_mkdir_p(path, 0750, t->uid, t->gid);
	if (r < 0) {
		snprintf(err, errlen, "cannot create home %s: %s", path, strerror(-r));
		return -1;
	}
	/* A fresh home gets ~/logs, where the mounts show log_dir/NAME. */
	r = logs_make_home_dir(path, t->uid, t->gid);
	if (r < 0)
		log_warn_r(r, "%s: cannot make ~/logs", t->name);
	return 0;
}

/* The distro's file without the lines that would clash with the tenant's
 * name or id, then the tenant's own line. */
static int write_account_file(struct tenant *t, const char *file, const char *line)
{
	char src[4096], dst[4096], name_prefix[64], id_field[32];
	char *buf = NULL, *out, *save = NULL;
	size_t len = 0, n = 0;
	int r;

	snprintf(src, sizeof src, "%s/%s/etc/%s", t->L->host->distros_dir, t->cfg->distro, file);
	if (config_read_file(src, CONFIG_MAX_FILE, &buf, &len) < 0)
		buf = strdup(""), len = 0;
	out = malloc(len + strlen(line) + 2);
	if (!buf || !out) {
		free(buf);
		free(out);
		return -ENOMEM;
	}
	snprintf(name_prefix, sizeof name_prefix, "%s:", t->name);
	snprintf(id_field, sizeof id_field, ":%u:", (unsigned)t->uid);
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *third = strchr(l, ':');
		third = third ? strchr(third + 1, ':') : NULL;
		if (!strncmp(l, name_prefix, strlen(name_prefix)) ||
		    (third && !strncmp(third, id_field, strlen(id_field))))
			continue;
		n += (size_t)sprintf(out + n, "%s\n", l);
	}
	n += (size_t)sprintf(out + n, "%s\n", line);
	launcher_path(t->L, dst, sizeof dst, "tenants/%s/etc/%s", t->name, file);
	r = fs_write_atomic(dst, out, n, 0644);
	free(buf);
	free(out);
	return r;
}

/* Names resolve inside the tenant: whoami, ls -l, ~NAME. */
static int prepare_accounts(struct tenant *t)
{
	char path[4096], line[600];
	int r;

	launcher_path(t->L, path, sizeof path, "tenants/%s/etc", t->name);
	r = fs_mkdir_p(path, 0755, 0, 0);
	if (r < 0)
		return r;
	snprintf(line, sizeof line, "%s:x:%u:%u:fief tenant:/home/%s:%s", t->name, (unsigned)t->uid,
		 (unsigned)t->gid, t->name, t->cfg->ssh.shell);
	r = write_account_file(t, "passwd", line);
	if (r < 0)
		return r;
	snprintf(line, sizeof line, "%s:x:%u:", t->name, (unsigned)t->gid);
	return write_account_file(t, "group", line);
}

static int prepare_dirs(struct tenant *t, char *err, size_t errlen)
{
	struct launcher *L = t->L;
	char path[4096];
	int r;

	launcher_path(L, path, sizeof path, "tenants/%s", t->name);
	r = fs_mkdir_p(path, 0755, 0, 0);
	/* A fresh /run on every start: stale sockets and pid files go. */
	if (r == 0) {
		launcher_path(L, path, sizeof path, "tenants/%s/run", t->name);
		fs_rm_rf(path);
		r = fs_mkdir_p(path, 0755, t->uid, t->gid);
	}
	if (r == 0) {
		launcher_path(L, path, sizeof path, "tenants/%s/root", t->name);
		r = fs_mkdir_p(path, 0755, 0, 0);
	}
	if (r == 0) {
		snprintf(path, sizeof path, "%s/%s", L->host->log_dir, t->name);
		r = fs_mkdir_p(path, 0750, 0, t->gid);
	}
	if (r == 0) {
		launcher_path(L, path, sizeof path, "tenants/%s/etc", t->name);
		r = prepare_accounts(t);
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot prepare %s: %s", path, strerror(-r));
		return -1;
	}
	return 0;
}

int spawn_prepare_host(struct tenant *t, char *err, size_t errlen)
{
	const struct config_tenant *c = t->cfg;
	struct cg_limits lim = { c->limits.memory, c->limits.cpu_millis, c->limits.pids };
	char path[4096];
	struct stat st;
	int r;

	snprintf(path, sizeof path, "%s/%s", t->L->host->distros_dir, c->distro);
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "distro '%s' not found in %s", c->distro, t->L->host->distros_dir);
		return -1;
	}
	if (prepare_home(t, err, errlen) < 0 || prepare_dirs(t, err, errlen) < 0)
		return -1;
	r = cg_create(t->name, &lim);
	if (r < 0) {
		snprintf(err, errlen, "cgroup: %s", strerror(-r));
		return -1;
	}
	return 0;
}

/* The agent listens on a host path the tenant cannot see; the init gets
 * the bound socket as an fd. Only root and the gateway's group connect. */
static int agent_socket(struct tenant *t, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[4096];
	int fd;

	launcher_path(t->L, dir, sizeof dir, "agents");
	if (fs_mkdir_p(dir, 0750, 0, t->L->agent_gid) < 0 ||
	    launcher_path(t->L, sa.sun_path, sizeof sa.sun_path, "agents/%s.sock", t->name) < 0) {
		snprintf(err, errlen, "cannot prepare the agent directory %s", dir);
		return -1;
	}
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    chown(sa.sun_path, 0, t->L->agent_gid) < 0 || chmod(sa.sun_path, 0660) < 0 ||
	    listen(fd, 4096) < 0) {
		snprintf(err, errlen, "agent socket %s: %s", sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The child side of clone: join the v1 groups (cg_open_self_attach),
 * wait until the launcher has done the rest (v2, oom_score_adj), then
 * become the tenant's init. From the launcher or from the zygote. */
void spawn_become_init(const struct config_host *host, const struct config_tenant *cfg, uid_t uid,
		       gid_t gid, int sync_fd, int agent_fd, const int *cg_fds, int n_cg)
{
	struct init_args a = {
		.host = host, .cfg = cfg, .uid = uid, .gid = gid,
		.sync_fd = sync_fd, .agent_fd = agent_fd,
	};
	char c, logs[4096];

	for (int i = 0; i < n_cg; i++) {
		if (write(cg_fds[i], "0", 1) != 1) {
			char msg[128];
			int n = snprintf(msg, sizeof msg, "%ccannot join its cgroup: %s", SYNC_ERROR,
					 strerror(errno));
			if (send(sync_fd, msg, (size_t)n, MSG_NOSIGNAL) < 0)
				log_error("%s", msg + 1);
			_exit(1);
		}
		close(cg_fds[i]);
	}
	if (read(sync_fd, &c, 1) != 1 || c != SYNC_GO)
		_exit(1);
	/* The init writes app logs through this fd: after pivot_root it can
	 * no longer name log_dir (apps.c, logs.c). */
	snprintf(logs, sizeof logs, "%s/%s", host->log_dir, cfg->name);
	a.log_fd = open(logs, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	init_main(&a);
}

/* The init must survive a tenant filling its memory: the OOM killer should
 * pick the process that grew, not pid 1 (whose death ends the tenant). */
static void protect_init(struct tenant *t, pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof path, "/proc/%d/oom_score_adj", (int)pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	/* Without CAP_SYS_RESOURCE (some containers) the init stays at 0; it
	 * is tiny, and the OOM killer picks the largest process anyway. */
	if (fd < 0 || write(fd, "-900", 4) != 4)
		log_debug("%s: oom_score_adj: %s", t->name, strerror(errno));
	if (fd >= 0)
		close(fd);
}

pid_t spawn_init(struct tenant *t, int *sync_fd, char *err, size_t errlen)
{
	char go = SYNC_GO;
	int sv[2], agent_fd, r, cg_fds[8], n_cg;
	bool need_attach;
	pid_t pid;

	n_cg = cg_open_self_attach(t->name, cg_fds, sizeof cg_fds / sizeof cg_fds[0], &need_attach);
	if (n_cg < 0) {
		snprintf(err, errlen, "cgroup: %s", strerror(-n_cg));
		return -1;
	}
	agent_fd = agent_socket(t, err, errlen);
	if (agent_fd >= 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		close(agent_fd);
		agent_fd = -1;
	}
	if (agent_fd < 0) {
		for (int i = 0; i < n_cg; i++)
			close(cg_fds[i]);
		return -1;
	}
	/* From the zygote (zygote.c); else here. The raw syscall forks into
	 * the new namespaces: no stack to manage. */
	pid = zygote_spawn(t->L, t, sv[1], agent_fd, cg_fds, n_cg);
	if (pid > 0) {
		log_debug("%s: init (pid %d) forked by the zygote", t->name, (int)pid);
		t->L->inits_by_zygote++;
	} else {
		pid = (pid_t)syscall(SYS_clone, SPAWN_CLONE_FLAGS, NULL, NULL, NULL, NULL);
		if (pid > 0)
			t->L->inits_by_launcher++;
	}
	if (pid == 0) {
		close(sv[0]);
		spawn_become_init(t->L->host, t->cfg, t->uid, t->gid, sv[1], agent_fd, cg_fds, n_cg);
	}
	for (int i = 0; i < n_cg; i++)
		close(cg_fds[i]);
	close(sv[1]);
	close(agent_fd);
	if (pid < 0) {
		snprintf(err, errlen, "clone: %s", strerror(errno));
		close(sv[0]);
		return -1;
	}
	r = need_attach ? cg_attach_v2(t->name, pid) : 0;
	protect_init(t, pid);
	if (r < 0 || write(sv[0], &go, 1) != 1) {
		snprintf(err, errlen, "cannot place the init in its cgroup: %s", strerror(r < 0 ? -r : errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(sv[0]);
		return -1;
	}
	*sync_fd = sv[0];
	return pid;
}

void spawn_cleanup_host(struct tenant *t)
{
	char path[4096];
	int r;

	r = cg_destroy(t->name);
	if (r < 0)
		log_warn_r(r, "%s: cannot remove cgroup", t->name);
	launcher_path(t->L, path, sizeof path, "agents/%s.sock", t->name);
	unlink(path);
	launcher_path(t->L, path, sizeof path, "tenants/%s", t->name);
	r = fs_rm_rf(path);
	if (r < 0)
		log_warn_r(r, "%s: cannot remove %s", t->name, path);
}
