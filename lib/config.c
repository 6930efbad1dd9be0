/* config: the host file and tenant files as typed structs.
 *
 * The tables below are the contract of DESIGN.md: every key, its type,
 * where it lands, its default and its bounds. Loading, defaults, the
 * checks of `fiefctl check` and the Markdown reference all walk them. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yamltree.h"

enum ktype {
	K_STR,          /* any non-empty string */
	K_OPTSTR,       /* string, may be empty */
	K_PATH,         /* absolute path */
	K_RELPATH,      /* relative path of safe components (cgroup_parent) */
	K_IFNAME,       /* network interface name */
	K_ITEMNAME,     /* app and daemon names */
	K_HOSTNAME,
	K_DOMAIN,       /* host name, or *. and a host name */
	K_SIZE,
	K_DURATION,
	K_INT,
	K_BOOL,
	K_CPU,
	K_UID,          /* integer or "auto" */
	K_WORKERS,      /* integer or "auto" (0) */
	K_CIDR,
	K_IPV4,
	K_CIDR6,
	K_IPV6,
	K_ENDPOINT,
	K_APPTYPE,
	K_PWHASH,
	K_SECTION,      /* mapping described by sub */
	K_LIST,         /* sequence of mappings described by sub */
	K_STRLIST,      /* sequence of strings; checked by the item type */
	K_ENDPOINTLIST,
	K_FWLIST,
	K_CRONLIST,
	K_ENVMAP,
};

struct ckey;

struct csection {
	const struct ckey *keys;
	size_t size;                     /* element size, for K_LIST */
	size_t line_off, col_off;        /* where to record an element's position */
	bool has_pos;
};

struct ckey {
	const char *name;
	enum ktype type;
	size_t off;
	const char *def;                 /* default, parsed like a value; NULL = none */
	int64_t min, max;                /* bounds for numeric types (0, 0 = none) */
	const struct csection *sub;
	enum ktype item;                 /* K_STRLIST: how to check each string */
	size_t set_off;                  /* offset+1 of a bool set when present; 0 = none */
	size_t pos_off;                  /* offset+1 of two ints (line, col) recording where; 0 = none */
	bool required;
	const char *doc;
};

#define OFF(T, f) offsetof(T, f)
#define SET(T, f) (offsetof(T, f) + 1)

/* ---- the tenant file ---- */

const char *const config_app_types[4] = { "wsgi", "psgi", "rack", "command" };

static const struct ckey limits_keys[] = {
	{ "memory", K_SIZE, OFF(struct config_tenant, limits.memory), "512M", 16LL << 20, 16LL << 40, .doc = "memory limit (no swap beyond it)" },
	{ "cpu", K_CPU, OFF(struct config_tenant, limits.cpu_millis), "1", 10, 1024000, .doc = "CPU share in cores, e.g. 0.5" },
	{ "pids", K_INT, OFF(struct config_tenant, limits.pids), "512", 8, 4194304, .doc = "maximum number of processes and threads" },
	{ "tmp", K_SIZE, OFF(struct config_tenant, limits.tmp), "64M", 1LL << 20, 16LL << 40, .doc = "size of the private /tmp (and /dev/shm)" },
	{ NULL }
};

static const struct ckey ssh_keys[] = {
	{ "authorized_keys", K_STRLIST, OFF(struct config_tenant, ssh.authorized_keys), .item = K_STR, .doc = "public keys in OpenSSH authorized_keys format" },
	{ "shell", K_PATH, OFF(struct config_tenant, ssh.shell), "/bin/bash", .doc = "login shell inside the tenant" },
	{ "password_hash", K_PWHASH, OFF(struct config_tenant, ssh.password_hash), .doc = "crypt(3) hash; password login is off when absent" },
	{ "accept_env", K_STRLIST, OFF(struct config_tenant, ssh.accept_env), .item = K_STR, .doc = "client environment variables to accept beyond LANG, LC_* and TERM (a trailing * matches a prefix)" },
	{ NULL }
};

static const struct ckey network_keys[] = {
	{ "address", K_IPV4, OFF(struct config_tenant, network.address), .set_off = SET(struct config_tenant, network.has_address), .pos_off = OFF(struct config_tenant, network.line) + 1, .doc = "the tenant's IPv4 address inside the router subnet; absent = loopback only" },
	{ "address6", K_IPV6, OFF(struct config_tenant, network.address6), .set_off = SET(struct config_tenant, network.has_address6), .pos_off = OFF(struct config_tenant, network.line6) + 1, .doc = "the tenant's IPv6 address inside router.address6 (needs address too); absent = IPv4 only" },
	{ "rate_limit", K_SIZE, OFF(struct config_tenant, network.rate_limit), "0", 0, 1LL << 40, .doc = "bytes per second in each direction, 0 = unlimited" },
	{ NULL }
};

static const struct ckey app_keys[] = {
	{ "name", K_ITEMNAME, OFF(struct config_app, name), .required = true, .pos_off = OFF(struct config_app, name_line) + 1, .doc = "app name: [a-z][a-z0-9_-]{0,31}" },
	{ "type", K_APPTYPE, OFF(struct config_app, type), .required = true, .doc = "wsgi, psgi, rack or command" },
	{ "module", K_STR, OFF(struct config_app, module), .doc = "wsgi: the module and callable, e.g. myapp:application" },
	{ "script", K_PATH, OFF(struct config_app, script), .doc = "psgi: the .psgi file; rack: the config.ru file" },
	{ "command", K_STR, OFF(struct config_app, command), .doc = "command: the server to run; it gets its socket path in $FIEF_SOCKET" },
	{ "chdir", K_PATH, OFF(struct config_app, chdir), .doc = "working directory (default: the home)" },
	{ "domains", K_STRLIST, OFF(struct config_app, domains), .item = K_DOMAIN, .pos_off = OFF(struct config_app, domains_line) + 1, .doc = "host names routed to this app; *.example.com matches subdomains" },
	{ "workers", K_INT, OFF(struct config_app, workers), "1", 1, 64, .doc = "worker processes" },
	{ "lazy_apps", K_BOOL, OFF(struct config_app, lazy_apps), "true", .doc = "load the app in each worker instead of preforking" },
	{ NULL }
};

static const struct csection app_section = {
	app_keys, sizeof(struct config_app), OFF(struct config_app, line), OFF(struct config_app, col), true
};

static const struct ckey daemon_keys[] = {
	{ "name", K_ITEMNAME, OFF(struct config_daemon, name), .required = true, .pos_off = OFF(struct config_daemon, name_line) + 1, .doc = "daemon name: [a-z][a-z0-9_-]{0,31}" },
	{ "command", K_STR, OFF(struct config_daemon, command), .required = true, .doc = "command line, run by /bin/sh -c" },
	{ NULL }
};

