// Header parsing for SniffHeader (sniff.h). Every read is bounds-checked against the bytes:
// an upload is hostile input (fuzz/image_header_fuzz.cc).
#include "media/sniff.h"

#include <zlib.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace millions::media {
namespace {

uint32_t Be16(std::string_view b, size_t at) {
  return uint32_t(uint8_t(b[at])) << 8 | uint8_t(b[at + 1]);
}
uint32_t Be32(std::string_view b, size_t at) { return Be16(b, at) << 16 | Be16(b, at + 2); }
uint32_t Le16(std::string_view b, size_t at) {
  return uint32_t(uint8_t(b[at + 1])) << 8 | uint8_t(b[at]);
}
uint32_t Le24(std::string_view b, size_t at) {
  return Le16(b, at) | uint32_t(uint8_t(b[at + 2])) << 16;
}
uint32_t Le32(std::string_view b, size_t at) { return Le16(b, at) | Le16(b, at + 2) << 16; }

Error Bad(const std::string& why) {
  return BadImage("the image header does not parse (" + why + ")");
}

// The Orientation tag (0x0112) of a TIFF structure's first IFD (EXIF's layout); 1 when absent or
// unreadable: a broken EXIF block does not make a broken image, as libvips treats it.
int TiffOrientation(std::string_view t) {
  if (t.size() < 8) return 1;
  bool le;
  if (t.substr(0, 4) == std::string_view("II*\0", 4)) {
    le = true;
  } else if (t.substr(0, 4) == std::string_view("MM\0*", 4)) {
    le = false;
  } else {
    return 1;
  }
  auto u16 = [&](size_t at) { return le ? Le16(t, at) : Be16(t, at); };
  auto u32 = [&](size_t at) { return le ? Le32(t, at) : Be32(t, at); };
  uint32_t ifd = u32(4);
  if (ifd < 8 || size_t(ifd) + 2 > t.size()) return 1;
  uint32_t n = u16(ifd);
  for (uint32_t i = 0; i < n; ++i) {
    size_t e = size_t(ifd) + 2 + size_t(i) * 12;
    if (e + 12 > t.size()) return 1;
    if (u16(e) != 0x0112) continue;
    if (u16(e + 2) != 3 || u32(e + 4) < 1) return 1;  // SHORT, at least one
    uint32_t v = u16(e + 8);
    return v >= 1 && v <= 8 ? int(v) : 1;
  }
  return 1;
}

// An EXIF payload as JPEG's APP1 carries it ("Exif\0\0" then TIFF) or PNG and WebP do (TIFF,
// sometimes with the same prefix).
int ExifOrientation(std::string_view exif) {
  if (exif.substr(0, 6) == std::string_view("Exif\0\0", 6)) exif.remove_prefix(6);
  return TiffOrientation(exif);
}

Result<Sniffed> Jpeg(std::string_view b) {
  Sniffed s;
  size_t at = 2;  // after SOI
  for (;;) {
    if (at + 1 >= b.size()) return Bad("JPEG: no frame header");
    if (uint8_t(b[at]) != 0xFF) return Bad("JPEG: a marker expected");
    while (at < b.size() && uint8_t(b[at]) == 0xFF) ++at;  // fill bytes
    if (at >= b.size()) return Bad("JPEG: no frame header");
    uint8_t m = uint8_t(b[at++]);
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length
    if (m == 0xD8 || m == 0xD9 || m == 0xDA) return Bad("JPEG: no frame header");
    if (at + 2 > b.size()) return Bad("JPEG: cut off");
    uint32_t len = Be16(b, at);
    if (len < 2 || at + len > b.size()) return Bad("JPEG: a segment runs past the end");
    std::string_view seg = b.substr(at + 2, len - 2);
    if (m == 0xE1 && s.orientation == 1 && seg.substr(0, 6) == std::string_view("Exif\0\0", 6))
      s.orientation = ExifOrientation(seg);
    bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      if (seg.size() < 6) return Bad("JPEG: short frame header");
      uint32_t components = uint8_t(seg[5]);
      if (components == 0 || seg.size() < 6 + 3 * size_t(components))
        return Bad("JPEG: bad frame header");
      s.height = Be16(seg, 1);
      s.width = Be16(seg, 3);
      return s;
    }
    at += len;
  }
}

