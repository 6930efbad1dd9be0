/* Unit tests for gateway/authkeys: the authorized_keys parser, the from=
 * and permitopen matchers and the base64 decoder. The module is built
 * into this test directly (it needs nothing but libc). Tables first, one
 * loop per table; a failing row prints itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../gateway/authkeys.c"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		bool ok_ = (cond);                                         \
		if (!ok_) {                                                \
			print_message("    row: " __VA_ARGS__);            \
			print_message("\n");                               \
		}                                                          \
		_assert_true(ok_, #cond, __FILE__, __LINE__);              \
	} while (0)

#define ED "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFIo6mYjjXdAPA+g3xXRRLZC58CzTAQvwEmsGe1oinBb"
#define ECDSA "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBL6bFm55THhbt/BxKu35Qe9ki1OD2gZ2uT9UxQuc6DmkgkF1lqrzZXeMx3HvE7DDFcQ7wmuAj4KpYfioRPASwD0="
#define RSA "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCf4Mb2pUh/zuqFs7FLn2k1in1C0cCyb2S2jITvJak+WBkhKjvRc3nSpsiFldtGZZbxcwSSCrKOqpaYnwlQ4AqpeD4IiGzx61OQl4ZTz5Wyoneq08Ss/5Lk5DS8O/lYg+KTlxEC64A/DvJy33vui5DlkemUmzsQbdIm38RTzAOKSnnUYQl5ad/vpIZjoXTDBAV+d6CHxZ8tlEqcdePKGWpS/U+4rszOdCfKalAE5KSS1PFI8ONAKu9hX3iVYsGDA6eDuKnRVOGqJu1zXvTwYut8ILtTDFQprxfWe0QirTZPOYg6cOGoRXulo87+k8/GxlaC28ZyGsQEoJ9NFN8Gp+OmtUxZS+UP7N3O2EFMTFmGPyhzNjBdjxB0XjRTxCpf1oZEcAtJMrSiWG9/HvRXNwBxzYNsnwNw/srgz9CDO4Dc3Rt3ABFHuXQO35WejGbNDi3OxZGonG5CrQ9KYGbmAZ+2JtfpW7Nu6XwJjQgWqHUwUj1z1p/zIDp6bIJHkmTekj8="
#define DSA "ssh-dss AAAAB3NzaC1kc3MAAACBAIqYa9x8NCh1Ssfd3AOKKEGuF3j0CXRUGy28OwWDqQLTy3QHE0Rk"
/* The ed25519 blob with its type string claiming RSA. */
#define MISMATCH "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIFIo6mYjjXdAPA+g3xXRRLZC58CzTAQvwEmsGe1oinBb"

static int parse(const char *line, struct authkey *k, char *why)
{
	return authkeys_parse_line(line, strlen(line), k, why, AUTHKEYS_WHY);
}

/* ---- lines that hold no key ---- */

static void test_blank_and_comments(void **state)
{
	static const char *const rows[] = { "", "   ", "\t", "# a comment", "   # indented", "\r" };
	struct authkey k;
	char why[AUTHKEYS_WHY];

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
		CHECK(parse(rows[i], &k, why) == 0, "'%s'", rows[i]);
}

/* ---- accepted lines ---- */

static void test_plain_keys(void **state)
{
	struct authkey k;
	char why[AUTHKEYS_WHY];

	assert_int_equal(parse(ED " alice@laptop", &k, why), 1);
	assert_string_equal(k.type, "ssh-ed25519");
	assert_int_equal(k.blob_len, 51);              /* 4+11 + 4+32 */
	assert_memory_equal(k.blob + 4, "ssh-ed25519", 11);
	assert_string_equal(k.comment, "alice@laptop");
	assert_false(k.no_pty);
	assert_false(k.no_port_forwarding);
	assert_null(k.command);
	assert_null(k.from);
	authkey_free(&k);

	assert_int_equal(parse("  " ECDSA "   two words \r", &k, why), 1);
	assert_string_equal(k.type, "ecdsa-sha2-nistp256");
	assert_string_equal(k.comment, "two words");
	authkey_free(&k);

	assert_int_equal(parse(RSA, &k, why), 1);
	assert_string_equal(k.type, "ssh-rsa");
	assert_string_equal(k.comment, "");
	authkey_free(&k);
}

