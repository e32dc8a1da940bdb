/* What tests reach inside a service, apart from the public API (not in libtaskhost's
 * headers): its store, to inject faults. */
#ifndef TH_SERVICE_TEST_H
#define TH_SERVICE_TEST_H

#include "service.h"
#include "store/store.h"
#include "store/store_fault.h"

/* The service's store (for the LMDB backend's commit hook, th_store_set_commit_hook). */
th_store *th_testing_store(th_service *svc);
/* From now on the service's store fails the operations fn chooses (store_fault.h).
 * Only while not processing: processors started earlier keep the store they had. */
int th_testing_fault(th_service *svc, th_store_fault_fn fn, void *ud);

#endif
