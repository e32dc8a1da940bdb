/* The worker protocol: what the host and a taskhost-runner worker process say to each
 * other over a socketpair. Length-prefixed frames, a version in the first one; the
 * decoder takes its input as untrusted (a worker may be half dead). */
#ifndef TH_PROTO_H
#define TH_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define TH_PROTO_VERSION 2
#define TH_PROTO_HEADER 5 /* u32 length of what follows, u8 type */

enum th_msg_type {
	TH_MSG_HELLO = 1,   /* worker: version, pid */
	TH_MSG_LOADING = 2, /* worker: about to load the plugin at text */
	TH_MSG_READY = 3,   /* worker: plugins loaded, count tasks */
	TH_MSG_RUN = 4,     /* host: run job id (attempt count) of task text with data */
	TH_MSG_LOG = 5,     /* worker: level, id (0: none), source, text */
	TH_MSG_DONE = 6,    /* worker: job id returned ret after took_us, result data, error text */
	TH_MSG_CANCEL = 7,  /* host: ask job id to stop */
	TH_MSG_QUIT = 8,    /* host: finish and exit */
	TH_MSG_PROGRESS = 9 /* worker: job id reported progress done, 0..1 */
};

/* A decoded message. Pointers point into the frame that was decoded; text fields are
 * NUL-free, with their length, and are not NUL-terminated. */
typedef struct th_msg {
	enum th_msg_type type;
	uint32_t version, pid, count, level, ret;
	uint64_t id;
	int64_t took_us;
	double done;
	const char *source;
	size_t source_len;
	const char *text; /* path, task, log message, error */
	size_t text_len;
	const void *data; /* input, result */
	size_t data_len;
} th_msg;

/* Encodes m into a malloc'd frame (header included); NULL when out of memory. */
uint8_t *th_proto_encode(const th_msg *m, size_t *len);
/* Decodes the body of one frame (what follows the header: type and fields);
 * TH_EFORMAT for anything malformed. */
int th_proto_decode(const uint8_t *body, size_t len, th_msg *m);

/* Writes one message to fd (all of it, retrying on EINTR); 0 or TH_EIO. */
int th_proto_send(int fd, const th_msg *m);
/* Reads one frame of at most max bytes into *buf (malloc'd, replaced each call) and
 * decodes it. TH_EIO on end of file or error, TH_ETOOBIG past max, TH_EFORMAT. */
int th_proto_recv(int fd, size_t max, uint8_t **buf, th_msg *m);

#endif
