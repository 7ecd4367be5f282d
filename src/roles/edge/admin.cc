// The edge's admin API: purges (by URL, path prefix or tag, with the purge token) and status.
// Served on the admin listener only (serve.cc), never on the public one.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/log.h"
#include "roles/edge/edge_internal.h"

namespace millions::edge {
namespace json = boost::json;

namespace {

// Compares without an early exit, so the time taken says nothing of how much matched.
bool SameToken(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

std::pair<std::string_view, std::string_view> SplitQuery(std::string_view url) {
  size_t q = url.find('?');
  if (q == std::string_view::npos) return {url, {}};
  return {url.substr(0, q), url.substr(q + 1)};
}

}  // namespace

http::Response Edge::Impl::Purge(const http::Request& req) {
  if (cfg.purge_token.empty())
    return http::JsonError(403, "purge_disabled", "no purge token is configured for this edge");
  auto auth = RequestHeader(req, "authorization").value_or("");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.rfind(kBearer, 0) != 0)
    return http::JsonError(401, "unauthenticated", "a purge needs Authorization: Bearer TOKEN");
  if (!SameToken(std::string_view(auth).substr(kBearer.size()), cfg.purge_token))
    return http::JsonError(403, "forbidden", "wrong purge token");
  boost::system::error_code ec;
  json::value v = json::parse(req.body, ec);
  if (ec || !v.is_object() || v.as_object().size() != 1)
    return http::JsonError(400, "bad_purge",
                           "the body is one of {\"url\":\"/path?query\"}, "
                           "{\"prefix\":\"/path/\"} or {\"tag\":\"name\"}");
  const auto& [name, value] = *v.as_object().begin();
  if (!value.is_string() || value.as_string().empty() || value.as_string().size() > 4096)
    return http::JsonError(400, "bad_purge", "the value must be a string of 1 to 4096 bytes");
  std::string_view what(value.as_string().data(), value.as_string().size());
  size_t purged = 0;
  ++purge_epoch;  // before the store's purge: a fill that began earlier is not stored
  if (name == "url" || name == "prefix") {
    if (what.front() != '/')
      return http::JsonError(400, "bad_purge", "a url or prefix starts with '/'");
    if (name == "url") {
      auto [path, query] = SplitQuery(what);
      purged = store->PurgePrefix(CacheKeyAnyHost(path, query));  // every host's copy
      m.purge_url.Inc();
    } else {
      purged = store->PurgePrefix(CacheKeyPathPrefix(what));
      m.purge_prefix.Inc();
    }
  } else if (name == "tag") {
    purged = store->PurgeTag(what);
    m.purge_tag.Inc();
  } else {
    return http::JsonError(400, "bad_purge", "purge by \"url\", \"prefix\" or \"tag\"");
  }
  log::Info(
      "purged",
      {{"by", std::string(name)}, {"value", std::string(what)}, {"objects", int64_t(purged)}});
  return http::Json(200, "{\"purged\":" + std::to_string(purged) + "}");
}

std::string Edge::Impl::StatusJson() const {
  json::object out;
  json::array arr;
  for (const auto& o : origins)
    arr.push_back(json::object{{"name", o->origin.name},
                               {"address", o->origin.address},
                               {"dc", o->origin.dc},
                               {"up", o->up.load()}});
  out["name"] = cfg.name;
  out["dc"] = cfg.dc;
  out["origins"] = std::move(arr);
  StoreStats s = store->Stats();
  out["store"] = json::object{{"memory_objects", s.memory_objects},
                              {"memory_bytes", s.memory_bytes},
                              {"memory_limit", cfg.settings.store.memory_bytes},
                              {"disk_objects", s.disk_objects},
                              {"disk_bytes", s.disk_bytes},
                              {"evictions", s.evictions},
                              {"policy", cfg.settings.store.policy}};
  return json::serialize(out);
}

}  // namespace millions::edge
