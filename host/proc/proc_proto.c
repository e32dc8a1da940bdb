/* Worker protocol frames: fixed little-endian integers (a double as its IEEE bits) and
 * u32-length-prefixed strings, one layout per message type, every length checked
 * against what is left. */
#include "proc/proc_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "error.h"
#include "fds.h"

/* The fields each type carries, in order. */
enum { F_END = 0, F_U32_VERSION, F_U32_PID, F_U32_COUNT, F_U32_LEVEL, F_U32_RET, F_U64_ID,
       F_I64_TOOK, F_F64_DONE, F_SOURCE, F_TEXT, F_DATA };

static const unsigned char layouts[][7] = {
	[TH_MSG_HELLO] = {F_U32_VERSION, F_U32_PID, F_END},
	[TH_MSG_LOADING] = {F_TEXT, F_END},
	[TH_MSG_READY] = {F_U32_COUNT, F_END},
	[TH_MSG_RUN] = {F_U64_ID, F_U32_COUNT, F_TEXT, F_DATA, F_END},
	[TH_MSG_LOG] = {F_U32_LEVEL, F_U64_ID, F_SOURCE, F_TEXT, F_END},
	[TH_MSG_DONE] = {F_U64_ID, F_U32_RET, F_I64_TOOK, F_DATA, F_TEXT, F_END},
	[TH_MSG_CANCEL] = {F_U64_ID, F_END},
	[TH_MSG_QUIT] = {F_END},
	[TH_MSG_PROGRESS] = {F_U64_ID, F_F64_DONE, F_END},
};

#define NTYPES (sizeof(layouts) / sizeof(layouts[0]))

static size_t field_size(const th_msg *m, int f)
{
	switch (f) {
	case F_U64_ID:
	case F_I64_TOOK:
	case F_F64_DONE: return 8;
	case F_SOURCE: return 4 + m->source_len;
	case F_TEXT: return 4 + m->text_len;
	case F_DATA: return 4 + m->data_len;
	}
	return 4;
}

static uint8_t *putbytes(uint8_t *p, const void *d, size_t n)
{
	p = th_put_le32(p, (uint32_t)n);
	if (n)
		memcpy(p, d, n);
	return p + n;
}

uint8_t *th_proto_encode(const th_msg *m, size_t *len)
{
	if (m->type == 0 || (size_t)m->type >= NTYPES)
		return NULL;
	const unsigned char *lay = layouts[m->type];
	size_t body = 1;
	for (int i = 0; lay[i] != F_END; i++)
		body += field_size(m, lay[i]);
	if (body > UINT32_MAX)
		return NULL;
	uint8_t *buf = malloc(4 + body), *p = buf;
	if (!buf)
		return NULL;
	p = th_put_le32(p, (uint32_t)body);
	*p++ = (uint8_t)m->type;
	for (int i = 0; lay[i] != F_END; i++) {
		switch (lay[i]) {
		case F_U32_VERSION: p = th_put_le32(p, m->version); break;
		case F_U32_PID: p = th_put_le32(p, m->pid); break;
		case F_U32_COUNT: p = th_put_le32(p, m->count); break;
		case F_U32_LEVEL: p = th_put_le32(p, m->level); break;
		case F_U32_RET: p = th_put_le32(p, m->ret); break;
		case F_U64_ID: p = th_put_le64(p, m->id); break;
		case F_I64_TOOK: p = th_put_le64(p, (uint64_t)m->took_us); break;
		case F_F64_DONE: {
			uint64_t bits;
			memcpy(&bits, &m->done, sizeof(bits));
			p = th_put_le64(p, bits);
			break;
		}
		case F_SOURCE: p = putbytes(p, m->source, m->source_len); break;
		case F_TEXT: p = putbytes(p, m->text, m->text_len); break;
		case F_DATA: p = putbytes(p, m->data, m->data_len); break;
		}
	}
	*len = (size_t)(p - buf);
	return buf;
}

int th_proto_decode(const uint8_t *body, size_t len, th_msg *m)
{
	memset(m, 0, sizeof(*m));
	if (len < 1 || body[0] == 0 || body[0] >= NTYPES)
		return TH_EFORMAT;
	m->type = (enum th_msg_type)body[0];
	const uint8_t *p = body + 1, *end = body + len;
	const unsigned char *lay = layouts[m->type];
	for (int i = 0; lay[i] != F_END; i++) {
		int f = lay[i];
		size_t left = (size_t)(end - p);
		if (f == F_U64_ID || f == F_I64_TOOK || f == F_F64_DONE) {
			if (left < 8)
				return TH_EFORMAT;
			uint64_t v = th_get_le64(p);
			p += 8;
			if (f == F_U64_ID) {
				m->id = v;
			} else if (f == F_I64_TOOK) {
				m->took_us = (int64_t)v;
			} else {
				memcpy(&m->done, &v, sizeof(v));
				if (!(m->done >= 0 && m->done <= 1)) /* NaN too */
					return TH_EFORMAT;
			}
			continue;
		}
		if (left < 4)
			return TH_EFORMAT;
		uint32_t v = th_get_le32(p);
		p += 4;
		left -= 4;
		switch (f) {
		case F_U32_VERSION: m->version = v; continue;
		case F_U32_PID: m->pid = v; continue;
		case F_U32_COUNT: m->count = v; continue;
		case F_U32_LEVEL: m->level = v; continue;
		case F_U32_RET: m->ret = v; continue;
		}
		if (v > left)
			return TH_EFORMAT;
		if (f != F_DATA && memchr(p, 0, v))
			return TH_EFORMAT; /* text never holds NUL */
		if (f == F_SOURCE) {
			m->source = (const char *)p;
			m->source_len = v;
		} else if (f == F_TEXT) {
			m->text = (const char *)p;
			m->text_len = v;
		} else {
			m->data = p;
			m->data_len = v;
		}
		p += v;
	}
	return p == end ? 0 : TH_EFORMAT;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return TH_EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int th_proto_send(int fd, const th_msg *m)
{
	size_t len;
	uint8_t *buf = th_proto_encode(m, &len);
	if (!buf)
		return TH_ENOMEM;
	int rc = th_write_all(fd, buf, len);
	free(buf);
	return rc;
}

int th_proto_recv(int fd, size_t max, uint8_t **buf, th_msg *m)
{
	uint8_t hdr[4];
	int rc = read_all(fd, hdr, 4);
	if (rc)
		return rc;
	uint32_t len = th_get_le32(hdr);
	if (len > max)
		return TH_ETOOBIG;
	uint8_t *b = realloc(*buf, len ? len : 1);
	if (!b)
		return TH_ENOMEM;
	*buf = b;
	if ((rc = read_all(fd, b, len)))
		return rc;
	return th_proto_decode(b, len, m);
}
