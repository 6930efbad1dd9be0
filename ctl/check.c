/* fiefctl check: validate host and tenant files. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"

static const char check_usage[] =
	"usage: fiefctl check [--host] [-q] FILE...\n"
	"\n"
	"Validate host and tenant files. A file is taken as a host file with\n"
	"--host or when its keys say so; tenant files are checked against the\n"
	"host file given among FILEs, or the one of -c, when it can be read.\n"
	"Prints every error as FILE:LINE:COL: message. Exit 0 when all files\n"
	"are valid, 1 otherwise.\n";

static int check_one(const char *path, bool force_host, bool quiet, struct config_host **host)
{
	struct config_errors errs;
	char *buf;
	size_t len;
	int r = config_read_file(path, CONFIG_MAX_FILE, &buf, &len);

	if (r < 0) {
		fprintf(stderr, "%s: cannot read: %s\n", path,
			r == -EINVAL ? "not a regular file" : strerror(-r));
		return -1;
	}
	if (force_host || config_looks_like_host(buf, len)) {
		struct config_host *h = config_host_parse(path, buf, len, &errs);
		free(buf);
		if (!h)
			return config_errors_print(&errs, stderr), -1;
		config_host_free(*host);
		*host = h;
		if (!quiet)
			printf("%s: ok (host file)\n", path);
		return 0;
	}
	struct config_tenant *t = config_tenant_parse(path, buf, len, *host, &errs);
	free(buf);
	if (!t)
		return config_errors_print(&errs, stderr), -1;
	if (!quiet)
		printf("%s: ok (tenant %s)\n", path, t->name);
	config_tenant_free(t);
	return 0;
}

int ctl_check(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", no_argument, NULL, 'H' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config_host *host = NULL;
	struct config_errors errs;
	bool force_host = false, quiet = false;
	int c, bad = 0;

	while ((c = getopt_long(argc, argv, "+Hqh", opts, NULL)) != -1) {
		switch (c) {
		case 'H': force_host = true; break;
		case 'q': quiet = true; break;
		case 'h': fputs(check_usage, stdout); return 0;
		default: fputs(check_usage, stderr); return CTL_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		fputs(check_usage, stderr);
		return CTL_EXIT_USAGE;
	}
	/* The host file of -c gives the subnet for tenant checks, when it exists. */
	if (!force_host && ctl->host_path_given)
		host = config_host_load(ctl->host_path, &errs);
	for (int i = optind; i < argc; i++)
		if (check_one(argv[i], force_host, quiet, &host) < 0)
			bad++;
	config_host_free(host);
	return bad ? 1 : 0;
}
