#include "ctl/graphs.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace millions::ctl {
namespace {

namespace json = boost::json;

std::string Encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

const std::vector<GraphQuery>& GraphQueries() {
  // Series of the recording rules (RulesYaml) where one fits: the page and Grafana ask for what
  // Prometheus already computed at every evaluation.
  static const std::vector<GraphQuery> table = {
      {"requests", "Requests/s per tier", "req/s", "tier:millions_http_requests:rate", "dc,tier"},
      {"p99", "p99 latency per tier", "s", "tier:millions_http_request_duration_seconds:p99",
       "dc,tier"},
      {"errors", "Error ratio (5xx) per tier", "ratio", "tier:millions_http_error_ratio:rate",
       "dc,tier"},
      {"cache_hit_ratio", "Cache hit ratio", "ratio", "dc:millions_cache_hit_ratio:rate", "dc"},
      {"db_reads", "Database reads/s", "req/s", "dc:millions_db_reads:rate", "dc,member_role"},
      {"replica_lag", "Replica lag", "bytes", "member:millions_db_replica_lag_bytes:max", "member"},
      {"queue_backlog", "Edit queue backlog", "jobs", "millions_queue_backlog:max", ""},
      {"workers", "Workers up", "nodes", "dc:millions_workers_up:count", "dc"},
      {"node_cpu", "Node CPU", "cores", "node:millions_node_cpu:rate", "dc,node"},
      {"node_rss", "Node resident memory", "bytes", "node:millions_node_resident_bytes:sum",
       "dc,node"},
      {"active_users", "Active users (UTC day so far, previous day)", "users",
       "millions_business_active_users:max", "window"},
      {"business_events", "Sign-ups, log-ins, uploads, edits, follows /s", "req/s",
       "millions_business_events:rate", "kind"},
  };
  return table;
}

const GraphQuery* FindGraph(std::string_view name) {
  for (const auto& q : GraphQueries())
    if (q.name == name) return &q;
  return nullptr;
}

std::optional<int> GraphRangeSeconds(std::string_view range) {
  if (range == "5m") return 300;
  if (range == "30m") return 1800;
  if (range == "3h") return 10800;
  return std::nullopt;
}

std::optional<std::string> GraphTarget(std::string_view name, std::string_view range, int64_t end_s,
                                       int scrape_interval_ms) {
  const GraphQuery* q = FindGraph(name);
  auto seconds = GraphRangeSeconds(range);
  if (!q || !seconds) return std::nullopt;
  int step = std::max({1, *seconds / 150, (scrape_interval_ms + 999) / 1000});
  return "/api/v1/query_range?query=" + Encode(q->expr) +
         "&start=" + std::to_string(end_s - *seconds) + "&end=" + std::to_string(end_s) +
         "&step=" + std::to_string(step);
}

json::object SummarizeRange(std::string_view body, const GraphQuery& q) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  const json::value* result = nullptr;
  if (!ec && v.is_object())
    if (auto* data = v.as_object().if_contains("data"); data && data->is_object())
      if (auto* type = data->as_object().if_contains("resultType");
          type && type->is_string() && type->as_string() == "matrix")
        result = data->as_object().if_contains("result");
  if (!result || !result->is_array())
    return json::object{{"series", json::array{}}, {"error", "not an answer of Prometheus"}};
  std::vector<std::string> keys;
  for (size_t at = 0; at < q.legend.size();) {
    size_t comma = q.legend.find(',', at);
    if (comma == std::string_view::npos) comma = q.legend.size();
    keys.emplace_back(q.legend.substr(at, comma - at));
    at = comma + 1;
  }
  json::array series;
  for (const auto& s : result->as_array()) {
    if (series.size() >= 50) break;
    if (!s.is_object()) continue;
    const auto& o = s.as_object();
    std::string label;
    if (auto* m = o.if_contains("metric"); m && m->is_object())
      for (const auto& k : keys)
        if (auto* f = m->as_object().if_contains(k); f && f->is_string())
          label += (label.empty() ? "" : " ") + std::string(f->as_string());
    json::array points;
    if (auto* vals = o.if_contains("values"); vals && vals->is_array())
      for (const auto& p : vals->as_array()) {
        // [unix_seconds, "value"]: values are strings in Prometheus' answers.
        if (!p.is_array() || p.as_array().size() != 2 || !p.as_array()[1].is_string()) continue;
        const auto& t = p.as_array()[0];
        double ts = t.is_double() ? t.as_double() : t.is_int64() ? double(t.as_int64()) : NAN;
        double val = std::strtod(p.as_array()[1].as_string().c_str(), nullptr);
        if (!std::isfinite(ts) || !std::isfinite(val)) continue;
        points.push_back(json::array{ts, val});
      }
    series.push_back(json::object{{"label", label.empty() ? std::string(q.title) : label},
                                  {"points", std::move(points)}});
  }
  return json::object{{"series", std::move(series)}};
}

std::vector<std::string> SeriesNames(std::string_view expr) {
  std::vector<std::string> out;
  int braces = 0;
  bool quoted = false;
  for (size_t i = 0; i < expr.size();) {
    char c = expr[i];
    if (quoted) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        quoted = false;
      ++i;
      continue;
    }
    if (c == '"') quoted = true;
    if (c == '{') ++braces;
    if (c == '}') --braces;
    auto ident = [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == ':';
    };
    if (!ident(c)) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < expr.size() && ident(expr[end])) ++end;
    std::string token(expr.substr(i, end - i));
    if (braces == 0 && token.find("millions_") != std::string::npos &&
        std::find(out.begin(), out.end(), token) == out.end())
      out.push_back(token);
    i = end;
  }
  return out;
}

}  // namespace millions::ctl
