/* libFuzzer target: the agent protocol decoder.
 *
 * Any bytes: the decoder must answer without reading outside them (ASan
 * watches an exact-size copy), and whatever it accepts must be canonical:
 * encoding the decoded message gives back the very same bytes, so the
 * encoder and the decoder agree on every bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[PROTO_MAX_MSG];
	struct proto_msg m;
	uint8_t *copy = malloc(size ? size : 1);
	ssize_t n;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (proto_decode(copy, size, &m) == 0) {
		n = proto_encode(&m, out, sizeof out);
		if (n < 0 || (size_t)n != size || memcmp(out, copy, size) != 0)
			abort();
		/* The direction split agrees with the type's high bit. */
		if ((proto_decode_request(copy, size, &m) == 0) == ((m.type & 0x80) != 0))
			abort();
	}
	free(copy);
	return 0;
}
