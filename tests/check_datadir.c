/* The data dir's own files: planted links and FIFOs, other owners and loose modes refused,
 * data_dir_group, private modes, space reserved, a removed lock file, a full disk. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "datadir.h"
#include "error.h"
#include "local/local_inflight.h"
#include "local/local_progress.h"
#include "service.h"
#include "store/store_lmdb.h"
#include "testutil.h"
#include "local/local_wake.h"

#define PRECIOUS "precious bytes\n"

static char *dir;  /* the test's temp dir */
static char *data; /* dir/data: the data dir */

static void setup(void)
{
	dir = tu_tmpdir();
	ck_assert(asprintf(&data, "%s/data", dir) > 0);
	ck_assert_int_eq(mkdir(data, 0700), 0);
	char plugins[4096];
	snprintf(plugins, sizeof(plugins), "%s/plugins", dir); /* for configs */
	ck_assert_int_eq(mkdir(plugins, 0755), 0);
	tu_capture_start();
}

static void teardown(void)
{
	tu_capture_stop();
	umount2(data, MNT_DETACH); /* where a test mounted a small file system */
	tu_rmtree(dir);
	free(dir);
	free(data);
}

static char *in_data(const char *name)
{
	static char path[4096];
	snprintf(path, sizeof(path), "%s/%s", data, name);
	return path;
}

static th_service *open_service(int want)
{
	th_service_opts o = {.data_dir = data, .max_attempts = 1};
	th_service *svc = NULL;
	int rc = th_service_open(&svc, &o);
	ck_assert_msg(rc == want, "th_service_open: %s, expected %s", th_strerror(rc),
		      th_strerror(want));
	ck_assert(want != 0 || svc);
	return svc;
}

static th_store *open_store(const char *group, int want)
{
	th_store_opts o = {.data_dir_group = group};
	th_store *st = NULL;
	int rc = th_store_open(&st, data, &o);
	ck_assert_msg(rc == want, "th_store_open: %s, expected %s", th_strerror(rc),
		      th_strerror(want));
	return st;
}

static uint64_t add_job(th_store *st, int want)
{
	th_store_new n = {.task = "echo", .input = "x", .input_len = 1};
	uint64_t id = 0;
	ck_assert_int_eq(th_store_add(st, &n, 1, &id, NULL), want);
	return id;
}

/* dir/target holds PRECIOUS; data/name becomes a link to it */
static char *plant_link(const char *name)
{
	static char target[4096];
	snprintf(target, sizeof(target), "%s/target", dir);
	FILE *f = fopen(target, "w");
	ck_assert_ptr_nonnull(f);
	fputs(PRECIOUS, f);
	fclose(f);
	chmod(target, 0644);
	ck_assert_int_eq(symlink(target, in_data(name)), 0);
	return target;
}

