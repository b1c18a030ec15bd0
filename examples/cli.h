// What every example shares: flag parsing (Boost.Program_options) with one-line errors and exit
// status 2, and Python-like number formatting for output that matches the course's.
#ifndef EXAMPLES_CLI_H_
#define EXAMPLES_CLI_H_

#include <boost/program_options.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace examples {

// Parses argv against `options` (plus --help). Prints usage and exits 0 on --help; prints
// "<program>: error: <what>" and exits 2 on any bad flag.
boost::program_options::variables_map parse_flags(
    int argc, char** argv, const std::string& usage,
    const boost::program_options::options_description& options);

// Reads a whole number >= minimum from a flag's text, or exits 2 naming the flag.
std::int64_t parse_at_least(const std::string& program, const std::string& flag,
                            const std::string& text, std::int64_t minimum);

// Reads a finite number > 0 ("1", "0.05", "1e-3") from a flag's text, or exits 2 naming the flag.
double parse_positive(const std::string& program, const std::string& flag, const std::string& text);

// Reads "1,2,4" as whole numbers >= minimum, or exits 2 naming the flag.
std::vector<std::int64_t> parse_list_at_least(const std::string& program, const std::string& flag,
                                              const std::string& text, std::int64_t minimum);

// Like Python's repr(float): the shortest text that reads back as the same double.
std::string python_repr(double value);

// Exit status after Ctrl-C, as a shell reports a process killed by SIGINT (128 + 2).
inline constexpr int kInterruptedStatus = 130;

// Prints "<program>: interrupted" (Ctrl-C) or "<program>: interrupted by Terminated; the call's
// work was lost" (SIGTERM from a scheduler) to stderr and returns 128 + the signal, as a shell
// reports a process the signal killed, for main to return.
int report_interrupted(const std::string& program, int signal_number = 2);

// Prints "<program>: error: <message>" to stderr and exits with status 2.
[[noreturn]] void usage_error(const std::string& program, const std::string& message);

}  // namespace examples

#endif  // EXAMPLES_CLI_H_
