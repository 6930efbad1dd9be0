/* fiefctl: the operator CLI. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "log.h"

struct ctl_command {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
	const char *summary;
};

static const struct ctl_command ctl_commands[] = {
	{ "check", ctl_check, "validate host and tenant files" },
	{ "list", ctl_launcher, "tenants with state, uptime, restarts and usage" },
	{ "status", ctl_launcher, "details of one tenant" },
	{ "stop", ctl_launcher, "stop a tenant (it stays stopped)" },
	{ "start", ctl_launcher, "start a stopped or failed tenant" },
	{ "reload", ctl_launcher, "re-read a tenant's file and restart it" },
	{ "enter", ctl_enter, "run a shell or a command inside a tenant" },
	{ "stats", ctl_stats, "network counters per tenant from fief-router" },
	{ "logs", ctl_logs, "print or follow a tenant's app, daemon and cron logs" },
	{ "new", ctl_new, "write a new tenant file (the control panel's job)" },
	{ "schema", ctl_schema, "print the reference of every configuration key (Markdown)" },
	{ NULL, NULL, NULL },
};

static void ctl_usage(FILE *out)
{
	fprintf(out, "usage: fiefctl [-c HOSTFILE] [--json] COMMAND [ARGS...]\n\ncommands:\n");
	for (const struct ctl_command *c = ctl_commands; c->name; c++)
		fprintf(out, "  %-8s %s\n", c->name, c->summary);
	fprintf(out, "\n'fiefctl COMMAND --help' describes each command.\n");
}

int ctl_schema(struct ctl *ctl, int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		puts("usage: fiefctl schema\n\nPrint every key of the host and tenant files as Markdown tables.");
		return 0;
	}
	config_schema_markdown(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { .host_path = "/etc/fief/fief.yaml" };
	int c;

	log_init("fiefctl", 0);
	while ((c = getopt_long(argc, argv, "+c:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': ctl.host_path = optarg; ctl.host_path_given = true; break;
		case 'j': ctl.json = true; break;
		case 'h': ctl_usage(stdout); return 0;
		default: ctl_usage(stderr); return CTL_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	for (const struct ctl_command *cmd = ctl_commands; cmd->name; cmd++)
		if (!strcmp(cmd->name, argv[optind])) {
			char **sub = argv + optind;
			optind = 0;      /* each command parses its own options (0: a full getopt reset) */
			return cmd->run(&ctl, argc - (int)(sub - argv), sub);
		}
	fprintf(stderr, "fiefctl: unknown command '%s'\n", argv[optind]);
	ctl_usage(stderr);
	return CTL_EXIT_USAGE;
}
