/* control: state_dir/launcher.sock, for fiefctl (root only).
 *
 * One request line per connection ("list", "status NAME", "stop NAME",
 * "start NAME", "reload NAME"); the reply is records of key=value fields,
 * one record per line, values percent-encoded, then the connection
 * closes (lib/recserver). The first record says "ok=1" or
 * "ok=0 error=...". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cgroup.h"
#include "launcher.h"
#include "log.h"
#include "recserver.h"

#define CONTROL_TIMEOUT 5.0
#define CONTROL_MAX_CONN 64

static struct rec_server control;

static void out_tenant(struct rec_reply *r, struct tenant *t)
{
	struct cg_usage u = { 0 };
	char addr[16] = "";
	time_t up = t->pid && t->started_wall ? time(NULL) - t->started_wall : 0;

	if (t->pid)
		cg_usage(t->name, &u);
	if (t->cfg && t->cfg->network.has_address)
		ipv4_format(t->cfg->network.address, addr, sizeof addr);
	rec_field(r, "name", t->name);
	rec_field(r, "state", tenant_state_name(t->state));
	rec_num(r, "pid", (unsigned long long)t->pid);
	rec_num(r, "uid", t->uid == (uid_t)-1 ? 0 : t->uid);
	rec_num(r, "uptime", (unsigned long long)up);
	rec_num(r, "restarts", t->restarts);
	rec_num(r, "crashes", t->crashes);
	rec_num(r, "memory", u.memory);
	rec_num(r, "memory_limit", t->cfg ? t->cfg->limits.memory : 0);
	rec_num(r, "cpu_usec", u.cpu_usec);
	rec_num(r, "cpu_limit_millis", t->cfg ? (unsigned long long)t->cfg->limits.cpu_millis : 0);
	rec_num(r, "pids", u.pids);
	rec_num(r, "pids_limit", t->cfg ? (unsigned long long)t->cfg->limits.pids : 0);
	rec_num(r, "oom_kills", u.oom_kills);
	rec_field(r, "distro", t->cfg ? t->cfg->distro : "");
	rec_field(r, "address", addr);
	rec_field(r, "held", t->held ? "1" : "0");
	rec_field(r, "last_error", t->last_error);
	rec_end(r);
}

static int by_name(const void *a, const void *b)
{
	return strcmp((*(struct tenant *const *)a)->name, (*(struct tenant *const *)b)->name);
}

static void control_list(struct rec_reply *r, struct launcher *L)
{
	struct tenant **all = calloc(L->n_tenants + 1, sizeof *all);
	size_t n = 0;

	if (!all)
		return rec_error(r, "out of memory");
	for (struct tenant *t = L->tenants; t && n < L->n_tenants; t = t->next_t)
		all[n++] = t;
	qsort(all, n, sizeof *all, by_name);
	rec_ok(r);
	for (size_t i = 0; i < n; i++)
		out_tenant(r, all[i]);
	free(all);
}

/* Every request is a closed set of verbs on tenants the launcher knows. */
static void control_handle(struct rec_reply *r, const char *line, void *data)
{
	struct launcher *L = data;
	char verb[16] = "", name[64] = "";
	struct tenant *t = NULL;

	if (sscanf(line, "%15s %63s", verb, name) < 1)
		return rec_error(r, "empty request");
	if (!strcmp(verb, "list"))
		return control_list(r, L);
	if (strcmp(verb, "status") && strcmp(verb, "stop") && strcmp(verb, "start") &&
	    strcmp(verb, "reload"))
		return rec_error(r, "unknown request '%s'", verb);
	if (!name[0] || !(t = tenant_find(L, name)))
		return rec_error(r, "no tenant named '%s'", name);
	if (!strcmp(verb, "stop")) {
		t->held = true;
		tenant_stop(t, NEXT_NONE);
	} else if (!strcmp(verb, "start")) {
		t->held = false;
		t->crashes = 0;
		if (t->state == TS_STOPPED || t->state == TS_FAILED || t->state == TS_BACKOFF) {
			ev_timer_stop(L->loop, &t->timer_w);
			tenant_start(t);
		}
	} else if (!strcmp(verb, "reload")) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s.yaml", L->host->tenants_dir, t->name);
		/* Forget the bytes so the file is taken again even if unchanged. */
		free(t->file_buf);
		t->file_buf = NULL;
		t->held = false;
		tenant_apply_file(L, t->name, path);
	}
	rec_ok(r);
	out_tenant(r, t);
}

int control_start(struct launcher *L)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int fd;

	if (launcher_path(L, sa.sun_path, sizeof sa.sun_path, "launcher.sock") < 0)
		return -1;
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* Created 0600 from the start: no window where others may connect. */
	old = umask(0177);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0) {
		umask(old);
		log_error_r(errno, "control socket %s", sa.sun_path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	umask(old);
	control = (struct rec_server){ .loop = L->loop, .handle = control_handle, .data = L,
				       .max_conns = CONTROL_MAX_CONN, .timeout = CONTROL_TIMEOUT };
	rec_server_start(&control, fd);
	return 0;
}
