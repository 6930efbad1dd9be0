/* log: one line per event, to stderr (journald) or syslog. */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static const char *log_ident = "fief";
static int log_syslog;
static enum log_level log_max = LOG_LVL_INFO;
static char log_ctx[64];
/* Under systemd, stderr goes to journald, which reads a <N> prefix as the
 * priority and adds the time and the unit name itself. */
static int log_journal;

static const char *log_level_name(enum log_level lvl)
{
	switch (lvl) {
	case LOG_LVL_ERROR: return "error";
	case LOG_LVL_WARN: return "warning";
	case LOG_LVL_INFO: return "info";
	default: return "debug";
	}
}

void log_init(const char *ident, int use_syslog)
{
	const char *env = getenv("FIEF_LOG_LEVEL");

	log_ident = ident;
	log_syslog = use_syslog;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
	if (use_syslog)
		openlog(ident, LOG_PID, LOG_DAEMON);
	if (env)
		log_max = log_level_from_string(env);
}

void log_set_level(enum log_level lvl)
{
	log_max = lvl;
}

void log_set_context(const char *ctx)
{
	snprintf(log_ctx, sizeof log_ctx, "%s", ctx ? ctx : "");
}

enum log_level log_level_from_string(const char *s)
{
	if (!strcmp(s, "debug"))
		return LOG_LVL_DEBUG;
	if (!strcmp(s, "warn") || !strcmp(s, "warning"))
		return LOG_LVL_WARN;
	if (!strcmp(s, "error"))
		return LOG_LVL_ERROR;
	return LOG_LVL_INFO;
}

/* Replace control characters so one event stays one line, whatever a
 * tenant or a client managed to put into the message. */
static void log_sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

void log_msg(enum log_level lvl, int err, const char *func, const char *fmt, ...)
{
	char body[1024], line[1280];
	int saved = errno;
	va_list ap;

	if (lvl > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);
	log_sanitize(body);
	if (err < 0)
		err = -err;

	/* journald reads the <N> prefix as the priority of a stderr line. */
	snprintf(line, sizeof line, "%s%s%s%s%s%s%s",
		 log_ctx[0] ? log_ctx : "", log_ctx[0] ? ": " : "", body,
		 err ? ": " : "", err ? strerror(err) : "",
		 lvl == LOG_LVL_DEBUG ? " @" : "", lvl == LOG_LVL_DEBUG ? func : "");
	if (log_syslog)
		syslog((int)lvl, "%s", line);
	else if (log_journal)
		fprintf(stderr, "<%d>%s\n", (int)lvl, line);
	else
		fprintf(stderr, "%s[%d]: %s: %s\n", log_ident, (int)getpid(),
			log_level_name(lvl), line);
	errno = saved;
}
