/* The data dir's files, opened safely: the dir's owner and mode checked, no link or FIFO
 * followed, and a shared file's space reserved before it is mapped (see datadir.h). */
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

#define NAME_BUF 300 /* "65534 (nobody)" and the like */

int th_datadir_group(const char *name, gid_t *gid)
{
	struct group gr, *found = NULL;
	char buf[4096];
	if (!name || !*name || getgrnam_r(name, &gr, buf, sizeof(buf), &found) || !found)
		return TH_EINVAL;
	*gid = found->gr_gid;
	return 0;
}

/* "uid 65534 (nobody)": the number, and the name where there is one */
static const char *user_name(uid_t uid, char *out)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found)
		snprintf(out, NAME_BUF, "uid %u (%.200s)", (unsigned)uid, found->pw_name);
	else
		snprintf(out, NAME_BUF, "uid %u", (unsigned)uid);
	return out;
}

static const char *group_name(gid_t gid, char *out)
{
	struct group gr, *found = NULL;
	char buf[4096];
	if (getgrgid_r(gid, &gr, buf, sizeof(buf), &found) == 0 && found)
		snprintf(out, NAME_BUF, "%.200s", found->gr_name);
	else
		snprintf(out, NAME_BUF, "%u", (unsigned)gid);
	return out;
}

static const char *kind(mode_t m)
{
	return S_ISLNK(m) ? "a symbolic link" : S_ISFIFO(m) ? "a FIFO" : S_ISDIR(m) ? "a directory"
	     : S_ISSOCK(m) ? "a socket" : S_ISCHR(m) || S_ISBLK(m) ? "a device" : "a special file";
}

/* A dir that th_datadir_check let be group-writable is shared with its group. */
static bool shared(const struct stat *dsb)
{
	return dsb->st_mode & S_IWGRP;
}

int th_datadir_check(const char *dir, const char *group)
{
	gid_t gid = 0;
	bool want_group = group && *group;
	if (want_group && th_datadir_group(group, &gid)) {
		th_log_error("store", "data_dir_group %s: no such group", group);
		return TH_EINVAL;
	}
	char who[NAME_BUF], me[NAME_BUF], grp[NAME_BUF];
	uid_t self = geteuid();
	struct stat sb;
	/* the path itself may be a link (to another disk, say), but only one of ours */
	if (lstat(dir, &sb) == 0 && S_ISLNK(sb.st_mode) && sb.st_uid != self && sb.st_uid != 0) {
		th_log_error("store", "data dir %s is a symbolic link owned by %s, not by this user "
			     "(%s): refused", dir, user_name(sb.st_uid, who), user_name(self, me));
		return TH_EINSECURE;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb)) {
		th_log_error("store", "cannot open %s: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return TH_ESYS;
	}
	close(fd);
	bool in_group = want_group && sb.st_gid == gid;
	unsigned mode = sb.st_mode & 07777;
	if (sb.st_mode & S_IWOTH) {
		th_log_error("store", "data dir %s is writable by every user (mode %04o): refused, as "
			     "anyone could plant files in it; chmod o-w %s", dir, mode, dir);
		return TH_EINSECURE;
	}
	if ((sb.st_mode & S_IWGRP) && !in_group) {
		if (want_group)
			th_log_error("store", "data dir %s is writable by group %s (mode %04o), not by "
				     "data_dir_group %s: refused; chgrp %s %s", dir,
				     group_name(sb.st_gid, grp), mode, group, group, dir);
		else
			th_log_error("store", "data dir %s is writable by group %s (mode %04o): "
				     "refused, as any member could plant files in it; chmod g-w %s, "
				     "or share it with data_dir_group = %s in [host]", dir,
				     group_name(sb.st_gid, grp), mode, dir, grp);
		return TH_EINSECURE;
	}
	if (sb.st_uid != self && !in_group) {
		th_log_error("store", "data dir %s is owned by %s, not by this user (%s): refused, "
			     "as its owner could swap its files; run as its owner, or share it "
			     "with data_dir_group in [host]", dir, user_name(sb.st_uid, who),
			     user_name(self, me));
		return TH_EINSECURE;
	}
	return 0;
}

