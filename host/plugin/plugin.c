/* Plugin loading and the task registry.
 * Every refusal is one log line naming the file and the reason; loading goes on. */
#include "plugin/plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "job.h"
#include "log.h"

/* The v1.0 descriptor ends after thread_fini, a v1.0 task after run. */
#define PLUGIN_V1_SIZE (offsetof(th_plugin, thread_fini) + sizeof(void (*)(void)))
#define TASK_V1_SIZE (offsetof(th_task, run) + sizeof(th_ret(*)(th_ctx *)))

struct plugin {
	char *file;
	void *handle;
	const th_plugin *desc;
	size_t index;
	bool inited;
	th_task_entry *entries; /* one per task of the descriptor */
};

/* A file tried once (loaded or refused); a reload skips it unless it changed. */
struct seen {
	char *path;
	dev_t dev;
	ino_t ino;
	struct timespec ctime; /* changes with the content, the mode and the owner */
	char *refused; /* why, when it was refused; NULL when loaded */
};

struct th_task_entry {
	const th_task *task;
	struct plugin *plugin;
};

struct th_plugins {
	enum th_plugins_mode mode;
	const th_host_api *api;
	pthread_mutex_t load_mu; /* one load at a time */
	pthread_rwlock_t lock;   /* guards the arrays; entries never move once added */
	struct plugin **plugins;
	size_t nplugins, plugins_cap;
	th_task_entry **tasks;
	size_t ntasks, tasks_cap;
	struct seen *seen; /* guarded by load_mu */
	size_t nseen, seen_cap;
	char *dir;             /* the directory loaded last, for rescans */
	bool allow_insecure_plugins; /* load files other users could have written */
	th_plugins_load_hook hook; /* guarded by load_mu */
	void *hook_ud;
};

struct th_plugin_thread {
	th_plugins *reg;
	unsigned char *state; /* per plugin index: 0 untouched, 1 inited, 2 init failed */
	size_t n;
};

static _Thread_local const char *current;

const char *th_plugins_current(void)
{
	return current;
}

int th_plugins_new(th_plugins **out, enum th_plugins_mode mode, const th_host_api *api)
{
	th_plugins *reg = calloc(1, sizeof(*reg));
	if (!reg)
		return TH_ENOMEM;
	reg->mode = mode;
	reg->api = api;
	pthread_mutex_init(&reg->load_mu, NULL);
	pthread_rwlock_init(&reg->lock, NULL);
	*out = reg;
	return 0;
}

void th_plugins_free(th_plugins *reg)
{
	if (!reg)
		return;
	for (size_t i = reg->nplugins; i-- > 0;) {
		struct plugin *p = reg->plugins[i];
		if (p->inited && p->desc->fini) {
			current = p->desc->name;
			p->desc->fini();
			current = NULL;
		}
		if (p->handle)
			dlclose(p->handle);
		free(p->entries);
		free(p->file);
		free(p);
	}
	for (size_t i = 0; i < reg->nseen; i++) {
		free(reg->seen[i].path);
		free(reg->seen[i].refused);
	}
	free(reg->seen);
	free(reg->dir);
	free(reg->plugins);
	free(reg->tasks);
	pthread_rwlock_destroy(&reg->lock);
	pthread_mutex_destroy(&reg->load_mu);
	free(reg);
}

static const th_task *task_at(const th_plugin *d, size_t i)
{
	return (const th_task *)((const char *)d->tasks + i * d->task_size);
}

static th_task_entry *find_locked(th_plugins *reg, const char *name)
{
	for (size_t i = 0; i < reg->ntasks; i++)
		if (strcmp(reg->tasks[i]->task->name, name) == 0)
			return reg->tasks[i];
	return NULL;
}

