// capture_output: every line a task writes reaches the caller's stdout whole, labelled with its
// worker and task. Each test runs its pool in a child process whose stdout is a file, then reads
// the file: two workers writing 10^4 lines of 200 characters each must never mix two lines.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "pool/pool.h"
#include "tests/child_process.h"
#include "tests/leak_check.h"
#include "tests/pool_types.h"

namespace {

constexpr int kLines = 20'000;
constexpr int kWidth = 200;

// The item's number, then filler to kWidth characters.
std::string body_of(int item) {
  std::string body = std::to_string(item) + ":";
  body.resize(kWidth, static_cast<char>('a' + item % 26));
  return body;
}

template <class P>
P make_capturing(std::shared_ptr<pool::Trace> trace = nullptr);
template <>
pool::ProcessPool make_capturing(std::shared_ptr<pool::Trace> trace) {
  return pool::ProcessPool(2, {.capture_output = true, .trace = std::move(trace)});
}
template <>
pool::testing::SpawnProcessPool make_capturing(std::shared_ptr<pool::Trace> trace) {
  return pool::testing::SpawnProcessPool(2, {.capture_output = true, .trace = std::move(trace)});
}
template <>
pool::testing::ForkserverProcessPool make_capturing(std::shared_ptr<pool::Trace> trace) {
  return pool::testing::ForkserverProcessPool(2,
                                              {.capture_output = true, .trace = std::move(trace)});
}
template <>
pool::GilThreadPool make_capturing(std::shared_ptr<pool::Trace> trace) {
  return pool::GilThreadPool(2, pool::GilThreadPool::kDefaultSwitchInterval,
                             {.trace = std::move(trace), .capture_output = true});
}
template <>
pool::FreeThreadPool make_capturing(std::shared_ptr<pool::Trace> trace) {
  return pool::FreeThreadPool(2, {.trace = std::move(trace), .capture_output = true});
}

// Runs `write_lines` in a child whose stdout is a file; returns the file's lines.
std::vector<std::string> lines_written_by(const std::function<void()>& write_lines) {
  char path[] = "/tmp/pool_output_capture_XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  const pool::testing::ChildOutcome outcome = pool::testing::run_in_child(
      [&](std::ostream&) {
        std::fflush(stdout);
        ::dup2(fd, STDOUT_FILENO);
        write_lines();
        std::fflush(stdout);
        return 0;
      },
      std::chrono::seconds(120));
  ::close(fd);
  EXPECT_TRUE(outcome.exited_with(0)) << outcome.describe();
  std::ifstream file(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);) lines.push_back(line);
  ::unlink(path);
  return lines;
}

// Every line whole and labelled with the task that wrote it; every task's line there once.
void expect_labelled_lines(const std::vector<std::string>& lines) {
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kLines));
  const std::regex labelled(R"(\[worker ([01]) \| task (\d+)\] (\d+):([a-z]+))");
  std::set<int> tasks;
  for (const std::string& line : lines) {
    std::smatch parts;
    ASSERT_TRUE(std::regex_match(line, parts, labelled)) << "a mixed or unlabelled line: " << line;
    const int task = std::stoi(parts[2]);
    EXPECT_EQ(std::stoi(parts[3]), task) << "labelled with another task: " << line;
    EXPECT_EQ(line.substr(line.find("] ") + 2), body_of(task));
    tasks.insert(task);
  }
  EXPECT_EQ(tasks.size(), static_cast<std::size_t>(kLines));
}

template <class P>
class OutputCapture : public pool::testing::NoLeftoversTest {};
TYPED_TEST_SUITE(OutputCapture, pool::testing::EveryLocalPool, pool::testing::PoolName);

TYPED_TEST(OutputCapture, PoolPrintLinesArriveWholeAndLabelledWithTheirTask) {
  expect_labelled_lines(lines_written_by([] {
    auto workers = make_capturing<TypeParam>();
    workers.map(
        [](int item) {
          pool::print(body_of(item));
          return item;
        },
        pool::range(0, kLines), 64);
  }));
}

TYPED_TEST(OutputCapture, CapturedLinesAreInstantEventsOfATracedPool) {
  auto trace = std::make_shared<pool::Trace>();
  {
    auto workers = make_capturing<TypeParam>(trace);
    workers.map(
        [](int item) {
          pool::print("line " + std::to_string(item));
          return item;
        },
        pool::range(0, 6), 1);
  }
  ASSERT_TRUE(trace->complete());
  std::set<std::int64_t> tasks;
  for (const pool::OutputLine& line : trace->output()) {
    EXPECT_EQ(line.text, "line " + std::to_string(line.task));
    EXPECT_GE(line.worker, 0);
    EXPECT_LE(line.worker, 1);
    tasks.insert(line.task);
  }
  EXPECT_EQ(trace->output().size(), 6u);
  EXPECT_EQ(tasks, (std::set<std::int64_t>{0, 1, 2, 3, 4, 5}));
  std::ostringstream json;
  trace->write_chrome_json(json);
  EXPECT_NE(json.str().find(R"("ph":"i","name":"output")"), std::string::npos);
}

using ProcessOutputCapture = pool::testing::NoLeftoversTest;

TEST_F(ProcessOutputCapture, PrintfAndCoutInAWorkerArriveWholeAndLabelled) {
  expect_labelled_lines(lines_written_by([] {
    pool::ProcessPool workers(2, {.capture_output = true});
    workers.map(
        [](int item) {
          const std::string body = body_of(item);
          if (item % 2 == 0) {
            // In pieces: a line is written out only once it is whole.
            std::printf("%.*s", 50, body.c_str());
            std::printf("%s\n", body.c_str() + 50);
          } else {
            std::cout << body.substr(0, 120) << body.substr(120) << std::endl;
          }
          return item;
        },
        pool::range(0, kLines), 64);
  }));
}

TEST_F(ProcessOutputCapture, WithoutCaptureLinesAreLeftAsTheTaskWroteThem) {
  const std::vector<std::string> lines = lines_written_by([] {
    pool::ProcessPool workers(2);
    workers.map(
        [](int item) {
          pool::print(body_of(item));
          return item;
        },
        pool::range(0, 10), 1);
  });
  ASSERT_EQ(lines.size(), 10u);
  for (const std::string& line : lines) EXPECT_EQ(line.rfind("[worker", 0), std::string::npos);
}

}  // namespace
