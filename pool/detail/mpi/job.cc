#include "pool/detail/mpi/job.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "pool/progress_bar.h"

namespace pool::detail {

void MpiJob::show_progress(std::optional<std::uint64_t> total, const char* description) {
  ProgressBarOptions options;
  options.description = description;
  bar_ = std::make_unique<ProgressBar>(total, std::move(options));
}

void MpiJob::count_done(std::uint64_t items) {
  items_done_ += items;
  if (bar_) bar_->update(items_done_);
}

void MpiJob::end_progress() {
  if (bar_) bar_->finish();
  bar_.reset();
}

}  // namespace pool::detail