/* The guard fields and the task table; returns NULL or why the plugin is refused. */
static const char *check_descriptor(th_plugins *reg, const th_plugin *d, char *why,
				    size_t whylen)
{
	if (d->magic != TH_PLUGIN_MAGIC) {
		snprintf(why, whylen, "wrong magic 0x%08x (not a taskhost plugin descriptor)",
			 d->magic);
		return why;
	}
	if (d->abi_major != TH_ABI_MAJOR) {
		snprintf(why, whylen, "built for ABI major %u, this host speaks %u",
			 d->abi_major, TH_ABI_MAJOR);
		return why;
	}
	if (d->abi_minor > TH_ABI_MINOR) {
		snprintf(why, whylen, "built for ABI %u.%u, newer than this host's %u.%u",
			 d->abi_major, d->abi_minor, TH_ABI_MAJOR, TH_ABI_MINOR);
		return why;
	}
	if (d->size < PLUGIN_V1_SIZE) {
		snprintf(why, whylen, "descriptor of %u bytes, smaller than ABI 1.0's %zu",
			 d->size, (size_t)PLUGIN_V1_SIZE);
		return why;
	}
	if (d->task_size < TASK_V1_SIZE) {
		snprintf(why, whylen, "task entries of %u bytes, smaller than ABI 1.0's %zu",
			 d->task_size, (size_t)TASK_V1_SIZE);
		return why;
	}
	if (!d->name || !d->tasks || d->ntasks == 0 || !d->host) {
		snprintf(why, whylen, "descriptor without a name, tasks or host slot (write it "
			 "with TH_PLUGIN)");
		return why;
	}
	for (size_t i = 0; i < d->ntasks; i++) {
		const th_task *t = task_at(d, i);
		if (!t->name || !th_task_name_valid(t->name) || !t->run) {
			snprintf(why, whylen, "task %zu has no valid name or no run function", i);
			return why;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(task_at(d, j)->name, t->name) == 0) {
				snprintf(why, whylen, "task '%s' defined twice", t->name);
				return why;
			}
		}
		th_task_entry *e = find_locked(reg, t->name);
		if (e) {
			snprintf(why, whylen, "task '%s' already provided by %s", t->name,
				 e->plugin->file);
			return why;
		}
	}
	return NULL;
}