static void test_options_honoured(void **state)
{
	struct authkey k;
	char why[AUTHKEYS_WHY];

	assert_int_equal(parse("restrict " ED, &k, why), 1);
	assert_true(k.no_pty && k.no_port_forwarding);
	authkey_free(&k);

	assert_int_equal(parse("restrict,pty,port-forwarding " ED, &k, why), 1);
	assert_false(k.no_pty || k.no_port_forwarding);
	authkey_free(&k);

	assert_int_equal(parse("NO-PTY,No-Port-Forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc " ED,
			       &k, why), 1);
	assert_true(k.no_pty && k.no_port_forwarding);
	authkey_free(&k);

	assert_int_equal(parse("command=\"echo \\\"hi\\\" \\\\n, there\",from=\"10.0.0.0/8,!10.1.2.3\" " ED " c",
			       &k, why), 1);
	/* Only \" is an escape, as in OpenSSH: other backslashes stay. */
	assert_string_equal(k.command, "echo \"hi\" \\\\n, there");
	assert_string_equal(k.from, "10.0.0.0/8,!10.1.2.3");
	assert_string_equal(k.comment, "c");
	authkey_free(&k);

	assert_int_equal(parse("permitopen=\"localhost:8080\",permitopen=\"[::1]:*\" " ED, &k, why), 1);
	assert_string_equal(k.permitopen, "localhost:8080,[::1]:*");
	authkey_free(&k);

	/* The quoted value may hold spaces: the key starts after it. */
	assert_int_equal(parse("command=\"a b c\" " ED, &k, why), 1);
	assert_string_equal(k.command, "a b c");
	authkey_free(&k);
}

/* ---- refused lines ---- */

struct bad {
	const char *line;
	const char *why;                 /* a substring of the reason */
};

static void test_refused(void **state)
{
	static const struct bad rows[] = {
		{ "cert-authority " ED, "'cert-authority' is not supported" },
		{ "principals=\"a\" " ED, "'principals' is not supported" },
		{ "environment=\"A=b\" " ED, "'environment' is not supported" },
		{ "tunnel=\"1\" " ED, "'tunnel' is not supported" },
		{ "expiry-time=\"20300101\" " ED, "'expiry-time' is not supported" },
		{ "permitlisten=\"8080\" " ED, "'permitlisten' is not supported" },
		{ "no-touch-required " ED, "not supported" },
		{ "verify-required " ED, "not supported" },
		{ "frobnicate " ED, "unknown option 'frobnicate'" },
		{ "no-pty=\"x\" " ED, "unknown option" },
		{ "command=echo " ED, "double quotes" },
		{ "command=\"echo " ED, "missing closing quote" },
		{ "command=\"a\",command=\"b\" " ED, "given twice" },
		{ "from=\"a\",from=\"b\" " ED, "given twice" },
		{ "from=\"10.0.0.0/33\" " ED, "not a valid pattern list" },
		{ "from=\"\" " ED, "not a valid pattern list" },
		{ "from=\"10.0.0.0/8,,1.2.3.4\" " ED, "not a valid pattern list" },
		{ "from=\"a b\" " ED, "not a valid pattern list" },
		{ "permitopen=\"nohost\" " ED, "not host:port" },
		{ "permitopen=\"h:0\" " ED, "not host:port" },
		{ "permitopen=\"h:65536\" " ED, "not host:port" },
		{ "permitopen=\"::1:22\" " ED, "not host:port" },
		{ "restrict, " ED, "bad option list" },
		{ "restrict,,no-pty " ED, "bad option list" },
		{ DSA, "DSA keys are not accepted" },
		{ "ssh-ed25519-cert-v01@openssh.com AAAA", "certificates are not supported" },
		{ "ssh-ed25519", "key data missing" },
		{ "ssh-ed25519 AAAA$AAA", "not base64" },
		{ "ssh-ed25519 A", "not base64" },
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFIo6mYjjXdAPA+g3xXRRLZC58CzTAQvwEmsGe1oinB", "not base64" },
		{ MISMATCH, "does not match its type" },
		{ "ssh-ed25519 AAAA", "does not match" },
		{ "restrict", "no key after the options" },
		{ "restrict ssh-foo AAAA", "unknown key type" },
	};
	struct authkey k;
	char why[AUTHKEYS_WHY];

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		int r = parse(rows[i].line, &k, why);
		CHECK(r == -1 && strstr(why, rows[i].why), "'%.60s' -> %d '%s'", rows[i].line, r, why);
		CHECK(k.blob == NULL && k.command == NULL && k.from == NULL, "'%.60s' leaked", rows[i].line);
	}
}

