/* sshmsg: the ssh_message getters libssh 0.10 marks deprecated.
 *
 * They are deprecated in favour of server callbacks, but a callback must
 * answer before it returns, and we must be able to answer a userauth
 * request after a round trip to the tenant's agent. So the gateway runs
 * libssh's message queue and reads messages with these getters, kept
 * here so the rest of the code builds with -Werror unchanged. */
#ifndef FIEF_GATEWAY_SSHMSG_H
#define FIEF_GATEWAY_SSHMSG_H

#include <libssh/libssh.h>
#include <libssh/server.h>

ssh_key sshmsg_auth_pubkey(ssh_message m);               /* owned by m */
enum ssh_publickey_state_e sshmsg_auth_pubkey_state(ssh_message m);
const char *sshmsg_auth_password(ssh_message m);         /* owned by m */

/* pty-req and window-change. term is owned by m (NULL for window-change). */
void sshmsg_pty(ssh_message m, const char **term, int *cols, int *rows, int *xpix, int *ypix);

#endif
