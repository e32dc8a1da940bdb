/* The data dir's own files: the directory is checked before anything in it is used,
 * every file in it is opened without following a link or blocking on a FIFO, and the
 * shared files (wake, progress, inflight-*) get their disk space before they are mapped,
 * so that a full disk is an error at open and never a SIGBUS while writing.
 *
 * Who may use a data dir: it and its files belong to this user and nobody else can
 * write them; or, when data_dir_group names a group, the dir is writable by that group
 * and files may belong to any of its members. Root is no exception: a dir owned by
 * another user is refused unless data_dir_group names its group, since whoever owns it
 * can swap a file for a link between a check and LMDB's own open of it. */
#ifndef TH_DATADIR_H
#define TH_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#define TH_DATADIR_MODE 0700        /* a new data dir */
#define TH_DATADIR_GROUP_MODE 02770 /* a new data dir of a data_dir_group: files inherit it */
#define TH_DATADIR_FILE_MODE 0600
#define TH_DATADIR_GROUP_FILE_MODE 0660

/* The group named by data_dir_group. TH_EINVAL (nothing logged) when there is none. */
int th_datadir_group(const char *name, gid_t *gid);

/* Checks the data dir itself (see above); group: data_dir_group, NULL or "" for none.
 * TH_ESYS when it cannot be opened, TH_EINSECURE when it is refused, both logged with
 * the path and the cause. The file functions below trust a group-writable dir to be
 * one this check passed. */
int th_datadir_check(const char *dir, const char *group);

/* Opens dir/name: flags are O_RDONLY or O_RDWR, with O_CREAT and O_EXCL as needed. What
 * is there must be a regular file, owned and with a mode the dir allows; a file created
 * gets TH_DATADIR_FILE_MODE (TH_DATADIR_GROUP_FILE_MODE and the dir's group in a group
 * data dir). TH_EINSECURE (a link, a FIFO, another owner, writable by others), TH_ESYS,
 * logged with the path; a missing file without O_CREAT is TH_ENOTFOUND, not logged. */
int th_datadir_open(const char *dir, const char *name, int flags, int *fd);
/* The same checks for a file that must not be opened here: 0 when dir/name is a file
 * open would accept, TH_ENOTFOUND when there is none. */
int th_datadir_stat(const char *dir, const char *name, struct stat *sb);
/* Whether the file `name` of the directory dfd was refused before (a link, a FIFO,
 * another owner's; by device and inode): scans log such a file once, not at each pass.
 * add: remember it (the last 16 are kept). */
bool th_datadir_refused(int dfd, const char *name, bool add);

/* Makes the first size bytes of the file take disk space (posix_fallocate, which
 * writes zeros where the file system cannot allocate), growing it if shorter.
 * TH_ENOSPC, logged as "no space left on device: PATH". */
int th_datadir_reserve(int fd, const char *path, off_t size);

/* Maps dir/name shared and writable, size bytes, created if missing (with O_EXCL in
 * flags: it must not exist), its space reserved first. */
int th_datadir_map(const char *dir, const char *name, size_t size, int flags, void **map);

#endif
