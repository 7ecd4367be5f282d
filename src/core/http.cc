#include "core/http.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace millions::http {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& h : headers)
    if (IEquals(h.name, name)) return std::string_view(h.value);
  return std::nullopt;
}

std::string_view Request::param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    size_t eq = part.find('=');
    if (part.substr(0, eq) == name) {
      if (eq == std::string_view::npos) return std::string();
      return PercentDecode(part.substr(eq + 1), true);
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::string> Request::cookie(std::string_view name) const {
  for (const auto& h : headers) {
    if (!IEquals(h.name, "cookie")) continue;
    std::string_view c = h.value;
    while (!c.empty()) {
      size_t semi = c.find(';');
      std::string_view part = c.substr(0, semi);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      size_t eq = part.find('=');
      if (eq != std::string_view::npos && part.substr(0, eq) == name)
        return std::string(part.substr(eq + 1));
      if (semi == std::string_view::npos) break;
      c.remove_prefix(semi + 1);
    }
  }
  return std::nullopt;
}

Response& Response::set(std::string name, std::string value) {
  if (IEquals(name, "content-type")) content_type = {};
  for (auto& h : headers) {
    if (IEquals(h.name, name)) {
      h.value = std::move(value);
      return *this;
    }
  }
  headers.push_back({std::move(name), std::move(value)});
  return *this;
}

std::optional<std::string_view> Response::header(std::string_view name) const {
  for (const auto& h : headers)
    if (IEquals(h.name, name)) return std::string_view(h.value);
  if (!content_type.empty() && IEquals(name, "content-type")) return content_type;
  return std::nullopt;
}

Response Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = "application/json";
  return r;
}

Response JsonError(int status, std::string_view code, std::string_view message) {
  boost::json::object err;
  err["code"] = code;
  err["message"] = message;
  boost::json::object root;
  root["error"] = std::move(err);
  Response r = Json(status, boost::json::serialize(root));
  if (status == 503) r.set("Retry-After", "1");
  return r;
}

std::optional<std::string> PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '\0') return std::nullopt;
      out.push_back(d);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

}  // namespace millions::http
