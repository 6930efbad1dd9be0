/* nginxmap: host names -> app sockets for nginx (see nginxmap.h). */
#include "nginxmap.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "launcher.h"
#include "log.h"

#define MAP_DEFER     0.02               /* seconds: one write per burst of changes */
#define MAP_MAX_READ  (64 * 1024 * 1024) /* the previous map, read back at start */

struct route {
	char domain[256];            /* lower case, as nginx compares $host */
	char tenant[40];
	char app[40];
	bool http;                   /* a command app: HTTP, not uWSGI */
};

struct routes {
	struct route *v;
	size_t n, cap;
};

static struct {
	struct launcher *L;
	struct routes owners;        /* as last written */
	ev_timer defer;
	ev_child reload_w;
	pid_t reload_pid;
	bool reload_again;
	char *text;                  /* the map as last written (or found) */
	char **reported;             /* conflicts already logged */
	size_t n_reported;
	bool bad_dir_reported;
} M;

/* ---- the route table ---- */

static struct route *routes_find(struct routes *rs, const char *domain)
{
	for (size_t i = 0; i < rs->n; i++)
		if (!strcmp(rs->v[i].domain, domain))
			return &rs->v[i];
	return NULL;
}

static void routes_add(struct routes *rs, const char *domain, const char *tenant, const char *app,
		       bool http)
{
	struct route *r;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct route *v = realloc(rs->v, cap * sizeof *v);
		if (!v) {
			log_error("nginx map: out of memory");
			return;
		}
		rs->v = v;
		rs->cap = cap;
	}
	r = &rs->v[rs->n++];
	snprintf(r->domain, sizeof r->domain, "%s", domain);
	snprintf(r->tenant, sizeof r->tenant, "%s", tenant);
	snprintf(r->app, sizeof r->app, "%s", app);
	r->http = http;
}

static void routes_drop_app(struct routes *rs, const char *tenant, const char *app)
{
	size_t k = 0;

	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->v[i].tenant, tenant) || strcmp(rs->v[i].app, app))
			rs->v[k++] = rs->v[i];
	rs->n = k;
}

static void lower(char *dst, const char *src, size_t len)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < len; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = 0;
}

static const struct config_app *app_find(const struct config_tenant *c, const char *name)
{
	for (size_t i = 0; i < c->apps.n; i++)
		if (!strcmp(c->apps.v[i].name, name))
			return &c->apps.v[i];
	return NULL;
}

static bool app_claims(const struct config_app *a, const char *domain)
{
	char d[256];

	for (size_t i = 0; i < a->domains.n; i++) {
		lower(d, a->domains.v[i], sizeof d);
		if (!strcmp(d, domain))
			return true;
	}
	return false;
}

/* ---- conflicts ---- */

static bool reported_before(const char *key)
{
	for (size_t i = 0; i < M.n_reported; i++)
		if (!strcmp(M.reported[i], key))
			return true;
	return false;
}

static void reports_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct reports {
	char **v;
	size_t n;
};

/* Log a conflict once, at FILE:LINE:COL of the app's domains. */
static void report_conflict(struct reports *rep, const struct tenant *t, size_t i,
			    const char *domain, const struct route *owner)
{
	const struct config_app *a = &t->cfg->apps.v[i];
	int line = a->domains_line ? a->domains_line : a->line;
	int col = a->domains_line ? a->domains_col : a->col;
	char why[400], *key, **v;

	if (asprintf(&key, "%s/%s/%s/%s/%s", t->name, a->name, domain, owner->tenant,
		     owner->app) < 0)
		return;
	if (strcmp(owner->domain, domain))
		snprintf(why, sizeof why, "falls under '%s' of tenant %s (app %s)", owner->domain,
			 owner->tenant, owner->app);
	else if (!strcmp(owner->tenant, t->name))
		snprintf(why, sizeof why, "is already routed to app %s of this tenant", owner->app);
	else
		snprintf(why, sizeof why, "is already routed to tenant %s (app %s)", owner->tenant,
			 owner->app);
	if (!reported_before(key))
		log_error("%s:%d:%d: apps[%zu] (%s): domain '%s' %s; app %s is not routed",
			  t->cfg->file, line, col, i, a->name, domain, why, a->name);
	v = realloc(rep->v, (rep->n + 1) * sizeof *v);
	if (!v) {
		free(key);
		return;
	}
	rep->v = v;
	rep->v[rep->n++] = key;
}

/* ---- computing the routes ---- */

static int tenant_cmp(const void *a, const void *b)
{
	return strcmp((*(struct tenant *const *)a)->name, (*(struct tenant *const *)b)->name);
}

