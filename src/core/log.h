// Structured logs: one JSON object a line on stderr with ts, level, node, role, msg,
// request_id and trace_id, plus fields whose names carry their units (e.g. duration_ms).
// Thread-safety: every function may be called from any thread after Init.
// Ownership: a process-wide logger (spdlog's stderr sink), set up once by Init.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
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

inline void Info(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, {}, msg, f);
}
inline void Warn(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, {}, msg, f);
}
inline void Error(std::string_view msg, std::initializer_list<Field> f = {}) {
  Write(Level::kError, {}, msg, f);
}

}  // namespace millions::log
