/*
 * log.c - leveled logging (see include/artemis/log.h).
 *
 * Called from every process; not async-signal-safe (signal handlers only set
 * flags, see master/).  The line is formatted into a stack buffer and written
 * with a single write(2) so concurrent writers never interleave a line.
 */
#include "artemis/log.h"
#include "artemis/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static enum log_level log_min = LOG_INFO;
static char log_path[4096];
static char log_role[32] = "artemis";

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int log_open(const char *path, enum log_level level)
{
	log_min = level;
	if (!path || !*path || strcmp(path, "-") == 0) {
		log_path[0] = '\0';
		log_fd = 2;
		return 0;
	}
	if (strlen(path) >= sizeof(log_path))
		return -ENAMETOOLONG;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (log_fd > 2)
		close(log_fd);
	log_fd = fd;
	memcpy(log_path, path, strlen(path) + 1);
	return 0;
}

int log_reopen(void)
{
	if (!log_path[0])
		return 0;
	char path[sizeof(log_path)];
	memcpy(path, log_path, sizeof(path));
	return log_open(path, log_min);
}

void log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void log_set_level(enum log_level level)
{
	log_min = level;
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (int i = 0; i <= LOG_ERROR; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level < log_min)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n =
	    snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s[%d] ",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	             ts.tv_nsec / 1000000, level_names[level], log_role, (int)getpid());
	/* The message may quote what a client or peer sent: control characters
	 * are escaped so no input can forge or split a line. */
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
	size_t len = (size_t)n + str_escape(msg, mlen, line + n, sizeof(line) - (size_t)n - 1);
	line[len++] = '\n';
	ssize_t w = write(log_fd, line, len);
	(void)w;
}
