/* Standard base64 (RFC 4648, with padding). */
#ifndef TH_BASE64_H
#define TH_BASE64_H

#include <stddef.h>

/* A malloc'd NUL-terminated text; NULL when out of memory. */
char *th_base64_encode(const void *data, size_t n);
/* To bytes: a malloc'd buffer, NUL-terminated past *len; TH_EINVAL when s is not
 * base64, TH_ENOMEM. */
int th_base64_decode(const char *s, size_t slen, unsigned char **out, size_t *len);

#endif
