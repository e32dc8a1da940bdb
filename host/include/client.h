/* The client side of the host's HTTP API, for embedders: the calls of the service API
 * (add, add many, get, cancel, list, wait) made on a running host through its unix
 * socket or a URL. Part of the public API (libtaskhost). */
#ifndef TH_CLIENT_H
#define TH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "job.h"
#include "service.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct th_client th_client;

/* target: the host's socket ("var/api.sock": a path) or its URL ("http://host:7070",
 * "https://host:7070"); token: the bearer token for a URL (NULL on the socket).
 * Nothing is sent yet: a host that is not there shows in the first call (TH_EIO). */
int th_client_open(th_client **out, const char *target, const char *token);
void th_client_close(th_client *c);
/* The human line of the last failed call: the host's error message, or why it could not
 * be reached. */
const char *th_client_error(const th_client *c);

/* The same as th_service_add_ex and th_service_add_many, and the same TH_E* codes for
 * the same refusals (TH_EIO when the host could not be reached or answered nonsense,
 * TH_EINSECURE for a token the host refused). The add is acknowledged once the host
 * committed it. */
int th_client_add(th_client *c, const char *task, const void *input, size_t len,
		  const th_add_opts *opts, uint64_t *id, bool *existed);
int th_client_add_many(th_client *c, const th_new_job *jobs, size_t n, uint64_t *ids);
int th_client_get(th_client *c, uint64_t id, th_job *out);
/* 0, or TH_EBUSY when the job runs and was asked to stop. */
int th_client_cancel(th_client *c, uint64_t id);
/* Jobs whose status is in mask (TH_MASK_ALL: all), oldest first, after `from`. */
int th_client_list(th_client *c, unsigned mask, uint64_t from, th_job_fn fn, void *ud);
/* Waits until every job of ids finished, or timeout seconds: TH_ETIMEDOUT then. */
int th_client_wait(th_client *c, const uint64_t *ids, size_t n, double timeout);

#ifdef __cplusplus
}
#endif

#endif
