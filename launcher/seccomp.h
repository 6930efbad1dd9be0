/* seccomp: the system call filter of every tenant process. */
#ifndef FIEF_SECCOMP_H
#define FIEF_SECCOMP_H

/* Install the filter in the calling process (no_new_privs must be set).
 * 0 or -errno. */
int seccomp_tenant_install(void);

#endif
