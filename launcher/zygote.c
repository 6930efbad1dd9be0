/* zygote: the small process that forks the tenants' inits.
 *
 * An init forked straight from the launcher starts out sharing every
 * page of the launcher's heap. The launcher goes on writing its heap
 * (other tenants' starts, supervision, the control socket), and each
 * page it writes leaves the init holding the old copy as its own: 100 to
 * 150 KiB of an idle init's memory were such pages. The zygote is forked
 * once, when the launcher starts and before it reads any tenant, and
 * after that neither allocates nor writes heap memory: the inits it
 * forks keep sharing its few pages with it and with each other.
 *
 * For each start the launcher sends one message on a SOCK_SEQPACKET
 * pair: a fixed header (uid, gid, the tenant file's path, the number of
 * cgroup fds) and, as SCM_RIGHTS, the init's end of the sync socket, the
 * agent socket, a memfd holding the tenant file's bytes (the very bytes
 * the launcher parsed) and the cgroup fds (cg_open_self_attach). The
 * zygote clones the init into its namespaces with CLONE_PARENT, so that
 * the init is the launcher's child as before, and answers with its pid.
 * The init parses the file again and carries on as spawn_child does.
 *
 * When the zygote is gone or does not answer, the launcher forks the init
 * itself, as before, and starts a new zygote for the next tenant. */
#include "zygote.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fdpass.h"
#include "launcher.h"
#include "log.h"

#define ZYGOTE_MAGIC 0x7a79676fu     /* "zygo" */
#define ZYGOTE_MAX_CG 8
#define ZYGOTE_FIXED_FDS 3           /* sync, agent, file */
#define ZYGOTE_REPLY_MS 2000         /* a clone takes a few ms; more is a hung zygote */

struct zygote_req {
	uint32_t magic;
	uint32_t uid, gid;
	uint32_t n_cg;
	uint32_t file_len;
	char path[4096];                 /* for the parser's messages and cfg->file */
};

struct zygote_rep {
	int32_t pid;                     /* > 0, or 0 with err */
	int32_t err;
};

static struct {
	int fd;                          /* -1: none */
	pid_t pid;
	struct ev_loop *loop;            /* the launcher's, for child_w */
	ev_child child_w;
	const struct config_host *host;
} Z = { .fd = -1 };

/* ---- the zygote's side ---- */

/* In the init, just cloned: the tenant file from the memfd, parsed. */
static __attribute__((noreturn)) void zygote_child(const struct zygote_req *rq, const int *fds)
{
	struct config_errors errs;
	struct config_tenant *cfg = NULL;
	char *buf = malloc(rq->file_len + 1);

	/* Named like an init forked by the launcher itself. */
	prctl(PR_SET_NAME, "fief-launcher");
	if (buf && pread(fds[2], buf, rq->file_len, 0) == (ssize_t)rq->file_len)
		cfg = config_tenant_parse(rq->path, buf, rq->file_len, Z.host, &errs);
	free(buf);
	close(fds[2]);
	if (!cfg) {
		/* The launcher parsed these very bytes: only memory can fail. */
		char msg[80];
		int k = snprintf(msg, sizeof msg, "%cthe zygote could not read the tenant file again",
				 SYNC_ERROR);
		if (send(fds[0], msg, (size_t)k, MSG_NOSIGNAL) < 0)
			log_error("%s: %s", rq->path, msg + 1);
		_exit(1);
	}
	spawn_become_init(Z.host, cfg, rq->uid, rq->gid, fds[0], fds[1], fds + ZYGOTE_FIXED_FDS,
			  (int)rq->n_cg);
}

/* One request: 0 to go on, -1 when the launcher is gone. */
static int zygote_serve_one(int sock)
{
	struct zygote_req rq;
	int fds[ZYGOTE_FIXED_FDS + ZYGOTE_MAX_CG];
	size_t n_fds = 0;
	struct zygote_rep rep = { 0, EINVAL };
	struct pollfd pf = { .fd = sock, .events = POLLIN };
	ssize_t n;

	if (poll(&pf, 1, -1) < 0)
		return errno == EINTR ? 0 : -1;
	n = fdpass_recv(sock, &rq, sizeof rq, fds, sizeof fds / sizeof fds[0], &n_fds);
	if (n == 0 || (n < 0 && n != -EAGAIN && n != -EMSGSIZE && n != -EBADMSG))
		return -1;
	if (n == -EAGAIN)
		return 0;
	if (n == (ssize_t)sizeof rq && rq.magic == ZYGOTE_MAGIC && rq.n_cg <= ZYGOTE_MAX_CG &&
	    n_fds == ZYGOTE_FIXED_FDS + rq.n_cg && rq.file_len <= CONFIG_MAX_FILE &&
	    memchr(rq.path, 0, sizeof rq.path)) {
		/* Like spawn_init, and the init becomes the launcher's child. */
		pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SPAWN_CLONE_FLAGS, NULL, NULL, NULL,
					   NULL);
		if (pid == 0)
			zygote_child(&rq, fds);
		rep.pid = pid > 0 ? pid : 0;
		rep.err = pid > 0 ? 0 : errno;
	}
	fdpass_close_all(fds, n > 0 ? n_fds : 0);
	return fdpass_send(sock, &rep, sizeof rep, NULL, 0) < 0 ? -1 : 0;
}

