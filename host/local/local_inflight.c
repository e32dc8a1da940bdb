/* Claims in flight, in a file per processor that a crash leaves behind (see inflight.h).
 * The file is written through a shared mapping: what the host stored is in the page
 * cache the moment it is stored, killed or not. Its space is reserved before it is
 * mapped, and files left behind are read, never mapped. */
#include "local/local_inflight.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datadir.h"
#include "error.h"
#include "log.h"

#define INFLIGHT_MAGIC 0x46494854u /* "THIF" */
#define INFLIGHT_VERSION 1
#define INFLIGHT_PREFIX "inflight-"
#define INFLIGHT_CAP_MAX 65536 /* jobs one processor starts at once, at most */

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
	char name[64], path[4096];
	snprintf(name, sizeof(name), INFLIGHT_PREFIX "%016llx-%u",
		 (unsigned long long)owner->instance, atomic_fetch_add(&counter, 1));
	int len = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (len < 0 || (size_t)len >= sizeof(path) || cap == 0 || cap > INFLIGHT_CAP_MAX)
		return TH_EINVAL;
	th_inflight *f = calloc(1, sizeof(*f) + (size_t)len + 1);
	if (!f)
		return TH_ENOMEM;
	memcpy(f->path, path, (size_t)len + 1);
	f->size = file_size(cap);
	void *p;
	int rc = th_datadir_map(dir, name, f->size, O_EXCL, &p);
	if (rc) {
		free(f);
		return rc;
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

/* A file whose creation never finished (its host died meanwhile) once it is this old:
 * a creation takes microseconds */
#define STALE_S 60

/* One file: the pairs of a dead owner go to fn; 1 when the file can go. */
static int collect_one(const char *dir, int dfd, const char *name, const th_owner *self,
		       th_inflight_fn fn, void *ud)
{
	int fd, rc;
	if (th_datadir_refused(dfd, name, false))
		return 0;
	if ((rc = th_datadir_open(dir, name, O_RDONLY, &fd))) {
		if (rc == TH_EINSECURE)
			th_datadir_refused(dfd, name, true);
		return 0; /* removed meanwhile, or refused (logged): left as it is */
	}
	/* read, not mapped: a file left short or with holes by a host that died on a full
	 * disk then reads as zeros, where touching a hole of a mapping can be a SIGBUS */
	struct stat sb;
	if (fstat(fd, &sb)) {
		close(fd);
		return 0;
	}
	size_t size = (size_t)sb.st_size < file_size(INFLIGHT_CAP_MAX) ? (size_t)sb.st_size
								     : file_size(INFLIGHT_CAP_MAX);
	struct header *h = size >= sizeof(*h) ? malloc(size) : NULL;
	if (h && pread(fd, h, size, 0) != (ssize_t)size) {
		free(h);
		h = NULL;
	}
	close(fd);
	int gone = 0;
	if (!h || atomic_load_explicit(&h->magic, memory_order_acquire) != INFLIGHT_MAGIC) {
		/* being created, or its host died while it was */
		gone = time(NULL) - sb.st_mtime > STALE_S;
		goto out;
	}
	if (h->version != INFLIGHT_VERSION ||
	    h->owner.instance == self->instance || th_owner_alive(&h->owner) != TH_OWNER_DEAD)
		goto out;
	uint32_t n = atomic_load_explicit(&h->count, memory_order_acquire);
	if (n > h->cap || file_size(h->cap) > size) {
		th_log_warn("processor", "%s/%s: damaged; removed", dir, name);
		gone = 1;
		goto out;
	}
	gone = n == 0 || fn(ud, h->pairs, n) == 0;
out:
	free(h);
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
		if (collect_one(dir, dirfd(d), e->d_name, self, fn, ud))
			unlink(path);
	}
	closedir(d);
	return 0;
}
