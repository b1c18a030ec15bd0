// How values travel between processes: trivially copyable types as their bytes, everything else
// through cereal's binary archive. A type that is neither is rejected at compile time.
#ifndef POOL_DETAIL_SERIALIZATION_H_
#define POOL_DETAIL_SERIALIZATION_H_

#include <cereal/archives/binary.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/complex.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>
#include <cstddef>
#include <cstring>
#include <istream>
#include <new>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <type_traits>

namespace pool::detail {

template <class T>
inline constexpr bool kRawBytes = std::is_trivially_copyable_v<T>;

template <class T>
inline constexpr bool kCerealSerializable =
    cereal::traits::is_output_serializable<T, cereal::BinaryOutputArchive>::value&&
        cereal::traits::is_input_serializable<T, cereal::BinaryInputArchive>::value;

template <class T>
inline constexpr bool kTransferable = kRawBytes<T> || kCerealSerializable<T>;

// Reads from memory it does not own, without copying it.
class MemoryReadBuffer : public std::streambuf {
 public:
  MemoryReadBuffer(const std::byte* data, std::size_t size) {
    char* begin = const_cast<char*>(reinterpret_cast<const char*>(data));
    setg(begin, begin, begin + size);
  }
};

// Appends to a std::string.
class StringWriteBuffer : public std::streambuf {
 public:
  explicit StringWriteBuffer(std::string& out) : out_(out) {}

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    out_.append(s, static_cast<std::size_t>(n));
    return n;
  }
  int_type overflow(int_type c) override {
    if (!traits_type::eq_int_type(c, traits_type::eof()))
      out_.push_back(traits_type::to_char_type(c));
    return traits_type::not_eof(c);
  }

 private:
  std::string& out_;
};

// Appends values of type T to a byte string.
template <class T>
class Encoder {
 public:
  explicit Encoder(std::string& out) : out_(out) {}

  void operator()(const T& value) {
    if constexpr (kRawBytes<T>) {
      out_.append(reinterpret_cast<const char*>(&value), sizeof(T));
    } else {
      if (!archive_) archive_.emplace(stream_);
      (*archive_)(value);
    }
  }

 private:
  std::string& out_;
  StringWriteBuffer buffer_{out_};
  std::ostream stream_{&buffer_};
  std::optional<cereal::BinaryOutputArchive> archive_;
};

// Reads back what Encoder<T> wrote, one value at a time.
template <class T>
class Decoder {
 public:
  Decoder(const std::byte* data, std::size_t size) : data_(data), size_(size) {
    if constexpr (!kRawBytes<T>) reader_.emplace(data, size);
  }

  T next() {
    if constexpr (kRawBytes<T>) {
      if (offset_ + sizeof(T) > size_) throw std::runtime_error("pool: truncated value data");
      alignas(T) unsigned char storage[sizeof(T)];
      std::memcpy(storage, data_ + offset_, sizeof(T));
      offset_ += sizeof(T);
      return *std::launder(reinterpret_cast<T*>(storage));
    } else {
      T value;
      reader_->archive(value);
      return value;
    }
  }

 private:
  struct CerealReader {
    CerealReader(const std::byte* data, std::size_t size) : buffer(data, size) {}
    MemoryReadBuffer buffer;
    std::istream stream{&buffer};
    cereal::BinaryInputArchive archive{stream};
  };

  const std::byte* data_;
  std::size_t size_;
  std::size_t offset_ = 0;
  std::optional<CerealReader> reader_;  // only for cereal types: a stream costs a locale
};

// A task function reconstructed in a worker; F need not be default-constructible when it is
// trivially copyable (a lambda with by-value captures).
template <class F>
class DecodedFunction {
 public:
  DecodedFunction(const std::byte* data, std::size_t size) {
    if constexpr (kRawBytes<F>) {
      if (size != sizeof(F)) throw std::runtime_error("pool: task function has the wrong size");
      std::memcpy(storage_, data, sizeof(F));
      function_ = std::launder(reinterpret_cast<F*>(storage_));
    } else {
      MemoryReadBuffer buffer(data, size);
      std::istream stream(&buffer);
      cereal::BinaryInputArchive archive(stream);
      function_ = new (storage_) F;
      archive(*function_);
    }
  }
  ~DecodedFunction() { function_->~F(); }
  DecodedFunction(const DecodedFunction&) = delete;
  DecodedFunction& operator=(const DecodedFunction&) = delete;

  F& get() { return *function_; }

 private:
  alignas(F) unsigned char storage_[sizeof(F)];
  F* function_ = nullptr;
};

template <class T>
std::string encode_one(const T& value) {
  std::string out;
  Encoder<T> encode(out);
  encode(value);
  return out;
}

}  // namespace pool::detail

#endif  // POOL_DETAIL_SERIALIZATION_H_
