/* Plugin loading: the good plugin's lifecycle, every refusal with its log line, loading
 * going on after a refusal, inspect mode, reloads, the task list. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "plugin/plugin.h"
#include "proc/proc_run.h"
#include "testutil.h"

static char *dir;
static th_plugins *reg;

static void setup(void)
{
	dir = tu_tmpdir();
	tu_capture_start();
	ck_assert_int_eq(th_plugins_new(&reg, TH_PLUGINS_RUN, th_run_api()), 0);
}

static void teardown(void)
{
	th_plugins_free(reg);
	reg = NULL;
	tu_capture_stop();
	tu_rmtree(dir);
	free(dir);
}

/* Loads a directory holding only the given fixture; returns (loaded, refused). */
static void load_only(const char *spec, unsigned want_loaded, unsigned want_refused)
{
	char *pdir = tu_plugin_dir(dir, spec, NULL);
	unsigned loaded = 9, refused = 9;
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, want_loaded);
	ck_assert_uint_eq(refused, want_refused);
	free(pdir);
}

static void assert_refused(const char *file, const char *reason)
{
	char name[256];
	snprintf(name, sizeof(name), "/plugins/%s.so: refused", file);
	ck_assert_msg(tu_captured_has("plugins", name, reason),
		      "no log line with '%s' and '%s'", name, reason);
	ck_assert_uint_eq(th_plugins_task_count(reg), 0);
}

START_TEST(good_plugin_lifecycle)
{
	load_only("fx_good", 1, 0);
	ck_assert(tu_captured_has("fx_good", "init abi 1.1", NULL));
	ck_assert(tu_captured_has("plugins", "fx_good.so: loaded plugin fx_good 2.5", "5 tasks"));
	ck_assert_uint_eq(th_plugins_task_count(reg), 5);
	const th_task_entry *e = th_plugins_find(reg, "fx_answer");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(th_task_entry_name(e), "fx_answer");
	ck_assert_str_eq(th_task_entry_plugin(e), "fx_good");
	ck_assert_ptr_null(th_plugins_find(reg, "nope"));

	/* thread_init before the first job on a thread, once; thread_fini when it ends */
	th_plugin_thread *t;
	ck_assert_int_eq(th_plugin_thread_new(reg, &t), 0);
	th_job job = {.id = 5, .attempts = 1};
	strcpy(job.task, "fx_answer");
	for (int i = 0; i < 2; i++) {
		th_run_result r;
		th_run_job(t, e, &job, "x", 1, NULL, &r);
		ck_assert_int_eq(r.ret, TH_OK);
		ck_assert_uint_eq(r.result_len, 2);
		ck_assert_mem_eq(r.result, "ok", 2);
		th_run_result_clear(&r);
	}
	char **lines = tu_captured("fx_good");
	ck_assert_uint_eq(tu_strv_len(lines), 2); /* init, thread_init */
	ck_assert_str_eq(lines[1], "thread_init");
	tu_strv_free(lines);
	th_plugin_thread_free(t);
	ck_assert(tu_captured_has("fx_good", "thread_fini", NULL));
	th_plugins_free(reg);
	reg = NULL;
	lines = tu_captured("fx_good");
	ck_assert_uint_eq(tu_strv_len(lines), 4);
	ck_assert_str_eq(lines[3], "fini");
	tu_strv_free(lines);
}
END_TEST

START_TEST(task_info)
{
	load_only("fx_good", 1, 0);
	th_task_info ti;
	ck_assert_int_eq(th_plugins_task_info(reg, 3, &ti), 0);
	ck_assert_str_eq(ti.name, "fx_record");
	ck_assert_str_eq(ti.description, "appends its job id to a file");
	ck_assert_str_eq(ti.plugin, "fx_good");
	ck_assert_str_eq(ti.version, "2.5");
	ck_assert_ptr_nonnull(strstr(ti.file, "/plugins/fx_good.so"));
	ck_assert_int_eq(th_plugins_task_info(reg, 5, &ti), TH_EINVAL);
}
END_TEST

START_TEST(refuses_not_loadable)
{
	char *pdir = tu_plugin_dir(dir, NULL);
	char path[4096];
	snprintf(path, sizeof(path), "%s/text.so", pdir);
	FILE *f = fopen(path, "w");
	fputs("this is not an ELF file\n", f);
	fclose(f);
	unsigned loaded, refused;
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(refused, 1);
	assert_refused("text", "not an ELF file");
	free(pdir);
}
END_TEST

/* Writes a damaged copy of the shipped echo.so into the plugin dir. */
static void damaged_copy(const char *pdir, const char *name, long keep, long patch_at,
			 unsigned char patch)
{
	char from[4096], to[4096];
	snprintf(from, sizeof(from), "%s/echo.so", PLUGIN_BUILD_DIR);
	snprintf(to, sizeof(to), "%s/%s.so", pdir, name);
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	ck_assert(in && out);
	int c;
	for (long i = 0; (c = fgetc(in)) != EOF && (keep < 0 || i < keep); i++)
		fputc(i == patch_at ? patch : c, out);
	fclose(in);
	fclose(out);
}

