#include "core/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/env.h"

namespace millions::log {
namespace {

struct State {
  std::string node = "-";
  std::string role = "-";
  Level min = Level::kInfo;
  std::shared_ptr<spdlog::logger> logger;
};

State& S() {
  static State s;
  return s;
}

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

thread_local const Context* t_current = nullptr;
const Context kEmpty{};

}  // namespace

const Context& Current() { return t_current ? *t_current : kEmpty; }

ScopedContext::ScopedContext(const Context& ctx)
    : request_id_(ctx.request_id), trace_id_(ctx.trace_id), previous_(t_current) {
  view_ = {request_id_, trace_id_};
  t_current = &view_;
}

ScopedContext::~ScopedContext() { t_current = previous_; }

bool Enabled(Level level) { return level >= S().min; }

void Init(std::string node, std::string role, Level min_level) {
  auto& s = S();
  s.node = std::move(node);
  s.role = std::move(role);
  s.min = min_level;
  // stderr_sink_mt writes each line with one call under a lock, so lines never interleave.
  s.logger = std::make_shared<spdlog::logger>("millions",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
  s.logger->set_pattern("%v");
  s.logger->flush_on(spdlog::level::trace);
}

Level ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return Level::kInfo;
}

void Write(Level level, const Context& ctx, std::string_view msg,
           std::initializer_list<Field> fields) {
  auto& s = S();
  if (level < s.min) return;
  boost::json::object o;
  o["ts"] = FormatRfc3339(Env::Default().WallMillis());
  o["level"] = LevelName(level);
  o["node"] = s.node;
  o["role"] = s.role;
  o["msg"] = msg;
  if (!ctx.request_id.empty()) o["request_id"] = ctx.request_id;
  if (!ctx.trace_id.empty()) o["trace_id"] = ctx.trace_id;
  for (const auto& f : fields) {
    std::visit([&](const auto& v) { o[f.key] = v; }, f.value);
  }
  std::string line = boost::json::serialize(o);
  if (s.logger) {
    s.logger->info(line);
  } else {
    fprintf(stderr, "%s\n", line.c_str());
  }
}

}  // namespace millions::log
