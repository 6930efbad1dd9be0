/* adopt: tenants that outlive their launcher.
 *
 * A launcher that exits (SIGQUIT, a crash, kill -9, an upgrade) leaves its
 * tenants running. Each start records, in state_dir/tenants/NAME/, the
 * init's pid with its start time and the config bytes it runs. The next
 * launcher takes back a tenant only when that pid is alive, started at
 * that time and sits in the tenant's cgroup: a recycled pid never passes
 * all three. It then watches the init through a pidfd (the init is no
 * longer its child). Anything else under state_dir or the cgroup parent
 * is a leftover and is cleaned away. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup.h"
#include "fsutil.h"
#include "launcher.h"
#include "log.h"
#include "routerlink.h"

/* Field 22 of /proc/PID/stat: start time in clock ticks since boot. */
static int adopt_start_time(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	int n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	n = fs_read_small(path, buf, sizeof buf);
	if (n <= 0)
		return -1;
	/* comm may hold spaces and parentheses: skip to the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -1;
	}
	return sscanf(p + 1, "%llu", start) == 1 ? 0 : -1;
}

int adopt_record(struct tenant *t)
{
	char path[4096], buf[256];
	unsigned long long start;
	size_t len;
	int r;

	if (adopt_start_time(t->pid, &start) < 0)
		return -ESRCH;
	/* tun=-1 (no network), or the fd numbers of its queues: "tun=5" as
	 * before multi-queue, "tun=5,6,7" with more. */
	len = (size_t)snprintf(buf, sizeof buf, "pid=%d start=%llu uid=%u tun=%d", (int)t->pid, start,
			       (unsigned)t->uid, t->n_init_tun ? t->init_tun_fds[0] : -1);
	for (int i = 1; i < t->n_init_tun && len < sizeof buf - 16; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len, ",%d", t->init_tun_fds[i]);
	snprintf(buf + len, sizeof buf - len, "\n");
	launcher_path(t->L, path, sizeof path, "tenants/%s/init.state", t->name);
	r = fs_write_replace(path, buf, strlen(buf), 0600);
	if (r == 0) {
		launcher_path(t->L, path, sizeof path, "tenants/%s/config.yaml", t->name);
		r = fs_write_replace(path, t->file_buf, t->file_len, 0600);
	}
	if (r < 0)
		log_warn_r(r, "%s: cannot record the init for a later launcher", t->name);
	return r;
}

/* Is pid the init this record describes, in this tenant's cgroup? */
static bool adopt_same_init(const char *name, pid_t pid, unsigned long long start)
{
	unsigned long long now_start;
	pid_t procs[8];
	int n;

	if (pid <= 1 || adopt_start_time(pid, &now_start) < 0 || now_start != start)
		return false;
	n = cg_procs(name, procs, sizeof procs / sizeof procs[0]);
	for (int i = 0; i < n; i++)
		if (procs[i] == pid)
			return true;
	return false;
}

static void adopt_exit_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tenant *t = w->data;

	ev_io_stop(loop, w);
	close(w->fd);
	/* Not our child: no status to read. tenant.c takes it from here. */
	tenant_init_exited(t, -1);
}

int adopt_parse_fds(const char *s, int *fds, int max)
{
	int n = 0;

	for (;;) {
		char *end;
		long v = strtol(s, &end, 10);

		if (end == s || v < 0 || v > 1 << 20 || n == max)
			return -1;
		fds[n++] = (int)v;
		if (*end != ',')
			return *end == 0 || *end == '\n' || *end == ' ' ? n : -1;
		s = end + 1;
	}
}

/* The tenant's eth0 lives on in its init; take a copy of the fd of each
 * of its queues, so the router (restarted or not) gets this tenant back. */