Result<Sniffed> Png(std::string_view b) {
  // Signature (8), then IHDR: length 13, type, 13 bytes, CRC.
  if (b.size() < 8 + 8 + 13 + 4 || Be32(b, 8) != 13 || b.substr(12, 4) != "IHDR")
    return Bad("PNG: no IHDR");
  std::string_view ihdr = b.substr(16, 13);
  uint32_t crc = uint32_t(crc32(0, reinterpret_cast<const Bytef*>(b.data() + 12), 17));
  if (crc != Be32(b, 29)) return Bad("PNG: IHDR CRC");
  Sniffed s;
  s.width = Be32(ihdr, 0);
  s.height = Be32(ihdr, 4);
  if (s.width > 0x7FFFFFFF || s.height > 0x7FFFFFFF) return Bad("PNG: size");
  uint8_t depth = uint8_t(ihdr[8]), colour = uint8_t(ihdr[9]);
  bool ok = false;
  switch (colour) {
    case 0:
      ok = depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
      break;
    case 3:
      ok = depth == 1 || depth == 2 || depth == 4 || depth == 8;
      break;
    case 2:
    case 4:
    case 6:
      ok = depth == 8 || depth == 16;
      break;
  }
  if (!ok || ihdr[10] != 0 || ihdr[11] != 0 || uint8_t(ihdr[12]) > 1)
    return Bad("PNG: IHDR fields");
  // An eXIf chunk counts only before the image data.
  for (size_t at = 33; at + 12 <= b.size();) {
    uint32_t len = Be32(b, at);
    std::string_view type = b.substr(at + 4, 4);
    if (type == "IDAT" || type == "IEND" || len > b.size() - at - 12) break;
    if (type == "eXIf") {
      s.orientation = ExifOrientation(b.substr(at + 8, len));
      break;
    }
    at += 12 + size_t(len);
  }
  return s;
}

Result<Sniffed> Webp(std::string_view b) {
  // RIFF size WEBP, then the first chunk: its fourcc and size, its data at 20.
  if (b.size() < 30) return Bad("WebP: cut off");
  std::string_view fourcc = b.substr(12, 4);
  std::string_view d = b.substr(20);
  Sniffed s;
  if (fourcc == "VP8 ") {
    // A key frame: bit 0 of the frame tag clear, then the start code 9d 01 2a.
    if ((uint8_t(d[0]) & 1) != 0 || d.substr(3, 3) != "\x9d\x01\x2a") return Bad("WebP: VP8 frame");
    s.width = Le16(d, 6) & 0x3FFF;
    s.height = Le16(d, 8) & 0x3FFF;
    return s;
  }
  if (fourcc == "VP8L") {
    if (uint8_t(d[0]) != 0x2F) return Bad("WebP: VP8L signature");
    uint32_t bits = Le32(d, 1);
    s.width = (bits & 0x3FFF) + 1;
    s.height = ((bits >> 14) & 0x3FFF) + 1;
    if ((bits >> 29) != 0) return Bad("WebP: VP8L version");
    return s;
  }
  if (fourcc == "VP8X") {
    if (Le32(b, 16) < 10) return Bad("WebP: VP8X size");
    s.width = int64_t(Le24(d, 4)) + 1;
    s.height = int64_t(Le24(d, 7)) + 1;
    if ((uint8_t(d[0]) & 0x08) != 0) {  // an EXIF chunk follows
      for (size_t at = 12 + 8 + size_t(Le32(b, 16)); at + 8 <= b.size();) {
        uint32_t len = Le32(b, at + 4);
        if (len > b.size() - at - 8) break;
        if (b.substr(at, 4) == "EXIF") {
          s.orientation = ExifOrientation(b.substr(at + 8, len));
          break;
        }
        at += 8 + size_t(len) + (len & 1);
      }
    }
    return s;
  }
  return Bad("WebP: no VP8, VP8L or VP8X chunk");
}

}  // namespace

Result<Sniffed> SniffHeader(std::string_view bytes, Format format) {
  if (!MagicMatches(bytes, format)) return Bad("magic bytes");
  switch (format) {
    case Format::kJpeg:
      return Jpeg(bytes);
    case Format::kPng:
      return Png(bytes);
    case Format::kWebp:
      break;
  }
  return Webp(bytes);
}

Result<ImageInfo> SniffProbe(std::string_view bytes, std::string_view declared_type,
                             const Limits& limits) {
  std::optional<Format> format = FormatOf(declared_type);
  if (!format) return Unsupported();
  if (!MagicMatches(bytes, *format))
    return BadImage("the bytes are not " + std::string(declared_type));
  auto s = SniffHeader(bytes, *format);
  if (!s.ok()) return s.error();
  int64_t w = s->width, h = s->height;
  if (s->orientation >= 5) std::swap(w, h);
  if (std::optional<Error> e = SizeError(w, h, limits)) return *std::move(e);
  return ImageInfo{static_cast<int>(w), static_cast<int>(h), std::string(declared_type)};
}

}  // namespace millions::media
