/* log: one line per event, to stderr (journald) or syslog. */
#ifndef FIEF_LOG_H
#define FIEF_LOG_H

#include <errno.h>
#include <stdarg.h>

enum log_level { LOG_LVL_ERROR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Name the program (and optionally the tenant it serves, as context printed
 * before every message) and choose syslog instead of stderr. */
void log_init(const char *ident, int use_syslog);
void log_set_level(enum log_level lvl);
/* Context printed first on every line, e.g. the tenant name; NULL clears. */
void log_set_context(const char *ctx);
enum log_level log_level_from_string(const char *s);

void log_msg(enum log_level lvl, int err, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...)  log_msg(LOG_LVL_ERROR, 0, __func__, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_LVL_WARN, 0, __func__, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_LVL_INFO, 0, __func__, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_LVL_DEBUG, 0, __func__, __VA_ARGS__)
/* The _r forms append ": strerror(err)"; pass errno or a -errno result. */
#define log_error_r(e, ...) log_msg(LOG_LVL_ERROR, (e), __func__, __VA_ARGS__)
#define log_warn_r(e, ...)  log_msg(LOG_LVL_WARN, (e), __func__, __VA_ARGS__)

#endif
