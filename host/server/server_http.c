/* The HTTP side of the API with libmicrohttpd: the unix socket and TCP listeners (TLS
 * with GnuTLS), limits, bearer tokens, and requests answered now or resumed later. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "log.h"
#include "server_session.h"
#include "web.h"

#define POOL_THREADS 2           /* libmicrohttpd's threads per listener */
#define LISTEN_BACKLOG 1024
#define WATCH_US 200000          /* how often slow connections and long polls are looked at */
#define SOCKET_CHECK_EVERY 5     /* watches between two looks at the unix socket's path */
#define RETIRED_MAX 8            /* times the unix socket's path is made again, at most */
#define TLS_FILE_MAX (1u << 20)  /* a certificate or key file larger than this is none */

struct conn { /* one client connection (libmicrohttpd's socket context) */
	struct conn *prev, *next;
	int fd;
	_Atomic int64_t since; /* monotonic us it began waiting for a whole request; 0: busy */
	bool cut;
};

struct listener {
	th_server *srv;
	struct MHD_Daemon *d;
	bool local; /* the unix socket: its file mode is the access control */
	char name[TH_LISTEN_LEN + 8];
};

struct th_server {
	th_api api;
	struct listener l[1 + TH_LISTEN_MAX];
	size_t nl;
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t sock_dev; /* the socket file this host made: removed at stop only if still there */
	ino_t sock_ino;
	/* the unix socket's earlier servers, when its path was made again (watch): they
	 * accept no more, and finish the connections they have until the server stops */
	struct MHD_Daemon *retired[RETIRED_MAX];
	size_t nretired;
	bool sock_failed; /* making it again failed: logged once, until it works */
	pthread_rwlock_t auth_mu;
	th_auth *auth;
	th_sessions *sessions; /* the dashboard's signed-in browsers */
	bool tls;
	size_t max_body;
	int64_t request_us;   /* a whole request must arrive within this */
	size_t max_waits;
	pthread_mutex_t conns_mu;
	struct conn *conns;
	pthread_mutex_t waits_mu;
	th_api_req *waits;
	size_t nwaits;
	pthread_t watcher;
	bool watcher_started;
	atomic_bool stopping;
	char *tls_cert, *tls_key;
};

enum { READING, LATER, RESUMED };

struct req { /* one request (libmicrohttpd's connection context) */
	th_api_req r; /* first: a th_api_req * is a struct req * */
	struct listener *l;
	struct MHD_Connection *mc;
	char *buf;
	size_t len, cap;
	bool too_big;
	int state;
	char path[256];
	bool ui;          /* a dashboard answer: with its security headers */
	char cookie[192]; /* a Set-Cookie header to send, or "" */
};

/* ---- answering ---- */

static const char *arg_of(th_api_req *r, const char *key)
{
	return MHD_lookup_connection_value(((struct req *)r)->mc, MHD_GET_ARGUMENT_KIND, key);
}

/* The dashboard's pages run only its own code, in no frame of another site's. */
static void ui_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Content-Security-Policy",
				"default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
				"form-action 'self'");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

