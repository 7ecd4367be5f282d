// Media: image checks and edits with libvips, behind a header that keeps vips out of the rest.
// Probe reads only the header: type, magic bytes, dimensions and the decompression-bomb limit
// are checked before a single pixel is decoded. ApplyOps decodes and runs edit ops.
// Errors are Results (libvips' exceptions never escape). Thread-safety: after Init, every
// function may be called from any thread. Ownership: results own their bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace millions::media {

struct Limits {
  int64_t max_pixels = 40'000'000;
  int max_dimension = 12000;
};

struct ImageInfo {
  int width = 0;
  int height = 0;
  std::string content_type;  // "image/jpeg" | "image/png" | "image/webp"
};

struct EditOp {
  enum class Kind { kCrop, kResize, kSharpen, kBlur, kRotate, kGrayscale };
  Kind kind = Kind::kGrayscale;
  int x = 0, y = 0, width = 0, height = 0;
  double sigma = 0;
  int degrees = 0;
};

struct Encoded {
  std::string bytes;
  ImageInfo info;
};

// Call once at start-up; throws std::runtime_error when libvips cannot start.
void Init();

// 415 unsupported_media_type for another declared type; 400 bad_image when the magic bytes do
// not match or the header does not parse; 413 image_too_large past the limits.
Result<ImageInfo> Probe(std::string_view bytes, std::string_view declared_type,
                        const Limits& limits);

// Checks ops against the image's size as it changes op by op: crop inside the bounds, resize
// within 1..max_dimension, sigma in (0, 20], degrees 90/180/270, 1..10 ops. 400 bad_edit
// naming the op's index.
Status ValidateOps(const ImageInfo& info, const std::vector<EditOp>& ops, const Limits& limits);

// Decodes, applies the ops in order, encodes in the source format (JPEG q85, PNG, WebP q80),
// without metadata. Validates first.
Result<Encoded> ApplyOps(std::string_view bytes, const ImageInfo& info,
                         const std::vector<EditOp>& ops, const Limits& limits);

}  // namespace millions::media
