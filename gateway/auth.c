/* auth: public key and password authentication of tenants. */
#include "auth.h"

#include <crypt.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "gateway.h"
#include "hostkeys.h"
#include "log.h"
#include "ratelimit.h"
#include "session.h"
#include "sshmsg.h"
#include "value.h"

enum auth_verdict {
	AV_PENDING,        /* waiting for the tenant's keys */
	AV_SUCCESS,        /* logged in */
	AV_PK_OK,          /* this key would do: the client may sign with it */
	AV_REFUSED,        /* a failed attempt: counted, delayed */
	AV_NONE,           /* method "none": the list of methods, not a failure */
};

/* crypt_r's state is 32 KiB: one for the worker, which runs one check at
 * a time. */
static struct crypt_data auth_crypt;
static char auth_dummy_hash[CRYPT_OUTPUT_SIZE];

void auth_worker_init(void)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *h;

	if (!crypt_gensalt_rn(NULL, 0, NULL, 0, setting, sizeof setting))
		return;
	h = crypt_r("fief: no such password", setting, &auth_crypt);
	if (h && h[0] != '*')
		snprintf(auth_dummy_hash, sizeof auth_dummy_hash, "%s", h);
}

static struct gw_session *auth_session(struct keysrc_waiter *w)
{
	return (struct gw_session *)((char *)w - offsetof(struct gw_session, auth.waiter));
}

/* ---- the tenant being asked for ---- */

static void auth_grant_free(struct auth_grant *g)
{
	free(g->command);
	free(g->permitopen);
	memset(g, 0, sizeof *g);
}

static void auth_forget_user(struct auth *a)
{
	if (a->keys) {
		keysrc_put(a->keys, &a->waiter);
		a->keys = NULL;
	}
	authkeys_free(&a->file_keys);
	config_tenant_free(a->tenant);
	a->tenant = NULL;
	a->known = false;
	a->user[0] = 0;
}

static void auth_file_key_warn(void *data, int line, const char *why)
{
	log_warn("%s: ssh.authorized_keys entry %d refused: %s", (const char *)data, line, why);
}

/* The tenant file's keys: one authorized_keys line per list entry. */
static void auth_file_keys(struct auth *a)
{
	const struct string_vec *v = &a->tenant->ssh.authorized_keys;
	size_t len = 0;
	char *text;

	for (size_t i = 0; i < v->n; i++)
		len += strlen(v->v[i]) + 1;
	text = malloc(len + 1);
	if (!text)
		return;
	len = 0;
	for (size_t i = 0; i < v->n; i++)
		len += (size_t)sprintf(text + len, "%s\n", v->v[i]);
	if (authkeys_parse(text, len, &a->file_keys, auth_file_key_warn, a->user) < 0)
		log_error("%s: out of memory reading ssh.authorized_keys", a->user);
	free(text);
}

static void auth_keys_ready(struct keysrc_waiter *w);

/* Read tenants_dir/NAME.yaml as the gateway's user, and start fetching
 * the tenant's own keys right away: the "none" request that OpenSSH sends
 * first names the user, so by its first public key the keys are usually
 * there. */
static void auth_load_user(struct gw_session *s, const char *user)
{
	struct auth *a = &s->auth;
	struct config_errors errs;
	char path[4096];
	struct stat st;

	snprintf(a->user, sizeof a->user, "%s", user);
	if (!value_is_tenant_name(user))
		return;
	snprintf(path, sizeof path, "%s/%s.yaml", W.host->tenants_dir, user);
	if (stat(path, &st) < 0) {
		if (errno != ENOENT)
			log_error_r(errno, "%s: cannot read %s: logins refused", user, path);
		return;
	}
	a->tenant = config_tenant_load(path, W.host, &errs);
	if (!a->tenant) {
		char msg[512];
		config_error_format(&errs, 0, msg, sizeof msg);
		log_error("%s: logins refused: %s", user, msg);
		return;
	}
	a->known = true;
	auth_file_keys(a);
	a->waiter.fn = auth_keys_ready;
	a->keys = keysrc_get(user, &a->waiter);
}

