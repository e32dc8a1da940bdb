/* GET /metrics: the Prometheus text format. Jobs by queue and status from the store's
 * counts, what this host counted since it started (metrics.c), the LMDB map, the
 * PostgreSQL connection. */
#include <stdbool.h>
#include <stdlib.h>

#include "api.h"
#include "error.h"
#include "metrics.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static int queue_gauges(void *ud, const char *queue,
			const uint64_t counts[TH_JOB_STATUS_MAX + 1])
{
	th_metrics_out *o = ud;
	for (int s = 1; s <= TH_JOB_STATUS_MAX; s++) {
		th_metrics_printf(o, "taskhost_jobs{queue=\"");
		th_metrics_label(o, *queue ? queue : "default");
		th_metrics_printf(o, "\",status=\"%s\"} %llu\n", th_job_status_name((th_job_status)s),
				  (unsigned long long)counts[s]);
	}
	return 0;
}

int th_api_metrics(th_api_req *r)
{
	/* a store that cannot be read (a PostgreSQL server away) still answers: the host's
	 * own counters and its connection state are what to look at then */
	th_metrics_out o = {0}, jobs = {0};
	int rc = th_service_count_queues(r->svc, queue_gauges, &jobs);
	th_metrics_printf(&o, "# HELP taskhost_jobs Jobs in the store by queue and status "
			  "(every host's; none while the store cannot be read).\n"
			  "# TYPE taskhost_jobs gauge\n");
	if (rc == 0 && jobs.buf)
		th_metrics_printf(&o, "%.*s", (int)jobs.len, jobs.buf);
	o.failed |= jobs.failed;
	free(jobs.buf);
	th_metrics_printf(&o, "# HELP taskhost_up Whether the store could be read (1) or not "
			  "(0).\n# TYPE taskhost_up gauge\ntaskhost_up %d\n", rc == 0);
	bool connected;
	uint64_t reconnects;
	if (th_service_store_connection(r->svc, &connected, &reconnects) == 0)
		th_metrics_printf(&o, "# HELP taskhost_store_connected Whether the connection to "
				  "the PostgreSQL store worked at its last use (1) or is lost (0).\n"
				  "# TYPE taskhost_store_connected gauge\ntaskhost_store_connected %d\n"
				  "# HELP taskhost_store_reconnects_total Times the connection to the "
				  "PostgreSQL store was made again after it was lost.\n"
				  "# TYPE taskhost_store_reconnects_total counter\n"
				  "taskhost_store_reconnects_total %llu\n", connected,
				  (unsigned long long)reconnects);
	th_metrics_write(th_service_metrics(r->svc), &o);
	th_commit_stats cs;
	th_commit_get_stats(r->api->commit, &cs);
	th_metrics_printf(&o, "# HELP taskhost_group_commits_total Commits of the writes "
			  "that arrived through the API together.\n# TYPE taskhost_group_commits_total "
			  "counter\ntaskhost_group_commits_total %llu\n",
			  (unsigned long long)cs.commits);
	uint64_t map, used;
	if (th_service_store_usage(r->svc, &map, &used) == 0)
		th_metrics_printf(&o, "# HELP taskhost_lmdb_map_size_bytes Size of the LMDB map "
				  "(it grows up to max_map_size).\n# TYPE taskhost_lmdb_map_size_bytes "
				  "gauge\ntaskhost_lmdb_map_size_bytes %llu\n# HELP "
				  "taskhost_lmdb_map_used_bytes Bytes of the map up to its last page "
				  "in use.\n# TYPE taskhost_lmdb_map_used_bytes gauge\n"
				  "taskhost_lmdb_map_used_bytes %llu\n", (unsigned long long)map,
				  (unsigned long long)used);
	if (o.failed) {
		free(o.buf);
		return th_api_fail(r, TH_ENOMEM, 0, "metrics");
	}
	r->status = 200;
	r->text = o.buf;
	r->text_len = o.len;
	r->content_type = PROM_CONTENT_TYPE;
	return 0;
}
