/*
 * signals.c - the master's signal handlers (nginx's master cycle).
 *
 * Handlers only record which signal arrived; master.c acts on the flags in
 * its loop.  The signals stay blocked except while the master sleeps in
 * ppoll() with the wait mask, so a flag can never be set between the loop's
 * check and its sleep (the sigsuspend pattern, with file descriptors).
 */
#include "master.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static volatile sig_atomic_t sig_pending;

static const struct {
	int sig;
	unsigned flag;
} sig_table[] = {
    {SIGCHLD, MASTER_SIG_CHLD}, {SIGHUP, MASTER_SIG_HUP},   {SIGTERM, MASTER_SIG_TERM},
    {SIGINT, MASTER_SIG_TERM},  {SIGQUIT, MASTER_SIG_QUIT}, {SIGUSR1, MASTER_SIG_USR1},
};

#define NSIGS (sizeof(sig_table) / sizeof(sig_table[0]))

static void on_signal(int sig)
{
	for (size_t i = 0; i < NSIGS; i++)
		if (sig_table[i].sig == sig)
			sig_pending |= (sig_atomic_t)sig_table[i].flag;
}

int master_signals_install(sigset_t *wait_mask)
{
	sigset_t block;
	struct sigaction sa;
	sigemptyset(&block);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask); /* handlers never interrupt each other */
	for (size_t i = 0; i < NSIGS; i++) {
		sigaddset(&block, sig_table[i].sig);
		if (sigaction(sig_table[i].sig, &sa, NULL) < 0)
			return -errno;
	}
	sa.sa_handler = SIG_IGN; /* a dead child's control channel */
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		return -errno;
	if (sigprocmask(SIG_BLOCK, &block, wait_mask) < 0)
		return -errno;
	for (size_t i = 0; i < NSIGS; i++)
		sigdelset(wait_mask, sig_table[i].sig);
	return 0;
}

unsigned master_signals_take(void)
{
	/* Called with the signals blocked: no handler runs in between. */
	unsigned f = (unsigned)sig_pending;
	sig_pending = 0;
	return f;
}

void master_signals_reset(void)
{
	struct sigaction sa;
	sigset_t none;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NSIGS; i++)
		sigaction(sig_table[i].sig, &sa, NULL);
	sig_pending = 0;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}
