// The one header users include: every pool, pool::range, pool::fn, pool::SharedArray, pool::gil,
// pool::Trace, and the errors pools throw.
#ifndef POOL_POOL_H_
#define POOL_POOL_H_

#include "pool/args.h"
#include "pool/async_result.h"
#include "pool/cpus.h"
#include "pool/errors.h"
#include "pool/fn.h"
#include "pool/futures.h"
#include "pool/gil.h"
#include "pool/pool_concept.h"
#include "pool/print.h"
#include "pool/process_pool.h"
#include "pool/progress_bar.h"
#include "pool/range.h"
#include "pool/result_stream.h"
#include "pool/retry.h"
#include "pool/shared_array.h"
#include "pool/thread_pools.h"
#include "pool/trace.h"

static_assert(pool::Pool<pool::ProcessPool> && pool::Pool<pool::GilThreadPool> &&
                  pool::Pool<pool::FreeThreadPool>,
              "every pool offers the same calls");

#endif  // POOL_POOL_H_
