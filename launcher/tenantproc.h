/* tenantproc: processes that the tenant init runs as the tenant. */
#ifndef FIEF_TENANTPROC_H
#define FIEF_TENANTPROC_H

#include <ev.h>
#include <stdbool.h>
#include <sys/types.h>

struct init_args;

typedef void (*tenantproc_exit_fn)(pid_t pid, int status, void *data);

struct tp_spec {
	const char *path;            /* program to execve */
	char *const *argv;
	char *const *envp;           /* NULL: tenantproc's login environment */
	const char *cwd;             /* NULL: the home; chdir happens as the tenant */
	int fd_in, fd_out, fd_err;   /* become 0, 1, 2; -1 = /dev/null */
	int ctty;                    /* >= 0: make this the controlling terminal */
	tenantproc_exit_fn on_exit;
	void *data;
};

void tenantproc_init(struct ev_loop *loop, const struct init_args *a);
/* Fork a child that drops to the tenant (uid, gid, no groups, no
 * capabilities in any set, no_new_privs) and runs spec. Returns its pid. */
pid_t tenantproc_spawn(const struct tp_spec *spec);
/* The init reaped pid: call its exit function. */
void tenantproc_exited(pid_t pid, int status);
/* Forget pid's exit function: it is reaped without a call. */
void tenantproc_forget(pid_t pid);
/* Forget every exit function (the tenant is stopping). */
void tenantproc_stop_all(void);

/* The login environment: HOME, USER, LOGNAME, SHELL, PATH, LANG, the
 * tenant's env, then `extra` (NAME=value strings, may be NULL), each
 * later entry replacing an earlier one of the same name. Caller frees
 * with tenantproc_env_free. */
char **tenantproc_env(char *const *extra, size_t n_extra);
void tenantproc_env_free(char **env);

const char *tenantproc_home(void);
const char *tenantproc_shell(void);

#endif
