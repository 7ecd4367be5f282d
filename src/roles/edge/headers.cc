// Header blocks as the edge handles them: raw "Name: value\r\n" lines from the upstream client
// and stored objects, and requests' parsed fields (edge_internal.h).
#include <algorithm>

#include "roles/edge/edge_internal.h"

namespace millions::edge {
namespace {

// Calls f(name, value, whole line) for each line of a raw block.
template <class F>
void ForEachLine(std::string_view raw, F&& f) {
  while (!raw.empty()) {
    size_t end = raw.find("\r\n");
    std::string_view line = raw.substr(0, end);
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      f(line.substr(0, colon), value,
        raw.substr(0, end == std::string_view::npos ? raw.size() : end + 2));
    }
    if (end == std::string_view::npos) break;
    raw.remove_prefix(end + 2);
  }
}

bool In(std::string_view name, std::initializer_list<std::string_view> names) {
  for (auto n : names)
    if (http::IEquals(name, n)) return true;
  return false;
}

}  // namespace

std::optional<std::string> RawHeader(std::string_view raw, std::string_view name) {
  std::optional<std::string> out;
  ForEachLine(raw, [&](std::string_view n, std::string_view v, std::string_view) {
    if (!http::IEquals(n, name)) return;
    if (out) {
      out->append(", ").append(v);
    } else {
      out.emplace(v);
    }
  });
  return out;
}

std::optional<std::string> RequestHeader(const http::Request& req, std::string_view name) {
  std::optional<std::string> out;
  for (const auto& h : req.headers) {
    if (!http::IEquals(h.name, name)) continue;
    if (out) {
      out->append(", ").append(h.value);
    } else {
      out.emplace(h.value);
    }
  }
  return out;
}

std::string DropHeaders(std::string_view raw, std::initializer_list<std::string_view> names) {
  std::string out;
  out.reserve(raw.size());
  ForEachLine(raw, [&](std::string_view n, std::string_view, std::string_view line) {
    if (!In(n, names)) out.append(line);
  });
  return out;
}

std::string MergeHeaders(std::string_view stored, std::string_view fresh) {
  // RFC 9111 §3.2: the 304's fields replace the stored ones, except those that describe the
  // stored body's framing or content, which a 304 cannot change.
  auto keep_stored = [](std::string_view n) {
    return In(n, {"content-length", "content-encoding", "content-type", "content-range",
                  "transfer-encoding"});
  };
  std::vector<std::string> replaced;
  ForEachLine(fresh, [&](std::string_view n, std::string_view, std::string_view) {
    if (!keep_stored(n)) replaced.emplace_back(n);
  });
  auto is_replaced = [&](std::string_view n) {
    return std::any_of(replaced.begin(), replaced.end(),
                       [&](const std::string& r) { return http::IEquals(r, n); });
  };
  std::string out;
  ForEachLine(stored, [&](std::string_view n, std::string_view, std::string_view line) {
    if (!is_replaced(n)) out.append(line);
  });
  ForEachLine(fresh, [&](std::string_view n, std::string_view, std::string_view line) {
    if (!keep_stored(n) &&
        !In(n, {"age", "x-cache", "x-request-id", "via", "surrogate-key", "accept-ranges"}))
      out.append(line);
  });
  return out;
}

bool Unforwarded(std::string_view name) {
  return In(name, {"x-forwarded-host", "x-forwarded-server", "x-forwarded-for", "x-forwarded-proto",
                   "x-forwarded-port", "x-forwarded-prefix", "forwarded", "x-host",
                   "x-original-url", "x-rewrite-url", "x-original-host", "x-http-method-override",
                   "x-http-method", "x-method-override", "x-real-ip", "x-request-id"});
}

}  // namespace millions::edge
