/* taskhost error codes: every library function returns 0 or one of these. */
#ifndef TH_ERROR_H
#define TH_ERROR_H

enum {
	TH_EINVAL = -1,       /* bad argument or input */
	TH_ENOMEM = -2,       /* out of memory */
	TH_ENOTFOUND = -3,    /* no job with that id */
	TH_EUNKNOWNTASK = -4, /* no loaded plugin provides that task */
	TH_ESTATE = -5,       /* the job is not in a state that allows this */
	TH_EFULL = -6,        /* database full */
	TH_EIO = -7,          /* the store could not read or write */
	TH_ETOOBIG = -8,      /* input or result larger than allowed */
	TH_EFORMAT = -9,      /* data dir or record written by another format version */
	TH_EPLUGIN = -10,     /* a plugin could not be loaded */
	TH_ECONFIG = -11,     /* bad configuration */
	TH_EBUSY = -12,       /* already running, or in use */
	TH_ENOJOB = -13,      /* nothing to claim */
	TH_ETIMEDOUT = -14,   /* waited long enough */
	TH_ESYS = -15,        /* an operating system call failed (see errno) */
	TH_EDAMAGED = -16,    /* the data dir's files are damaged (truncated, bad pages) */
	TH_EINSECURE = -17,   /* a file or directory others could have planted or changed */
	TH_ENOSPC = -18,      /* no space left on the device */
	TH_ELOCKLOST = -19    /* lock.mdb or data.mdb was removed or replaced under us */
};

/* A short, stable description of a TH_E* code ("unknown job id", ...). */
const char *th_strerror(int err);

#endif