/* Whether the data dir allows the file sb: a regular file of this user (or of the
 * dir's group in a shared dir) that no one else can write. */
static int judge(const char *path, const struct stat *dsb, const struct stat *sb)
{
	char who[NAME_BUF], me[NAME_BUF];
	bool group_ok = shared(dsb) && sb->st_gid == dsb->st_gid;
	unsigned mode = sb->st_mode & 07777;
	if (!S_ISREG(sb->st_mode)) {
		th_log_error("store", "%s is %s, not a regular file: refused (left as it is)", path,
			     kind(sb->st_mode));
		return TH_EINSECURE;
	}
	if (sb->st_uid != geteuid() && !group_ok) {
		th_log_error("store", "%s is owned by %s, not by this user (%s): refused", path,
			     user_name(sb->st_uid, who), user_name(geteuid(), me));
		return TH_EINSECURE;
	}
	if (sb->st_mode & S_IWOTH) {
		th_log_error("store", "%s is writable by every user (mode %04o): refused", path, mode);
		return TH_EINSECURE;
	}
	if ((sb->st_mode & S_IWGRP) && !group_ok) {
		th_log_error("store", "%s is writable by its group (mode %04o), which the data dir "
			     "is not shared with: refused", path, mode);
		return TH_EINSECURE;
	}
	return 0;
}

static int open_dir(const char *dir, int *dfd, struct stat *dsb)
{
	*dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dfd >= 0 && fstat(*dfd, dsb) == 0)
		return 0;
	th_log_error("store", "cannot open %s: %s", dir, strerror(errno));
	if (*dfd >= 0)
		close(*dfd);
	*dfd = -1;
	return TH_ESYS;
}

static int file_path(char *path, size_t len, const char *dir, const char *name)
{
	return snprintf(path, len, "%s/%s", dir, name) < (int)len ? 0 : TH_EINVAL;
}

/* lstat of dir/name, judged; TH_ENOTFOUND when there is nothing */
static int stat_in(int dfd, const struct stat *dsb, const char *path, const char *name,
		   struct stat *sb)
{
	if (fstatat(dfd, name, sb, AT_SYMLINK_NOFOLLOW) == 0)
		return judge(path, dsb, sb);
	if (errno == ENOENT)
		return TH_ENOTFOUND;
	th_log_error("store", "cannot look at %s: %s", path, strerror(errno));
	return TH_ESYS;
}

int th_datadir_stat(const char *dir, const char *name, struct stat *sb)
{
	char path[4096];
	int dfd, rc;
	struct stat dsb;
	if ((rc = file_path(path, sizeof(path), dir, name)) || (rc = open_dir(dir, &dfd, &dsb)))
		return rc;
	rc = stat_in(dfd, &dsb, path, name, sb);
	close(dfd);
	return rc;
}

