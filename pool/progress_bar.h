// pool::ProgressBar: tqdm's progress line, for the pools' `progress` option or any loop.
//
//   map:  45%|████▌     | 450000/1000000 [00:02<00:02, 225.00k it/s]
//
// On a terminal the line is redrawn in place at most every 100 ms; on anything else (a file, a
// pipe, a Slurm log) a plain line is written at most every second, and once more at the end. An
// unknown total shows the count, the elapsed time and the rate only.
#ifndef POOL_PROGRESS_BAR_H_
#define POOL_PROGRESS_BAR_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace pool {

struct ProgressBarOptions {
  std::string description;                      // printed before the bar, with ": "
  std::FILE* stream = stderr;                   // not owned
  std::optional<bool> terminal;                 // default: whether stream is a terminal
  std::chrono::milliseconds redraw_every{100};  // on a terminal
  std::chrono::milliseconds line_every{1000};   // otherwise
};

class ProgressBar {
 public:
  using Clock = std::chrono::steady_clock;
  using Options = ProgressBarOptions;

  explicit ProgressBar(std::optional<std::uint64_t> total, Options options = {});
  ProgressBar(std::optional<std::uint64_t> total, Options options, Clock::time_point start);
  // finish(), so a failure's message starts on a line of its own.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `done` items so far; draws when the last drawing is old enough.
  void update(std::uint64_t done) { update(done, Clock::now()); }
  void update(std::uint64_t done, Clock::time_point now);
  // Draws the final state and ends the line; later calls do nothing.
  void finish() { finish(Clock::now()); }
  void finish(Clock::time_point now);

  // The text of one drawing, without "\r" or "\n"; width is the terminal's (0: a plain line).
  static std::string format(const std::string& description, std::uint64_t done,
                            std::optional<std::uint64_t> total,
                            std::chrono::duration<double> elapsed, int width, bool unicode);

 private:
  void draw(Clock::time_point now);

  std::optional<std::uint64_t> total_;
  Options options_;
  bool terminal_;
  bool unicode_;
  Clock::time_point start_;
  std::optional<Clock::time_point> drawn_at_;
  std::uint64_t done_ = 0;
  bool finished_ = false;
};

}  // namespace pool

#endif  // POOL_PROGRESS_BAR_H_