static enum MHD_Result respond(struct req *q)
{
	th_api_req *r = &q->r;
	if (r->text) { /* GET /metrics */
		struct MHD_Response *resp = MHD_create_response_from_buffer(
			r->text_len, r->text, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			return MHD_NO;
		r->text = NULL;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
		if (q->ui)
			ui_headers(resp);
		enum MHD_Result ret = MHD_queue_response(q->mc, r->status ? r->status : 200, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	char *text = json_dumps(r->answer ? r->answer : json_null(),
				JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY |
				JSON_REAL_PRECISION(9));
	size_t len = text ? strlen(text) : 0;
	char *body = text ? realloc(text, len + 2) : NULL;
	if (!body) {
		free(text);
		return MHD_NO;
	}
	body[len++] = '\n';
	body[len] = 0;
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (q->cookie[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, q->cookie);
	if (q->ui)
		ui_headers(resp);
	if (r->status == 401 && !q->ui)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"taskhost\"");
	enum MHD_Result ret = MHD_queue_response(q->mc, r->status ? r->status : 500, resp);
	MHD_destroy_response(resp);
	return ret;
}

int th_api_submit(th_api_req *r)
{
	struct req *q = (struct req *)r;
	q->state = LATER;
	r->later = true;
	/* suspended first: the committer may answer before this handler returns */
	MHD_suspend_connection(q->mc);
	int rc = th_commit_submit(r->api->commit, &r->commit);
	if (rc) {
		if (atomic_load(&q->l->srv->stopping))
			th_api_error(r, 503, "stopping", "the host is stopping");
		else
			th_api_fail(r, TH_EBUSY, 0, "write");
		MHD_resume_connection(q->mc);
	}
	return 0;
}

void th_api_later_done(th_api_req *r)
{
	MHD_resume_connection(((struct req *)r)->mc);
}

int th_api_wait(th_api_req *r)
{
	struct req *q = (struct req *)r;
	th_server *srv = q->l->srv;
	pthread_mutex_lock(&srv->waits_mu);
	if (srv->nwaits >= srv->max_waits || atomic_load(&srv->stopping)) {
		size_t n = srv->nwaits;
		pthread_mutex_unlock(&srv->waits_mu);
		if (atomic_load(&srv->stopping))
			return th_api_error(r, 503, "stopping", "the host is stopping");
		return th_api_error(r, 429, "busy", "%zu waits are going on already (at most half "
				    "of max_connections): try again", n);
	}
	q->state = LATER;
	r->later = true;
	MHD_suspend_connection(q->mc);
	r->next_wait = srv->waits;
	srv->waits = r;
	atomic_store(&srv->api.waits, ++srv->nwaits);
	pthread_mutex_unlock(&srv->waits_mu);
	return 0;
}

/* ---- one request ---- */

static const char *bearer(struct MHD_Connection *mc)
{
	const char *h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return h;
}

/* ---- the dashboard: its files and its sessions ---- */

#define SESSION_COOKIE "th_session"

static bool safe_method(const char *method)
{
	return strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
}

/* The X-CSRF-Token header is the session's (compared in constant time). */
static bool csrf_ok(struct MHD_Connection *mc, const char *csrf)
{
	const char *h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-CSRF-Token");
	if (!h || strlen(h) != strlen(csrf))
		return false;
	unsigned diff = 0;
	for (size_t i = 0; csrf[i]; i++)
		diff |= (unsigned char)(h[i] ^ csrf[i]);
	return diff == 0;
}

static void session_answer(th_api_req *r, unsigned status, const char *name,
			   enum th_scope scope, const char *csrf)
{
	th_api_ok(r, status, json_pack("{s:s, s:s, s:s}", "name", name, "scope",
				       th_auth_scope_name(scope), "csrf", csrf));
}

/* /ui/session: GET the browser's session, POST {"token": ...} to sign in (a session
 * cookie, HttpOnly and SameSite=Strict), DELETE to sign out. On the unix socket no
 * token is needed: every session there is admin's. */
static void ui_session(struct req *q, const char *method)
{
	th_api_req *r = &q->r;
	th_server *srv = q->l->srv;
	const char *sid = MHD_lookup_connection_value(q->mc, MHD_COOKIE_KIND, SESSION_COOKIE);
	char name[TH_SESSION_NAME_MAX + 1], csrf[TH_SESSION_ID_LEN + 1];
	enum th_scope scope = sid ? th_sessions_find(srv->sessions, sid, name, csrf)
				  : TH_SCOPE_NONE;
	if (q->l->local && strcmp(method, "DELETE") != 0) {
		session_answer(r, 200, "local", TH_SCOPE_ADMIN, "");
	} else if (strcmp(method, "GET") == 0) {
		if (scope == TH_SCOPE_NONE)
			th_api_error(r, 401, "unauthorized", "not signed in");
		else
			session_answer(r, 200, name, scope, csrf);
	} else if (strcmp(method, "DELETE") == 0) {
		if (scope != TH_SCOPE_NONE && !csrf_ok(q->mc, csrf)) {
			th_api_error(r, 403, "csrf", "signing out needs the session's X-CSRF-Token "
				     "header");
			return;
		}
		if (sid)
			th_sessions_drop(srv->sessions, sid);
		snprintf(q->cookie, sizeof(q->cookie), "%s=; Path=/; Max-Age=0; HttpOnly; "
			 "SameSite=Strict%s", SESSION_COOKIE, srv->tls ? "; Secure" : "");
		th_api_ok(r, 200, json_pack("{s:b}", "signed_out", 1));
	} else if (strcmp(method, "POST") == 0) {
		json_t *body = q->len ? json_loadb(q->buf, q->len, 0, NULL) : NULL;
		const char *tok = json_string_value(json_object_get(body, "token")), *who = NULL;
		pthread_rwlock_rdlock(&srv->auth_mu);
		scope = tok ? th_auth_check(srv->auth, tok, &who) : TH_SCOPE_NONE;
		snprintf(name, sizeof(name), "%s", who ? who : "");
		pthread_rwlock_unlock(&srv->auth_mu);
		json_decref(body);
		char id[TH_SESSION_ID_LEN + 1];
		if (scope == TH_SCOPE_NONE) {
			th_api_error(r, 401, "unauthorized", tok ? "the token is not one of "
				     "token_file's" : "expected {\"token\": \"...\"}");
		} else if (th_sessions_add(srv->sessions, scope, name, id, csrf)) {
			th_api_error(r, 500, "internal", "no random bytes for a session");
		} else {
			snprintf(q->cookie, sizeof(q->cookie), "%s=%s; Path=/; HttpOnly; "
				 "SameSite=Strict%s", SESSION_COOKIE, id, srv->tls ? "; Secure" : "");
			th_log_info("http", "dashboard: '%s' signed in (%s)", name,
				    th_auth_scope_name(scope));
			session_answer(r, 200, name, scope, csrf);
		}
	} else {
		th_api_error(r, 405, "method_not_allowed", "%s is not allowed on /ui/session",
			     method);
	}
}

/* / and /ui/...: the dashboard's files, built into the binary (web.c), and its
 * sessions. The files hold no data: the pages read it from the API, signed in. */
static void ui(struct req *q, const char *url, const char *method)
{
	th_api_req *r = &q->r;
	q->ui = true;
	if (strcmp(url, "/ui/session") == 0) {
		ui_session(q, method);
		return;
	}
	const th_web_file *f = th_web_find(strcmp(url, "/") == 0 ? "/ui/index.html" : url);
	if (!f) {
		th_api_error(r, 404, "no_route", "no such path: %.200s", url);
	} else if (!safe_method(method)) {
		th_api_error(r, 405, "method_not_allowed", "%s is not allowed on %.200s", method,
			     url);
	} else if (!(r->text = malloc(f->len))) {
		th_api_fail(r, TH_ENOMEM, 0, "dashboard");
	} else {
		memcpy(r->text, f->data, f->len);
		r->text_len = f->len;
		r->content_type = f->type;
		r->status = 200;
	}
}

/* Auth, body and route for a request that has fully arrived; the handler answers it
 * now or later (r->later). */
static void handle(struct req *q, const char *url, const char *method)
{
	th_api_req *r = &q->r;
	th_server *srv = q->l->srv;
	r->root = strncmp(url, "/v1/", 4) != 0;
	if (strcmp(url, "/") == 0 || strncmp(url, "/ui/", 4) == 0) {
		ui(q, url, method);
		return;
	}
	if (strlen(url) >= sizeof(q->path)) {
		th_api_error(r, 404, "no_route", "no such path: %.200s (the API is under /v1/)",
			     url);
		return;
	}
	snprintf(q->path, sizeof(q->path), "%s", r->root ? url : url + 3);
	r->path = q->path;
	r->method = method;
	const th_api_route *rt;
	if (th_api_match(r, &rt))
		return;
	if (!q->l->local) {
		const char *tok = bearer(q->mc), *who = NULL;
		const char *sid = tok ? NULL : MHD_lookup_connection_value(q->mc, MHD_COOKIE_KIND,
									    SESSION_COOKIE);
		char name[TH_SESSION_NAME_MAX + 1], csrf[TH_SESSION_ID_LEN + 1];
		enum th_scope scope;
		if (sid) { /* the dashboard's */
			scope = th_sessions_find(srv->sessions, sid, name, csrf);
			if (scope == TH_SCOPE_NONE) {
				th_api_error(r, 401, "unauthorized", "the session ended: sign in again");
				return;
			}
			if (!safe_method(method) && !csrf_ok(q->mc, csrf)) {
				th_api_error(r, 403, "csrf", "%s %s with a session cookie needs the "
					     "session's X-CSRF-Token header", method, url);
				return;
			}
		} else {
			pthread_rwlock_rdlock(&srv->auth_mu);
			scope = th_auth_check(srv->auth, tok, &who);
			snprintf(name, sizeof(name), "%s", who ? who : "");
			pthread_rwlock_unlock(&srv->auth_mu);
		}
		if (scope == TH_SCOPE_NONE) {
			th_api_error(r, 401, "unauthorized", tok ? "the bearer token is not one of "
				     "token_file's" : "missing Authorization: Bearer TOKEN");
			return;
		}
		if (scope < rt->scope) {
			th_api_error(r, 403, "forbidden", "%s %s needs a token of scope %s; '%s' has %s",
				     method, url, th_auth_scope_name(rt->scope), name,
				     th_auth_scope_name(scope));
			return;
		}
	}
	if (q->too_big) {
		th_api_error(r, 413, "too_large", "the request body is larger than %zu bytes",
			     srv->max_body);
		return;
	}
	if (q->len) {
		json_error_t e;
		r->body = json_loadb(q->buf, q->len, JSON_REJECT_DUPLICATES, &e);
		if (!r->body) {
			th_api_error(r, 400, "bad_json", "the body is not JSON: %s (line %d, column "
				     "%d)", e.text, e.line, e.column);
			return;
		}
	}
	rt->fn(r);
}

static struct conn *conn_of(struct MHD_Connection *mc)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version,
				  const char *upload, size_t *upload_size, void **con_cls)
{
	(void)version;
	struct listener *l = cls;
	th_server *srv = l->srv;
	struct req *q = *con_cls;
	if (!q) { /* the headers are in */
		if (!(q = calloc(1, sizeof(*q))))
			return MHD_NO;
		*con_cls = q;
		q->l = l;
		q->mc = mc;
		q->r.api = &srv->api;
		q->r.svc = srv->api.svc;
		q->r.arg = arg_of;
		q->r.max_batch = srv->api.cfg->max_batch;
		const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		/* too large: read and dropped (within connection_timeout), then answered: a
		 * client still sending would not read an answer given before */
		q->too_big = cl && strtoull(cl, NULL, 10) > srv->max_body;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!q->too_big && q->len + *upload_size > srv->max_body) {
			q->too_big = true;
			free(q->buf);
			q->buf = NULL;
			q->len = q->cap = 0;
		}
		if (!q->too_big) {
			if (q->len + *upload_size > q->cap) {
				size_t cap = q->cap ? q->cap : 4096;
				while (cap < q->len + *upload_size)
					cap *= 2;
				char *b = realloc(q->buf, cap);
				if (!b)
					return MHD_NO;
				q->buf = b;
				q->cap = cap;
			}
			memcpy(q->buf + q->len, upload, *upload_size);
			q->len += *upload_size;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (q->state == LATER) { /* resumed: the answer is there */
		q->state = RESUMED;
		return respond(q);
	}
	struct conn *c = conn_of(mc);
	if (c)
		atomic_store(&c->since, 0);
	handle(q, url, method);
	if (q->r.later)
		return MHD_YES;
	q->state = RESUMED;
	return respond(q);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)toe;
	struct req *q = *con_cls;
	struct conn *c = conn_of(mc);
	if (c) /* keep-alive: the next request has as long to arrive */
		atomic_store(&c->since, th_clock_mono_us());
	if (!q)
		return;
	if (q->r.free_scratch)
		q->r.free_scratch(q->r.scratch);
	json_decref(q->r.body);
	json_decref(q->r.answer);
	free(q->r.text);
	free(q->r.wait_ids);
	free(q->buf);
	free(q);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	th_server *srv = ((struct listener *)cls)->srv;
	struct conn *c = *socket_context;
	pthread_mutex_lock(&srv->conns_mu);
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		if ((c = calloc(1, sizeof(*c)))) {
			c->fd = ci ? ci->connect_fd : -1;
			atomic_store(&c->since, th_clock_mono_us());
			c->next = srv->conns;
			if (srv->conns)
				srv->conns->prev = c;
			srv->conns = c;
		}
		*socket_context = c;
	} else if (c) { /* closed: before libmicrohttpd closes the descriptor */
		if (c->prev)
			c->prev->next = c->next;
		else
			srv->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		free(c);
		*socket_context = NULL;
	}
	pthread_mutex_unlock(&srv->conns_mu);
}

TH_PRINTF(2, 0) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = 0;
	th_log_warn("http", "%s", msg);
}

