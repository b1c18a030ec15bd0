// The streams (imap, imap_unordered, map_reduce) a pool has open. As in Python, join() lets each
// post the rest of its input first, so that a stream read after join() still gets every result.
#ifndef POOL_DETAIL_LIVE_STREAMS_H_
#define POOL_DETAIL_LIVE_STREAMS_H_

#include <algorithm>
#include <mutex>
#include <vector>

namespace pool::detail {

class LiveStream {
 public:
  // Posts every batch of the input not posted yet.
  virtual void post_rest() = 0;

 protected:
  ~LiveStream() = default;
};

// Thread-safe: a thread pool's streams may be made and dropped while another thread joins.
class LiveStreams {
 public:
  void add(LiveStream* stream) {
    std::lock_guard<std::mutex> guard(mutex_);
    streams_.push_back(stream);
  }
  void remove(LiveStream* stream) {
    std::lock_guard<std::mutex> guard(mutex_);
    streams_.erase(std::remove(streams_.begin(), streams_.end(), stream), streams_.end());
  }
  // Called by join() after close(), before it waits for the posted work.
  void post_rest() {
    std::vector<LiveStream*> streams;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      streams = streams_;
    }
    for (LiveStream* stream : streams) stream->post_rest();
  }

 private:
  std::mutex mutex_;
  std::vector<LiveStream*> streams_;
};

}  // namespace pool::detail

#endif  // POOL_DETAIL_LIVE_STREAMS_H_
