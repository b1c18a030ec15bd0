#include "pool/progress_bar.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <utility>

namespace pool {
namespace {

bool utf8_locale() {
  for (const char* name : {"LC_ALL", "LC_CTYPE", "LANG"}) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0') continue;
    const std::string_view text(value);
    return text.find("UTF-8") != std::string_view::npos ||
           text.find("utf8") != std::string_view::npos ||
           text.find("utf-8") != std::string_view::npos;
  }
  return false;
}

int terminal_width(std::FILE* stream) {
  winsize size{};
  if (::ioctl(::fileno(stream), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

// 00:07, 12:34, 1:02:03, as tqdm.
std::string clock_time(double seconds) {
  const auto total = static_cast<long long>(std::max(0.0, seconds));
  char text[32];
  if (total >= 3600) {
    std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", total / 3600, total / 60 % 60,
                  total % 60);
  } else {
    std::snprintf(text, sizeof(text), "%02lld:%02lld", total / 60, total % 60);
  }
  return text;
}

// "225.00k it/s", or "3.50 s/it" when slower than one item a second.
std::string rate_text(std::uint64_t done, double seconds) {
  char text[32];
  if (done == 0 || seconds <= 0) return "? it/s";
  const double rate = static_cast<double>(done) / seconds;
  if (rate < 1) {
    std::snprintf(text, sizeof(text), "%.2f s/it", 1 / rate);
    return text;
  }
  const char* prefixes[] = {"", "k", "M", "G", "T"};
  double scaled = rate;
  int prefix = 0;
  while (scaled >= 1000 && prefix < 4) {
    scaled /= 1000;
    ++prefix;
  }
  std::snprintf(text, sizeof(text), "%.2f%s it/s", scaled, prefixes[prefix]);
  return text;
}

std::string bar_text(double fraction, int cells, bool unicode) {
  static constexpr std::string_view kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  std::string bar;
  const double filled = std::clamp(fraction, 0.0, 1.0) * cells;
  const int full = static_cast<int>(filled);
  for (int i = 0; i < full; ++i) bar += unicode ? "█" : "#";
  int used = full;
  if (full < cells) {
    const int eighth = static_cast<int>((filled - full) * 8);
    if (unicode && eighth > 0) {
      bar += kEighths[eighth];
      ++used;
    }
  }
  bar.append(static_cast<std::size_t>(cells - used), unicode ? ' ' : '.');
  return bar;
}

}  // namespace

ProgressBar::ProgressBar(std::optional<std::uint64_t> total, Options options)
    : ProgressBar(total, std::move(options), Clock::now()) {}

ProgressBar::ProgressBar(std::optional<std::uint64_t> total, Options options,
                         Clock::time_point start)
    : total_(total),
      options_(std::move(options)),
      terminal_(options_.terminal.value_or(::isatty(::fileno(options_.stream)) == 1)),
      unicode_(terminal_ && utf8_locale()),
      start_(start) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(std::uint64_t done, Clock::time_point now) {
  if (finished_) return;
  done_ = done;
  const auto period = terminal_ ? options_.redraw_every : options_.line_every;
  // A plain line waits a period before the first one: a short call prints only its last line.
  const Clock::time_point last = drawn_at_.value_or(terminal_ ? now - period : start_);
  if (now - last >= period) draw(now);
}

void ProgressBar::finish(Clock::time_point now) {
  if (finished_) return;
  draw(now);
  if (terminal_) std::fputc('\n', options_.stream);
  std::fflush(options_.stream);
  finished_ = true;
}

void ProgressBar::draw(Clock::time_point now) {
  drawn_at_ = now;
  const std::chrono::duration<double> elapsed = now - start_;
  const int width = terminal_ ? terminal_width(options_.stream) : 0;
  const std::string text = format(options_.description, done_, total_, elapsed, width, unicode_);
  if (terminal_) {
    // \x1b[K clears what a longer earlier drawing left to the right.
    std::fprintf(options_.stream, "\r%s\x1b[K", text.c_str());
  } else {
    std::fprintf(options_.stream, "%s\n", text.c_str());
  }
  std::fflush(options_.stream);
}

std::string ProgressBar::format(const std::string& description, std::uint64_t done,
                                std::optional<std::uint64_t> total,
                                std::chrono::duration<double> elapsed, int width, bool unicode) {
  const double seconds = elapsed.count();
  std::string prefix = description.empty() ? "" : description + ": ";
  const std::string rate = rate_text(done, seconds);
  if (!total) {
    return prefix + std::to_string(done) + " [" + clock_time(seconds) + ", " + rate + "]";
  }
  const double fraction =
      *total == 0 ? 1.0 : static_cast<double>(std::min(done, *total)) / static_cast<double>(*total);
  char percent[8];
  std::snprintf(percent, sizeof(percent), "%3d%%", static_cast<int>(fraction * 100));
  std::string eta = "?";
  if (done >= *total) {
    eta = clock_time(0);
  } else if (done > 0 && seconds > 0) {
    eta = clock_time(static_cast<double>(*total - done) * seconds / static_cast<double>(done));
  }
  const std::string counts = " " + std::to_string(done) + "/" + std::to_string(*total) + " [" +
                             clock_time(seconds) + "<" + eta + ", " + rate + "]";
  // The bar takes what the terminal leaves; a plain line gets a short one.
  const int used = static_cast<int>(prefix.size() + 6 + counts.size());
  const int cells = width > 0 ? std::clamp(width - 1 - used, 1, 60) : 10;
  return prefix + percent + "|" + bar_text(fraction, cells, unicode) + "|" + counts;
}

}  // namespace pool
