// The one header users include: every pool, pool::range, and the errors pools throw.
#ifndef POOL_POOL_H_
#define POOL_POOL_H_

#include "pool/cpus.h"
#include "pool/errors.h"
#include "pool/process_pool.h"
#include "pool/range.h"

#endif  // POOL_POOL_H_
