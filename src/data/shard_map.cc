#include "data/shard_map.h"

#include <boost/json.hpp>
#include <unordered_map>

#include "core/stable_hash.h"

namespace millions::data {

int LogicalShardOfHandle(std::string_view handle, int logical_shards) {
  return static_cast<int>(StableHash(handle) % static_cast<uint64_t>(logical_shards));
}

std::vector<int> ShardMap::Counts() const {
  std::vector<int> n(clusters.size(), 0);
  for (uint16_t o : owner) ++n[o];
  return n;
}

std::unique_ptr<ShardFunction> MakeShardFunction(std::string_view name) {
  if (name == "modulo") return MakeModuloShardFunction();
  if (name == "ring") return MakeRingShardFunction();
  if (name == "balanced") return MakeBalancedShardFunction();
  return nullptr;
}

ShardMap NextShardMap(const ShardFunction& f, const std::vector<std::string>& clusters, int logical,
                      const ShardMap* previous) {
  ShardMap m;
  m.version = previous ? previous->version + 1 : 1;
  m.clusters = clusters;
  m.owner = f.Assign(clusters, logical, previous);
  return m;
}

std::vector<int> MovedShards(const ShardMap& from, const ShardMap& to) {
  std::vector<int> moved;
  for (int s = 0; s < from.logical() && s < to.logical(); ++s)
    if (from.ClusterOf(s) != to.ClusterOf(s)) moved.push_back(s);
  return moved;
}

// {"version":3,"clusters":["pg1","pg2"],"owner":[0,1,...]}: the owner array is short enough
// (1024 small numbers, about 2.5 KB) that a run-length form would buy nothing but a parser.
std::string ShardMapToJson(const ShardMap& map) {
  boost::json::object o;
  o["version"] = map.version;
  boost::json::array clusters;
  for (const auto& c : map.clusters) clusters.emplace_back(c);
  o["clusters"] = std::move(clusters);
  boost::json::array owner;
  owner.reserve(map.owner.size());
  for (uint16_t x : map.owner) owner.emplace_back(x);
  o["owner"] = std::move(owner);
  return boost::json::serialize(o);
}

Result<ShardMap> ShardMapFromJson(std::string_view json) {
  auto bad = [](std::string why) {
    return MakeError(Errc::kBadInput, "bad_shard_map", "shard map: " + why);
  };
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return bad("not a JSON object");
  const auto& o = v.get_object();
  const auto* version = o.if_contains("version");
  const auto* clusters = o.if_contains("clusters");
  const auto* owner = o.if_contains("owner");
  if (!version || !version->is_int64() || version->as_int64() < 1)
    return bad("\"version\" must be a positive integer");
  if (!clusters || !clusters->is_array() || clusters->as_array().empty())
    return bad("\"clusters\" must be a non-empty array of names");
  if (!owner || !owner->is_array() || owner->as_array().empty() || owner->as_array().size() > 8192)
    return bad("\"owner\" must be an array of 1..8192 cluster indexes");
  ShardMap m;
  m.version = version->as_int64();
  for (const auto& c : clusters->as_array()) {
    if (!c.is_string() || c.as_string().empty()) return bad("a cluster name is not a string");
    m.clusters.emplace_back(c.as_string());
  }
  m.owner.reserve(owner->as_array().size());
  for (const auto& x : owner->as_array()) {
    if (!x.is_int64() || x.as_int64() < 0 || x.as_int64() >= int64_t(m.clusters.size()))
      return bad("an owner is not an index into \"clusters\"");
    m.owner.push_back(static_cast<uint16_t>(x.as_int64()));
  }
  return m;
}

}  // namespace millions::data