static void test_refused_bytes(void **state)
{
	char line[AUTHKEYS_MAX_LINE + 64], why[AUTHKEYS_WHY];
	struct authkey k;

	memcpy(line, "ssh-ed25519 AA\0AA", 17);
	assert_int_equal(authkeys_parse_line(line, 17, &k, why, sizeof why), -1);
	assert_non_null(strstr(why, "NUL"));

	memset(line, 'A', sizeof line);
	memcpy(line, "ssh-ed25519 ", 12);
	assert_int_equal(authkeys_parse_line(line, sizeof line, &k, why, sizeof why), -1);
	assert_non_null(strstr(why, "longer than"));
}

/* ---- whole files ---- */

struct warned {
	int lines[8];
	int n;
};

static void record(void *data, int line, const char *why)
{
	struct warned *w = data;

	assert_true(why[0]);
	if (w->n < 8)
		w->lines[w->n++] = line;
}

static void test_file(void **state)
{
	static const char text[] = "# keys\r\n" ED " one\r\n\nbogus line\n" "no-pty " RSA " two\n" DSA "\n" ECDSA;
	struct authkeys ks;
	struct warned w = { 0 };
	struct authkey k;
	char why[AUTHKEYS_WHY];

	assert_int_equal(authkeys_parse(text, sizeof text - 1, &ks, record, &w), 0);
	assert_int_equal(ks.n, 3);
	assert_int_equal(ks.v[0].line, 2);
	assert_string_equal(ks.v[0].comment, "one");
	assert_int_equal(ks.v[1].line, 5);
	assert_true(ks.v[1].no_pty);
	assert_int_equal(ks.v[2].line, 7);
	assert_int_equal(w.n, 2);
	assert_int_equal(w.lines[0], 4);
	assert_int_equal(w.lines[1], 6);

	/* Lookup by exact blob. */
	assert_int_equal(parse(RSA, &k, why), 1);
	assert_ptr_equal(authkeys_find(&ks, k.blob, k.blob_len), &ks.v[1]);
	assert_null(authkeys_find(&ks, k.blob, k.blob_len - 1));
	authkey_free(&k);
	authkeys_free(&ks);
	assert_int_equal(ks.n, 0);

	assert_int_equal(authkeys_parse("", 0, &ks, record, &w), 0);
	assert_int_equal(ks.n, 0);
}

static void test_file_key_limit(void **state)
{
	size_t line = strlen(ED) + 1, n = AUTHKEYS_MAX_KEYS + 5;
	char *text = malloc(line * n + 1);
	struct authkeys ks;
	struct warned w = { 0 };

	for (size_t i = 0; i < n; i++)
		sprintf(text + i * line, "%s\n", ED);
	assert_int_equal(authkeys_parse(text, line * n, &ks, record, &w), 0);
	assert_int_equal(ks.n, AUTHKEYS_MAX_KEYS);
	assert_int_equal(w.n, 1);
	authkeys_free(&ks);
	free(text);
}

/* ---- from= ---- */

struct from_row {
	const char *patterns, *ip;
	int want;
};