static const struct csection daemon_section = {
	daemon_keys, sizeof(struct config_daemon), OFF(struct config_daemon, line), OFF(struct config_daemon, col), true
};

static const struct csection limits_section = { limits_keys, 0, 0, 0, false };
static const struct csection ssh_section = { ssh_keys, 0, 0, 0, false };
static const struct csection network_section = { network_keys, 0, 0, 0, false };

static const struct ckey tenant_keys[] = {
	{ "uid", K_UID, OFF(struct config_tenant, uid), .min = 1000, .max = 4294967294LL, .required = true, .doc = "host uid the tenant runs as, or auto" },
	{ "distro", K_ITEMNAME, OFF(struct config_tenant, distro), "bookworm", .doc = "a folder of distros_dir" },
	{ "hostname", K_HOSTNAME, OFF(struct config_tenant, hostname), .doc = "host name inside the tenant (default: the tenant name)" },
	{ "limits", K_SECTION, 0, .sub = &limits_section, .doc = "resource limits" },
	{ "ssh", K_SECTION, 0, .sub = &ssh_section, .doc = "ssh access" },
	{ "network", K_SECTION, 0, .sub = &network_section, .set_off = 0, .doc = "networking through fief-router" },
	{ "env", K_ENVMAP, OFF(struct config_tenant, env), .doc = "environment of every tenant process (TZ sets the cron time zone)" },
	{ "apps", K_LIST, OFF(struct config_tenant, apps), .sub = &app_section, .doc = "web apps" },
	{ "daemons", K_LIST, OFF(struct config_tenant, daemons), .sub = &daemon_section, .doc = "private services, restarted when they die" },
	{ "cron", K_CRONLIST, OFF(struct config_tenant, cron), .doc = "cron lines: five time fields (crontab, or uWSGI -1/-N numbers) and a command" },
	{ NULL }
};

/* ---- the host file ---- */

static const struct ckey launcher_keys[] = {
	{ "start_concurrency", K_WORKERS, OFF(struct config_host, launcher.start_concurrency), "auto", 1, 4096, .doc = "tenants starting at once (a start ends when its apps answer), or auto (one per core)" },
	{ NULL }
};

static const struct ckey gateway_keys[] = {
	{ "listen", K_ENDPOINTLIST, OFF(struct config_host, gateway.listen), "0.0.0.0:22", .doc = "addresses to accept ssh on" },
	{ "host_keys_dir", K_PATH, OFF(struct config_host, gateway.host_keys_dir), "/etc/fief/hostkeys", .doc = "host keys, generated on first start when missing" },
	{ "workers", K_WORKERS, OFF(struct config_host, gateway.workers), "auto", 1, 256, .doc = "worker processes, or auto (one per core)" },
	{ "login_grace", K_DURATION, OFF(struct config_host, gateway.login_grace_ms), "30s", 1000, 3600000, .doc = "time to authenticate" },
	{ "max_auth_tries", K_INT, OFF(struct config_host, gateway.max_auth_tries), "6", 1, 100, .doc = "failed attempts per connection" },
	{ "max_unauthenticated", K_INT, OFF(struct config_host, gateway.max_unauthenticated), "100", 1, 1000000, .doc = "connections not yet authenticated, per worker" },
	{ "user", K_ITEMNAME, OFF(struct config_host, gateway.user), "fief", .doc = "system user the gateway runs as after binding" },
	{ NULL }
};

static const struct ckey nat_keys[] = {
	{ "enabled", K_BOOL, OFF(struct config_host, router.nat.enabled), "false", .doc = "masquerade the tenant subnet" },
	{ "out_interface", K_IFNAME, OFF(struct config_host, router.nat.out_interface), "eth0", .doc = "interface to masquerade on" },
	{ NULL }
};

static const struct ckey firewall_keys[] = {
	{ "out", K_FWLIST, OFF(struct config_host, router.firewall.out), .doc = "rules for packets from tenants, first match wins (default: tenants reach the router and the outside, not each other)" },
	{ "in", K_FWLIST, OFF(struct config_host, router.firewall.in), .doc = "rules for packets to tenants, first match wins" },
	{ NULL }
};

static const struct csection nat_section = { nat_keys, 0, 0, 0, false };
static const struct csection firewall_section = { firewall_keys, 0, 0, 0, false };

static const struct ckey router_keys[] = {
	{ "enabled", K_BOOL, OFF(struct config_host, router.enabled), "true", .doc = "run tenant networking" },
	{ "device", K_IFNAME, OFF(struct config_host, router.device), "fief0", .doc = "host tun device" },
	{ "address", K_CIDR, OFF(struct config_host, router.address), "10.200.0.1/16", .pos_off = OFF(struct config_host, router.address_line) + 1, .doc = "router address and tenant subnet" },
	{ "threads", K_WORKERS, OFF(struct config_host, router.threads), "auto", 1, CONFIG_ROUTER_MAX_THREADS, .doc = "forwarding threads, one tun queue each; auto = one per core, at most 16" },
	{ "io_uring", K_BOOL, OFF(struct config_host, router.io_uring), "true", .doc = "move packets in batches through io_uring when the kernel allows it; false = one read and one write system call per packet" },
	{ "address6", K_CIDR6, OFF(struct config_host, router.address6), .set_off = SET(struct config_host, router.has_address6), .pos_off = OFF(struct config_host, router.address6_line) + 1, .doc = "router IPv6 address and tenant IPv6 subnet (/64 to /120); absent = IPv4 only" },
	{ "nat", K_SECTION, 0, .sub = &nat_section, .doc = "NAT to the outside" },
	{ "firewall", K_SECTION, 0, .sub = &firewall_section, .doc = "ordered allow/deny rules" },
	{ NULL }
};

static const struct ckey http_keys[] = {
	{ "nginx_map", K_PATH, OFF(struct config_host, http.nginx_map), "/run/fief/nginx-domains.map", .doc = "map from host name to app socket, for nginx" },
	{ "reload_command", K_OPTSTR, OFF(struct config_host, http.reload_command), "nginx -s reload", .doc = "run after the map changes; empty = none" },
	{ NULL }
};

static const struct ckey metrics_keys[] = {
	{ "listen", K_ENDPOINT, OFF(struct config_host, metrics.listen), "127.0.0.1:9187", .doc = "Prometheus endpoint" },
	{ "enabled", K_BOOL, OFF(struct config_host, metrics.enabled), "true", .doc = "serve metrics" },
	{ NULL }
};

