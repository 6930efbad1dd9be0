/* launcher: the Emperor. Shared state of fief-launcher's modules. */
#ifndef FIEF_LAUNCHER_H
#define FIEF_LAUNCHER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "config.h"

enum tenant_state {
	TS_STOPPED,      /* not running: by the operator, or not yet started */
	TS_STARTING,     /* init cloned, setting up */
	TS_RUNNING,      /* init reported ready */
	TS_STOPPING,     /* asked to stop, waiting for the init to exit */
	TS_BACKOFF,      /* crashed; waiting before the next start */
	TS_FAILED,       /* crashed too often; retried slowly */
};

/* What to do once the init has exited. */
enum tenant_next { NEXT_NONE, NEXT_START, NEXT_REMOVE };

struct tenant {
	char name[40];
	struct launcher *L;
	struct config_tenant *cfg;       /* the config it runs (or will run) */
	char *file_buf;                  /* the bytes cfg came from, to spot real changes */
	size_t file_len;
	uid_t uid;
	gid_t gid;

	enum tenant_state state;
	enum tenant_next next;           /* after the current init exits */
	bool held;                       /* stopped by the operator: no restart */
	pid_t pid;                       /* init pid on the host, 0 = none */
	int sync_fd;                     /* control channel to the init */
	int tun_fds[CONFIG_ROUTER_MAX_THREADS]; /* duplicates of the queues of the tenant's tun */
	int n_tun;                       /* how many, 0 = none */
	int init_tun_fds[CONFIG_ROUTER_MAX_THREADS]; /* the same queues' fd numbers in the init */
	int n_init_tun;
	struct timespec started;         /* CLOCK_MONOTONIC of the last start */
	time_t started_wall;
	unsigned restarts;               /* starts after the first one */
	unsigned crashes;                /* consecutive crashes */
	char last_error[256];

	ev_child child_w;
	ev_io pidfd_w;                   /* an adopted init, not our child */
	ev_io sync_w;
	ev_timer timer_w;                /* backoff, stop grace */
	bool queued;                     /* in L->deploys, waiting for a start slot */
	bool settling;                   /* holds a start slot: cloned, apps not up yet */
	ev_timer settle_w;               /* gives the slot up after TENANT_SETTLE_MAX */
	struct tenant *next_t;
};

struct launcher {
	struct ev_loop *loop;
	struct config_host *host;
	const char *host_path;
	struct tenant *tenants;
	size_t n_tenants;
	gid_t agent_gid;                 /* group that may connect to agent sockets */
	struct tenant **deploys;         /* tenants waiting for a start slot, in order */
	size_t n_deploys, cap_deploys;
	unsigned start_max;              /* launcher.start_concurrency, resolved */
	unsigned n_settling;             /* tenants holding a start slot */
	ev_timer deploy_w;
	bool shutting_down;
	bool detach;                     /* exit leaving tenants running */
	/* inits started, by who cloned them (metrics: a launcher that keeps
	 * cloning them itself has lost its zygote), and zygotes started */
	unsigned long inits_by_zygote, inits_by_launcher, zygote_starts;
};

/* tenant.c: lifecycle and supervision */
struct tenant *tenant_find(struct launcher *L, const char *name);
/* A new or changed file: deploy, or reload when the bytes differ. */
void tenant_apply_file(struct launcher *L, const char *name, const char *path);
/* The file is gone: stop and forget the tenant. */
void tenant_remove(struct launcher *L, struct tenant *t);
void tenant_stop(struct tenant *t, enum tenant_next next);
/* Start now when a start slot is free and nobody waits for one; else
 * queue (tenant_start_soon). */
void tenant_start(struct tenant *t);
/* Queue for a start slot. At most L->start_max tenants start at once: a
 * start holds its slot from the clone until the init reports its apps up
 * (SYNC_SETTLED), the init dies, or TENANT_SETTLE_MAX passes. Starting
 * 500 tenants at once on a few cores costs about twice the CPU per tenant
 * of starting them a few at a time, and every one of them answers later.
 * The queue is served a few tenants per loop pass, so the loop (control
 * socket, supervision) never stalls. */
