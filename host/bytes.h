/* Fixed-width integers in byte buffers: little-endian for the job record and the
 * worker protocol, big-endian for LMDB keys (so that they sort as numbers). Each put
 * returns the position after what it wrote. */
#ifndef TH_BYTES_H
#define TH_BYTES_H

#include <stdint.h>

static inline uint8_t *th_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static inline uint8_t *th_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static inline uint32_t th_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t th_get_le64(const uint8_t *p)
{
	return (uint64_t)th_get_le32(p) | (uint64_t)th_get_le32(p + 4) << 32;
}

static inline uint8_t *th_put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
	return p + 4;
}

static inline uint8_t *th_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
	return p + 8;
}

static inline uint32_t th_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t th_get_be64(const uint8_t *p)
{
	return (uint64_t)th_get_be32(p) << 32 | th_get_be32(p + 4);
}

#endif
