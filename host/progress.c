/* The shared progress table: open addressing over a mapped file, slots claimed with a
 * compare-and-swap so hosts in several processes can write it without a lock. */
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

#define SLOTS 4096
#define PROBES 16

struct slot {
	_Atomic uint64_t id;
	_Atomic uint32_t permille;
	uint32_t unused;
};

struct th_progress_map {
	struct slot *slots;
};

int th_progress_open(th_progress_map **out, const char *dir)
{
	*out = NULL;
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/progress", dir) >= (int)sizeof(path))
		return TH_EINVAL;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		th_log_error("store", "cannot open %s: %s", path, strerror(errno));
		return TH_ESYS;
	}
	size_t size = SLOTS * sizeof(struct slot);
	struct stat sb;
	if (fstat(fd, &sb) || ((size_t)sb.st_size < size && ftruncate(fd, (off_t)size))) {
		th_log_error("store", "cannot size %s: %s", path, strerror(errno));
		close(fd);
		return TH_ESYS;
	}
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return TH_ESYS;
	th_progress_map *p = malloc(sizeof(*p));
	if (!p) {
		munmap(m, size);
		return TH_ENOMEM;
	}
	p->slots = m;
	*out = p;
	return 0;
}

void th_progress_close(th_progress_map *p)
{
	if (!p)
		return;
	munmap(p->slots, SLOTS * sizeof(struct slot));
	free(p);
}

static size_t home(uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 52) % SLOTS;
}

static struct slot *find(th_progress_map *p, uint64_t id)
{
	for (size_t i = 0, s = home(id); i < PROBES; i++, s = (s + 1) % SLOTS)
		if (atomic_load(&p->slots[s].id) == id)
			return &p->slots[s];
	return NULL;
}

void th_progress_set(th_progress_map *p, uint64_t job_id, double done)
{
	if (!p || !job_id)
		return;
	uint32_t pm = (uint32_t)(done * 1000.0 + 0.5);
	struct slot *sl = find(p, job_id);
	for (size_t i = 0, s = home(job_id); !sl && i < PROBES; i++, s = (s + 1) % SLOTS) {
		uint64_t empty = 0;
		if (atomic_compare_exchange_strong(&p->slots[s].id, &empty, job_id))
			sl = &p->slots[s];
	}
	if (!sl) /* all taken, perhaps by jobs of a host that died: take the home slot */
		atomic_store(&(sl = &p->slots[home(job_id)])->id, job_id);
	atomic_store(&sl->permille, pm);
}

void th_progress_clear(th_progress_map *p, uint64_t job_id)
{
	struct slot *sl = p && job_id ? find(p, job_id) : NULL;
	if (sl) {
		uint64_t id = job_id;
		atomic_compare_exchange_strong(&sl->id, &id, 0);
	}
}

bool th_progress_get(th_progress_map *p, uint64_t job_id, double *done)
{
	struct slot *sl = p && job_id ? find(p, job_id) : NULL;
	if (!sl)
		return false;
	*done = atomic_load(&sl->permille) / 1000.0;
	return atomic_load(&sl->id) == job_id;
}
