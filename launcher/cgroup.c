/* cgroup: tenant cgroups below the launcher's own cgroup, on v1 and v2.
 *
 * libcgroup 2.0.2 creates the groups and writes the limits. It has no v1/v2
 * translation, so every limit is written to the file of the version that
 * controller runs on here, detected per controller. What libcgroup does not
 * offer (usage, killing, listing processes, the v2 leaf move and
 * subtree_control, per-controller rmdir) is plain file IO.
 *
 * Every group lives at MOUNT/OWN/PARENT/NAME, where OWN is the launcher's
 * own cgroup in that controller's hierarchy: that is what a service manager
 * delegates, and on some hosts (this one) the memory controller already
 * places every process in a nested group that must keep accounting for
 * everything below it. OWN differs between controllers, so libcgroup gets
 * one struct cgroup per controller. */
#include "cgroup.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libcgroup.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define CG_PERIOD_US 100000 /* cfs period; quota = cpu_millis * period / 1000 */
#define CG_MIN_QUOTA_US 1000 /* the kernel refuses quotas below 1 ms */
#define CG_KILL_MS 2000 /* how long cg_kill_all keeps killing */
#define CG_RMDIR_TRIES 50 /* rmdir retries on EBUSY, 10 ms apart */
#define CG_MAX_DEPTH 16 /* nesting cg_destroy removes below a tenant group */
#define CG_LEAF "launcher" /* v2: where the launcher moves out of OWN */

enum { CG_MEM, CG_CPU, CG_PIDS, CG_ACCT, CG_N };

struct cg_ctrl {
	const char *name; /* kernel controller name */
	bool required;
	int version; /* 1 or 2; 0: not available */
	int same_as; /* earlier entry on the same hierarchy (same dirs), or -1 */
	char mount[PATH_MAX]; /* where libcgroup sees the hierarchy mounted */
	char own[PATH_MAX]; /* launcher's cgroup relative to mount, "" = root */
};

static struct cg_ctrl cg_tab[CG_N] = {
	[CG_MEM] = {.name = "memory", .required = true},
	[CG_CPU] = {.name = "cpu", .required = true},
	[CG_PIDS] = {.name = "pids", .required = true},
	/* v1 only, for cpu usage: often co-mounted as "cpu,cpuacct" (then it
	 * shares cpu's dirs), on some hosts a hierarchy of its own. */
	[CG_ACCT] = {.name = "cpuacct", .required = false},
};
static char cg_parent[PATH_MAX];
static bool cg_ready;
static bool cg_has_swap; /* v1 memory.memsw.*, v2 memory.swap.max */
static bool cg_has_oom_group; /* v2 memory.oom.group */

/* ---- small helpers: paths and control files ---- */

/* Join the non-empty parts with '/' into buf. 0 or -ENAMETOOLONG. */
static int cg_join(char *buf, size_t len, const char *const parts[], size_t n)
{
	size_t used = 0;
	int w;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!parts[i] || !parts[i][0])
			continue;
		w = snprintf(buf + used, len - used, "%s%s", used ? "/" : "", parts[i]);
		if (w < 0 || (size_t)w >= len - used)
			return -ENAMETOOLONG;
		used += (size_t)w;
	}
	return 0;
}

/* dir/file into buf. 0 or -ENAMETOOLONG. */
static int cg_at(char *buf, size_t len, const char *dir, const char *file)
{
	const char *parts[] = {dir, file};

	return cg_join(buf, len, parts, 2);
}

/* Host path of PARENT/name (name NULL: PARENT itself), or of a file in it. */
static int cg_file(const struct cg_ctrl *c, const char *name, const char *file, char *buf,
		   size_t len)
{
	const char *parts[] = {c->mount, c->own, cg_parent, name, file};

	return cg_join(buf, len, parts, 5);
}

static int cg_path(const struct cg_ctrl *c, const char *name, char *buf, size_t len)
{
	return cg_file(c, name, NULL, buf, len);
}

/* The same group as libcgroup names it: relative to the mount point. */
static int cg_rel(const struct cg_ctrl *c, const char *name, char *buf, size_t len)
{
	const char *parts[] = {c->own, cg_parent, name};

	return cg_join(buf, len, parts, 3);
}

/* Read a small control file into buf, NUL-terminated. Length or -errno. */
static ssize_t cg_read(const char *path, char *buf, size_t len)
{
	size_t used = 0;
	ssize_t r;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (used + 1 < len) {
		r = read(fd, buf + used, len - 1 - used);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			err = -errno;
		if (r <= 0)
			break;
		used += (size_t)r;
	}
	close(fd);
	buf[used] = '\0';
	return err ? err : (ssize_t)used;
}

/* Write a value with one write(2): cgroupfs parses each write on its own. */
static int cg_write(const char *path, const char *val)
{
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	return err;
}

/* Parse a counter; "max" (no limit) reads as UINT64_MAX. */
static int cg_parse_u64(const char *s, uint64_t *v)
{
	unsigned long long x;
	char *end;

	if (!strncmp(s, "max", 3)) {
		*v = UINT64_MAX;
		return 0;
	}
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-' || (*end && *end != '\n' && *end != ' '))
		return -EINVAL;
	*v = x;
	return 0;
}

