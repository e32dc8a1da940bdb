/* The dashboard's sessions: a browser signs in once with a token and gets a session id
 * (its cookie) and a CSRF token that every change it asks for must carry. */
#ifndef TH_SERVER_SESSION_H
#define TH_SERVER_SESSION_H

#include "server_auth.h"

typedef struct th_sessions th_sessions;

#define TH_SESSION_ID_LEN 64    /* hex characters of a session id and of a CSRF token */
#define TH_SESSIONS_MAX 1024    /* the oldest goes when a new one would pass this */
#define TH_SESSION_TTL_S 43200  /* a session ends 12 h after it began */
#define TH_SESSION_NAME_MAX 63

int th_sessions_new(th_sessions **out);
void th_sessions_free(th_sessions *s);
/* A new session of a token's scope and name: its id and CSRF token (NUL-terminated). */
int th_sessions_add(th_sessions *s, enum th_scope scope, const char *name,
		    char id[TH_SESSION_ID_LEN + 1], char csrf[TH_SESSION_ID_LEN + 1]);
/* The scope of session id (TH_SCOPE_NONE: no such session, or it ended), its token's
 * name and its CSRF token. */
enum th_scope th_sessions_find(th_sessions *s, const char *id,
			       char name[TH_SESSION_NAME_MAX + 1],
			       char csrf[TH_SESSION_ID_LEN + 1]);
void th_sessions_drop(th_sessions *s, const char *id);

#endif
