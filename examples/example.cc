#include "examples/example.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace examples {
namespace po = boost::program_options;

namespace {

// Above this a typo (--ncores 40000) would fork until the machine gives out.
constexpr std::int64_t kMaxCores = 4096;

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::kProcess:
      return "process";
    case Backend::kGil:
      return "gil";
    case Backend::kFree:
      return "free";
    case Backend::kSerial:
      return "serial";
    case Backend::kMpi:
      return "mpi";
  }
  return "?";
}

nlohmann::ordered_json stats_json(const pool::TraceStats& stats) {
  nlohmann::ordered_json workers = nlohmann::ordered_json::array();
  for (const pool::WorkerStats& worker : stats.per_worker) {
    workers.push_back({{"busy", worker.busy()},
                       {"run", worker.run},
                       {"overhead", worker.overhead},
                       {"gil_wait", worker.gil_wait},
                       {"idle", worker.idle},
                       {"tasks", worker.tasks},
                       {"items", worker.items}});
  }
  return {{"wall", stats.wall},
          {"efficiency", stats.efficiency()},
          {"run", stats.run},
          {"startup", stats.startup},
          {"overhead", stats.overhead},
          {"gil_wait", stats.gil_wait},
          {"idle", stats.idle},
          {"idle_at_end", stats.idle_at_end},
          {"shutdown", stats.shutdown},
          {"dropped_events", stats.dropped_events},
          {"workers", std::move(workers)}};
}

}  // namespace

Example::Example(std::string name, std::string usage)
    : name_(std::move(name)), usage_(std::move(usage)) {}

void fail_on_purpose(std::int64_t item, bool crash) {
  if (crash) {
    volatile int* nowhere = nullptr;
    *nowhere = static_cast<int>(item);
  }
  throw std::domain_error("item " + std::to_string(item) + " failed on purpose (--fail-at)");
}

int Example::report_failure(const std::exception& error, const std::string& where,
                            const std::string& stack) const {
  std::cerr << name_ << ": " << error.what() << "\n";
  if (!stack.empty()) {
    std::cerr << "  " << where << ":\n";
    std::istringstream frames(stack);
    for (std::string frame; std::getline(frames, frame);) std::cerr << "    " << frame << "\n";
  }
  return 1;
}

void Example::parse(int argc, char** argv) {
  po::options_description common("Common options");
  common.add_options()(
      "ncores", po::value<std::string>()->default_value(std::to_string(pool::available_cpus())),
      "workers (default: the CPUs this process may use)")(
      "backend", po::value<std::string>()->default_value("process"),
      "process (worker processes), gil (threads sharing one lock, like CPython), "
      "free (free threads, like Python 3.13t), serial (one loop, no pool) or mpi (the ranks of an "
      "MPI job: run under mpirun or srun)")("json", po::bool_switch(&json_),
                                            "print one JSON line instead of the text")(
      "progress", po::bool_switch(&progress_), "draw a progress bar on stderr (pools only)")(
      "pin", po::bool_switch(&pin_),
      "bind worker i to the i-th CPU this process may use (process, gil and free)")(
      "capture-output", po::bool_switch(&capture_output_),
      "label every line a task prints with its worker and task, \"[worker 1 | task 17] ...\" "
      "(process, gil and free)")(
      "trace", po::value<std::string>(&trace_path_)->value_name("FILE"),
      "write the pool's timeline to FILE as a Chrome trace (Perfetto, chrome://tracing; "
      "tools/timeline FILE draws it)")(
      "stats", po::bool_switch(&stats_),
      "print each worker's busy %, the pool's efficiency and where the rest of the time went")(
      "start", po::value<std::string>()->value_name("METHOD"),
      "how the process backend starts its workers: fork, spawn (a new execution of this program "
      "per worker) or forkserver (forks of one such execution); default: fork, or forkserver "
      "once this process runs threads")(
      "task-timeout", po::value<std::string>()->value_name("SECONDS"),
      "a task (process) or a rank's chunk (mpi) running longer ends the call with a report: a "
      "hung task, or a lost node");
  options_.add(common);
  flags_ = parse_flags(argc, argv, usage_, options_);

  const std::int64_t ncores = whole_number("ncores", 1);
  if (ncores > kMaxCores) usage_error("--ncores must be at most " + std::to_string(kMaxCores));
  ncores_ = static_cast<int>(ncores);
  ncores_given_ = !flags_["ncores"].defaulted();
  if (flags_.count("task-timeout") != 0) {
    task_timeout_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(positive_number("task-timeout")));
  }
  if (flags_.count("start") != 0) {
    start_ = pool::start_named(text("start"));
    if (!start_) {
      usage_error("--start must be fork, spawn or forkserver, not '" + text("start") + "'");
    }
  }
  const std::string backend = text("backend");
  if (backend == "process") {
    backend_ = Backend::kProcess;
  } else if (backend == "gil") {
    backend_ = Backend::kGil;
  } else if (backend == "free") {
    backend_ = Backend::kFree;
  } else if (backend == "serial") {
    backend_ = Backend::kSerial;
  } else if (backend == "mpi") {
    if (needs_shared_memory_) {
      usage_error(
          "--backend mpi is not available: this example's workers write into shared arrays, "
          "which MPI ranks on other nodes cannot reach; use process, gil or free");
    }
    backend_ = Backend::kMpi;
    // MPI_Init (a few hundred ms) is start-up like mpirun's launch, outside the timed span; the
    // worker ranks serve from here on.
    pool::MpiPool::serve_workers();
    const int ranks = std::max(1, pool::MpiPool::world_size() - 1);
    if (ncores_given_ && ncores_ > ranks) {
      usage_error("--ncores " + std::to_string(ncores_) + " is more than the MPI job's " +
                  std::to_string(ranks) + " worker ranks (mpirun -np " +
                  std::to_string(pool::MpiPool::world_size()) + "; rank 0 hands out the work)");
    }
  } else {
    usage_error("--backend must be process, gil, free, serial or mpi, got '" + backend + "'");
  }
  const bool traced = !trace_path_.empty() || stats_;
  if (traced && backend_ == Backend::kSerial) {
    usage_error("--trace and --stats record a pool; --backend serial has none");
  }
  if (flags_.count("trace") != 0 && trace_path_.empty()) usage_error("--trace needs a file name");
  if (!trace_path_.empty()) {
    // Found out now, not after the run.
    std::ofstream probe(trace_path_);
    if (!probe) {
      usage_error("--trace: cannot write '" + trace_path_ + "': " + std::strerror(errno));
    }
  }
}

