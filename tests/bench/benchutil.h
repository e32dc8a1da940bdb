/* Helpers the benchmark harnesses share: clocks, scratch directories, fatal errors and
 * the median of repeated runs. */
#ifndef BENCHUTIL_H
#define BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

double bu_now_s(void);
int64_t bu_now_ns(void);
/* The value of an environment variable that must be set; exits otherwise. */
const char *bu_env(const char *name);
/* Prints "bench: what: cause" (a TH_E* code, or errno when rc is 0) and exits. */
void bu_die(const char *what, int rc);
/* A new directory under BENCH_DIR (malloc'd), and its removal with everything in it. */
char *bu_fresh_dir(void);
void bu_rm_dir(const char *dir);
/* Sorts v[0..n) and returns its median. */
double bu_median(double *v, size_t n);
int bu_cmp_double(const void *a, const void *b);
/* A TCP port free now on 127.0.0.1. */
unsigned bu_free_port(void);
/* `BENCH_TASKHOST -c cfg run`, its log in dir/host.log: its pid once it logged that it
 * started (processing and serving its API), or -1 after 30 s. */
pid_t bu_start_host(const char *dir, const char *cfg);

#endif
