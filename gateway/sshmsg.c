/* sshmsg: deprecated libssh getters, in one place (see sshmsg.h). */
#include "sshmsg.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

ssh_key sshmsg_auth_pubkey(ssh_message m)
{
	return ssh_message_auth_pubkey(m);
}

enum ssh_publickey_state_e sshmsg_auth_pubkey_state(ssh_message m)
{
	return ssh_message_auth_publickey_state(m);
}

const char *sshmsg_auth_password(ssh_message m)
{
	return ssh_message_auth_password(m);
}

void sshmsg_pty(ssh_message m, const char **term, int *cols, int *rows, int *xpix, int *ypix)
{
	if (term)
		*term = ssh_message_channel_request_pty_term(m);
	*cols = ssh_message_channel_request_pty_width(m);
	*rows = ssh_message_channel_request_pty_height(m);
	*xpix = ssh_message_channel_request_pty_pxwidth(m);
	*ypix = ssh_message_channel_request_pty_pxheight(m);
}
