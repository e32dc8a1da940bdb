/* Owner identity (machine id, boot id, pid namespace, pid, start time) and liveness
 * from /proc for owners on this machine, so a reused pid or a reboot is never taken for
 * a living claimer and an owner elsewhere is never judged by our pids. */
#include "owner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"

/* The start time of process pid, 0 when unknown; *state its state letter ('Z' for a
 * zombie, which is as dead as a claimer gets). */
static uint64_t start_ticks_of(uint32_t pid, char *state)
{
	*state = '?';
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* the command name may hold spaces and parentheses: fields follow the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	unsigned long long ticks = 0;
	/* field 22 is starttime; after ')' come field 3 (state) onwards */
	if (sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
			  "%*d %*d %*d %llu", state, &ticks) != 2)
		return 0;
	return ticks;
}

/* A 128-bit id written in hex (dashes allowed) in the file at path; zeros if none. */
static void read_hex_id(const char *path, uint8_t id[16])
{
	memset(id, 0, 16);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char s[64];
	if (fgets(s, sizeof(s), f)) {
		int k = 0;
		for (char *p = s; *p && k < 32; p++) {
			int v = *p >= '0' && *p <= '9' ? *p - '0'
				: *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
			if (v < 0)
				continue;
			id[k / 2] = (uint8_t)(id[k / 2] << 4 | v);
			k++;
		}
	}
	fclose(f);
}

static void read_boot_id(uint8_t id[16])
{
	read_hex_id("/proc/sys/kernel/random/boot_id", id);
}

static void read_machine_id(uint8_t id[16])
{
	static const uint8_t zero[16];
	read_hex_id("/etc/machine-id", id);
	if (memcmp(id, zero, 16) == 0)
		read_hex_id("/var/lib/dbus/machine-id", id);
}

static uint64_t pidns_of_self(void)
{
	struct stat sb;
	return stat("/proc/self/ns/pid", &sb) == 0 ? (uint64_t)sb.st_ino : 0;
}

void th_owner_self(th_owner *o)
{
	memset(o, 0, sizeof(*o));
	while (o->instance == 0)
		if (getrandom(&o->instance, sizeof(o->instance), 0) != sizeof(o->instance))
			o->instance = (uint64_t)getpid() << 32 ^ (uint64_t)th_clock_mono_us();
	o->pid = (uint32_t)getpid();
	char state;
	o->start_ticks = start_ticks_of(o->pid, &state);
	read_boot_id(o->boot_id);
	read_machine_id(o->machine_id);
	o->pidns = pidns_of_self();
}

enum th_liveness th_owner_alive(const th_owner *o)
{
	static const uint8_t zero[16];
	uint8_t boot[16], machine[16];
	read_machine_id(machine);
	if (memcmp(o->machine_id, zero, 16) && memcmp(machine, zero, 16) &&
	    memcmp(o->machine_id, machine, 16))
		return TH_OWNER_UNKNOWN; /* its pids and boots are not ours to judge */
	read_boot_id(boot);
	if (memcmp(o->boot_id, zero, 16) && memcmp(boot, zero, 16) && memcmp(o->boot_id, boot, 16))
		return TH_OWNER_DEAD; /* claimed before this machine last booted */
	if (o->pidns != pidns_of_self())
		return TH_OWNER_UNKNOWN;
	if (o->pid == 0 || (kill((pid_t)o->pid, 0) != 0 && errno == ESRCH))
		return TH_OWNER_DEAD;
	char state;
	uint64_t ticks = start_ticks_of(o->pid, &state);
	if (state == 'Z' || state == 'X')
		return TH_OWNER_DEAD; /* killed, not yet reaped */
	if (o->start_ticks && ticks && ticks != o->start_ticks)
		return TH_OWNER_DEAD; /* the pid was reused */
	return TH_OWNER_ALIVE;
}