void tenant_start_soon(struct tenant *t);
void tenant_reload(struct tenant *t);
const char *tenant_state_name(enum tenant_state s);
struct tenant *tenant_new(struct launcher *L, const char *name);
/* Drop the tenant from the launcher's books (nothing is stopped). */
void tenant_forget(struct tenant *t);
/* The init ended; status is a wait status, or -1 when unknown. */
void tenant_init_exited(struct tenant *t, int status);
/* Take over a running init found by adopt.c, watched through pidfd. */
void tenant_adopted(struct tenant *t, pid_t pid, int pidfd,
		    void (*exit_cb)(struct ev_loop *, ev_io *, int));

/* adopt.c: tenants left running by a previous launcher */
int adopt_record(struct tenant *t);
/* "3,4,5": up to max fd numbers into fds; their count, or -1 when s is
 * not such a list. */
int adopt_parse_fds(const char *s, int *fds, int max);
void adopt_all(struct launcher *L);
/* Stop everything; calls ev_break when the last tenant is gone. */
void tenant_shutdown_all(struct launcher *L);

/* spawn.c: host directories, agent socket, clone into namespaces */
int spawn_prepare_host(struct tenant *t, char *err, size_t errlen);
pid_t spawn_init(struct tenant *t, int *sync_fd, char *err, size_t errlen);
void spawn_cleanup_host(struct tenant *t);
int spawn_resolve_uid(struct launcher *L, struct tenant *t, const struct config_tenant *cfg,
		      char *err, size_t errlen);

/* init.c: pid 1 inside the tenant; never returns */
struct init_args {
	const struct config_host *host;
	const struct config_tenant *cfg;
	uid_t uid;
	gid_t gid;
	int sync_fd;
	int agent_fd;
	int log_fd;                      /* log_dir/NAME (O_DIRECTORY), -1 = none: apps.c */
};
__attribute__((noreturn)) void init_main(const struct init_args *a);

/* spawn.c: the namespaces of an init, and what its first moments do. */
#define SPAWN_CLONE_FLAGS (CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | SIGCHLD)
__attribute__((noreturn)) void spawn_become_init(const struct config_host *host,
						 const struct config_tenant *cfg, uid_t uid, gid_t gid,
						 int sync_fd, int agent_fd, const int *cg_fds, int n_cg);
/* In the init: the start is over (apps up, or none); a moment later,
 * give back the memory the start dirtied and no longer needs. */
void init_release_memory_soon(void);

/* watch.c: tenants_dir */
int watch_start(struct launcher *L);

/* control.c: state_dir/launcher.sock */
int control_start(struct launcher *L);

/* Messages on the sync channel between launcher and init (SOCK_SEQPACKET). */
#define SYNC_GO      'G'     /* launcher: you are in your cgroup, go on */
#define SYNC_READY   'R'     /* init: set up, serving */
#define SYNC_ERROR   'E'     /* init: followed by the reason; it exits */
#define SYNC_STOP    'S'     /* launcher: end everything and exit */
#define SYNC_TUN     'T'     /* init: its tun "eth0", "T3,4": the fd numbers in the init of its queues, those fds attached (fief-router, routerlink.c) */
#define SYNC_CONFIG_PART 'P' /* launcher: part of a new tenant file (reload.c) */
#define SYNC_CONFIG  'C'     /* launcher: its last part: apply it live (apps.c) */
#define SYNC_SETTLED 'U'     /* init: after READY, the apps of its start are up (apps.c) */

/* Paths below state_dir. */
int launcher_path(const struct launcher *L, char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Step timing for debug logs: milliseconds between two stamps. */
static inline double ts_ms(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

#endif