static void assert_untouched(const char *target)
{
	char buf[64] = {0};
	FILE *f = fopen(target, "r");
	ck_assert_ptr_nonnull(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	ck_assert_uint_eq(n, strlen(PRECIOUS));
	ck_assert_str_eq(buf, PRECIOUS);
	struct stat sb;
	ck_assert_int_eq(stat(target, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0644);
}

static mode_t mode_of(const char *path)
{
	struct stat sb;
	ck_assert_msg(lstat(path, &sb) == 0, "%s: %s", path, strerror(errno));
	return sb.st_mode & 07777;
}

/* No hole in the file's first size bytes. */
static void assert_reserved(const char *path, off_t size)
{
	struct stat sb;
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_ge(sb.st_size, size);
	ck_assert_msg((off_t)sb.st_blocks * 512 >= size, "%s: %lld bytes allocated of %lld", path,
		      (long long)sb.st_blocks * 512, (long long)size);
}

/* A group other than this process's own, for chgrp tests (root only). */
static gid_t other_group(char *name, size_t len)
{
	static const char *const names[] = {"nogroup", "daemon", "users", "adm", NULL};
	for (int i = 0; names[i]; i++) {
		struct group *g = getgrnam(names[i]);
		if (g && g->gr_gid != getegid()) {
			snprintf(name, len, "%s", g->gr_name);
			return g->gr_gid;
		}
	}
	ck_abort_msg("no group to test with");
	return 0;
}

static bool as_root(const char *test)
{
	if (geteuid() == 0)
		return true;
	printf("SKIP: %s needs root (chown)\n", test);
	return false;
}

/* ---- planted files ---- */

static const char *const planted[] = {"wake", "progress", "lock.mdb", "data.mdb"};

START_TEST(planted_link_refused)
{
	const char *name = planted[_i];
	const char *target = plant_link(name);
	open_service(TH_EINSECURE);
	ck_assert_msg(tu_captured_has("store", in_data(name), "is a symbolic link"),
		      "no refusal naming %s", name);
	assert_untouched(target);
	struct stat sb; /* still there, still a link */
	ck_assert_int_eq(lstat(in_data(name), &sb), 0);
	ck_assert(S_ISLNK(sb.st_mode));
}
END_TEST

static int never(void *ud, const uint64_t *pairs, size_t n)
{
	(void)pairs;
	(void)n;
	*(int *)ud += 1;
	return 0;
}

START_TEST(inflight_link_and_fifo_skipped)
{
	const char *target = plant_link("inflight-00000000000000aa-0");
	ck_assert_int_eq(mkfifo(in_data("inflight-00000000000000bb-0"), 0600), 0);
	struct timeval then[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
	lutimes(in_data("inflight-00000000000000aa-0"), then); /* old: would be removed */
	th_owner me;
	th_owner_self(&me);
	int calls = 0;
	/* a FIFO opened for reading would block until a writer came: this returns */
	ck_assert_int_eq(th_inflight_collect(data, &me, never, &calls), 0);
	ck_assert_int_eq(calls, 0);
	ck_assert(tu_captured_has("store", in_data("inflight-00000000000000aa-0"),
				  "is a symbolic link, not a regular file: refused"));
	ck_assert(tu_captured_has("store", in_data("inflight-00000000000000bb-0"),
				  "is a FIFO, not a regular file: refused"));
	char **before = tu_captured("store");
	ck_assert_int_eq(th_inflight_collect(data, &me, never, &calls), 0);
	char **after = tu_captured("store");
	ck_assert_uint_eq(tu_strv_len(after), tu_strv_len(before)); /* said once, not at every scan */
	tu_strv_free(before);
	tu_strv_free(after);
	ck_assert_uint_eq(tu_count_files(data, "inflight-"), 2); /* left as they are */
	assert_untouched(target);
}
END_TEST

START_TEST(world_writable_dir_refused)
{
	ck_assert_int_eq(chmod(data, 0777), 0);
	open_store(NULL, TH_EINSECURE);
	ck_assert(tu_captured_has("store", data, "is writable by every user (mode 0777): refused"));
	ck_assert_uint_eq(tu_count_files(data, "lock.mdb") + tu_count_files(data, "data.mdb"), 0);
	ck_assert_int_eq(chmod(data, 01777), 0); /* sticky, like /tmp: the same */
	open_store(NULL, TH_EINSECURE);
}
END_TEST

START_TEST(group_writable_dir_needs_its_group)
{
	ck_assert_int_eq(chmod(data, 0770), 0);
	struct stat sb;
	ck_assert_int_eq(stat(data, &sb), 0);
	struct group *g = getgrgid(sb.st_gid);
	ck_assert_ptr_nonnull(g);
	char group[256];
	snprintf(group, sizeof(group), "%s", g->gr_name);
	open_store(NULL, TH_EINSECURE);
	ck_assert(tu_captured_has("store", data, "is writable by group"));
	ck_assert(tu_captured_has("store", "data_dir_group", NULL));
	ck_assert_uint_eq(tu_count_files(data, "data.mdb"), 0);
	open_store("no-such-group-here", TH_EINVAL);
	ck_assert(tu_captured_has("store", "data_dir_group no-such-group-here: no such group", NULL));
	th_store *st = open_store(group, 0);
	add_job(st, 0);
	th_store_close(st);
	/* files of a shared dir: readable and writable by the group, its group */
	ck_assert_uint_eq(mode_of(in_data("data.mdb")), 0660);
	ck_assert_uint_eq(mode_of(in_data("lock.mdb")), 0660);
	ck_assert_int_eq(stat(in_data("data.mdb"), &sb), 0);
	ck_assert_uint_eq(sb.st_gid, g->gr_gid);
}
END_TEST

START_TEST(dir_shared_with_another_group)
{
	if (!as_root("dir_shared_with_another_group"))
		return;
	char name[64];
	gid_t gid = other_group(name, sizeof(name));
	ck_assert_int_eq(chown(data, (uid_t)-1, gid), 0);
	ck_assert_int_eq(chmod(data, 0770), 0); /* no setgid bit: files get the group anyway */
	open_store("root", TH_EINSECURE);
	ck_assert(tu_captured_has("store", "not by data_dir_group root: refused", NULL));
	th_store *st = open_store(name, 0);
	th_store_close(st);
	struct stat sb;
	ck_assert_int_eq(stat(in_data("lock.mdb"), &sb), 0);
	ck_assert_uint_eq(sb.st_gid, gid);
	ck_assert_uint_eq(sb.st_mode & 07777, 0660);
	/* a dir that another user owns is fine when it is shared with the group named */
	struct passwd *nobody = getpwnam("nobody");
	ck_assert_ptr_nonnull(nobody);
	ck_assert_int_eq(chown(data, nobody->pw_uid, gid), 0);
	st = open_store(name, 0);
	th_store_close(st);
}
END_TEST

START_TEST(other_users_dir_refused)
{
	if (!as_root("other_users_dir_refused"))
		return;
	struct passwd *nobody = getpwnam("nobody");
	ck_assert_ptr_nonnull(nobody);
	ck_assert_int_eq(chown(data, nobody->pw_uid, (gid_t)-1), 0);
	/* root too: the owner could swap a file for a link under it */
	open_store(NULL, TH_EINSECURE);
	char want[64];
	snprintf(want, sizeof(want), "is owned by uid %u (nobody)", (unsigned)nobody->pw_uid);
	ck_assert(tu_captured_has("store", data, want));
	ck_assert(tu_captured_has("store", "not by this user (uid 0", NULL));
	ck_assert_uint_eq(tu_count_files(data, "data.mdb"), 0);
	/* a link to a dir, planted by another user */
	char link[4096];
	snprintf(link, sizeof(link), "%s/link", dir);
	ck_assert_int_eq(chown(data, 0, (gid_t)-1), 0);
	ck_assert_int_eq(symlink(data, link), 0);
	ck_assert_int_eq(lchown(link, nobody->pw_uid, (gid_t)-1), 0);
	th_store *st = NULL;
	ck_assert_int_eq(th_store_open(&st, link, NULL), TH_EINSECURE);
	ck_assert(tu_captured_has("store", link, "is a symbolic link owned by uid"));
	ck_assert_int_eq(lchown(link, 0, (gid_t)-1), 0); /* one of ours is followed */
	ck_assert_int_eq(th_store_open(&st, link, NULL), 0);
	th_store_close(st);
}
END_TEST

START_TEST(other_users_file_refused)
{
	if (!as_root("other_users_file_refused"))
		return;
	th_service_close(open_service(0));
	struct passwd *nobody = getpwnam("nobody");
	ck_assert_ptr_nonnull(nobody);
	ck_assert_int_eq(chown(in_data("progress"), nobody->pw_uid, (gid_t)-1), 0);
	open_service(TH_EINSECURE);
	ck_assert(tu_captured_has("store", in_data("progress"), "is owned by uid"));
}
END_TEST

START_TEST(files_others_can_write_refused)
{
	th_service_close(open_service(0));
	ck_assert_int_eq(chmod(in_data("wake"), 0666), 0);
	open_service(TH_EINSECURE);
	ck_assert(tu_captured_has("store", in_data("wake"), "writable by every user (mode 0666)"));
	ck_assert_int_eq(chmod(in_data("wake"), 0600), 0);
	ck_assert_int_eq(chmod(in_data("data.mdb"), 0620), 0);
	open_service(TH_EINSECURE);
	ck_assert(tu_captured_has("store", in_data("data.mdb"), "writable by its group"));
	ck_assert_int_eq(chmod(in_data("data.mdb"), 0600), 0);
	th_service_close(open_service(0));
}
END_TEST

START_TEST(new_files_private)
{
	mode_t old = umask(0); /* the modes are set, not left to the umask */
	th_service *svc = open_service(0);
	th_processor_args args = TH_PROCESSOR_ARGS_DEFAULT;
	ck_assert_int_eq(th_service_set_processor(svc, "multi", &args), 0);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert_uint_eq(tu_count_files(data, "inflight-"), 1);
	DIR *d = opendir(data);
	for (struct dirent *e; (e = readdir(d));)
		if (strncmp(e->d_name, "inflight-", 9) == 0)
			ck_assert_uint_eq(mode_of(in_data(e->d_name)), 0600);
	closedir(d);
	th_service_close(svc);
	umask(old);
	static const char *const files[] = {"data.mdb", "lock.mdb", "wake", "progress"};
	for (int i = 0; i < 4; i++)
		ck_assert_msg(mode_of(in_data(files[i])) == 0600, "%s: mode %04o", files[i],
			      mode_of(in_data(files[i])));
	/* the config makes the data dir itself 0700 */
	th_config cfg;
	char err[512], ini[4096];
	snprintf(ini, sizeof(ini), "%s/taskhost.ini", dir);
	ck_assert_int_eq(th_config_parse(&cfg, ini, "[host]\ndata_dir = ./new/var\n", err,
					 sizeof(err)), 0);
	umask(0);
	ck_assert_int_eq(th_config_make_data_dir(&cfg, err, sizeof(err)), 0);
	umask(old);
	ck_assert_uint_eq(mode_of(cfg.data_dir), 0700);
	th_config_free(&cfg);
}
END_TEST

START_TEST(config_data_dir_group)
{
	th_config cfg;
	char err[512], ini[4096], text[512];
	snprintf(ini, sizeof(ini), "%s/taskhost.ini", dir);
	ck_assert_int_eq(th_config_parse(&cfg, ini, "[host]\ndata_dir_group = no-such-group-here\n",
					 err, sizeof(err)), TH_ECONFIG);
	ck_assert_str_eq(strstr(err, ":2: "), ":2: bad value 'no-such-group-here' for "
					      "data_dir_group in [host]: no such group");
	char name[64];
	gid_t gid;
	if (geteuid() == 0) {
		gid = other_group(name, sizeof(name));
	} else {
		gid = getegid();
		snprintf(name, sizeof(name), "%s", getgrgid(gid)->gr_name);
	}
	snprintf(text, sizeof(text), "[host]\ndata_dir = ./shared\ndata_dir_group = %s\n", name);
	ck_assert_int_eq(th_config_parse(&cfg, ini, text, err, sizeof(err)), 0);
	ck_assert_str_eq(cfg.data_dir_group, name);
	ck_assert_int_eq(th_config_make_data_dir(&cfg, err, sizeof(err)), 0);
	struct stat sb;
	ck_assert_int_eq(stat(cfg.data_dir, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 02770);
	ck_assert_uint_eq(sb.st_gid, gid);
	th_service_opts o = {.data_dir = cfg.data_dir, .data_dir_group = cfg.data_dir_group};
	th_service *svc = NULL;
	ck_assert_int_eq(th_service_open(&svc, &o), 0);
	th_service_close(svc);
	char path[4096];
	snprintf(path, sizeof(path), "%s/wake", cfg.data_dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 07777, 0660);
	ck_assert_uint_eq(sb.st_gid, gid);
	th_config_free(&cfg);
}
END_TEST

/* ---- space ---- */

START_TEST(shared_files_reserved)
{
	/* what a crash during an older start left: a short progress, a sparse wake */
	int fd = open(in_data("wake"), O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	close(fd);
	fd = open(in_data("progress"), O_RDWR | O_CREAT, 0600);
	close(fd);
	th_service *svc = open_service(0);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	assert_reserved(in_data("wake"), 4096);
	assert_reserved(in_data("progress"), 64 * 1024);
	assert_reserved(in_data("lock.mdb"), 1024 * 64 + 128);
	th_service_close(svc);
}
END_TEST

/* ---- the lock file ---- */

START_TEST(removed_lock_file_refused)
{
	th_store *st = open_store(NULL, 0);
	uint64_t first = add_job(st, 0);
	ck_assert_int_eq(unlink(in_data("lock.mdb")), 0);
	/* another opener now would make a lock file of its own */
	open_store(NULL, TH_ELOCKLOST);
	ck_assert(tu_captured_has("store", in_data("lock.mdb"), "is missing while other processes"));
	ck_assert(tu_captured_has("store", "stop every process that uses", data));
	ck_assert_uint_eq(tu_count_files(data, "lock.mdb"), 0);
	/* and the one that has it open writes no more */
	tu_capture_clear();
	add_job(st, TH_ELOCKLOST);
	add_job(st, TH_ELOCKLOST);
	char **lines = tu_captured("store");
	ck_assert_uint_eq(tu_strv_len(lines), 1); /* said once */
	ck_assert_ptr_nonnull(strstr(lines[0], "was removed or replaced while this process had "
					       "the data dir open: writes refused"));
	tu_strv_free(lines);
	th_job j;
	ck_assert_int_eq(th_store_get(st, first, &j), 0); /* reads still work */
	th_store_close(st);
	/* once every process is gone, the next makes a new one; nothing was lost */
	st = open_store(NULL, 0);
	ck_assert_int_eq(th_store_get(st, first, &j), 0);
	ck_assert_uint_eq(add_job(st, 0), first + 1);
	th_store_close(st);
}
END_TEST

START_TEST(replaced_lock_file_refused)
{
	th_store *st = open_store(NULL, 0);
	add_job(st, 0);
	char moved[4096];
	snprintf(moved, sizeof(moved), "%s/old-lock", dir);
	ck_assert_int_eq(rename(in_data("lock.mdb"), moved), 0);
	int fd = open(in_data("lock.mdb"), O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	add_job(st, TH_ELOCKLOST);
	ck_assert(tu_captured_has("store", in_data("lock.mdb"), "was removed or replaced"));
	th_store_close(st);
}
END_TEST

struct probe {
	int dfd;
	int tries, blocked;
};

/* In a write transaction: can another open of the data dir take the writers' lock? */
static int try_writer_lock(void *ud, const char *what)
{
	struct probe *p = ud;
	(void)what;
	p->tries++;
	if (flock(p->dfd, LOCK_EX | LOCK_NB) == 0)
		flock(p->dfd, LOCK_UN);
	else if (errno == EWOULDBLOCK)
		p->blocked++;
	return 0;
}

START_TEST(writers_hold_the_data_dir_lock)
{
	th_store *st = open_store(NULL, 0);
	struct probe p = {open(data, O_RDONLY | O_DIRECTORY), 0, 0};
	ck_assert_int_ge(p.dfd, 0);
	th_store_set_commit_hook(st, try_writer_lock, &p);
	add_job(st, 0);
	add_job(st, 0);
	th_store_set_commit_hook(st, NULL, NULL);
	ck_assert_int_eq(p.tries, 2);
	ck_assert_int_eq(p.blocked, 2); /* another writer waits, whatever lock file it has */
	ck_assert_int_eq(flock(p.dfd, LOCK_EX | LOCK_NB), 0); /* and gets it after */
	close(p.dfd);
	th_store_close(st);
}
END_TEST

/* ---- a full disk ---- */

/* Mounts a tmpfs of size bytes on the data dir, in a mount namespace of this test's own
 * process (Check runs each test in a child); false (SKIP printed) where that needs
 * privileges we lack. */
static bool small_fs(const char *size)
{
	char opts[64];
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", data, "tmpfs", 0, opts)) {
		printf("SKIP: a small tmpfs needs root and a mount namespace (%s)\n",
		       strerror(errno));
		return false;
	}
	return true;
}

/* Writes a file until the device is full. */
static void fill(const char *name)
{
	static char block[4096];
	int fd = open(in_data(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	while (write(fd, block, sizeof(block)) > 0)
		;
	ck_assert_int_eq(errno, ENOSPC);
	while (write(fd, block, 1) > 0) /* the last bytes of the last page */
		;
	close(fd);
}

START_TEST(full_disk_refused_at_open)
{
	if (!small_fs("256k"))
		return;
	fill("filler");
	open_service(TH_ENOSPC);
	ck_assert(tu_captured_has("store", "no space left on device: ", in_data("lock.mdb")));
	ck_assert_int_eq(unlink(in_data("filler")), 0);
	th_service_close(open_service(0));
}
END_TEST

START_TEST(leftover_short_file_on_full_disk)
{
	if (!small_fs("512k"))
		return;
	th_service_close(open_service(0));
	ck_assert_int_eq(truncate(in_data("progress"), 0), 0); /* a start that crashed */
	fill("filler");
	open_service(TH_ENOSPC);
	ck_assert(tu_captured_has("store", "no space left on device: ", in_data("progress")));
	ck_assert_int_eq(unlink(in_data("filler")), 0);
	th_service_close(open_service(0));
	assert_reserved(in_data("progress"), 64 * 1024);
}
END_TEST

START_TEST(shared_files_written_on_full_disk)
{
	if (!small_fs("512k"))
		return;
	th_wake *w;
	th_progress_map *p;
	th_inflight *f;
	th_owner me;
	th_owner_self(&me);
	ck_assert_int_eq(th_wake_open(&w, data), 0);
	ck_assert_int_eq(th_progress_open(&p, data), 0);
	ck_assert_int_eq(th_inflight_open(&f, data, &me, 512), 0);
	fill("filler");
	/* every page of each: a page never touched before is where a sparse file faults */
	for (uint64_t id = 1; id <= 3000; id++)
		th_progress_set(p, id, 0.5);
	double done = 0;
	ck_assert(th_progress_get(p, 2999, &done));
	ck_assert(done > 0.49 && done < 0.51);
	for (uint64_t id = 1; id <= 512; id++)
		th_inflight_add(f, id, 1);
	const uint64_t *pairs;
	ck_assert_uint_eq(th_inflight_pairs(f, &pairs), 512);
	th_wake_notify(w, TH_WAKE_CANCEL);
	/* no room for another: refused, not a crash */
	th_inflight *g = NULL;
	ck_assert_int_eq(th_inflight_open(&g, data, &me, 512), TH_ENOSPC);
	ck_assert_uint_eq(tu_count_files(data, "inflight-"), 1); /* the refused one removed */
	th_inflight_close(f, false);
	th_progress_close(p);
	th_wake_close(w);
}
END_TEST

START_TEST(leftover_inflight_with_holes_on_full_disk)
{
	if (!small_fs("256k"))
		return;
	/* a host died while it made this: a megabyte of holes */
	int fd = open(in_data("inflight-00000000000000cc-0"), O_RDWR | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
	close(fd);
	fill("filler");
	th_owner me;
	th_owner_self(&me);
	int calls = 0;
	ck_assert_int_eq(th_inflight_collect(data, &me, never, &calls), 0);
	ck_assert_int_eq(calls, 0);
	ck_assert_uint_eq(tu_count_files(data, "inflight-"), 1); /* new: it may be in the making */
	struct timeval then[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
	ck_assert_int_eq(utimes(in_data("inflight-00000000000000cc-0"), then), 0);
	ck_assert_int_eq(th_inflight_collect(data, &me, never, &calls), 0);
	ck_assert_uint_eq(tu_count_files(data, "inflight-"), 0); /* old: removed */
}
END_TEST

Suite *datadir_suite(void);
Suite *datadir_suite(void)
{
	Suite *s = suite_create("datadir");
	TCase *tc = tcase_create("datadir");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, planted_link_refused, 0, sizeof(planted) / sizeof(planted[0]));
	tcase_add_test(tc, inflight_link_and_fifo_skipped);
	tcase_add_test(tc, world_writable_dir_refused);
	tcase_add_test(tc, group_writable_dir_needs_its_group);
	tcase_add_test(tc, dir_shared_with_another_group);
	tcase_add_test(tc, other_users_dir_refused);
	tcase_add_test(tc, other_users_file_refused);
	tcase_add_test(tc, files_others_can_write_refused);
	tcase_add_test(tc, new_files_private);
	tcase_add_test(tc, config_data_dir_group);
	tcase_add_test(tc, shared_files_reserved);
	tcase_add_test(tc, removed_lock_file_refused);
	tcase_add_test(tc, replaced_lock_file_refused);
	tcase_add_test(tc, writers_hold_the_data_dir_lock);
	tcase_add_test(tc, full_disk_refused_at_open);
	tcase_add_test(tc, leftover_short_file_on_full_disk);
	tcase_add_test(tc, shared_files_written_on_full_disk);
	tcase_add_test(tc, leftover_inflight_with_holes_on_full_disk);
	suite_add_tcase(s, tc);
	return s;
}
