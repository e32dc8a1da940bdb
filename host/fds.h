/* Descriptors: the standard ones of a process that opens a store, made safe before
 * anything else is opened (so that no file of the data dir can become stdin, stdout or
 * stderr), and writing a whole buffer to one. */
#ifndef TH_FDS_H
#define TH_FDS_H

/* Opens /dev/null on each of descriptors 0, 1 and 2 that is closed; *closed (may be
 * NULL) gets bit n set when descriptor n was. 0, or TH_ESYS when /dev/null cannot be
 * opened (the caller should exit: a descriptor it opens next could land on 0-2). */
int th_fds_guard(unsigned *closed);

#include <stddef.h>

/* Writes all n bytes, again after EINTR and short writes: 0, or TH_EIO. */
int th_write_all(int fd, const void *buf, size_t n);

#endif
