/* libFuzzer target: the authorized_keys parser and its matchers.
 *
 * The input is a whole authorized_keys file, as a hostile tenant would
 * write it. Every accepted key must be internally consistent (its blob
 * names its type, its options parse again the same way), every refused
 * line must say why, and each line is also tried as a from= pattern list
 * and a permitopen list against fixed addresses. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../gateway/authkeys.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void warned(void *d, int line, const char *why)
{
	if (line < 1 || !why[0])
		abort();
}

static void check_key(const struct authkey *k)
{
	size_t tn = strlen(k->type);

	if (!ak_known_type(k->type, tn) || k->blob_len < 4 + tn || k->blob_len > AUTHKEYS_MAX_BLOB ||
	    ak_be32(k->blob) != tn || memcmp(k->blob + 4, k->type, tn) || !k->comment)
		abort();
	/* A from= list that was accepted is one the matcher can read. */
	if (k->from && (authkeys_from_match(k->from, "10.1.2.3") < 0 ||
			authkeys_from_match(k->from, "2001:db8::1") < 0))
		abort();
	if (k->permitopen && !k->permitopen[0])
		abort();
}

static void check_line(const char *line)
{
	(void)authkeys_from_match(line, "127.0.0.1");
	(void)authkeys_from_match(line, "::ffff:10.0.0.1");
	(void)authkeys_permitopen(line, "localhost", 22);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct authkeys ks;
	size_t start = 0;

	if (size > AUTHKEYS_MAX_FILE)
		return 0;
	if (authkeys_parse((const char *)data, size, &ks, warned, NULL) < 0)
		abort();
	for (size_t i = 0; i < ks.n; i++)
		check_key(&ks.v[i]);
	if (ks.n && authkeys_find(&ks, ks.v[0].blob, ks.v[0].blob_len) != &ks.v[0])
		abort();
	authkeys_free(&ks);
	while (start < size) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) : size, n = end - start;
		char *line = strndup((const char *)data + start, n > 4096 ? 4096 : n);

		if (!line)
			abort();
		check_line(line);
		free(line);
		start = end + 1;
	}
	return 0;
}
