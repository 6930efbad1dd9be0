/* fiefctl check: validate host and tenant files. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "records.h"

static const char check_usage[] =
	"usage: fiefctl [--json] check [--host] [-q] FILE...\n"
	"\n"
	"Validate host and tenant files. A file is taken as a host file with\n"
	"--host or when its keys say so; tenant files are checked against the\n"
	"host file given among FILEs, or the one of -c, when it can be read.\n"
	"Prints every error as FILE:LINE:COL: message. Exit 0 when all files\n"
	"are valid, 1 otherwise, 2 on a bad command line.\n"
	"\n"
	"--json: {\"ok\": bool, \"files\": [{\"file\", \"ok\", \"kind\": \"host\"|\"tenant\",\n"
	"\"tenant\"}], \"errors\": [{\"file\", \"line\", \"col\", \"message\"}]}; line and\n"
	"col are null when an error is not tied to a place in the file.\n";

/* --json: the results are kept until every file was read. */
struct check_out {
	FILE *files, *errors;
	char *files_buf, *errors_buf;
	size_t files_len, errors_len;
	int n_files, n_errors;
};

static void check_json_error(struct check_out *o, const char *file, int line, int col, const char *msg)
{
	if (!o->errors)
		return;
	fprintf(o->errors, "%s{\"file\":", o->n_errors++ ? "," : "");
	json_string(o->errors, file);
	if (line > 0)
		fprintf(o->errors, ",\"line\":%d,\"col\":%d,\"message\":", line, col);
	else
		fputs(",\"line\":null,\"col\":null,\"message\":", o->errors);
	json_string(o->errors, msg);
	putc('}', o->errors);
}

static void check_json_file(struct check_out *o, const char *file, bool ok, const char *kind, const char *tenant)
{
	if (!o->files)
		return;
	fprintf(o->files, "%s{\"file\":", o->n_files++ ? "," : "");
	json_string(o->files, file);
	fprintf(o->files, ",\"ok\":%s,\"kind\":", ok ? "true" : "false");
	if (kind)
		json_string(o->files, kind);
	else
		fputs("null", o->files);
	fputs(",\"tenant\":", o->files);
	if (tenant)
		json_string(o->files, tenant);
	else
		fputs("null", o->files);
	putc('}', o->files);
}

static void check_errors(struct check_out *o, const char *path, const struct config_errors *errs)
{
	config_errors_print(errs, stderr);
	for (size_t i = 0; i < errs->n; i++)
		check_json_error(o, errs->file[0] ? errs->file : path, errs->e[i].line, errs->e[i].col, errs->e[i].msg);
	if (errs->truncated)
		check_json_error(o, path, 0, 0, "more errors not shown");
}

static int check_one(struct check_out *o, const char *path, bool force_host, bool quiet, struct config_host **host)
{
	struct config_errors errs;
	char *buf, tname[64];
	size_t len;
	int r = config_read_file(path, CONFIG_MAX_FILE, &buf, &len);
	bool json = o->files != NULL;

	if (r < 0) {
		char msg[300];
		snprintf(msg, sizeof msg, "cannot read: %s", r == -EINVAL ? "not a regular file" : strerror(-r));
		fprintf(stderr, "%s: %s\n", path, msg);
		check_json_error(o, path, 0, 0, msg);
		check_json_file(o, path, false, NULL, NULL);
		return -1;
	}
	if (force_host || config_looks_like_host(buf, len)) {
		struct config_host *h = config_host_parse(path, buf, len, &errs);
		free(buf);
		check_json_file(o, path, h != NULL, "host", NULL);
		if (!h)
			return check_errors(o, path, &errs), -1;
		config_host_free(*host);
		*host = h;
		if (!quiet && !json)
			printf("%s: ok (host file)\n", path);
		return 0;
	}
	struct config_tenant *t = config_tenant_parse(path, buf, len, *host, &errs);
	free(buf);
	if (!t) {
		bool named = config_tenant_name_from_path(path, tname, sizeof tname) == 0;
		check_json_file(o, path, false, "tenant", named ? tname : NULL);
		return check_errors(o, path, &errs), -1;
	}
	check_json_file(o, path, true, "tenant", t->name);
	if (!quiet && !json)
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
	struct check_out o = { 0 };
	bool force_host = false, quiet = false;
	int c, bad = 0;

	while ((c = getopt_long(argc, argv, "+Hqh", opts, NULL)) != -1) {
		switch (c) {
		case 'H': force_host = true; break;
		case 'q': quiet = true; break;
		case 'h': fputs(check_usage, stdout); return 0;
		default: return ctl_usage_error(ctl, check_usage);
		}
	}
	if (optind == argc)
		return ctl_usage_error(ctl, check_usage);
	if (ctl->json) {
		o.files = open_memstream(&o.files_buf, &o.files_len);
		o.errors = open_memstream(&o.errors_buf, &o.errors_len);
		if (!o.files || !o.errors)
			return ctl_fail(ctl, CTL_EXIT_FAIL, "out of memory");
	}
	/* The host file of -c gives the subnet for tenant checks, when it exists. */
	if (!force_host && ctl->host_path_given)
		host = config_host_load(ctl->host_path, &errs);
	for (int i = optind; i < argc; i++)
		if (check_one(&o, argv[i], force_host, quiet, &host) < 0)
			bad++;
	config_host_free(host);
	if (ctl->json) {
		fclose(o.files);
		fclose(o.errors);
		printf("{\"ok\":%s,\"files\":[%s],\"errors\":[%s]}\n", bad ? "false" : "true",
		       o.files_buf ? o.files_buf : "", o.errors_buf ? o.errors_buf : "");
		free(o.files_buf);
		free(o.errors_buf);
	}
	return bad ? 1 : 0;
}
