/* Unit tests for lib/config: the host and tenant loaders.
 *
 * Bad inputs are one table; each row is its own cmocka test and checks the
 * first error's line, column and whole message. The example files of conf/
 * must load into exactly the values they spell out (run from the repo root,
 * as scripts/run-unit does). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "config.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* The host the tenant checks run against: subnet 10.200.0.0/16. */
static struct config_host *net_host;
/* The same subnet with the router off: no address checks at all. */
static struct config_host *off_host;

/* ---- helpers ---- */

static struct config_host *host_from(const char *yaml, struct config_errors *errs)
{
	return config_host_parse("t/fief.yaml", yaml, strlen(yaml), errs);
}

static struct config_tenant *tenant_from(const char *path, const char *yaml,
					 const struct config_host *host, struct config_errors *errs)
{
	return config_tenant_parse(path, yaml, strlen(yaml), host, errs);
}

/* Print every error so a failing row shows what the loader said. */
static void dump_errors(const struct config_errors *errs)
{
	char line[600];

	for (size_t i = 0; i < errs->n; i++) {
		config_error_format(errs, i, line, sizeof line);
		print_message("    got: %s\n", line);
	}
}

/* Bits lo..hi stepping by step, as a cron field would set them. */
static uint64_t bits(int lo, int hi, int step)
{
	uint64_t b = 0;

	for (int v = lo; v <= hi; v += step)
		b |= 1ULL << v;
	return b;
}

static void expect_endpoint(const struct endpoint *e, int family, const char *addr, unsigned port,
			    const char *text)
{
	uint8_t want[16] = { 0 };

	assert_int_equal(e->family, family);
	assert_int_equal(inet_pton(family, addr, want), 1);
	assert_memory_equal(e->addr, want, family == AF_INET ? 4 : 16);
	assert_int_equal(e->port, port);
	assert_string_equal(e->text, text);
}

static void expect_rule(const struct fw_rule *r, enum fw_action action, uint32_t src, int src_prefix,
			uint32_t dst, int dst_prefix)
{
	assert_int_equal(r->action, action);
	assert_int_equal(r->src.addr, src);
	assert_int_equal(r->src.prefix, src_prefix);
	assert_int_equal(r->dst.addr, dst);
	assert_int_equal(r->dst.prefix, dst_prefix);
}

/* The four rules fw_default() derives from a router address. */
static void expect_default_rules(const struct config_host *h, uint32_t self, int prefix)
{
	uint32_t net = self & cidr_mask(prefix);
	const struct fw_rule_vec *out = &h->router.firewall.out, *in = &h->router.firewall.in;

	assert_int_equal(out->n, 4);
	expect_rule(&out->v[0], FW_ALLOW, net, prefix, self, 32);
	expect_rule(&out->v[1], FW_DENY, net, prefix, net, prefix);
	expect_rule(&out->v[2], FW_ALLOW, net, prefix, 0, 0);
	expect_rule(&out->v[3], FW_DENY, 0, 0, 0, 0);
	assert_int_equal(in->n, 4);
	expect_rule(&in->v[0], FW_ALLOW, self, 32, net, prefix);
	expect_rule(&in->v[1], FW_DENY, net, prefix, net, prefix);
	expect_rule(&in->v[2], FW_ALLOW, 0, 0, net, prefix);
	expect_rule(&in->v[3], FW_DENY, 0, 0, 0, 0);
}

static void expect_cron(const struct cron_entry *c, uint64_t minute, uint32_t hour, uint32_t mday,
			uint16_t month, uint8_t wday, bool mday_any, bool wday_any, const char *command)
{
	assert_int_equal(c->minute, minute);
	assert_int_equal(c->hour, hour);
	assert_int_equal(c->mday, mday);
	assert_int_equal(c->month, month);
	assert_int_equal(c->wday, wday);
	assert_int_equal(c->mday_any, mday_any);
	assert_int_equal(c->wday_any, wday_any);
	assert_string_equal(c->command, command);
}

/* ---- the table of bad inputs ---- */

enum which { HOST, TENANT, TENANT_NET };

struct bad_case {
	const char *name;
	enum which which;
	const char *path;                /* NULL: t/fief.yaml or t/alice.yaml */
	const char *yaml;
	size_t len;                      /* 0: strlen(yaml) */
	int line, col;
	const char *msg;
};

#define H(name, yaml, l, c, m) { name, HOST, NULL, yaml, 0, l, c, m }
#define T(name, yaml, l, c, m) { name, TENANT, NULL, yaml, 0, l, c, m }
#define TN(name, yaml, l, c, m) { name, TENANT_NET, NULL, yaml, 0, l, c, m }
#define TP(name, path, yaml, l, c, m) { name, TENANT, path, yaml, 0, l, c, m }

#define NEST40 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
#define CLOSE40 "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
#define LAUGHS \
	"uid: 1000\n" \
	"a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" \
	"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
	"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" \
	"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n" \
	"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n" \
	"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n" \
	"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
#define NAME_RULE "the file name must be NAME.yaml with NAME matching [a-z][a-z0-9-]{0,31}"
#define SIZE_WHY "is not a size (a number with an optional K, M, G or T suffix)"
#define CRON_WHY(f, lo, hi) "is not valid (" #lo "-" #hi ", *, lists, ranges, /steps)"