/* ---- the watcher: slow clients, long polls, the unix socket's path ---- */

static void socket_check(th_server *srv);

static void *watch(void *arg)
{
	th_server *srv = arg;
	for (unsigned turn = 1; !atomic_load(&srv->stopping); turn++) {
		if (turn % SOCKET_CHECK_EVERY == 0)
			socket_check(srv);
		uint32_t seq = th_service_finished_seq(srv->api.svc);
		int64_t now = th_clock_mono_us();
		/* a client that has not sent a whole request in time (one byte a second keeps
		 * libmicrohttpd's idle timeout from firing) is cut off */
		pthread_mutex_lock(&srv->conns_mu);
		for (struct conn *c = srv->conns; c; c = c->next) {
			int64_t since = atomic_load(&c->since);
			if (since && !c->cut && now - since > srv->request_us && c->fd >= 0) {
				c->cut = true;
				shutdown(c->fd, SHUT_RDWR);
				th_log_warn("http", "a client sent no whole request in %g s: its "
					    "connection is closed", (double)srv->request_us / 1e6);
			}
		}
		pthread_mutex_unlock(&srv->conns_mu);
		/* long polls whose jobs finished or whose time is up */
		th_api_req *ready = NULL;
		pthread_mutex_lock(&srv->waits_mu);
		for (th_api_req **p = &srv->waits; *p;) {
			th_api_req *r = *p;
			if (th_api_wait_check(r, now >= r->wait_end)) {
				*p = r->next_wait;
				atomic_store(&srv->api.waits, --srv->nwaits);
				r->next_wait = ready;
				ready = r;
			} else {
				p = &r->next_wait;
			}
		}
		bool waiting = srv->waits != NULL;
		pthread_mutex_unlock(&srv->waits_mu);
		for (th_api_req *r = ready, *next; r; r = next) {
			next = r->next_wait;
			th_api_later_done(r);
		}
		if (waiting)
			th_service_wait_finished(srv->api.svc, seq, WATCH_US);
		else
			usleep(WATCH_US);
	}
	return NULL;
}

