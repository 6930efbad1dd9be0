/* mounts: build a tenant's filesystem and the bits of its uts/net namespaces
 * that the tenant init sets up as root, before it drops privileges.
 *
 * Everything here runs in the tenant init: pid 1 of a fresh pid namespace,
 * root, in a mount namespace of its own (clone with CLONE_NEWNS|CLONE_NEWPID|
 * CLONE_NEWIPC|CLONE_NEWUTS|CLONE_NEWNET). Layout: docs in DESIGN.md,
 * "Filesystem layout inside a tenant". */
#ifndef FIEF_MOUNTS_H
#define FIEF_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mounts_plan {
	const char *distro_root; /* host path distros_dir/DISTRO, a directory */
	const char *home_src;    /* host path homes_dir/NAME, owned by uid */
	const char *tenant;      /* NAME: the home appears at /home/NAME */
	const char *run_src;     /* host path state_dir/tenants/NAME/run, owned by uid */
	const char *opt_src;     /* host path bound read-only at /opt, or NULL */
	/* Host path log_dir/NAME, or NULL. Bound read-only at /home/NAME/logs,
	 * and only when the tenant created that directory in its home: the
	 * read-only distro has no /var/log/fief to mount on and mount points
	 * are never created in it (see mounts_logs() for why). */
	const char *logs_src;
	const char *scratch;     /* host dir, empty: mount point of the new root */
	/* Host dir holding passwd and group made for this tenant (the distro's
	 * entries plus the tenant's own), bound read-only over /etc/passwd and
	 * /etc/group so names resolve; NULL = keep the distro's. */
	const char *etc_src;
	uint64_t tmp_size;       /* bytes for the /tmp and /dev/shm tmpfs; not 0 */
	bool tmp_noexec;         /* noexec on /tmp and /dev/shm */
	bool run_noexec;         /* noexec on /run */
	uid_t uid;               /* the tenant's uid: home_src and run_src owner */
	gid_t gid;
};

/* Build the tenant's tree on scratch and pivot_root into it; the old root is
 * detached, cwd is the new "/". On failure the mount namespace is in an
 * undefined state: the caller must exit (the namespace dies with it). */
int mounts_build(const struct mounts_plan *p, char *err, size_t errlen);

/* sethostname(2) in the tenant's uts namespace. */
int mounts_set_hostname(const char *name, char *err, size_t errlen);

/* Bring up "lo" in the tenant's network namespace. */
int mounts_loopback_up(char *err, size_t errlen);

#endif
