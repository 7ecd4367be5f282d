// Media: checks and edits uploaded images, behind a header that keeps libvips out of the rest of
// the program and out of the process until an image is edited (media.cc). Probe reads only the
// header, without libvips (declared type, magic bytes, dimensions and EXIF orientation, the
// decompression-bomb limits: sniff.h), before a single pixel is decoded; ApplyOps decodes, edits
// and re-encodes in the source format without metadata, with libvips.
// Thread-safety: every function may be called from any thread at once (the first call that needs
// libvips loads it, once). Request paths get Results: libvips' exceptions never escape this
// module.
// Ownership: inputs are borrowed for the call only; results own their bytes.
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

// Width and height are as displayed: a JPEG whose EXIF orientation turns it a quarter turn
// reports its sides swapped, because browsers show it turned and edits are given in what they see.
struct ImageInfo {
  int width = 0;
  int height = 0;
  std::string content_type;  // "image/jpeg" | "image/png" | "image/webp"
};

struct EditOp {
  enum class Kind { kCrop, kResize, kSharpen, kBlur, kRotate, kGrayscale };
  Kind kind = Kind::kGrayscale;
  int x = 0, y = 0, width = 0, height = 0;  // crop: x, y, width, height; resize: width, height
  double sigma = 0;                         // sharpen, blur
  int degrees = 0;                          // rotate, clockwise
};

struct Encoded {
  std::string bytes;
  ImageInfo info;
};

// Loads and starts libvips (the module media.cc loads with dlopen: vips_api.h) now rather than
// at the first edit: processes that will edit images call it at start-up, to fail there when
// libvips cannot start (std::runtime_error). ApplyOps loads it itself when it was not called; a
// process that never edits an image never maps libvips.
void Init();

// Whether libvips is loaded in this process.
bool Loaded();

// Checks an upload before any pixel is decoded. 415 unsupported_media_type unless the declared
// type is one of the three; 400 bad_image when the magic bytes do not match it or the header does
// not parse; 413 image_too_large past either limit.
Result<ImageInfo> Probe(std::string_view bytes, std::string_view declared_type,
                        const Limits& limits);

// Checks 1..10 ops against the image's size as it changes op by op: crops inside the bounds,
// resizes to 1..max_dimension a side and at most max_pixels, sigma in (0, 20], degrees 90, 180 or
// 270. 400 bad_edit, naming the op's index.
Status ValidateOps(const ImageInfo& info, const std::vector<EditOp>& ops, const Limits& limits);

// Decodes bytes that Probe accepted as info, applies the ops in order and encodes in the source
// format (JPEG q85, PNG, WebP q80) without metadata. Validates the ops first; 400 bad_image when
// the pixels do not decode (e.g. a truncated file).
Result<Encoded> ApplyOps(std::string_view bytes, const ImageInfo& info,
                         const std::vector<EditOp>& ops, const Limits& limits);

}  // namespace millions::media
