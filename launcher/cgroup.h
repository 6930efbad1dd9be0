/* cgroup: one cgroup per tenant, below the launcher's own cgroup, with
 * memory, cpu and pids limits; works on cgroup v1 (also hybrid hosts) and
 * on cgroup v2, detected per controller by cg_init(). */
#ifndef FIEF_CGROUP_H
#define FIEF_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Every call but cg_init and cg_version returns -ENODEV (cg_exists: false)
 * until cg_init has succeeded; a tenant name must be one path component. */

/* memory: bytes, 0 = no limit (swap is never allowed beyond it);
 * cpu_millis: thousandths of a core (0 = no cpu limit);
 * pids: max pids, 0 or less = no limit. */
struct cg_limits { uint64_t memory; int64_t cpu_millis; int64_t pids; };

/* memory_max_seen is 0 when the kernel does not track it (v2 before 5.19);
 * cpu_usec is 0 on v1 hosts without the cpuacct controller. */
struct cg_usage {
	uint64_t memory; /* bytes now */
	uint64_t memory_max_seen; /* bytes */
	uint64_t cpu_usec;
	uint64_t pids; /* includes killed processes not yet reaped */
	uint64_t oom_kills;
};

/* Detect versions, find the launcher's own cgroup, create the parent group
 * under it (with controllers enabled on v2). `parent` is relative, e.g.
 * "fief" (not "launcher"). 0 or -errno, logs why. On v2 this may move the
 * launcher (and any process sharing its cgroup) into the leaf OWN/launcher. */
int cg_init(const char *parent);
/* 1 if any of memory/cpu/pids is v1, else 2 (0 before cg_init). */
int cg_version(void);
/* parent/name in each controller with these limits; if it exists, update limits. */
int cg_create(const char *name, const struct cg_limits *lim);
/* Update the limits of an existing group: -ENOENT if it does not exist. */
int cg_set_limits(const char *name, const struct cg_limits *lim);
/* Move pid (the whole process) into parent/name in every controller. */
int cg_attach(const char *name, pid_t pid);
/* The same, split for a process about to be cloned: for each v1
 * hierarchy an fd of the group's `tasks` file, to which the new process
 * writes "0" itself (single-threaded, it moves as a whole); returns how
 * many (at most max) or -errno. *need_attach: v2 hierarchies remain, for
 * cg_attach_v2 from the parent. */
int cg_open_self_attach(const char *name, int fds[], size_t max, bool *need_attach);
int cg_attach_v2(const char *name, pid_t pid);
int cg_usage(const char *name, struct cg_usage *u);
/* Pids in the group (v1: from the pids controller's cgroup.procs); returns
 * how many were stored, at most max (max means there may be more), or -errno. */
int cg_procs(const char *name, pid_t *pids, size_t max);
/* SIGKILL everything in the group until empty, for at most 2 s: 0, or
 * -EBUSY if processes survive. Killed children must still be reaped by
 * their parent (a zombie no longer counts as a member, but stays in pids.current). */
int cg_kill_all(const char *name);
/* kill_all then rmdir in every controller; 0 if absent. */
int cg_destroy(const char *name);
/* Host path of the group's dir for that controller ("memory", "cpu",
 * "pids"; also "cpuacct" on v1); for v2 all the same. 0, -EINVAL for an
 * unknown or unavailable controller, -ENAMETOOLONG if len is too small. */
int cg_dir(const char *name, const char *controller, char *buf, size_t len);
/* True if parent/name exists in every one of memory, cpu and pids. */
bool cg_exists(const char *name);
/* Names of existing children of the parent, in any controller (for
 * re-adopting tenants after a restart); caller frees each name and the array. */
int cg_list(char ***names, size_t *n);

#endif
