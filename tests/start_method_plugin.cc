// A task function in a library the test loads with dlopen once it runs: a fork of the test has
// it, a spawned or forkserver worker (a new execution of the test program) does not.
extern "C" long start_method_plugin_square(long x) { return x * x; }
