/* The token file of the HTTP API: NAME SCOPE TOKEN lines and # comments, refused when
 * group or others may read it; a token is found by comparing all of them in full. */
#include "server_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

struct token {
	char name[64];
	enum th_scope scope;
	size_t len;
	unsigned char secret[TH_AUTH_TOKEN_MAX];
};

struct th_auth {
	size_t n;
	struct token t[];
};

static const char *const scope_names[] = {"none", "read", "write", "admin"};

const char *th_auth_scope_name(enum th_scope s)
{
	return s <= TH_SCOPE_ADMIN ? scope_names[s] : "none";
}

static int bad(char *err, size_t errlen, const char *path, int line, const char *why)
{
	snprintf(err, errlen, "token_file %s:%d: %s", path, line, why);
	return TH_ECONFIG;
}

int th_auth_load(th_auth **out, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb)) {
		snprintf(err, errlen, "token_file %s: cannot open: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return TH_ECONFIG;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_mode & 077) {
		snprintf(err, errlen, "token_file %s: %s (mode %04o): it must be a file only its "
			 "owner can read (chmod 600)", path,
			 S_ISREG(sb.st_mode) ? "group or others can read or write it"
					     : "not a regular file", (unsigned)(sb.st_mode & 07777));
		close(fd);
		return TH_EINSECURE;
	}
	FILE *f = fdopen(fd, "r");
	th_auth *a = calloc(1, sizeof(*a) + TH_AUTH_TOKENS_MAX * sizeof(struct token));
	if (!f || !a) {
		if (f)
			fclose(f);
		else
			close(fd);
		free(a);
		snprintf(err, errlen, "token_file %s: out of memory", path);
		return TH_ENOMEM;
	}
	char line[1024];
	int rc = 0;
	for (int no = 1; rc == 0 && fgets(line, sizeof(line), f); no++) {
		if (!strchr(line, '\n') && !feof(f)) {
			rc = bad(err, errlen, path, no, "line too long");
			break;
		}
		char *save, *name = strtok_r(line, " \t\r\n", &save);
		if (!name || *name == '#')
			continue;
		char *scope = strtok_r(NULL, " \t\r\n", &save);
		char *tok = scope ? strtok_r(NULL, " \t\r\n", &save) : NULL;
		enum th_scope s = TH_SCOPE_NONE;
		for (int i = 1; scope && i <= TH_SCOPE_ADMIN; i++)
			if (strcmp(scope, scope_names[i]) == 0)
				s = (enum th_scope)i;
		if (!tok || strtok_r(NULL, " \t\r\n", &save))
			rc = bad(err, errlen, path, no, "expected NAME SCOPE TOKEN");
		else if (s == TH_SCOPE_NONE)
			rc = bad(err, errlen, path, no, "scope must be read, write or admin");
		else if (strlen(tok) < TH_AUTH_TOKEN_MIN || strlen(tok) > TH_AUTH_TOKEN_MAX)
			rc = bad(err, errlen, path, no, "a token is 16 to 256 characters");
		else if (strlen(name) >= sizeof(a->t[0].name))
			rc = bad(err, errlen, path, no, "a name is at most 63 characters");
		else if (a->n == TH_AUTH_TOKENS_MAX)
			rc = bad(err, errlen, path, no, "too many tokens (at most 1024)");
		else {
			struct token *t = &a->t[a->n++];
			snprintf(t->name, sizeof(t->name), "%s", name);
			t->scope = s;
			t->len = strlen(tok);
			memcpy(t->secret, tok, t->len);
		}
	}
	if (rc == 0 && ferror(f))
		rc = bad(err, errlen, path, 0, "cannot read");
	fclose(f);
	explicit_bzero(line, sizeof(line));
	if (rc) {
		th_auth_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void th_auth_free(th_auth *a)
{
	if (!a)
		return;
	explicit_bzero(a->t, a->n * sizeof(a->t[0]));
	free(a);
}

enum th_scope th_auth_check(const th_auth *a, const char *token, const char **name)
{
	size_t len = token ? strnlen(token, TH_AUTH_TOKEN_MAX + 1) : 0;
	enum th_scope found = TH_SCOPE_NONE;
	*name = NULL;
	if (!a || len < TH_AUTH_TOKEN_MIN || len > TH_AUTH_TOKEN_MAX)
		return TH_SCOPE_NONE;
	/* every token, every byte up to the longest: the time says nothing of which
	 * token came near */
	for (size_t i = 0; i < a->n; i++) {
		const struct token *t = &a->t[i];
		unsigned diff = (unsigned)(t->len ^ len);
		for (size_t k = 0; k < TH_AUTH_TOKEN_MAX; k++)
			diff |= (unsigned)(t->secret[k] ^ (unsigned char)(k < len ? token[k] : 0));
		if (diff == 0) {
			found = t->scope;
			*name = t->name;
		}
	}
	return found;
}