std::shared_ptr<pool::Trace> Example::new_trace() {
  if (trace_path_.empty() && !stats_) return nullptr;
  trace_ = std::make_shared<pool::Trace>();
  trace_->set_label(name_);
  return trace_;
}

std::string Example::text(const std::string& flag) const { return flags_[flag].as<std::string>(); }

std::int64_t Example::whole_number(const std::string& flag, std::int64_t minimum) const {
  return parse_at_least(name_, flag, text(flag), minimum);
}

double Example::positive_number(const std::string& flag) const {
  return parse_positive(name_, flag, text(flag));
}

void Example::usage_error(const std::string& message) const {
  examples::usage_error(name_, message);
}

std::string Example::running_on() const {
  switch (backend_) {
    case Backend::kProcess:
      return "running with " + std::to_string(ncores_) + " processes";
    case Backend::kGil:
    case Backend::kFree:
      return "running with " + std::to_string(ncores_) + " threads";
    case Backend::kMpi:
      return "running with " + std::to_string(ncores_) + " MPI worker ranks";
    case Backend::kSerial:
      break;
  }
  return "running serially";
}

void Example::start_clock() { started_ = std::chrono::steady_clock::now(); }

void Example::stop_clock() { stopped_ = std::chrono::steady_clock::now(); }

int Example::report(const Outcome& outcome) const {
  const double seconds = std::chrono::duration<double>(*stopped_ - started_).count();
  if (json_) {
    nlohmann::ordered_json line = {{"example", name_},   {"backend", backend_name(backend_)},
                                   {"ncores", ncores()}, {"n", outcome.n},
                                   {"seconds", seconds}, {"value", outcome.value}};
    for (const auto& [key, value] : outcome.fields.items()) line[key] = value;
    if (stats_ && trace_) line["stats"] = stats_json(trace_->stats());
    std::cout << line.dump() << std::endl;
  } else {
    std::printf("Time in seconds: %.3f\n", seconds);
    for (const std::string& text : outcome.lines) std::printf("%s\n", text.c_str());
    if (stats_ && trace_) std::cout << "\n" << trace_->stats();
    std::cout.flush();
    std::fflush(stdout);
  }
  if (!trace_path_.empty() && trace_) {
    try {
      trace_->save(trace_path_);
    } catch (const std::system_error& error) {
      std::cerr << name_ << ": " << error.what() << "\n";
      return 1;
    }
    std::cerr << name_ << ": wrote the trace to " << trace_path_ << " (" << trace_->spans().size()
              << " spans; tools/timeline " << trace_path_ << " draws it)\n";
  }
  if (outcome.failure.empty()) return 0;
  std::cerr << name_ << ": " << outcome.failure << "\n";
  return 1;
}

}  // namespace examples