START_TEST(refuses_truncated_and_foreign_elf)
{
	char *pdir = tu_plugin_dir(dir, NULL);
	damaged_copy(pdir, "truncated", 1000, -1, 0);
	damaged_copy(pdir, "aarch64", -1, 18, 183); /* e_machine: EM_AARCH64 */
	unsigned loaded, refused;
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, 0);
	ck_assert_uint_eq(refused, 2);
	assert_refused("truncated", "truncated ELF file: a segment ends past the end of the file");
	assert_refused("aarch64", "built for another machine (ELF machine 183, class 2)");
	free(pdir);
}
END_TEST

START_TEST(refuses_undefined_symbol)
{
	load_only("fx_undefined", 0, 1);
	assert_refused("fx_undefined", "th_symbol_nobody_defines");
}
END_TEST

START_TEST(refuses_no_entry_point)
{
	load_only("fx_noentry", 0, 1);
	assert_refused("fx_noentry", "no entry point taskhost_plugin()");
}
END_TEST

START_TEST(refuses_wrong_magic)
{
	load_only("fx_badmagic", 0, 1);
	assert_refused("fx_badmagic", "wrong magic 0x12345678");
}
END_TEST

START_TEST(refuses_other_major)
{
	load_only("fx_major2", 0, 1);
	assert_refused("fx_major2", "built for ABI major 2, this host speaks 1");
}
END_TEST

START_TEST(refuses_newer_minor)
{
	load_only("fx_newminor", 0, 1);
	assert_refused("fx_newminor", "built for ABI 1.2, newer than this host's 1.1");
}
END_TEST

START_TEST(refuses_small_descriptor)
{
	load_only("fx_small", 0, 1);
	assert_refused("fx_small", "descriptor of 16 bytes, smaller than ABI 1.0's");
}
END_TEST

START_TEST(refuses_failed_init)
{
	load_only("fx_initfail", 0, 1);
	assert_refused("fx_initfail", "init failed (returned -3)");
}
END_TEST

START_TEST(refuses_taken_task_name)
{
	char *pdir = tu_plugin_dir(dir, "a_good=fx_good", "b_dup=fx_dup", NULL);
	unsigned loaded, refused;
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, 1);
	ck_assert_uint_eq(refused, 1);
	ck_assert(tu_captured_has("plugins", "b_dup.so: refused",
				  "task 'fx_answer' already provided by"));
	/* the whole plugin is refused, its other task too */
	ck_assert_ptr_null(th_plugins_find(reg, "fx_dup_own"));
	ck_assert_uint_eq(th_plugins_task_count(reg), 5);
	free(pdir);
}
END_TEST

START_TEST(goes_on_after_refusals)
{
	char *pdir = tu_plugin_dir(dir, "fx_badmagic", "fx_good", "fx_initfail", "fx_major2",
				   "fx_newminor", "fx_noentry", "fx_other", "fx_small",
				   "fx_undefined", NULL);
	unsigned loaded, refused;
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, 2);
	ck_assert_uint_eq(refused, 7);
	ck_assert_ptr_nonnull(th_plugins_find(reg, "fx_span"));
	ck_assert_ptr_nonnull(th_plugins_find(reg, "fx_other"));
	ck_assert_uint_eq(th_plugins_task_count(reg), 6);
	free(pdir);
}
END_TEST

START_TEST(inspect_mode_skips_init)
{
	th_plugins_free(reg);
	ck_assert_int_eq(th_plugins_new(&reg, TH_PLUGINS_INSPECT, th_run_api()), 0);
	load_only("fx_good", 1, 0);
	ck_assert_ptr_nonnull(th_plugins_find(reg, "fx_span"));
	th_plugins_free(reg);
	reg = NULL;
	char **lines = tu_captured("fx_good");
	ck_assert_uint_eq(tu_strv_len(lines), 0); /* neither init nor fini ran */
	tu_strv_free(lines);
}
END_TEST

START_TEST(reload_takes_only_new_files)
{
	char *pdir = tu_plugin_dir(dir, "fx_good", "fx_noentry", NULL);
	unsigned loaded, refused;
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, 1);
	ck_assert_uint_eq(refused, 1);
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, 0); /* nothing new: no second init, no second refusal */
	ck_assert_uint_eq(refused, 0);
	free(tu_plugin_dir(dir, "fx_other", NULL));
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, 1);
	ck_assert_uint_eq(refused, 0);
	ck_assert_ptr_nonnull(th_plugins_find(reg, "fx_other"));
	char **lines = tu_captured("fx_good");
	ck_assert_uint_eq(tu_strv_len(lines), 1);
	tu_strv_free(lines);
	free(pdir);
}
END_TEST

/* A real copy of a fixture (not a link), so its mode and owner can be changed. */
static char *copy_fixture(const char *pdir, const char *name)
{
	char from[4096], *to, cmd[8300];
	snprintf(from, sizeof(from), "%s/%s.so", FIXTURE_DIR, name);
	ck_assert(asprintf(&to, "%s/%s.so", pdir, name) > 0);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	ck_assert_int_eq(system(cmd), 0);
	return to;
}

