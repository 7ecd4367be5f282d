// A small valid PNG made in memory, so that loads and the chaos ledger take the service's real
// image path (probe, decode, store) without files. Thread-safety: a pure function.
#pragma once

#include <string>

namespace millions::ctl {

// A w x h RGB PNG whose pixels depend on seed (different seeds, different bytes).
std::string MakePng(int w, int h, int seed);

}  // namespace millions::ctl
