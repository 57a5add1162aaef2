/*
 * pidfile.c - <data_dir>/artemis.pid: one master per data directory.
 *
 * The master keeps the file open with an exclusive flock() for its whole
 * life, so "is a master running" never depends on a pid that may have been
 * reused: the lock disappears with the process.  The CLI reads the pid and
 * tests the lock.  Children do not keep the descriptor (master.c closes it
 * in each child), so the lock is the master's alone.
 */
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int pidfile_path(const char *data_dir, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/artemis.pid", data_dir);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int pidfile_mkdirs(const char *dir)
{
	char p[CONFIG_STR];
	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static pid_t read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	long v = strtol(buf, NULL, 10);
	return v > 0 ? (pid_t)v : 0;
}

/* The lock must be on the file that is at path now, not on one a stopping
 * master unlinked after we opened it. */
static bool still_linked(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

int pidfile_acquire(const char *path, pid_t *holder)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			*holder = read_pid(fd);
			close(fd);
			return e == EWOULDBLOCK ? -EBUSY : -e;
		}
		if (!still_linked(fd, path)) {
			close(fd);
			continue;
		}
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
		if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
			int e = errno;
			close(fd);
			return -e;
		}
		return fd;
	}
	return -EAGAIN;
}

void pidfile_release(int fd, const char *path)
{
	if (fd < 0)
		return;
	unlink(path);
	close(fd);
}

int pidfile_running(const char *path, pid_t *pid)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		rc = -ESRCH;
	} else if (errno == EWOULDBLOCK) {
		*pid = read_pid(fd);
		rc = *pid > 0 ? 0 : -ESRCH;
	} else {
		rc = -errno;
	}
	close(fd);
	return rc;
}
