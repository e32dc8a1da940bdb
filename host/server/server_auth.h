/* Bearer tokens for the HTTP API: a file of NAME SCOPE TOKEN lines, checked in constant
 * time, that must not be readable by group or others. */
#ifndef TH_SERVER_AUTH_H
#define TH_SERVER_AUTH_H

#include <stddef.h>

typedef struct th_auth th_auth;

/* What a token may do: each scope includes the ones before it. */
enum th_scope { TH_SCOPE_NONE = 0, TH_SCOPE_READ = 1, TH_SCOPE_WRITE = 2, TH_SCOPE_ADMIN = 3 };

#define TH_AUTH_TOKENS_MAX 1024
#define TH_AUTH_TOKEN_MIN 16  /* bytes: a shorter token is guessable */
#define TH_AUTH_TOKEN_MAX 256

/* Reads the token file; err names the file, the line and the cause. */
int th_auth_load(th_auth **out, const char *path, char *err, size_t errlen);
void th_auth_free(th_auth *a);
/* The scope of the token (TH_SCOPE_NONE when it is none of the file's); *name gets the
 * token's name for the log. Every token is compared, each in constant time. */
enum th_scope th_auth_check(const th_auth *a, const char *token, const char **name);
const char *th_auth_scope_name(enum th_scope s);

#endif
