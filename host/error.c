/* Error code descriptions.
 * Kept in one table so the CLI, the log and embedders print the same words. */
#include "error.h"

const char *th_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case TH_EINVAL: return "invalid argument";
	case TH_ENOMEM: return "out of memory";
	case TH_ENOTFOUND: return "unknown job id";
	case TH_EUNKNOWNTASK: return "unknown task";
	case TH_ESTATE: return "job is not in a state that allows this";
	case TH_EFULL: return "database full";
	case TH_EIO: return "store I/O error";
	case TH_ETOOBIG: return "too large";
	case TH_EFORMAT: return "unsupported data format version";
	case TH_EPLUGIN: return "plugin could not be loaded";
	case TH_ECONFIG: return "bad configuration";
	case TH_EBUSY: return "busy";
	case TH_ENOJOB: return "no job waiting";
	case TH_ETIMEDOUT: return "timed out";
	case TH_ESYS: return "system call failed";
	case TH_EDAMAGED: return "data dir damaged";
	case TH_EINSECURE: return "refused as insecure";
	case TH_ENOSPC: return "no space left on device";
	case TH_ELOCKLOST: return "data dir file (lock.mdb or data.mdb) removed or replaced";
	}
	return "unknown error";
}
