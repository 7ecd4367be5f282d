// An image's size from its header alone, without libvips: what Probe needs to accept an upload
// (media.h), so that a web node whose edits run on workers never loads libvips. JPEG: the
// markers up to the first frame header (SOFn), with the EXIF orientation of an APP1 before it;
// PNG: IHDR (its CRC checked) and an eXIf chunk before the image data; WebP: the VP8, VP8L or
// VP8X header and, in an extended file, its EXIF chunk. Width and height are as displayed (an
// orientation of 5..8 swaps them), as libvips reports them. A header that does not parse, or
// declares what the format does not allow, is 400 bad_image; the limits are media.h's.
// Thread-safety: pure. Ownership: the bytes are borrowed for the call.
#pragma once

#include <string_view>

#include "core/result.h"
#include "media/formats.h"
#include "media/media.h"

namespace millions::media {

struct Sniffed {
  int64_t width = 0, height = 0;  // as stored
  int orientation = 1;            // EXIF 1..8; 1 when absent or out of range
};

// The header's stored size and orientation; bad_image when it does not parse.
Result<Sniffed> SniffHeader(std::string_view bytes, Format format);

// Probe without libvips: the declared type, the magic bytes, the header, the limits.
Result<ImageInfo> SniffProbe(std::string_view bytes, std::string_view declared_type,
                             const Limits& limits);

}  // namespace millions::media
