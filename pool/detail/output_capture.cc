#include "pool/detail/output_capture.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <streambuf>
#include <string>
#include <string_view>

namespace pool::detail {
namespace {

// Writes all of `text` to `fd`, holding the workers' lock (a dead holder's lock is recovered).
void write_whole(int fd, const std::string& text, pthread_mutex_t* lock) {
  const int locked = pthread_mutex_lock(lock);
  if (locked == EOWNERDEAD) pthread_mutex_consistent(lock);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t wrote = ::write(fd, text.data() + done, text.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) break;  // nowhere to write: the line is lost, as without capture
    done += static_cast<std::size_t>(wrote);
  }
  if (locked == 0 || locked == EOWNERDEAD) pthread_mutex_unlock(lock);
}

// One captured stream: bytes in, prefixed whole lines out.
struct LineWriter {
  int fd = -1;
  pthread_mutex_t* lock = nullptr;
  std::string pending;  // written, not yet up to a newline

  void add(const char* data, std::size_t size) {
    pending.append(data, size);
    const std::size_t last = pending.rfind('\n');
    if (last == std::string::npos) return;
    write_whole(fd, labelled_lines(std::string_view(pending).substr(0, last + 1)), lock);
    pending.erase(0, last + 1);
  }
  void flush() {
    if (!pending.empty()) add("\n", 1);
  }
};

LineWriter g_out;
LineWriter g_err;

ssize_t cookie_write(void* cookie, const char* data, size_t size) {
  static_cast<LineWriter*>(cookie)->add(data, size);
  return static_cast<ssize_t>(size);
}

// std::cout and friends, onto the captured stdio streams.
class StdioBuf final : public std::streambuf {
 public:
  explicit StdioBuf(FILE** file) : file_(file) {}

 protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    return std::fputc(traits_type::to_char_type(c), *file_) == EOF ? traits_type::eof() : c;
  }
  std::streamsize xsputn(const char* data, std::streamsize size) override {
    return static_cast<std::streamsize>(
        std::fwrite(data, 1, static_cast<std::size_t>(size), *file_));
  }
  int sync() override { return std::fflush(*file_) == 0 ? 0 : -1; }

 private:
  FILE** file_;
};

FILE* open_writer(LineWriter& writer, int fd, pthread_mutex_t* lock) {
  writer.fd = fd;
  writer.lock = lock;
  cookie_io_functions_t io{};
  io.write = cookie_write;
  FILE* file = fopencookie(&writer, "w", io);
  if (file != nullptr) setvbuf(file, nullptr, _IOLBF, BUFSIZ);
  return file;
}

}  // namespace

std::string labelled_lines(std::string_view lines) {
  const OutputLabel& label = t_output_label;
  const std::int64_t task =
      label.item != nullptr ? label.item->load(std::memory_order_relaxed) : label.task;
  std::string prefix;
  if (label.worker >= 0) {
    prefix = "[worker " + std::to_string(label.worker);
    if (task >= 0) prefix += " | task " + std::to_string(task);
    prefix += "] ";
  }
  TraceBuffer* const trace = t_output_trace;
  const std::int64_t now = trace != nullptr ? monotonic_now_ns() : 0;
  std::string out;
  for (std::size_t from = 0; from < lines.size();) {
    const std::size_t end = std::min(lines.find('\n', from), lines.size());
    const std::string_view line = lines.substr(from, end - from);
    out += prefix;
    out += line;
    out += '\n';
    if (trace != nullptr) trace->record_text(now, task, line);
    from = end + 1;
  }
  return out;
}

void init_output_lock(pthread_mutex_t* lock) {
  pthread_mutexattr_t attributes;
  pthread_mutexattr_init(&attributes);
  pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(lock, &attributes);
  pthread_mutexattr_destroy(&attributes);
}

void capture_process_output(int worker, const std::atomic<std::int64_t>* item,
                            pthread_mutex_t* lock) {
  t_output_label = OutputLabel{worker, -1, item};
  std::fflush(nullptr);
  FILE* out = open_writer(g_out, STDOUT_FILENO, lock);
  FILE* err = open_writer(g_err, STDERR_FILENO, lock);
  if (out == nullptr || err == nullptr) return;  // left as they were
  stdout = out;
  stderr = err;
  static StdioBuf out_buf(&stdout);
  static StdioBuf err_buf(&stderr);
  std::cout.rdbuf(&out_buf);
  std::cerr.rdbuf(&err_buf);
  std::clog.rdbuf(&err_buf);
}

void flush_captured_output() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  if (g_out.fd >= 0) g_out.flush();
  if (g_err.fd >= 0) g_err.flush();
}

}  // namespace pool::detail
