/* fsutil: careful file system helpers for host paths near tenant data. */
#ifndef FIEF_FSUTIL_H
#define FIEF_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with the given mode for every created component; the last
 * component gets mode, uid and gid even when it already exists, and must
 * be a real directory (not a symlink). uid/gid -1 leave ownership alone. */
int fs_mkdir_p(const char *path, mode_t mode, uid_t uid, gid_t gid);

/* Remove a tree without ever following a symlink (the tree may be
 * tenant-owned). Missing is fine. 0 or -errno. */
int fs_rm_rf(const char *path);

/* Write a file atomically: write PATH.tmp.PID, fsync, rename. */
int fs_write_atomic(const char *path, const void *buf, size_t len, mode_t mode);
/* The same without the fsync: for state that need not survive a crash of
 * the machine (state_dir is a tmpfs) and is written on hot paths. */
int fs_write_replace(const char *path, const void *buf, size_t len, mode_t mode);

/* Read a small regular file (no fifos, devices or symlinked paths). */
int fs_read_small(const char *path, char *buf, size_t len);

#endif