/* ---- listeners ---- */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* The unix socket in the data dir; replace: a socket file already there is removed
 * first (a dead host's, or another host's on this data dir: the newest host serves the
 * path), else it is left and the bind fails. */
static int unix_socket(th_server *srv, const th_config *cfg, bool replace, int *fd, char *err,
		       size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int n = snprintf(srv->sock, sizeof(srv->sock), "%s/%s", cfg->data_dir, TH_SERVER_SOCKET);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return fail(err, errlen, TH_ECONFIG, "data_dir %s: too long a path for the unix "
			    "socket %s (at most %zu bytes)", cfg->data_dir, TH_SERVER_SOCKET,
			    sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, srv->sock, (size_t)n + 1);
	struct stat sb;
	if (lstat(srv->sock, &sb) == 0 && !S_ISSOCK(sb.st_mode))
		return fail(err, errlen, TH_EINSECURE, "%s: not a socket: remove it; the host "
			    "makes its socket there", srv->sock);
	if (replace && lstat(srv->sock, &sb) == 0)
		unlink(srv->sock);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(srv->sock, 0660) || listen(s, LISTEN_BACKLOG)) {
		int e = errno;
		if (s >= 0)
			close(s);
		return fail(err, errlen, TH_ESYS, "%s: cannot listen: %s", srv->sock, strerror(e));
	}
	if (lstat(srv->sock, &sb) == 0) {
		srv->sock_dev = sb.st_dev;
		srv->sock_ino = sb.st_ino;
	}
	*fd = s;
	return 0;
}

