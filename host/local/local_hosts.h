/* The hosts' records of one data dir: a file `host-INSTANCE` per host, replaced whole
 * by a rename at every heartbeat, so a reader sees the old record or the new one. */
#ifndef TH_LOCAL_HOSTS_H
#define TH_LOCAL_HOSTS_H

#include <stddef.h>

#include "coord.h"

int th_local_host_put(const char *dir, const th_host_rec *h);
int th_local_host_remove(const char *dir, const th_owner *o);
/* Every readable record; files that are no record (another version, cut short) are
 * skipped. */
int th_local_host_list(const char *dir, th_host_rec **out, size_t *n);

#endif
