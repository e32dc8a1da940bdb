/* Helpers the benchmark harnesses share: clocks, scratch directories, fatal errors and
 * the median of repeated runs. */
#include "benchutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

double bu_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t bu_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *bu_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "bench: %s is not set\n", name);
		exit(2);
	}
	return v;
}

void bu_die(const char *what, int rc)
{
	fprintf(stderr, "bench: %s: %s\n", what, rc ? th_strerror(rc) : strerror(errno));
	exit(1);
}

char *bu_fresh_dir(void)
{
	char *d;
	if (asprintf(&d, "%s/bench-XXXXXX", bu_env("BENCH_DIR")) < 0 || !mkdtemp(d))
		bu_die("mkdtemp", 0);
	return d;
}

void bu_rm_dir(const char *d)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", d);
}

int bu_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double bu_median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), bu_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A TCP port free now on 127.0.0.1. */
unsigned bu_free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(s, (struct sockaddr *)&sa, &len))
		bu_die("finding a free port", 0);
	close(s);
	return ntohs(sa.sin_port);
}

pid_t bu_start_host(const char *dir, const char *cfg)
{
	char log[4200];
	snprintf(log, sizeof(log), "%s/host.log", dir);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (!freopen(log, "w", stderr))
			_exit(126);
		execl(bu_env("BENCH_TASKHOST"), "taskhost", "-c", cfg, "run", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) {
		char buf[8192] = "";
		FILE *f = fopen(log, "r");
		if (f) {
			size_t got = fread(buf, 1, sizeof(buf) - 1, f);
			buf[got] = 0;
			fclose(f);
		}
		if (strstr(buf, "host: started"))
			return pid;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			fprintf(stderr, "bench: the host exited: %.2000s", buf);
			return -1;
		}
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL); /* it would hold the caller's stdout open */
	waitpid(pid, NULL, 0);
	return -1;
}
