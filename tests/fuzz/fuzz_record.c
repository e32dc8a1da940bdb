/* libFuzzer target: the job record decoder. Whatever it accepts must encode back to the
 * same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	th_job job;
	if (th_record_decode(data, size, &job) != 0)
		return 0;
	uint8_t buf[TH_RECORD_MAX];
	size_t n = th_record_encode(&job, buf);
	if (n != size || memcmp(buf, data, n) != 0)
		abort();
	return 0;
}
