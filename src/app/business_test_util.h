// Helpers for the business metrics' tests: user IDs made on a given day, a clock at a day's start.
#pragma once

#include "app/business.h"
#include "data/ids.h"

namespace millions::app::testing {

inline constexpr int64_t kDayMs = 86'400'000;

// A user ID made at `wall_ms` (its sign-up time, as IDs carry it); `seq` keeps them apart.
inline int64_t UserAt(int64_t wall_ms, int seq) {
  return ((wall_ms - data::kIdEpochMs) << (data::kShardBits + data::kSeqBits)) | seq;
}

// 09:00 UTC of some day after the ID epoch.
inline int64_t MorningOf(int64_t day) { return day * kDayMs + 9 * 3600 * 1000; }

}  // namespace millions::app::testing
