/* libFuzzer target: the JSON decoding of every API request body. The first byte picks
 * the endpoint (a job, a batch, a wait, a cron update, a clean, a time); the rest is the
 * body.
 * Whatever a decoder accepts must hold together: input bytes, ids, bounds. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "server/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void job(json_t *j)
{
	th_new_job nj;
	th_add_opts o;
	void *input;
	char err[256];
	if (th_api_decode_job(j, &nj, &o, &input, err, sizeof(err)) == 0) {
		if (!nj.task || (nj.len && !nj.input) || o.max_attempts > 1000 || o.delay < 0)
			abort();
		const char *b64 = json_string_value(json_object_get(j, "input_base64"));
		if (b64) { /* decoded bytes encode back to the same text */
			char *again = th_base64_encode(nj.input, nj.len);
			if (!again || strcmp(again, b64) != 0)
				abort();
			free(again);
		}
	} else if (!memchr(err, 0, sizeof(err)) || !*err) {
		abort(); /* every refusal says why */
	}
	free(input);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	json_error_t e;
	json_t *j = json_loadb((const char *)data + 1, size - 1,
			       JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
	char err[256];
	switch (data[0] % 6) {
	case 0: /* POST /v1/jobs and POST /v1/cron */
		job(j);
		break;
	case 1: { /* POST /v1/jobs/batch */
		json_t *jobs = json_object_get(j, "jobs");
		for (size_t i = 0; i < json_array_size(jobs) && i < 64; i++)
			job(json_array_get(jobs, i));
		break;
	}
	case 2: { /* POST /v1/wait */
		uint64_t *ids;
		size_t n;
		double t;
		if (th_api_decode_wait(j, &ids, &n, &t, err, sizeof(err)) == 0) {
			if (!n || n > TH_API_WAIT_IDS_MAX || t < 0 || t > TH_API_WAIT_MAX_S)
				abort();
			for (size_t i = 0; i < n; i++)
				if (!ids[i])
					abort();
			free(ids);
		}
		break;
	}
	case 3: { /* PATCH /v1/cron/{id} */
		const char *spec;
		int catchup;
		if (th_api_decode_cron_update(j, &spec, &catchup, err, sizeof(err)) == 0 && !spec &&
		    catchup < 0)
			abort();
		break;
	}
	case 4: { /* POST /v1/clean */
		double older = -1;
		if (th_api_decode_clean(j, &older, err, sizeof(err)) == 0 &&
		    !(older >= 0 && older <= 36500 * 86400.0))
			abort();
		break;
	}
	default: { /* a time in a query or body */
		char *s = strndup((const char *)data + 1, size - 1);
		int64_t us;
		if (s && th_api_parse_time(s, &us) == 0 && us < 0)
			abort();
		free(s);
	}
	}
	json_decref(j);
	return 0;
}
