/* Config parsing: defaults, every key, relative paths, sizes and durations, and the
 * one-line errors with file and line. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "error.h"
#include "log.h"
#include "store/store.h"
#include "testutil.h"

static char *dir, *name;
static char err[1024];

static void setup(void)
{
	dir = tu_tmpdir();
	char p[4096];
	snprintf(p, sizeof(p), "%s/plugins", dir);
	mkdir(p, 0755);
	ck_assert(asprintf(&name, "%s/taskhost.ini", dir) > 0);
	err[0] = 0;
}

static void teardown(void)
{
	tu_rmtree(dir);
	free(dir);
	free(name);
}

START_TEST(defaults)
{
	th_config c;
	ck_assert_int_eq(th_config_parse(&c, name, "", err, sizeof(err)), 0);
	char want[4096];
	snprintf(want, sizeof(want), "%s/var", dir);
	ck_assert_str_eq(c.data_dir, want);
	snprintf(want, sizeof(want), "%s/plugins", dir);
	ck_assert_str_eq(c.plugin_dir, want);
	ck_assert_int_eq(c.log_level, TH_LOG_INFO);
	ck_assert_str_eq(c.strategy, "simple");
	ck_assert(c.args.wait_time == 1.0);
	ck_assert_uint_eq(c.args.max_threads, 5);
	ck_assert(c.grace_period == 30);
	ck_assert_int_eq(c.durability, TH_DURABLE);
	ck_assert_uint_eq(c.max_input_size, 16u << 20);
	th_config_free(&c);
}
END_TEST

START_TEST(every_key)
{
	const char *text = "; comment\n"
			   "# another\n"
			   "[host]\n"
			   "data_dir   = ./state/db   ; inline comment\n"
			   "plugin_dir = plugins\n"
			   "log_level  = debug\n"
			   "log_format = json\n"
			   "grace_period = 2m\n"
			   "map_size = 8MiB\n"
			   "max_map_size = 1 GiB\n"
			   "durability = relaxed\n"
			   "max_input_size = 64K\n"
			   "max_result_size = 1048576\n"
			   "[processor]\n"
			   "strategy    = multi\n"
			   "max_threads = 16\n"
			   "wait_time   = 250ms\n";
	th_config c;
	ck_assert_int_eq(th_config_parse(&c, name, text, err, sizeof(err)), 0);
	char want[4096];
	snprintf(want, sizeof(want), "%s/state/db", dir);
	ck_assert_str_eq(c.data_dir, want);
	ck_assert_int_eq(c.data_dir_line, 4);
	ck_assert_int_eq(c.log_level, TH_LOG_DEBUG);
	ck_assert_int_eq(c.log_format, TH_LOG_JSON);
	ck_assert(c.grace_period == 120);
	ck_assert_uint_eq(c.map_size, 8u << 20);
	ck_assert_uint_eq(c.max_map_size, 1u << 30);
	ck_assert_int_eq(c.durability, TH_RELAXED);
	ck_assert_uint_eq(c.max_input_size, 64u << 10);
	ck_assert_uint_eq(c.max_result_size, 1048576);
	ck_assert_str_eq(c.strategy, "multi");
	ck_assert_uint_eq(c.args.max_threads, 16);
	ck_assert(c.args.wait_time > 0.2499 && c.args.wait_time < 0.2501);
	th_config_free(&c);
}
END_TEST

START_TEST(queue_sections)
{
	const char *text = "[host]\nkeep_finished = 7d\n"
			   "[queue mail]\nstrategy = multi\nmax_threads = 3\n"
			   "[queue reports]\nwait_time = 5s\n"
			   "[processor]\nstrategy = simple\n";
	th_config c;
	ck_assert_int_eq(th_config_parse(&c, name, text, err, sizeof(err)), 0);
	ck_assert(c.keep_finished == 7 * 86400);
	ck_assert_uint_eq(c.nqueues, 2);
	ck_assert_str_eq(c.queues[0].name, "mail");
	ck_assert_str_eq(c.queues[0].strategy, "multi");
	ck_assert_uint_eq(c.queues[0].args.max_threads, 3);
	ck_assert_str_eq(c.queues[1].name, "reports");
	ck_assert_str_eq(c.queues[1].strategy, "simple");
	ck_assert(c.queues[1].args.wait_time == 5);
	ck_assert_str_eq(c.strategy, "simple");
	th_config_free(&c);
}
END_TEST

START_TEST(absolute_paths_kept)
{
	char text[4096];
	snprintf(text, sizeof(text), "[host]\nplugin_dir = %s/plugins\ndata_dir = /var/x\n", dir);
	th_config c;
	ck_assert_int_eq(th_config_parse(&c, name, text, err, sizeof(err)), 0);
	ck_assert_str_eq(c.data_dir, "/var/x");
	th_config_free(&c);
}
END_TEST

START_TEST(api_keys)
{
	th_config c;
	ck_assert_int_eq(th_config_parse(&c, name, "[host]\nlisten = 127.0.0.1:7070\n"
					 "listen = [::1]:7071\ntoken_file = /etc/t\n"
					 "tls_cert = /c.pem\ntls_key = /k.pem\nmax_connections = 50\n"
					 "connection_timeout = 10s\nmax_batch = 7\n", err, sizeof(err)), 0);
	ck_assert_uint_eq(c.nlisten, 2);
	char host[TH_LISTEN_LEN];
	unsigned port;
	ck_assert_int_eq(th_config_split_listen(c.listen[1], host, sizeof(host), &port), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_uint_eq(port, 7071);
	ck_assert_str_eq(c.token_file, "/etc/t");
	ck_assert_str_eq(c.tls_cert, "/c.pem");
	ck_assert_str_eq(c.tls_key, "/k.pem");
	ck_assert_uint_eq(c.max_connections, 50);
	ck_assert(c.connection_timeout == 10);
	ck_assert_uint_eq(c.max_batch, 7);
	th_config_free(&c);
}
END_TEST

static void expect_error(const char *text, int line, const char *msg)
{
	th_config c;
	ck_assert_int_eq(th_config_parse(&c, name, text, err, sizeof(err)), TH_ECONFIG);
	char want[2048];
	snprintf(want, sizeof(want), "%s:%d: %s", name, line, msg);
	if (*msg)
		ck_assert_str_eq(err, want);
	else /* only the place */
		ck_assert_int_eq(strncmp(err, want, strlen(want)), 0);
}

