/* Wake-ups shared by all processes on one data directory.
 * A futex on a shared mapping reaches sleepers in other processes without polling. */
#include "local/local_wake.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "datadir.h"
#include "error.h"

#define WAKE_FILE_SIZE 4096

/* each sequence on its own cache line */
#define SLOT(w, ev) ((w)->seq + (ev) * 16)

struct th_wake {
	_Atomic uint32_t *seq;
};

int th_wake_open(th_wake **out, const char *dir)
{
	*out = NULL;
	th_wake *w = malloc(sizeof(*w));
	if (!w)
		return TH_ENOMEM;
	void *p;
	int rc = th_datadir_map(dir, "wake", WAKE_FILE_SIZE, 0, &p);
	if (rc) {
		free(w);
		return rc;
	}
	w->seq = p;
	*out = w;
	return 0;
}

void th_wake_close(th_wake *w)
{
	if (!w)
		return;
	munmap((void *)w->seq, WAKE_FILE_SIZE);
	free(w);
}

uint32_t th_wake_seq(th_wake *w, enum th_wake_event ev)
{
	return atomic_load_explicit(SLOT(w, ev), memory_order_acquire);
}

void th_wake_notify(th_wake *w, enum th_wake_event ev)
{
	atomic_fetch_add_explicit(SLOT(w, ev), 1, memory_order_acq_rel);
	syscall(SYS_futex, (uint32_t *)SLOT(w, ev), FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void th_wake_wait(th_wake *w, enum th_wake_event ev, uint32_t seq, int64_t timeout_us)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_us >= 0) {
		ts.tv_sec = (time_t)(timeout_us / 1000000);
		ts.tv_nsec = (long)(timeout_us % 1000000) * 1000;
		tsp = &ts;
	}
	syscall(SYS_futex, (uint32_t *)SLOT(w, ev), FUTEX_WAIT, seq, tsp, NULL, 0);
}
