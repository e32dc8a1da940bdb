/* The guard around LMDB's lock file. LMDB keeps its writer mutex and reader table in
 * lock.mdb, so a process that opens the data dir after lock.mdb was removed makes a
 * fresh one and two writers run at once. Every process holds a shared flock on
 * data.mdb while it has the store open, so an opener can tell that others are there:
 * lock.mdb missing then means it was removed under them, and the open is refused.
 * A process notices at its next write that the lock.mdb on disk is not the one it
 * opened, and refuses to write. And every write transaction also holds an exclusive
 * flock on the data dir itself, which no file removal can take away: even two lock
 * files never give two writers at once. */
#ifndef TH_ENVLOCK_H
#define TH_ENVLOCK_H

#include <stdbool.h>

typedef struct th_envlock th_envlock;

/* Before mdb_env_open: checks the data dir (see datadir.h; group is data_dir_group),
 * data.mdb and lock.mdb (created here if missing, with lock.mdb's space reserved for
 * max_readers), and refuses (TH_ELOCKLOST) a lock.mdb removed while others have the
 * data dir open. Other processes' opens wait until th_envlock_opened. */
int th_envlock_open(th_envlock **out, const char *dir, const char *group,
		    unsigned max_readers);
/* After mdb_env_open: data_fd is LMDB's (mdb_env_get_fd). Checks that LMDB opened the
 * files checked, data.mdb by that descriptor, lock.mdb (whose descriptor LMDB keeps to
 * itself) by its path (TH_EINSECURE if one was swapped meanwhile), then lets others
 * open. */
int th_envlock_opened(th_envlock *l, int data_fd);
void th_envlock_close(th_envlock *l);

/* Around every write transaction, from before it begins to after it ends. */
int th_envlock_write_begin(th_envlock *l);
void th_envlock_write_end(th_envlock *l);
/* Just before the commit: TH_ELOCKLOST (logged once) when lock.mdb is no longer the
 * file this process opened; from then on every write is refused. */
int th_envlock_write_check(th_envlock *l);

#endif