static const struct bad_case bad_cases[] = {
	/* YAML syntax */
	T("syntax_unclosed_flow", "uid: 1000\nfoo: [1, 2\n", 3, 1,
	  "YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence"),
	T("syntax_bad_indent", "uid: 1000\n  bad: indent\n", 2, 6,
	  "YAML syntax error: mapping values are not allowed in this context"),
	T("syntax_unterminated_quote", "uid: \"1000\n", 2, 1,
	  "YAML syntax error: found unexpected end of stream while scanning a quoted scalar"),
	T("syntax_value_colon", "uid: 1000\nkey: value: other\n", 2, 11,
	  "YAML syntax error: mapping values are not allowed in this context"),
	H("syntax_tab_indent", "gateway:\n\tworkers: 2\n", 2, 1,
	  "YAML syntax error: found character that cannot start any token while scanning for the next token"),
	T("syntax_bad_utf8", "uid: 1000\nhostname: ab\n\n\nfoo: \"\xff\"\n", 5, 7,
	  "YAML syntax error: invalid leading UTF-8 octet"),
	T("syntax_control_char", "uid: 1000\nhostname: \"\xc3\xa9\xc3\xa9\" \x01\n", 2, 16,
	  "YAML syntax error: control characters are not allowed"),
	{ "syntax_raw_nul", TENANT, NULL, "uid: 1000\nhostname: a\0b\n", 24, 2, 12,
	  "YAML syntax error: control characters are not allowed" },
	/* the shape of the file */
	T("top_is_list", "- a\n- b\n", 1, 1, "expected a mapping of keys at the top of the file"),
	H("top_is_scalar", "hello\n", 1, 1, "expected a mapping of keys at the top of the file"),
	T("top_is_quoted_empty", "\"\"\n", 1, 1, "expected a mapping of keys at the top of the file"),
	H("multiple_documents", "state_dir: /a\n---\nlog_dir: /b\n", 2, 1,
	  "only one YAML document is allowed"),
	T("multiple_documents_explicit", "---\nuid: 1000\n...\n---\nuid: 1001\n", 4, 1,
	  "only one YAML document is allowed"),
	H("unknown_alias", "state_dir: *nope\n", 1, 12, "unknown alias"),
	T("recursive_alias", "uid: 1000\nx: &x [*x]\n", 2, 8, "recursive alias"),
	T("billion_laughs", LAUGHS, 6, 36,
	  "document is too large (too many nodes or alias expansions)"),
	T("too_deep", "uid: 1000\nenv: " NEST40 CLOSE40 "\n", 2, 37, "document is nested too deeply"),
	/* keys */
	T("unknown_key_top", "uid: 1000\nbogus: 1\n", 2, 1, "unknown key 'bogus'"),
	T("unknown_key_nested", "uid: 1000\nlimits: { memory: 1G, swap: 1G }\n", 2, 23,
	  "unknown key 'swap' in limits"),
	H("unknown_key_deep", "router:\n  nat:\n    enabled: true\n    mtu: 1500\n", 4, 5,
	  "unknown key 'mtu' in router.nat"),
	T("unknown_key_in_app", "uid: 1000\napps:\n  - {name: w, type: command, command: x, bogus: 1}\n",
	  3, 42, "unknown key 'bogus' in apps[0]"),
	T("unknown_key_merge", "uid: 1000\nlimits: { <<: {pids: 9} }\n", 2, 11,
	  "unknown key '<<' in limits"),
	T("duplicate_key_top", "uid: 1000\nuid: 1001\n", 2, 1, "duplicate key 'uid' (first at line 1)"),
	H("duplicate_key_nested", "gateway:\n  workers: 2\n  workers: 3\n", 3, 3,
	  "duplicate key 'workers' in gateway (first at line 2)"),
	T("duplicate_env_key", "uid: 1000\nenv: { A: 1, A: 2 }\n", 2, 14, "duplicate key 'A'"),
	H("key_is_a_list", "[a]: 1\n", 1, 1, "keys must be plain names"),
	T("key_with_nul", "uid: 1000\n\"hostname\\0x\": foo\n", 2, 1, "keys must be plain names"),
	/* wrong types */
	T("list_for_scalar", "uid: 1000\nhostname: [a, b]\n", 2, 11,
	  "hostname: expected a single value, not a list"),
	T("map_for_scalar", "uid: {a: 1}\n", 1, 6, "uid: expected a single value, not a mapping"),
	T("scalar_for_map", "uid: 1000\nlimits: 5\n", 2, 9, "limits: expected a mapping"),
	T("list_for_map", "uid: 1000\nlimits: [1]\n", 2, 9, "limits: expected a mapping"),
	T("map_for_list", "uid: 1000\napps: {name: w}\n", 2, 7, "apps: expected a list"),
	T("scalar_for_list", "uid: 1000\ncron: \"* * * * * x\"\n", 2, 7, "cron: expected a list"),
	T("scalar_for_list_item", "uid: 1000\napps: [x]\n", 2, 8, "apps[0]: expected a mapping"),
	T("map_for_list_item", "uid: 1000\ncron: [{a: 1}]\n", 2, 8,
	  "cron[0]: expected a single value, not a mapping"),
	H("scalar_for_endpoint_list", "gateway: { listen: \"0.0.0.0:22\" }\n", 1, 20,
	  "gateway.listen: expected a list"),
	T("null_for_value", "uid: 1000\nlimits: { memory: }\n", 2, 19, "limits.memory: expected a value"),
	H("bad_bool", "router: { enabled: perhaps }\n", 1, 20,
	  "router.enabled: 'perhaps' is not a boolean (true or false)"),
	/* uid */
	T("missing_uid", "hostname: alice\n", 1, 1, "missing required key 'uid'"),
	T("missing_uid_empty_file", "", 1, 1, "missing required key 'uid'"),
	T("missing_uid_indented", "\n\n  hostname: alice\n", 3, 3, "missing required key 'uid'"),
	T("uid_below_1000", "uid: 999\n", 1, 6, "uid: 999 is out of range (1000 to 4294967294)"),
	T("uid_above_max", "uid: 4294967295\n", 1, 6,
	  "uid: 4294967295 is out of range (1000 to 4294967294)"),
	T("uid_negative", "uid: -1\n", 1, 6, "uid: -1 is out of range (1000 to 4294967294)"),
	T("uid_name", "uid: root\n", 1, 6, "uid: 'root' is not an integer or auto"),
	T("uid_float", "uid: 1000.0\n", 1, 6, "uid: '1000.0' is not an integer or auto"),
	/* sizes, cpu, ints */
	T("memory_bad_suffix", "uid: 1000\nlimits: { memory: 12X }\n", 2, 19, "limits.memory: '12X' " SIZE_WHY),
	T("memory_fraction", "uid: 1000\nlimits: { memory: 1.5G }\n", 2, 19, "limits.memory: '1.5G' " SIZE_WHY),
	T("memory_overflow", "uid: 1000\nlimits: { memory: 99999999999999999999 }\n", 2, 19,
	  "limits.memory: '99999999999999999999' " SIZE_WHY),
	T("memory_below_16M", "uid: 1000\nlimits: { memory: 8M }\n", 2, 19,
	  "limits.memory: 8M is out of range (16M to 16T)"),
	T("memory_one_byte_short", "uid: 1000\nlimits: { memory: 16777215 }\n", 2, 19,
	  "limits.memory: 16777215 is out of range (16M to 16T)"),
	T("memory_above_16T", "uid: 1000\nlimits: { memory: 17T }\n", 2, 19,
	  "limits.memory: 17T is out of range (16M to 16T)"),
	T("tmp_below_1M", "uid: 1000\nlimits: { tmp: 512K }\n", 2, 16,
	  "limits.tmp: 512K is out of range (1M to 16T)"),
	T("rate_limit_above_1T", "uid: 1000\nnetwork: { rate_limit: 2T }\n", 2, 24,
	  "network.rate_limit: 2T is out of range (0 to 1T)"),
	T("cpu_four_decimals", "uid: 1000\nlimits: { cpu: 0.0001 }\n", 2, 16,
	  "limits.cpu: '0.0001' has more than three decimals"),
	T("cpu_word", "uid: 1000\nlimits: { cpu: abc }\n", 2, 16,
	  "limits.cpu: 'abc' is not a CPU share (a number of cores such as 0.5 or 2)"),
	T("cpu_too_small", "uid: 1000\nlimits: { cpu: 0.001 }\n", 2, 16,
	  "limits.cpu: 0.001 is out of range (0.010 to 1024.000)"),
	T("cpu_too_large", "uid: 1000\nlimits: { cpu: 2000 }\n", 2, 16,
	  "limits.cpu: 2000 is out of range (0.010 to 1024.000)"),
	T("pids_too_few", "uid: 1000\nlimits: { pids: 4 }\n", 2, 17,
	  "limits.pids: 4 is out of range (8 to 4194304)"),
	T("pids_not_int", "uid: 1000\nlimits: { pids: 12a }\n", 2, 17, "limits.pids: '12a' is not an integer"),
	H("workers_zero", "gateway: { workers: 0 }\n", 1, 21, "gateway.workers: 0 is out of range (1 to 256)"),
	H("workers_257", "gateway: { workers: 257 }\n", 1, 21,
	  "gateway.workers: 257 is out of range (1 to 256)"),
	H("workers_word", "gateway: { workers: many }\n", 1, 21,
	  "gateway.workers: 'many' is not an integer or auto"),
	H("start_concurrency_zero", "launcher: { start_concurrency: 0 }\n", 1, 32,
	  "launcher.start_concurrency: 0 is out of range (1 to 4096)"),
	H("start_concurrency_word", "launcher: { start_concurrency: all }\n", 1, 32,
	  "launcher.start_concurrency: 'all' is not an integer or auto"),
	H("router_threads_zero", "router: { threads: 0 }\n", 1, 20,
	  "router.threads: 0 is out of range (1 to 16)"),
	H("router_threads_17", "router: { threads: 17 }\n", 1, 20,
	  "router.threads: 17 is out of range (1 to 16)"),
	H("login_grace_short", "gateway: { login_grace: 500ms }\n", 1, 25,
	  "gateway.login_grace: 500ms is out of range (1s to 3600s)"),
	H("login_grace_long", "gateway: { login_grace: 2h }\n", 1, 25,
	  "gateway.login_grace: 2h is out of range (1s to 3600s)"),
	H("login_grace_words", "gateway: { login_grace: 30 seconds }\n", 1, 25,
	  "gateway.login_grace: '30 seconds' is not a duration (a number with ms, s, m, h or d)"),
	H("max_auth_tries_zero", "gateway: { max_auth_tries: 0 }\n", 1, 28,
	  "gateway.max_auth_tries: 0 is out of range (1 to 100)"),
	H("max_auth_tries_101", "gateway: { max_auth_tries: 101 }\n", 1, 28,
	  "gateway.max_auth_tries: 101 is out of range (1 to 100)"),
	H("max_unauthenticated_zero", "gateway: { max_unauthenticated: 0 }\n", 1, 33,
	  "gateway.max_unauthenticated: 0 is out of range (1 to 1000000)"),
	T("app_workers_65", "uid: 1000\napps:\n  - {name: w, type: command, command: x, workers: 65}\n",
	  3, 51, "apps[0].workers: 65 is out of range (1 to 64)"),
	T("app_workers_zero", "uid: 1000\napps:\n  - {name: w, type: command, command: x, workers: 0}\n",
	  3, 51, "apps[0].workers: 0 is out of range (1 to 64)"),
	/* names */
	T("bad_hostname_dash", "uid: 1000\nhostname: -bad\n", 2, 11, "hostname: '-bad' is not a valid host name"),
	T("bad_hostname_underscore", "uid: 1000\nhostname: my_host\n", 2, 11,
	  "hostname: 'my_host' is not a valid host name"),
	T("bad_hostname_latin1", "uid: 1000\nhostname: \"a\\xffb\"\n", 2, 11,
	  "hostname: 'a\xc3\xbf" "b' is not a valid host name"),
	T("bad_domain_underscore",
	  "uid: 1000\napps:\n  - {name: w, type: command, command: x, domains: [bad_domain.com]}\n", 3, 52,
	  "apps[0].domains[0]: 'bad_domain.com' is not a domain name (such as example.com or *.example.com)"),
	T("bad_domain_no_dot",
	  "uid: 1000\napps:\n  - {name: w, type: command, command: x, domains: [ok.example, localhost]}\n",
	  3, 64, "apps[0].domains[1]: 'localhost' is not a domain name (such as example.com or *.example.com)"),
	T("bad_domain_star_tld",
	  "uid: 1000\napps:\n  - {name: w, type: command, command: x, domains: [\"*.com\"]}\n", 3, 52,
	  "apps[0].domains[0]: '*.com' is not a domain name (such as example.com or *.example.com)"),
	T("bad_app_name", "uid: 1000\napps:\n  - {name: Web, type: command, command: x}\n", 3, 12,
	  "apps[0].name: 'Web' must match [a-z][a-z0-9_-]{0,31}"),
	T("bad_distro", "uid: 1000\ndistro: ../etc\n", 2, 9, "distro: '../etc' must match [a-z][a-z0-9_-]{0,31}"),
	H("bad_gateway_user", "gateway: { user: Root }\n", 1, 18,
	  "gateway.user: 'Root' must match [a-z][a-z0-9_-]{0,31}"),
	H("bad_ifname_long", "router: { device: averyveryverylongname }\n", 1, 19,
	  "router.device: 'averyveryverylongname' is not an interface name (at most 15 characters)"),
	H("bad_ifname_space", "router: { nat: { out_interface: \"eth 0\" } }\n", 1, 33,
	  "router.nat.out_interface: 'eth 0' is not an interface name (at most 15 characters)"),
	/* apps and daemons */
	T("bad_app_type", "uid: 1000\napps: [{name: w, type: java}]\n", 2, 24,
	  "apps[0].type: 'java' is not an app type (wsgi, psgi, rack or command)"),
	T("wsgi_needs_module", "uid: 1000\napps: [{name: w, type: wsgi}]\n", 2, 8,
	  "apps[0]: type wsgi needs 'module'"),
	T("psgi_needs_script", "uid: 1000\napps:\n  - name: w\n    type: psgi\n", 3, 5,
	  "apps[0]: type psgi needs 'script'"),
	T("rack_needs_script",
	  "uid: 1000\napps:\n  - {name: a, type: command, command: x}\n  - {name: b, type: rack}\n", 4, 5,
	  "apps[1]: type rack needs 'script'"),
	T("command_needs_command", "uid: 1000\napps:\n  - name: w\n    type: command\n", 3, 5,
	  "apps[0]: type command needs 'command'"),
	T("module_not_for_command",
	  "uid: 1000\napps:\n  - name: w\n    type: command\n    command: x\n    module: m\n", 3, 5,
	  "apps[0]: 'module' does not apply to type command"),
	T("script_not_for_wsgi",
	  "uid: 1000\napps:\n  - {name: w, type: wsgi, module: m, script: /a.psgi}\n", 3, 5,
	  "apps[0]: 'script' does not apply to type wsgi"),
	T("command_not_for_psgi",
	  "uid: 1000\napps:\n  - {name: w, type: psgi, script: /a.psgi, command: x}\n", 3, 5,
	  "apps[0]: 'command' does not apply to type psgi"),
	T("app_missing_name", "uid: 1000\napps:\n  - {type: command, command: x}\n", 3, 5,
	  "missing required key 'name' in apps[0]"),
	T("app_missing_type", "uid: 1000\napps:\n  - {name: w, command: x}\n", 3, 5,
	  "missing required key 'type' in apps[0]"),
	T("daemon_missing_command", "uid: 1000\ndaemons:\n  - {name: d}\n", 3, 5,
	  "missing required key 'command' in daemons[0]"),
	T("daemon_empty_command", "uid: 1000\ndaemons:\n  - {name: d, command: \"\"}\n", 3, 24,
	  "daemons[0].command: must not be empty"),
	T("duplicate_app_name",
	  "uid: 1000\napps:\n  - {name: w, type: command, command: x}\n  - {name: w, type: command, command: y}\n",
	  4, 12, "apps[1].name: duplicate name 'w'"),
	T("duplicate_app_daemon_name",
	  "uid: 1000\napps:\n  - {name: w, type: command, command: x}\ndaemons:\n  - {name: w, command: y}\n",
	  5, 12, "daemons[0].name: duplicate name 'w'"),
	T("duplicate_daemon_name",
	  "uid: 1000\ndaemons:\n  - {name: d, command: x}\n  - {name: d, command: y}\n", 4, 12,
	  "daemons[1].name: duplicate name 'd'"),
	T("reserved_daemon_cron", "uid: 1000\ndaemons:\n  - {name: cron, command: y}\n", 3, 12,
	  "daemons[0].name: 'cron' is reserved"),
	T("reserved_app_cron", "uid: 1000\napps:\n  - {name: cron, type: command, command: y}\n", 3, 12,
	  "apps[0].name: 'cron' is reserved"),
	T("bad_lazy_apps", "uid: 1000\napps:\n  - {name: w, type: command, command: x, lazy_apps: maybe}\n",
	  3, 53, "apps[0].lazy_apps: 'maybe' is not a boolean (true or false)"),
	/* cron, crontab form */
	T("cron_minute_60", "uid: 1000\ncron: [\"60 * * * * x\"]\n", 2, 8,
	  "cron[0]: cron minute '60' " CRON_WHY(minute, 0, 59)),
	T("cron_hour_24", "uid: 1000\ncron:\n  - \"0 0 * * * ok\"\n  - \"* 24 * * * x\"\n", 4, 5,
	  "cron[1]: cron hour '24' " CRON_WHY(hour, 0, 23)),
	T("cron_mday_0", "uid: 1000\ncron: [\"* * 0 * * x\"]\n", 2, 8,
	  "cron[0]: cron day of month '0' " CRON_WHY(mday, 1, 31)),
	T("cron_mday_32", "uid: 1000\ncron: [\"* * 1-32 * * x\"]\n", 2, 8,
	  "cron[0]: cron day of month '1-32' " CRON_WHY(mday, 1, 31)),
	T("cron_month_13", "uid: 1000\ncron: [\"* * * 13 * x\"]\n", 2, 8,
	  "cron[0]: cron month '13' " CRON_WHY(month, 1, 12)),
	T("cron_month_name", "uid: 1000\ncron: [\"* * * foo * x\"]\n", 2, 8,
	  "cron[0]: cron month 'foo' " CRON_WHY(month, 1, 12)),
	T("cron_wday_8", "uid: 1000\ncron: [\"* * * * 8 x\"]\n", 2, 8,
	  "cron[0]: cron day of week '8' " CRON_WHY(wday, 0, 7)),
	T("cron_step_zero", "uid: 1000\ncron: [\"*/0 * * * * x\"]\n", 2, 8,
	  "cron[0]: cron minute '*/0' " CRON_WHY(minute, 0, 59)),
	T("cron_step_too_big", "uid: 1000\ncron: [\"*/60 * * * * x\"]\n", 2, 8,
	  "cron[0]: cron minute '*/60' " CRON_WHY(minute, 0, 59)),
	T("cron_step_not_number", "uid: 1000\ncron: [\"* */x * * * x\"]\n", 2, 8,
	  "cron[0]: cron hour '*/x' " CRON_WHY(hour, 0, 23)),
	T("cron_range_reversed", "uid: 1000\ncron: [\"5-1 * * * * x\"]\n", 2, 8,
	  "cron[0]: cron minute '5-1' " CRON_WHY(minute, 0, 59)),
	T("cron_empty_list_item", "uid: 1000\ncron: [\"1,,2 * * * * x\"]\n", 2, 8,
	  "cron[0]: cron minute '1,,2' is not valid"),
	T("cron_trailing_comma", "uid: 1000\ncron: [\"1, * * * * x\"]\n", 2, 8,
	  "cron[0]: cron minute '1,' is not valid"),
	T("cron_no_command", "uid: 1000\ncron: [\"* * * * *\"]\n", 2, 8, "cron[0]: cron line has no command"),
	T("cron_no_command_spaces", "uid: 1000\ncron: [\"0 0 * * *   \"]\n", 2, 8,
	  "cron[0]: cron line has no command"),
	T("cron_four_fields", "uid: 1000\ncron: [\"* * * *\"]\n", 2, 8,
	  "cron[0]: cron line needs five time fields and a command"),
	T("cron_macro", "uid: 1000\ncron: [\"@daily x\"]\n", 2, 8,
	  "cron[0]: cron minute '@daily' " CRON_WHY(minute, 0, 59)),
	/* cron, uWSGI form */
	T("uwsgi_minute_61", "uid: 1000\ncron: [\"-61 -1 -1 -1 -1 x\"]\n", 2, 8,
	  "cron[0]: cron minute '-61' is out of range"),
	T("uwsgi_hour_25", "uid: 1000\ncron: [\"-1 -25 -1 -1 -1 x\"]\n", 2, 8,
	  "cron[0]: cron hour '-25' is out of range"),
	T("uwsgi_mday_32", "uid: 1000\ncron: [\"-1 -1 -32 -1 -1 x\"]\n", 2, 8,
	  "cron[0]: cron day of month '-32' is out of range"),
	T("uwsgi_month_13", "uid: 1000\ncron: [\"-1 -1 -1 -13 -1 x\"]\n", 2, 8,
	  "cron[0]: cron month '-13' is out of range"),
	T("uwsgi_wday_8", "uid: 1000\ncron: [\"-1 -1 -1 -1 -8 x\"]\n", 2, 8,
	  "cron[0]: cron day of week '-8' is out of range"),
	T("uwsgi_minus_zero", "uid: 1000\ncron: [\"-0 -1 -1 -1 -1 x\"]\n", 2, 8,
	  "cron[0]: cron minute '-0' is out of range"),
	T("uwsgi_list", "uid: 1000\ncron: [\"-1,5 -1 -1 -1 -1 x\"]\n", 2, 8,
	  "cron[0]: cron minute '-1,5' is out of range"),
	T("uwsgi_no_command", "uid: 1000\ncron: [\"-1 -1 -1 -1 -1\"]\n", 2, 8,
	  "cron[0]: cron line has no command"),
	/* firewall, CIDR, endpoints */
	H("fw_bad_action", "router:\n  firewall:\n    out: [\"permit\"]\n", 3, 11,
	  "router.firewall.out[0]: firewall rule 'permit' must start with allow or deny"),
	H("fw_too_many_words", "router:\n  firewall:\n    out: [\"allow 10.0.0.0/8 1.2.3.4 extra\"]\n", 3, 11,
	  "router.firewall.out[0]: firewall rule 'allow 10.0.0.0/8 1.2.3.4 extra' must be 'allow|deny [SRC [DST]]'"),
	H("fw_empty", "router:\n  firewall:\n    in: [deny, \"\"]\n", 3, 16,
	  "router.firewall.in[1]: firewall rule '' must be 'allow|deny [SRC [DST]]'"),
	H("fw_bad_prefix", "router:\n  firewall:\n    in: [\"allow 10.0.0.0/99\"]\n", 3, 10,
	  "router.firewall.in[0]: '10.0.0.0/99' has a bad prefix length (0 to 32)"),
	H("fw_word_address", "router:\n  firewall:\n    in: [\"allow any\"]\n", 3, 10,
	  "router.firewall.in[0]: 'any' is not an IPv4 address or CIDR"),
	H("fw_bad_dst", "router:\n  firewall:\n    in: [\"deny 0.0.0.0/0 10.1.2\"]\n", 3, 10,
	  "router.firewall.in[0]: '10.1.2' is not an IPv4 address or CIDR"),
	H("fw_not_a_list", "router:\n  firewall:\n    in: deny\n", 3, 9, "router.firewall.in: expected a list"),
	H("cidr_prefix_33", "router: { address: 10.0.0.1/33 }\n", 1, 20,
	  "router.address: '10.0.0.1/33' has a bad prefix length (0 to 32)"),
	H("cidr_prefix_empty", "router: { address: 10.0.0.1/ }\n", 1, 20,
	  "router.address: '10.0.0.1/' has a bad prefix length (0 to 32)"),
	H("cidr_bad_octet", "router: { address: 10.0.0.256/16 }\n", 1, 20,
	  "router.address: '10.0.0.256/16' is not an IPv4 address or CIDR"),
	/* The router checks run on the loaded struct; the loader recorded
	 * where router.address was written. */
	H("router_prefix_31", "router: { address: 10.0.0.1/31 }\n", 1, 20,
	  "router.address: prefix /31 must be between /8 and /30"),
	H("router_prefix_7", "router: { address: 10.0.0.1/7 }\n", 1, 20,
	  "router.address: prefix /7 must be between /8 and /30"),
	H("router_network_address", "router: { address: 10.0.0.0/8 }\n", 1, 20,
	  "router.address: the router needs a host address, not the network or broadcast address"),
	H("router_broadcast_address", "router: { address: 192.168.1.255/24 }\n", 1, 20,
	  "router.address: the router needs a host address, not the network or broadcast address"),
	H("endpoint_no_port", "gateway: { listen: [\"0.0.0.0\"] }\n", 1, 21,
	  "gateway.listen[0]: '0.0.0.0' is not an address:port (IPv6 as [addr]:port)"),
	H("endpoint_port_0", "gateway: { listen: [\"0.0.0.0:0\"] }\n", 1, 21,
	  "gateway.listen[0]: '0.0.0.0:0' has a bad port (1 to 65535)"),
	H("endpoint_port_65536", "gateway: { listen: [\"0.0.0.0:22\", \"0.0.0.0:65536\"] }\n", 1, 35,
	  "gateway.listen[1]: '0.0.0.0:65536' has a bad port (1 to 65535)"),
	H("endpoint_ipv6_no_colon", "gateway: { listen: [\"[::1]22\"] }\n", 1, 21,
	  "gateway.listen[0]: '[::1]22' is not an address:port (IPv6 as [addr]:port)"),
	H("endpoint_service_name", "gateway: { listen: [\"[::1]:ssh\"] }\n", 1, 21,
	  "gateway.listen[0]: '[::1]:ssh' has a bad port (1 to 65535)"),
	H("endpoint_hostname", "metrics: { listen: \"localhost:9187\" }\n", 1, 20,
	  "metrics.listen: 'localhost:9187' is not an address:port (IPv6 as [addr]:port)"),
	/* tenant network against the host */
	TN("address_outside_subnet", "uid: 1000\nnetwork: { address: 10.201.0.5 }\n", 2, 21,
	   "network.address: 10.201.0.5 is outside the router subnet 10.200.0.0/16"),
	TN("address_is_router", "uid: 1000\nnetwork:\n  address: 10.200.0.1\n", 3, 12,
	   "network.address: 10.200.0.1 is the router, network or broadcast address of 10.200.0.0/16"),
	TN("address_is_network", "uid: 1000\nnetwork: { address: 10.200.0.0 }\n", 2, 21,
	   "network.address: 10.200.0.0 is the router, network or broadcast address of 10.200.0.0/16"),
	TN("address_is_broadcast", "uid: 1000\nnetwork: { address: 10.200.255.255 }\n", 2, 21,
	   "network.address: 10.200.255.255 is the router, network or broadcast address of 10.200.0.0/16"),
	T("address_not_ipv4", "uid: 1000\nnetwork: { address: 10.200.0 }\n", 2, 21,
	  "network.address: '10.200.0' is not an IPv4 address"),
	TN("address6_without_router6", "uid: 1000\nnetwork: { address: 10.200.0.5, address6: 'fd00::5' }\n", 2, 43,
	   "network.address6: the host file has no router.address6 (IPv6 is off)"),
	TN("address6_without_address", "uid: 1000\nnetwork: { address6: 'fd00::5' }\n", 2, 22,
	   "network.address6: needs network.address too (IPv4 stays on)"),
	T("address6_not_ipv6", "uid: 1000\nnetwork: { address: 10.200.0.5, address6: 10.200.0.6 }\n", 2, 43,
	  "network.address6: '10.200.0.6' is not an IPv6 address"),
	H("router6_prefix_48", "router: { address6: 'fd00::1/48' }\n", 1, 21,
	  "router.address6: prefix /48 must be between /64 and /120"),
	H("router6_subnet_address", "router: { address6: 'fd00::/64' }\n", 1, 21,
	  "router.address6: the router needs a unicast host address, not the subnet, multicast or link-local"),
	H("router6_link_local", "router: { address6: 'fe80::1/64' }\n", 1, 21,
	  "router.address6: the router needs a unicast host address, not the subnet, multicast or link-local"),
	H("router6_not_cidr", "router: { address6: 10.0.0.1/8 }\n", 1, 21,
	  "router.address6: '10.0.0.1/8' is not an IPv6 address or CIDR"),
	T("address_with_prefix", "uid: 1000\nnetwork: { address: 10.200.0.5/24 }\n", 2, 21,
	  "network.address: '10.200.0.5/24' is not an IPv4 address"),
	/* the tenant file name */
	TP("file_name_upper", "t/Alice.yaml", "uid: 1000\n", 1, 1, NAME_RULE),
	TP("file_name_digit_first", "t/1alice.yaml", "uid: 1000\n", 1, 1, NAME_RULE),
	TP("file_name_underscore", "t/al_ice.yaml", "uid: 1000\n", 1, 1, NAME_RULE),
	TP("file_name_yml", "t/alice.yml", "uid: 1000\n", 1, 1, NAME_RULE),
	TP("file_name_only_ext", "t/.yaml", "uid: 1000\n", 1, 1, NAME_RULE),
	TP("file_name_33_chars", "t/abcdefghijabcdefghijabcdefghijabc.yaml", "uid: 1000\n", 1, 1, NAME_RULE),
	TP("file_name_dot", "t/al.ice.yaml", "uid: 1000\n", 1, 1, NAME_RULE),
	/* NUL bytes, env */
	T("nul_in_value", "uid: 1000\nhostname: \"al\\0ice\"\n", 2, 11, "hostname: contains a NUL byte"),
	H("nul_in_path", "state_dir: \"/run/\\0x\"\n", 1, 12, "state_dir: contains a NUL byte"),
	T("nul_in_env_value", "uid: 1000\nenv: { A: \"x\\0y\" }\n", 2, 11, "env: contains a NUL byte"),
	T("env_name_digit", "uid: 1000\nenv: { TZ: UTC, 1BAD: x }\n", 2, 17, "env: '1BAD' is not a variable name"),
	T("env_name_dash", "uid: 1000\nenv: { \"A-B\": x }\n", 2, 8, "env: 'A-B' is not a variable name"),
	T("env_name_empty", "uid: 1000\nenv: { \"\": x }\n", 2, 8, "env: '' is not a variable name"),
	T("env_is_list", "uid: 1000\nenv: [A]\n", 2, 6, "env: expected a mapping of NAME: value"),
	T("env_value_list", "uid: 1000\nenv: { A: [1] }\n", 2, 11, "env: expected a single value, not a list"),
	/* ssh */
	T("password_hash_plain", "uid: 1000\nssh: { password_hash: plain }\n", 2, 23,
	  "ssh.password_hash: not a crypt(3) hash (expected $id$salt$hash)"),
	T("password_hash_space", "uid: 1000\nssh: { password_hash: \"$6$salt$has h\" }\n", 2, 23,
	  "ssh.password_hash: not a crypt(3) hash (expected $id$salt$hash)"),
	T("password_hash_short", "uid: 1000\nssh: { password_hash: \"$1$ab$c\" }\n", 2, 23,
	  "ssh.password_hash: not a crypt(3) hash (expected $id$salt$hash)"),
	T("authorized_key_empty", "uid: 1000\nssh: { authorized_keys: [\"\"] }\n", 2, 26,
	  "ssh.authorized_keys[0]: must not be empty"),
	/* paths */
	T("shell_relative", "uid: 1000\nssh: { shell: bin/bash }\n", 2, 15, "ssh.shell: 'bin/bash' is not an absolute path"),
	T("shell_dotdot", "uid: 1000\nssh: { shell: /bin/../bash }\n", 2, 15,
	  "ssh.shell: '/bin/../bash' is not an absolute path"),
	T("script_relative", "uid: 1000\napps:\n  - {name: w, type: rack, script: config.ru}\n", 3, 35,
	  "apps[0].script: 'config.ru' is not an absolute path"),
	T("chdir_relative", "uid: 1000\napps:\n  - {name: w, type: command, command: x, chdir: app}\n", 3, 49,
	  "apps[0].chdir: 'app' is not an absolute path"),
	H("state_dir_relative", "state_dir: run/fief\n", 1, 12, "state_dir: 'run/fief' is not an absolute path"),
	H("opt_dir_relative", "opt_dir: opt\n", 1, 10, "opt_dir: 'opt' is not an absolute path"),
	H("nginx_map_relative", "http: { nginx_map: map }\n", 1, 20, "http.nginx_map: 'map' is not an absolute path"),
	H("cgroup_parent_up", "cgroup_parent: ../x\n", 1, 16,
	  "cgroup_parent: '../x' must be a relative path of letters, digits, '_', '.' and '-'"),
	H("cgroup_parent_dotdot", "cgroup_parent: ..\n", 1, 16,
	  "cgroup_parent: '..' must be a relative path of letters, digits, '_', '.' and '-'"),
	H("cgroup_parent_inner_up", "cgroup_parent: a/../b\n", 1, 16,
	  "cgroup_parent: 'a/../b' must be a relative path of letters, digits, '_', '.' and '-'"),
	H("cgroup_parent_trailing_up", "cgroup_parent: a/..\n", 1, 16,
	  "cgroup_parent: 'a/..' must be a relative path of letters, digits, '_', '.' and '-'"),
	H("cgroup_parent_absolute", "cgroup_parent: /fief\n", 1, 16,
	  "cgroup_parent: '/fief' must be a relative path of letters, digits, '_', '.' and '-'"),
	H("cgroup_parent_double_slash", "cgroup_parent: \"a//b\"\n", 1, 16,
	  "cgroup_parent: 'a//b' must be a relative path of letters, digits, '_', '.' and '-'"),
	H("cgroup_parent_empty", "cgroup_parent: \"\"\n", 1, 16,
	  "cgroup_parent: '' must be a relative path of letters, digits, '_', '.' and '-'"),
};

