/* The host configuration: an INI file parsed with inih, every value validated, every
 * error naming the file, the line and the key. */
#ifndef TH_CONFIG_H
#define TH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service.h"

#define TH_LISTEN_MAX 8  /* listen lines */
#define TH_LISTEN_LEN 128
#define TH_DEFAULT_MAX_CONNECTIONS 1000
#define TH_DEFAULT_CONNECTION_TIMEOUT 30 /* seconds */
#define TH_DEFAULT_MAX_BATCH 10000       /* jobs */

typedef struct th_config {
	char *path;             /* the file as given */
	char *data_dir;         /* resolved against the file's directory */
	char *plugin_dir;       /* resolved against the file's directory; must exist */
	int data_dir_line;      /* where they were set; 0: the default */
	char data_dir_group[256]; /* a group that shares the data dir; "": none */
	int plugin_dir_line;
	bool migrate;           /* the host creates or upgrades the store's schema at start */
	char *store;            /* the store's URL (a plain directory resolved as data_dir is);
				   NULL: data_dir as an LMDB store */
	int log_level;          /* TH_LOG_* */
	int log_format;         /* enum th_log_format */
	double grace_period;    /* seconds running jobs get to finish on stop */
	uint64_t map_size;
	uint64_t max_map_size;
	int durability;         /* enum th_durability */
	uint64_t max_input_size;
	uint64_t max_result_size;
	double lease_time;      /* seconds a claim lasts unless renewed */
	unsigned max_attempts;  /* default for new jobs */
	bool allow_insecure_plugins; /* load plugins others could have written */
	double keep_finished;   /* seconds; 0: finished jobs are kept until cleaned */
	char strategy[16];      /* [processor]: the default queue */
	th_processor_args args;
	struct th_config_queue { /* [queue NAME] sections */
		char name[TH_QUEUE_NAME_MAX + 1];
		char strategy[16];
		th_processor_args args;
	} queues[TH_QUEUES_MAX];
	unsigned nqueues;
	/* [host]: the HTTP API (host/server) */
	char listen[TH_LISTEN_MAX][TH_LISTEN_LEN]; /* "HOST:PORT" or "[V6]:PORT" lines */
	unsigned nlisten;
	int listen_line;        /* the first listen line */
	char *tls_cert, *tls_key, *token_file; /* resolved against the file's directory */
	unsigned max_connections;
	double connection_timeout; /* seconds a connection may be idle (or slow) */
	unsigned max_batch;     /* jobs in one POST /v1/jobs/batch */
} th_config;

/* A config file larger than this is refused: it is not one. */
#define TH_CONFIG_MAX_SIZE (1 << 20)

/* Fills cfg with the defaults, relative to the directory of `path`. */
int th_config_defaults(th_config *cfg, const char *path);
/* Loads path over the defaults. On failure, err holds one line such as
 * "taskhost.ini:7: unknown key 'max_thread' in [processor]" and cfg is freed. */
int th_config_load(th_config *cfg, const char *path, char *err, size_t errlen);
/* Parses an INI text (for tests and fuzzing); `name` stands for the file in errors. */
int th_config_parse(th_config *cfg, const char *name, const char *text, char *err,
		    size_t errlen);
void th_config_free(th_config *cfg);

/* Creates data_dir (and missing parents) if needed, 0700, or 02770 and owned by
 * data_dir_group when that is set; err names the config line. */
/* The store's URL: $TASKHOST_STORE when set, else the file's `store`; NULL: the data
 * dir as an LMDB store. */
const char *th_config_store(const th_config *cfg);
int th_config_make_data_dir(const th_config *cfg, char *err, size_t errlen);

/* "127.0.0.1:7070" or "[::1]:7070" -> host (brackets removed) and port. */
int th_config_split_listen(const char *s, char *host, size_t hostlen, unsigned *port);

/* "64MiB", "1 G", "4096" -> bytes; "30s", "500ms", "2m", "1.5" (seconds) -> seconds. */
int th_parse_size(const char *s, uint64_t *out);
int th_parse_duration(const char *s, double *out);

#endif
