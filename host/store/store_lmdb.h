/* The LMDB backend of the store interface (store/store.h): jobs, their bytes, the
 * ready queue and the claims in one LMDB environment, the only module that includes
 * lmdb.h. What only this backend has is declared here. */
#ifndef TH_STORE_H
#define TH_STORE_H

#include <stdint.h>

#include "store/store.h"

/* The backend's operations table (its scheme: lmdb). */
extern const th_store_ops th_store_lmdb;

/* Of an LMDB store. Tests inject failures here: called before every commit with what the transaction
 * does; a non-zero TH_E* return aborts the transaction and is returned instead. */
typedef int (*th_store_commit_hook)(void *ud, const char *what);
void th_store_set_commit_hook(th_store *st, th_store_commit_hook fn, void *ud);

/* Of an LMDB store: size of the map now, and how much of it is in use, in bytes. */
int th_store_usage(th_store *st, uint64_t *map_size, uint64_t *used);

#endif