static __attribute__((noreturn)) void zygote_main(int sock, pid_t launcher)
{
	sigset_t none;

	/* Gone with the launcher; then its socket says so too. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != launcher)
		_exit(0);
	sigemptyset(&none);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_NAME, "fief-zygote");
	/* Keep stdout and stderr (the launcher's log, which the inits
	 * inherit), and the socket. */
	if (sock > 3)
		close_range(3, (unsigned)sock - 1, 0);
	close_range((unsigned)sock + 1, ~0U, 0);
	while (zygote_serve_one(sock) == 0)
		;
	_exit(0);
}

/* ---- the launcher's side ---- */

/* No zygote any more. Its watcher stops here, not when it is reaped: the
 * next start may fork a new one (and init the watcher again) before the
 * loop has reaped this one, which libev does for any child anyway. */
static void zygote_forget(void)
{
	if (Z.loop)
		ev_child_stop(Z.loop, &Z.child_w);
	if (Z.fd >= 0)
		close(Z.fd);
	Z.fd = -1;
	Z.pid = 0;
}

static void zygote_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	log_warn("the zygote (pid %d) ended (status %d); inits are forked by the launcher until the next start",
		 (int)w->rpid, w->rstatus);
	zygote_forget();
}

int zygote_start(struct launcher *L)
{
	int sv[2];
	pid_t self = getpid(), pid;

	if (Z.fd >= 0)
		return 0;
	Z.host = L->host;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0) {
		close(sv[0]);
		zygote_main(sv[1], self);
	}
	close(sv[1]);
	Z.fd = sv[0];
	Z.pid = pid;
	L->zygote_starts++;
	Z.loop = L->loop;
	ev_child_init(&Z.child_w, zygote_child_cb, pid, 0);
	ev_child_start(Z.loop, &Z.child_w);
	log_debug("zygote started (pid %d)", (int)pid);
	return 0;
}

/* A hung or confused zygote: kill it (the loop reaps it). */
static void zygote_drop(const char *why)
{
	log_warn("zygote: %s; the launcher forks this init itself", why);
	if (Z.pid > 0)
		kill(Z.pid, SIGKILL);
	zygote_forget();
}

pid_t zygote_spawn(struct launcher *L, const struct tenant *t, int sync_fd, int agent_fd,
		   const int *cg_fds, int n_cg)
{
	struct zygote_req rq = { .magic = ZYGOTE_MAGIC, .uid = t->uid, .gid = t->gid };
	int fds[ZYGOTE_FIXED_FDS + ZYGOTE_MAX_CG], mfd, r;
	struct zygote_rep rep;
	struct pollfd pf;
	ssize_t n;

	if (Z.fd < 0 && zygote_start(L) < 0)
		return -1;
	if (!t->file_buf || !t->cfg || !t->cfg->file || n_cg > ZYGOTE_MAX_CG ||
	    strlen(t->cfg->file) >= sizeof rq.path || t->file_len > CONFIG_MAX_FILE)
		return -1;
	snprintf(rq.path, sizeof rq.path, "%s", t->cfg->file);
	rq.n_cg = (uint32_t)n_cg;
	rq.file_len = (uint32_t)t->file_len;
	mfd = memfd_create("fief-tenant-file", MFD_CLOEXEC);
	if (mfd < 0)
		return -1;
	if (write(mfd, t->file_buf, t->file_len) != (ssize_t)t->file_len) {
		close(mfd);
		return -1;
	}
	fds[0] = sync_fd;
	fds[1] = agent_fd;
	fds[2] = mfd;
	for (int i = 0; i < n_cg; i++)
		fds[ZYGOTE_FIXED_FDS + i] = cg_fds[i];
	r = fdpass_send(Z.fd, &rq, sizeof rq, fds, ZYGOTE_FIXED_FDS + (size_t)n_cg);
	close(mfd);
	if (r < 0) {
		zygote_drop("cannot reach it");
		return -1;
	}
	pf = (struct pollfd){ .fd = Z.fd, .events = POLLIN };
	if (poll(&pf, 1, ZYGOTE_REPLY_MS) != 1) {
		zygote_drop("no answer");
		return -1;
	}
	n = recv(Z.fd, &rep, sizeof rep, 0);
	if (n != (ssize_t)sizeof rep || rep.pid < 0 || (rep.pid == 0 && rep.err == 0)) {
		zygote_drop("a bad answer");
		return -1;
	}
	if (rep.pid == 0) {
		/* The clone itself failed: the launcher's own try will tell. */
		log_debug("%s: zygote: clone: %s", t->name, strerror(rep.err));
		return -1;
	}
	return (pid_t)rep.pid;
}

void zygote_stop(void)
{
	pid_t pid = Z.pid;

	zygote_forget();
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}
