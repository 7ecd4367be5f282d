#include "roles/edge/settings.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace millions::edge {

const std::vector<std::string> kTables = {"edge", "http"};

std::optional<size_t> ParseSize(std::string_view s) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  std::string_view unit(p, static_cast<size_t>(s.data() + s.size() - p));
  uint64_t mult = 1;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "kb") {
    mult = 1ull << 10;
  } else if (unit == "mb") {
    mult = 1ull << 20;
  } else if (unit == "gb") {
    mult = 1ull << 30;
  } else {
    return std::nullopt;
  }
  if (n > (uint64_t{1} << 44) / mult) return std::nullopt;  // 16 TiB: a typo, not a size
  return static_cast<size_t>(n * mult);
}

namespace {

void GetSize(config::Section& table, const std::string& path, const char* key, size_t* out,
             size_t min) {
  std::string v;
  table.Get(key, &v);
  if (v.empty()) return;
  auto n = ParseSize(v);
  if (!n || *n < min)
    throw config::ConfigError(path + ": [edge] " + key +
                              " must be a size such as \"64mb\" (at least " + std::to_string(min) +
                              " bytes), not '" + v + "'");
  *out = *n;
}

}  // namespace

Settings ReadSettings(const topo::Topology& t) {
  Settings s;
  auto& file = t.file();
  auto edge = file.Table("edge");
  edge.Get("threads", &s.threads, 1, 64);
  GetSize(edge, t.path, "memory", &s.store.memory_bytes, 1 << 20);
  GetSize(edge, t.path, "max_object", &s.store.max_object_bytes, 1024);
  GetSize(edge, t.path, "disk", &s.store.disk_bytes, 1 << 20);
  edge.GetChoice("policy", &s.store.policy, {"lru", "lfu", "fifo"});
  edge.Get("disk_dir", &s.store.disk_dir);
  int64_t ttl = 0, grace = 0, max_ttl = s.policy.max_ttl;
  edge.Get("default_ttl_s", &ttl, 0, 365 * 24 * 3600);
  edge.Get("grace_s", &grace, 0, 365 * 24 * 3600);
  edge.Get("max_ttl_s", &max_ttl, 1, int64_t{10} * 365 * 24 * 3600);
  s.policy.default_ttl = ttl;
  s.policy.grace = grace;
  s.policy.max_ttl = max_ttl;
  edge.Get("connect_timeout_ms", &s.connect_timeout_ms, 10, 60000);
  edge.Get("origin_timeout_ms", &s.origin_timeout_ms, 10, 600000);
  edge.Get("check_interval_ms", &s.check_interval_ms, 50, 60000);
  edge.Get("fall", &s.fall, 1, 100);
  edge.Get("rise", &s.rise, 1, 100);
  edge.Get("purge_token_file", &s.purge_token_file);
  file.Table("lb").Get("tls_cert", &s.tls_cert);
  file.Table("lb").Get("tls_key", &s.tls_key);
  std::string cert, key;
  edge.Get("tls_cert", &cert);
  edge.Get("tls_key", &key);
  if (!cert.empty() || !key.empty()) {
    s.tls_cert = cert;
    s.tls_key = key;
  }
  for (const auto& n : t.edge)
    if (!n.tls_listen.empty() && (s.tls_cert.empty() || s.tls_key.empty()))
      throw config::ConfigError(t.path + ": [[edge.node]] '" + n.name +
                                "' has tls_listen but neither [edge] nor [lb] has tls_cert and "
                                "tls_key");
  http::ReadLimits(file.Table("http"), &s.limits);
  const std::vector<std::string> levels = {"debug", "info", "warn", "error"};
  file.Table("web").GetChoice("log_level", &s.log_level, levels);
  edge.GetChoice("log_level", &s.log_level, levels);
  return s;
}

EdgeConfig ReadConfig(const topo::Topology& t, const std::string& node) {
  EdgeConfig c;
  c.settings = ReadSettings(t);
  const topo::NodeEntry* me = topo::FindNode(t.edge, node);
  if (!me) throw config::ConfigError(t.path + ": no [[edge.node]] is named '" + node + "'");
  c.name = me->name;
  c.dc = me->dc;
  c.listen = me->listen;
  c.tls_listen = me->tls_listen;
  c.admin = me->admin;
  // A disk tier per node: the same directory for two edges would mix their files.
  if (!c.settings.store.disk_dir.empty()) c.settings.store.disk_dir += "/" + c.name;
  const auto& origins = t.lb.empty() ? t.web : t.lb;
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& o : origins)
      if ((o.dc == c.dc) == (pass == 0)) c.origins.push_back({o.name, o.listen, o.dc});
  if (c.origins.empty())
    throw config::ConfigError(t.path + ": the edge needs an origin: the topology has no " +
                              "[[lb.node]] and no [[web.node]]");
  if (!c.settings.purge_token_file.empty()) {
    std::ifstream in(c.settings.purge_token_file);
    if (!in)
      throw config::ConfigError(t.path + ": [edge] purge_token_file '" +
                                c.settings.purge_token_file + "' cannot be read");
    std::stringstream ss;
    ss << in.rdbuf();
    c.purge_token = ss.str();
    while (!c.purge_token.empty() && isspace(static_cast<unsigned char>(c.purge_token.back())))
      c.purge_token.pop_back();
    if (c.purge_token.size() < 16)
      throw config::ConfigError(t.path + ": the purge token in '" + c.settings.purge_token_file +
                                "' is shorter than 16 characters");
  }
  return c;
}

}  // namespace millions::edge