/* TH_QUEUES_MAX sections are taken; one more says the limit, on its own line */
START_TEST(queue_limit)
{
	char text[8192] = "[host]\n";
	for (int i = 1; i <= TH_QUEUES_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "[queue q%d]\n", i);
	th_config c;
	ck_assert_int_eq(th_config_parse(&c, name, text, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.nqueues, TH_QUEUES_MAX);
	th_config_free(&c);
	strcat(text, "[queue q0]\nstrategy = multi\n");
	char msg[256];
	snprintf(msg, sizeof(msg), "[queue q0]: too many [queue NAME] sections (at most %d)",
		 TH_QUEUES_MAX);
	expect_error(text, TH_QUEUES_MAX + 2, msg);
}
END_TEST

START_TEST(errors_name_file_and_line)
{
	expect_error("[host]\n\n\nfoo = 1\n", 4, "unknown key 'foo' in [host]");
	expect_error("[processor]\nmax_thread = 4\n", 2, "unknown key 'max_thread' in [processor]");
	expect_error("[host]\n[extra]\n", 2, "unknown section [extra] (expected [host], "
		     "[processor] or [queue NAME] with NAME of letters, digits, '_', '.', '-')");
	expect_error("[queue bad name]\n", 1, "unknown section [queue bad name] (expected "
		     "[host], [processor] or [queue NAME] with NAME of letters, digits, '_', '.', "
		     "'-')");
	expect_error("[queue mail]\nmax_thread = 3\n", 2, "unknown key 'max_thread' in "
		     "[queue mail]");
	expect_error("[queue mail]\nstrategy = fast\n", 2, "bad value 'fast' for strategy in "
		     "[queue mail]: expected simple, multi or process");
	expect_error("[host]\nkeep_finished = forever\n", 2, "bad value 'forever' for "
		     "keep_finished in [host]: expected a duration such as 7d or 12h (from 1s "
		     "to 3650d), or 0 to keep them");
	/* numbers past their range, which in microseconds or bytes would overflow */
	expect_error("[host]\nkeep_finished = 1e300\n", 2, "bad value '1e300' for "
		     "keep_finished in [host]: expected a duration such as 7d or 12h (from 1s "
		     "to 3650d), or 0 to keep them");
	expect_error("[host]\ngrace_period = 99999999999999999999d\n", 2, "bad value "
		     "'99999999999999999999d' for grace_period in [host]: expected a duration "
		     "such as 30s, 500ms or 2m (at most 1d)");
	expect_error("[processor]\njob_timeout = 1e300\n", 2, "bad value '1e300' for "
		     "job_timeout in [processor]: expected a duration such as 1.0, 250ms or 30s "
		     "(at most 7d)");
	expect_error("[processor]\nkill_grace = nan\n", 2, "bad value 'nan' for kill_grace in "
		     "[processor]: expected a duration such as 1.0, 250ms or 30s (at most 1d)");
	expect_error("[processor]\nwait_time = inf\n", 2, "bad value 'inf' for wait_time in "
		     "[processor]: expected a duration such as 1.0, 250ms or 30s (at most 1d)");
	expect_error("[host]\nmax_map_size = 1e30\n", 2, "bad value '1e30' for max_map_size "
		     "in [host]: expected a size such as 64MiB, 1GiB or 4096");
	expect_error("[host]\nmax_map_size = 100TiB\n", 2, "max_map_size in [host] must be "
		     "from 1MiB to 64TiB");
	expect_error("[host]\nmax_attempts = 99999999999999999999\n", 2, "bad value "
		     "'99999999999999999999' for max_attempts in [host]: expected a whole number "
		     "from 1 to 1000");
	expect_error("[processor]\nworker_max_jobs = -1\n", 2, "bad value '-1' for "
		     "worker_max_jobs in [processor]: expected a whole number from 0 to 1000000000");
	expect_error("[processor]\nmax_threads = 1025\n", 2,
		     "bad value '1025' for max_threads in [processor]: expected a whole number "
		     "from 1 to 1024");
	expect_error("[processor]\nmax_threads = 4x\n", 2,
		     "bad value '4x' for max_threads in [processor]: expected a whole number "
		     "from 1 to 1024");
	expect_error("[processor]\nwait_time = -1\n", 2,
		     "bad value '-1' for wait_time in [processor]: expected a duration such as "
		     "1.0, 250ms or 30s (at most 1d)");
	expect_error("[host]\nlog_format = xml\n", 2,
		     "bad value 'xml' for log_format in [host]: expected text or json");
	expect_error("[host]\ndurability = maybe\n", 2,
		     "bad value 'maybe' for durability in [host]: expected durable or relaxed");
	expect_error("[host]\nmap_size = 10KiB\n", 2, "map_size in [host] must be from 1MiB to 64TiB");
	expect_error("[host]\nmax_input_size = 0\n", 2,
		     "max_input_size in [host] must be between 1 byte and 1GiB");
	expect_error("[host]\ndata_dir =\n", 2, "empty value for data_dir in [host]");
	expect_error("[host]\nlog_level = info\nlog_level = debug\n", 3,
		     "'log_level' given twice in [host]");
	expect_error("[host]\nno equals sign here\n", 2,
		     "syntax error: expected [section], key = value, or a comment");
	expect_error("key = value\n", 1,
		     "key 'key' outside any section (put it under [host] or [processor])");
	expect_error("[host]\ndata_dir = \"./var\"\n", 2,
		     "value of data_dir in [host] starts with a quote: values are taken as "
		     "written, without quotes");
	expect_error("[host]\nmax_map_size = 1M\n", 2,
		     "max_map_size (1048576 bytes) is smaller than map_size (67108864 bytes)");
	expect_error("[host]\nlisten = ::1:7070\n", 2, "bad value '::1:7070' for listen in [host]: "
		     "expected HOST:PORT such as 127.0.0.1:7070 or [::1]:7070");
	expect_error("[host]\nlisten = 127.0.0.1:70000\n", 2, "bad value '127.0.0.1:70000' for "
		     "listen in [host]: expected HOST:PORT such as 127.0.0.1:7070 or [::1]:7070");
	expect_error("[host]\nlisten = [::1]:7070\n", 2, "listen in [host] needs token_file: "
		     "without tokens only the unix socket in the data dir is served");
	expect_error("[host]\ntoken_file = t\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n"
		     "listen = 127.0.0.1:3\nlisten = 127.0.0.1:4\nlisten = 127.0.0.1:5\n"
		     "listen = 127.0.0.1:6\nlisten = 127.0.0.1:7\nlisten = 127.0.0.1:8\n"
		     "listen = 127.0.0.1:9\n", 11, "too many listen lines in [host] (at most 8)");
	expect_error("[host]\nmax_connections = 0\n", 2, "bad value '0' for max_connections in "
		     "[host]: expected a whole number from 1 to 10000");
	expect_error("[host]\nmax_batch = lots\n", 2, "bad value 'lots' for max_batch in "
		     "[host]: expected a whole number from 1 to 100000");
	expect_error("[host]\nconnection_timeout = 0.5s\n", 2, "bad value '0.5s' for "
		     "connection_timeout in [host]: expected a duration from 1s to 1h");
	expect_error("[host]\ntls_key = k\ntls_key = k\n", 3, "'tls_key' given twice in [host]");
	char longline[400];
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "[host]\ndata_dir = ", 18);
	longline[sizeof(longline) - 1] = 0;
	expect_error(longline, 2, "line longer than 198 characters");
}
END_TEST

