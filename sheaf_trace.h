/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of sheafmod, in the "sheaf" system: prefill, return, refill,
 * barn traffic and flushes.  Usable from perf, trace-cmd, bpftrace and
 * tracefs (events/sheaf/).  Cache names are copied into a fixed array, the
 * one way that works the same on every supported kernel.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM sheaf

#if !defined(_SHEAF_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _SHEAF_TRACE_H

#include <linux/tracepoint.h>

#include "sheaf_internal.h"

/*
 * The format files show the names of these enum values unless they are
 * defined here: perf, trace-cmd and bpftrace could not evaluate them.
 */
TRACE_DEFINE_ENUM(SHEAF_TO_SPARE);
TRACE_DEFINE_ENUM(SHEAF_TO_BARN);
TRACE_DEFINE_ENUM(SHEAF_TO_SLAB);
TRACE_DEFINE_ENUM(SHEAF_BARN_GET);
TRACE_DEFINE_ENUM(SHEAF_BARN_PUT);

TRACE_EVENT(sheaf_prefill,
	TP_PROTO(struct sheaf_cache *sc, unsigned int wanted,
		 const struct sheaf *sheaf),
	TP_ARGS(sc, wanted, sheaf),
	TP_STRUCT__entry(
		__array(char, cache, SHEAF_NAME_LEN)
		__field(unsigned int, wanted)
		__field(unsigned int, size)
		__field(unsigned int, capacity)
	),
	TP_fast_assign(
		strscpy(__entry->cache, sc->name, SHEAF_NAME_LEN);
		__entry->wanted = wanted;
		__entry->size = sheaf ? sheaf->size : 0;
		__entry->capacity = sheaf ? sheaf->capacity : 0;
	),
	TP_printk("cache=%s wanted=%u size=%u capacity=%u%s",
		  __entry->cache, __entry->wanted, __entry->size,
		  __entry->capacity, __entry->capacity ? "" : " failed")
);

TRACE_EVENT(sheaf_return,
	TP_PROTO(struct sheaf_cache *sc, unsigned int size, int fate),
	TP_ARGS(sc, size, fate),
	TP_STRUCT__entry(
		__array(char, cache, SHEAF_NAME_LEN)
		__field(unsigned int, size)
		__field(int, fate)
	),
	TP_fast_assign(
		strscpy(__entry->cache, sc->name, SHEAF_NAME_LEN);
		__entry->size = size;
		__entry->fate = fate;
	),
	TP_printk("cache=%s size=%u to=%s", __entry->cache, __entry->size,
		  __print_symbolic(__entry->fate,
				   { SHEAF_TO_SPARE, "spare" },
				   { SHEAF_TO_BARN, "barn" },
				   { SHEAF_TO_SLAB, "slab" }))
);

TRACE_EVENT(sheaf_refill,
	TP_PROTO(struct sheaf_cache *sc, unsigned int before,
		 unsigned int wanted, int ret),
	TP_ARGS(sc, before, wanted, ret),
	TP_STRUCT__entry(
		__array(char, cache, SHEAF_NAME_LEN)
		__field(unsigned int, before)
		__field(unsigned int, wanted)
		__field(int, ret)
	),
	TP_fast_assign(
		strscpy(__entry->cache, sc->name, SHEAF_NAME_LEN);
		__entry->before = before;
		__entry->wanted = wanted;
		__entry->ret = ret;
	),
	TP_printk("cache=%s before=%u wanted=%u ret=%d", __entry->cache,
		  __entry->before, __entry->wanted, __entry->ret)
);

TRACE_EVENT(sheaf_barn,
	TP_PROTO(struct sheaf_cache *sc, int op, bool ok),
	TP_ARGS(sc, op, ok),
	TP_STRUCT__entry(
		__array(char, cache, SHEAF_NAME_LEN)
		__field(int, op)
		__field(int, node)
		__field(bool, ok)
	),
	TP_fast_assign(
		strscpy(__entry->cache, sc->name, SHEAF_NAME_LEN);
		__entry->op = op;
		__entry->node = numa_mem_id();
		__entry->ok = ok;
	),
	TP_printk("cache=%s node=%d %s %s", __entry->cache, __entry->node,
		  __print_symbolic(__entry->op,
				   { SHEAF_BARN_GET, "get" },
				   { SHEAF_BARN_PUT, "put" }),
		  __entry->ok ? "ok" : "failed")
);

TRACE_EVENT(sheaf_flush,
	TP_PROTO(struct sheaf_cache *sc, unsigned int objects),
	TP_ARGS(sc, objects),
	TP_STRUCT__entry(
		__array(char, cache, SHEAF_NAME_LEN)
		__field(unsigned int, objects)
	),
	TP_fast_assign(
		strscpy(__entry->cache, sc->name, SHEAF_NAME_LEN);
		__entry->objects = objects;
	),
	TP_printk("cache=%s objects=%u", __entry->cache, __entry->objects)
);

#endif /* _SHEAF_TRACE_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE sheaf_trace
#include <trace/define_trace.h>