static void auth_switch_user(struct gw_session *s, const char *user)
{
	if (!user)
		user = "";
	if (s->auth.user[0] && !strncmp(s->auth.user, user, sizeof s->auth.user - 1) &&
	    strlen(user) < sizeof s->auth.user)
		return;
	auth_forget_user(&s->auth);
	auth_load_user(s, user);
}

/* ---- deciding ---- */

/* The key's wire-format blob, as authorized_keys lines hold it. */
static long auth_key_blob(ssh_key key, uint8_t *blob, size_t cap)
{
	char *b64 = NULL;
	long n;

	if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || !b64)
		return -1;
	n = authkeys_base64_decode(b64, strlen(b64), blob, cap);
	ssh_string_free_char(b64);
	return n;
}

static void auth_grant_from(struct auth_grant *g, const struct authkey *k)
{
	auth_grant_free(g);
	g->no_pty = k->no_pty;
	g->no_port_forwarding = k->no_port_forwarding;
	g->command = k->command ? strdup(k->command) : NULL;
	g->permitopen = k->permitopen ? strdup(k->permitopen) : NULL;
}

static int auth_pubkey(struct gw_session *s, ssh_message m, char *why, size_t wlen)
{
	struct auth *a = &s->auth;
	enum ssh_publickey_state_e state = sshmsg_auth_pubkey_state(m);
	static uint8_t blob[AUTHKEYS_MAX_BLOB + 3];
	const struct authkey *k;
	long n;

	if (!a->known)
		return snprintf(why, wlen, "no such tenant"), AV_REFUSED;
	if (!keysrc_ready(a->keys))
		return AV_PENDING;
	if (!keysrc_running(a->keys))
		return snprintf(why, wlen, "tenant not running"), AV_REFUSED;
	n = auth_key_blob(sshmsg_auth_pubkey(m), blob, sizeof blob);
	if (n < 0)
		return snprintf(why, wlen, "unusable key"), AV_REFUSED;
	k = authkeys_find(&a->file_keys, blob, (size_t)n);
	if (!k)
		k = authkeys_find(keysrc_keys(a->keys), blob, (size_t)n);
	if (!k)
		return snprintf(why, wlen, "key not authorized"), AV_REFUSED;
	if (k->from && authkeys_from_match(k->from, s->addr) != 1)
		return snprintf(why, wlen, "from=\"%.64s\" does not admit %s", k->from, s->addr), AV_REFUSED;
	if (state == SSH_PUBLICKEY_STATE_NONE)
		return AV_PK_OK;
	/* Only a signature libssh verified proves the client holds the key. */
	if (state != SSH_PUBLICKEY_STATE_VALID)
		return snprintf(why, wlen, "bad signature"), AV_REFUSED;
	auth_grant_from(&a->grant, k);
	return AV_SUCCESS;
}

/* Both strings are crypt(3) outputs of the same length when they match:
 * compare every byte whatever the first difference. */
