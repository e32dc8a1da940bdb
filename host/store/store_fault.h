/* Fault injection for tests, the way SQLite's test VFS does it: a store that wraps
 * another and fails the operations a callback chooses, before they reach the store
 * underneath (which then has changed nothing). */
#ifndef TH_STORE_FAULT_H
#define TH_STORE_FAULT_H

#include "store/store.h"

/* Called before each operation with its name ("add", "cycle", "get", ... as in
 * th_store_ops); a non-zero TH_E* fails the operation with it. */
typedef int (*th_store_fault_fn)(void *ud, const char *op);

/* A store that forwards to inner (which it owns from now on: closing it closes inner)
 * unless fn fails the operation. */
int th_store_fault_open(th_store **out, th_store *inner, th_store_fault_fn fn, void *ud);

#endif
