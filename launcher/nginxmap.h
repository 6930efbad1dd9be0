/* nginxmap: the launcher's side of "domains through nginx".
 *
 * From every tenant file it knows, the launcher writes http.nginx_map: two
 * nginx maps with the `hostnames` parameter, so "*.example.com" entries
 * work, from host name to the app's socket on the host
 * (state_dir/tenants/NAME/run/APP.sock):
 *
 *   $fief_uwsgi  wsgi, psgi and rack apps: uWSGI protocol (uwsgi_pass)
 *   $fief_http   command apps: HTTP over the socket (proxy_pass)
 *
 * conf/nginx/fief.conf is the server block that uses them; an unknown
 * host is in neither map and gets 404. The file is replaced atomically,
 * and only when its text changes; then http.reload_command runs (/bin/sh
 * -c, a child of the launcher), never two at once.
 *
 * A domain belongs to the first app that claimed it, for as long as that
 * app claims it; the owners are read back from the map at start, so a
 * restarted launcher keeps them. An app that claims a domain someone else
 * owns, or one under another tenant's wildcard (nginx would prefer the
 * more specific name and take that tenant's traffic), is reported at
 * FILE:LINE:COL of its `domains` and is not routed at all, so a
 * half-routed app never appears by accident. */
#ifndef FIEF_NGINXMAP_H
#define FIEF_NGINXMAP_H

struct launcher;

/* Read the owners in the existing map; the first map is written once the
 * loop runs (after adoption and the first scan of tenants_dir). */
void nginxmap_start(struct launcher *L);
/* Tenants or their files changed: recompute (soon, once per burst). */
void nginxmap_update(struct launcher *L);

#endif
