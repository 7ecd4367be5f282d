// Structured logs: one JSON object a line on stderr with ts, level, node, role, msg,
// request_id and trace_id, plus fields whose names carry their units (e.g. duration_ms).
// A request's ids follow its work across threads: ScopedContext sets them for the calling thread
// (Info/Warn/Error/Debug read them through Current()), and WithContext wraps work handed to
// another thread (the BlockingPool does it for every Run) so that the store's and the cache's
// lines carry the same request_id as the handler's.
// Thread-safety: every function may be called from any thread after Init; the context is
// per thread. Ownership: a process-wide logger (spdlog's stderr sink), set up once by Init.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace millions::log {

enum class Level { kDebug, kInfo, kWarn, kError };

void Init(std::string node, std::string role, Level min_level = Level::kInfo);
Level ParseLevel(std::string_view name);  // "debug" | "info" | "warn" | "error"

using Value = std::variant<int64_t, double, bool, std::string_view>;
struct Field {
  std::string_view key;
  Value value;
  Field(std::string_view k, int v) : key(k), value(int64_t{v}) {}
  Field(std::string_view k, int64_t v) : key(k), value(v) {}
  Field(std::string_view k, uint64_t v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
};

// Request-scoped identifiers; empty when the line is not about a request.
struct Context {
  std::string_view request_id;
  std::string_view trace_id;
};

void Write(Level level, const Context& ctx, std::string_view msg,
           std::initializer_list<Field> fields = {});
// Whether a line of `level` would be written: lets a hot path skip building its fields.
bool Enabled(Level level);

// The context set on this thread by the innermost live ScopedContext; empty when none is.
const Context& Current();

// Sets this thread's context until destroyed (then restores the previous one). Owns copies of
// the ids. Not for use across a co_await: another coroutine may run on the thread meanwhile;
// hand ids to other threads with WithContext instead.
class ScopedContext {
 public:
  explicit ScopedContext(const Context& ctx);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;

 private:
  std::string request_id_, trace_id_;
  Context view_;
  const Context* previous_;
};

// fn wrapped to run under a copy of ctx (by default this thread's current context).
template <class Fn>
auto WithContext(Fn fn, const Context& ctx = Current()) {
  return [fn = std::move(fn), rid = std::string(ctx.request_id),
          tid = std::string(ctx.trace_id)]() mutable -> std::invoke_result_t<Fn&> {
    ScopedContext scope({rid, tid});
    return fn();
  };
}

inline void Debug(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kDebug, Current(), msg, f);
}
inline void Info(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, Current(), msg, f);
}
inline void Warn(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, Current(), msg, f);
}
inline void Error(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kError, Current(), msg, f);
}

}  // namespace millions::log
