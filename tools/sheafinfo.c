// SPDX-License-Identifier: GPL-2.0
/*
 * sheafinfo: a slabtop-like view of the caches sheafmod manages, read from
 * /sys/kernel/sheaf/<cache>/.
 *
 *	sheafinfo [-1] [-d SECONDS [-n COUNT]] [--json] [--sysfs DIR]
 *
 * Per cache: object size, sheaf capacity, objects cached now, each node's
 * barn (full/empty sheaves), the share of allocations and frees served by
 * the per-CPU sheaves, and how many prefills were served from a sheaf at
 * hand (fast) or had to refill (slow).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES	64
#define MAX_NAME	256

/* The counters the table shows; the JSON output has every counter. */
enum stat {
	ALLOC_CPU_SHEAF,
	ALLOC_SLAB,
	FREE_CPU_SHEAF,
	FREE_SLAB,
	PREFILL_FAST,
	PREFILL_SLOW,
	NR_STATS
};

static const char * const stat_names[NR_STATS] = {
	[ALLOC_CPU_SHEAF] = "alloc_cpu_sheaf",
	[ALLOC_SLAB] = "alloc_slab",
	[FREE_CPU_SHEAF] = "free_cpu_sheaf",
	[FREE_SLAB] = "free_slab",
	[PREFILL_FAST] = "sheaf_prefill_fast",
	[PREFILL_SLOW] = "sheaf_prefill_slow",
};

struct barn {
	int node;
	unsigned long full, empty;
};

struct counter {
	char name[64];
	unsigned long value;
};

struct cache {
	char name[MAX_NAME];
	unsigned long object_size, capacity, cached;
	struct barn barns[MAX_NODES];
	int nr_barns;
	struct counter *counters;
	int nr_counters;
	unsigned long stat[NR_STATS];
	bool has_stat[NR_STATS];
};

static const char *progname = "sheafinfo";
static char sheaf_dir[PATH_MAX];

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-1] [-d SECONDS [-n COUNT]] [--json] [--sysfs DIR]\n"
		"\n"
		"Shows the caches under DIR/kernel/sheaf (sheafmod's statistics).\n"
		"\n"
		"  -1, --once           print once and exit (the default)\n"
		"  -d, --delay SECONDS  refresh every SECONDS until interrupted\n"
		"  -n, --count COUNT    with -d: stop after COUNT refreshes\n"
		"  -j, --json           JSON: one document per refresh\n"
		"      --sysfs DIR      sysfs mount point (default: /sys)\n"
		"  -h, --help           this text\n",
		progname);
}

/*
 * Reads file @name of cache directory @dir into @buf (NUL-terminated).
 * Returns the length, or -1 with errno set.
 */
static ssize_t read_attr(const char *dir, const char *name, char *buf,
			 size_t size)
{
	char path[PATH_MAX];
	size_t len = 0;
	ssize_t n;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (len < size - 1 && (n = fread(buf + len, 1, size - 1 - len, f)) > 0)
		len += n;
	buf[len] = '\0';
	if (ferror(f)) {
		fclose(f);
		errno = EIO;
		return -1;
	}
	fclose(f);
	return len;
}

