/* The schema of the PostgreSQL backend: the tables of schema `taskhost`, versioned in
 * taskhost.meta, created or upgraded by th_store_pg_schema_migrate. */
#ifndef TH_STORE_PG_SCHEMA_H
#define TH_STORE_PG_SCHEMA_H

#include <libpq-fe.h>
#include <stdbool.h>

/* The version this build writes. */
int th_store_pg_schema_version(void);

/* Brings the schema to this build's version when `allowed`, in one transaction under
 * an advisory lock (hosts starting together migrate once). TH_EFORMAT, logged with
 * `shown` (the store's URL, its password as ***), for a newer schema, or an older one
 * when not allowed. *from (may be NULL): the version found. */
int th_store_pg_schema_migrate(PGconn *conn, bool allowed, const char *shown, int *from);

#endif
