/*
 * bench_proc.c - what /proc says about the daemon (CPU time, peak RSS and its reset) and
 * about the machine (CPU, memory, kernel, load).
 *
 * Owns: parsing /proc and uname. Writes nothing but /proc/PID/clear_refs ("5" resets
 * VmHWM to the current RSS, Linux >= 4.0).
 *
 * Must never: write to any other /proc file, or signal the process it reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"

double bench_proc_cpu(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long long utime = 0, stime = 0;
	size_t n;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The name (field 2) may hold spaces and ')': fields go on after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t status_kib(const char *path, const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	uint64_t v = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtoull(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v * 1024;
}

uint64_t bench_proc_hwm(pid_t pid)
{
	char path[64];

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	return status_kib(path, "VmHWM");
}

int bench_proc_reset_hwm(pid_t pid)
{
	char path[64];
	int fd, ret = 0;

	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "5", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

uint64_t bench_proc_mem_available(void)
{
	return status_kib("/proc/meminfo", "MemAvailable");
}

void bench_proc_machine(struct bench_machine *m)
{
	struct utsname u;
	char line[512];
	FILE *f;

	memset(m, 0, sizeof(*m));
	if (!uname(&u)) {
		snprintf(m->hostname, sizeof(m->hostname), "%s", u.nodename);
		snprintf(m->kernel, sizeof(m->kernel), "%s %s", u.sysname, u.release);
		snprintf(m->arch, sizeof(m->arch), "%s", u.machine);
	}
	m->cpus = sysconf(_SC_NPROCESSORS_ONLN);
	m->mem_bytes = status_kib("/proc/meminfo", "MemTotal");
	f = fopen("/proc/cpuinfo", "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			char *c = strchr(line, ':');

			if (c && !strncmp(line, "model name", 10)) {
				c++;
				while (*c == ' ' || *c == '\t')
					c++;
				c[strcspn(c, "\n")] = 0;
				snprintf(m->cpu, sizeof(m->cpu), "%s", c);
				break;
			}
		}
		fclose(f);
	}
}

void bench_proc_loadavg(double la[3])
{
	if (getloadavg(la, 3) != 3)
		la[0] = la[1] = la[2] = -1;
}
