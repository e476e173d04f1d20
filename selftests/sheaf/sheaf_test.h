/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What sheafmod's test modules share: the parameters selftests/sheaf/
 * sheaf.sh drives them with, the assertions, and running the case named
 * by run=.  Included once by each test module, after its pr_fmt.
 */
#ifndef _SHEAF_TEST_H
#define _SHEAF_TEST_H

#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/string.h>

static char *run;
module_param(run, charp, 0444);
MODULE_PARM_DESC(run, "the case to run");

static char result[128] = "none";
module_param_string(result, result, sizeof(result), 0444);
MODULE_PARM_DESC(result, "pass, or skip: <why> (a failed case fails the load)");

static char cases[1024];
module_param_string(cases, cases, sizeof(cases), 0444);
MODULE_PARM_DESC(cases, "all case names");

/* ---- assertions ---------------------------------------------------------- */

static int failures;

#define CHECK(cond) ({							\
	bool __ok = !!(cond);						\
	if (!__ok) {							\
		pr_err("%s:%d: check failed: %s\n", __func__, __LINE__, \
		       #cond);						\
		failures++;						\
	}								\
	__ok;								\
})

#define CHECK_EQ(a, b) ({						\
	long long __a = (a), __b = (b);					\
	bool __ok = __a == __b;						\
	if (!__ok) {							\
		pr_err("%s:%d: %s == %lld, expected %s == %lld\n",	\
		       __func__, __LINE__, #a, __a, #b, __b);		\
		failures++;						\
	}								\
	__ok;								\
})

/* The test bed allows kernel warnings only between these lines. */
#define EXPECT_WARN_BEGIN(tag) pr_info("expect-warn begin %s\n", tag)
#define EXPECT_WARN_END(tag) pr_info("expect-warn end %s\n", tag)

static inline void mark_skipped(const char *reason)
{
	snprintf(result, sizeof(result), "skip: %s", reason);
}

/* ---- running a case --------------------------------------------------------- */

struct test_case {
	const char *name;
	void (*fn)(void);
};

/*
 * Lists the cases in the cases parameter, then runs the one run= names.
 * The test bed finds a case's kernel log by its "case <name>: start" line.
 * Return: 0 if it passed or skipped (or none was asked for), -EINVAL if a
 * check failed or there is no such case.
 */
static inline int run_test_case(const struct test_case *tcs, size_t nr)
{
	const struct test_case *tc;
	size_t len = 0;

	for (tc = tcs; tc < tcs + nr; tc++)
		len += scnprintf(cases + len, sizeof(cases) - len, "%s ",
				 tc->name);
	if (!run)
		return 0;

	for (tc = tcs; tc < tcs + nr; tc++) {
		if (strcmp(tc->name, run))
			continue;
		pr_info("case %s: start\n", tc->name);
		strscpy(result, "pass", sizeof(result));
		tc->fn();
		if (failures) {
			pr_err("case %s: %d checks failed\n", tc->name, failures);
			return -EINVAL;
		}
		pr_info("case %s: %s\n", tc->name, result);
		return 0;
	}
	pr_err("no case named %s\n", run);
	return -EINVAL;
}

#endif /* _SHEAF_TEST_H */
