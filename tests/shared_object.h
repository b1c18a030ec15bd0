// SharedObject<T>: one T in anonymous shared memory, created before a pool forks its workers, so
// that tasks in worker processes and the test see the same object (counters, flags, meters).
#ifndef TESTS_SHARED_OBJECT_H_
#define TESTS_SHARED_OBJECT_H_

#include <sys/mman.h>

#include <new>
#include <type_traits>

namespace pool::testing {

template <class T>
class SharedObject {
  static_assert(std::is_trivially_destructible_v<T>, "workers never run its destructor");

 public:
  SharedObject() {
    void* memory =
        ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::bad_alloc();
    object_ = new (memory) T();
  }
  ~SharedObject() { ::munmap(object_, sizeof(T)); }
  SharedObject(const SharedObject&) = delete;
  SharedObject& operator=(const SharedObject&) = delete;

  T* get() const { return object_; }
  T* operator->() const { return object_; }

 private:
  T* object_;
};

}  // namespace pool::testing

#endif  // TESTS_SHARED_OBJECT_H_