static const struct csection launcher_section = { launcher_keys, 0, 0, 0, false };
static const struct csection gateway_section = { gateway_keys, 0, 0, 0, false };
static const struct csection router_section = { router_keys, 0, 0, 0, false };
static const struct csection http_section = { http_keys, 0, 0, 0, false };
static const struct csection metrics_section = { metrics_keys, 0, 0, 0, false };

static const struct ckey host_keys[] = {
	{ "state_dir", K_PATH, OFF(struct config_host, state_dir), "/run/fief", .doc = "sockets, tenant run dirs, pid files" },
	{ "tenants_dir", K_PATH, OFF(struct config_host, tenants_dir), "/etc/fief/tenants.d", .doc = "one NAME.yaml per tenant" },
	{ "distros_dir", K_PATH, OFF(struct config_host, distros_dir), "/srv/fief/distros", .doc = "one root filesystem per distro" },
	{ "homes_dir", K_PATH, OFF(struct config_host, homes_dir), "/srv/fief/homes", .doc = "tenant homes" },
	{ "log_dir", K_PATH, OFF(struct config_host, log_dir), "/var/log/fief", .doc = "app, daemon and cron logs, per tenant" },
	{ "opt_dir", K_PATH, OFF(struct config_host, opt_dir), .doc = "optional read-only /opt shared by all tenants" },
	{ "cgroup_parent", K_RELPATH, OFF(struct config_host, cgroup_parent), "fief", .doc = "tenant cgroups go below this, relative to the launcher's cgroup" },
	{ "launcher", K_SECTION, 0, .sub = &launcher_section, .doc = "tenant starts" },
	{ "gateway", K_SECTION, 0, .sub = &gateway_section, .doc = "ssh gateway" },
	{ "router", K_SECTION, 0, .sub = &router_section, .doc = "tenant networking" },
	{ "http", K_SECTION, 0, .sub = &http_section, .doc = "domains through nginx" },
	{ "metrics", K_SECTION, 0, .sub = &metrics_section, .doc = "Prometheus metrics" },
	{ NULL }
};

static const struct csection host_section = { host_keys, 0, 0, 0, false };
static const struct csection tenant_section = { tenant_keys, 0, 0, 0, false };

/* ---- errors ---- */

struct loader {
	struct config_errors *errs;
	char path[160];                  /* key path of the node being loaded */
};

static void cerr_at(struct loader *L, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void cerr_at(struct loader *L, int line, int col, const char *fmt, ...)
{
	struct config_errors *e = L->errs;
	va_list ap;

	if (e->n == CONFIG_MAX_ERRORS) {
		e->truncated = true;
		return;
	}
	e->e[e->n].line = line;
	e->e[e->n].col = col;
	va_start(ap, fmt);
	vsnprintf(e->e[e->n].msg, sizeof e->e[e->n].msg, fmt, ap);
	va_end(ap);
	e->n++;
}

#define cerr(L, node, ...) cerr_at((L), (node)->line, (node)->col, __VA_ARGS__)

void config_error_format(const struct config_errors *errs, size_t i, char *buf, size_t len)
{
	const struct config_error *e = &errs->e[i];

	if (e->line > 0)
		snprintf(buf, len, "%s:%d:%d: %s", errs->file, e->line, e->col, e->msg);
	else
		snprintf(buf, len, "%s: %s", errs->file, e->msg);
}

void config_errors_print(const struct config_errors *errs, FILE *out)
{
	char line[1024];

	for (size_t i = 0; i < errs->n; i++) {
		config_error_format(errs, i, line, sizeof line);
		fprintf(out, "%s\n", line);
	}
	if (errs->truncated)
		fprintf(out, "%s: further errors not shown\n", errs->file);
}

/* ---- scalar values ---- */

static void *at(void *base, size_t off)
{
	return (char *)base + off;
}

/* Push "name" (or "[i]") onto the key path; returns the old length. */
static size_t path_push(struct loader *L, const char *name, long idx)
{
	size_t old = strlen(L->path);

	if (idx >= 0)
		snprintf(L->path + old, sizeof L->path - old, "[%ld]", idx);
	else
		snprintf(L->path + old, sizeof L->path - old, "%s%s", old ? "." : "", name);
	return old;
}

static void fmt_bound(enum ktype t, int64_t v, char *buf, size_t len)
{
	if (t == K_SIZE && v >= 1024 && v % 1024 == 0) {
		const char *u = "KMGT";
		int i = 0;
		v /= 1024;
		while (v % 1024 == 0 && i < 3) {
			v /= 1024;
			i++;
		}
		snprintf(buf, len, "%lld%c", (long long)v, u[i]);
	} else if (t == K_DURATION) {
		snprintf(buf, len, v % 1000 ? "%lldms" : "%llds", (long long)(v % 1000 ? v : v / 1000));
	} else if (t == K_CPU) {
		snprintf(buf, len, "%lld.%03lld", (long long)(v / 1000), (long long)(v % 1000));
	} else {
		snprintf(buf, len, "%lld", (long long)v);
	}
}

static int check_range(struct loader *L, const struct ckey *k, const struct yt_node *n, int64_t v)
{
	char lo[32], hi[32];

	if (k->min == 0 && k->max == 0)
		return 0;
	if (v >= k->min && v <= k->max)
		return 0;
	fmt_bound(k->type, k->min, lo, sizeof lo);
	fmt_bound(k->type, k->max, hi, sizeof hi);
	cerr(L, n, "%s: %s is out of range (%s to %s)", L->path, n->str, lo, hi);
	return -1;
}

static bool relpath_ok(const char *s)
{
	if (!*s || *s == '/' || strlen(s) > 200)
		return false;
	for (const char *p = s; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("_.-/", *p)))
			return false;
	return !strstr(s, "//") && s[strlen(s) - 1] != '/' && strcmp(s, "..") &&
	       strncmp(s, "../", 3) && !strstr(s, "/../") &&
	       !(strlen(s) >= 3 && !strcmp(s + strlen(s) - 3, "/.."));
}

static bool ifname_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("_.-", *s)))
			return false;
	return true;
}

static bool pwhash_ok(const char *s)
{
	if (s[0] != '$' || strlen(s) < 13 || strlen(s) > 512)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("$./=,-", *s)))
			return false;
	return true;
}

static char *dup_or_err(struct loader *L, const struct yt_node *n)
{
	char *s = strdup(n->str);

	if (!s)
		cerr(L, n, "out of memory");
	return s;
}

