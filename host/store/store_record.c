/* Job record encoding and decoding.
 * The decoder treats its input as untrusted: it is the first thing a damaged file reaches. */
#include "store/store_record.h"

#include <string.h>

#include "bytes.h"
#include "error.h"

/* version, status, attempts, max_attempts, id, added, started, finished, input_len,
 * result_len, claim_gen, owner, owner_pid, priority, flags, due, timeout_ms,
 * backoff_ms, parent, last_run, fires, then task and queue strings */
#define FIXED_LEN (1 + 1 + 4 + 4 + 8 * 8 + 4 + 4 + 4 + 8 + 4 + 4 + 8 + 8 + 4)

static uint8_t *put_str(uint8_t *p, const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	*p++ = (uint8_t)n;
	memcpy(p, s, n);
	return p + n;
}

size_t th_record_encode(const th_job *job, uint8_t *buf)
{
	uint8_t *p = buf;
	*p++ = TH_RECORD_VERSION;
	*p++ = (uint8_t)job->status;
	p = th_put_le32(p, job->attempts);
	p = th_put_le32(p, job->max_attempts);
	p = th_put_le64(p, job->id);
	p = th_put_le64(p, (uint64_t)job->added_us);
	p = th_put_le64(p, (uint64_t)job->started_us);
	p = th_put_le64(p, (uint64_t)job->finished_us);
	p = th_put_le64(p, job->input_len);
	p = th_put_le64(p, job->result_len);
	p = th_put_le64(p, job->claim_gen);
	p = th_put_le64(p, job->owner);
	p = th_put_le32(p, job->owner_pid);
	p = th_put_le32(p, (uint32_t)job->priority);
	p = th_put_le32(p, job->flags);
	p = th_put_le64(p, (uint64_t)job->due_us);
	p = th_put_le32(p, job->timeout_ms);
	p = th_put_le32(p, job->backoff_ms);
	p = th_put_le64(p, job->parent);
	p = th_put_le64(p, job->last_run);
	p = th_put_le32(p, job->fires);
	p = put_str(p, job->task, TH_TASK_NAME_MAX);
	p = put_str(p, job->queue, TH_QUEUE_NAME_MAX);
	return (size_t)(p - buf);
}

static int get_str(const uint8_t **p, const uint8_t *end, char *out, size_t max)
{
	if (*p >= end)
		return TH_EFORMAT;
	size_t n = **p;
	(*p)++;
	if (n > max || (size_t)(end - *p) < n || memchr(*p, 0, n))
		return TH_EFORMAT;
	memcpy(out, *p, n);
	out[n] = 0;
	*p += n;
	return 0;
}

int th_record_decode(const void *data, size_t len, th_job *job)
{
	const uint8_t *p = data, *end = p + len;
	if (len < FIXED_LEN || p[0] != TH_RECORD_VERSION)
		return TH_EFORMAT;
	memset(job, 0, sizeof(*job));
	job->status = (th_job_status)p[1];
	if (!th_job_status_name(job->status))
		return TH_EFORMAT;
	p += 2;
	job->attempts = th_get_le32(p), p += 4;
	job->max_attempts = th_get_le32(p), p += 4;
	job->id = th_get_le64(p), p += 8;
	job->added_us = (int64_t)th_get_le64(p), p += 8;
	job->started_us = (int64_t)th_get_le64(p), p += 8;
	job->finished_us = (int64_t)th_get_le64(p), p += 8;
	job->input_len = th_get_le64(p), p += 8;
	job->result_len = th_get_le64(p), p += 8;
	job->claim_gen = th_get_le64(p), p += 8;
	job->owner = th_get_le64(p), p += 8;
	job->owner_pid = th_get_le32(p), p += 4;
	job->priority = (int32_t)th_get_le32(p), p += 4;
	job->flags = th_get_le32(p), p += 4;
	job->due_us = (int64_t)th_get_le64(p), p += 8;
	job->timeout_ms = th_get_le32(p), p += 4;
	job->backoff_ms = th_get_le32(p), p += 4;
	job->parent = th_get_le64(p), p += 8;
	job->last_run = th_get_le64(p), p += 8;
	job->fires = th_get_le32(p), p += 4;
	if (get_str(&p, end, job->task, TH_TASK_NAME_MAX) ||
	    get_str(&p, end, job->queue, TH_QUEUE_NAME_MAX) || p != end || !job->task[0])
		return TH_EFORMAT;
	return 0;
}
