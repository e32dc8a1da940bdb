/* libFuzzer target: the config parser, on any text. It must not crash, and what it
 * accepts must be within the documented ranges. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	th_config c;
	char err[1024];
	/* "/" is a directory that exists: the default plugin dir, "//plugins", does not,
	 * so files that set none fail late, after everything else was parsed */
	if (th_config_parse(&c, "/fuzz.ini", text, err, sizeof(err)) == 0) {
		if (c.args.max_threads < 1 || c.args.max_threads > 1024 || c.max_attempts < 1 ||
		    c.log_level < TH_LOG_ERROR || c.log_level > TH_LOG_DEBUG ||
		    c.max_map_size < c.map_size || !c.data_dir || !c.plugin_dir)
			abort();
		th_config_free(&c);
	} else if (!err[0]) {
		abort(); /* a refusal always says why */
	}
	free(text);
	return 0;
}