/* Checks on strings whose only job is their shape. */
static int check_string(struct loader *L, enum ktype t, const struct yt_node *n)
{
	const char *s = n->str;

	switch (t) {
	case K_STR:
		if (!*s)
			return cerr(L, n, "%s: must not be empty", L->path), -1;
		return 0;
	case K_OPTSTR:
		return 0;
	case K_PATH:
		if (!value_is_abs_path(s))
			return cerr(L, n, "%s: '%s' is not an absolute path", L->path, s), -1;
		return 0;
	case K_RELPATH:
		if (!relpath_ok(s))
			return cerr(L, n, "%s: '%s' must be a relative path of letters, digits, '_', '.' and '-'", L->path, s), -1;
		return 0;
	case K_IFNAME:
		if (!ifname_ok(s))
			return cerr(L, n, "%s: '%s' is not an interface name (at most 15 characters)", L->path, s), -1;
		return 0;
	case K_ITEMNAME:
		if (!value_is_item_name(s))
			return cerr(L, n, "%s: '%s' must match [a-z][a-z0-9_-]{0,31}", L->path, s), -1;
		return 0;
	case K_HOSTNAME:
		if (!value_is_hostname(s))
			return cerr(L, n, "%s: '%s' is not a valid host name", L->path, s), -1;
		return 0;
	case K_DOMAIN:
		if (!value_is_domain(s))
			return cerr(L, n, "%s: '%s' is not a domain name (such as example.com or *.example.com)", L->path, s), -1;
		return 0;
	case K_PWHASH:
		if (!pwhash_ok(s))
			return cerr(L, n, "%s: not a crypt(3) hash (expected $id$salt$hash)", L->path), -1;
		return 0;
	default:
		return 0;
	}
}

static int parse_scalar(struct loader *L, const struct ckey *k, const struct yt_node *n, void *base)
{
	char why[WHY_LEN];
	void *dst = at(base, k->off);
	int64_t v = 0;
	int r = 0;

	switch (k->type) {
	case K_SIZE: {
		uint64_t u;
		if (value_size(n->str, &u, why) < 0)
			goto bad;
		if (u > INT64_MAX || check_range(L, k, n, (int64_t)u) < 0)
			return u > INT64_MAX ? (cerr(L, n, "%s: %s is too large", L->path, n->str), -1) : -1;
		*(uint64_t *)dst = u;
		return 0;
	}
	case K_DURATION:
		r = value_duration_ms(n->str, &v, why);
		break;
	case K_CPU:
		r = value_cpu_millis(n->str, &v, why);
		break;
	case K_INT:
		r = value_int(n->str, &v, why);
		break;
	case K_UID:
	case K_WORKERS:
		if (!strcmp(n->str, "auto")) {
			*(int64_t *)dst = k->type == K_UID ? CONFIG_UID_AUTO : 0;
			return 0;
		}
		r = value_int(n->str, &v, why);
		if (r < 0)
			snprintf(why, sizeof why, "'%s' is not an integer or auto", n->str);
		break;
	case K_BOOL:
		if (value_bool(n->str, dst, why) < 0)
			goto bad;
		return 0;
	case K_CIDR:
		if (value_cidr(n->str, dst, why) < 0)
			goto bad;
		return 0;
	case K_IPV4:
		if (value_ipv4(n->str, dst, why) < 0)
			goto bad;
		return 0;
	case K_CIDR6:
		if (value_cidr6(n->str, dst, why) < 0)
			goto bad;
		return 0;
	case K_IPV6:
		if (value_ipv6(n->str, dst, why) < 0)
			goto bad;
		return 0;
	case K_ENDPOINT:
		if (value_endpoint(n->str, dst, why) < 0)
			goto bad;
		return 0;
	case K_APPTYPE: {
			for (size_t i = 0; i < 4; i++)
			if (!strcmp(n->str, config_app_types[i]))
				return *(int64_t *)dst = (int64_t)i, 0;
		cerr(L, n, "%s: '%s' is not an app type (wsgi, psgi, rack or command)", L->path, n->str);
		return -1;
	}
	default:
		if (check_string(L, k->type, n) < 0)
			return -1;
		free(*(char **)dst);
		*(char **)dst = dup_or_err(L, n);
		return *(char **)dst ? 0 : -1;
	}
	if (r < 0)
		goto bad;
	if (check_range(L, k, n, v) < 0)
		return -1;
	*(int64_t *)dst = v;
	return 0;
bad:
	cerr(L, n, "%s: %s", L->path, why);
	return -1;
}

/* ---- lists and maps ---- */

static int grow(void **v, size_t n, size_t elem)
{
	void *p;

	if (n % 8)
		return 0;
	p = realloc(*v, (n + 8) * elem);
	if (!p)
		return -1;
	memset((char *)p + n * elem, 0, 8 * elem);
	*v = p;
	return 0;
}

/* A generic view of every vector type in config.h: a pointer and a count. */
struct anyvec {
	void *v;
	size_t n;
};

static bool is_scalar(struct loader *L, const struct yt_node *n)
{
	if (n->kind == YT_SCALAR) {
		if (strlen(n->str) != n->len) {
			cerr(L, n, "%s: contains a NUL byte", L->path);
			return false;
		}
		return true;
	}
	cerr(L, n, "%s: expected a single value, not a %s", L->path,
	     n->kind == YT_MAP ? "mapping" : "list");
	return false;
}

static int parse_item(struct loader *L, const struct ckey *k, const struct yt_node *n, void *dst)
{
	char why[WHY_LEN];

	switch (k->type) {
	case K_STRLIST:
		if (check_string(L, k->item, n) < 0)
			return -1;
		*(char **)dst = dup_or_err(L, n);
		return *(char **)dst ? 0 : -1;
	case K_ENDPOINTLIST:
		if (value_endpoint(n->str, dst, why) < 0)
			return cerr(L, n, "%s: %s", L->path, why), -1;
		return 0;
	case K_FWLIST:
		if (value_fw_rule(n->str, dst, why) < 0)
			return cerr(L, n, "%s: %s", L->path, why), -1;
		return 0;
	case K_CRONLIST:
		if (value_cron(n->str, dst, why) < 0)
			return cerr(L, n, "%s: %s", L->path, why), -1;
		return 0;
	default:
		return -1;
	}
}

static size_t item_size(enum ktype t)
{
	switch (t) {
	case K_ENDPOINTLIST: return sizeof(struct endpoint);
	case K_FWLIST: return sizeof(struct fw_rule);
	case K_CRONLIST: return sizeof(struct cron_entry);
	default: return sizeof(char *);
	}
}

static int load_section(struct loader *L, const struct csection *sec, const struct yt_node *map,
			void *base);