static int tcp_socket(const char *listen_at, int *fd, char *err, size_t errlen)
{
	char host[TH_LISTEN_LEN], port[8];
	unsigned p;
	th_config_split_listen(listen_at, host, sizeof(host), &p);
	snprintf(port, sizeof(port), "%u", p);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *ai;
	int rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		return fail(err, errlen, TH_ECONFIG, "listen = %s in [host]: %s", listen_at,
			    gai_strerror(rc));
	int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol), one = 1;
	if (s >= 0) {
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (s < 0 || bind(s, ai->ai_addr, ai->ai_addrlen) || listen(s, LISTEN_BACKLOG)) {
		int e = errno;
		if (s >= 0)
			close(s);
		freeaddrinfo(ai);
		return fail(err, errlen, TH_ECONFIG, "listen = %s in [host]: cannot listen: %s",
			    listen_at, strerror(e));
	}
	freeaddrinfo(ai);
	*fd = s;
	return 0;
}

static char *read_small(const char *key, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = f ? calloc(1, TLS_FILE_MAX + 1) : NULL;
	size_t n = buf ? fread(buf, 1, TLS_FILE_MAX + 1, f) : 0;
	int e = errno;
	if (f)
		fclose(f);
	if (!buf || n == 0 || n > TLS_FILE_MAX) {
		fail(err, errlen, TH_ECONFIG, "%s %s: %s", key, path,
		     !f ? strerror(e) : n ? "larger than 1 MiB" : "empty or unreadable");
		free(buf);
		return NULL;
	}
	return buf;
}