START_TEST(directory_errors)
{
	expect_error("[host]\nplugin_dir = ./missing\n", 2, "");
	ck_assert_ptr_nonnull(strstr(err, "plugin_dir '"));
	ck_assert_ptr_nonnull(strstr(err, "/missing': no such directory"));
	th_config c;
	tu_rmtree(dir);
	mkdir(dir, 0755);
	ck_assert_int_eq(th_config_parse(&c, name, "", err, sizeof(err)), TH_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "(the default, as the file sets none)"));
	ck_assert_int_eq(th_config_load(&c, "/no/such/taskhost.ini", err, sizeof(err)),
			 TH_ECONFIG);
	ck_assert_str_eq(err, "/no/such/taskhost.ini: cannot open: No such file or directory");
}
END_TEST

/* store: a URL as it is, a plain directory from the file's; TASKHOST_STORE over both */
START_TEST(store_url)
{
	th_config c;
	ck_assert_int_eq(th_config_parse(&c, name, "[host]\n", err, sizeof(err)), 0);
	ck_assert_ptr_null(c.store);
	th_config_free(&c);
	ck_assert_int_eq(th_config_parse(&c, name, "[host]\nstore = postgresql://u@db/jobs\n",
					 err, sizeof(err)), 0);
	ck_assert_str_eq(c.store, "postgresql://u@db/jobs");
	ck_assert_str_eq(th_config_store(&c), "postgresql://u@db/jobs");
	setenv("TASKHOST_STORE", "lmdb:/elsewhere", 1);
	ck_assert_str_eq(th_config_store(&c), "lmdb:/elsewhere");
	unsetenv("TASKHOST_STORE");
	th_config_free(&c);
	ck_assert_int_eq(th_config_parse(&c, name, "[host]\nstore = jobs\n", err, sizeof(err)),
			 0);
	char want[4096];
	snprintf(want, sizeof(want), "%s/jobs", dir);
	ck_assert_str_eq(c.store, want);
	th_config_free(&c);
	expect_error("[host]\nstore =\n", 2, "empty value for store in [host]");
}
END_TEST