/* Another tenant's wildcard that d falls under. nginx prefers an exact
 * name, then the longest wildcard: claiming "shop.alice.example.com" or
 * "*.shop.alice.example.com" would take traffic that "*.alice.example.com"
 * of an earlier owner gets today. */
static struct route *covering_wildcard(struct routes *rs, const char *d, const char *tenant)
{
	const char *base = strncmp(d, "*.", 2) ? d : d + 2;
	size_t bl = strlen(base);

	for (size_t i = 0; i < rs->n; i++) {
		const char *s = rs->v[i].domain + 2;
		size_t sl = strlen(s);

		if (strncmp(rs->v[i].domain, "*.", 2) || !strcmp(rs->v[i].tenant, tenant))
			continue;
		if (bl > sl && base[bl - sl - 1] == '.' && !strcmp(base + bl - sl, s))
			return &rs->v[i];
	}
	return NULL;
}

/* Claims of one app: all its domains, or none when one is someone else's. */
static void claim_app(struct routes *out, struct reports *rep, const struct tenant *t, size_t i)
{
	const struct config_app *a = &t->cfg->apps.v[i];
	char d[256];

	for (size_t k = 0; k < a->domains.n; k++) {
		struct route *o;
		lower(d, a->domains.v[k], sizeof d);
		o = routes_find(out, d);
		/* What the app owns already stays its own; a new name must not
		 * be anyone else's, nor fall under anyone else's wildcard. */
		if (!o)
			o = covering_wildcard(out, d, t->name);
		if (o && (strcmp(o->tenant, t->name) || strcmp(o->app, a->name))) {
			struct route owner = *o;
			report_conflict(rep, t, i, d, &owner);
			routes_drop_app(out, t->name, a->name);
			return;
		}
	}
	for (size_t k = 0; k < a->domains.n; k++) {
		lower(d, a->domains.v[k], sizeof d);
		if (!routes_find(out, d))
			routes_add(out, d, t->name, a->name, a->type == APP_COMMAND);
	}
}

static void nginxmap_compute(struct routes *out, struct reports *rep)
{
	struct launcher *L = M.L;
	struct tenant **ts;
	size_t n = 0;

	/* Owners keep what they still claim. */
	for (size_t i = 0; i < M.owners.n; i++) {
		const struct route *r = &M.owners.v[i];
		const struct tenant *t = tenant_find(L, r->tenant);
		const struct config_app *a = t && t->cfg ? app_find(t->cfg, r->app) : NULL;

		if (a && app_claims(a, r->domain) && !routes_find(out, r->domain))
			routes_add(out, r->domain, r->tenant, r->app, a->type == APP_COMMAND);
	}
	/* New claims, in the order of tenant names: a stable first come. */
	ts = calloc(L->n_tenants + 1, sizeof *ts);
	if (!ts)
		return;
	for (struct tenant *t = L->tenants; t; t = t->next_t)
		if (t->cfg && n < L->n_tenants)
			ts[n++] = t;
	qsort(ts, n, sizeof *ts, tenant_cmp);
	for (size_t k = 0; k < n; k++)
		for (size_t i = 0; i < ts[k]->cfg->apps.n; i++)
			claim_app(out, rep, ts[k], i);
	free(ts);
}

/* ---- the file ---- */

static int route_cmp(const void *a, const void *b)
{
	return strcmp(((const struct route *)a)->domain, ((const struct route *)b)->domain);
}

/* nginx reads "$" as a variable and ";", quotes, braces and spaces as
 * syntax: a state_dir with any of those cannot go into the map. */
static bool path_is_plain(const char *p)
{
	return !p[strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789/._-+@,")];
}

static void map_block(FILE *f, const char *var, const struct routes *rs, bool http)
{
	const char *state = M.L->host->state_dir;

	fprintf(f, "map $host %s {\n    hostnames;\n    default \"\";\n", var);
	for (size_t i = 0; i < rs->n; i++) {
		const struct route *r = &rs->v[i];
		if (r->http == http)
			fprintf(f, "    %s \"unix:%s/tenants/%s/run/%s.sock%s\"; # %s/%s\n",
				r->domain, state, r->tenant, r->app, http ? ":" : "", r->tenant,
				r->app);
	}
	fprintf(f, "}\n");
}

static char *map_text(struct routes *rs)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (rs->n)
		qsort(rs->v, rs->n, sizeof *rs->v, route_cmp);
	fprintf(f, "# Written by fief-launcher from the tenant files: do not edit.\n"
		   "# Host name -> app socket; conf/nginx/fief.conf uses both maps.\n");
	map_block(f, "$fief_uwsgi", rs, false);
	map_block(f, "$fief_http", rs, true);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void nginxmap_reload(void);

static void nginxmap_reload_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	const char *cmd = M.L->host->http.reload_command;

	ev_child_stop(loop, w);
	M.reload_pid = 0;
	if (WIFEXITED(w->rstatus) && WEXITSTATUS(w->rstatus) == 0)
		log_debug("http.reload_command done");
	else if (WIFEXITED(w->rstatus))
		log_warn("http.reload_command '%s' exited with status %d", cmd,
			 WEXITSTATUS(w->rstatus));
	else
		log_warn("http.reload_command '%s' was killed by signal %d", cmd,
			 WTERMSIG(w->rstatus));
	if (M.reload_again) {
		M.reload_again = false;
		nginxmap_reload();
	}
}

