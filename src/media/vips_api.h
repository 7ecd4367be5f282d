// What the libvips module (vips_module.cc, built as millions-media-vips.so) offers media.cc,
// which loads it with dlopen: one C symbol, millions_media_vips_api, returning this table. Both
// sides are built from this tree by one compiler, so the table passes C++ types; kVipsAbi
// changes whenever the table or a type in it does, and media.cc refuses a module of another.
// Thread-safety: start runs once (later calls return its first answer); after a successful start
// apply may be called from any thread at once. Ownership: inputs are borrowed for the
// call; results own their bytes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "media/media.h"

namespace millions::media::internal {

inline constexpr int kVipsAbi = 2;

struct VipsApi {
  int abi;
  // Starts libvips; "" when it did, else why not. `debug` receives libvips' log lines.
  std::string (*start)(void (*debug)(const char* message));
  // media.h's ApplyOps once media.cc has validated the ops and checked the type and the magic
  // bytes.
  Result<Encoded> (*apply)(std::string_view bytes, const ImageInfo& info,
                           const std::vector<EditOp>& ops, const Limits& limits);
};

}  // namespace millions::media::internal

extern "C" const millions::media::internal::VipsApi* millions_media_vips_api();