/* Makes room for `more` elements past n in *arr, whose capacity is *cap. */
static int reserve(void **arr, size_t *cap, size_t n, size_t more, size_t size)
{
	if (n + more <= *cap)
		return 0;
	size_t c = *cap ? *cap : 4;
	while (c < n + more)
		c *= 2;
	void *p = realloc(*arr, c * size);
	if (!p)
		return TH_ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* Checks, initialises and registers a descriptor; takes ownership of handle. The caller
 * holds load_mu; the registry lock is not held while init runs, so jobs of plugins
 * already loaded go on meanwhile. A refusal's reason goes to why. */
static int add_plugin(th_plugins *reg, const th_plugin *d, const char *file, void *handle,
		      char *why, size_t whylen)
{
	struct plugin *p = NULL;
	th_task_entry *entries = NULL;
	pthread_rwlock_wrlock(&reg->lock);
	const char *bad = check_descriptor(reg, d, why, whylen);
	if (!bad &&
	    (reserve((void **)&reg->plugins, &reg->plugins_cap, reg->nplugins, 1,
		     sizeof(*reg->plugins)) ||
	     reserve((void **)&reg->tasks, &reg->tasks_cap, reg->ntasks, d->ntasks,
		     sizeof(*reg->tasks)) ||
	     !(p = calloc(1, sizeof(*p))) || !(p->file = strdup(file)) ||
	     !(entries = calloc(d->ntasks, sizeof(*entries))))) {
		snprintf(why, whylen, "out of memory");
		bad = why;
	}
	pthread_rwlock_unlock(&reg->lock);
	if (!bad && reg->mode == TH_PLUGINS_RUN) {
		*d->host = reg->api;
		if (d->init) {
			current = d->name;
			int irc = d->init(reg->api);
			current = NULL;
			if (irc) {
				snprintf(why, whylen, "init failed (returned %d)", irc);
				bad = why;
			}
		}
		p->inited = !bad;
	}
	if (!bad) {
		pthread_rwlock_wrlock(&reg->lock);
		p->desc = d;
		p->handle = handle;
		p->index = reg->nplugins;
		p->entries = entries;
		reg->plugins[reg->nplugins++] = p;
		for (size_t i = 0; i < d->ntasks; i++) {
			entries[i] = (th_task_entry){task_at(d, i), p};
			reg->tasks[reg->ntasks++] = &entries[i];
		}
		pthread_rwlock_unlock(&reg->lock);
		th_log_info("plugins", "%s: loaded plugin %s %s (%zu task%s)", file, d->name,
			    d->version ? d->version : "", d->ntasks, d->ntasks == 1 ? "" : "s");
	} else {
		if (bad != why)
			snprintf(why, whylen, "%s", bad);
		th_log_warn("plugins", "%s: refused: %s", file, why);
		if (p)
			free(p->file);
		free(p);
		free(entries);
		if (handle)
			dlclose(handle);
	}
	return bad ? TH_EPLUGIN : 0;
}

int th_plugins_add_static(th_plugins *reg, const th_plugin *desc, const char *label)
{
	char why[512];
	pthread_mutex_lock(&reg->load_mu);
	int rc = add_plugin(reg, desc, label, NULL, why, sizeof(why));
	pthread_mutex_unlock(&reg->load_mu);
	return rc;
}

/* Who could have written this file or directory besides us: NULL when nobody. */
static const char *insecure(const struct stat *sb, char *why, size_t whylen)
{
	if (sb->st_mode & S_IWOTH) {
		snprintf(why, whylen, "world-writable (anyone could replace the code the host "
			 "runs; set allow_insecure_plugins = true to load it anyway)");
		return why;
	}
	if (sb->st_uid != geteuid() && sb->st_uid != 0) {
		snprintf(why, whylen, "owned by uid %u, neither this user nor root (set "
			 "allow_insecure_plugins = true to load it anyway)", (unsigned)sb->st_uid);
		return why;
	}
	return NULL;
}

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#elif defined(__i386__)
#define HOST_MACHINE EM_386
#elif defined(__arm__)
#define HOST_MACHINE EM_ARM
#elif defined(__riscv)
#define HOST_MACHINE EM_RISCV
#endif

/* dlopen maps a file as its headers say: a truncated file then faults (SIGBUS) inside
 * the loader, in this process. Check the headers against the file first. NULL when the
 * file looks like a shared object for this machine whose segments are all there. */
static const char *check_elf(const char *path, char *why, size_t whylen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		snprintf(why, whylen, "cannot open: %s", strerror(errno));
		return why;
	}
	ElfW(Ehdr) eh;
	struct stat sb;
	const char *bad = NULL;
	if (fstat(fileno(f), &sb) || fread(&eh, sizeof(eh), 1, f) != 1 ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
		bad = "not an ELF file";
	} else if (eh.e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
#ifdef HOST_MACHINE
		   eh.e_machine != HOST_MACHINE ||
#endif
		   eh.e_ident[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB
										   : ELFDATA2MSB)) {
		snprintf(why, whylen, "built for another machine (ELF machine %u, class %u)",
			 (unsigned)eh.e_machine, (unsigned)eh.e_ident[EI_CLASS]);
		bad = why;
	} else if (eh.e_type != ET_DYN) {
		bad = "not a shared object";
	} else if (eh.e_phentsize != sizeof(ElfW(Phdr)) || eh.e_phnum == 0 ||
		   (uint64_t)eh.e_phoff + (uint64_t)eh.e_phnum * sizeof(ElfW(Phdr)) >
			   (uint64_t)sb.st_size) {
		bad = "truncated or damaged ELF file (program headers)";
	} else {
		for (unsigned i = 0; i < eh.e_phnum && !bad; i++) {
			ElfW(Phdr) ph;
			if (fseek(f, (long)(eh.e_phoff + i * sizeof(ph)), SEEK_SET) ||
			    fread(&ph, sizeof(ph), 1, f) != 1)
				bad = "truncated or damaged ELF file (program headers)";
			else if (ph.p_type == PT_LOAD &&
				 (uint64_t)ph.p_offset + ph.p_filesz > (uint64_t)sb.st_size)
				bad = "truncated ELF file: a segment ends past the end of the file";
		}
	}
	fclose(f);
	if (bad && bad != why)
		snprintf(why, whylen, "%s", bad);
	return bad ? why : NULL;
}

static int load_file_locked(th_plugins *reg, const char *path, char *why, size_t whylen)
{
	struct stat sb;
	if (!reg->allow_insecure_plugins && stat(path, &sb) == 0 && insecure(&sb, why, whylen)) {
		th_log_warn("plugins", "%s: refused: %s", path, why);
		return TH_EPLUGIN;
	}
	if (check_elf(path, why, whylen)) {
		th_log_warn("plugins", "%s: refused: %s", path, why);
		return TH_EPLUGIN;
	}
	dlerror();
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *err = dlerror();
		snprintf(why, whylen, "not loadable: %s", err ? err : "unknown error");
		th_log_warn("plugins", "%s: refused: %s", path, why);
		return TH_EPLUGIN;
	}
	th_plugin_entry_fn entry;
	*(void **)&entry = dlsym(h, TH_PLUGIN_ENTRY);
	const th_plugin *d = entry ? entry() : NULL;
	if (!d) {
		snprintf(why, whylen, "%s", entry ? "entry point returned no descriptor"
						  : "no entry point " TH_PLUGIN_ENTRY "()");
		th_log_warn("plugins", "%s: refused: %s", path, why);
		dlclose(h);
		return TH_EPLUGIN;
	}
	return add_plugin(reg, d, path, h, why, whylen);
}

