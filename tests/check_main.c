/* The Check runner: every suite, then one summary line the test scripts add up.
 * CK_RUN_SUITE / CK_RUN_CASE select parts as usual with Check. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

Suite *record_suite(void);
Suite *config_suite(void);
Suite *cron_suite(void);
Suite *store_suite(void);
Suite *plugins_suite(void);
Suite *service_suite(void);
Suite *processor_suite(void);
Suite *seed_suite(void);
Suite *process_suite(void);
Suite *lifecycle_suite(void);
Suite *datadir_suite(void);
Suite *rules_suite(void);
Suite *jobjson_suite(void);
Suite *conformance_suite(void);
Suite *server_suite(void);
Suite *log_suite(void);

int main(void)
{
	SRunner *sr = srunner_create(record_suite());
	srunner_add_suite(sr, config_suite());
	srunner_add_suite(sr, cron_suite());
	srunner_add_suite(sr, store_suite());
	srunner_add_suite(sr, plugins_suite());
	srunner_add_suite(sr, service_suite());
	srunner_add_suite(sr, processor_suite());
	srunner_add_suite(sr, seed_suite());
	srunner_add_suite(sr, process_suite());
	srunner_add_suite(sr, lifecycle_suite());
	srunner_add_suite(sr, datadir_suite());
	srunner_add_suite(sr, rules_suite());
	srunner_add_suite(sr, jobjson_suite());
	srunner_add_suite(sr, conformance_suite());
	srunner_add_suite(sr, server_suite());
	srunner_add_suite(sr, log_suite());
	srunner_run_all(sr, CK_NORMAL);
	int run = srunner_ntests_run(sr), failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	printf("RESULT: %d passed, %d failed\n", run - failed, failed);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
