// libFuzzer target: the image header reader (media/sniff.h) on hostile uploads, read as each of
// the three types (the input with its magic bytes put in front, and as it is). Beyond "no crash,
// no undefined behaviour": an accepted header is within the limits, its sides positive, and the
// answer for the same bytes does not change.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "media/sniff.h"

namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace millions::media;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const Limits limits{.max_pixels = 1'000'000, .max_dimension = 4000};
  static const std::pair<const char*, std::string_view> kTypes[] = {
      {"image/jpeg", std::string_view("\xFF\xD8\xFF", 3)},
      {"image/png", std::string_view("\x89PNG\r\n\x1A\n", 8)},
      {"image/webp", std::string_view("RIFF\0\0\0\0WEBP", 12)}};
  for (const auto& [type, magic] : kTypes) {
    for (const std::string& bytes : {std::string(in), std::string(magic) + std::string(in)}) {
      auto info = SniffProbe(bytes, type, limits);
      if (info.ok()) {
        Check(info->width > 0 && info->height > 0);
        Check(info->width <= limits.max_dimension && info->height <= limits.max_dimension);
        Check(int64_t{info->width} * info->height <= limits.max_pixels);
        auto again = SniffProbe(bytes, type, limits);
        Check(again.ok() && again->width == info->width && again->height == info->height);
      } else {
        Check(info.error().code == "bad_image" || info.error().code == "image_too_large");
      }
    }
  }
  return 0;
}
