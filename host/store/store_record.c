/* Job record encoding and decoding.
 * The decoder treats its input as untrusted: it is the first thing a damaged file reaches. */
#include "store/store_record.h"

#include <string.h>

#include "error.h"

/* version, status, attempts, max_attempts, id, added, started, finished, input_len,
 * result_len, claim_gen, owner, owner_pid, priority, flags, due, timeout_ms,
 * backoff_ms, parent, last_run, fires, then task and queue strings */
#define FIXED_LEN (1 + 1 + 4 + 4 + 8 * 8 + 4 + 4 + 4 + 8 + 4 + 4 + 8 + 8 + 4)

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

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
	p = put_u32(p, job->attempts);
	p = put_u32(p, job->max_attempts);
	p = put_u64(p, job->id);
	p = put_u64(p, (uint64_t)job->added_us);
	p = put_u64(p, (uint64_t)job->started_us);
	p = put_u64(p, (uint64_t)job->finished_us);
	p = put_u64(p, job->input_len);
	p = put_u64(p, job->result_len);
	p = put_u64(p, job->claim_gen);
	p = put_u64(p, job->owner);
	p = put_u32(p, job->owner_pid);
	p = put_u32(p, (uint32_t)job->priority);
	p = put_u32(p, job->flags);
	p = put_u64(p, (uint64_t)job->due_us);
	p = put_u32(p, job->timeout_ms);
	p = put_u32(p, job->backoff_ms);
	p = put_u64(p, job->parent);
	p = put_u64(p, job->last_run);
	p = put_u32(p, job->fires);
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
	job->attempts = get_u32(p), p += 4;
	job->max_attempts = get_u32(p), p += 4;
	job->id = get_u64(p), p += 8;
	job->added_us = (int64_t)get_u64(p), p += 8;
	job->started_us = (int64_t)get_u64(p), p += 8;
	job->finished_us = (int64_t)get_u64(p), p += 8;
	job->input_len = get_u64(p), p += 8;
	job->result_len = get_u64(p), p += 8;
	job->claim_gen = get_u64(p), p += 8;
	job->owner = get_u64(p), p += 8;
	job->owner_pid = get_u32(p), p += 4;
	job->priority = (int32_t)get_u32(p), p += 4;
	job->flags = get_u32(p), p += 4;
	job->due_us = (int64_t)get_u64(p), p += 8;
	job->timeout_ms = get_u32(p), p += 4;
	job->backoff_ms = get_u32(p), p += 4;
	job->parent = get_u64(p), p += 8;
	job->last_run = get_u64(p), p += 8;
	job->fires = get_u32(p), p += 4;
	if (get_str(&p, end, job->task, TH_TASK_NAME_MAX) ||
	    get_str(&p, end, job->queue, TH_QUEUE_NAME_MAX) || p != end || !job->task[0])
		return TH_EFORMAT;
	return 0;
}
