/* The on-disk encoding of a job record: explicit little-endian fields, a version byte
 * first, strings length-prefixed. Decoding checks every length and value. */
#ifndef TH_RECORD_H
#define TH_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "job.h"

#define TH_RECORD_VERSION 2
#define TH_RECORD_MAX 512

/* Encodes into buf (TH_RECORD_MAX bytes); returns the length. */
size_t th_record_encode(const th_job *job, uint8_t *buf);
/* 0, or TH_EFORMAT when the bytes are not a valid record of this version. */
int th_record_decode(const void *data, size_t len, th_job *job);

#endif
