/* The host's HTTP/JSON API: served by `taskhost run` on the unix socket api.sock in the
 * data dir and on the config's listen addresses (with TLS when it names a key pair). */
#ifndef TH_SERVER_H
#define TH_SERVER_H

#include <stddef.h>

#include "config.h"
#include "service.h"

typedef struct th_server th_server;

/* The socket's name in the data dir. */
#define TH_SERVER_SOCKET "api.sock"
/* The largest request body: twice max_input_size (an input escaped or base64'd) and
 * room for JSON's own bytes. */
#define TH_SERVER_MAX_BODY(max_input) ((size_t)(max_input) * 2 + (64u << 10))

/* Reads the token file and the TLS files as th_server_start will: err says what is
 * wrong with them, before anything else starts. */
int th_server_check(const th_config *cfg, char *err, size_t errlen);
/* Starts serving svc as cfg says (cfg must outlive the server). On failure err holds one
 * line naming the key or file at fault. */
int th_server_start(th_server **out, th_service *svc, const th_config *cfg, char *err,
		    size_t errlen);
/* Rereads the token file (SIGHUP); on failure the tokens read before stay, and err
 * says why. */
int th_server_reload(th_server *srv, char *err, size_t errlen);
/* Stops accepting, answers what is queued, closes the listeners. NULL is fine. */
void th_server_stop(th_server *srv);

#endif