static int load_list(struct loader *L, const struct ckey *k, const struct yt_node *n, void *base)
{
	struct anyvec *vec = at(base, k->off);
	size_t elem = k->type == K_LIST ? k->sub->size : item_size(k->type);
	int ret = 0;

	if (n->kind != YT_SEQ)
		return cerr(L, n, "%s: expected a list", L->path), -1;
	for (size_t i = 0; i < n->n; i++) {
		const struct yt_node *it = n->items[i];
		size_t old = path_push(L, k->name, (long)i);
		void *slot;

		if (grow(&vec->v, vec->n, elem) < 0) {
			cerr(L, it, "out of memory");
			return -1;
		}
		slot = (char *)vec->v + vec->n * elem;
		if (k->type == K_LIST) {
			vec->n++;
			if (load_section(L, k->sub, it, slot) < 0)
				ret = -1;
		} else if (!is_scalar(L, it) || parse_item(L, k, it, slot) < 0) {
			ret = -1;
		} else {
			vec->n++;
		}
		L->path[old] = 0;
	}
	return ret;
}

static bool env_name_ok(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_') || strlen(s) > 128)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

static int load_env(struct loader *L, const struct ckey *k, const struct yt_node *n, void *base)
{
	struct env_vec *env = at(base, k->off);

	if (n->kind != YT_MAP)
		return cerr(L, n, "%s: expected a mapping of NAME: value", L->path), -1;
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct yt_node *key = n->items[i], *val = n->items[i + 1];

		if (!is_scalar(L, key) || !is_scalar(L, val))
			return -1;
		if (!env_name_ok(key->str))
			return cerr(L, key, "%s: '%s' is not a variable name", L->path, key->str), -1;
		for (size_t j = 0; j < env->n; j++)
			if (!strcmp(env->v[j].name, key->str))
				return cerr(L, key, "duplicate key '%s'", key->str), -1;
		if (val->len > 4096)
			return cerr(L, val, "%s.%s: value is longer than 4096 bytes", L->path, key->str), -1;
		if (grow((void **)&env->v, env->n, sizeof *env->v) < 0)
			return cerr(L, key, "out of memory"), -1;
		env->v[env->n].name = strdup(key->str);
		env->v[env->n].value = strdup(val->str);
		env->n++;
		if (!env->v[env->n - 1].name || !env->v[env->n - 1].value)
			return cerr(L, key, "out of memory"), -1;
	}
	if (env->n > 256)
		return cerr(L, n, "%s: more than 256 variables", L->path), -1;
	return 0;
}

static int load_value(struct loader *L, const struct ckey *k, const struct yt_node *n, void *base)
{
	if (k->set_off)
		*(bool *)at(base, k->set_off - 1) = true;
	if (k->pos_off) {
		int *pos = at(base, k->pos_off - 1);
		pos[0] = n->line;
		pos[1] = n->col;
	}
	switch (k->type) {
	case K_SECTION:
		/* "limits:" with nothing after it still gets the defaults. */
		return load_section(L, k->sub, yt_is_null(n) ? NULL : n, base);
	case K_LIST:
	case K_STRLIST:
	case K_ENDPOINTLIST:
	case K_FWLIST:
	case K_CRONLIST:
		if (yt_is_null(n))
			return 0;
		return load_list(L, k, n, base);
	case K_ENVMAP:
		if (yt_is_null(n))
			return 0;
		return load_env(L, k, n, base);
	default:
		if (!is_scalar(L, n))
			return -1;
		if (yt_is_null(n) && k->type != K_OPTSTR)
			return cerr(L, n, "%s: expected a value", L->path), -1;
		if (yt_is_null(n)) {
			/* "~" and "null" mean empty, not the command "~". */
			struct yt_node empty = *n;
			empty.str = (char *)"";
			empty.len = 0;
			return parse_scalar(L, k, &empty, base);
		}
		return parse_scalar(L, k, n, base);
	}
}

/* Apply the default of a key that the file left out. */
static int apply_default(struct loader *L, const struct ckey *k, void *base)
{
	struct yt_node fake = { .kind = YT_SCALAR, .plain = true };
	char buf[256];

	if (k->type == K_SECTION)
		return load_section(L, k->sub, NULL, base);
	if (!k->def)
		return 0;
	snprintf(buf, sizeof buf, "%s", k->def);
	fake.str = buf;
	fake.len = strlen(buf);
	if (k->type == K_ENDPOINTLIST) {
		struct anyvec *vec = at(base, k->off);
		if (grow(&vec->v, 0, sizeof(struct endpoint)) < 0)
			return -1;
		vec->n = value_endpoint(buf, vec->v, NULL) == 0;
		return 0;
	}
	return parse_scalar(L, k, &fake, base);
}

static const struct ckey *find_key(const struct ckey *keys, const char *name)
{
	for (; keys->name; keys++)
		if (!strcmp(keys->name, name))
			return keys;
	return NULL;
}

static void describe_section(struct loader *L, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", L->path[0] ? " in " : "", L->path);
}

/* Load a mapping described by sec into base (map may be NULL: all defaults). */
static int load_section(struct loader *L, const struct csection *sec, const struct yt_node *map,
			void *base)
{
	const struct yt_node *seen[32] = { 0 };
	char where[180];
	int ret = 0;

	if (map && map->kind != YT_MAP) {
		cerr(L, map, "%s%sexpected a mapping", L->path, L->path[0] ? ": " : "");
		return -1;
	}
	if (map && sec->has_pos) {
		*(int *)at(base, sec->line_off) = map->line;
		*(int *)at(base, sec->col_off) = map->col;
	}
	describe_section(L, where, sizeof where);
	for (size_t i = 0; map && i + 1 < map->n; i += 2) {
		const struct yt_node *key = map->items[i], *val = map->items[i + 1];
		const struct ckey *k;
		size_t idx, old;

		/* A NUL would make "uid\0junk" look up as "uid". */
		if (key->kind != YT_SCALAR || strlen(key->str) != key->len) {
			cerr(L, key, "keys must be plain names%s", where);
			ret = -1;
			continue;
		}
		k = find_key(sec->keys, key->str);
		if (!k) {
			cerr(L, key, "unknown key '%s'%s", key->str, where);
			ret = -1;
			continue;
		}
		idx = (size_t)(k - sec->keys);
		if (seen[idx]) {
			cerr(L, key, "duplicate key '%s'%s (first at line %d)", key->str, where,
			     seen[idx]->line);
			ret = -1;
			continue;
		}
		seen[idx] = key;
		old = path_push(L, k->name, -1);
		if (load_value(L, k, val, base) < 0)
			ret = -1;
		L->path[old] = 0;
	}
	for (const struct ckey *k = sec->keys; k->name; k++) {
		size_t idx = (size_t)(k - sec->keys), old;

		if (seen[idx])
			continue;
		if (k->required) {
			if (map)
				cerr(L, map, "missing required key '%s'%s", k->name, where);
			else
				cerr_at(L, 1, 1, "missing required key '%s'%s", k->name, where);
			ret = -1;
			continue;
		}
		old = path_push(L, k->name, -1);
		if (apply_default(L, k, base) < 0)
			ret = -1;
		L->path[old] = 0;
	}
	return ret;
}

