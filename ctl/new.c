/* fiefctl new: write a tenant file, the way a control panel would.
 *
 * The file is composed from the options, validated with the same loader
 * the launcher uses (against the host file), and only then moved into
 * tenants_dir with a rename, so the launcher never sees half a file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "fsutil.h"
#include "records.h"

static const char new_usage[] =
	"usage: fiefctl new NAME --key FILE [--key FILE...] [--uid UID|auto] [--distro D]\n"
	"                   [--memory SIZE] [--cpu CORES] [--pids N] [--tmp SIZE]\n"
	"                   [--address IPV4] [--shell PATH] [--stdout] [--force]\n"
	"\n"
	"Write tenants_dir/NAME.yaml for a new tenant. Each --key FILE adds the\n"
	"public keys of an OpenSSH public key file. The file is checked like\n"
	"`fiefctl check` before it is written; an existing tenant file is kept\n"
	"unless --force. --stdout prints the file instead of writing it.\n"
	"Prints the path written.\n"
	"\n"
	"--json: {\"ok\": true, \"tenant\", \"path\", \"written\": bool, \"replaced\": bool,\n"
	"\"uid\", \"distro\", \"memory\", \"cpu\", \"pids\", \"tmp\", \"address\", \"shell\",\n"
	"\"keys\": N, \"text\": the file}; with --stdout, written is false.\n"
	"\n"
	"Exit 0, 1 when the options make an invalid file or the file exists,\n"
	"2 on a bad command line.\n";

struct new_opts {
	const char *uid, *distro, *memory, *cpu, *pids, *tmp, *address, *shell;
	const char *keys[16];
	int n_keys;
	bool to_stdout, force;
};

static char new_key_error[600];      /* why a --key file was refused */

/* Append the key lines of one public key file, each as a quoted item. */
static int new_add_keys(FILE *out, const char *path)
{
	char *buf, *save = NULL;
	size_t len;
	int r = config_read_file(path, 64 * 1024, &buf, &len), n = 0;

	if (r < 0) {
		snprintf(new_key_error, sizeof new_key_error, "%s: %s", path, strerror(-r));
		fprintf(stderr, "fiefctl: %s\n", new_key_error);
		return -1;
	}
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		size_t ll = strlen(l);
		while (ll && (l[ll - 1] == '\r' || l[ll - 1] == ' '))
			l[--ll] = 0;
		if (!ll || l[0] == '#')
			continue;
		if (strchr(l, '\'') || !strchr(l, ' ')) {
			snprintf(new_key_error, sizeof new_key_error, "%s: not an OpenSSH public key line", path);
			fprintf(stderr, "fiefctl: %s\n", new_key_error);
			free(buf);
			return -1;
		}
		fprintf(out, "    - '%s'\n", l);
		n++;
	}
	free(buf);
	if (!n) {
		snprintf(new_key_error, sizeof new_key_error, "%s: no public key in it", path);
		fprintf(stderr, "fiefctl: %s\n", new_key_error);
	}
	return n ? 0 : -1;
}

static char *new_compose(const char *name, const struct new_opts *o, size_t *len)
{
	char *text = NULL;
	FILE *out = open_memstream(&text, len);

	if (!out)
		return NULL;
	fprintf(out, "# Tenant %s, written by fiefctl new.\n", name);
	fprintf(out, "uid: %s\n", o->uid ? o->uid : "auto");
	fprintf(out, "distro: %s\n", o->distro ? o->distro : "bookworm");
	fprintf(out, "hostname: %s\n", name);
	fprintf(out, "limits: { memory: %s, cpu: %s, pids: %s, tmp: %s }\n",
		o->memory ? o->memory : "512M", o->cpu ? o->cpu : "1", o->pids ? o->pids : "512",
		o->tmp ? o->tmp : "64M");
	fprintf(out, "ssh:\n  shell: %s\n  authorized_keys:\n", o->shell ? o->shell : "/bin/bash");
	for (int i = 0; i < o->n_keys; i++)
		if (new_add_keys(out, o->keys[i]) < 0) {
			fclose(out);
			free(text);
			return NULL;
		}
	if (o->address)
		fprintf(out, "network: { address: %s }\n", o->address);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static int new_parse(struct ctl *ctl, int argc, char **argv, struct new_opts *o)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' }, { "uid", required_argument, NULL, 'u' },
		{ "distro", required_argument, NULL, 'd' }, { "memory", required_argument, NULL, 'm' },
		{ "cpu", required_argument, NULL, 'c' }, { "pids", required_argument, NULL, 'p' },
		{ "tmp", required_argument, NULL, 't' }, { "address", required_argument, NULL, 'a' },
		{ "shell", required_argument, NULL, 's' }, { "stdout", no_argument, NULL, 'o' },
		{ "force", no_argument, NULL, 'f' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "k:u:d:m:c:p:t:a:s:ofh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (o->n_keys == 16)
				return ctl_fail(ctl, CTL_EXIT_USAGE, "at most 16 --key files");
			o->keys[o->n_keys++] = optarg;
			break;
		case 'u': o->uid = optarg; break;
		case 'd': o->distro = optarg; break;
		case 'm': o->memory = optarg; break;
		case 'c': o->cpu = optarg; break;
		case 'p': o->pids = optarg; break;
		case 't': o->tmp = optarg; break;
		case 'a': o->address = optarg; break;
		case 's': o->shell = optarg; break;
		case 'o': o->to_stdout = true; break;
		case 'f': o->force = true; break;
		case 'h': fputs(new_usage, stdout); return -1;
		default: return ctl_usage_error(ctl, new_usage);
		}
	}
	if (optind != argc - 1 || !o->n_keys)
		return ctl_usage_error(ctl, new_usage);
	return 0;
}

