/* Wake-ups shared by all processes on one data directory.
 * A futex on a shared mapping reaches sleepers in other processes without polling. */
#include "wake.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

#define WAKE_FILE_SIZE 4096

/* each sequence on its own cache line */
#define SLOT(w, ev) ((w)->seq + (ev) * 16)

struct th_wake {
	_Atomic uint32_t *seq;
};

int th_wake_open(th_wake **out, const char *dir)
{
	*out = NULL;
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/wake", dir) >= (int)sizeof(path))
		return TH_EINVAL;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		th_log_error("store", "cannot open %s: %s", path, strerror(errno));
		return TH_ESYS;
	}
	struct stat sb;
	if (fstat(fd, &sb) || (sb.st_size < WAKE_FILE_SIZE && ftruncate(fd, WAKE_FILE_SIZE))) {
		th_log_error("store", "cannot size %s: %s", path, strerror(errno));
		close(fd);
		return TH_ESYS;
	}
	void *p = mmap(NULL, WAKE_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return TH_ESYS;
	th_wake *w = malloc(sizeof(*w));
	if (!w) {
		munmap(p, WAKE_FILE_SIZE);
		return TH_ENOMEM;
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
