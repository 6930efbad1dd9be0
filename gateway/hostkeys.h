/* hostkeys: the server's host keys in gateway.host_keys_dir.
 *
 * The directory and the private keys belong to root (0700 and 0600); the
 * master process, still root, generates what is missing (ed25519, ECDSA
 * P-256, RSA 3072, named as OpenSSH names them) and loads every key before
 * it forks the workers, which inherit them in memory and never read a key
 * file themselves. */
#ifndef FIEF_GATEWAY_HOSTKEYS_H
#define FIEF_GATEWAY_HOSTKEYS_H

#include <libssh/libssh.h>
#include <libssh/server.h>
#include <stddef.h>

#define HOSTKEYS_MAX 3

struct hostkeys {
	ssh_key key[HOSTKEYS_MAX];
	size_t n;
};

/* Create dir if needed, generate missing keys, load them all. 0 with at
 * least one key loaded, or -1 (every problem is logged). */
int hostkeys_load(const char *dir, struct hostkeys *hk);
void hostkeys_free(struct hostkeys *hk);

/* Hand every key to b, which owns them from then on (libssh frees
 * imported keys with the bind); hk is left empty. 0 or -1. */
int hostkeys_give(struct hostkeys *hk, ssh_bind b);

/* "SHA256:..." as ssh-keygen -lf prints it, into buf. 0 or -1. */
int hostkeys_fingerprint(ssh_key key, char *buf, size_t len);

#endif
