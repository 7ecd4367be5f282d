#include "core/router.h"

namespace millions::http {
namespace {

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool IsParam(std::string_view seg) {
  return seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
}

bool IsRest(std::string_view seg) { return IsParam(seg) && seg.ends_with("...}"); }

// Matches one route; fills params on success.
bool MatchSegments(const std::vector<std::string>& pattern,
                   const std::vector<std::string_view>& parts, std::string_view path,
                   std::vector<std::pair<std::string, std::string>>* params) {
  params->clear();
  for (size_t i = 0; i < pattern.size(); ++i) {
    const std::string& seg = pattern[i];
    if (IsRest(seg)) {
      if (i >= parts.size() || parts[i].empty()) return false;
      // The rest of the path from this segment on, slashes included.
      size_t offset = static_cast<size_t>(parts[i].data() - path.data());
      params->emplace_back(seg.substr(1, seg.size() - 5), std::string(path.substr(offset)));
      return true;
    }
    if (i >= parts.size()) return false;
    if (IsParam(seg)) {
      if (parts[i].empty()) return false;
      params->emplace_back(seg.substr(1, seg.size() - 2), std::string(parts[i]));
    } else if (seg != parts[i]) {
      return false;
    }
  }
  return pattern.size() == parts.size();
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler) {
  Route r{std::move(method), std::move(pattern), {}, std::move(handler)};
  for (auto seg : Split(r.pattern)) r.segments.emplace_back(seg);
  routes_.push_back(std::move(r));
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  Match m;
  auto parts = Split(path);
  std::vector<std::pair<std::string, std::string>> params;
  for (const auto& r : routes_) {
    if (!MatchSegments(r.segments, parts, path, &params)) continue;
    // HEAD is served by GET routes.
    if (r.method == method || (method == "HEAD" && r.method == "GET")) {
      m.outcome = Outcome::kMatched;
      m.handler = &r.handler;
      m.route = r.pattern;
      m.params = std::move(params);
      return m;
    }
    m.outcome = Outcome::kMethodNotAllowed;
    m.route = r.pattern;
  }
  return m;
}

}  // namespace millions::http
