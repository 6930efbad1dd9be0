/* config: the host file and tenant files of DESIGN.md as typed structs.
 *
 * One schema table (config.c) describes every key: its type, where it
 * lands, its default and its bounds. Loading, defaults, `fiefctl check`
 * and the reference in docs/ all walk that table. */
#ifndef FIEF_CONFIG_H
#define FIEF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "value.h"

#define CONFIG_MAX_ERRORS 16
#define CONFIG_MAX_FILE (1024 * 1024)   /* bytes of YAML we read at most */
#define CONFIG_ROUTER_MAX_THREADS 16     /* router.threads, and the queues of every tun */

/* Every problem found in a file, each already "FILE:LINE:COL: message". */
struct config_error {
	int line, col;                   /* 1-based; 0 when not tied to a node */
	char msg[256];                   /* the message alone */
};

struct config_errors {
	struct config_error e[CONFIG_MAX_ERRORS];
	size_t n;
	bool truncated;
	char file[512];
};

/* Format error i as "FILE:LINE:COL: message" (or "FILE: message"). */
void config_error_format(const struct config_errors *errs, size_t i, char *buf, size_t len);
void config_errors_print(const struct config_errors *errs, FILE *out);

struct string_vec {
	char **v;
	size_t n;
};

struct env_var {
	char *name, *value;
};

struct env_vec {
	struct env_var *v;
	size_t n;
};

struct endpoint_vec {
	struct endpoint *v;
	size_t n;
};

struct fw_rule_vec {
	struct fw_rule *v;
	size_t n;
};

struct cron_vec {
	struct cron_entry *v;
	size_t n;
};

struct config_host {
	char *file;
	char *state_dir, *tenants_dir, *distros_dir, *homes_dir, *log_dir;
	char *cgroup_parent;             /* relative to the launcher's own cgroup */
	char *opt_dir;                   /* optional /opt for every tenant, or NULL */
	struct {
		int64_t start_concurrency; /* tenants starting at once; 0 = auto */
	} launcher;
	struct {
		struct endpoint_vec listen;
		char *host_keys_dir;
		int64_t workers;         /* 0 = auto (one per core) */
		int64_t login_grace_ms;
		int64_t max_auth_tries;
		int64_t max_unauthenticated;
		char *user;              /* system user the gateway drops to */
	} gateway;
	struct {
		bool enabled;
		char *device;
		int64_t threads;         /* 0 = auto (one per core, at most CONFIG_ROUTER_MAX_THREADS) */
		bool io_uring;           /* batch reads and writes through io_uring when available */
		struct cidr address;     /* the router's own address and the tenant subnet */
		int address_line, address_col; /* where it was written (1:1 for the default) */
		bool has_address6;
		struct cidr6 address6;   /* optional: the router's IPv6 address and the tenant IPv6 subnet */
		int address6_line, address6_col;
		struct {
			bool enabled;
			char *out_interface;
		} nat;
		struct {
			struct fw_rule_vec out, in;
		} firewall;
	} router;
	struct {
		char *nginx_map;
		char *reload_command;
	} http;
	struct {
		struct endpoint listen;
		bool enabled;
	} metrics;
};

enum app_type { APP_WSGI, APP_PSGI, APP_RACK, APP_COMMAND };
extern const char *const config_app_types[4];   /* indexed by enum app_type */

struct config_app {
	char *name;
	int64_t type;                    /* enum app_type */
	char *module;                    /* wsgi: "pkg.mod:callable" */
	char *script;                    /* psgi: app.psgi, rack: config.ru */
	char *command;                   /* command: the server to run */
	char *chdir;
	struct string_vec domains;
	int64_t workers;
	bool lazy_apps;
	int line, col;                   /* where the entry starts, for errors */
	int name_line, name_col;
	int domains_line, domains_col;
};

struct config_daemon {
	char *name;
	char *command;
	int line, col;
	int name_line, name_col;
};

struct app_vec {
	struct config_app *v;
	size_t n;
};

struct daemon_vec {
	struct config_daemon *v;
	size_t n;
};

#define CONFIG_UID_AUTO (-1)

struct config_tenant {
	char *file;
	char *name;                      /* the file's stem */
	int64_t uid;                     /* CONFIG_UID_AUTO when "auto" */
	char *distro;
	char *hostname;
	struct {
		uint64_t memory, tmp;
		int64_t cpu_millis;      /* thousandths of a core */
		int64_t pids;
	} limits;
	struct {
		struct string_vec authorized_keys;
		char *shell;
		char *password_hash;     /* crypt(3), NULL = no password login */
		struct string_vec accept_env;
	} ssh;
	struct {
		bool has_address;
		uint32_t address;        /* host byte order */
		bool has_address6;
		uint8_t address6[16];    /* network byte order; only with has_address */
		int line6, col6;
		uint64_t rate_limit;     /* bytes per second, 0 = none */
		int line, col;
	} network;
	struct env_vec env;
	struct app_vec apps;
	struct daemon_vec daemons;
	struct cron_vec cron;
};

/* Load a host file. Returns NULL and fills errs on any error. */
struct config_host *config_host_load(const char *path, struct config_errors *errs);
/* Load from memory; `name` is used in error messages. */
struct config_host *config_host_parse(const char *name, const char *buf, size_t len,
				      struct config_errors *errs);
void config_host_free(struct config_host *h);
/* router.threads resolved: the number, or for auto the online CPUs
 * (at most CONFIG_ROUTER_MAX_THREADS). Also the number of queues of every
 * tenant's eth0 and of the host tun: launcher and router agree on it by
 * reading the same host file. */
int config_router_threads(const struct config_host *h);

/* Load a tenant file; its name is the file's stem. `host` (may be NULL)
 * enables the checks that need the host file (address inside the subnet). */
struct config_tenant *config_tenant_load(const char *path, const struct config_host *host,
					 struct config_errors *errs);
struct config_tenant *config_tenant_parse(const char *path, const char *buf, size_t len,
					  const struct config_host *host,
					  struct config_errors *errs);
void config_tenant_free(struct config_tenant *t);

/* The tenant name a file path stands for ("…/alice.yaml" -> "alice"),
 * or -1 when the stem is not a safe name. */
int config_tenant_name_from_path(const char *path, char *name, size_t len);

/* Does this YAML text look like a host file (top-level state_dir etc.)? */
bool config_looks_like_host(const char *buf, size_t len);

/* Write the schema (every key, type, default, bounds, doc) as Markdown. */
void config_schema_markdown(FILE *out);

/* Read a whole regular file (no fifos or devices), at most `max` bytes. */
int config_read_file(const char *path, size_t max, char **buf, size_t *len);

#endif
