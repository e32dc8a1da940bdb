#include <check.h>
Suite *seed_suite(void);
Suite *seed_suite(void) { return suite_create("seed"); }
