#include "pool/detail/throw_site.h"

#include <dlfcn.h>

#include <cstring>

#define BOOST_STACKTRACE_LINK
#include <boost/stacktrace/safe_dump_to.hpp>

#include "pool/detail/stack_trace.h"

namespace pool::detail {
namespace {

struct ThrowSite {
  bool recording = false;
  const void* thrown = nullptr;  // the exception object of the last throw
  std::size_t count = 0;
  void* frames[kMaxStackFrames];
};

thread_local ThrowSite t_site;

// The exception object an exception_ptr holds: its only member in libstdc++ and libc++.
const void* object_of(const std::exception_ptr& error) {
  static_assert(sizeof(std::exception_ptr) == sizeof(void*));
  const void* object = nullptr;
  std::memcpy(&object, &error, sizeof(object));
  return object;
}

}  // namespace

void record_throw_sites() { t_site.recording = true; }

RecordingThrowSites::RecordingThrowSites() : was_recording_(t_site.recording) {
  t_site.recording = true;
}
RecordingThrowSites::~RecordingThrowSites() { t_site.recording = was_recording_; }

std::string throw_site_of(const std::exception_ptr& error) {
  if (!t_site.recording || error == nullptr || t_site.count == 0 ||
      t_site.thrown != object_of(error)) {
    return {};
  }
  return describe_stack(t_site.frames, t_site.count);
}

}  // namespace pool::detail

// Every throw goes through here, then on to the runtime's own __cxa_throw. The thrown object's
// type is left opaque (libstdc++ declares it with void* in some headers, std::type_info* in
// others).
extern "C" [[noreturn]] void __cxa_throw(void* thrown, void* type, void (*destroy)(void*)) {
  using Throw = void (*)(void*, void*, void (*)(void*));
  static const Throw runtime_throw = reinterpret_cast<Throw>(::dlsym(RTLD_NEXT, "__cxa_throw"));
  pool::detail::ThrowSite& site = pool::detail::t_site;
  if (site.recording) {
    site.thrown = thrown;
    // Skips this function's own frame.
    site.count = boost::stacktrace::safe_dump_to(1, site.frames, sizeof(site.frames));
  }
  runtime_throw(thrown, type, destroy);
  __builtin_unreachable();
}
