/* libFuzzer target: bytes as a host file and as a tenant file.
 *
 * Besides "no crash, no leak, no UB", it checks what the loader promises:
 * NULL comes with at least one error, success with none, every error has
 * a message and a sane position, and a loaded tenant is internally valid
 * (names, domains, address inside the host's subnet). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "value.h"

/* Tenants are checked against one of these, picked by the input size. */
static struct config_host *hosts[3];

static struct config_host *host_of(const char *yaml)
{
	struct config_errors errs;
	struct config_host *h = config_host_parse("fuzz-host.yaml", yaml, strlen(yaml), &errs);

	if (!h) {
		config_errors_print(&errs, stderr);
		abort();
	}
	return h;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	hosts[0] = host_of("router: { address: 10.200.0.1/16 }\n");
	hosts[1] = host_of("router: { address: 192.168.5.1/30 }\n");
	hosts[2] = host_of("router: { enabled: false }\n");
	return 0;
}

static void check_errors(const struct config_errors *errs, bool ok, size_t size)
{
	char line[1024];
	FILE *null;

	if (ok != (errs->n == 0) || errs->n > CONFIG_MAX_ERRORS || (errs->truncated && errs->n != CONFIG_MAX_ERRORS))
		abort();
	for (size_t i = 0; i < errs->n; i++) {
		const struct config_error *e = &errs->e[i];
		if (!e->msg[0] || e->line < 0 || e->col < 0 || (e->line > 0 && e->col < 1) ||
		    (size_t)e->line > size + 1)
			abort();
		config_error_format(errs, i, line, sizeof line);
		if (strncmp(line, errs->file, strlen(errs->file)))
			abort();
	}
	null = fopen("/dev/null", "w");
	if (null) {
		config_errors_print(errs, null);
		fclose(null);
	}
}

static void check_tenant(const struct config_tenant *t, const struct config_host *h)
{
	if (!value_is_tenant_name(t->name) || !t->hostname || !value_is_hostname(t->hostname))
		abort();
	if (t->uid != CONFIG_UID_AUTO && (t->uid < 1000 || t->uid > 4294967294LL))
		abort();
	if (t->limits.memory < (16ULL << 20) || t->limits.cpu_millis < 10 || t->limits.pids < 8)
		abort();
	for (size_t i = 0; i < t->apps.n; i++) {
		const struct config_app *a = &t->apps.v[i];
		if (!value_is_item_name(a->name) || !a->chdir || a->type < 0 || a->type > APP_COMMAND ||
		    a->workers < 1 || a->workers > 64)
			abort();
		if (!strcmp(a->name, "cron"))
			abort();
		for (size_t j = 0; j < a->domains.n; j++)
			if (!value_is_domain(a->domains.v[j]))
				abort();
		for (size_t j = 0; j < i; j++)
			if (!strcmp(a->name, t->apps.v[j].name))
				abort();
	}
	for (size_t i = 0; i < t->daemons.n; i++)
		if (!value_is_item_name(t->daemons.v[i].name) || !t->daemons.v[i].command[0])
			abort();
	for (size_t i = 0; i < t->cron.n; i++)
		if (!t->cron.v[i].command || !t->cron.v[i].command[0] || t->cron.v[i].wday > 0x7f)
			abort();
	if (t->network.has_address && h->router.enabled &&
	    (!cidr_contains(&h->router.address, t->network.address) ||
	     t->network.address == h->router.address.addr))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	const struct config_host *host = hosts[size % 3];
	struct config_errors errs;
	struct config_host *h;
	struct config_tenant *t;

	if (size > CONFIG_MAX_FILE)
		return 0;
	h = config_host_parse("fuzz/fief.yaml", buf, size, &errs);
	check_errors(&errs, h != NULL, size);
	if (h && (h->router.address.prefix < 8 || h->router.address.prefix > 30 ||
		  !h->router.firewall.out.n || !h->router.firewall.in.n || !h->gateway.user))
		abort();
	config_host_free(h);

	t = config_tenant_parse("fuzz/tenants.d/fuzz.yaml", buf, size, host, &errs);
	check_errors(&errs, t != NULL, size);
	if (t)
		check_tenant(t, host);
	config_tenant_free(t);

	(void)config_looks_like_host(buf, size);
	return 0;
}