static void run_bad_case(void **state)
{
	const struct bad_case *c = *state;
	const char *path = c->path ? c->path : c->which == HOST ? "t/fief.yaml" : "t/alice.yaml";
	size_t len = c->len ? c->len : strlen(c->yaml);
	struct config_errors errs;
	void *got;

	if (c->which == HOST) {
		got = config_host_parse(path, c->yaml, len, &errs);
		config_host_free(got);
	} else {
		got = config_tenant_parse(path, c->yaml, len, c->which == TENANT_NET ? net_host : NULL, &errs);
		config_tenant_free(got);
	}
	if (got || errs.n == 0 || errs.e[0].line != c->line || errs.e[0].col != c->col ||
	    strcmp(errs.e[0].msg, c->msg)) {
		print_message("    want: %s:%d:%d: %s\n", path, c->line, c->col, c->msg);
		dump_errors(&errs);
	}
	assert_null(got);
	assert_true(errs.n >= 1);
	assert_string_equal(errs.file, path);
	assert_string_equal(errs.e[0].msg, c->msg);
	assert_int_equal(errs.e[0].line, c->line);
	assert_int_equal(errs.e[0].col, c->col);
}

static struct CMUnitTest bad_tests[ARRAY_SIZE(bad_cases)];

/* ---- bad inputs that are built rather than written ---- */

