#include <check.h>
Suite *plugins_suite(void);
Suite *plugins_suite(void) { return suite_create("plugins"); }
