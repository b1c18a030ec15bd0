// A chunk's items as a worker outside the caller's memory gets them (a forked worker, an MPI
// rank): a pool::range's values computed from the first one, or items cereal-encoded in bytes.
// The same loop serves every such backend, traced or not.
#ifndef POOL_DETAIL_CHUNK_ITEMS_H_
#define POOL_DETAIL_CHUNK_ITEMS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pool/detail/serialization.h"

namespace pool::detail {

struct EncodedChunk {
  std::int64_t first_item = 0;       // input index of the chunk's first item
  std::uint64_t count = 0;           // items in the chunk
  std::int64_t range_first = 0;      // pool::range inputs: the value of the first item
  const std::byte* items = nullptr;  // other inputs: the encoded items
  std::size_t items_size = 0;
};

// Calls at(index) then each(item) for every item, in order; at() learns which task runs, so that
// a failure can be attributed. kTraced: encoded items are all decoded before the first task, as
// Python's workers unpickle a whole task, so decoding shows as overhead and not as run time;
// begins() is called as the first task starts.
template <class Item, bool kLazyRange, bool kTraced, class At, class Begins, class Each>
void for_each_chunk_item(const EncodedChunk& chunk, At&& at, Begins&& begins, Each&& each) {
  if constexpr (kLazyRange) {
    if constexpr (kTraced) begins();
    for (std::uint64_t i = 0; i < chunk.count; ++i) {
      at(chunk.first_item + static_cast<std::int64_t>(i));
      // Unsigned: the sum wraps like the range's own iterator, never overflows a signed type.
      Item item = static_cast<Item>(static_cast<std::uint64_t>(chunk.range_first) + i);
      each(item);
    }
  } else if constexpr (kTraced) {
    struct Decoded {
      Item value;  // not vector<bool>'s proxies
    };
    std::vector<Decoded> items;
    items.reserve(static_cast<std::size_t>(chunk.count));
    Decoder<Item> decode(chunk.items, chunk.items_size);
    for (std::uint64_t i = 0; i < chunk.count; ++i) items.push_back(Decoded{decode.next()});
    begins();
    for (std::uint64_t i = 0; i < chunk.count; ++i) {
      at(chunk.first_item + static_cast<std::int64_t>(i));
      each(items[static_cast<std::size_t>(i)].value);
    }
  } else {
    Decoder<Item> decode(chunk.items, chunk.items_size);
    for (std::uint64_t i = 0; i < chunk.count; ++i) {
      at(chunk.first_item + static_cast<std::int64_t>(i));
      Item item = decode.next();
      each(item);
    }
  }
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_CHUNK_ITEMS_H_
