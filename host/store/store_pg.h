/* The PostgreSQL backend of the store interface (store/store.h): jobs as rows of schema
 * `taskhost`, claimed with FOR UPDATE SKIP LOCKED, leases on the database's clock; and
 * its coordination (store_pg_coord.c): LISTEN/NOTIFY wake-ups, a progress table,
 * liveness by lease alone. Only their .c files include libpq-fe.h. */
#ifndef TH_STORE_PG_H
#define TH_STORE_PG_H

#include "coord.h"
#include "store/store.h"

/* The backend's operations table (its scheme: postgresql). */
extern const th_store_ops th_store_pg;

/* A connection to conninfo; a failure is logged naming `shown` (the conninfo with its
 * password as ***): TH_ECONFIG for a string that does not parse, TH_EIO when the
 * server cannot be reached or refuses. Its connect timeout, TCP keepalives and
 * tcp_user_timeout are derived from lease_us unless conninfo sets them: a silent
 * connection is noticed within the lease (0: within 20 s). A caller that tries again
 * and again passes `down` (false at first): a failure is logged only while it is false
 * and sets it, and the first success after logs that it is connected again; NULL:
 * every failure is logged. */
struct pg_conn; /* libpq's PGconn */
int th_store_pg_connect(const char *conninfo, const char *shown, int64_t lease_us,
			bool *down, struct pg_conn **out);

/* sql on conn (n text parameters vals; none: a simple query), its answer waited for as
 * the store's statements' are: past a third of lease_us (1 s to 10 s) the server is
 * pinged on a new connection (conninfo), and when that gets no answer either, conn is
 * cut (*cut set) and the result is an error, as for any lost connection. */
struct pg_result; /* libpq's PGresult */
struct pg_result *th_store_pg_exec(struct pg_conn *conn, const char *conninfo, int64_t lease_us,
				   const char *sql, int n, const char *const *vals, bool *cut);

/* libpq's error message of r (or, when r has none, of conn) in buf as one line: its
 * lines joined by a space, the trailing newline dropped; returns buf. */
#define TH_STORE_PG_MSG_MAX 512
struct pg_result; /* libpq's PGresult */
const char *th_store_pg_message(const struct pg_conn *conn, const struct pg_result *r,
				char buf[TH_STORE_PG_MSG_MAX]);

/* Of a PostgreSQL store: its connection string, its password as ***. */
const char *th_store_pg_shown(th_store *st);
/* The schema version this build writes; *found: the one the store had when opened. */
int th_store_pg_version(th_store *st, int *found);

/* Of a PostgreSQL store: whether its connection worked at its last use, and how many
 * times it was made again after it was lost (for /metrics; safe from any thread). */
void th_store_pg_connection(th_store *st, bool *connected, uint64_t *reconnects);

/* The coordination of the hosts on one database (store_pg_coord.c). */
int th_coord_open_pg(th_coord **out, const char *conninfo, const char *shown,
		     int64_t lease_us);

#endif
