/* Standard base64 with padding, both ways: bytes that are not text travel in JSON as
 * "<key>_base64" strings (job inputs, results, errors). */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *th_base64_encode(const void *data, size_t n)
{
	const unsigned char *p = data;
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? b64[v & 63] : '=';
	}
	*o = 0;
	return out;
}

int th_base64_decode(const char *s, size_t slen, unsigned char **out, size_t *len)
{
	if (slen % 4)
		return TH_EINVAL;
	unsigned char *buf = malloc(slen / 4 * 3 + 1), *o = buf;
	if (!buf)
		return TH_ENOMEM;
	for (size_t i = 0; i < slen; i += 4) {
		uint32_t v = 0;
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			const char *c = s[i + k] ? strchr(b64, s[i + k]) : NULL;
			/* '=' only as the last one or two characters of the text */
			if (s[i + k] == '=' && i + 4 == slen && k >= 2 && (k == 3 || s[i + 3] == '=')) {
				pad++;
				v <<= 6;
			} else if (!c || pad) {
				free(buf);
				return TH_EINVAL;
			} else {
				v = v << 6 | (uint32_t)(c - b64);
			}
		}
		/* the bits past the last byte must be zero: one text per bytes */
		if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff))) {
			free(buf);
			return TH_EINVAL;
		}
		*o++ = (unsigned char)(v >> 16);
		if (pad < 2)
			*o++ = (unsigned char)(v >> 8);
		if (pad < 1)
			*o++ = (unsigned char)v;
	}
	*o = 0;
	*out = buf;
	*len = (size_t)(o - buf);
	return 0;
}
