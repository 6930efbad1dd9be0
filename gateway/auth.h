/* auth: who may log in as a tenant.
 *
 * libssh hands us each userauth request as a message we own, and we may
 * answer it later: that is what lets a public key wait for the tenant's
 * ~/.ssh/authorized_keys without blocking the loop (keysrc.c), and what
 * lets every refusal wait out the same minimum delay. Requests are
 * answered strictly in the order they came. An unknown tenant, a stopped
 * one, a wrong key and a wrong password all get the same reply; the log
 * says which it was. */
#ifndef FIEF_GATEWAY_AUTH_H
#define FIEF_GATEWAY_AUTH_H

#include <ev.h>
#include <libssh/libssh.h>
#include <stdbool.h>

#include "authkeys.h"
#include "config.h"
#include "keysrc.h"

#define AUTH_MAX_HELD 8            /* requests queued before the client is dropped */
#define AUTH_FAIL_DELAY 0.015      /* seconds: the least time a refusal takes */

struct gw_session;
struct config_tenant;

struct auth_held {
	ssh_message msg;
	ev_tstamp at;                    /* when it arrived */
	int verdict;                     /* enum auth_verdict (auth.c) */
};

/* What the key that logged in allows (its authorized_keys options). */
struct auth_grant {
	bool no_pty;
	bool no_port_forwarding;
	char *command;                   /* forced command, or NULL */
	char *permitopen;                /* or NULL: any destination */
};

struct auth {
	char user[40];                   /* the name asked for, cut to size */
	bool known;                      /* a tenant with a readable file */
	struct config_tenant *tenant;
	struct authkeys file_keys;       /* the tenant file's ssh.authorized_keys */
	struct keysrc *keys;             /* the tenant's own ~/.ssh/authorized_keys */
	struct keysrc_waiter waiter;
	unsigned failures;
	struct auth_held held[AUTH_MAX_HELD];
	unsigned n_held;
	ev_timer delay;
	struct auth_grant grant;
	struct string_vec accept_env;    /* kept from the tenant file after login */
};

/* Prepare a fresh session (before key exchange). */
void auth_init(struct gw_session *s);
/* A userauth request: auth takes the message. */
void auth_message(struct gw_session *s, ssh_message m);
/* Logged in: keep only what the session needs from here on (the grant
 * and ssh.accept_env) and free the rest. */
void auth_done(struct gw_session *s);
/* Free everything, held messages included (the session is going). */
void auth_free(struct gw_session *s);

/* Worker start: make the hash that unknown users' passwords are checked
 * against, so their refusal costs what a real check costs. */
void auth_worker_init(void);

#endif
