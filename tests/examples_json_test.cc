// The examples' --json line, as scripts and the scaling tool read it: exactly one JSON object on
// stdout, the common fields, and a value equal to a serial reference computed here, on every
// backend.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>
#include <vector>

#include "examples/slow_series.h"
#include "examples/uniform_chunks.h"
#include "examples/velocity_field.h"

namespace {

using nlohmann::json;

struct ExampleRun {
  int status = -1;  // the exit status, -1 when a signal ended the example
  std::string out;  // everything it printed on stdout
};

// Runs an example binary from the runfiles tree (the test's working directory), stderr left on
// the test's log.
ExampleRun run_example(const std::string& example, const std::string& flags) {
  const std::string command = "examples/" + example + " " + flags;
  ExampleRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  for (std::size_t got; (got = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
    run.out.append(buffer, got);
  }
  const int status = pclose(pipe);
  if (status != -1 && WIFEXITED(status)) run.status = WEXITSTATUS(status);
  return run;
}

int lines_in(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// The JSON object the example printed with --json; a failure (and a null object) unless it exited
// with status 0 and printed exactly that one line.
json run_json(const std::string& example, const std::string& flags) {
  const std::string command = example + " " + flags + " --json";
  const ExampleRun run = run_example(example, flags + " --json");
  EXPECT_EQ(run.status, 0) << command;
  EXPECT_EQ(lines_in(run.out), 1) << command << " printed:\n" << run.out;
  json line = json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  if (line.is_discarded() || !line.is_object()) {
    ADD_FAILURE() << command << " printed no JSON object:\n" << run.out;
    return json();
  }
  return line;
}

constexpr std::int64_t kN = 100'000;

// Each test runs on one backend, with two workers where there is a pool.
class ExamplesJson : public ::testing::TestWithParam<std::string> {
 protected:
  json run_on_backend(const std::string& example, const std::string& flags) {
    return run_json(example, flags + " --ncores 2 --backend " + GetParam());
  }
};

TEST_P(ExamplesJson, EveryExamplePrintsExactlyOneLineOnStdout) {
  for (const std::string example :
       {"slow_series --n 1000", "sleep_map --tasks 2 --seconds 0.01", "trig_series --n 1000"}) {
    const ExampleRun run = run_example(example, "--json --ncores 2 --backend " + GetParam());
    EXPECT_EQ(run.status, 0) << example;
    EXPECT_EQ(lines_in(run.out), 1) << example << " printed:\n" << run.out;
    EXPECT_EQ(run.out.back(), '\n') << example;
  }
}

TEST_P(ExamplesJson, ReportsTheCommonFields) {
  const json line = run_on_backend("trig_series", "--n 1000");
  EXPECT_EQ(line["example"], "trig_series");
  EXPECT_EQ(line["backend"], GetParam());
  EXPECT_EQ(line["ncores"], GetParam() == "serial" ? 1 : 2);
  EXPECT_EQ(line["n"], 1000);
  ASSERT_TRUE(line["seconds"].is_number());
  EXPECT_GT(line["seconds"].get<double>(), 0.0);
  EXPECT_TRUE(line["value"].is_number());
}

TEST_P(ExamplesJson, ProgressBarLeavesStdoutToTheJsonLine) {
  const json line = run_on_backend("slow_series", "--n 10000 --progress");
  EXPECT_EQ(line["example"], "slow_series");
}

TEST_P(ExamplesJson, SlowSeriesEqualsTheSerialSumForEveryStrategy) {
  const double serial = examples::slow_series_partial_sum({1, kN}, examples::DigitMethod::kInteger);
  for (const std::string strategy : {"intervals", "map", "map_reduce"}) {
    const json line =
        run_on_backend("slow_series", "--n " + std::to_string(kN) + " --strategy " + strategy);
    ASSERT_TRUE(line["value"].is_number()) << strategy;
    EXPECT_NEAR(line["value"].get<double>(), serial, 1e-12 * serial) << strategy;
    EXPECT_EQ(line["n"], kN) << strategy;
    EXPECT_EQ(line["strategy"], strategy);
    EXPECT_EQ(line["method"], "integer");
  }
}

TEST_P(ExamplesJson, SlowSeriesStringMethodGivesTheSameSum) {
  const double serial = examples::slow_series_partial_sum({1, kN}, examples::DigitMethod::kInteger);
  const json line = run_on_backend("slow_series", "--n " + std::to_string(kN) + " --method string");
  ASSERT_TRUE(line["value"].is_number());
  EXPECT_NEAR(line["value"].get<double>(), serial, 1e-12 * serial);
  EXPECT_EQ(line["method"], "string");
}

TEST_P(ExamplesJson, SleepMapCompletesEveryTask) {
  const json line = run_on_backend("sleep_map", "--tasks 5 --seconds 0.05");
  EXPECT_EQ(line["value"], 5.0);
  EXPECT_EQ(line["n"], 5);
  EXPECT_EQ(line["tasks"], 5);
  EXPECT_EQ(line["seconds_per_task"], 0.05);
  ASSERT_TRUE(line["seconds"].is_number());
  EXPECT_GT(line["seconds"].get<double>(), 0.0);
}

TEST_P(ExamplesJson, TrigSeriesEqualsADirectLoop) {
  double direct = 0;
  for (std::int64_t i = 1; i <= kN; ++i) direct += std::cos(static_cast<double>(i)) / i;
  const json line = run_on_backend("trig_series", "--n " + std::to_string(kN));
  ASSERT_TRUE(line["value"].is_number());
  EXPECT_NEAR(line["value"].get<double>(), direct, 1e-12);
  EXPECT_EQ(line["n"], kN);
  EXPECT_DOUBLE_EQ(line["exact"].get<double>(), -std::log(2 * std::sin(0.5)));
}

TEST_P(ExamplesJson, VelocityMatchesTheSerialConversionAndTheExactField) {
  const json line = run_on_backend("velocity", "--nlat 6 --nlon 8 --nr 5");
  ASSERT_TRUE(line["value"].is_number());
  EXPECT_LE(line["value"].get<double>(), 1e-12);
  EXPECT_LE(line["max_error"].get<double>(), 1e-12);
  EXPECT_EQ(line["n"], 6 * 8 * 5);
  EXPECT_EQ(line["nlat"], 6);
  EXPECT_EQ(line["nlon"], 8);
  EXPECT_EQ(line["nr"], 5);

  // The stream's Cartesian components straight from the Cartesian points, no spherical basis.
  const examples::SphericalGrid grid{6, 8, 5};
  double sum_x = 0, sum_y = 0, sum_z = 0;
  for (std::int64_t ilat = 0; ilat < grid.nlat; ++ilat) {
    for (std::int64_t ilon = 0; ilon < grid.nlon; ++ilon) {
      for (std::int64_t ir = 0; ir < grid.nr; ++ir) {
        const double theta = grid.theta(ilat), phi = grid.phi(ilon), r = grid.r(ir);
        const double x = r * std::sin(theta) * std::cos(phi);
        const double y = r * std::sin(theta) * std::sin(phi);
        sum_x += examples::kStream[0] - examples::kOmega * y;
        sum_y += examples::kStream[1] + examples::kOmega * x;
        sum_z += examples::kStream[2];
      }
    }
  }
  EXPECT_NEAR(line["sum_vx"].get<double>(), sum_x, 1e-10);
  EXPECT_NEAR(line["sum_vy"].get<double>(), sum_y, 1e-10);
  EXPECT_NEAR(line["sum_vz"].get<double>(), sum_z, 1e-10);
}

TEST_P(ExamplesJson, VelocityScaleMultipliesEachSide) {
  const json line = run_on_backend("velocity", "--nlat 8 --nlon 12 --nr 6 --scale 0.5");
  EXPECT_EQ(line["nlat"], 4);
  EXPECT_EQ(line["nlon"], 6);
  EXPECT_EQ(line["nr"], 3);
  EXPECT_EQ(line["n"], 4 * 6 * 3);
}

TEST_P(ExamplesJson, ElementwiseInputAndDeviationEqualTheSerialOnes) {
  // A chunk size that does not divide n, so the last chunk is short.
  constexpr std::int64_t kElements = 100'000, kChunk = 7'000;
  std::vector<double> a(kElements);
  for (std::int64_t first = 0; first < kElements; first += kChunk) {
    examples::fill_uniform_chunk(
        std::span<double>(a).subspan(first, std::min(kChunk, kElements - first)),
        static_cast<std::uint64_t>(first / kChunk));
  }
  double max_deviation = 0, sum_a = 0;
  for (double value : a) {
    sum_a += value;
    const double x = 2 * std::numbers::pi * value;
    const double s = std::sin(x), c = std::cos(x);
    max_deviation = std::max(max_deviation, std::abs(s * s + c * c - 1.0));
  }

  const json line = run_on_backend(
      "elementwise", "--n " + std::to_string(kElements) + " --chunk " + std::to_string(kChunk));
  ASSERT_TRUE(line["value"].is_number());
  EXPECT_EQ(line["value"].get<double>(), max_deviation);
  EXPECT_LE(line["value"].get<double>(), line["tolerance"].get<double>());
  EXPECT_EQ(line["mean_a"].get<double>(), sum_a / kElements);
  EXPECT_EQ(line["n"], kElements);
  EXPECT_EQ(line["chunk"], kChunk);
}

INSTANTIATE_TEST_SUITE_P(Backends, ExamplesJson,
                         ::testing::Values("process", "gil", "free", "serial"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
