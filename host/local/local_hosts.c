/* Host records as files in the data dir (local_hosts.h): written to `host-X.tmp`, then
 * renamed over `host-X`; read, never mapped. */
#include "local/local_hosts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datadir.h"
#include "error.h"
#include "log.h"

#define HOST_MAGIC 0x54534854u /* "THST" */
#define HOST_VERSION 1
#define HOST_PREFIX "host-"

struct file {
	uint32_t magic, version;
	th_host_rec rec;
};

static void name_of(char *name, size_t len, const th_owner *o, const char *suffix)
{
	snprintf(name, len, HOST_PREFIX "%016llx%s", (unsigned long long)o->instance, suffix);
}

/* one writer of a `.tmp` at a time: the start's heartbeat and the keeper's may meet */
static pthread_mutex_t put_mu = PTHREAD_MUTEX_INITIALIZER;

int th_local_host_put(const char *dir, const th_host_rec *h)
{
	char tmp[64], name[64], from[4096], to[4096];
	name_of(tmp, sizeof(tmp), &h->owner, ".tmp");
	name_of(name, sizeof(name), &h->owner, "");
	snprintf(from, sizeof(from), "%s/%s", dir, tmp);
	snprintf(to, sizeof(to), "%s/%s", dir, name);
	struct file f = {.magic = HOST_MAGIC, .version = HOST_VERSION, .rec = *h};
	pthread_mutex_lock(&put_mu);
	int fd, rc = th_datadir_open(dir, tmp, O_RDWR | O_CREAT, &fd);
	if (rc == 0) {
		bool ok = ftruncate(fd, 0) == 0 &&
			  pwrite(fd, &f, sizeof(f), 0) == (ssize_t)sizeof(f);
		close(fd);
		if (!ok || rename(from, to)) {
			th_log_error("processor", "%s: this host's record was not written: %s", to,
				     strerror(errno));
			unlink(from);
			rc = TH_ESYS;
		}
	}
	pthread_mutex_unlock(&put_mu);
	return rc;
}

int th_local_host_remove(const char *dir, const th_owner *o)
{
	char name[64], path[4096];
	name_of(name, sizeof(name), o, ".tmp"); /* left by a host killed while writing */
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	name_of(name, sizeof(name), o, "");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return unlink(path) == 0 || errno == ENOENT ? 0 : TH_ESYS;
}

/* One record file into *rec; false when it is none (a refused one is logged once). */
static bool read_one(const char *dir, int dfd, const char *name, th_host_rec *rec)
{
	int fd, rc;
	if (th_datadir_refused(dfd, name, false))
		return false;
	if ((rc = th_datadir_open(dir, name, O_RDONLY, &fd))) {
		if (rc == TH_EINSECURE)
			th_datadir_refused(dfd, name, true);
		return false;
	}
	struct file f;
	bool ok = pread(fd, &f, sizeof(f), 0) == (ssize_t)sizeof(f) && f.magic == HOST_MAGIC &&
		  f.version == HOST_VERSION;
	close(fd);
	if (ok) {
		*rec = f.rec;
		rec->info.name[TH_HOST_NAME_MAX] = 0;
		rec->info.strategy[TH_HOST_STRATEGY_MAX] = 0;
		rec->info.gone = false;
	}
	return ok;
}

int th_local_host_list(const char *dir, th_host_rec **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return TH_ESYS;
	size_t cap = 0;
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (strncmp(e->d_name, HOST_PREFIX, strlen(HOST_PREFIX)) != 0 ||
		    (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0))
			continue;
		if (*n == cap) {
			th_host_rec *m = realloc(*out, (cap = cap ? 2 * cap : 8) * sizeof(**out));
			if (!m) {
				rc = TH_ENOMEM;
				break;
			}
			*out = m;
		}
		if (read_one(dir, dirfd(d), e->d_name, &(*out)[*n]))
			(*n)++;
	}
	closedir(d);
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}
