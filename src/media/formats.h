// The three image types media accepts, their magic bytes, and the errors both halves of media
// give (media.cc without libvips, vips_module.cc with it). Header-only: the module links nothing
// of ours.
// Thread-safety: pure functions. Ownership: none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/result.h"
#include "media/media.h"

namespace millions::media {

enum class Format { kJpeg, kPng, kWebp };

inline std::optional<Format> FormatOf(std::string_view type) {
  if (type == "image/jpeg") return Format::kJpeg;
  if (type == "image/png") return Format::kPng;
  if (type == "image/webp") return Format::kWebp;
  return std::nullopt;
}

inline bool MagicMatches(std::string_view bytes, Format format) {
  switch (format) {
    case Format::kJpeg:
      return bytes.starts_with("\xFF\xD8\xFF");
    case Format::kPng:
      return bytes.starts_with("\x89PNG\r\n\x1A\n");
    case Format::kWebp:
      return bytes.size() >= 12 && bytes.starts_with("RIFF") && bytes.substr(8, 4) == "WEBP";
  }
  return false;
}

inline Error Unsupported() {
  return MakeError(Errc::kUnsupportedMedia, "unsupported_media_type",
                   "upload image/jpeg, image/png or image/webp");
}

inline Error BadImage(std::string message) {
  return MakeError(Errc::kBadInput, "bad_image", std::move(message));
}

inline std::optional<Error> SizeError(int64_t width, int64_t height, const Limits& limits) {
  if (width <= 0 || height <= 0) return BadImage("the image has no pixels");
  if (width > limits.max_dimension || height > limits.max_dimension ||
      width * height > limits.max_pixels)
    return MakeError(Errc::kTooLarge, "image_too_large",
                     std::to_string(width) + "x" + std::to_string(height) + " is above the " +
                         std::to_string(limits.max_dimension) + " a side or " +
                         std::to_string(limits.max_pixels) + " pixel limit");
  return std::nullopt;
}

}  // namespace millions::media
