// Result<T>: the value of a request-path operation or the error it met.
// Request paths return results and never throw (docs/errors.md); exceptions are for start-up.
// Thread-safety: a value type. Ownership: holds its value or its Error by value.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace millions {

// Error kinds map one-to-one onto HTTP statuses at the API edge (see docs/errors.md).
enum class Errc {
  kBadInput = 400,
  kUnauthenticated = 401,
  kForbidden = 403,
  kNotFound = 404,
  kConflict = 409,
  kTimeout = 408,
  kTooLarge = 413,
  kUnsupportedMedia = 415,
  kHeadersTooLarge = 431,
  kRateLimited = 429,
  kInternal = 500,
  kUnavailable = 503,
};

struct Error {
  Errc kind = Errc::kInternal;
  std::string code;     // snake_case, stable: clients match on it
  std::string message;  // human text
  int status() const { return static_cast<int>(kind); }
};

inline Error MakeError(Errc kind, std::string code, std::string message) {
  return Error{kind, std::move(code), std::move(message)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status Ok() { return Unit{}; }

}  // namespace millions