START_TEST(max_map_below_map)
{
	expect_error("[host]\nmap_size = 2GiB\nmax_map_size = 1GiB\n", 3,
		     "max_map_size (1073741824 bytes) is smaller than map_size (2147483648 bytes)");
}
END_TEST

START_TEST(not_files_or_dirs)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/afile", dir);
	fclose(fopen(p, "w"));
	expect_error("[host]\nplugin_dir = afile\n", 2, "");
	ck_assert_ptr_nonnull(strstr(err, "/afile': not a directory"));
	th_config c;
	ck_assert_int_eq(th_config_load(&c, dir, err, sizeof(err)), TH_ECONFIG);
	char want[4096];
	snprintf(want, sizeof(want), "%s: cannot open: Is a directory", dir);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(makes_data_dir)
{
	th_config c;
	ck_assert_int_eq(th_config_parse(&c, name, "[host]\ndata_dir = a/b/c\n", err, sizeof(err)),
			 0);
	ck_assert_int_eq(th_config_make_data_dir(&c, err, sizeof(err)), 0);
	struct stat sb;
	ck_assert_int_eq(stat(c.data_dir, &sb), 0);
	ck_assert(S_ISDIR(sb.st_mode));
	ck_assert_int_eq(th_config_make_data_dir(&c, err, sizeof(err)), 0); /* again: fine */
	th_config_free(&c);
}
END_TEST