static int cg_read_u64(const char *path, uint64_t *v)
{
	char buf[64];
	ssize_t n = cg_read(path, buf, sizeof buf);

	return n < 0 ? (int)n : cg_parse_u64(buf, v);
}

/* Value of the "key N" line of a flat-keyed file (cpu.stat, memory.events,
 * memory.oom_control). -ENOENT if the kernel does not report that key. */
static int cg_read_key(const char *path, const char *key, uint64_t *v)
{
	char buf[4096], *line, *next;
	size_t klen = strlen(key);
	ssize_t n = cg_read(path, buf, sizeof buf);

	if (n < 0)
		return (int)n;
	for (line = buf; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!strncmp(line, key, klen) && line[klen] == ' ')
			return cg_parse_u64(line + klen + 1, v);
	}
	return -ENOENT;
}

/* Is word one of the sep-separated words of list? */
static bool cg_has_word(const char *list, char sep, const char *word)
{
	size_t n = strlen(word), len;
	const char *end;

	for (const char *p = list; *p; p = end + 1) {
		end = strchr(p, sep);
		len = end ? (size_t)(end - p) : strcspn(p, "\n");
		if (len == n && !strncmp(p, word, n))
			return true;
		if (!end)
			break;
	}
	return false;
}

static bool cg_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void cg_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static long cg_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000L + (now.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* Entries whose dirs must be made, joined and removed: one per hierarchy. */
static bool cg_unique(int i)
{
	return cg_tab[i].version && cg_tab[i].same_as < 0;
}

/* ---- names ---- */

/* A tenant name is exactly one path component, so it can neither climb out
 * of the parent group nor reach into another tenant's group; control
 * characters would break /proc/PID/cgroup parsing and log lines. */
static int cg_check_name(const char *name)
{
	if (!name || !*name || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (strlen(name) > NAME_MAX)
		return -EINVAL;
	for (const char *p = name; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	return 0;
}

/* The parent is one or more such names joined by '/', relative to OWN. Its
 * first name must not be the v2 leaf, which holds the launcher itself. */
static int cg_check_parent(const char *parent)
{
	char copy[PATH_MAX], *part, *slash;
	int r;

	if (!parent || snprintf(copy, sizeof copy, "%s", parent) >= (int)sizeof copy)
		return -EINVAL;
	for (part = copy; part; part = slash ? slash + 1 : NULL) {
		slash = strchr(part, '/');
		if (slash)
			*slash = '\0';
		r = cg_check_name(part);
		if (r < 0 || (part == copy && !strcmp(part, CG_LEAF)))
			return -EINVAL;
	}
	return 0;
}

/* Guard for every call that takes a tenant name. */
static int cg_check(const char *name)
{
	return cg_ready ? cg_check_name(name) : -ENODEV;
}

/* ---- libcgroup ---- */

/* libcgroup returns its own codes (ECG*); turn them into -errno. */
static int cg_lib_err(int ret)
{
	int e;

	switch (ret) {
	case 0:
		return 0;
	case ECGOTHER:
		e = cgroup_get_last_errno();
		return e > 0 ? -e : -EIO;
	case ECGROUPNOTOWNER:
		return -EPERM;
	case ECGROUPNOTALLOWED:
		return -EACCES;
	case ECGROUPNOTEXIST:
	case ECGROUPVALUENOTEXIST:
		return -ENOENT;
	case ECGROUPNOTMOUNTED:
	case ECGROUPSUBSYSNOTMOUNTED:
		return -ENODEV;
	case ECGINVAL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static int cg_add(struct cgroup_controller *cc, const char *file, const char *val)
{
	return cg_lib_err(cgroup_add_value_string(cc, file, val));
}

/* ---- limits: each version's own files ---- */

/* v1 insists on memory.limit_in_bytes <= memory.memsw.limit_in_bytes after
 * every write, so memsw goes first when the limit rises and last when it
 * falls. memsw equal to the limit means no swap at all. */
static int cg_mem_v1(const char *name, struct cgroup_controller *cc, uint64_t bytes)
{
	uint64_t want = bytes ? bytes : UINT64_MAX, cur;
	char val[32], path[PATH_MAX];
	bool memsw_first = false;
	int r;

	if (bytes)
		snprintf(val, sizeof val, "%" PRIu64, bytes);
	else
		snprintf(val, sizeof val, "-1");
	if (!cg_has_swap) {
		/* No swap accounting: the best we can do is not to swap. */
		r = cg_add(cc, "memory.limit_in_bytes", val);
		return r ? r : cg_add(cc, "memory.swappiness", "0");
	}
	/* A group that does not exist yet has no memsw limit: limit first. */
	if (!cg_file(&cg_tab[CG_MEM], name, "memory.memsw.limit_in_bytes", path, sizeof path) &&
	    !cg_read_u64(path, &cur))
		memsw_first = want > cur;
	r = memsw_first ? cg_add(cc, "memory.memsw.limit_in_bytes", val) : 0;
	if (!r)
		r = cg_add(cc, "memory.limit_in_bytes", val);
	if (!r && !memsw_first)
		r = cg_add(cc, "memory.memsw.limit_in_bytes", val);
	return r;
}

static int cg_mem_v2(struct cgroup_controller *cc, uint64_t bytes)
{
	char val[32];
	int r;

	if (bytes)
		snprintf(val, sizeof val, "%" PRIu64, bytes);
	else
		snprintf(val, sizeof val, "max");
	r = cg_add(cc, "memory.max", val);
	if (!r && cg_has_swap)
		r = cg_add(cc, "memory.swap.max", "0");
	/* An OOM kill takes one process, as on v1, not the whole tenant: the
	 * init has a low oom_score_adj and restarts what was killed. */
	if (!r && cg_has_oom_group)
		r = cg_add(cc, "memory.oom.group", "0");
	return r;
}

/* quota = cpu_millis * period / 1000, at least the kernel's 1 ms. v1 wants
 * the period before the quota (libcgroup writes in insertion order). */
static int cg_cpu(int version, struct cgroup_controller *cc, int64_t millis)
{
	int64_t quota = millis * CG_PERIOD_US / 1000; /* range: cg_check_limits */
	char val[64];
	int r;

	if (millis && quota < CG_MIN_QUOTA_US)
		quota = CG_MIN_QUOTA_US;
	if (version == 2) {
		if (millis)
			snprintf(val, sizeof val, "%" PRId64 " %d", quota, CG_PERIOD_US);
		else
			snprintf(val, sizeof val, "max %d", CG_PERIOD_US);
		return cg_add(cc, "cpu.max", val);
	}
	snprintf(val, sizeof val, "%d", CG_PERIOD_US);
	r = cg_add(cc, "cpu.cfs_period_us", val);
	snprintf(val, sizeof val, "%" PRId64, millis ? quota : -1);
	return r ? r : cg_add(cc, "cpu.cfs_quota_us", val);
}

static int cg_pids(struct cgroup_controller *cc, int64_t pids)
{
	char val[32];

	if (pids > 0)
		snprintf(val, sizeof val, "%" PRId64, pids);
	else
		snprintf(val, sizeof val, "max");
	return cg_add(cc, "pids.max", val);
}

/* Queue the values controller i needs for lim (cpuacct has none). */
static int cg_add_limits(int i, const char *name, struct cgroup_controller *cc,
			 const struct cg_limits *lim)
{
	int v = cg_tab[i].version;

	switch (i) {
	case CG_MEM:
		return v == 1 ? cg_mem_v1(name, cc, lim->memory) : cg_mem_v2(cc, lim->memory);
	case CG_CPU:
		return cg_cpu(v, cc, lim->cpu_millis);
	case CG_PIDS:
		return cg_pids(cc, lim->pids);
	default:
		return 0;
	}
}

/* Create (mkdir -p, then write) or modify PARENT/name (name NULL: PARENT)
 * in controller i with libcgroup. lim NULL: no values. A fresh struct each
 * time, because cgroup_set_value_* only changes values already in one. */
static int cg_lib_apply(int i, const char *name, const struct cg_limits *lim, bool create)
{
	struct cgroup_controller *cc;
	struct cgroup *g;
	char rel[PATH_MAX];
	int r, lr;

	r = cg_rel(&cg_tab[i], name, rel, sizeof rel);
	if (r < 0)
		return r;
	g = cgroup_new_cgroup(rel);
	if (!g)
		return -ENOMEM;
	cc = cgroup_add_controller(g, cg_tab[i].name);
	r = cc ? 0 : -ENOMEM;
	if (!r && lim)
		r = cg_add_limits(i, name, cc, lim);
	if (!r) {
		lr = create ? cgroup_create_cgroup(g, 1) : cgroup_modify_cgroup(g);
		r = cg_lib_err(lr);
		if (r < 0)
			log_error("%s %s:/%s: %s", create ? "create" : "modify", cg_tab[i].name, rel,
				  cgroup_strerror(lr));
	}
	cgroup_free(&g);
	return r;
}

/* Refuse bad limits before any controller is touched, so that a bad
 * update leaves the group as it was. */
static int cg_check_limits(const struct cg_limits *lim)
{
	if (!lim || lim->cpu_millis < 0 || lim->cpu_millis > INT64_MAX / CG_PERIOD_US)
		return -EINVAL;
	return 0;
}

static int cg_apply_all(const char *name, const struct cg_limits *lim, bool create)
{
	int r = cg_check_limits(lim);

	if (r < 0)
		return r;
	for (int i = 0; i < CG_N; i++) {
		if (!cg_tab[i].version || (i == CG_ACCT && (!create || !cg_unique(i))))
			continue;
		r = cg_lib_apply(i, name, lim, create);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- processes ---- */

/* Call fn on every pid in dir/cgroup.procs (fn may be NULL to count). The
 * number listed, or -errno (fn's error stops the walk). */
static int cg_procs_each(const char *dir, int (*fn)(pid_t, void *), void *arg)
{
	char path[PATH_MAX];
	int pid, n = 0, r = cg_at(path, sizeof path, dir, "cgroup.procs");
	FILE *f;

	if (r < 0)
		return r;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (r == 0 && fscanf(f, "%d", &pid) == 1) {
		n++;
		r = fn ? fn(pid, arg) : 0;
	}
	fclose(f);
	return r < 0 ? r : n;
}

/* Path of pid's cgroup (0: our own) in c's hierarchy, as /proc/PID/cgroup
 * shows it: "/a/b". Lines are "ID:controller,list:/path"; v2 is "0::/path". */
static int cg_proc_path(pid_t pid, const struct cg_ctrl *c, char *out, size_t len)
{
	char file[64], buf[8192], *line, *next, *ctrls, *path;
	ssize_t n;

	if (pid)
		snprintf(file, sizeof file, "/proc/%d/cgroup", (int)pid);
	else
		snprintf(file, sizeof file, "/proc/self/cgroup");
	n = cg_read(file, buf, sizeof buf);
	if (n < 0)
		return (int)n;
	for (line = buf; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		ctrls = strchr(line, ':');
		path = ctrls ? strchr(ctrls + 1, ':') : NULL;
		if (!path)
			continue;
		*path++ = '\0';
		ctrls++;
		if (c->version == 2 ? !*ctrls : cg_has_word(ctrls, ',', c->name))
			return snprintf(out, len, "%s", path) < (int)len ? 0 : -ENAMETOOLONG;
	}
	return -ENOENT;
}

struct cg_kill {
	const struct cg_ctrl *c;
	char want[PATH_MAX]; /* "/OWN/PARENT/NAME" as /proc/PID/cgroup shows it */
};

/* SIGKILL pid if it is still in the group. The pid was read from
 * cgroup.procs and may have been reused since by a process outside; the
 * pidfd pins the process we check, so the signal cannot reach a newcomer. */
static int cg_kill_one(pid_t pid, void *arg)
{
	const struct cg_kill *k = arg;
	size_t n = strlen(k->want);
	char path[PATH_MAX];
	int pfd;

	pfd = pidfd_open(pid, 0);
	if (pfd < 0 && errno == ENOSYS) /* before 5.3: no better way */
		return kill(pid, SIGKILL) < 0 && errno != ESRCH ? -errno : 0;
	if (pfd < 0)
		return 0; /* already gone */
	if (!cg_proc_path(pid, k->c, path, sizeof path) && !strncmp(path, k->want, n) &&
	    (path[n] == '\0' || path[n] == '/'))
		pidfd_send_signal(pfd, SIGKILL, NULL, 0);
	close(pfd);
	return 0;
}

/* One killing round in hierarchy i. v2 cgroup.kill (5.14+) kills the whole
 * group at once, racing forks included; otherwise signal each member.
 * Returns how many processes were listed, or -errno. */
static int cg_kill_round(int i, const char *name)
{
	const struct cg_ctrl *c = &cg_tab[i];
	struct cg_kill k = {.c = c};
	char dir[PATH_MAX], file[PATH_MAX];
	int r;

	r = cg_path(c, name, dir, sizeof dir);
	if (!r && c->version == 2)
		r = cg_file(c, name, "cgroup.kill", file, sizeof file);
	if (r < 0)
		return r;
	if (c->version == 2 && cg_write(file, "1") == 0)
		return cg_procs_each(dir, NULL, NULL);
	k.want[0] = '/';
	r = cg_rel(c, name, k.want + 1, sizeof k.want - 1);
	return r < 0 ? r : cg_procs_each(dir, cg_kill_one, &k);
}

/* ---- v2: leaf and subtree_control ---- */

/* Enable our v2 controllers for dir's children (no-op for those already on). */
static int cg_v2_enable(const char *dir)
{
	char path[PATH_MAX], have[512], word[32];
	int r = cg_at(path, sizeof path, dir, "cgroup.subtree_control");
	ssize_t n = r < 0 ? r : cg_read(path, have, sizeof have);

	if (n < 0)
		return (int)n;
	for (int i = CG_MEM; i <= CG_PIDS; i++) {
		if (cg_tab[i].version != 2 || cg_has_word(have, ' ', cg_tab[i].name))
			continue;
		snprintf(word, sizeof word, "+%s", cg_tab[i].name);
		r = cg_write(path, word);
		if (r < 0) {
			log_error_r(r, "write %s to %s", word, path);
			return r;
		}
	}
	return 0;
}

static int cg_move_one(pid_t pid, void *arg)
{
	char val[16];
	int r;

	snprintf(val, sizeof val, "%d", (int)pid);
	r = cg_write(arg, val);
	return r == -ESRCH ? 0 : r; /* exited meanwhile */
}

/* v2 lets a group hand controllers to its children only while it has no
 * processes of its own (the root excepted). Move everything in OWN (us and
 * whatever shares our cgroup, or the kernel refuses) into OWN/launcher. */
static int cg_v2_leave(const char *own)
{
	char leaf[PATH_MAX], procs[PATH_MAX];
	int n;

	if (cg_at(leaf, sizeof leaf, own, CG_LEAF) < 0 ||
	    cg_at(procs, sizeof procs, leaf, "cgroup.procs") < 0)
		return -ENAMETOOLONG;
	if (mkdir(leaf, 0755) < 0 && errno != EEXIST) {
		log_error_r(errno, "mkdir %s", leaf);
		return -errno;
	}
	for (int round = 0; round < 10; round++) {
		n = cg_procs_each(own, cg_move_one, procs);
		if (n < 0)
			log_error_r(n, "moving processes from %s to %s", own, leaf);
		if (n <= 0)
			return n;
		log_info("moved %d processes from %s into %s", n, own, leaf);
	}
	log_error("processes keep appearing in %s", own);
	return -EBUSY;
}

/* The first of memory/cpu/pids on v2 (they all share one hierarchy). */
static const struct cg_ctrl *cg_v2_ctrl(void)
{
	for (int i = CG_MEM; i <= CG_PIDS; i++)
		if (cg_tab[i].version == 2)
			return &cg_tab[i];
	return NULL;
}

/* Check that OWN may give our v2 controllers to its children, and let it. */
static int cg_v2_prepare(void)
{
	const struct cg_ctrl *c = cg_v2_ctrl();
	char own[PATH_MAX], file[PATH_MAX], avail[512];
	ssize_t n;
	int r;

	if (!c)
		return 0;
	r = cg_at(own, sizeof own, c->mount, c->own);
	if (!r)
		r = cg_at(file, sizeof file, own, "cgroup.controllers");
	n = r < 0 ? r : cg_read(file, avail, sizeof avail);
	if (n < 0) {
		log_error_r((int)n, "read %s", file);
		return (int)n;
	}
	for (int i = CG_MEM; i <= CG_PIDS; i++)
		if (cg_tab[i].version == 2 && !cg_has_word(avail, ' ', cg_tab[i].name)) {
			log_error("%s controller not available in %s (not delegated?)",
				  cg_tab[i].name, own);
			return -ENODEV;
		}
	/* Only the real root lacks cgroup.type, and only it may hold processes
	 * and enable controllers at once; a cgroup namespace's root may not. */
	r = cg_at(file, sizeof file, own, "cgroup.type");
	if (!r)
		r = access(file, F_OK) == 0 ? cg_procs_each(own, NULL, NULL) : 0;
	if (r > 0)
		r = cg_v2_leave(own);
	return r < 0 ? r : cg_v2_enable(own);
}

/* Enable the v2 controllers at each level of PARENT ("a/b": OWN/a, OWN/a/b). */
static int cg_v2_enable_parent(void)
{
	const struct cg_ctrl *c = cg_v2_ctrl();
	char dir[PATH_MAX], *s, save;
	int r;

	if (!c)
		return 0;
	r = cg_path(c, NULL, dir, sizeof dir);
	if (r < 0)
		return r;
	for (s = dir + strlen(dir) - strlen(cg_parent);; s++) {
		if (*s && *s != '/')
			continue;
		save = *s;
		*s = '\0';
		r = cg_v2_enable(dir);
		*s = save;
		if (r < 0 || !save)
			return r;
	}
}

/* ---- init ---- */

/* Where libcgroup sees controller c mounted, and which version that is. */
static int cg_detect_mount(struct cg_ctrl *c)
{
	struct statfs sfs;
	char *mp = NULL;
	int r;

	c->version = 0;
	c->same_as = -1;
	r = cgroup_get_subsys_mount_point(c->name, &mp);
	if (r) {
		if (c->required)
			log_error("%s controller not mounted: %s", c->name, cgroup_strerror(r));
		return c->required ? -ENODEV : 0;
	}
	r = snprintf(c->mount, sizeof c->mount, "%s", mp) < (int)sizeof c->mount ? 0 : -ENAMETOOLONG;
	free(mp);
	if (!r && statfs(c->mount, &sfs) < 0)
		r = -errno;
	if (r < 0) {
		log_error_r(r, "%s controller at %s", c->name, c->mount);
		return r;
	}
	if (sfs.f_type == CGROUP2_SUPER_MAGIC)
		c->version = 2;
	else if (sfs.f_type == CGROUP_SUPER_MAGIC)
		c->version = 1;
	else
		log_error("%s controller: %s is not a cgroup filesystem", c->name, c->mount);
	return c->version ? 0 : -EINVAL;
}

/* A launcher restarted in place finds itself in the v2 leaf that cg_init
 * made last time; its tenants are siblings of that leaf, under OWN. */
static void cg_skip_leaf(struct cg_ctrl *c)
{
	char *slash = strrchr(c->own, '/'), up[PATH_MAX], dir[PATH_MAX];
	const char *parts[] = {c->mount, up, cg_parent};

	if (strcmp(slash ? slash + 1 : c->own, CG_LEAF))
		return;
	snprintf(up, sizeof up, "%.*s", slash ? (int)(slash - c->own) : 0, c->own);
	/* Only our leaf has PARENT beside it; any other "launcher" is OWN. */
	if (!cg_join(dir, sizeof dir, parts, 3) && cg_is_dir(dir))
		snprintf(c->own, sizeof c->own, "%s", up);
}

/* OWN for controller c, from /proc/self/cgroup, relative to c's mount. */
static int cg_detect_own(struct cg_ctrl *c)
{
	char path[PATH_MAX];
	const char *parts[] = {c->mount, c->own};
	int r = cg_proc_path(0, c, path, sizeof path);

	if (r < 0) {
		log_error_r(r, "own %s cgroup not in /proc/self/cgroup", c->name);
		return r;
	}
	snprintf(c->own, sizeof c->own, "%s", path + strspn(path, "/"));
	if (c->version == 2)
		cg_skip_leaf(c);
	/* A cgroup namespace or a partial bind mount can make /proc/self/cgroup
	 * disagree with what is mounted: refuse rather than guess. */
	r = cg_join(path, sizeof path, parts, 2);
	if (!r && !cg_is_dir(path)) {
		log_error("own %s cgroup %s does not exist (cgroup namespace?)", c->name, path);
		r = -ENOENT;
	}
	return r;
}

/* Entries on the same hierarchy share dirs: v1 "cpu,cpuacct", or v2. */
static void cg_link_hierarchies(void)
{
	for (int i = 0; i < CG_N; i++)
		for (int j = 0; j < i && cg_tab[i].version && cg_tab[i].same_as < 0; j++)
			if (cg_tab[j].version == cg_tab[i].version &&
			    !strcmp(cg_tab[j].mount, cg_tab[i].mount))
				cg_tab[i].same_as = j;
}

/* Optional memory files, looked up in PARENT (children get the same set). */
static void cg_detect_files(void)
{
	const struct cg_ctrl *c = &cg_tab[CG_MEM];
	char path[PATH_MAX];
	bool v1 = c->version == 1;

	cg_has_swap = !cg_file(c, NULL, v1 ? "memory.memsw.limit_in_bytes" : "memory.swap.max",
			       path, sizeof path) &&
		      access(path, F_OK) == 0;
	cg_has_oom_group = !v1 && !cg_file(c, NULL, "memory.oom.group", path, sizeof path) &&
			   access(path, F_OK) == 0;
	if (!cg_has_swap)
		log_info("no swap accounting: tenants get swappiness 0 instead of a swap limit");
}

static int cg_detect(void)
{
	int r;

	for (int i = 0; i < CG_N; i++) {
		r = cg_detect_mount(&cg_tab[i]);
		if (!r && cg_tab[i].version)
			r = cg_detect_own(&cg_tab[i]);
		if (r < 0)
			return r;
	}
	cg_link_hierarchies();
	return 0;
}

int cg_init(const char *parent)
{
	char dir[PATH_MAX];
	int r;

	r = cg_check_parent(parent);
	if (r < 0) {
		log_error("cgroup_parent \"%s\": want names joined by '/', relative to our "
			  "cgroup, not starting with \"%s\"",
			  parent ? parent : "(null)", CG_LEAF);
		return r;
	}
	cg_ready = false;
	snprintf(cg_parent, sizeof cg_parent, "%s", parent);
	r = cgroup_init();
	if (r) {
		log_error("libcgroup init: %s", cgroup_strerror(r));
		return cg_lib_err(r);
	}
	r = cg_detect();
	if (!r)
		r = cg_v2_prepare();
	for (int i = 0; i < CG_N && !r; i++)
		if (cg_unique(i))
			r = cg_lib_apply(i, NULL, NULL, true);
	if (!r)
		r = cg_v2_enable_parent();
	if (r < 0)
		return r;
	cg_detect_files();
	for (int i = 0; i < CG_N; i++)
		if (cg_tab[i].version && !cg_path(&cg_tab[i], NULL, dir, sizeof dir))
			log_info("cgroup %s: v%d, tenants under %s", cg_tab[i].name,
				 cg_tab[i].version, dir);
	cg_ready = true;
	return 0;
}

int cg_version(void)
{
	if (!cg_ready)
		return 0;
	for (int i = CG_MEM; i <= CG_PIDS; i++)
		if (cg_tab[i].version == 1)
			return 1;
	return 2;
}

/* ---- tenant groups ---- */

int cg_create(const char *name, const struct cg_limits *lim)
{
	int r = cg_check(name);

	return r < 0 ? r : cg_apply_all(name, lim, true);
}

int cg_set_limits(const char *name, const struct cg_limits *lim)
{
	int r = cg_check(name);

	if (r < 0)
		return r;
	if (!cg_exists(name))
		return -ENOENT;
	return cg_apply_all(name, lim, false);
}

/* Writing cgroup.procs moves the whole process; libcgroup 2.0.2 writes the
 * v1 "tasks" file, which moves a single thread. */
/* Write pid into cgroup.procs of every hierarchy, or (version != 0) of
 * those of that version only. */
static int cg_attach_to(const char *name, pid_t pid, int version)
{
	char path[PATH_MAX], val[16];
	int r = cg_check(name);

	if (r < 0 || pid <= 0)
		return r < 0 ? r : -EINVAL;
	snprintf(val, sizeof val, "%d", (int)pid);
	for (int i = 0; i < CG_N; i++) {
		if (!cg_unique(i) || (version && cg_tab[i].version != version))
			continue;
		r = cg_file(&cg_tab[i], name, "cgroup.procs", path, sizeof path);
		if (!r)
			r = cg_write(path, val);
		if (r < 0) {
			log_error_r(r, "attach %d to %s", (int)pid, path);
			return r;
		}
	}
	return 0;
}

int cg_attach(const char *name, pid_t pid)
{
	return cg_attach_to(name, pid, 0);
}

/* v1 hierarchies: the `tasks` files a new init writes "0" to, moving its
 * only thread into the group itself (see cgroup.h). Writing a pid to
 * cgroup.procs takes the kernel's global cgroup_threadgroup_rwsem for
 * writing, which waits for an RCU grace period: measured 5 ms per write
 * in the launcher (4 hierarchies, 20 ms per tenant, serial in its loop);
 * a thread that moves itself does not take it. */
int cg_open_self_attach(const char *name, int fds[], size_t max, bool *need_attach)
{
	char path[PATH_MAX];
	size_t n = 0;
	int r = cg_check(name);

	*need_attach = false;
	if (r < 0)
		return r;
	for (int i = 0; i < CG_N; i++) {
		if (!cg_unique(i))
			continue;
		if (cg_tab[i].version != 1) {
			*need_attach = true;
			continue;
		}
		r = n < max ? cg_file(&cg_tab[i], name, "tasks", path, sizeof path) : -E2BIG;
		if (!r && (fds[n] = open(path, O_WRONLY | O_CLOEXEC)) < 0)
			r = -errno;
		if (r < 0) {
			log_error_r(r, "open %s", path);
			while (n > 0)
				close(fds[--n]);
			return r;
		}
		n++;
	}
	return (int)n;
}

int cg_attach_v2(const char *name, pid_t pid)
{
	return cg_attach_to(name, pid, 2);
}

/* Read one counter of the group. Callers read a mandatory file first, so
 * -ENOENT on an optional one means the kernel lacks the file or key. */
static int cg_get(int i, const char *name, const char *file, const char *key, bool optional,
		  uint64_t *v)
{
	char path[PATH_MAX];
	int r = cg_file(&cg_tab[i], name, file, path, sizeof path);

	if (!r)
		r = key ? cg_read_key(path, key, v) : cg_read_u64(path, v);
	if (r == -ENOENT && optional) {
		*v = 0;
		r = 0;
	}
	return r;
}

static int cg_usage_memory(const char *name, struct cg_usage *u)
{
	int r;

	if (cg_tab[CG_MEM].version == 1) {
		r = cg_get(CG_MEM, name, "memory.usage_in_bytes", NULL, false, &u->memory);
		if (!r)
			r = cg_get(CG_MEM, name, "memory.max_usage_in_bytes", NULL, true,
				   &u->memory_max_seen);
		return r ? r : cg_get(CG_MEM, name, "memory.oom_control", "oom_kill", true,
				      &u->oom_kills);
	}
	r = cg_get(CG_MEM, name, "memory.current", NULL, false, &u->memory);
	if (!r)
		r = cg_get(CG_MEM, name, "memory.peak", NULL, true, &u->memory_max_seen);
	return r ? r : cg_get(CG_MEM, name, "memory.events", "oom_kill", true, &u->oom_kills);
}

int cg_usage(const char *name, struct cg_usage *u)
{
	uint64_t ns = 0;
	int r = cg_check(name);

	if (r < 0 || !u)
		return r < 0 ? r : -EINVAL;
	memset(u, 0, sizeof *u);
	r = cg_usage_memory(name, u);
	if (!r && cg_tab[CG_CPU].version == 2)
		r = cg_get(CG_CPU, name, "cpu.stat", "usage_usec", false, &u->cpu_usec);
	else if (!r && cg_tab[CG_ACCT].version == 1) {
		r = cg_get(CG_ACCT, name, "cpuacct.usage", NULL, false, &ns);
		u->cpu_usec = ns / 1000;
	}
	if (!r)
		r = cg_get(CG_PIDS, name, "pids.current", NULL, false, &u->pids);
	return r;
}

struct cg_store {
	pid_t *pids;
	size_t max, n;
};

static int cg_store_one(pid_t pid, void *arg)
{
	struct cg_store *s = arg;

	if (s->n < s->max)
		s->pids[s->n++] = pid;
	return 0;
}

int cg_procs(const char *name, pid_t *pids, size_t max)
{
	struct cg_store s = {.pids = pids, .max = max};
	char dir[PATH_MAX];
	int r = cg_check(name);

	if (r < 0 || (!pids && max))
		return r < 0 ? r : -EINVAL;
	r = cg_path(&cg_tab[CG_PIDS], name, dir, sizeof dir);
	if (!r)
		r = cg_procs_each(dir, cg_store_one, &s);
	return r < 0 ? r : (int)s.n;
}

int cg_kill_all(const char *name)
{
	struct timespec t0;
	int left, n, r = cg_check(name);

	if (r < 0)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		left = 0;
		for (int i = 0; i < CG_N; i++) {
			n = cg_unique(i) ? cg_kill_round(i, name) : 0;
			if (n < 0 && n != -ENOENT) {
				log_error_r(n, "%s: killing in %s", name, cg_tab[i].name);
				return n;
			}
			left += n > 0 ? n : 0;
		}
		if (!left)
			return 0;
		if (cg_ms_since(&t0) >= CG_KILL_MS) {
			log_error("%s: %d processes survive SIGKILL after %d ms", name, left,
				  CG_KILL_MS);
			return -EBUSY;
		}
		cg_sleep_ms(5);
	}
}

/* rmdir, retried briefly: a group can stay busy for a moment after its
 * last process died. Absent is fine. */
static int cg_rmdir(const char *path)
{
	for (int i = 0;; i++) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || i >= CG_RMDIR_TRIES)
			return -errno;
		cg_sleep_ms(10);
	}
}

/* Remove a group and any groups below it, deepest first. A cgroup dir
 * holds kernel files (which go with it) and child groups. */
static int cg_rmdir_tree(const char *path, int depth)
{
	char sub[PATH_MAX];
	struct dirent *de;
	int r = 0;
	DIR *d;

	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (!r && (de = readdir(d))) {
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= (int)sizeof sub)
			r = -ENAMETOOLONG;
		else
			r = depth < CG_MAX_DEPTH ? cg_rmdir_tree(sub, depth + 1) : -ELOOP;
	}
	closedir(d);
	return r < 0 ? r : cg_rmdir(path);
}

/* Per controller: libcgroup's delete (like cgdelete) stops after the first. */
int cg_destroy(const char *name)
{
	char dir[PATH_MAX];
	int r = cg_kill_all(name), err = 0;

	if (r < 0)
		return r;
	for (int i = 0; i < CG_N; i++) {
		if (!cg_unique(i))
			continue;
		r = cg_path(&cg_tab[i], name, dir, sizeof dir);
		if (!r)
			r = cg_rmdir_tree(dir, 0);
		if (r < 0) {
			log_error_r(r, "rmdir %s", dir);
			err = err ? err : r;
		}
	}
	return err;
}

int cg_dir(const char *name, const char *controller, char *buf, size_t len)
{
	int r = cg_check(name);

	if (r < 0 || !controller || !buf || !len)
		return r < 0 ? r : -EINVAL;
	for (int i = 0; i < CG_N; i++)
		if (cg_tab[i].version && !strcmp(cg_tab[i].name, controller))
			return cg_path(&cg_tab[i], name, buf, len);
	return -EINVAL;
}

bool cg_exists(const char *name)
{
	char dir[PATH_MAX];

	if (cg_check(name) < 0)
		return false;
	for (int i = CG_MEM; i <= CG_PIDS; i++)
		if (cg_path(&cg_tab[i], name, dir, sizeof dir) || !cg_is_dir(dir))
			return false;
	return true;
}

static bool cg_names_has(char **names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return true;
	return false;
}

static int cg_names_add(char ***names, size_t *n, const char *name)
{
	char **grown = realloc(*names, (*n + 1) * sizeof **names);

	if (!grown)
		return -ENOMEM;
	*names = grown;
	grown[*n] = strdup(name);
	if (!grown[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* Add the subdirs of PARENT in controller i not seen yet. */
static int cg_list_one(int i, char ***names, size_t *n)
{
	char dir[PATH_MAX];
	struct dirent *de;
	int r = cg_path(&cg_tab[i], NULL, dir, sizeof dir);
	DIR *d;

	if (r < 0)
		return r;
	d = opendir(dir);
	if (!d)
		return -errno;
	while (!r && (de = readdir(d)))
		if (de->d_type == DT_DIR && !cg_check_name(de->d_name) &&
		    !cg_names_has(*names, *n, de->d_name))
			r = cg_names_add(names, n, de->d_name);
	closedir(d);
	return r;
}

/* A group half made (a crash between controllers) is listed too, so that
 * the caller can adopt or destroy it. */
int cg_list(char ***names, size_t *n)
{
	int r = cg_ready ? 0 : -ENODEV;

	if (!names || !n)
		return -EINVAL;
	*names = NULL;
	*n = 0;
	for (int i = 0; i < CG_N && !r; i++)
		if (cg_unique(i))
			r = cg_list_one(i, names, n);
	if (r < 0) {
		for (size_t i = 0; i < *n; i++)
			free((*names)[i]);
		free(*names);
		*names = NULL;
		*n = 0;
	}
	return r;
}