START_TEST(refuses_insecure_files)
{
	char *pdir = tu_plugin_dir(dir, NULL);
	char *ww = copy_fixture(pdir, "fx_good");
	ck_assert_int_eq(chmod(ww, 0666), 0);
	char *other = copy_fixture(pdir, "fx_other");
	bool can_chown = chown(other, 4321, 4321) == 0; /* needs root */
	unsigned loaded, refused;
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, can_chown ? 0 : 1);
	ck_assert_uint_eq(refused, can_chown ? 2 : 1);
	ck_assert(tu_captured_has("plugins", "fx_good.so: refused: world-writable", NULL));
	if (can_chown)
		ck_assert(tu_captured_has("plugins", "fx_other.so: refused: owned by uid 4321",
					  NULL));
	char file[4096], why[512];
	ck_assert_uint_eq(th_plugins_refused(reg, 0, file, sizeof(file), why, sizeof(why)),
			  refused);
	ck_assert_str_eq(file, ww);
	ck_assert_ptr_nonnull(strstr(why, "world-writable"));
	/* the config can say otherwise; the same files then load (they changed: chmod) */
	th_plugins_allow_insecure_plugins(reg, true);
	ck_assert_int_eq(chmod(ww, 0667), 0);
	if (can_chown)
		ck_assert_int_eq(chown(other, 4321, 4322), 0);
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, can_chown ? 2 : 1);
	ck_assert_uint_eq(th_plugins_refused(reg, 0, file, sizeof(file), why, sizeof(why)), 0);
	ck_assert_ptr_nonnull(th_plugins_find(reg, "fx_span"));
	free(ww);
	free(other);
	free(pdir);
}
END_TEST

START_TEST(refuses_insecure_dir)
{
	char *pdir = tu_plugin_dir(dir, "fx_good", NULL);
	ck_assert_int_eq(chmod(pdir, 0777), 0);
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, NULL, NULL), TH_ESYS);
	ck_assert(tu_captured_has("plugins", "refused: world-writable", "allow_insecure_plugins"));
	ck_assert_uint_eq(th_plugins_task_count(reg), 0);
	th_plugins_allow_insecure_plugins(reg, true);
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, NULL, NULL), 0);
	ck_assert_uint_eq(th_plugins_task_count(reg), 5);
	free(pdir);
}
END_TEST

START_TEST(rescans_for_unknown_task)
{
	load_only("fx_good", 1, 0);
	ck_assert_ptr_null(th_plugins_find_or_rescan(reg, "fx_other"));
	free(tu_plugin_dir(dir, "fx_other", NULL));
	ck_assert_ptr_nonnull(th_plugins_find_or_rescan(reg, "fx_other"));
	ck_assert(tu_captured_has("plugins", "task 'fx_other' unknown: looking for new plugins",
				  NULL));
}
END_TEST

START_TEST(missing_dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/nowhere", dir);
	ck_assert_int_eq(th_plugins_load_dir(reg, path, NULL, NULL), TH_ESYS);
	ck_assert(tu_captured_has("plugins", "cannot read plugin directory", "nowhere"));
}
END_TEST

START_TEST(ignores_other_files)
{
	char *pdir = tu_plugin_dir(dir, "fx_good", NULL);
	char path[4096];
	snprintf(path, sizeof(path), "%s/README.txt", pdir);
	FILE *f = fopen(path, "w");
	fputs("not a plugin\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/sub.so", pdir);
	ck_assert_int_eq(mkdir(path, 0755), 0); /* a directory, not a file */
	unsigned loaded, refused;
	ck_assert_int_eq(th_plugins_load_dir(reg, pdir, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, 1);
	ck_assert_uint_eq(refused, 0);
	free(pdir);
}
END_TEST

Suite *plugins_suite(void);
Suite *plugins_suite(void)
{
	Suite *s = suite_create("plugins");
	TCase *tc = tcase_create("loading");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, good_plugin_lifecycle);
	tcase_add_test(tc, task_info);
	tcase_add_test(tc, refuses_not_loadable);
	tcase_add_test(tc, refuses_truncated_and_foreign_elf);
	tcase_add_test(tc, refuses_undefined_symbol);
	tcase_add_test(tc, refuses_no_entry_point);
	tcase_add_test(tc, refuses_wrong_magic);
	tcase_add_test(tc, refuses_other_major);
	tcase_add_test(tc, refuses_newer_minor);
	tcase_add_test(tc, refuses_small_descriptor);
	tcase_add_test(tc, refuses_failed_init);
	tcase_add_test(tc, refuses_taken_task_name);
	tcase_add_test(tc, goes_on_after_refusals);
	tcase_add_test(tc, inspect_mode_skips_init);
	tcase_add_test(tc, reload_takes_only_new_files);
	tcase_add_test(tc, refuses_insecure_files);
	tcase_add_test(tc, refuses_insecure_dir);
	tcase_add_test(tc, rescans_for_unknown_task);
	tcase_add_test(tc, missing_dir);
	tcase_add_test(tc, ignores_other_files);
	suite_add_tcase(s, tc);
	return s;
}
