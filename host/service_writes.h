/* What the group committer asks of a service beyond the public API (not in
 * libtaskhost's headers): writes of several kinds made together, in order. */
#ifndef TH_SERVICE_WRITES_H
#define TH_SERVICE_WRITES_H

#include "service.h"
#include "store/store.h"

/* A write as the store takes it (s), but an add's jobs as the service takes them: the
 * service checks them and fills s.jobs. s.queue of a queue pause names it as the API
 * does ("default" too). s.rc gets what the write's own th_service_* call would give. */
typedef struct th_write {
	th_store_write s;
	const th_new_job *jobs;
} th_write;

/* The writes in arrival order, in one store transaction where the store can
 * (th_store_writes); *commits gets the transactions made. */
void th_service_writes(th_service *svc, th_write *w, size_t n, uint64_t *commits);

#endif