static int open_in(int dfd, const struct stat *dsb, const char *path, const char *name,
		   int flags, int *out)
{
	struct stat sb;
	/* looked at first, so that nothing but a regular file is ever opened (a device could
	 * act on an open); the checks after the open catch a swap in between */
	int rc = stat_in(dfd, dsb, path, name, &sb);
	bool missing = rc == TH_ENOTFOUND;
	if (rc && !(missing && (flags & O_CREAT)))
		return rc;
	mode_t mode = shared(dsb) ? TH_DATADIR_GROUP_FILE_MODE : TH_DATADIR_FILE_MODE;
	int fd = openat(dfd, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
	if (fd < 0) {
		if (errno == ENOENT && !(flags & O_CREAT))
			return TH_ENOTFOUND;
		th_log_error("store", "cannot open %s: %s", path,
			     errno == ELOOP ? "it is a symbolic link (left as it is)" : strerror(errno));
		return errno == ELOOP ? TH_EINSECURE : TH_ESYS;
	}
	if (fstat(fd, &sb) == 0 && missing && S_ISREG(sb.st_mode) && sb.st_uid == geteuid()) {
		/* created here (or by another process of ours meanwhile): the mode without the
		 * umask, and in a shared dir its group, whatever the dir's setgid bit did */
		if (fchmod(fd, mode) == 0 && shared(dsb) && sb.st_gid != dsb->st_gid &&
		    fchown(fd, (uid_t)-1, dsb->st_gid) != 0)
			th_log_warn("store", "cannot give %s to the data dir's group: %s", path,
				    strerror(errno));
		fstat(fd, &sb);
	}
	int fl = fcntl(fd, F_GETFL);
	if ((rc = judge(path, dsb, &sb)) || fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)) {
		if (!rc)
			th_log_error("store", "cannot open %s: %s", path, strerror(errno));
		close(fd);
		return rc ? rc : TH_ESYS;
	}
	*out = fd;
	return 0;
}

int th_datadir_open(const char *dir, const char *name, int flags, int *fd)
{
	char path[4096];
	int dfd, rc;
	struct stat dsb;
	*fd = -1;
	if ((rc = file_path(path, sizeof(path), dir, name)) || (rc = open_dir(dir, &dfd, &dsb)))
		return rc;
	rc = open_in(dfd, &dsb, path, name, flags, fd);
	close(dfd);
	return rc;
}

int th_datadir_reserve(int fd, const char *path, off_t size)
{
	int e;
	while ((e = posix_fallocate(fd, 0, size)) == EINTR)
		;
	if (e == 0)
		return 0;
	if (e == ENOSPC || e == EDQUOT) {
		th_log_error("store", "%s: %s", e == ENOSPC ? "no space left on device"
							     : "disk quota exceeded", path);
		return TH_ENOSPC;
	}
	th_log_error("store", "cannot reserve %lld bytes for %s: %s", (long long)size, path,
		     strerror(e));
	return TH_ESYS;
}

int th_datadir_map(const char *dir, const char *name, size_t size, int flags, void **map)
{
	char path[4096];
	int fd, rc;
	*map = NULL;
	if ((rc = file_path(path, sizeof(path), dir, name)) ||
	    (rc = th_datadir_open(dir, name, O_RDWR | O_CREAT | flags, &fd)))
		return rc;
	/* one process at a time: where the file system cannot allocate, posix_fallocate
	 * writes zeros, which must not land on what another process already mapped */
	while (flock(fd, LOCK_EX) && errno == EINTR)
		;
	rc = th_datadir_reserve(fd, path, (off_t)size);
	flock(fd, LOCK_UN);
	void *p = rc ? MAP_FAILED : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (!rc && p == MAP_FAILED) {
		th_log_error("store", "cannot map %s: %s", path, strerror(errno));
		rc = TH_ESYS;
	}
	close(fd);
	if (rc && (flags & O_EXCL))
		unlink(path); /* made by this call: nothing else knows of it */
	if (rc == 0)
		*map = p;
	return rc;
}

/* Files refused (a link, a FIFO, another owner) are logged once, not at every scan. */
#define REFUSED_MAX 16
static pthread_mutex_t refused_mu = PTHREAD_MUTEX_INITIALIZER;
static struct stat refused[REFUSED_MAX];
static unsigned nrefused; /* how many ever: the oldest are replaced */

bool th_datadir_refused(int dfd, const char *name, bool add)
{
	struct stat sb;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW))
		return false;
	bool found = false;
	pthread_mutex_lock(&refused_mu);
	for (unsigned i = 0; i < nrefused && i < REFUSED_MAX && !found; i++)
		found = refused[i].st_dev == sb.st_dev && refused[i].st_ino == sb.st_ino;
	if (!found && add)
		refused[nrefused++ % REFUSED_MAX] = sb;
	pthread_mutex_unlock(&refused_mu);
	return found;
}
