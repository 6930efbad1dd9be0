/* metrics: Prometheus text exposition for the whole host. */
#ifndef FIEF_METRICS_H
#define FIEF_METRICS_H

#include <stdio.h>

struct launcher;

/* Listen on metrics.listen (when metrics.enabled). */
int metrics_start(struct launcher *L);

/* The other daemons' samples: each may listen on a stream socket in
 * state_dir/metrics/ (e.g. router.sock, gateway.sock) and write its
 * Prometheus text on every connection, then close. Read with a deadline,
 * so a stuck daemon costs a scrape at most METRICS_PEER_TIMEOUT_MS. */
#define METRICS_PEER_TIMEOUT_MS 200
void metrics_extra(FILE *out, struct launcher *L);

#endif
