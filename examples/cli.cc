#include "examples/cli.h"

#include <signal.h>
#include <string.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

namespace examples {
namespace po = boost::program_options;

namespace {

std::string program_name(const char* argv0) {
  const std::string path = argv0 != nullptr ? argv0 : "example";
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool looks_negative_number(const std::string& arg) {
  return arg.size() > 1 && arg[0] == '-' && (std::isdigit(static_cast<unsigned char>(arg[1])) != 0);
}

}  // namespace

void usage_error(const std::string& program, const std::string& message) {
  std::cerr << program << ": error: " << message << " (see --help)\n";
  std::exit(2);
}

po::variables_map parse_flags(int argc, char** argv, const std::string& usage,
                              const po::options_description& options) {
  const std::string program = program_name(argc > 0 ? argv[0] : nullptr);
  po::options_description all(usage);
  all.add_options()("help,h", "print this help and exit");
  all.add(options);
  // "--ncores -3" is a value, not an option: join it so the validator can reject it clearly.
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0 && arg.find('=') == std::string::npos && i + 1 < argc &&
        looks_negative_number(argv[i + 1])) {
      arg += std::string("=") + argv[++i];
    }
    args.push_back(arg);
  }
  po::variables_map flags;
  try {
    po::store(po::command_line_parser(args).options(all).run(), flags);
    po::notify(flags);
  } catch (const po::error& error) {
    usage_error(program, error.what());
  }
  if (flags.count("help") != 0) {
    std::cout << all << "\n";
    std::exit(0);
  }
  return flags;
}

std::int64_t parse_at_least(const std::string& program, const std::string& flag,
                            const std::string& text, std::int64_t minimum) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end || value < minimum) {
    usage_error(program, "--" + flag + " must be a whole number >= " + std::to_string(minimum) +
                             ", got '" + text + "'");
  }
  return value;
}

double parse_positive(const std::string& program, const std::string& flag,
                      const std::string& text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end || !std::isfinite(value) || value <= 0) {
    usage_error(program, "--" + flag + " must be a number > 0, got '" + text + "'");
  }
  return value;
}

std::vector<std::int64_t> parse_list_at_least(const std::string& program, const std::string& flag,
                                              const std::string& text, std::int64_t minimum) {
  std::vector<std::int64_t> values;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    values.push_back(parse_at_least(program, flag, text.substr(start, comma - start), minimum));
    if (comma == std::string::npos) return values;
    start = comma + 1;
  }
}

std::string python_repr(double value) {
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string text(buffer, error == std::errc() ? end : buffer);
  // Python writes integral floats as "2.0", and keeps fixed notation below 1e16.
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return text;
}

int report_interrupted(const std::string& program, int signal_number) {
  if (signal_number == SIGINT) {
    std::cerr << program << ": interrupted\n";
  } else {
    std::cerr << program << ": interrupted by " << strsignal(signal_number)
              << "; the workers were stopped and the call's work was lost\n";
  }
  return 128 + signal_number;
}

}  // namespace examples
