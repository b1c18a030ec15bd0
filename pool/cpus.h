// How many CPUs this process may run on.
#ifndef POOL_CPUS_H_
#define POOL_CPUS_H_

namespace pool {

// The CPUs in this process's affinity mask (sched_getaffinity), so Slurm's and cgroups' CPU sets
// are respected; at least 1. This is the default size of every pool.
int available_cpus();

}  // namespace pool

#endif  // POOL_CPUS_H_
