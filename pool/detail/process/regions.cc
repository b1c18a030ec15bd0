// Arena space for new jobs: a region when one fits, a wait while running jobs hold the space, and
// a larger arena, handed to every worker, when no job runs and the region still does not fit.
#include <algorithm>
#include <optional>
#include <utility>

#include "pool/detail/process/core.h"
#include "pool/detail/process/message.h"
#include "pool/detail/process/os.h"

namespace pool::detail {

std::uint64_t ProcessPoolCore::allocate_region(std::size_t bytes, Lifecycle::State latest) {
  check_can_submit(latest);
  for (;;) {
    if (std::optional<std::uint64_t> offset = arena_.allocate(bytes)) {
      try {
        arena_.check_memory(*offset, bytes);
      } catch (...) {
        arena_.free(*offset);
        throw;
      }
      return *offset;
    }
    const std::size_t before = arena_.regions();
    if (before == 0) {
      grow_arena(bytes);
      continue;
    }
    // Running jobs hold the space: wait until one finishes, then try again.
    drive_until([&] { return arena_.regions() < before || broken_ || lifecycle_.state() > latest; },
                std::nullopt);
    check_can_submit(latest);
  }
}

void ProcessPoolCore::grow_arena(std::size_t bytes) {
  SharedSegment larger =
      SharedSegment::create(round_to_pages(std::max(Arena::space_for(bytes), 2 * arena_.size())));
  for (std::uint32_t i = 0; i < workers_.size(); ++i) {
    if (!workers_[i].alive) continue;
    if (send(i, make_message(MessageType::kMapArena, i, 0, larger.size()), larger.fd())) {
      workers_[i].awaiting_arena_ack = true;
      ++arena_acks_pending_;
    }
  }
  drive_until([this] { return arena_acks_pending_ == 0; }, std::nullopt);
  // Workers forked from now on inherit the new mapping.
  arena_ = Arena(std::move(larger));
}

}  // namespace pool::detail