static void test_from(void **state)
{
	static const struct from_row rows[] = {
		{ "127.0.0.1", "127.0.0.1", 1 },
		{ "127.0.0.1", "127.0.0.2", 0 },
		{ "127.0.0.0/8", "127.9.9.9", 1 },
		{ "10.0.0.0/8", "127.0.0.1", 0 },
		{ "0.0.0.0/0", "203.0.113.9", 1 },
		{ "10.1.0.0/16,!10.1.2.3", "10.1.2.3", 0 },
		{ "10.1.0.0/16,!10.1.2.3", "10.1.2.4", 1 },
		{ "!10.1.2.3,10.1.0.0/16", "10.1.2.3", 0 },
		{ "!10.1.2.3", "10.9.9.9", 0 },          /* a negation alone admits nobody */
		{ "192.168.*", "192.168.4.5", 1 },
		{ "192.168.?.5", "192.168.4.5", 1 },
		{ "192.168.?.5", "192.168.44.5", 0 },
		{ "*", "198.51.100.1", 1 },
		{ "2001:db8::/32", "2001:db8:1::5", 1 },
		{ "2001:db8::/32", "2001:db9::5", 0 },
		{ "2001:DB8::1", "2001:db8:0::1", 1 },    /* addresses compare as addresses */
		{ "::1", "::1", 1 },
		{ "127.0.0.1", "::ffff:127.0.0.1", 1 },   /* mapped IPv4 is IPv4 */
		{ "10.0.0.0/8", "::ffff:10.2.3.4", 1 },
		{ "host.example.com", "127.0.0.1", 0 },   /* no reverse lookups */
		{ "10.0.0.0/8", "not-an-ip", 0 },
		{ "10.0.0.0/x", "10.0.0.1", -1 },
		{ "10.0.0.0/", "10.0.0.1", -1 },
		{ "300.0.0.0/8", "10.0.0.1", -1 },
		{ "", "10.0.0.1", -1 },
		{ "a,", "10.0.0.1", -1 },
		{ "!", "10.0.0.1", -1 },
		{ "a\"b", "10.0.0.1", -1 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		int r = authkeys_from_match(rows[i].patterns, rows[i].ip);
		CHECK(r == rows[i].want, "from=\"%s\" ip %s -> %d, want %d", rows[i].patterns, rows[i].ip, r,
		      rows[i].want);
	}
}

/* Hostile patterns: a long run of stars must not take exponential time. */
static void test_from_glob_is_linear(void **state)
{
	char pat[4097];

	memset(pat, '*', sizeof pat - 2);
	pat[sizeof pat - 2] = 'x';
	pat[sizeof pat - 1] = 0;
	assert_int_equal(authkeys_from_match(pat, "1.2.3.4.5.6.7.8.9.0.1.2.3.4.5.6.7.8.9"), 0);
}

/* ---- permitopen ---- */

static void test_permitopen(void **state)
{
	assert_true(authkeys_permitopen("localhost:8080", "localhost", 8080));
	assert_true(authkeys_permitopen("LocalHost:8080", "localhost", 8080));
	assert_false(authkeys_permitopen("localhost:8080", "localhost", 8081));
	assert_false(authkeys_permitopen("localhost:8080", "127.0.0.1", 8080));
	assert_true(authkeys_permitopen("a:1,127.0.0.1:*", "127.0.0.1", 5));
	assert_true(authkeys_permitopen("[::1]:22", "::1", 22));
	assert_false(authkeys_permitopen("[::1]:22", "[::1]", 22));
	assert_false(authkeys_permitopen("", "a", 1));
}

/* ---- base64 ---- */

static void test_base64(void **state)
{
	uint8_t out[16];

	assert_int_equal(authkeys_base64_decode("", 0, out, sizeof out), 0);
	assert_int_equal(authkeys_base64_decode("Zg==", 4, out, sizeof out), 1);
	assert_int_equal(out[0], 'f');
	assert_int_equal(authkeys_base64_decode("Zg", 2, out, sizeof out), 1);
	assert_int_equal(authkeys_base64_decode("Zm9v", 4, out, sizeof out), 3);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(authkeys_base64_decode("Zm9vYg=", 7, out, sizeof out), -1);
	assert_int_equal(authkeys_base64_decode("Zh==", 4, out, sizeof out), -1);   /* stray bits */
	assert_int_equal(authkeys_base64_decode("Z", 1, out, sizeof out), -1);
	assert_int_equal(authkeys_base64_decode("Zm9v!", 5, out, sizeof out), -1);
	assert_int_equal(authkeys_base64_decode("Zm9vZm9vZm9v", 12, out, 8), -1);  /* no room */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blank_and_comments),
		cmocka_unit_test(test_plain_keys),
		cmocka_unit_test(test_options_honoured),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_refused_bytes),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_file_key_limit),
		cmocka_unit_test(test_from),
		cmocka_unit_test(test_from_glob_is_linear),
		cmocka_unit_test(test_permitopen),
		cmocka_unit_test(test_base64),
	};

	return cmocka_run_group_tests_name("authkeys", tests, NULL, NULL);
}