/* One long scalar repeated through aliases must hit the size cap, not
 * make the loader copy it thousands of times. */
static void test_alias_bytes_capped(void **state)
{
	size_t big = 100000, n = 2000, cap = big + n * 4 + 200, len;
	char *buf = malloc(cap), *p = buf;
	struct config_errors errs;
	struct config_tenant *t;

	assert_non_null(buf);
	p += sprintf(p, "uid: 1000\nssh:\n  accept_env: [&a \"");
	memset(p, 'x', big);
	p += big;
	p += sprintf(p, "\"]\n  authorized_keys: [*a");
	for (size_t i = 1; i < n; i++)
		p += sprintf(p, ",*a");
	p += sprintf(p, "]\n");
	len = (size_t)(p - buf);
	t = config_tenant_parse("t/alice.yaml", buf, len, NULL, &errs);
	if (t || errs.n != 1)
		dump_errors(&errs);
	assert_null(t);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.e[0].line, 4);
	assert_string_equal(errs.e[0].msg, "document is too large (too many nodes or alias expansions)");
	free(buf);
}

/* More nodes than the cap, without any alias. */
static void test_too_many_nodes(void **state)
{
	size_t n = 110000, len;
	char *buf = malloc(n * 3 + 64), *p = buf;
	struct config_errors errs;
	struct config_tenant *t;

	assert_non_null(buf);
	p += sprintf(p, "uid: 1000\nx: [");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "a,");
	p += sprintf(p, "a]\n");
	len = (size_t)(p - buf);
	t = config_tenant_parse("t/alice.yaml", buf, len, NULL, &errs);
	assert_null(t);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.e[0].line, 2);
	assert_string_equal(errs.e[0].msg, "document is too large (too many nodes or alias expansions)");
	free(buf);
}

