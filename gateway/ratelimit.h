/* ratelimit: failed logins per source address, shared by every worker.
 *
 * A token bucket per source (an IPv4 address, or an IPv6 /64): each failed
 * authentication takes a token, tokens come back at a steady rate, and a
 * source with an empty bucket has its new connections closed on accept,
 * before any cryptography runs. The table lives in one shared anonymous
 * mapping made by the master before it forks, so a client cannot multiply
 * its budget by the number of workers; it has a fixed number of slots, so
 * a flood of sources cannot grow it (the fullest buckets are the ones
 * evicted: they are the ones that have nothing to remember). */
#ifndef FIEF_GATEWAY_RATELIMIT_H
#define FIEF_GATEWAY_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define RATELIMIT_SLOTS 4096
#define RATELIMIT_BURST 40          /* failures a source may have in a row */
#define RATELIMIT_REFILL_MS 3000    /* one failure forgiven every 3 s */

/* Map the shared table. 0 or -errno. Call once, before forking. */
int ratelimit_init(void);

/* May this source open a connection? (Does not take a token.) */
bool ratelimit_allowed(const struct sockaddr *sa);

/* One failed authentication from this source. true when it spent the
 * source's last token: from now on its connections are closed on accept
 * (the caller says so in the log, once per spell). */
bool ratelimit_failed(const struct sockaddr *sa);

/* The source a connection is counted under: an IPv4 address (IPv4-mapped
 * IPv6 included) or an IPv6 /64, as 16 bytes. false for other families. */
bool ratelimit_source(const struct sockaddr *sa, uint8_t key[16]);

#endif
