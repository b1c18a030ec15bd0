#include "pool/progress_bar.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <list>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pool/pool.h"
#include "tests/leak_check.h"
#include "tests/pool_types.h"

namespace {

using pool::ProgressBar;
using std::chrono::milliseconds;
using std::chrono::seconds;

// What a ProgressBar writes to a FILE*, as text.
class MemoryStream {
 public:
  MemoryStream() : file_(::open_memstream(&buffer_, &size_)) {}
  ~MemoryStream() {
    std::fclose(file_);
    std::free(buffer_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buffer_, size_);
  }

 private:
  char* buffer_ = nullptr;
  std::size_t size_ = 0;
  std::FILE* file_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

ProgressBar::Options plain(std::FILE* stream, std::string description = "map") {
  ProgressBar::Options options;
  options.description = std::move(description);
  options.stream = stream;
  options.terminal = false;
  return options;
}

TEST(ProgressBarFormat, ShowsPercentBarCountsElapsedEtaAndRate) {
  EXPECT_EQ(ProgressBar::format("map", 450, 1000, seconds(2), 0, false),
            "map:  45%|####......| 450/1000 [00:02<00:02, 225.00 it/s]");
  EXPECT_EQ(ProgressBar::format("", 1000, 1000, seconds(4), 0, false),
            "100%|##########| 1000/1000 [00:04<00:00, 250.00 it/s]");
}

TEST(ProgressBarFormat, WithoutATotalShowsCountElapsedAndRate) {
  EXPECT_EQ(ProgressBar::format("imap", 42, std::nullopt, seconds(1), 0, false),
            "imap: 42 [00:01, 42.00 it/s]");
}

TEST(ProgressBarFormat, ScalesFastRatesAndInvertsSlowOnes) {
  EXPECT_NE(ProgressBar::format("", 3'000'000, 10'000'000, seconds(2), 0, false).find("1.50M it/s"),
            std::string::npos);
  EXPECT_NE(ProgressBar::format("", 2, 10, seconds(7), 0, false).find("3.50 s/it"),
            std::string::npos);
  EXPECT_NE(ProgressBar::format("", 0, 10, seconds(0), 0, false).find("[00:00<?, ? it/s]"),
            std::string::npos);
}

TEST(ProgressBarFormat, LongRunsShowHours) {
  EXPECT_NE(ProgressBar::format("", 1, 2, seconds(3723), 0, false).find("[1:02:03<1:02:03"),
            std::string::npos);
}

TEST(ProgressBarFormat, FillsTheTerminalWidth) {
  const std::string line = ProgressBar::format("map", 5, 10, seconds(1), 72, false);
  EXPECT_EQ(line.size(), 71u) << line;
}

TEST(ProgressBar, WritesPlainLinesAtMostOncePerPeriodAndOnceAtTheEnd) {
  MemoryStream out;
  const auto start = ProgressBar::Clock::now();
  {
    ProgressBar bar(100, plain(out.file()), start);
    bar.update(10, start + milliseconds(500));   // too early for a line
    bar.update(20, start + milliseconds(1000));  // a line
    bar.update(30, start + milliseconds(1500));  // too soon after it
    bar.update(50, start + milliseconds(2100));  // a line
    bar.finish(start + milliseconds(3000));      // the last line
    bar.update(60, start + milliseconds(9000));  // finished: nothing
  }
  const std::vector<std::string> lines = lines_of(out.text());
  ASSERT_EQ(lines.size(), 3u) << out.text();
  EXPECT_EQ(lines[0], "map:  20%|##........| 20/100 [00:01<00:04, 20.00 it/s]");
  EXPECT_EQ(lines[1], "map:  50%|#####.....| 50/100 [00:02<00:02, 23.81 it/s]");
  EXPECT_EQ(lines[2], "map:  50%|#####.....| 50/100 [00:03<00:03, 16.67 it/s]");
}

TEST(ProgressBar, RedrawsInPlaceOnATerminalAndEndsTheLine) {
  MemoryStream out;
  const auto start = ProgressBar::Clock::now();
  ProgressBar::Options options = plain(out.file());
  options.terminal = true;
  {
    ProgressBar bar(10, options, start);
    bar.update(1, start);
    bar.update(2, start + milliseconds(50));  // within the redraw period
    bar.update(5, start + milliseconds(200));
  }  // the destructor finishes the line
  const std::string text = out.text();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\r'), 3) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_NE(text.find(" 5/10 ["), std::string::npos) << text;
  EXPECT_EQ(text.find(" 2/10 ["), std::string::npos) << text;
}

// Everything written to file descriptor 2 (by this process and its workers) while it lives.
class CapturedStderr {
 public:
  CapturedStderr() : path_(::testing::TempDir() + "/stderr.txt"), saved_(::dup(2)) {
    std::fflush(stderr);
    std::FILE* file = std::fopen(path_.c_str(), "w");
    ::dup2(::fileno(file), 2);
    std::fclose(file);
  }
  ~CapturedStderr() { restore(); }
  std::string text() {
    restore();
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::string path_;
  int saved_;
};

template <class P>
P make_pool(int ncores, bool progress) {
  if constexpr (std::is_base_of_v<pool::ProcessPool, P>) {
    pool::ProcessPoolOptions options;
    options.progress = progress;
    return P(ncores, options);
  } else if constexpr (std::is_same_v<P, pool::GilThreadPool>) {
    pool::ThreadPoolOptions options;
    options.progress = progress;
    return P(ncores, P::kDefaultSwitchInterval, options);
  } else {
    pool::ThreadPoolOptions options;
    options.progress = progress;
    return P(ncores, options);
  }
}

const std::regex kFinalLine(
    R"(^(map|imap|imap_unordered|map_reduce): 100%\|#{10}\| (\d+)/\2 \[\d\d:\d\d<00:00, [0-9.]+[kMG]? it/s\]$)");

template <class P>
class ProgressOption : public pool::testing::NoLeftoversTest {};
TYPED_TEST_SUITE(ProgressOption, pool::testing::EveryLocalPool, pool::testing::PoolName);

TYPED_TEST(ProgressOption, EveryMapCallEndsWithACompleteLine) {
  CapturedStderr captured;
  std::vector<int> squares;
  long total = 0;
  std::vector<int> streamed;
  {
    TypeParam workers = make_pool<TypeParam>(2, true);
    auto square = [](int x) { return x * x; };
    squares = workers.map(square, pool::range(0, 1000), 10);
    for (int value : workers.imap(square, pool::range(0, 300), 7)) streamed.push_back(value);
    total = workers.map_reduce(square, pool::range(0, 500), std::plus<>(), 0L, 25);
    workers.starmap([](int a, int b) { return a + b; },
                    std::vector<std::pair<int, int>>{{1, 2}, {3, 4}});
  }
  const std::vector<std::string> lines = lines_of(captured.text());
  EXPECT_EQ(squares[999], 999 * 999);
  EXPECT_EQ(streamed.size(), 300u);
  EXPECT_EQ(total, 41541750L);
  std::vector<std::string> finals;
  for (const std::string& line : lines) {
    std::smatch match;
    if (std::regex_match(line, match, kFinalLine))
      finals.push_back(match[1].str() + " " + match[2].str());
  }
  EXPECT_EQ(finals, (std::vector<std::string>{"map 1000", "imap 300", "map_reduce 500", "map 2"}))
      << captured.text();
}

TYPED_TEST(ProgressOption, AnInputOfUnknownLengthCountsWithoutATotal) {
  CapturedStderr captured;
  std::list<int> inputs{1, 2, 3, 4, 5};
  std::size_t count = 0;
  {
    TypeParam workers = make_pool<TypeParam>(2, true);
    for (int value : workers.imap([](int x) { return x; },
                                  inputs | std::views::filter([](int x) { return x != 3; }))) {
      count += value > 0;
    }
  }
  EXPECT_EQ(count, 4u);
  const std::string text = captured.text();
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(^imap: 4 \[\d\d:\d\d, [0-9.]+[kMG]? it/s\]$)", std::regex::multiline)))
      << text;
}

TYPED_TEST(ProgressOption, DrawsWhileTheCallerWaits) {
  CapturedStderr captured;
  {
    TypeParam workers = make_pool<TypeParam>(2, true);
    // About 1.2 s: at least one line before the last, which comes when the call returns.
    workers.map(
        [](int) {
          pool::gil::sleep_for(milliseconds(200));
          return 0;
        },
        pool::range(0, 12), 1);
  }
  const std::vector<std::string> lines = lines_of(captured.text());
  ASSERT_GE(lines.size(), 2u) << captured.text();
  EXPECT_TRUE(
      std::regex_match(lines.front(), std::regex(R"(^map: +\d+%\|[#.]{10}\| \d+/12 \[.*\]$)")))
      << lines.front();
  EXPECT_NE(lines.front(), lines.back());
}

TYPED_TEST(ProgressOption, IsSilentUnlessAskedFor) {
  CapturedStderr captured;
  {
    TypeParam workers = make_pool<TypeParam>(2, false);
    workers.map([](int x) { return x; }, pool::range(0, 100));
  }
  EXPECT_EQ(captured.text(), "");
}

TEST(ProgressOptionFailures, AFailedCallEndsItsBarBeforeTheErrorIsReported) {
  CapturedStderr captured;
  pool::ProcessPoolOptions options;
  options.progress = true;
  pool::ProcessPool workers(2, options);
  EXPECT_THROW(workers.map(
                   [](int x) {
                     if (x == 50) throw std::runtime_error("boom");
                     return x;
                   },
                   pool::range(0, 100), 10),
               pool::TaskError);
  const std::string text = captured.text();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  EXPECT_TRUE(std::regex_search(
      text, std::regex(R"(^map: +\d+%\|.*\| \d+/100 \[)", std::regex::multiline)));
}

}  // namespace
