#include <check.h>
Suite *service_suite(void);
Suite *service_suite(void) { return suite_create("service"); }