/* A server on listening socket fd (closed if it fails) for l, in *d. */
static int start_daemon(th_server *srv, struct listener *l, int fd, bool tls,
			struct MHD_Daemon **d, char *err, size_t errlen)
{
	const th_config *cfg = srv->api.cfg;
	unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | (tls ? MHD_USE_TLS : 0);
	struct MHD_OptionItem opts[] = {
		{MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, l}, /* first, or it is not used */
		{MHD_OPTION_LISTEN_SOCKET, fd, NULL},
		{MHD_OPTION_THREAD_POOL_SIZE, POOL_THREADS, NULL},
		{MHD_OPTION_CONNECTION_LIMIT, (intptr_t)cfg->max_connections, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)(cfg->connection_timeout + 0.5), NULL},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l},
		{MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, l},
		{tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, srv->tls_key},
		{MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert},
		{MHD_OPTION_END, 0, NULL},
	};
	l->srv = srv;
	*d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l, MHD_OPTION_ARRAY, opts,
			      MHD_OPTION_END);
	if (!*d) {
		close(fd);
		return fail(err, errlen, TH_ECONFIG, "%s: the HTTP server did not start%s",
			    l->name, tls ? " (check tls_cert and tls_key)" : "");
	}
	return 0;
}

/* The unix socket's path made again when it is gone: a host that started later on this
 * data dir and took the path over has stopped (or the file was removed). Called by the
 * watcher only; a path that is there, whoever's, is left alone. */
static void socket_check(th_server *srv)
{
	struct stat sb;
	if (lstat(srv->sock, &sb) == 0 || errno != ENOENT || srv->nretired == RETIRED_MAX)
		return;
	char err[256];
	int fd;
	struct MHD_Daemon *d;
	if (unix_socket(srv, srv->api.cfg, false, &fd, err, sizeof(err)) ||
	    start_daemon(srv, &srv->l[0], fd, false, &d, err, sizeof(err))) {
		if (!srv->sock_failed)
			th_log_warn("http", "%s was gone and could not be made again: %s", srv->sock,
				    err);
		srv->sock_failed = true;
		return;
	}
	srv->sock_failed = false;
	MHD_socket old = MHD_quiesce_daemon(srv->l[0].d);
	if (old != MHD_INVALID_SOCKET)
		close(old);
	srv->retired[srv->nretired++] = srv->l[0].d;
	srv->l[0].d = d;
	th_log_info("http", "%s was gone: serving on it again", srv->sock);
}

/* The files the server reads, read once to tell what is wrong with them early. */
int th_server_check(const th_config *cfg, char *err, size_t errlen)
{
	th_auth *a = NULL;
	int rc = cfg->token_file ? th_auth_load(&a, cfg->token_file, err, errlen) : 0;
	th_auth_free(a);
	for (int i = 0; rc == 0 && cfg->tls_cert && i < 2; i++) {
		char *f = read_small(i ? "tls_key" : "tls_cert", i ? cfg->tls_key : cfg->tls_cert,
				     err, errlen);
		rc = f ? 0 : TH_ECONFIG;
		free(f);
	}
	return rc;
}

