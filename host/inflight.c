/* Claims in flight, in a file per processor that a crash leaves behind (see inflight.h).
 * The file is written through a shared mapping: what the host stored is in the page
 * cache the moment it is stored, killed or not. */
#include "inflight.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

#define INFLIGHT_MAGIC 0x46494854u /* "THIF" */
#define INFLIGHT_VERSION 1
#define INFLIGHT_PREFIX "inflight-"

struct header {
	_Atomic uint32_t magic; /* stored last: a reader that sees it sees the rest */
	uint32_t version;
	th_owner owner;
	uint32_t cap;
	_Atomic uint32_t count; /* pairs valid: stored after them */
	uint64_t pairs[];       /* id, gen */
};

struct th_inflight {
	struct header *h;
	size_t size;
	uint32_t n; /* pairs written since the last clear */
	char path[];
};

static size_t file_size(size_t cap)
{
	return sizeof(struct header) + cap * 2 * sizeof(uint64_t);
}

int th_inflight_open(th_inflight **out, const char *dir, const th_owner *owner, size_t cap)
{
	static atomic_uint counter;
	*out = NULL;
	char path[4096];
	int len = snprintf(path, sizeof(path), "%s/" INFLIGHT_PREFIX "%016llx-%u", dir,
			   (unsigned long long)owner->instance, atomic_fetch_add(&counter, 1));
	if (len < 0 || (size_t)len >= sizeof(path) || cap == 0 || cap > UINT32_MAX)
		return TH_EINVAL;
	th_inflight *f = calloc(1, sizeof(*f) + (size_t)len + 1);
	if (!f)
		return TH_ENOMEM;
	memcpy(f->path, path, (size_t)len + 1);
	f->size = file_size(cap);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)f->size)) {
		th_log_error("processor", "cannot create %s: %s", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		free(f);
		return TH_ESYS;
	}
	void *p = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		unlink(path);
		free(f);
		return TH_ESYS;
	}
	f->h = p;
	f->h->owner = *owner;
	f->h->cap = (uint32_t)cap;
	f->h->version = INFLIGHT_VERSION;
	atomic_store_explicit(&f->h->magic, INFLIGHT_MAGIC, memory_order_release);
	*out = f;
	return 0;
}

void th_inflight_close(th_inflight *f, bool keep)
{
	if (!f)
		return;
	munmap(f->h, f->size);
	if (!keep)
		unlink(f->path);
	free(f);
}

void th_inflight_add(th_inflight *f, uint64_t id, uint64_t gen)
{
	if (f->n == f->h->cap)
		return; /* more than the processor said it would start at once */
	f->h->pairs[2 * f->n] = id;
	f->h->pairs[2 * f->n + 1] = gen;
	f->n++;
	/* the pairs before the count: a job starts only after this */
	atomic_store_explicit(&f->h->count, f->n, memory_order_release);
}

size_t th_inflight_pairs(const th_inflight *f, const uint64_t **pairs)
{
	*pairs = f->h->pairs;
	return f->n;
}

void th_inflight_clear(th_inflight *f)
{
	f->n = 0;
	atomic_store_explicit(&f->h->count, 0, memory_order_release);
}

/* One file: the pairs of a dead owner go to fn; 1 when the file can go. */
static int collect_one(const char *path, const th_owner *self, th_inflight_fn fn, void *ud)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* removed meanwhile */
	struct stat sb;
	int gone = 0;
	if (fstat(fd, &sb) || (size_t)sb.st_size < sizeof(struct header)) {
		close(fd);
		return 0; /* being created, or not ours */
	}
	void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return 0;
	const struct header *h = p;
	if (atomic_load_explicit(&h->magic, memory_order_acquire) != INFLIGHT_MAGIC) {
		/* being created, or its host died while it did: a creation takes microseconds */
		gone = time(NULL) - sb.st_mtime > 60;
		goto out;
	}
	if (h->version != INFLIGHT_VERSION ||
	    h->owner.instance == self->instance || th_owner_alive(&h->owner) != TH_OWNER_DEAD)
		goto out;
	uint32_t n = atomic_load_explicit(&h->count, memory_order_acquire);
	if (n > h->cap || file_size(h->cap) > (size_t)sb.st_size) {
		th_log_warn("processor", "%s: damaged; removed", path);
		gone = 1;
		goto out;
	}
	gone = n == 0 || fn(ud, h->pairs, n) == 0;
out:
	munmap(p, (size_t)sb.st_size);
	return gone;
}

int th_inflight_collect(const char *dir, const th_owner *self, th_inflight_fn fn, void *ud)
{
	DIR *d = opendir(dir);
	if (!d)
		return TH_ESYS;
	struct dirent *e;
	char path[4096];
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, INFLIGHT_PREFIX, strlen(INFLIGHT_PREFIX)) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		if (collect_one(path, self, fn, ud))
			unlink(path);
	}
	closedir(d);
	return 0;
}
