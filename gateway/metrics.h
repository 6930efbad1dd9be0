/* metrics: the gateway's counters, for the launcher's /metrics.
 *
 * Workers are separate processes and Prometheus wants each series once,
 * so the numbers live in one MAP_SHARED anonymous region the master maps
 * before it forks any worker, and only the master renders them: it serves
 * the Prometheus text on state_dir/metrics/gateway.sock (root and the
 * gateway user's group, 0660), which the launcher copies into its
 * /metrics at every scrape.
 *
 * The region holds a fixed table of GWM_TENANTS tenant slots, filled on
 * first use with atomics (no lock): only names of configured tenants (a
 * readable tenant file) get a slot, so a client cannot make up label
 * values; failures for other names are one counter (tenant="_unknown"),
 * and once the table is full the rest is counted under tenant="_other".
 * Names starting with "_" cannot be tenant names.
 *
 * Open sessions are kept per worker process (one row each), so the row
 * of a worker that dies without closing its sessions (SIGKILL) is zeroed
 * by the master when it reaps it. A new master (gateway restart) starts
 * from zero; a SIGHUP reload keeps the region, and the counters. */
#ifndef FIEF_GATEWAY_METRICS_H
#define FIEF_GATEWAY_METRICS_H

#include <stdbool.h>
#include <sys/types.h>

#define GWM_TENANTS 2048           /* tenant slots */
#define GWM_PROCS 512              /* worker rows: workers of every generation alive at once */

/* ---- master ---- */
/* Map the shared region (before the first fork). 0 or -errno. */
int gwm_init(void);
/* Serve the text on STATE_DIR/metrics/gateway.sock, connectable by root
 * and group gid; again after a reload (a new path replaces the old one). */
int gwm_serve(const char *state_dir, gid_t gid);
/* Remove the socket (at exit). */
void gwm_serve_stop(void);
/* A worker row for the next fork (-1 when none is free), then the pid it
 * got (or pid 0: the fork failed). */
int gwm_proc_alloc(void);
void gwm_proc_started(int proc, pid_t pid);
/* A worker was reaped: forget its open sessions. */
void gwm_proc_reaped(pid_t pid);

/* ---- worker ---- */
/* In the child right after fork: drop the master's socket and watchers,
 * and count this process's sessions in row proc. */
void gwm_worker_start(int proc);
/* A login: ok for tenant; failed for tenant, or for NULL when the name
 * asked for is not a configured tenant. */
void gwm_login(const char *tenant, bool ok);
/* An authenticated connection opened or closed. */
void gwm_session(const char *tenant, int delta);

#endif