/* An env name over 128 characters. */
static void test_env_name_too_long(void **state)
{
	char yaml[400], name[130];
	struct config_errors errs;
	struct config_tenant *t;

	memset(name, 'A', 129);
	name[129] = 0;
	snprintf(yaml, sizeof yaml, "uid: 1000\nenv: { %s: x }\n", name);
	t = tenant_from("t/alice.yaml", yaml, NULL, &errs);
	assert_null(t);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.e[0].line, 2);
	assert_int_equal(errs.e[0].col, 8);
	assert_true(strstr(errs.e[0].msg, "is not a variable name") != NULL);

	name[128] = 0;                   /* 128 is still fine */
	snprintf(yaml, sizeof yaml, "uid: 1000\nenv: { %s: x }\n", name);
	t = tenant_from("t/alice.yaml", yaml, NULL, &errs);
	assert_non_null(t);
	assert_int_equal(t->env.n, 1);
	assert_string_equal(t->env.v[0].name, name);
	config_tenant_free(t);
}

/* Every error of a file is reported, up to the cap. */
static void test_many_errors(void **state)
{
	char yaml[1024], *p = yaml;
	struct config_errors errs;
	struct config_host *h;

	for (int i = 0; i < 20; i++)
		p += sprintf(p, "bad%d: 1\n", i);
	h = host_from(yaml, &errs);
	assert_null(h);
	assert_int_equal(errs.n, CONFIG_MAX_ERRORS);
	assert_true(errs.truncated);
	for (int i = 0; i < CONFIG_MAX_ERRORS; i++) {
		char want[32];
		snprintf(want, sizeof want, "unknown key 'bad%d'", i);
		assert_string_equal(errs.e[i].msg, want);
		assert_int_equal(errs.e[i].line, i + 1);
		assert_int_equal(errs.e[i].col, 1);
	}
}

/* Two problems in one tenant: both are reported, in file order. */
static void test_two_errors(void **state)
{
	struct config_errors errs;
	struct config_tenant *t =
		tenant_from("t/alice.yaml", "uid: 5\nlimits: { pids: 1 }\n", NULL, &errs);

	assert_null(t);
	assert_int_equal(errs.n, 2);
	assert_int_equal(errs.e[0].line, 1);
	assert_string_equal(errs.e[0].msg, "uid: 5 is out of range (1000 to 4294967294)");
	assert_int_equal(errs.e[1].line, 2);
	assert_int_equal(errs.e[1].col, 17);
	assert_string_equal(errs.e[1].msg, "limits.pids: 1 is out of range (8 to 4194304)");
}

/* ---- error formatting ---- */

static void test_error_format(void **state)
{
	struct config_errors errs;
	char line[600];
	struct config_tenant *t = tenant_from("t/alice.yaml", "uid: 1000\nbogus: 1\n", NULL, &errs);

	assert_null(t);
	assert_int_equal(errs.n, 1);
	config_error_format(&errs, 0, line, sizeof line);
	assert_string_equal(line, "t/alice.yaml:2:1: unknown key 'bogus'");

	/* Not tied to a node: "FILE: message". */
	assert_null(config_host_load("t/does-not-exist.yaml", &errs));
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.e[0].line, 0);
	config_error_format(&errs, 0, line, sizeof line);
	assert_string_equal(line, "t/does-not-exist.yaml: cannot read: No such file or directory");

	/* A directory is not a regular file. */
	assert_null(config_tenant_load("conf", NULL, &errs));
	config_error_format(&errs, 0, line, sizeof line);
	assert_string_equal(line, "conf: cannot read: not a regular file");

	/* Short buffers truncate, never overflow. */
	tenant_from("t/alice.yaml", "uid: 1000\nbogus: 1\n", NULL, &errs);
	config_error_format(&errs, 0, line, 10);
	assert_string_equal(line, "t/alice.y");
}

static void test_errors_print(void **state)
{
	struct config_errors errs;
	char yaml[512], *p = yaml, *out = NULL;
	size_t outlen = 0;
	FILE *f;

	assert_null(tenant_from("t/alice.yaml", "uid: 7\nhostname: -x\n", NULL, &errs));
	f = open_memstream(&out, &outlen);
	assert_non_null(f);
	config_errors_print(&errs, f);
	fclose(f);
	assert_string_equal(out, "t/alice.yaml:1:6: uid: 7 is out of range (1000 to 4294967294)\n"
				 "t/alice.yaml:2:11: hostname: '-x' is not a valid host name\n");
	free(out);

	for (int i = 0; i < 17; i++)
		p += sprintf(p, "k%d: 1\n", i);
	assert_null(host_from(yaml, &errs));
	out = NULL;
	f = open_memstream(&out, &outlen);
	assert_non_null(f);
	config_errors_print(&errs, f);
	fclose(f);
	assert_non_null(strstr(out, "t/fief.yaml:16:1: unknown key 'k15'\n"
				    "t/fief.yaml: further errors not shown\n"));
	assert_null(strstr(out, "'k16'"));
	free(out);
}

/* ---- good files ---- */

static void test_example_host(void **state)
{
	struct config_errors errs;
	struct config_host *h = config_host_load("conf/fief.yaml", &errs);
	const struct fw_rule_vec *out, *in;

	if (!h)
		dump_errors(&errs);
	assert_non_null(h);
	assert_int_equal(errs.n, 0);
	assert_string_equal(h->file, "conf/fief.yaml");
	assert_string_equal(h->state_dir, "/run/fief");
	assert_string_equal(h->tenants_dir, "/etc/fief/tenants.d");
	assert_string_equal(h->distros_dir, "/srv/fief/distros");
	assert_string_equal(h->homes_dir, "/srv/fief/homes");
	assert_string_equal(h->log_dir, "/var/log/fief");
	assert_null(h->opt_dir);
	assert_string_equal(h->cgroup_parent, "fief");
	assert_int_equal(h->launcher.start_concurrency, 0);

	assert_int_equal(h->gateway.listen.n, 2);
	expect_endpoint(&h->gateway.listen.v[0], AF_INET, "0.0.0.0", 22, "0.0.0.0:22");
	expect_endpoint(&h->gateway.listen.v[1], AF_INET6, "::", 22, "[::]:22");
	assert_string_equal(h->gateway.host_keys_dir, "/etc/fief/hostkeys");
	assert_int_equal(h->gateway.workers, 0);
	assert_int_equal(h->router.threads, 0);
	/* auto: one per online CPU, at least 1 and at most 16 */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	assert_int_equal(config_router_threads(h), cpus < 1 ? 1 : cpus > 16 ? 16 : cpus);
	assert_int_equal(h->gateway.login_grace_ms, 30000);
	assert_int_equal(h->gateway.max_auth_tries, 6);
	assert_int_equal(h->gateway.max_unauthenticated, 100);
	assert_string_equal(h->gateway.user, "fief");

	assert_true(h->router.enabled);
	assert_string_equal(h->router.device, "fief0");
	assert_int_equal(h->router.address.addr, IP4(10, 200, 0, 1));
	assert_int_equal(h->router.address.prefix, 16);
	assert_true(h->router.nat.enabled);
	assert_string_equal(h->router.nat.out_interface, "eth0");
	out = &h->router.firewall.out;
	in = &h->router.firewall.in;
	assert_int_equal(out->n, 4);
	expect_rule(&out->v[0], FW_ALLOW, IP4(10, 200, 0, 0), 16, IP4(10, 200, 0, 1), 32);
	expect_rule(&out->v[1], FW_DENY, IP4(10, 200, 0, 0), 16, IP4(10, 200, 0, 0), 16);
	expect_rule(&out->v[2], FW_ALLOW, IP4(10, 200, 0, 0), 16, 0, 0);
	expect_rule(&out->v[3], FW_DENY, 0, 0, 0, 0);
	assert_int_equal(in->n, 4);
	expect_rule(&in->v[0], FW_ALLOW, IP4(10, 200, 0, 1), 32, IP4(10, 200, 0, 0), 16);
	expect_rule(&in->v[1], FW_DENY, IP4(10, 200, 0, 0), 16, IP4(10, 200, 0, 0), 16);
	expect_rule(&in->v[2], FW_ALLOW, 0, 0, IP4(10, 200, 0, 0), 16);
	expect_rule(&in->v[3], FW_DENY, 0, 0, 0, 0);
	/* The example spells out exactly the rules the defaults compute. */
	expect_default_rules(h, IP4(10, 200, 0, 1), 16);

	assert_string_equal(h->http.nginx_map, "/run/fief/nginx-domains.map");
	assert_string_equal(h->http.reload_command, "nginx -s reload");
	expect_endpoint(&h->metrics.listen, AF_INET, "127.0.0.1", 9187, "127.0.0.1:9187");
	assert_true(h->metrics.enabled);
	config_host_free(h);
}