static bool auth_same(const char *x, const char *y)
{
	size_t n = strlen(y);
	unsigned char d = 0;

	if (strlen(x) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(x[i] ^ y[i]);
	return d == 0;
}

static int auth_password(struct gw_session *s, ssh_message m, char *why, size_t wlen)
{
	struct auth *a = &s->auth;
	const char *pw = sshmsg_auth_password(m), *hash, *h;
	bool real = a->known && a->tenant->ssh.password_hash;

	if (real && !keysrc_ready(a->keys))
		return AV_PENDING;
	hash = real ? a->tenant->ssh.password_hash : auth_dummy_hash;
	h = pw && hash[0] ? crypt_r(pw, hash, &auth_crypt) : NULL;
	if (!a->known)
		return snprintf(why, wlen, "no such tenant"), AV_REFUSED;
	if (!real)
		return snprintf(why, wlen, "no password set for this tenant"), AV_REFUSED;
	if (!keysrc_running(a->keys))
		return snprintf(why, wlen, "tenant not running"), AV_REFUSED;
	if (!h || h[0] == '*' || !auth_same(h, hash))
		return snprintf(why, wlen, "wrong password"), AV_REFUSED;
	auth_grant_free(&a->grant);
	return AV_SUCCESS;
}

static const char *auth_method_name(int method)
{
	switch (method) {
	case SSH_AUTH_METHOD_NONE: return "none";
	case SSH_AUTH_METHOD_PASSWORD: return "password";
	case SSH_AUTH_METHOD_PUBLICKEY: return "publickey";
	case SSH_AUTH_METHOD_HOSTBASED: return "hostbased";
	case SSH_AUTH_METHOD_INTERACTIVE: return "keyboard-interactive";
	case SSH_AUTH_METHOD_GSSAPI_MIC: return "gssapi-with-mic";
	default: return "unknown";
	}
}

/* One line per attempt: tenant first, then what, from where, and why not. */
static void auth_log(struct gw_session *s, ssh_message m, int verdict, const char *why)
{
	int method = ssh_message_subtype(m);
	const char *who = s->auth.user[0] && value_is_tenant_name(s->auth.user) ? s->auth.user : "(not a tenant name)";
	char fp[128] = "";

	if (verdict == AV_NONE || verdict == AV_PK_OK)
		return;
	if (method == SSH_AUTH_METHOD_PUBLICKEY && sshmsg_auth_pubkey(m)) {
		fp[0] = ' ';
		if (hostkeys_fingerprint(sshmsg_auth_pubkey(m), fp + 1, sizeof fp - 1) < 0)
			fp[0] = 0;
	}
	if (verdict == AV_SUCCESS)
		log_info("%s: login: accepted %s%s from %s port %d", who, auth_method_name(method), fp,
			 s->addr, s->port);
	else
		log_info("%s: login refused: %s%s from %s port %d: %s", who, auth_method_name(method), fp,
			 s->addr, s->port, why);
}

static int auth_decide(struct gw_session *s, ssh_message m, char *why, size_t wlen)
{
	int method = ssh_message_subtype(m);
	const char *user = ssh_message_auth_user(m);
	bool switched = s->auth.user[0] && (!user || strncmp(s->auth.user, user, sizeof s->auth.user));

	auth_switch_user(s, user);
	/* Clients keep one name. Trying names one after the other costs a
	 * tenant file read and a key fetch each: count it as a failure. */
	if (switched) {
		snprintf(why, wlen, "user name changed during authentication");
		return AV_REFUSED;
	}
	switch (method) {
	case SSH_AUTH_METHOD_NONE:
		return AV_NONE;
	case SSH_AUTH_METHOD_PUBLICKEY:
		return auth_pubkey(s, m, why, wlen);
	case SSH_AUTH_METHOD_PASSWORD:
		return auth_password(s, m, why, wlen);
	default:
		snprintf(why, wlen, "method not offered");
		return AV_REFUSED;
	}
}

/* ---- answering, in order ---- */

static void auth_reply(struct gw_session *s, struct auth_held *h)
{
	switch (h->verdict) {
	case AV_SUCCESS:
		ssh_message_auth_reply_success(h->msg, 0);
		break;
	case AV_PK_OK:
		ssh_message_auth_reply_pk_ok_simple(h->msg);
		break;
	default:
		/* USERAUTH_FAILURE with the methods we offer, the same for all. */
		ssh_message_reply_default(h->msg);
	}
}

static void auth_pop(struct auth *a)
{
	ssh_message_free(a->held[0].msg);
	memmove(&a->held[0], &a->held[1], (a->n_held - 1) * sizeof a->held[0]);
	a->n_held--;
}

static void auth_failed(struct gw_session *s)
{
	struct auth *a = &s->auth;

	a->failures++;
	if (ratelimit_failed((const struct sockaddr *)&s->peer)) {
		char addr[64];

		gw_addr_text((const struct sockaddr *)&s->peer, addr, sizeof addr);
		log_warn("%s: %d failed logins: its connections are refused from now on, "
			 "one failed login forgiven every %d s", addr, RATELIMIT_BURST,
			 RATELIMIT_REFILL_MS / 1000);
	}
	if (a->failures >= (unsigned)W.host->gateway.max_auth_tries)
		session_disconnect(s, "too many authentication failures");
}

/* Answer what can be answered, oldest first. */
static void auth_run(struct gw_session *s)
{
	struct auth *a = &s->auth;

	while (a->n_held && s->state == SS_AUTH) {
		struct auth_held *h = &a->held[0];
		char why[160] = "";
		int verdict;

		if (h->verdict == AV_PENDING) {
			h->verdict = auth_decide(s, h->msg, why, sizeof why);
			if (h->verdict == AV_PENDING)
				return;
			auth_log(s, h->msg, h->verdict, why);
		}
		if (h->verdict == AV_REFUSED) {
			ev_tstamp wait = h->at + AUTH_FAIL_DELAY - ev_now(W.loop);
			if (wait > 0 && !ev_is_active(&a->delay)) {
				ev_timer_set(&a->delay, wait, 0);
				ev_timer_start(W.loop, &a->delay);
			}
			if (wait > 0)
				return;
		}
		auth_reply(s, h);
		verdict = h->verdict;
		auth_pop(a);
		if (verdict == AV_SUCCESS) {
			session_authenticated(s);
			break;
		}
		if (verdict == AV_REFUSED)
			auth_failed(s);
	}
	/* After success (or once the session is closing) the rest only
	 * needs freeing: libssh refuses userauth once authenticated. */
	while (a->n_held && s->state != SS_AUTH) {
		if (s->state == SS_OPEN)
			ssh_message_reply_default(a->held[0].msg);
		auth_pop(a);
	}
}

static void auth_keys_ready(struct keysrc_waiter *w)
{
	struct gw_session *s = auth_session(w);

	auth_run(s);
	session_settle(s);
}

static void auth_delay_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct gw_session *s = t->data;

	auth_run(s);
	session_settle(s);
}

