/* fiefctl: the operator CLI. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "log.h"
#include "records.h"

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
	fprintf(out, "usage: fiefctl [-c HOSTFILE] [--json] COMMAND [ARGS...] [--json]\n\ncommands:\n");
	for (const struct ctl_command *c = ctl_commands; c->name; c++)
		fprintf(out, "  %-8s %s\n", c->name, c->summary);
	fprintf(out, "\n'fiefctl COMMAND --help' describes each command.\n"
		"\n--json, before or after the command: JSON on stdout, for scripts.\n"
		"\nexit status: 0 done, 1 failed (invalid, refused, not found), 2 bad\n"
		"command line, 3 a daemon is not running; with --json a failure is\n"
		"also one object {\"ok\":false,\"code\":N,\"error\":\"...\"} on stdout.\n");
}

static const char schema_usage[] =
	"usage: fiefctl [--json] schema\n"
	"\n"
	"Print every key of the host and tenant files as Markdown tables (the\n"
	"reference in docs/config-reference.md). With --json, the same rows as\n"
	"{\"host\": [{\"key\", \"type\", \"default\", \"required\", \"meaning\"}], \"tenant\": [...]}.\n";

/* One Markdown cell: trimmed, one pair of backticks taken off. */
static void schema_cell(char *c, char **out)
{
	size_t n;

	while (*c == ' ')
		c++;
	n = strlen(c);
	while (n && c[n - 1] == ' ')
		c[--n] = 0;
	if (n >= 2 && c[0] == '`' && c[n - 1] == '`') {
		c[n - 1] = 0;
		c++;
	}
	*out = c;
}

/* The Markdown of config_schema_markdown, as JSON: the table rows are the
 * single source, so the two cannot disagree. */
static int schema_json(struct ctl *ctl)
{
	char *md = NULL, *save = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&md, &len);
	bool first = true, any = false;

	if (!f)
		return ctl_fail(ctl, CTL_EXIT_FAIL, "out of memory");
	config_schema_markdown(f);
	if (fclose(f) != 0)
		return free(md), ctl_fail(ctl, CTL_EXIT_FAIL, "out of memory");
	putchar('{');
	for (char *l = strtok_r(md, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *cell[4], *p = l + 1, *bar;
		int n = 0;

		if (!strncmp(l, "### ", 4)) {
			printf("%s\"%s\":[", any ? "]," : "", strstr(l, "Host") ? "host" : "tenant");
			first = true;
			any = true;
			continue;
		}
		if (strncmp(l, "| ", 2) || !strncmp(l, "| key ", 6))
			continue;
		/* "| a | b | c | d |": the meaning is the rest, bars included */
		while (n < 3 && (bar = strstr(p, " | "))) {
			*bar = 0;
			schema_cell(p, &cell[n++]);
			p = bar + 3;
		}
		if (n < 3)
			continue;
		if (strlen(p) >= 2 && !strcmp(p + strlen(p) - 2, " |"))
			p[strlen(p) - 2] = 0;
		schema_cell(p, &cell[3]);
		printf("%s{\"key\":", first ? "" : ",");
		json_string(stdout, cell[0]);
		fputs(",\"type\":", stdout);
		json_string(stdout, cell[1]);
		fputs(",\"default\":", stdout);
		if (!strcmp(cell[2], "**required**") || !cell[2][0])
			fputs("null", stdout);
		else
			json_string(stdout, cell[2]);
		printf(",\"required\":%s,\"meaning\":", strcmp(cell[2], "**required**") ? "false" : "true");
		json_string(stdout, cell[3]);
		putchar('}');
		first = false;
	}
	puts(any ? "]}" : "}");
	free(md);
	return 0;
}

int ctl_schema(struct ctl *ctl, int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return fputs(schema_usage, stdout), 0;
	if (argc > 1)
		return ctl_usage_error(ctl, schema_usage);
	if (ctl->json)
		return schema_json(ctl);
	config_schema_markdown(stdout);
	return 0;
}

/* --json may follow the command too: take it out of the command's
 * arguments (up to a "--", after which words are a command's for enter). */
static int take_json(char **argv, int argc, bool *json)
{
	int o = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[o++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--json"))
			*json = true;
		else
			argv[o++] = argv[i];
	}
	argv[o] = NULL;
	return o;
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
	char **sub;
	int c, n;

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
		return ctl.json ? ctl_fail(&ctl, CTL_EXIT_USAGE, "no command") : CTL_EXIT_USAGE;
	}
	sub = argv + optind;
	n = take_json(sub, argc - optind, &ctl.json);
	for (const struct ctl_command *cmd = ctl_commands; cmd->name; cmd++)
		if (!strcmp(cmd->name, sub[0])) {
			optind = 0;      /* each command parses its own options (0: a full getopt reset) */
			return cmd->run(&ctl, n, sub);
		}
	ctl_usage(stderr);
	return ctl_fail(&ctl, CTL_EXIT_USAGE, "unknown command '%s'", argv[optind]);
}