static void expect_default_host(const struct config_host *h)
{
	assert_string_equal(h->state_dir, "/run/fief");
	assert_string_equal(h->tenants_dir, "/etc/fief/tenants.d");
	assert_string_equal(h->distros_dir, "/srv/fief/distros");
	assert_string_equal(h->homes_dir, "/srv/fief/homes");
	assert_string_equal(h->log_dir, "/var/log/fief");
	assert_null(h->opt_dir);
	assert_string_equal(h->cgroup_parent, "fief");
	assert_int_equal(h->gateway.listen.n, 1);
	expect_endpoint(&h->gateway.listen.v[0], AF_INET, "0.0.0.0", 22, "0.0.0.0:22");
	assert_string_equal(h->gateway.host_keys_dir, "/etc/fief/hostkeys");
	assert_int_equal(h->gateway.workers, 0);
	assert_int_equal(h->gateway.login_grace_ms, 30000);
	assert_int_equal(h->gateway.max_auth_tries, 6);
	assert_int_equal(h->gateway.max_unauthenticated, 100);
	assert_string_equal(h->gateway.user, "fief");
	assert_true(h->router.enabled);
	assert_string_equal(h->router.device, "fief0");
	assert_int_equal(h->router.address.addr, IP4(10, 200, 0, 1));
	assert_int_equal(h->router.address.prefix, 16);
	assert_false(h->router.nat.enabled);
	assert_string_equal(h->router.nat.out_interface, "eth0");
	expect_default_rules(h, IP4(10, 200, 0, 1), 16);
	assert_string_equal(h->http.nginx_map, "/run/fief/nginx-domains.map");
	assert_string_equal(h->http.reload_command, "nginx -s reload");
	expect_endpoint(&h->metrics.listen, AF_INET, "127.0.0.1", 9187, "127.0.0.1:9187");
	assert_true(h->metrics.enabled);
}

static void test_empty_host(void **state)
{
	static const char *const empties[] = {
		"", "\n", "# nothing but a comment\n", "~\n", "null\n", "---\n", "---\n...\n", "{}\n",
		"gateway:\nrouter:\nhttp: ~\nmetrics: {}\n",
	};
	struct config_errors errs;

	for (size_t i = 0; i < ARRAY_SIZE(empties); i++) {
		struct config_host *h = host_from(empties[i], &errs);
		if (!h) {
			print_message("    input %zu: '%s'\n", i, empties[i]);
			dump_errors(&errs);
		}
		assert_non_null(h);
		assert_string_equal(h->file, "t/fief.yaml");
		expect_default_host(h);
		config_host_free(h);
	}
}

/* The default rules follow the router address; explicit rules replace them. */
static void test_host_computed_rules(void **state)
{
	struct config_errors errs;
	struct config_host *h = host_from("router: { address: 192.168.7.9/24 }\n", &errs);

	assert_non_null(h);
	expect_default_rules(h, IP4(192, 168, 7, 9), 24);
	config_host_free(h);

	h = host_from("router:\n  address: 172.16.0.1/12\n  firewall: { out: [], in: [] }\n", &errs);
	assert_non_null(h);
	expect_default_rules(h, IP4(172, 16, 0, 1), 12);
	config_host_free(h);

	h = host_from("router:\n  firewall:\n    out: [deny]\n    in: [\"allow\\t1.2.3.0/24   10.200.0.7\"]\n",
		      &errs);
	assert_non_null(h);
	assert_int_equal(h->router.firewall.out.n, 1);
	expect_rule(&h->router.firewall.out.v[0], FW_DENY, 0, 0, 0, 0);
	assert_int_equal(h->router.firewall.in.n, 1);
	expect_rule(&h->router.firewall.in.v[0], FW_ALLOW, IP4(1, 2, 3, 0), 24, IP4(10, 200, 0, 7), 32);
	config_host_free(h);
}

/* Values other than the example's: auto/none spellings and bounds. */
static void test_host_values(void **state)
{
	static const char yaml[] =
		"opt_dir: /srv/opt\n"
		"cgroup_parent: system.slice/fief-tenants\n"
		"gateway:\n"
		"  listen: [\"127.0.0.1:2222\", \"[::1]:65535\"]\n"
		"  workers: 256\n"
		"  login_grace: 1h\n"
		"  max_auth_tries: 100\n"
		"  max_unauthenticated: 1000000\n"
		"  user: fief_gw\n"
		"router:\n"
		"  enabled: no\n"
		"  device: tun-fief.0\n"
		"  threads: 3\n"
		"  address: 10.0.0.254/30\n"
		"  nat: { enabled: yes, out_interface: enp0s31f6 }\n"
		"http: { reload_command: ~ }\n"
		"metrics: { listen: \"[::]:1\", enabled: off }\n"
		"launcher: { start_concurrency: 4096 }\n";
	struct config_errors errs;
	struct config_host *h = host_from(yaml, &errs);

	if (!h)
		dump_errors(&errs);
	assert_non_null(h);
	assert_string_equal(h->opt_dir, "/srv/opt");
	assert_string_equal(h->cgroup_parent, "system.slice/fief-tenants");
	assert_int_equal(h->gateway.listen.n, 2);
	expect_endpoint(&h->gateway.listen.v[0], AF_INET, "127.0.0.1", 2222, "127.0.0.1:2222");
	expect_endpoint(&h->gateway.listen.v[1], AF_INET6, "::1", 65535, "[::1]:65535");
	assert_int_equal(h->gateway.workers, 256);
	assert_int_equal(h->launcher.start_concurrency, 4096);
	assert_int_equal(h->gateway.login_grace_ms, 3600000);
	assert_int_equal(h->gateway.max_auth_tries, 100);
	assert_int_equal(h->gateway.max_unauthenticated, 1000000);
	assert_string_equal(h->gateway.user, "fief_gw");
	assert_false(h->router.enabled);
	assert_string_equal(h->router.device, "tun-fief.0");
	assert_int_equal(h->router.threads, 3);
	assert_int_equal(config_router_threads(h), 3);
	assert_int_equal(h->router.address.addr, IP4(10, 0, 0, 254));
	assert_int_equal(h->router.address.prefix, 30);
	assert_true(h->router.nat.enabled);
	assert_string_equal(h->router.nat.out_interface, "enp0s31f6");
	/* YAML null means no command, not the command "~". */
	assert_string_equal(h->http.reload_command, "");
	expect_endpoint(&h->metrics.listen, AF_INET6, "::", 1, "[::]:1");
	assert_false(h->metrics.enabled);
	config_host_free(h);

	h = host_from("http: { reload_command: \"\" }\n", &errs);
	assert_non_null(h);
	assert_string_equal(h->http.reload_command, "");
	config_host_free(h);
	h = host_from("http: { reload_command: null }\ngateway: { login_grace: 1s }\n", &errs);
	assert_non_null(h);
	assert_string_equal(h->http.reload_command, "");
	assert_int_equal(h->gateway.login_grace_ms, 1000);
	config_host_free(h);
}

static struct config_host *load_example_host(void)
{
	struct config_errors errs;
	struct config_host *h = config_host_load("conf/fief.yaml", &errs);

	if (!h)
		dump_errors(&errs);
	assert_non_null(h);
	return h;
}

