/* LMDB's lock file, guarded: opened only when it is the one every process uses, checked
 * before each commit, and writers serialized on the data dir as well (see envlock.h). */
#include "store/store_envlock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datadir.h"
#include "error.h"
#include "log.h"

#define LOCK_NAME "lock.mdb"
#define DATA_NAME "data.mdb"
/* LMDB's lock file: a 128-byte header and a 64-byte slot per reader after the first
 * (mdb.c, MDB_txninfo); LMDB takes a larger file as room for more readers */
#define LOCK_SLOT 64
#define LOCK_HEADER 128
#define PAGE 4096

struct th_envlock {
	int dir_fd;  /* flock'd exclusively by the write transaction in progress */
	int data_fd; /* flock'd shared while open (exclusively while opening alone) */
	bool alone;
	struct stat lock_sb, data_sb; /* the files as they were checked */
	atomic_bool lost;
	/* flock belongs to the open file, not to a thread: one writer thread at a time */
	pthread_mutex_t mu;
	char dir[];
};

static int flock_retry(int fd, int op)
{
	int rc;
	while ((rc = flock(fd, op)) && errno == EINTR)
		;
	return rc;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* what every lost-lock message ends with: the one way out */
#define RESTART "; stop every process that uses %s (hosts and commands) and start them again"

/* lock.mdb, when no other process has the data dir open: created if missing, its space
 * reserved (LMDB maps it and writes into it, which on a full disk would be a SIGBUS) */
static int make_lock_file(th_envlock *l, unsigned max_readers)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/" LOCK_NAME, l->dir);
	int fd, rc = th_datadir_open(l->dir, LOCK_NAME, O_RDWR | O_CREAT, &fd);
	if (rc)
		return rc;
	off_t want = ((off_t)LOCK_HEADER + (off_t)max_readers * LOCK_SLOT + PAGE - 1) / PAGE * PAGE;
	if (fstat(fd, &l->lock_sb) == 0 && l->lock_sb.st_size > want)
		want = l->lock_sb.st_size;
	rc = th_datadir_reserve(fd, path, want);
	if (rc == 0)
		fstat(fd, &l->lock_sb);
	/* closing drops this process's fcntl locks on the file: harmless only because no
	 * environment of this process has it open yet (we are alone) */
	close(fd);
	return rc;
}

int th_envlock_open(th_envlock **out, const char *dir, const char *group,
		    unsigned max_readers)
{
	*out = NULL;
	int rc = th_datadir_check(dir, group);
	if (rc)
		return rc;
	size_t n = strlen(dir);
	th_envlock *l = calloc(1, sizeof(*l) + n + 1);
	if (!l)
		return TH_ENOMEM;
	memcpy(l->dir, dir, n + 1);
	l->data_fd = -1;
	pthread_mutex_init(&l->mu, NULL);
	if ((l->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		th_log_error("store", "cannot open %s: %s", dir, strerror(errno));
		rc = TH_ESYS;
		goto fail;
	}
	if ((rc = th_datadir_open(dir, DATA_NAME, O_RDWR | O_CREAT, &l->data_fd)))
		goto fail;
	fstat(l->data_fd, &l->data_sb);
	l->alone = flock_retry(l->data_fd, LOCK_EX | LOCK_NB) == 0;
	if (!l->alone && flock_retry(l->data_fd, LOCK_SH)) {
		th_log_error("store", "cannot lock %s/" DATA_NAME ": %s", dir, strerror(errno));
		rc = TH_ESYS;
		goto fail;
	}
	if (l->alone) {
		rc = make_lock_file(l, max_readers);
	} else {
		/* others have it open: lock.mdb must be there, and is theirs, so it is only
		 * looked at (an open and close here would drop our environments' locks) */
		rc = th_datadir_stat(dir, LOCK_NAME, &l->lock_sb);
		if (rc == TH_ENOTFOUND) {
			th_log_error("store", "%s/" LOCK_NAME " is missing while other processes "
				     "have the data dir open (it was removed under them): refused, as "
				     "this process would make a lock file of its own and write at the "
				     "same time as them" RESTART, dir, dir);
			rc = TH_ELOCKLOST;
		}
	}
	if (rc)
		goto fail;
	*out = l;
	return 0;
fail:
	th_envlock_close(l);
	return rc;
}

int th_envlock_opened(th_envlock *l, int data_fd)
{
	struct stat sb;
	if (fstat(data_fd, &sb) || !same_file(&sb, &l->data_sb)) {
		th_log_error("store", "%s/" DATA_NAME " was replaced while it was being opened: "
			     "refused", l->dir);
		return TH_EINSECURE;
	}
	if (fstatat(l->dir_fd, LOCK_NAME, &sb, AT_SYMLINK_NOFOLLOW) || !same_file(&sb, &l->lock_sb)) {
		th_log_error("store", "%s/" LOCK_NAME " was replaced while it was being opened: "
			     "refused", l->dir);
		return TH_EINSECURE;
	}
	if (l->alone && flock_retry(l->data_fd, LOCK_SH)) {
		th_log_error("store", "cannot lock %s/" DATA_NAME ": %s", l->dir, strerror(errno));
		return TH_ESYS;
	}
	l->alone = false;
	return 0;
}

void th_envlock_close(th_envlock *l)
{
	if (!l)
		return;
	if (l->data_fd >= 0)
		close(l->data_fd);
	if (l->dir_fd >= 0)
		close(l->dir_fd);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

int th_envlock_write_begin(th_envlock *l)
{
	pthread_mutex_lock(&l->mu);
	if (flock_retry(l->dir_fd, LOCK_EX) == 0)
		return 0;
	th_log_error("store", "cannot lock %s: %s", l->dir, strerror(errno));
	pthread_mutex_unlock(&l->mu);
	return TH_ESYS;
}

void th_envlock_write_end(th_envlock *l)
{
	flock_retry(l->dir_fd, LOCK_UN);
	pthread_mutex_unlock(&l->mu);
}

/* Whether the file `name` in the data dir is still the one opened (sb). The files we
 * opened stay allocated while we hold them, so their inode numbers cannot be handed to
 * new files meanwhile. */
static bool still_there(th_envlock *l, const char *name, const struct stat *opened)
{
	struct stat sb;
	return fstatat(l->dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && same_file(&sb, opened);
}

int th_envlock_write_check(th_envlock *l)
{
	if (atomic_load(&l->lost))
		return TH_ELOCKLOST;
	if (!still_there(l, LOCK_NAME, &l->lock_sb)) {
		if (!atomic_exchange(&l->lost, true))
			th_log_error("store", "%s/" LOCK_NAME " was removed or replaced while this "
				     "process had the data dir open: writes refused, as another "
				     "process could write at the same time with a lock file of its "
				     "own" RESTART, l->dir, l->dir);
		return TH_ELOCKLOST;
	}
	if (!still_there(l, DATA_NAME, &l->data_sb)) {
		if (!atomic_exchange(&l->lost, true))
			th_log_error("store", "%s/" DATA_NAME " was removed or replaced while this "
				     "process had it open: writes refused, as no other process would "
				     "see what they commit" RESTART, l->dir, l->dir);
		return TH_ELOCKLOST;
	}
	return 0;
}
