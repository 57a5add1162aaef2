/*
 * log.h - leveled, timestamped logging shared by every process (util/log.c).
 *
 * Lines go to stderr, or to the file given to log_open(); SIGUSR1 makes the
 * master ask everyone to log_reopen().  Each line carries a timestamp, the
 * level, the process role and pid:  2026-11-26T10:00:00.123Z WARN worker[123] ...
 * A line is written with one write(2), so processes sharing a file do not
 * interleave within a line.
 */
#ifndef ARTEMIS_LOG_H
#define ARTEMIS_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* path NULL or "" or "-" = stderr.  Returns 0 or -errno. */
int log_open(const char *path, enum log_level level);
int log_reopen(void);
void log_set_role(const char *role);
void log_set_level(enum log_level level);
int log_parse_level(const char *s, enum log_level *out);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