static void test_example_alice(void **state)
{
	struct config_host *h = load_example_host();
	struct config_errors errs;
	struct config_tenant *t = config_tenant_load("conf/tenants.d/alice.yaml", h, &errs);
	const struct config_app *web, *api;

	if (!t)
		dump_errors(&errs);
	assert_non_null(t);
	assert_int_equal(errs.n, 0);
	assert_string_equal(t->file, "conf/tenants.d/alice.yaml");
	assert_string_equal(t->name, "alice");
	assert_int_equal(t->uid, 20001);
	assert_string_equal(t->distro, "bookworm");
	assert_string_equal(t->hostname, "alice");
	assert_int_equal(t->limits.memory, 512ULL << 20);
	assert_int_equal(t->limits.cpu_millis, 500);
	assert_int_equal(t->limits.pids, 256);
	assert_int_equal(t->limits.tmp, 64ULL << 20);

	assert_int_equal(t->ssh.authorized_keys.n, 1);
	assert_string_equal(t->ssh.authorized_keys.v[0],
			    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbUqJ2yfT6w1WqzAfbmFEHNVKsbsVQlbn8qYd6cPI5L alice@laptop");
	assert_string_equal(t->ssh.shell, "/bin/bash");
	assert_null(t->ssh.password_hash);
	assert_int_equal(t->ssh.accept_env.n, 0);

	assert_true(t->network.has_address);
	assert_int_equal(t->network.address, IP4(10, 200, 0, 2));
	assert_int_equal(t->network.rate_limit, 0);
	assert_int_equal(t->network.line, 10);
	assert_int_equal(t->network.col, 21);

	assert_int_equal(t->env.n, 1);
	assert_string_equal(t->env.v[0].name, "TZ");
	assert_string_equal(t->env.v[0].value, "Europe/Rome");

	assert_int_equal(t->apps.n, 2);
	web = &t->apps.v[0];
	assert_string_equal(web->name, "web");
	assert_int_equal(web->type, APP_WSGI);
	assert_string_equal(web->module, "myapp:application");
	assert_null(web->script);
	assert_null(web->command);
	assert_string_equal(web->chdir, "/home/alice/app");
	assert_int_equal(web->domains.n, 2);
	assert_string_equal(web->domains.v[0], "alice.example.com");
	assert_string_equal(web->domains.v[1], "www.alice.example.com");
	assert_int_equal(web->workers, 2);
	assert_true(web->lazy_apps);
	assert_int_equal(web->line, 13);
	assert_int_equal(web->col, 5);
	assert_int_equal(web->name_line, 13);
	assert_int_equal(web->name_col, 11);
	assert_int_equal(web->domains_line, 17);
	assert_int_equal(web->domains_col, 14);
	api = &t->apps.v[1];
	assert_string_equal(api->name, "api");
	assert_int_equal(api->type, APP_COMMAND);
	assert_null(api->module);
	assert_null(api->script);
	assert_string_equal(api->command, "/home/alice/bin/api-server");
	assert_string_equal(api->chdir, "/home/alice");
	assert_int_equal(api->domains.n, 0);
	assert_int_equal(api->workers, 1);
	assert_true(api->lazy_apps);
	assert_int_equal(api->line, 20);
	assert_int_equal(api->col, 5);

	assert_int_equal(t->daemons.n, 1);
	assert_string_equal(t->daemons.v[0].name, "redis");
	assert_string_equal(t->daemons.v[0].command, "redis-server --port 6379 --bind 127.0.0.1");
	assert_int_equal(t->daemons.v[0].line, 24);
	assert_int_equal(t->daemons.v[0].name_line, 24);
	assert_int_equal(t->daemons.v[0].name_col, 11);

	assert_int_equal(t->cron.n, 2);
	expect_cron(&t->cron.v[0], 1ULL << 59, 1U << 23, (uint32_t)bits(1, 31, 1), (uint16_t)bits(1, 12, 1),
		    0x7f, true, true, "/home/alice/bin/nightly");
	expect_cron(&t->cron.v[1], bits(0, 59, 5), (uint32_t)bits(0, 23, 1), (uint32_t)bits(1, 31, 1),
		    (uint16_t)bits(1, 12, 1), 1U << 6, true, false, "/home/alice/bin/every-five-on-saturday");
	config_tenant_free(t);
	config_host_free(h);
}

static void test_example_bob(void **state)
{
	struct config_host *h = load_example_host();
	struct config_errors errs;
	struct config_tenant *t = config_tenant_load("conf/tenants.d/bob.yaml", h, &errs);
	const struct config_app *blog, *shop;

	if (!t)
		dump_errors(&errs);
	assert_non_null(t);
	assert_string_equal(t->file, "conf/tenants.d/bob.yaml");
	assert_string_equal(t->name, "bob");
	assert_int_equal(t->uid, 20002);
	assert_string_equal(t->distro, "bookworm");
	assert_string_equal(t->hostname, "bob");           /* defaults to the name */
	assert_int_equal(t->limits.memory, 256ULL << 20);
	assert_int_equal(t->limits.cpu_millis, 250);
	assert_int_equal(t->limits.pids, 128);
	assert_int_equal(t->limits.tmp, 64ULL << 20);      /* default */
	assert_int_equal(t->ssh.authorized_keys.n, 1);
	assert_string_equal(t->ssh.authorized_keys.v[0],
			    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFf5ZpZ4i9kDbS0KjYH0bqDqBvJmN8wGXNqFJ+vXWmSa bob@desk");
	assert_string_equal(t->ssh.shell, "/bin/bash");
	assert_null(t->ssh.password_hash);
	assert_int_equal(t->ssh.accept_env.n, 0);
	assert_false(t->network.has_address);
	assert_int_equal(t->network.rate_limit, 0);
	assert_int_equal(t->env.n, 0);

	assert_int_equal(t->apps.n, 2);
	blog = &t->apps.v[0];
	assert_string_equal(blog->name, "blog");
	assert_int_equal(blog->type, APP_PSGI);
	assert_null(blog->module);
	assert_string_equal(blog->script, "/home/bob/blog/app.psgi");
	assert_null(blog->command);
	assert_string_equal(blog->chdir, "/home/bob");
	assert_int_equal(blog->domains.n, 2);
	assert_string_equal(blog->domains.v[0], "bob.example.org");
	assert_string_equal(blog->domains.v[1], "*.bob.example.org");
	assert_int_equal(blog->workers, 1);
	assert_true(blog->lazy_apps);
	shop = &t->apps.v[1];
	assert_string_equal(shop->name, "shop");
	assert_int_equal(shop->type, APP_RACK);
	assert_null(shop->module);
	assert_string_equal(shop->script, "/home/bob/shop/config.ru");
	assert_null(shop->command);
	assert_string_equal(shop->chdir, "/home/bob");
	assert_int_equal(shop->domains.n, 1);
	assert_string_equal(shop->domains.v[0], "shop.example.org");
	assert_int_equal(shop->workers, 2);
	assert_true(shop->lazy_apps);
	assert_int_equal(t->daemons.n, 0);

	assert_int_equal(t->cron.n, 2);
	expect_cron(&t->cron.v[0], 1, 1U << 3, (uint32_t)bits(1, 31, 1), (uint16_t)bits(1, 12, 1), 1,
		    true, false, "/home/bob/bin/weekly-backup");
	expect_cron(&t->cron.v[1], bits(0, 59, 15), (uint32_t)bits(0, 23, 1), (uint32_t)bits(1, 31, 1),
		    (uint16_t)bits(1, 12, 1), 0x7f, true, true, "/home/bob/bin/poll");
	config_tenant_free(t);
	config_host_free(h);
}

/* A tenant file with nothing but uid gets every default. */
static void test_minimal_tenant(void **state)
{
	struct config_errors errs;
	struct config_tenant *t = tenant_from("/etc/fief/tenants.d/carol-2.yaml", "uid: auto\n", net_host, &errs);

	assert_non_null(t);
	assert_string_equal(t->name, "carol-2");
	assert_int_equal(t->uid, CONFIG_UID_AUTO);
	assert_string_equal(t->distro, "bookworm");
	assert_string_equal(t->hostname, "carol-2");
	assert_int_equal(t->limits.memory, 512ULL << 20);
	assert_int_equal(t->limits.cpu_millis, 1000);
	assert_int_equal(t->limits.pids, 512);
	assert_int_equal(t->limits.tmp, 64ULL << 20);
	assert_int_equal(t->ssh.authorized_keys.n, 0);
	assert_string_equal(t->ssh.shell, "/bin/bash");
	assert_null(t->ssh.password_hash);
	assert_int_equal(t->ssh.accept_env.n, 0);
	assert_false(t->network.has_address);
	assert_int_equal(t->network.rate_limit, 0);
	assert_int_equal(t->env.n, 0);
	assert_int_equal(t->apps.n, 0);
	assert_int_equal(t->daemons.n, 0);
	assert_int_equal(t->cron.n, 0);
	config_tenant_free(t);

	/* Empty sections and lists are the same as leaving them out. */
	t = tenant_from("t/a.yaml", "uid: 1000\nlimits:\nssh: {}\nnetwork: ~\nenv:\napps: []\ndaemons:\ncron: []\n",
			NULL, &errs);
	if (!t)
		dump_errors(&errs);
	assert_non_null(t);
	assert_string_equal(t->name, "a");
	assert_int_equal(t->uid, 1000);
	assert_int_equal(t->limits.memory, 512ULL << 20);
	assert_false(t->network.has_address);
	assert_int_equal(t->apps.n + t->daemons.n + t->cron.n + t->env.n, 0);
	config_tenant_free(t);
}

/* Values at the edges of their bounds, and other spellings. */
static void test_tenant_values(void **state)
{
	static const char yaml[] =
		"uid: 4294967294\n"
		"distro: trixie_2\n"
		"hostname: shop.example.org\n"
		"limits: { memory: 16M, cpu: 0.01, pids: 8, tmp: 1M }\n"
		"ssh:\n"
		"  authorized_keys: [\"ssh-rsa AAAA x\", \"ssh-ed25519 BBBB y\"]\n"
		"  shell: /usr/bin/fish\n"
		"  password_hash: \"$6$rounds=5000$saltsalt$abcdefghijklmnopqrstuvwxyz./0123456789\"\n"
		"  accept_env: [LANG, \"LC_*\"]\n"
		"network: { address: 10.200.255.254, rate_limit: 1M }\n"
		"env: { A: \"\", _B2: \"two words\", C: 3 }\n"
		"apps:\n"
		"  - { name: a_1, type: wsgi, module: \"m:app\", workers: 64, lazy_apps: false,\n"
		"      domains: [\"*.example.com\", xn--bcher-kva.example] }\n"
		"daemons:\n"
		"  - { name: d-1, command: \"sleep 1\" }\n"
		"cron:\n"
		"  - \"0 12 1,15 jan,jul sun  run  it \"\n";
	struct config_errors errs;
	struct config_tenant *t = tenant_from("t/zed.yaml", yaml, net_host, &errs);

	if (!t)
		dump_errors(&errs);
	assert_non_null(t);
	assert_int_equal(t->uid, 4294967294LL);
	assert_string_equal(t->distro, "trixie_2");
	assert_string_equal(t->hostname, "shop.example.org");
	assert_int_equal(t->limits.memory, 16ULL << 20);
	assert_int_equal(t->limits.cpu_millis, 10);
	assert_int_equal(t->limits.pids, 8);
	assert_int_equal(t->limits.tmp, 1ULL << 20);
	assert_int_equal(t->ssh.authorized_keys.n, 2);
	assert_string_equal(t->ssh.authorized_keys.v[1], "ssh-ed25519 BBBB y");
	assert_string_equal(t->ssh.shell, "/usr/bin/fish");
	assert_string_equal(t->ssh.password_hash, "$6$rounds=5000$saltsalt$abcdefghijklmnopqrstuvwxyz./0123456789");
	assert_int_equal(t->ssh.accept_env.n, 2);
	assert_string_equal(t->ssh.accept_env.v[0], "LANG");
	assert_string_equal(t->ssh.accept_env.v[1], "LC_*");
	assert_true(t->network.has_address);
	assert_int_equal(t->network.address, IP4(10, 200, 255, 254));
	assert_int_equal(t->network.rate_limit, 1ULL << 20);
	assert_int_equal(t->env.n, 3);
	assert_string_equal(t->env.v[0].name, "A");
	assert_string_equal(t->env.v[0].value, "");
	assert_string_equal(t->env.v[1].name, "_B2");
	assert_string_equal(t->env.v[1].value, "two words");
	assert_string_equal(t->env.v[2].value, "3");
	assert_int_equal(t->apps.n, 1);
	assert_string_equal(t->apps.v[0].name, "a_1");
	assert_int_equal(t->apps.v[0].workers, 64);
	assert_false(t->apps.v[0].lazy_apps);
	assert_string_equal(t->apps.v[0].chdir, "/home/zed");
	assert_string_equal(t->apps.v[0].domains.v[0], "*.example.com");
	assert_string_equal(t->apps.v[0].domains.v[1], "xn--bcher-kva.example");
	assert_string_equal(t->daemons.v[0].name, "d-1");
	assert_int_equal(t->cron.n, 1);
	expect_cron(&t->cron.v[0], 1, 1U << 12, 1U << 1 | 1U << 15, 1U << 1 | 1U << 7, 1, false, false,
		    "run  it ");
	config_tenant_free(t);
}

/* Address checks need the host, and only when its router is on. */
static void test_network_needs_host(void **state)
{
	static const char yaml[] = "uid: 1000\nnetwork: { address: 192.168.1.1 }\n";
	struct config_errors errs;
	struct config_tenant *t;

	t = tenant_from("t/alice.yaml", yaml, NULL, &errs);
	assert_non_null(t);
	assert_int_equal(t->network.address, IP4(192, 168, 1, 1));
	config_tenant_free(t);
	t = tenant_from("t/alice.yaml", yaml, off_host, &errs);
	assert_non_null(t);
	config_tenant_free(t);
	t = tenant_from("t/alice.yaml", yaml, net_host, &errs);
	assert_null(t);
	assert_string_equal(errs.e[0].msg, "network.address: 192.168.1.1 is outside the router subnet 10.200.0.0/16");
}

/* Aliases are fine while they stay small. */
static void test_small_aliases(void **state)
{
	static const char yaml[] =
		"uid: 1000\n"
		"apps:\n"
		"  - &base { name: one, type: command, command: &cmd /bin/server }\n"
		"daemons:\n"
		"  - { name: two, command: *cmd }\n";
	struct config_errors errs;
	struct config_tenant *t = tenant_from("t/alice.yaml", yaml, NULL, &errs);

	if (!t)
		dump_errors(&errs);
	assert_non_null(t);
	assert_string_equal(t->daemons.v[0].command, "/bin/server");
	config_tenant_free(t);
}

static void test_name_from_path(void **state)
{
	static const struct { const char *path, *name; } good[] = {
		{ "alice.yaml", "alice" },
		{ "/etc/fief/tenants.d/bob.yaml", "bob" },
		{ "x/a.yaml", "a" },
		{ "a-b-1.yaml", "a-b-1" },
		{ "abcdefghijabcdefghijabcdefghijab.yaml", "abcdefghijabcdefghijabcdefghijab" },
	};
	static const char *const bad[] = {
		"alice", "alice.yml", "alice.yaml.bak", ".yaml", "dir/.yaml", "Alice.yaml", "-a.yaml",
		"a_b.yaml", "a b.yaml", "abcdefghijabcdefghijabcdefghijabc.yaml", "alice.yaml/", "",
	};
	char name[64];

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		assert_int_equal(config_tenant_name_from_path(good[i].path, name, sizeof name), 0);
		assert_string_equal(name, good[i].name);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (config_tenant_name_from_path(bad[i], name, sizeof name) != -1)
			print_message("    accepted '%s'\n", bad[i]);
		assert_int_equal(config_tenant_name_from_path(bad[i], name, sizeof name), -1);
	}
	/* The output buffer bounds the name too. */
	assert_int_equal(config_tenant_name_from_path("alice.yaml", name, 5), -1);
	assert_int_equal(config_tenant_name_from_path("alice.yaml", name, 6), 0);
}

static void test_looks_like_host(void **state)
{
	static const char host[] = "state_dir: /run/fief\n";
	static const char tenant[] = "uid: 1000\n";
	char *buf;
	size_t len;

	assert_true(config_looks_like_host(host, strlen(host)));
	assert_false(config_looks_like_host(tenant, strlen(tenant)));
	assert_false(config_looks_like_host("", 0));
	assert_false(config_looks_like_host("[", 1));
	assert_int_equal(config_read_file("conf/fief.yaml", CONFIG_MAX_FILE, &buf, &len), 0);
	assert_true(config_looks_like_host(buf, len));
	free(buf);
	assert_int_equal(config_read_file("conf/tenants.d/alice.yaml", CONFIG_MAX_FILE, &buf, &len), 0);
	assert_false(config_looks_like_host(buf, len));
	free(buf);
	assert_int_equal(config_read_file("conf/fief.yaml", 10, &buf, &len), -EFBIG);
}

static void test_schema_markdown(void **state)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	config_schema_markdown(f);
	fclose(f);
	assert_non_null(strstr(out, "### Host file"));
	assert_non_null(strstr(out, "### Tenant file"));
	assert_non_null(strstr(out, "| `uid` | uid or auto (1000 to 4294967294) | **required** |"));
	assert_non_null(strstr(out, "| `limits.memory` | size (K, M, G, T) (16M to 16T) | `512M` |"));
	assert_non_null(strstr(out, "| `apps[].workers` | integer (1 to 64) | `1` |"));
	assert_non_null(strstr(out, "| `gateway.login_grace` | duration (ms, s, m, h, d) (1s to 3600s) | `30s` |"));
	free(out);
}

