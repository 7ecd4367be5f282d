#include "data/seed_gen.h"

#include <algorithm>
#include <cmath>

#include "data/ids.h"
#include "data/shard_map.h"

namespace millions::data {
namespace {

// SplitMix64: a tiny, well-mixed generator; one per user (seeded from the run's seed and the
// index), so that each user's rows come out the same whatever the order users are made in.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Unit() { return (Next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

Rng RngFor(uint64_t seed, int64_t index, uint64_t stream) {
  Rng r{seed * 0x100000001B3ull ^ (static_cast<uint64_t>(index) << 8) ^ stream};
  r.Next();
  return r;
}

// A count with mean `mean`: floor or ceil of a uniform draw on [0, 2*mean].
int64_t CountAround(Rng& r, double mean) {
  if (mean <= 0) return 0;
  return static_cast<int64_t>(std::floor(r.Unit() * 2 * mean + 0.5));
}

int64_t MakeId(int64_t ms, int shard, int64_t seq) {
  return ((ms - kIdEpochMs) << (kShardBits + kSeqBits)) | (int64_t(shard) << kSeqBits) |
         (seq & ((1 << kSeqBits) - 1));
}

}  // namespace

SeedGenerator::SeedGenerator(SeedOptions options) : opt_(std::move(options)) {
  span_ms_ = int64_t(std::max(opt_.days, 1)) * 86'400'000;
}

SeedUser SeedGenerator::User(int64_t index) const {
  SeedUser u;
  u.index = index;
  u.handle = opt_.prefix + std::to_string(index);
  u.logical = LogicalShardOfHandle(u.handle, opt_.logical_shards);
  // Sign-ups in index order over [now - span, now - 1 h): an hour's gap keeps seeded IDs below
  // the ones the databases draw now. Users sharing a millisecond differ in their sequence.
  const int64_t span = span_ms_ - 3'600'000;
  const int64_t users = std::max<int64_t>(opt_.users, 1);
  u.created_ms =
      opt_.now_ms - span_ms_ + static_cast<int64_t>(static_cast<long double>(span) * index / users);
  u.id = MakeId(u.created_ms, u.logical, index);
  return u;
}

std::vector<int64_t> SeedGenerator::FolloweesOf(int64_t index) const {
  std::vector<int64_t> out;
  if (opt_.users < 2) return out;
  Rng r = RngFor(opt_.seed, index, 1);
  const int64_t want = std::min(CountAround(r, opt_.follows_per_user), opt_.users - 1);
  const double log_n = std::log(double(opt_.users));
  // Rank k has probability about 1/(k ln N): exp(u ln N) is log-uniform on [1, N). Ranks map to
  // users through a fixed odd multiplier, so the celebrities are spread over the index range
  // (and over the shards), not the first users.
  const uint64_t n = static_cast<uint64_t>(opt_.users);
  int tries = 0;
  while (static_cast<int64_t>(out.size()) < want && tries++ < want * 8 + 16) {
    const uint64_t rank = static_cast<uint64_t>(std::exp(r.Unit() * log_n)) - 1;
    const int64_t who = static_cast<int64_t>((rank * 0x9E3779B1ull + opt_.seed) % n);
    if (who == index || std::find(out.begin(), out.end(), who) != out.end()) continue;
    out.push_back(who);
  }
  return out;
}

std::vector<SeedPhoto> SeedGenerator::PhotosOf(int64_t index) const {
  std::vector<SeedPhoto> out;
  Rng r = RngFor(opt_.seed, index, 2);
  const int64_t count = CountAround(r, opt_.photos_per_user);
  const SeedUser u = User(index);
  // Photos after the sign-up, before the hour's gap ends; a photo's sequence continues from
  // its owner's so that one owner's photos never share an ID.
  const int64_t room = std::max<int64_t>(opt_.now_ms - 3'600'000 - u.created_ms, 1);
  for (int64_t k = 0; k < count; ++k) {
    SeedPhoto p;
    p.owner_index = index;
    p.created_ms = u.created_ms + 1 + static_cast<int64_t>(r.Unit() * double(room - 1));
    p.id = MakeId(p.created_ms, u.logical, index * 31 + k + 1);
    out.push_back(p);
  }
  std::sort(out.begin(), out.end(),
            [](const SeedPhoto& a, const SeedPhoto& b) { return a.id < b.id; });
  return out;
}

}  // namespace millions::data
