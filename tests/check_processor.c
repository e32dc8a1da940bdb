#include <check.h>
Suite *processor_suite(void);
Suite *processor_suite(void) { return suite_create("processor"); }
