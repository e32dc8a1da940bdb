/* Job status names.
 * The words here are what the CLI prints and parses, so they are part of the contract. */
#include "job.h"

#include <ctype.h>
#include <string.h>

#include "error.h"

static const char *const names[TH_JOB_STATUS_MAX + 1] = {
	[TH_JOB_QUEUED] = "queued",       [TH_JOB_PROCESSING] = "processing",
	[TH_JOB_COMPLETED] = "completed", [TH_JOB_ERROR] = "error",
	[TH_JOB_CANCELLED] = "cancelled", [TH_JOB_DELAYED] = "delayed",
	[TH_JOB_HELD] = "held",           [TH_JOB_CRONJOB] = "cronjob",
};

const char *th_job_status_name(th_job_status s)
{
	return (int)s >= 1 && (int)s <= TH_JOB_STATUS_MAX ? names[s] : NULL;
}

int th_job_status_parse(const char *name, th_job_status *out)
{
	for (int i = 1; i <= TH_JOB_STATUS_MAX; i++) {
		if (names[i] && strcmp(names[i], name) == 0) {
			*out = (th_job_status)i;
			return 0;
		}
	}
	return TH_EINVAL;
}

bool th_job_status_final(th_job_status s)
{
	return s == TH_JOB_COMPLETED || s == TH_JOB_ERROR || s == TH_JOB_CANCELLED;
}

bool th_task_name_valid(const char *name)
{
	size_t n = strnlen(name, TH_TASK_NAME_MAX + 1);
	if (n == 0 || n > TH_TASK_NAME_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return false;
	return true;
}

bool th_queue_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n > TH_QUEUE_NAME_MAX)
		return false;
	for (const char *p = name; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-'))
			return false;
	return true;
}

double th_job_took(const th_job *j)
{
	return j->finished_us && j->started_us ? (double)(j->finished_us - j->started_us) / 1e6
					       : -1;
}