/* ---- freeing ---- */

static void free_section(const struct csection *sec, void *base);

static void free_list(const struct ckey *k, void *base)
{
	struct anyvec *vec = at(base, k->off);

	for (size_t i = 0; i < vec->n; i++) {
		void *item = (char *)vec->v + i * (k->type == K_LIST ? k->sub->size : item_size(k->type));
		if (k->type == K_LIST)
			free_section(k->sub, item);
		else if (k->type == K_STRLIST)
			free(*(char **)item);
		else if (k->type == K_CRONLIST)
			free(((struct cron_entry *)item)->command);
	}
	free(vec->v);
	vec->v = NULL;
	vec->n = 0;
}

static void free_section(const struct csection *sec, void *base)
{
	for (const struct ckey *k = sec->keys; k->name; k++) {
		switch (k->type) {
		case K_SECTION:
			free_section(k->sub, base);
			break;
		case K_LIST: case K_STRLIST: case K_ENDPOINTLIST: case K_FWLIST: case K_CRONLIST:
			free_list(k, base);
			break;
		case K_ENVMAP: {
			struct env_vec *env = at(base, k->off);
			for (size_t i = 0; i < env->n; i++) {
				free(env->v[i].name);
				free(env->v[i].value);
			}
			free(env->v);
			env->v = NULL;
			env->n = 0;
			break;
		}
		case K_STR: case K_OPTSTR: case K_PATH: case K_RELPATH: case K_IFNAME:
		case K_ITEMNAME: case K_HOSTNAME: case K_DOMAIN: case K_PWHASH:
			free(*(char **)at(base, k->off));
			*(char **)at(base, k->off) = NULL;
			break;
		default:
			break;
		}
	}
}

/* ---- files ---- */

int config_read_file(const char *path, size_t max, char **buf, size_t *len)
{
	struct stat st;
	ssize_t r;
	size_t n = 0;
	char *b;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	/* A fifo or a device would block or never end: only regular files. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if ((size_t)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	while (n < (size_t)st.st_size && (r = read(fd, b + n, (size_t)st.st_size - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(b);
			close(fd);
			return -e;
		}
		n += (size_t)r;
	}
	close(fd);
	b[n] = 0;
	*buf = b;
	*len = n;
	return 0;
}

static void errs_init(struct config_errors *errs, const char *file)
{
	memset(errs, 0, sizeof *errs);
	snprintf(errs->file, sizeof errs->file, "%s", file);
}

/* Parse YAML and load it through sec into base. */
static int load_doc(struct loader *L, const struct csection *sec, const char *buf, size_t len,
		    void *base)
{
	struct yt_doc doc;
	char msg[200];
	int line, col, ret;

	if (yt_parse(buf, len, &doc, &line, &col, msg, sizeof msg) < 0) {
		cerr_at(L, line, col, "%s", msg);
		return -1;
	}
	if (doc.root && yt_is_null(doc.root))
		doc.root = NULL;
	if (doc.root && doc.root->kind != YT_MAP) {
		cerr(L, doc.root, "expected a mapping of keys at the top of the file");
		yt_free(&doc);
		return -1;
	}
	ret = load_section(L, sec, doc.root, base);
	yt_free(&doc);
	return ret;
}

/* ---- host file ---- */

static void fw_default(struct fw_rule_vec *v, const struct config_host *h, bool out)
{
	const struct cidr *router = &h->router.address;
	struct cidr net = { router->addr & cidr_mask(router->prefix), router->prefix };
	struct cidr self = { router->addr, 32 }, any = { 0, 0 };
	size_t n = h->router.has_address6 ? 7 : 4;

	v->v = calloc(n, sizeof *v->v);
	if (!v->v)
		return;
	v->n = n;
	/* The rule set of the seed: tenants talk to the router and to the
	 * world, never to each other. */
	v->v[0] = (struct fw_rule){ .action = FW_ALLOW, .src = out ? net : self, .dst = out ? self : net, .family = FW_IPV4 };
	v->v[1] = (struct fw_rule){ .action = FW_DENY, .src = net, .dst = net, .family = FW_IPV4 };
	v->v[2] = (struct fw_rule){ .action = FW_ALLOW, .src = out ? net : any, .dst = out ? any : net, .family = FW_IPV4 };
	/* The same three for IPv6, then one deny for both families. */
	if (h->router.has_address6) {
		struct cidr6 net6 = h->router.address6, self6 = h->router.address6, any6 = { { 0 }, 0 };
		int p = net6.prefix;

		for (int i = 0; i < 16; i++, p -= 8)
			net6.addr[i] &= p >= 8 ? 0xff : p <= 0 ? 0 : (uint8_t)(0xff << (8 - p));
		self6.prefix = 128;
		v->v[3] = (struct fw_rule){ FW_ALLOW, any, any, FW_IPV6, out ? net6 : self6, out ? self6 : net6 };
		v->v[4] = (struct fw_rule){ FW_DENY, any, any, FW_IPV6, net6, net6 };
		v->v[5] = (struct fw_rule){ FW_ALLOW, any, any, FW_IPV6, out ? net6 : any6, out ? any6 : net6 };
	}
	v->v[n - 1] = (struct fw_rule){ .action = FW_DENY, .src = any, .dst = any, .family = FW_ANY };
}

/* The IPv6 subnet's host part of addr is all zeros (the subnet-router
 * anycast address, which no tenant and no router may take). */
static bool host6_is_zero(const struct cidr6 *net, const uint8_t addr[16])
{
	int p = net->prefix;

	for (int i = 0; i < 16; i++, p -= 8) {
		uint8_t hostmask = p >= 8 ? 0 : p <= 0 ? 0xff : (uint8_t)(0xff >> p);
		if (addr[i] & hostmask)
			return false;
	}
	return true;
}

static int host_check(struct loader *L, struct config_host *h)
{
	uint32_t a = h->router.address.addr, m = cidr_mask(h->router.address.prefix);

	int line = h->router.address_line ? h->router.address_line : 1;
	int col = h->router.address_col ? h->router.address_col : 1;

	if (h->router.address.prefix < 8 || h->router.address.prefix > 30) {
		cerr_at(L, line, col, "router.address: prefix /%d must be between /8 and /30", h->router.address.prefix);
		return -1;
	}
	if ((a & ~m) == 0 || (a & ~m) == ~m) {
		cerr_at(L, line, col, "router.address: the router needs a host address, not the network or broadcast address");
		return -1;
	}
	if (h->router.has_address6) {
		const struct cidr6 *a6 = &h->router.address6;
		if (a6->prefix < 64 || a6->prefix > 120) {
			cerr_at(L, h->router.address6_line, h->router.address6_col,
				"router.address6: prefix /%d must be between /64 and /120", a6->prefix);
			return -1;
		}
		if (host6_is_zero(a6, a6->addr) || a6->addr[0] == 0xff || (a6->addr[0] == 0xfe && (a6->addr[1] & 0xc0) == 0x80)) {
			cerr_at(L, h->router.address6_line, h->router.address6_col,
				"router.address6: the router needs a unicast host address, not the subnet, multicast or link-local");
			return -1;
		}
	}
	if (!h->router.firewall.out.n)
		fw_default(&h->router.firewall.out, h, true);
	if (!h->router.firewall.in.n)
		fw_default(&h->router.firewall.in, h, false);
	return 0;
}

struct config_host *config_host_parse(const char *name, const char *buf, size_t len,
				      struct config_errors *errs)
{
	struct loader L = { .errs = errs };
	struct config_host *h = calloc(1, sizeof *h);

	errs_init(errs, name);
	if (!h || !(h->file = strdup(name))) {
		cerr_at(&L, 0, 0, "out of memory");
		config_host_free(h);
		return NULL;
	}
	if (load_doc(&L, &host_section, buf, len, h) < 0 || errs->n || host_check(&L, h) < 0) {
		config_host_free(h);
		return NULL;
	}
	return h;
}

struct config_host *config_host_load(const char *path, struct config_errors *errs)
{
	struct config_host *h;
	char *buf;
	size_t len;
	int r = config_read_file(path, CONFIG_MAX_FILE, &buf, &len);

	if (r < 0) {
		errs_init(errs, path);
		snprintf(errs->e[0].msg, sizeof errs->e[0].msg, "cannot read: %s",
			 r == -EINVAL ? "not a regular file" : strerror(-r));
		errs->n = 1;
		return NULL;
	}
	h = config_host_parse(path, buf, len, errs);
	free(buf);
	return h;
}

int config_router_threads(const struct config_host *h)
{
	long n = h->router.threads ? (long)h->router.threads : sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > CONFIG_ROUTER_MAX_THREADS ? CONFIG_ROUTER_MAX_THREADS : (int)n;
}

void config_host_free(struct config_host *h)
{
	if (!h)
		return;
	free_section(&host_section, h);
	free(h->file);
	free(h);
}

/* ---- tenant file ---- */

int config_tenant_name_from_path(const char *path, char *name, size_t len)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n < 6 || strcmp(base + n - 5, ".yaml") || n - 5 >= len)
		return -1;
	memcpy(name, base, n - 5);
	name[n - 5] = 0;
	return value_is_tenant_name(name) ? 0 : -1;
}

