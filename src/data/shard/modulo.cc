// modulo: logical shard s lives on cluster s mod N. Equal counts, no state, and the reference
// for how much data a naive rule moves: going from N to N+1 clusters moves about N/(N+1) of all
// shards (docs/sharding.md, bench/shard_move).
#include "data/shard_map.h"

namespace millions::data {
namespace {

class Modulo final : public ShardFunction {
 public:
  std::string_view name() const override { return "modulo"; }
  std::vector<uint16_t> Assign(const std::vector<std::string>& clusters, int logical,
                               const ShardMap*) const override {
    std::vector<uint16_t> owner(static_cast<size_t>(logical));
    for (int s = 0; s < logical; ++s) owner[s] = static_cast<uint16_t>(s % clusters.size());
    return owner;
  }
};

}  // namespace

std::unique_ptr<ShardFunction> MakeModuloShardFunction() { return std::make_unique<Modulo>(); }

}  // namespace millions::data