static void new_json_field(const char *key, const char *val)
{
	printf(",\"%s\":", key);
	if (val)
		json_string(stdout, val);
	else
		fputs("null", stdout);
}

/* --json: what was written, from the parsed tenant (defaults applied). */
static void new_json(const struct config_tenant *t, const char *path, const char *text, size_t len,
		     bool written, bool replaced, const struct new_opts *o)
{
	char num[32], addr[16];

	fputs("{\"ok\":true", stdout);
	new_json_field("tenant", t->name);
	new_json_field("path", path);
	printf(",\"written\":%s,\"replaced\":%s", written ? "true" : "false", replaced ? "true" : "false");
	if (t->uid == CONFIG_UID_AUTO)
		new_json_field("uid", "auto");
	else
		printf(",\"uid\":%lld", (long long)t->uid);
	new_json_field("distro", t->distro);
	printf(",\"memory\":%llu", (unsigned long long)t->limits.memory);
	snprintf(num, sizeof num, "%lld.%03lld", (long long)(t->limits.cpu_millis / 1000),
		 (long long)(t->limits.cpu_millis % 1000));
	printf(",\"cpu\":%s,\"pids\":%lld,\"tmp\":%llu", num, (long long)t->limits.pids,
	       (unsigned long long)t->limits.tmp);
	if (t->network.has_address) {
		ipv4_format(t->network.address, addr, sizeof addr);
		new_json_field("address", addr);
	} else {
		new_json_field("address", NULL);
	}
	new_json_field("shell", t->ssh.shell);
	printf(",\"keys\":%zu", t->ssh.authorized_keys.n);
	fputs(",\"text\":", stdout);
	json_string_n(stdout, text, len);
	puts("}");
	(void)o;
}

int ctl_new(struct ctl *ctl, int argc, char **argv)
{
	struct new_opts o = { 0 };
	struct config_errors errs;
	struct config_host *host;
	struct config_tenant *t;
	char path[4096], *text;
	size_t len;
	int r = new_parse(ctl, argc, argv, &o);
	const char *name;
	bool exists;

	if (r)
		return r < 0 ? 0 : r;
	name = argv[optind];
	if (!value_is_tenant_name(name))
		return ctl_fail(ctl, CTL_EXIT_USAGE, "'%s' is not a tenant name ([a-z][a-z0-9-]{0,31})", name);
	host = ctl_host(ctl);
	if (!host)
		return CTL_EXIT_FAIL;
	snprintf(path, sizeof path, "%s/%s.yaml", host->tenants_dir, name);
	text = new_compose(name, &o, &len);
	t = text ? config_tenant_parse(path, text, len, host, &errs) : NULL;
	if (!t) {
		/* The options made an invalid file: say which, in the file's words. */
		char msg[1024] = "", one[512];
		if (text) {
			config_errors_print(&errs, stderr);
			for (size_t i = 0; i < errs.n; i++) {
				config_error_format(&errs, i, one, sizeof one);
				snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%s%s", i ? "; " : "", one);
			}
		}
		free(text);
		config_host_free(host);
		if (ctl->json)
			return ctl_fail(ctl, CTL_EXIT_FAIL, "not written: %s", msg[0] ? msg : new_key_error[0] ? new_key_error : "out of memory");
		return CTL_EXIT_FAIL;
	}
	exists = access(path, F_OK) == 0;
	if (o.to_stdout) {
		if (ctl->json)
			new_json(t, path, text, len, false, false, &o);
		else
			fwrite(text, 1, len, stdout);
		r = 0;
	} else if (!o.force && exists) {
		r = ctl_fail(ctl, CTL_EXIT_FAIL, "%s exists (use --force to replace it)", path);
	} else {
		r = fs_write_atomic(path, text, len, 0644);
		if (r < 0)
			r = ctl_fail(ctl, CTL_EXIT_FAIL, "cannot write %s: %s", path, strerror(-r));
		else if (ctl->json)
			new_json(t, path, text, len, true, exists, &o), r = 0;
		else
			printf("%s\n", path), r = 0;
	}
	config_tenant_free(t);
	free(text);
	config_host_free(host);
	return r;
}