/* Each app type takes exactly one of module, script and command. */
static int check_app(struct loader *L, struct config_tenant *t, size_t i)
{
	struct config_app *a = &t->apps.v[i];
	static const char *const field[] = { "module", "script", "command" };
	static const int needs[] = { 0, 1, 1, 2 };
	const char *have[] = { a->module, a->script, a->command };
	const char *type = config_app_types[a->type];
	int ret = 0;

	if (!have[needs[a->type]]) {
		cerr_at(L, a->line, a->col, "apps[%zu]: type %s needs '%s'", i, type, field[needs[a->type]]);
		ret = -1;
	}
	for (int k = 0; k < 3; k++)
		if (have[k] && k != needs[a->type]) {
			cerr_at(L, a->line, a->col, "apps[%zu]: '%s' does not apply to type %s", i, field[k], type);
			ret = -1;
		}
	if (!a->chdir && asprintf(&a->chdir, "/home/%s", t->name) < 0) {
		a->chdir = NULL;
		ret = -1;
	}
	return ret;
}

/* Names are unique among apps and daemons: they name log files and sockets. */
static int check_names(struct loader *L, struct config_tenant *t)
{
	size_t na = t->apps.n, n = na + t->daemons.n;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		const char *ni = i < na ? t->apps.v[i].name : t->daemons.v[i - na].name;
		int line = i < na ? t->apps.v[i].name_line : t->daemons.v[i - na].name_line;
		int col = i < na ? t->apps.v[i].name_col : t->daemons.v[i - na].name_col;

		if (!ni)
			continue;
		if (!strcmp(ni, "cron")) {
			cerr_at(L, line, col, "%s[%zu].name: 'cron' is reserved", i < na ? "apps" : "daemons", i < na ? i : i - na);
			ret = -1;
		}
		for (size_t j = 0; j < i; j++) {
			const char *nj = j < na ? t->apps.v[j].name : t->daemons.v[j - na].name;
			if (nj && !strcmp(ni, nj)) {
				cerr_at(L, line, col, "%s[%zu].name: duplicate name '%s'",
					i < na ? "apps" : "daemons", i < na ? i : i - na, ni);
				ret = -1;
			}
		}
	}
	return ret;
}

static int check_network6(struct loader *L, struct config_tenant *t, const struct config_host *h)
{
	const struct cidr6 *r = &h->router.address6;
	char addr[48], net[48];

	if (!t->network.has_address6)
		return 0;
	if (!h->router.has_address6) {
		cerr_at(L, t->network.line6, t->network.col6,
			"network.address6: the host file has no router.address6 (IPv6 is off)");
		return -1;
	}
	ipv6_format(t->network.address6, addr, sizeof addr);
	cidr6_format(r, net, sizeof net);
	if (!cidr6_contains(r, t->network.address6)) {
		cerr_at(L, t->network.line6, t->network.col6,
			"network.address6: %s is outside the router subnet %s", addr, net);
		return -1;
	}
	if (!memcmp(t->network.address6, r->addr, 16) || host6_is_zero(r, t->network.address6)) {
		cerr_at(L, t->network.line6, t->network.col6,
			"network.address6: %s is the router or subnet address of %s", addr, net);
		return -1;
	}
	return 0;
}

