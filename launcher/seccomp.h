/* seccomp: the system call filter of every tenant process. */
#ifndef FIEF_SECCOMP_H
#define FIEF_SECCOMP_H

#include <stdbool.h>

/* Compile the filter once, in the process that will fork the tenant's
 * processes; seccomp_tenant_install() then only loads it. 0 or -errno. */
int seccomp_tenant_prepare(void);

/* Install the filter in the calling process (no_new_privs must be set).
 * 0 or -errno. */
int seccomp_tenant_install(void);

/* True when seccomp_tenant_prepare() compiled the filter: installing it is
 * then a single prctl, with no allocation. */
bool seccomp_tenant_prepared(void);

#endif
