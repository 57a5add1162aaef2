/*
 * proc.c - what every child of the master does first (include/artemis/proc.h).
 *
 * Called in the child right after fork(), before worker_main()/reaper_main().
 * It must not touch the registry: it only ties the child's life to the
 * master's, undoes the master's signal setup and sets the process title.
 */
#include "artemis/proc.h"

#include <bsd/unistd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "artemis/log.h"
#include "master.h"

static pid_t proc_master_pid;
static size_t proc_argv0_len;

extern char **environ;

void proc_title_init(int argc, char **argv)
{
	proc_argv0_len = argc > 0 ? strlen(argv[0]) : 0;
	setproctitle_init(argc, argv, environ);
}

/* libbsd marks a title shorter than the original argv[0] with a '.' where
 * argv[0] ended (ps would show "artemis: master      ."); padding the
 * title with spaces to that length avoids it.  The leading '-' keeps libbsd
 * from prefixing the program name, so the title reads the same whatever the
 * binary is called. */
void proc_set_title(const char *title)
{
	int width = proc_argv0_len < 512 ? (int)proc_argv0_len : 512;
	setproctitle("-%-*s", width, title);
}

void proc_set_master(pid_t pid)
{
	proc_master_pid = pid;
}

/* "artemis: worker 1" logs as "worker". */
static void set_log_role(const char *title)
{
	const char *p = strncmp(title, "artemis: ", 9) == 0 ? title + 9 : title;
	char role[32];
	snprintf(role, sizeof(role), "%.*s", (int)strcspn(p, " "), p);
	log_set_role(role);
}

void proc_child_tie(void)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* The master may have died between fork() and prctl(): then no
	 * PDEATHSIG will ever come, and we were reparented already. */
	if (proc_master_pid && getppid() != proc_master_pid)
		_exit(0);
}

void proc_child_setup(const char *title)
{
	proc_child_tie();
	master_signals_reset();
	set_log_role(title);
	proc_set_title(title);
}