static int check_network(struct loader *L, struct config_tenant *t, const struct config_host *h)
{
	const struct cidr *r = &h->router.address;
	uint32_t m = cidr_mask(r->prefix), a = t->network.address;
	char addr[16], net[24];

	if (t->network.has_address6 && !t->network.has_address) {
		cerr_at(L, t->network.line6, t->network.col6,
			"network.address6: needs network.address too (IPv4 stays on)");
		return -1;
	}
	if (!t->network.has_address || !h->router.enabled)
		return 0;
	ipv4_format(a, addr, sizeof addr);
	cidr_format(&(struct cidr){ r->addr & m, r->prefix }, net, sizeof net);
	if (!cidr_contains(r, a)) {
		cerr_at(L, t->network.line, t->network.col,
			"network.address: %s is outside the router subnet %s", addr, net);
		return -1;
	}
	if (a == r->addr || (a & ~m) == 0 || (a & ~m) == ~m) {
		cerr_at(L, t->network.line, t->network.col,
			"network.address: %s is the router, network or broadcast address of %s", addr, net);
		return -1;
	}
	return check_network6(L, t, h);
}

static int tenant_check(struct loader *L, struct config_tenant *t, const struct config_host *h)
{
	int ret = 0;

	if (!t->hostname && !(t->hostname = strdup(t->name)))
		return -1;
	for (size_t i = 0; i < t->apps.n; i++)
		if (t->apps.v[i].name && check_app(L, t, i) < 0)
			ret = -1;
	if (check_names(L, t) < 0)
		ret = -1;
	if (h && check_network(L, t, h) < 0)
		ret = -1;
	return ret;
}

struct config_tenant *config_tenant_parse(const char *path, const char *buf, size_t len,
					  const struct config_host *host,
					  struct config_errors *errs)
{
	struct loader L = { .errs = errs };
	struct config_tenant *t = calloc(1, sizeof *t);
	char name[64];

	errs_init(errs, path);
	if (!t || !(t->file = strdup(path))) {
		cerr_at(&L, 0, 0, "out of memory");
		config_tenant_free(t);
		return NULL;
	}
	if (config_tenant_name_from_path(path, name, sizeof name) < 0) {
		cerr_at(&L, 1, 1, "the file name must be NAME.yaml with NAME matching [a-z][a-z0-9-]{0,31}");
		config_tenant_free(t);
		return NULL;
	}
	t->name = strdup(name);
	if (!t->name || load_doc(&L, &tenant_section, buf, len, t) < 0 || errs->n ||
	    tenant_check(&L, t, host) < 0 || errs->n) {
		config_tenant_free(t);
		return NULL;
	}
	return t;
}

struct config_tenant *config_tenant_load(const char *path, const struct config_host *host,
					 struct config_errors *errs)
{
	struct config_tenant *t;
	char *buf;
	size_t len;
	int r = config_read_file(path, CONFIG_MAX_FILE, &buf, &len);

	if (r < 0) {
		errs_init(errs, path);
		snprintf(errs->e[0].msg, sizeof errs->e[0].msg, "cannot read: %s",
			 r == -EINVAL ? "not a regular file" : strerror(-r));
		errs->n = 1;
		return NULL;
	}
	t = config_tenant_parse(path, buf, len, host, errs);
	free(buf);
	return t;
}

void config_tenant_free(struct config_tenant *t)
{
	if (!t)
		return;
	free_section(&tenant_section, t);
	free(t->file);
	free(t->name);
	free(t);
}

bool config_looks_like_host(const char *buf, size_t len)
{
	struct yt_doc doc;
	char msg[64];
	int l, c;
	bool host = false;

	if (yt_parse(buf, len, &doc, &l, &c, msg, sizeof msg) < 0)
		return false;
	for (size_t i = 0; doc.root && doc.root->kind == YT_MAP && i + 1 < doc.root->n; i += 2) {
		const struct yt_node *k = doc.root->items[i];
		if (k->kind == YT_SCALAR && find_key(host_keys, k->str) &&
		    !find_key(tenant_keys, k->str))
			host = true;
	}
	yt_free(&doc);
	return host;
}

/* ---- reference ---- */

static const char *type_name(const struct ckey *k)
{
	switch (k->type) {
	case K_STR: return "string";
	case K_OPTSTR: return "string (may be empty)";
	case K_PATH: return "absolute path";
	case K_RELPATH: return "relative path";
	case K_IFNAME: return "interface name";
	case K_ITEMNAME: return "name";
	case K_HOSTNAME: return "host name";
	case K_DOMAIN: return "domain name";
	case K_SIZE: return "size (K, M, G, T)";
	case K_DURATION: return "duration (ms, s, m, h, d)";
	case K_INT: return "integer";
	case K_BOOL: return "boolean";
	case K_CPU: return "cores (decimal)";
	case K_UID: return "uid or auto";
	case K_WORKERS: return "integer or auto";
	case K_CIDR: return "IPv4 address/prefix";
	case K_IPV4: return "IPv4 address";
	case K_CIDR6: return "IPv6 address/prefix";
	case K_IPV6: return "IPv6 address";
	case K_ENDPOINT: return "address:port";
	case K_APPTYPE: return "wsgi, psgi, rack or command";
	case K_PWHASH: return "crypt(3) hash";
	case K_SECTION: return "mapping";
	case K_LIST: return "list of mappings";
	case K_STRLIST: return k->item == K_DOMAIN ? "list of domain names" : "list of strings";
	case K_ENDPOINTLIST: return "list of address:port";
	case K_FWLIST: return "list of allow|deny [SRC [DST]]";
	case K_CRONLIST: return "list of cron lines";
	case K_ENVMAP: return "mapping of NAME: value";
	}
	return "?";
}

static void schema_section(FILE *out, const struct csection *sec, const char *prefix)
{
	for (const struct ckey *k = sec->keys; k->name; k++) {
		char name[128], lo[32] = "", hi[32] = "", range[80] = "";

		snprintf(name, sizeof name, "%s%s", prefix, k->name);
		if (k->min || k->max) {
			fmt_bound(k->type, k->min, lo, sizeof lo);
			fmt_bound(k->type, k->max, hi, sizeof hi);
			snprintf(range, sizeof range, " (%s to %s)", lo, hi);
		}
		fprintf(out, "| `%s` | %s%s | %s%s%s%s | %s |\n", name, type_name(k), range,
			k->required ? "**required**" : "", k->def ? "`" : "", k->def ? k->def : "",
			k->def ? "`" : "", k->doc);
		if (k->sub) {
			char sub[160];
			snprintf(sub, sizeof sub, "%s%s", name, k->type == K_LIST ? "[]." : ".");
			schema_section(out, k->sub, sub);
		}
	}
}

void config_schema_markdown(FILE *out)
{
	fprintf(out, "### Host file\n\n| key | type | default | meaning |\n|---|---|---|---|\n");
	schema_section(out, &host_section, "");
	fprintf(out, "\n### Tenant file\n\n| key | type | default | meaning |\n|---|---|---|---|\n");
	schema_section(out, &tenant_section, "");
}