void th_plugins_set_load_hook(th_plugins *reg, th_plugins_load_hook fn, void *ud)
{
	pthread_mutex_lock(&reg->load_mu);
	reg->hook = fn;
	reg->hook_ud = ud;
	pthread_mutex_unlock(&reg->load_mu);
}

void th_plugins_allow_insecure_plugins(th_plugins *reg, bool allow)
{
	pthread_mutex_lock(&reg->load_mu);
	reg->allow_insecure_plugins = allow;
	pthread_mutex_unlock(&reg->load_mu);
}

/* The record of path; *unchanged tells it was tried before and has not changed since.
 * NULL when out of memory. */
static struct seen *seen_entry(th_plugins *reg, const char *path, const struct stat *sb,
			       bool *unchanged)
{
	*unchanged = false;
	for (size_t i = 0; i < reg->nseen; i++) {
		struct seen *s = &reg->seen[i];
		if (strcmp(s->path, path) != 0)
			continue;
		*unchanged = s->dev == sb->st_dev && s->ino == sb->st_ino &&
			     s->ctime.tv_sec == sb->st_ctim.tv_sec &&
			     s->ctime.tv_nsec == sb->st_ctim.tv_nsec;
		s->dev = sb->st_dev;
		s->ino = sb->st_ino;
		s->ctime = sb->st_ctim;
		return s;
	}
	char *copy = strdup(path);
	if (!copy ||
	    reserve((void **)&reg->seen, &reg->seen_cap, reg->nseen, 1, sizeof(*reg->seen))) {
		free(copy);
		return NULL;
	}
	reg->seen[reg->nseen] = (struct seen){copy, sb->st_dev, sb->st_ino, sb->st_ctim, NULL};
	return &reg->seen[reg->nseen++];
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_plugin_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && n > 3 && strcmp(d->d_name + n - 3, ".so") == 0;
}

int th_plugins_load_dir(th_plugins *reg, const char *dir, unsigned *loaded,
			unsigned *refused)
{
	unsigned ok = 0, bad = 0;
	char why[512];
	pthread_mutex_lock(&reg->load_mu);
	struct stat dsb;
	int n = -1;
	struct dirent **names = NULL;
	if (stat(dir, &dsb) != 0) {
		th_log_error("plugins", "cannot read plugin directory %s: %s", dir,
			     strerror(errno));
	} else if (!S_ISDIR(dsb.st_mode)) {
		th_log_error("plugins", "cannot read plugin directory %s: not a directory", dir);
	} else if (!reg->allow_insecure_plugins && insecure(&dsb, why, sizeof(why))) {
		th_log_error("plugins", "plugin directory %s refused: %s", dir, why);
	} else if ((n = scandir(dir, &names, is_plugin_file, by_name)) < 0) {
		th_log_error("plugins", "cannot read plugin directory %s: %s", dir,
			     strerror(errno));
	}
	if (n < 0) {
		pthread_mutex_unlock(&reg->load_mu);
		return TH_ESYS;
	}
	if (!reg->dir || strcmp(reg->dir, dir) != 0) {
		free(reg->dir);
		reg->dir = strdup(dir);
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat sb;
		bool unchanged;
		int len = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		free(names[i]);
		if (len >= (int)sizeof(path) || stat(path, &sb) || !S_ISREG(sb.st_mode))
			continue;
		struct seen *s = seen_entry(reg, path, &sb, &unchanged);
		if (unchanged || (reg->hook && reg->hook(reg->hook_ud, path)))
			continue;
		int rc = load_file_locked(reg, path, why, sizeof(why));
		if (s) {
			free(s->refused);
			s->refused = rc ? strdup(why) : NULL;
		}
		if (rc == 0)
			ok++;
		else
			bad++;
	}
	free(names);
	pthread_mutex_unlock(&reg->load_mu);
	if (loaded)
		*loaded = ok;
	if (refused)
		*refused = bad;
	return 0;
}

size_t th_plugins_refused(th_plugins *reg, size_t i, char *file, size_t filelen, char *why,
			  size_t whylen)
{
	pthread_mutex_lock(&reg->load_mu);
	size_t k = 0, n = 0;
	for (size_t j = 0; j < reg->nseen; j++) {
		if (!reg->seen[j].refused)
			continue;
		if (k++ == i) {
			snprintf(file, filelen, "%s", reg->seen[j].path);
			snprintf(why, whylen, "%s", reg->seen[j].refused);
		}
		n++;
	}
	pthread_mutex_unlock(&reg->load_mu);
	return n;
}