START_TEST(sizes_and_durations)
{
	uint64_t v;
	ck_assert_int_eq(th_parse_size("4096", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(th_parse_size("1.5K", &v), 0);
	ck_assert_uint_eq(v, 1536);
	ck_assert_int_eq(th_parse_size("2 GiB", &v), 0);
	ck_assert_uint_eq(v, 2ull << 30);
	ck_assert_int_eq(th_parse_size("1tb", &v), 0);
	ck_assert_uint_eq(v, 1ull << 40);
	ck_assert_int_eq(th_parse_size("-1", &v), TH_EINVAL);
	ck_assert_int_eq(th_parse_size("MiB", &v), TH_EINVAL);
	ck_assert_int_eq(th_parse_size("5 parsecs", &v), TH_EINVAL);
	ck_assert_int_eq(th_parse_size("99999999999T", &v), TH_EINVAL);
	double d;
	ck_assert_int_eq(th_parse_duration("1.5", &d), 0);
	ck_assert(d == 1.5);
	ck_assert_int_eq(th_parse_duration("500ms", &d), 0);
	ck_assert(d > 0.4999 && d < 0.5001);
	ck_assert_int_eq(th_parse_duration("2m", &d), 0);
	ck_assert(d == 120);
	ck_assert_int_eq(th_parse_duration("7d", &d), 0);
	ck_assert(d == 7 * 86400);
	ck_assert_int_eq(th_parse_duration("1h", &d), 0);
	ck_assert(d == 3600);
	ck_assert_int_eq(th_parse_duration("soon", &d), TH_EINVAL);
	ck_assert_int_eq(th_parse_duration("-3s", &d), TH_EINVAL);
	ck_assert_int_eq(th_parse_duration("3 fortnights", &d), TH_EINVAL);
	ck_assert_int_eq(th_parse_duration("nan", &d), TH_EINVAL);
	ck_assert_int_eq(th_parse_duration("inf", &d), TH_EINVAL);
}
END_TEST

Suite *config_suite(void);
Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults);
	tcase_add_test(tc, every_key);
	tcase_add_test(tc, api_keys);
	tcase_add_test(tc, store_url);
	tcase_add_test(tc, queue_sections);
	tcase_add_test(tc, queue_limit);
	tcase_add_test(tc, absolute_paths_kept);
	tcase_add_test(tc, errors_name_file_and_line);
	tcase_add_test(tc, directory_errors);
	tcase_add_test(tc, max_map_below_map);
	tcase_add_test(tc, not_files_or_dirs);
	tcase_add_test(tc, makes_data_dir);
	tcase_add_test(tc, sizes_and_durations);
	suite_add_tcase(s, tc);
	return s;
}
