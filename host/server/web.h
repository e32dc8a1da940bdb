/* The dashboard's files (host/server/web/), built into the binary as web.c, which the
 * build generates from them: no network, no JavaScript toolchain. */
#ifndef TH_SERVER_WEB_H
#define TH_SERVER_WEB_H

#include <stddef.h>

typedef struct th_web_file {
	const char *path; /* "/ui/app.js" */
	const char *type; /* its Content-Type */
	const char *data;
	size_t len;
} th_web_file;

/* The file served at path, or NULL. */
const th_web_file *th_web_find(const char *path);

#endif