/* A file holding one unsigned number (and a newline). */
static int read_ulong(const char *dir, const char *name, unsigned long *val)
{
	char buf[64], *end;

	if (read_attr(dir, name, buf, sizeof(buf)) < 0)
		return -1;
	errno = 0;
	*val = strtoul(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n')) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* "node<N> full=<n> empty=<n>" lines. */
static int read_barns(const char *dir, struct cache *c)
{
	char buf[8192], *line, *save;

	if (read_attr(dir, "barns", buf, sizeof(buf)) < 0)
		return -1;
	c->nr_barns = 0;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct barn *b = &c->barns[c->nr_barns];

		if (c->nr_barns == MAX_NODES)
			break;
		if (sscanf(line, "node%d full=%lu empty=%lu", &b->node,
			   &b->full, &b->empty) != 3) {
			errno = EINVAL;
			return -1;
		}
		c->nr_barns++;
	}
	return 0;
}

static void note_counter(struct cache *c, const char *name,
			 unsigned long value)
{
	int i;

	for (i = 0; i < NR_STATS; i++) {
		if (!strcmp(name, stat_names[i])) {
			c->stat[i] = value;
			c->has_stat[i] = true;
		}
	}
}

/* "stats" holds "<counter> <total>" lines, one per counter. */
static int read_counters(const char *dir, struct cache *c)
{
	char buf[16384], *line, *save;
	struct counter *ctr;
	int cap = 0;

	if (read_attr(dir, "stats", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (c->nr_counters == cap) {
			cap = cap ? 2 * cap : 32;
			ctr = realloc(c->counters, cap * sizeof(*ctr));
			if (!ctr)
				return -1;
			c->counters = ctr;
		}
		ctr = &c->counters[c->nr_counters];
		if (sscanf(line, "%63s %lu", ctr->name, &ctr->value) != 2) {
			errno = EINVAL;
			return -1;
		}
		note_counter(c, ctr->name, ctr->value);
		c->nr_counters++;
	}
	return 0;
}

/*
 * Fills @c from directory @name of the sheaf directory.  Returns 0, 1 when
 * the cache went away while being read (skip it), -1 on any other error.
 */
static int read_cache(const char *name, struct cache *c)
{
	char dir[PATH_MAX];

	memset(c, 0, sizeof(*c));
	if (strlen(name) >= sizeof(c->name) ||
	    snprintf(dir, sizeof(dir), "%s/%s", sheaf_dir, name) >=
	    (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(c->name, name, strlen(name) + 1);
	if (read_ulong(dir, "object_size", &c->object_size) ||
	    read_ulong(dir, "capacity", &c->capacity) ||
	    read_ulong(dir, "cached", &c->cached) ||
	    read_barns(dir, c) || read_counters(dir, c)) {
		if (errno == ENOENT)
			return 1;
		fprintf(stderr, "%s: %s: %s\n", progname, dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void free_caches(struct cache *caches, int n)
{
	int i;

	for (i = 0; i < n; i++)
		free(caches[i].counters);
	free(caches);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct cache *)a)->name,
		      ((const struct cache *)b)->name);
}

/* Reads every cache, sorted by name.  Returns their number, or -1. */
static int read_caches(struct cache **out)
{
	struct cache *caches = NULL, *grown;
	int n = 0, cap = 0, err = 0, rc;
	struct dirent *de;
	DIR *d;

	d = opendir(sheaf_dir);
	if (!d) {
		fprintf(stderr, "%s: %s: %s%s\n", progname, sheaf_dir,
			strerror(errno),
			errno == ENOENT ? " (is sheafmod loaded?)" : "");
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			grown = realloc(caches, cap * sizeof(*caches));
			if (!grown) {
				fprintf(stderr, "%s: out of memory\n", progname);
				err = 1;
				break;
			}
			caches = grown;
		}
		rc = read_cache(de->d_name, &caches[n]);
		if (rc < 0) {
			free(caches[n].counters);
			err = 1;
			break;
		}
		if (rc == 0)
			n++;
		else
			free(caches[n].counters);
	}
	closedir(d);
	if (err) {
		free_caches(caches, n);
		return -1;
	}
	if (n)
		qsort(caches, n, sizeof(*caches), by_name);
	*out = caches;
	return n;
}

/* @hit as a share of @hit + @miss, or -1 when there was nothing. */
static double hit_rate(const struct cache *c, enum stat hit, enum stat miss)
{
	unsigned long total;

	if (!c->has_stat[hit] || !c->has_stat[miss])
		return -1;
	total = c->stat[hit] + c->stat[miss];
	return total ? 100.0 * c->stat[hit] / total : -1;
}

static void format_rate(char *buf, size_t size, double rate)
{
	if (rate < 0)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.1f%%", rate);
}

/* "0:full/empty 1:full/empty ..." */
static void format_barns(char *buf, size_t size, const struct cache *c)
{
	size_t len = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < c->nr_barns && len < size; i++)
		len += snprintf(buf + len, size - len, "%s%d:%lu/%lu",
				i ? " " : "", c->barns[i].node,
				c->barns[i].full, c->barns[i].empty);
	if (!c->nr_barns)
		snprintf(buf, size, "-");
}

static void print_table(const struct cache *caches, int n)
{
	char barns[256], alloc[16], free_[16];
	unsigned long objs = 0;
	int i;

	for (i = 0; i < n; i++)
		objs += caches[i].cached;
	printf(" Caches: %d   Objects cached: %lu\n\n", n, objs);
	printf("%-20s %7s %5s %8s  %-24s %7s %7s %10s %10s\n", "NAME",
	       "OBJSIZE", "CAP", "CACHED", "BARNS node:full/empty",
	       "ALLOC", "FREE", "PF_FAST", "PF_SLOW");
	for (i = 0; i < n; i++) {
		const struct cache *c = &caches[i];

		format_barns(barns, sizeof(barns), c);
		format_rate(alloc, sizeof(alloc),
			    hit_rate(c, ALLOC_CPU_SHEAF, ALLOC_SLAB));
		format_rate(free_, sizeof(free_),
			    hit_rate(c, FREE_CPU_SHEAF, FREE_SLAB));
		printf("%-20s %7lu %5lu %8lu  %-24s %7s %7s %10lu %10lu\n",
		       c->name, c->object_size, c->capacity, c->cached, barns,
		       alloc, free_, c->stat[PREFILL_FAST],
		       c->stat[PREFILL_SLOW]);
	}
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static void print_json_rate(const char *key, double rate)
{
	if (rate < 0)
		printf(", \"%s\": null", key);
	else
		printf(", \"%s\": %.4f", key, rate / 100);
}

static void print_json(const struct cache *caches, int n)
{
	int i, j;

	printf("{\"caches\": [");
	for (i = 0; i < n; i++) {
		const struct cache *c = &caches[i];

		printf("%s\n  {\"name\": ", i ? "," : "");
		print_json_string(c->name);
		printf(", \"object_size\": %lu, \"capacity\": %lu, \"cached\": %lu",
		       c->object_size, c->capacity, c->cached);
		printf(", \"barns\": [");
		for (j = 0; j < c->nr_barns; j++)
			printf("%s{\"node\": %d, \"full\": %lu, \"empty\": %lu}",
			       j ? ", " : "", c->barns[j].node,
			       c->barns[j].full, c->barns[j].empty);
		printf("]");
		print_json_rate("alloc_hit_rate",
				hit_rate(c, ALLOC_CPU_SHEAF, ALLOC_SLAB));
		print_json_rate("free_hit_rate",
				hit_rate(c, FREE_CPU_SHEAF, FREE_SLAB));
		printf(", \"stats\": {");
		for (j = 0; j < c->nr_counters; j++) {
			printf("%s", j ? ", " : "");
			print_json_string(c->counters[j].name);
			printf(": %lu", c->counters[j].value);
		}
		printf("}}");
	}
	printf("%s]}\n", n ? "\n" : "");
}

static int show(bool json, bool clear)
{
	struct cache *caches = NULL;
	int n;

	n = read_caches(&caches);
	if (n < 0)
		return -1;
	if (clear)
		printf("\033[H\033[J");
	if (json)
		print_json(caches, n);
	else
		print_table(caches, n);
	free_caches(caches, n);
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "%s: stdout: %s\n", progname, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Waits @seconds for one of the signals in @stop_set (blocked, so that they
 * wait here instead of killing the process).  Returns true when one came.
 */
static bool stopped_within(double seconds, const sigset_t *stop_set)
{
	struct timespec ts;
	int sig;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - ts.tv_sec) * 1e9);
	do {
		sig = sigtimedwait(stop_set, NULL, &ts);
	} while (sig < 0 && errno == EINTR);
	return sig > 0;
}

static int parse_number(const char *arg, const char *what, double *val)
{
	char *end;

	errno = 0;
	*val = strtod(arg, &end);
	if (errno || end == arg || *end || *val <= 0 || *val > 86400 * 365) {
		fprintf(stderr, "%s: bad %s '%s'\n", progname, what, arg);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, '1' },
		{ "delay", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "sysfs", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *sysfs = "/sys";
	double delay = 0, count = 0;
	bool json = false, clear;
	sigset_t stop_set;
	long i;
	int opt;

	while ((opt = getopt_long(argc, argv, "1d:n:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case '1':
			delay = 0;
			break;
		case 'd':
			if (parse_number(optarg, "delay", &delay))
				return 2;
			break;
		case 'n':
			if (parse_number(optarg, "count", &count) ||
			    count != (long)count) {
				fprintf(stderr, "%s: the count is a whole number\n",
					progname);
				return 2;
			}
			break;
		case 'j':
			json = true;
			break;
		case 's':
			sysfs = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	if (snprintf(sheaf_dir, sizeof(sheaf_dir), "%s/kernel/sheaf", sysfs) >=
	    (int)sizeof(sheaf_dir)) {
		fprintf(stderr, "%s: %s: %s\n", progname, sysfs,
			strerror(ENAMETOOLONG));
		return 2;
	}

	if (!delay)
		return show(json, false) ? 1 : 0;

	/* Interrupted between two refreshes, it ends normally. */
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGINT);
	sigaddset(&stop_set, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop_set, NULL);
	/* Like slabtop: redraw in place on a terminal, append otherwise. */
	clear = !json && isatty(STDOUT_FILENO);
	for (i = 0;; i++) {
		if (show(json, clear))
			return 1;
		if (count && i + 1 >= (long)count)
			break;
		if (!clear && !json)
			printf("\n");
		if (stopped_within(delay, &stop_set))
			break;
	}
	return 0;
}
