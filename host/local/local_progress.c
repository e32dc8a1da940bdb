/* The shared progress table: open addressing over a mapped file, slots claimed with a
 * compare-and-swap so hosts in several processes can write it without a lock. */
#include "local/local_progress.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "datadir.h"
#include "error.h"

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
	th_progress_map *p = malloc(sizeof(*p));
	if (!p)
		return TH_ENOMEM;
	void *m;
	int rc = th_datadir_map(dir, "progress", SLOTS * sizeof(struct slot), 0, &m);
	if (rc) {
		free(p);
		return rc;
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