/* Run http.reload_command, or once more after the one running now. */
static void nginxmap_reload(void)
{
	const char *cmd = M.L->host->http.reload_command;
	pid_t pid;

	if (!cmd || !*cmd)
		return;
	if (M.reload_pid) {
		M.reload_again = true;
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_warn_r(errno, "cannot run http.reload_command");
		return;
	}
	if (pid == 0) {
		sigset_t none;
		int null = open("/dev/null", O_RDONLY);

		/* libev blocks signals it watches: the command gets a clean slate. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			signal(s, SIG_DFL);
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		closefrom(3);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	M.reload_pid = pid;
	ev_child_init(&M.reload_w, nginxmap_reload_cb, pid, 0);
	ev_child_start(M.L->loop, &M.reload_w);
}

static int map_write(const char *text)
{
	const char *path = M.L->host->http.nginx_map;
	char dir[4096], *slash;
	int r;

	snprintf(dir, sizeof dir, "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		r = fs_mkdir_p(dir, 0755, (uid_t)-1, (gid_t)-1);
		if (r < 0)
			return r;
	}
	return fs_write_atomic(path, text, strlen(text), 0644);
}

static void nginxmap_flush(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct routes out = { 0 };
	struct reports rep = { 0 };
	char *text;
	int r;

	ev_timer_stop(loop, w);
	if (!path_is_plain(M.L->host->state_dir)) {
		if (!M.bad_dir_reported)
			log_error("%s: state_dir '%s' has characters nginx would misread: "
				  "no domain is routed", M.L->host_path, M.L->host->state_dir);
		M.bad_dir_reported = true;
	} else {
		nginxmap_compute(&out, &rep);
	}
	reports_free(M.reported, M.n_reported);
	M.reported = rep.v;
	M.n_reported = rep.n;
	text = map_text(&out);
	if (!text) {
		free(out.v);
		log_error("nginx map: out of memory");
		return;
	}
	free(M.owners.v);
	M.owners = out;
	if (M.text && !strcmp(M.text, text)) {
		free(text);
		return;
	}
	r = map_write(text);
	if (r < 0) {
		log_error_r(r, "cannot write %s", M.L->host->http.nginx_map);
		free(text);
		return;
	}
	free(M.text);
	M.text = text;
	log_info("nginx map: %zu domain%s routed, in %s", out.n, out.n == 1 ? "" : "s",
		 M.L->host->http.nginx_map);
	nginxmap_reload();
}

/* The owners of the last map a launcher wrote: "DOMAIN "unix:..."; # T/A". */
static void nginxmap_read_back(void)
{
	char *buf = NULL, *line, *save = NULL;
	size_t len;

	if (config_read_file(M.L->host->http.nginx_map, MAP_MAX_READ, &buf, &len) < 0)
		return;
	M.text = strndup(buf, len);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char domain[256], tenant[40], app[40], bare[256];
		if (sscanf(line, " %255s \"unix:%*[^\"]\"; # %39[^/]/%39s", domain, tenant,
			   app) != 3)
			continue;
		lower(bare, strncmp(domain, "*.", 2) ? domain : domain + 2, sizeof bare);
		if (value_is_hostname(bare) && value_is_tenant_name(tenant) &&
		    value_is_item_name(app) && !routes_find(&M.owners, domain))
			routes_add(&M.owners, domain, tenant, app, false);
	}
	free(buf);
}

void nginxmap_start(struct launcher *L)
{
	M.L = L;
	ev_init(&M.defer, nginxmap_flush);
	nginxmap_read_back();
	nginxmap_update(L);
}

void nginxmap_update(struct launcher *L)
{
	if (!M.L || L->shutting_down || ev_is_active(&M.defer))
		return;
	ev_timer_set(&M.defer, MAP_DEFER, 0);
	ev_timer_start(L->loop, &M.defer);
}