static void adopt_tun(struct tenant *t, int pidfd, const int *tun, int n)
{
	int fds[CONFIG_ROUTER_MAX_THREADS];

	for (int i = 0; i < n; i++) {
		fds[i] = (int)syscall(SYS_pidfd_getfd, pidfd, tun[i], 0);
		if (fds[i] < 0) {
			log_warn_r(errno, "%s: cannot take eth0 back from the init", t->name);
			while (i-- > 0)
				close(fds[i]);
			return;
		}
	}
	if (n <= 0)
		return;
	memcpy(t->init_tun_fds, tun, sizeof *tun * (size_t)n);
	t->n_init_tun = n;
	routerlink_tenant_tun(t, fds, (size_t)n);
}

static struct tenant *adopt_one(struct launcher *L, const char *name)
{
	char path[4096], state[256], *cfgbuf = NULL, err[256];
	unsigned long long start = 0;
	struct config_errors errs;
	struct config_tenant *cfg;
	struct tenant *t;
	size_t cfglen;
	unsigned uid = 0;
	int pid = 0, pidfd, tun[CONFIG_ROUTER_MAX_THREADS], n_tun = 0;
	const char *tun_s;

	launcher_path(L, path, sizeof path, "tenants/%s/init.state", name);
	if (fs_read_small(path, state, sizeof state) <= 0 ||
	    sscanf(state, "pid=%d start=%llu uid=%u", &pid, &start, &uid) < 3 ||
	    !adopt_same_init(name, pid, start))
		return NULL;
	/* "tun=-1" or a missing field: no network; otherwise the queues */
	if ((tun_s = strstr(state, " tun=")) && tun_s[5] != '-' &&
	    (n_tun = adopt_parse_fds(tun_s + 5, tun, CONFIG_ROUTER_MAX_THREADS)) < 0)
		n_tun = 0;
	launcher_path(L, path, sizeof path, "tenants/%s/config.yaml", name);
	if (config_read_file(path, CONFIG_MAX_FILE, &cfgbuf, &cfglen) < 0)
		return NULL;
	snprintf(path, sizeof path, "%s/%s.yaml", L->host->tenants_dir, name);
	cfg = config_tenant_parse(path, cfgbuf, cfglen, L->host, &errs);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	t = cfg && pidfd >= 0 ? tenant_new(L, name) : NULL;
	if (!t || spawn_resolve_uid(L, t, cfg, err, sizeof err) < 0 || t->uid != uid) {
		if (pidfd >= 0)
			close(pidfd);
		config_tenant_free(cfg);
		free(cfgbuf);
		if (t)
			tenant_forget(t);
		return NULL;
	}
	t->cfg = cfg;
	t->file_buf = cfgbuf;
	t->file_len = cfglen;
	tenant_adopted(t, pid, pidfd, adopt_exit_cb);
	adopt_tun(t, pidfd, tun, n_tun);
	return t;
}

/* Kill and remove what no live tenant owns: a cgroup or a state folder. */
static void adopt_cleanup(struct launcher *L, const char *name)
{
	char path[4096];

	if (tenant_find(L, name))
		return;
	log_info("%s: removing what a previous launcher left behind", name);
	cg_destroy(name);
	launcher_path(L, path, sizeof path, "agents/%s.sock", name);
	unlink(path);
	launcher_path(L, path, sizeof path, "tenants/%s", name);
	fs_rm_rf(path);
}

void adopt_all(struct launcher *L)
{
	char path[4096], **names = NULL;
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	launcher_path(L, path, sizeof path, "tenants");
	d = opendir(path);
	while (d && (de = readdir(d))) {
		if (!value_is_tenant_name(de->d_name))
			continue;
		if (adopt_one(L, de->d_name))
			log_info("%s: adopted the running tenant", de->d_name);
		else
			adopt_cleanup(L, de->d_name);
	}
	if (d)
		closedir(d);
	if (cg_list(&names, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (value_is_tenant_name(names[i]))
				adopt_cleanup(L, names[i]);
			free(names[i]);
		}
		free(names);
	}
}