int th_server_start(th_server **out, th_service *svc, const th_config *cfg, char *err,
		    size_t errlen)
{
	th_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return fail(err, errlen, TH_ENOMEM, "out of memory");
	srv->api.svc = svc;
	srv->api.cfg = cfg;
	srv->max_body = TH_SERVER_MAX_BODY(cfg->max_input_size);
	srv->request_us = (int64_t)(cfg->connection_timeout * 1e6);
	srv->max_waits = cfg->max_connections / 2 ? cfg->max_connections / 2 : 1;
	pthread_rwlock_init(&srv->auth_mu, NULL);
	srv->tls = cfg->tls_cert != NULL;
	pthread_mutex_init(&srv->conns_mu, NULL);
	pthread_mutex_init(&srv->waits_mu, NULL);
	int rc = 0, fd;
	if (cfg->token_file)
		rc = th_auth_load(&srv->auth, cfg->token_file, err, errlen);
	if (!rc && th_sessions_new(&srv->sessions))
		rc = fail(err, errlen, TH_ENOMEM, "out of memory");
	if (!rc && cfg->tls_cert &&
	    (!(srv->tls_cert = read_small("tls_cert", cfg->tls_cert, err, errlen)) ||
	     !(srv->tls_key = read_small("tls_key", cfg->tls_key, err, errlen))))
		rc = TH_ECONFIG;
	if (!rc && cfg->tls_cert && !MHD_is_feature_supported(MHD_FEATURE_TLS))
		rc = fail(err, errlen, TH_ECONFIG, "tls_cert in [host]: this libmicrohttpd has "
			  "no TLS");
	if (!rc && !(rc = th_commit_start(&srv->api.commit, svc))) {
		snprintf(srv->l[0].name, sizeof(srv->l[0].name), "%s", TH_SERVER_SOCKET);
		srv->l[0].local = true;
		if (!(rc = unix_socket(srv, cfg, true, &fd, err, errlen)))
			rc = start_daemon(srv, &srv->l[0], fd, false, &srv->l[0].d, err, errlen);
		srv->nl += rc == 0;
	}
	for (unsigned i = 0; rc == 0 && i < cfg->nlisten; i++) {
		struct listener *l = &srv->l[1 + i];
		snprintf(l->name, sizeof(l->name), "listen = %s", cfg->listen[i]);
		if (!(rc = tcp_socket(cfg->listen[i], &fd, err, errlen)))
			rc = start_daemon(srv, l, fd, cfg->tls_cert != NULL, &l->d, err, errlen);
		srv->nl += rc == 0;
	}
	if (rc == 0 && pthread_create(&srv->watcher, NULL, watch, srv))
		rc = fail(err, errlen, TH_ESYS, "cannot start a thread");
	if (rc) {
		th_server_stop(srv);
		return rc;
	}
	srv->watcher_started = true;
	for (unsigned i = 0; i < cfg->nlisten; i++)
		th_log_info("http", "serving on %s%s", cfg->listen[i], cfg->tls_cert ? " (TLS)" : "");
	th_log_info("http", "serving on %s", srv->sock);
	*out = srv;
	return 0;
}

int th_server_reload(th_server *srv, char *err, size_t errlen)
{
	const char *path = srv->api.cfg->token_file;
	th_auth *a = NULL;
	if (!path)
		return 0;
	int rc = th_auth_load(&a, path, err, errlen);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&srv->auth_mu);
	th_auth *old = srv->auth;
	srv->auth = a;
	pthread_rwlock_unlock(&srv->auth_mu);
	th_auth_free(old);
	return 0;
}

void th_server_stop(th_server *srv)
{
	if (!srv)
		return;
	atomic_store(&srv->stopping, true);
	if (srv->watcher_started)
		pthread_join(srv->watcher, NULL);
	/* no new connections; what is queued is committed and answered */
	for (size_t i = 0; i < srv->nl; i++) {
		MHD_socket fd = MHD_quiesce_daemon(srv->l[i].d);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
	}
	th_commit_stop(srv->api.commit);
	pthread_mutex_lock(&srv->waits_mu);
	th_api_req *waits = srv->waits;
	srv->waits = NULL;
	pthread_mutex_unlock(&srv->waits_mu);
	for (th_api_req *r = waits, *next; r; r = next) {
		next = r->next_wait;
		th_api_wait_check(r, true);
		th_api_later_done(r);
	}
	for (size_t i = 0; i < srv->nl; i++)
		MHD_stop_daemon(srv->l[i].d);
	for (size_t i = 0; i < srv->nretired; i++)
		MHD_stop_daemon(srv->retired[i]);
	struct stat sb; /* the socket this host made, unless another host's replaced it */
	if (srv->l[0].d && lstat(srv->sock, &sb) == 0 && sb.st_dev == srv->sock_dev &&
	    sb.st_ino == srv->sock_ino)
		unlink(srv->sock);
	th_auth_free(srv->auth);
	th_sessions_free(srv->sessions);
	pthread_rwlock_destroy(&srv->auth_mu);
	pthread_mutex_destroy(&srv->conns_mu);
	pthread_mutex_destroy(&srv->waits_mu);
	free(srv->tls_cert);
	free(srv->tls_key);
	free(srv);
}
