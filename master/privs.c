/*
 * privs.c - what the master's children may do: nginx's model.
 *
 * Started as root, the master binds its listeners, creates the region and
 * data_dir, and keeps running as root (a reload may need to bind again);
 * each child it forks then becomes [node] user before it runs anything:
 * supplementary groups dropped, the user's primary group, the user's uid
 * (all three ids, so there is no way back).  Children hold the region's
 * mapping and file descriptor from the fork, so they need no permission on
 * /dev/shm; data_dir and the log file are handed to the user so they can
 * write and reopen them.  Without [node] user (the default) children stay
 * what the master was started as.
 *
 * Whatever the user, every child sets no_new_privs (nothing it could ever
 * exec gains privileges), and children other than the replicator forget the
 * cluster key (master.c wipes their copies of the configuration).  Core
 * dumps stay as the operator set them: RLIMIT_CORE is inherited unchanged,
 * and a child that switched user is marked dumpable again (the kernel
 * clears that on a uid change), as nginx does.
 *
 * Called by master.c at start (resolve, prepare) and by children.c in each
 * new child (drop); library-style: errors come back with a message.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "artemis/log.h"
#include "master_state.h"

int master_user_resolve(const config_t *cfg, master_user_t *u, char *err, size_t len)
{
	memset(u, 0, sizeof(*u));
	if (!cfg->user[0])
		return 0;
	errno = 0;
	struct passwd *pw = getpwnam(cfg->user);
	if (!pw) {
		snprintf(err, len, "[node] user '%s': %s", cfg->user,
		         errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, len,
		         "[node] user '%s' is root: name an unprivileged user, or leave "
		         "it empty",
		         cfg->user);
		return -1;
	}
	if (geteuid() != 0) {
		if (pw->pw_uid == geteuid())
			return 0; /* already that user */
		snprintf(err, len,
		         "[node] user '%s': only a master started as root can run its "
		         "children as another user (this one runs as uid %u)",
		         cfg->user, (unsigned)geteuid());
		return -1;
	}
	u->active = true;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	snprintf(u->name, sizeof(u->name), "%s", cfg->user);
	return 0;
}

/* Hand a file the children write to the user (data_dir, the log file). */
void master_user_give(const master_user_t *u, const char *path)
{
	if (!u->active || !path || !path[0])
		return;
	if (chown(path, u->uid, u->gid) < 0)
		log_warn("cannot hand %s to user %s: %s", path, u->name, strerror(errno));
}

/* In a new child, before anything else runs.  Returns 0 or -1 (the child
 * must then exit: it would run with more than it should). */
int master_user_drop(const master_user_t *u)
{
	if (u->active) {
		if (setgroups(0, NULL) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
		    setresuid(u->uid, u->uid, u->uid) < 0) {
			log_error("cannot switch to user %s (uid %u, gid %u): %s", u->name,
			          (unsigned)u->uid, (unsigned)u->gid, strerror(errno));
			return -1;
		}
		if (setuid(0) == 0) {
			log_error("switched to user %s but could become root again", u->name);
			return -1;
		}
		/* The uid change made it undumpable; core dumps are the
		 * operator's choice (RLIMIT_CORE). */
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_error("cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	return 0;
}
