#include "core/router.h"

#include <boost/container/small_vector.hpp>

namespace millions::http {
namespace {

// A path's segments; most paths have a handful, kept on the stack.
using Parts = boost::container::small_vector<std::string_view, 12>;

Parts Split(std::string_view path) {
  Parts out;
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

// Whether `parts` match a route's segments; when they do and `params` is set, fills it,
// reusing its elements' storage (a connection's Request keeps them from request to request).
bool MatchSegments(const std::vector<std::string>& pattern, const Parts& parts,
                   std::string_view path,
                   std::vector<std::pair<std::string, std::string>>* params) {
  size_t k = 0;
  auto put = [&](std::string_view name, std::string_view value) {
    if (!params) return;
    if (k == params->size()) params->emplace_back();
    (*params)[k].first.assign(name);
    (*params)[k].second.assign(value);
    ++k;
  };
  bool ok = false;
  for (size_t i = 0;; ++i) {
    if (i == pattern.size()) {
      ok = pattern.size() == parts.size();
      break;
    }
    const std::string& seg = pattern[i];
    if (IsRest(seg)) {
      if (i >= parts.size() || parts[i].empty()) break;
      // The rest of the path from this segment on, slashes included.
      size_t offset = static_cast<size_t>(parts[i].data() - path.data());
      put(std::string_view(seg).substr(1, seg.size() - 5), path.substr(offset));
      ok = true;
      break;
    }
    if (i >= parts.size()) break;
    if (IsParam(seg)) {
      if (parts[i].empty()) break;
      put(std::string_view(seg).substr(1, seg.size() - 2), parts[i]);
    } else if (seg != parts[i]) {
      break;
    }
  }
  if (ok && params) params->resize(k);
  return ok;
}

}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler) {
  Route r{std::move(method), std::move(pattern), {}, std::move(handler)};
  for (auto seg : Split(r.pattern)) r.segments.emplace_back(seg);
  routes_.push_back(std::move(r));
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  std::vector<std::pair<std::string, std::string>> params;
  Match m = Find(method, path, &params);
  m.params = std::move(params);
  return m;
}

Router::Match Router::Find(std::string_view method, std::string_view path,
                           std::vector<std::pair<std::string, std::string>>* params) const {
  Match m;
  auto parts = Split(path);
  for (const auto& r : routes_) {
    // Checked without filling params: only the route that matches fills them.
    if (!MatchSegments(r.segments, parts, path, nullptr)) continue;
    // HEAD is served by GET routes.
    if (r.method == method || (method == "HEAD" && r.method == "GET")) {
      MatchSegments(r.segments, parts, path, params);
      m.outcome = Outcome::kMatched;
      m.handler = &r.handler;
      m.route = r.pattern;
      return m;
    }
    m.outcome = Outcome::kMethodNotAllowed;
    m.route = r.pattern;
  }
  params->clear();
  return m;
}

}  // namespace millions::http
