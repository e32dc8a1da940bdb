/* Tasks for the benchmarks: "stamp" returns the monotonic time its run started (8 bytes,
 * nanoseconds), so the harness can measure how long a job waited to start; "peer", the
 * peers benchmark's job in hosts of their own (peer_taskhost_pg.c), sends that time and its
 * input to the harness, one datagram to the unix socket named by BENCH_STARTS. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "taskhost.h"

#define PEER_INPUT_MAX 64

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static th_ret stamp(th_ctx *ctx)
{
	int64_t ns = now_ns();
	th_set_result(ctx, &ns, sizeof(ns));
	return TH_OK;
}

static th_ret peer(th_ctx *ctx)
{
	int64_t ns = now_ns();
	size_t len;
	const void *in = th_input(ctx, &len);
	const char *path = getenv("BENCH_STARTS");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char msg[sizeof(ns) + PEER_INPUT_MAX];
	if (!path || strlen(path) >= sizeof(sa.sun_path) || len > PEER_INPUT_MAX)
		return TH_FAIL;
	strcpy(sa.sun_path, path);
	memcpy(msg, &ns, sizeof(ns));
	memcpy(msg + sizeof(ns), in, len);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	/* blocks while the harness's queue is full: no start is lost */
	bool sent = fd >= 0 && sendto(fd, msg, sizeof(ns) + len, 0, (struct sockaddr *)&sa,
				      sizeof(sa)) == (ssize_t)(sizeof(ns) + len);
	if (fd >= 0)
		close(fd);
	return sent ? TH_OK : TH_FAIL;
}

static const th_task tasks[] = {
	{.name = "stamp", .description = "returns when its run started", .run = stamp},
	{.name = "peer", .description = "tells the peers benchmark that it started", .run = peer},
};

TH_PLUGIN(.name = "bench", .version = "1", TH_TASKS(tasks))
