/* privdrop: a worker becomes gateway.user with nothing left of root.
 *
 * Order matters: look the user up while /etc is still ours to read, drop
 * the capability bounding set while we still have CAP_SETPCAP, then
 * groups, gid, uid (saved ids included), then no_new_privs and the
 * seccomp filter. The drop is then checked by trying to undo it. */
#ifndef FIEF_GATEWAY_PRIVDROP_H
#define FIEF_GATEWAY_PRIVDROP_H

#include <sys/types.h>

struct privdrop_user {
	uid_t uid;
	gid_t gid;
	char name[64];
};

/* Resolve the system user; refuses root and unknown users. 0 or -1. */
int privdrop_lookup(const char *name, struct privdrop_user *u);

/* Drop to u for good and verify it. 0 or -1 (logged); the caller exits. */
int privdrop_drop(const struct privdrop_user *u);

/* Install the worker's seccomp filter: no exec, no new processes, none of
 * the kernel interfaces a compromised network parser could abuse. */
int privdrop_sandbox(void);

#endif