/* IPv6: a tenant address inside router.address6, and the checks on it. */
static void test_network6(void **state)
{
	static const char hy[] = "router: { address: 10.200.0.1/16, address6: 'fd00:f1ef::1/64' }\n";
	static const struct { const char *addr6, *err; } cases[] = {
		{ "fd00:f1ef::2", NULL },
		{ "fd00:f1ef::ffff:1", NULL },
		{ "fd00:f1ef:0:1::2", "network.address6: fd00:f1ef:0:1::2 is outside the router subnet fd00:f1ef::1/64" },
		{ "fd00:f1ef::1", "network.address6: fd00:f1ef::1 is the router or subnet address of fd00:f1ef::1/64" },
		{ "fd00:f1ef::", "network.address6: fd00:f1ef:: is the router or subnet address of fd00:f1ef::1/64" },
	};
	struct config_errors errs;
	struct config_host *h = host_from(hy, &errs);
	char yaml[256];

	assert_non_null(h);
	assert_true(h->router.has_address6);
	assert_int_equal(h->router.address6.prefix, 64);
	assert_int_equal(h->router.firewall.out.n, 7);
	assert_int_equal(h->router.firewall.out.v[6].family, FW_ANY);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config_tenant *t;
		snprintf(yaml, sizeof yaml, "uid: 1000\nnetwork: { address: 10.200.0.5, address6: '%s' }\n",
			 cases[i].addr6);
		t = tenant_from("t/alice.yaml", yaml, h, &errs);
		if (!cases[i].err) {
			uint8_t want[16];
			assert_non_null(t);
			assert_true(t->network.has_address6);
			assert_int_equal(value_ipv6(cases[i].addr6, want, NULL), 0);
			assert_memory_equal(t->network.address6, want, 16);
			config_tenant_free(t);
		} else {
			assert_null(t);
			assert_non_null(strstr(errs.e[0].msg, cases[i].err));
		}
	}
	config_host_free(h);
}

/* ---- groups ---- */

static int setup_hosts(void **state)
{
	static const char on[] = "router: { address: 10.200.0.1/16 }\n";
	static const char off[] = "router: { enabled: false, address: 10.200.0.1/16 }\n";
	struct config_errors errs;

	net_host = host_from(on, &errs);
	off_host = host_from(off, &errs);
	return net_host && off_host ? 0 : -1;
}

static int teardown_hosts(void **state)
{
	config_host_free(net_host);
	config_host_free(off_host);
	net_host = off_host = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest good_tests[] = {
		cmocka_unit_test(test_example_host),
		cmocka_unit_test(test_example_alice),
		cmocka_unit_test(test_example_bob),
		cmocka_unit_test(test_empty_host),
		cmocka_unit_test(test_host_computed_rules),
		cmocka_unit_test(test_host_values),
		cmocka_unit_test(test_minimal_tenant),
		cmocka_unit_test(test_tenant_values),
		cmocka_unit_test(test_network_needs_host),
		cmocka_unit_test(test_small_aliases),
		cmocka_unit_test(test_name_from_path),
		cmocka_unit_test(test_looks_like_host),
		cmocka_unit_test(test_schema_markdown),
		cmocka_unit_test(test_error_format),
		cmocka_unit_test(test_errors_print),
		cmocka_unit_test(test_alias_bytes_capped),
		cmocka_unit_test(test_too_many_nodes),
		cmocka_unit_test(test_env_name_too_long),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_two_errors),
		cmocka_unit_test(test_network6),
	};
	int failed = 0;

	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++)
		bad_tests[i] = (struct CMUnitTest){ .name = bad_cases[i].name, .test_func = run_bad_case,
						    .initial_state = (void *)&bad_cases[i] };
	failed += cmocka_run_group_tests_name("config_good", good_tests, setup_hosts, teardown_hosts);
	failed += cmocka_run_group_tests_name("config_bad_inputs", bad_tests, setup_hosts, teardown_hosts);
	return failed;
}
