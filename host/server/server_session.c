/* The dashboard's sessions (server_session.h): random ids from getrandom, kept in memory
 * (a restart signs every browser out), compared in constant time. */
#include "server_session.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "error.h"

struct session {
	char id[TH_SESSION_ID_LEN + 1], csrf[TH_SESSION_ID_LEN + 1];
	char name[TH_SESSION_NAME_MAX + 1];
	enum th_scope scope;
	int64_t until; /* th_clock_mono_us() */
};

struct th_sessions {
	pthread_mutex_t mu;
	struct session *s;
	size_t n;
};

int th_sessions_new(th_sessions **out)
{
	th_sessions *s = calloc(1, sizeof(*s));
	if (!s || !(s->s = calloc(TH_SESSIONS_MAX, sizeof(*s->s)))) {
		free(s);
		return TH_ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	return 0;
}

void th_sessions_free(th_sessions *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s->s);
	free(s);
}

static int random_hex(char *out)
{
	uint8_t b[TH_SESSION_ID_LEN / 2];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
		if (n <= 0)
			return TH_ESYS;
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

static bool same(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (strlen(a) != n)
		return false;
	unsigned diff = 0;
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

int th_sessions_add(th_sessions *s, enum th_scope scope, const char *name,
		    char id[TH_SESSION_ID_LEN + 1], char csrf[TH_SESSION_ID_LEN + 1])
{
	struct session n = {.scope = scope, .until = th_clock_mono_us() + TH_SESSION_TTL_S * 1000000LL};
	if (random_hex(n.id) || random_hex(n.csrf))
		return TH_ESYS;
	snprintf(n.name, sizeof(n.name), "%s", name ? name : "");
	pthread_mutex_lock(&s->mu);
	if (s->n == TH_SESSIONS_MAX) /* the oldest goes */
		memmove(s->s, s->s + 1, --s->n * sizeof(*s->s));
	s->s[s->n++] = n;
	pthread_mutex_unlock(&s->mu);
	memcpy(id, n.id, sizeof(n.id));
	memcpy(csrf, n.csrf, sizeof(n.csrf));
	return 0;
}

enum th_scope th_sessions_find(th_sessions *s, const char *id,
			       char name[TH_SESSION_NAME_MAX + 1],
			       char csrf[TH_SESSION_ID_LEN + 1])
{
	enum th_scope scope = TH_SCOPE_NONE;
	int64_t now = th_clock_mono_us();
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n; i++) {
		if (same(id, s->s[i].id) && s->s[i].until > now) {
			scope = s->s[i].scope;
			memcpy(name, s->s[i].name, sizeof(s->s[i].name));
			memcpy(csrf, s->s[i].csrf, sizeof(s->s[i].csrf));
		}
	}
	pthread_mutex_unlock(&s->mu);
	return scope;
}

void th_sessions_drop(th_sessions *s, const char *id)
{
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n; i++) {
		if (same(id, s->s[i].id)) {
			memmove(s->s + i, s->s + i + 1, (s->n - i - 1) * sizeof(*s->s));
			s->n--;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
}
