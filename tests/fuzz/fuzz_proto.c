/* libFuzzer target: the worker protocol decoder. Whatever it accepts must encode back
 * to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proc/proc_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	th_msg m;
	if (th_proto_decode(data, size, &m) != 0)
		return 0;
	size_t len;
	uint8_t *frame = th_proto_encode(&m, &len);
	if (!frame)
		abort();
	/* the frame is the 4-byte length and then exactly the body that was decoded */
	if (len != size + 4 || memcmp(frame + 4, data, size) != 0)
		abort();
	free(frame);
	return 0;
}
