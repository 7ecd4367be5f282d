// StableHash: a 64-bit hash that every process, build and machine computes alike (FNV-1a, then
// splitmix64's finaliser, since FNV's low bits are weak for short keys). Whatever routes by a
// hash across processes uses it: the cache pool's ring, the balancer's consistent-hash policy,
// and the shard of a user's handle, which is stored in IDs and so may never change.
// Thread-safety: a pure function. Ownership: none.
#pragma once

#include <cstdint>
#include <string_view>

namespace millions {

constexpr uint64_t StableHash(std::string_view data) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

}  // namespace millions