const th_task_entry *th_plugins_find_or_rescan(th_plugins *reg, const char *name)
{
	const th_task_entry *e = th_plugins_find(reg, name);
	if (e || reg->mode != TH_PLUGINS_RUN)
		return e;
	/* `taskhost add` checks tasks against the directory, so a task added but unknown
	 * here is most likely in a plugin dropped in since the last load: look. Loads are
	 * serialised; whoever waited for another load finds the task it brought */
	pthread_mutex_lock(&reg->load_mu);
	char *dir = reg->dir ? strdup(reg->dir) : NULL;
	pthread_mutex_unlock(&reg->load_mu);
	if (!dir)
		return NULL;
	if (!(e = th_plugins_find(reg, name))) {
		th_log_info("plugins", "task '%s' unknown: looking for new plugins in %s", name,
			    dir);
		th_plugins_load_dir(reg, dir, NULL, NULL);
		e = th_plugins_find(reg, name);
	}
	free(dir);
	return e;
}

const th_task_entry *th_plugins_find(th_plugins *reg, const char *name)
{
	pthread_rwlock_rdlock(&reg->lock);
	const th_task_entry *e = find_locked(reg, name);
	pthread_rwlock_unlock(&reg->lock);
	return e;
}

const char *th_task_entry_name(const th_task_entry *e)
{
	return e->task->name;
}

const char *th_task_entry_plugin(const th_task_entry *e)
{
	return e->plugin->desc->name;
}

void th_task_entry_defaults(const th_task_entry *e, th_task_defaults *out)
{
	const th_plugin *d = e->plugin->desc;
	memset(out, 0, sizeof(*out));
	/* members of 1.1 exist only if the plugin was built against 1.1 or later */
	if (d->abi_minor < 1 || d->task_size < offsetof(th_task, timeout_ms) + sizeof(unsigned))
		return;
	out->queue = e->task->queue;
	out->max_attempts = e->task->max_attempts;
	out->backoff_ms = e->task->backoff_ms;
	out->timeout_ms = e->task->timeout_ms;
}

size_t th_plugins_task_count(th_plugins *reg)
{
	pthread_rwlock_rdlock(&reg->lock);
	size_t n = reg->ntasks;
	pthread_rwlock_unlock(&reg->lock);
	return n;
}

int th_plugins_task_info(th_plugins *reg, size_t i, th_task_info *out)
{
	pthread_rwlock_rdlock(&reg->lock);
	int rc = TH_EINVAL;
	if (i < reg->ntasks) {
		const th_task_entry *e = reg->tasks[i];
		const th_plugin *d = e->plugin->desc;
		*out = (th_task_info){e->task->name, e->task->description ? e->task->description : "",
				      e->plugin->file, d->name, d->version ? d->version : ""};
		rc = 0;
	}
	pthread_rwlock_unlock(&reg->lock);
	return rc;
}

int th_plugin_thread_new(th_plugins *reg, th_plugin_thread **out)
{
	th_plugin_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return TH_ENOMEM;
	t->reg = reg;
	*out = t;
	return 0;
}

void th_plugin_thread_free(th_plugin_thread *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		if (t->state[i] != 1)
			continue;
		pthread_rwlock_rdlock(&t->reg->lock);
		const th_plugin *d = t->reg->plugins[i]->desc;
		pthread_rwlock_unlock(&t->reg->lock);
		if (d->thread_fini) {
			current = d->name;
			d->thread_fini();
			current = NULL;
		}
	}
	free(t->state);
	free(t);
}

int th_plugins_run(th_plugin_thread *t, const th_task_entry *e, th_ctx *ctx, th_ret *ret)
{
	const struct plugin *p = e->plugin;
	if (p->index >= t->n) {
		size_t n = p->index + 8;
		unsigned char *s = realloc(t->state, n);
		if (!s)
			return TH_ENOMEM;
		memset(s + t->n, 0, n - t->n);
		t->state = s;
		t->n = n;
	}
	if (t->state[p->index] == 0) {
		int rc = 0;
		if (p->desc->thread_init) {
			current = p->desc->name;
			rc = p->desc->thread_init();
			current = NULL;
		}
		t->state[p->index] = rc ? 2 : 1;
		if (rc)
			th_log_error("plugins", "%s: thread_init failed (returned %d)", p->file, rc);
	}
	if (t->state[p->index] != 1)
		return TH_EPLUGIN;
	*ret = e->task->run(ctx);
	return 0;
}
