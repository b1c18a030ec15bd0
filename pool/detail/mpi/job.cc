#include "pool/detail/mpi/job.h"

#include <cstdint>
#include <memory>
#include <utility>

#include "pool/progress_bar.h"

namespace pool::detail {

MpiCallProgress::~MpiCallProgress() {
  if (bar) bar->finish();
}

void MpiCallProgress::show(const char* description) {
  ProgressBarOptions options;
  options.description = description;
  bar = std::make_unique<ProgressBar>(total, std::move(options));
}

void MpiCallProgress::count(std::uint64_t items) {
  items_done += items;
  if (bar) bar->update(items_done);
}

}  // namespace pool::detail