void auth_init(struct gw_session *s)
{
	memset(&s->auth, 0, sizeof s->auth);
	ev_timer_init(&s->auth.delay, auth_delay_cb, AUTH_FAIL_DELAY, 0);
	s->auth.delay.data = s;
}

void auth_message(struct gw_session *s, ssh_message m)
{
	struct auth *a = &s->auth;

	if (s->state != SS_AUTH) {
		ssh_message_reply_default(m);
		ssh_message_free(m);
		return;
	}
	if (a->n_held == AUTH_MAX_HELD) {
		ssh_message_free(m);
		session_disconnect(s, "too many userauth requests in flight");
		return;
	}
	a->held[a->n_held++] = (struct auth_held){ m, ev_now(W.loop), AV_PENDING };
	auth_run(s);
}

static void auth_strings_free(struct string_vec *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	v->v = NULL;
	v->n = 0;
}

/* An idle session should cost little: the tenant file and both key lists
 * go; what a channel still needs is copied out first. */
void auth_done(struct gw_session *s)
{
	struct auth *a = &s->auth;
	const struct string_vec *env = a->tenant ? &a->tenant->ssh.accept_env : NULL;
	char user[sizeof a->user];

	if (env && env->n && (a->accept_env.v = calloc(env->n, sizeof(char *)))) {
		for (size_t i = 0; i < env->n; i++)
			if ((a->accept_env.v[a->accept_env.n] = strdup(env->v[i])))
				a->accept_env.n++;
	}
	memcpy(user, a->user, sizeof user);
	auth_forget_user(a);
	memcpy(a->user, user, sizeof user);
}

void auth_free(struct gw_session *s)
{
	struct auth *a = &s->auth;

	ev_timer_stop(W.loop, &a->delay);
	while (a->n_held)
		auth_pop(a);
	auth_forget_user(a);
	auth_grant_free(&a->grant);
	auth_strings_free(&a->accept_env);
}
