#include "media/media.h"

#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <vips/vips8>

namespace millions::media {
namespace {

Error BadImage(std::string msg) { return MakeError(Errc::kBadInput, "bad_image", std::move(msg)); }
Error BadEdit(size_t i, std::string msg) {
  return MakeError(Errc::kBadInput, "bad_edit", "op " + std::to_string(i) + ": " + msg);
}

bool StartsWith(std::string_view bytes, std::string_view magic) {
  return bytes.size() >= magic.size() && bytes.substr(0, magic.size()) == magic;
}

bool MagicMatches(std::string_view bytes, std::string_view type) {
  if (type == "image/jpeg") return StartsWith(bytes, "\xFF\xD8\xFF");
  if (type == "image/png") return StartsWith(bytes, "\x89PNG\r\n\x1A\n");
  if (type == "image/webp")
    return bytes.size() >= 12 && StartsWith(bytes, "RIFF") && bytes.substr(8, 4) == "WEBP";
  return false;
}

// The loader for the declared type only: a PNG named image/jpeg never reaches the PNG loader.
const char* LoaderFor(std::string_view type) {
  if (type == "image/jpeg") return "jpegload_buffer";
  if (type == "image/png") return "pngload_buffer";
  return "webpload_buffer";
}

vips::VImage Load(std::string_view bytes, std::string_view type, bool sequential) {
  vips::VOption* opts = vips::VImage::option()->set("fail_on", VIPS_FAIL_ON_ERROR);
  if (sequential) opts->set("access", VIPS_ACCESS_SEQUENTIAL);
  // new_from_buffer does not copy: the caller's bytes outlive the image's use here.
  VipsBlob* blob = vips_blob_new(nullptr, bytes.data(), bytes.size());
  vips::VImage out;
  try {
    vips::VImage::call(LoaderFor(type), opts->set("buffer", blob)->set("out", &out));
  } catch (...) {
    vips_area_unref(VIPS_AREA(blob));
    throw;
  }
  vips_area_unref(VIPS_AREA(blob));
  return out;
}

}  // namespace

void Init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (VIPS_INIT("millions")) throw std::runtime_error("libvips failed to start");
    // No operation cache: every edit is different, and memory must stay bounded.
    vips_cache_set_max(0);
    vips_concurrency_set(1);
  });
}

Result<ImageInfo> Probe(std::string_view bytes, std::string_view type, const Limits& limits) {
  if (type != "image/jpeg" && type != "image/png" && type != "image/webp")
    return MakeError(Errc::kUnsupportedMedia, "unsupported_media_type",
                     "upload image/jpeg, image/png or image/webp");
  if (!MagicMatches(bytes, type)) return BadImage("the bytes are not " + std::string(type));
  try {
    // The loader reads the header only; pixels are decoded on demand, which never happens here.
    vips::VImage img = Load(bytes, type, true);
    ImageInfo info{img.width(), img.height(), std::string(type)};
    if (info.width <= 0 || info.height <= 0) return BadImage("image has no pixels");
    if (info.width > limits.max_dimension || info.height > limits.max_dimension ||
        int64_t{info.width} * info.height > limits.max_pixels)
      return MakeError(
          Errc::kTooLarge, "image_too_large",
          std::to_string(info.width) + "x" + std::to_string(info.height) + " is above the limit");
    return info;
  } catch (const vips::VError& e) {
    vips_error_clear();
    return BadImage("the image header does not decode");
  }
}

Status ValidateOps(const ImageInfo& info, const std::vector<EditOp>& ops, const Limits& limits) {
  using K = EditOp::Kind;
  if (ops.empty() || ops.size() > 10)
    return MakeError(Errc::kBadInput, "bad_edit", "give 1..10 ops");
  int w = info.width, h = info.height;
  for (size_t i = 0; i < ops.size(); ++i) {
    const EditOp& op = ops[i];
    switch (op.kind) {
      case K::kCrop:
        if (op.x < 0 || op.y < 0 || op.width < 1 || op.height < 1 || int64_t{op.x} + op.width > w ||
            int64_t{op.y} + op.height > h)
          return BadEdit(i, "crop must lie inside the " + std::to_string(w) + "x" +
                                std::to_string(h) + " image");
        w = op.width;
        h = op.height;
        break;
      case K::kResize:
        if (op.width < 1 || op.height < 1 || op.width > limits.max_dimension ||
            op.height > limits.max_dimension || int64_t{op.width} * op.height > limits.max_pixels)
          return BadEdit(
              i, "resize must be 1.." + std::to_string(limits.max_dimension) + " on each side");
        w = op.width;
        h = op.height;
        break;
      case K::kSharpen:
      case K::kBlur:
        if (!(op.sigma > 0 && op.sigma <= 20)) return BadEdit(i, "sigma must be in (0, 20]");
        break;
      case K::kRotate:
        if (op.degrees != 90 && op.degrees != 180 && op.degrees != 270)
          return BadEdit(i, "degrees must be 90, 180 or 270");
        if (op.degrees != 180) std::swap(w, h);
        break;
      case K::kGrayscale:
        break;
    }
  }
  return Ok();
}

Result<Encoded> ApplyOps(std::string_view bytes, const ImageInfo& info,
                         const std::vector<EditOp>& ops, const Limits& limits) {
  using K = EditOp::Kind;
  if (Status st = ValidateOps(info, ops, limits); !st.ok()) return st.error();
  try {
    vips::VImage img = Load(bytes, info.content_type, false);
    for (const EditOp& op : ops) {
      switch (op.kind) {
        case K::kCrop:
          img = img.extract_area(op.x, op.y, op.width, op.height);
          break;
        case K::kResize:
          img = img.resize(
              static_cast<double>(op.width) / img.width(),
              vips::VImage::option()->set("vscale", static_cast<double>(op.height) / img.height()));
          // Rounding inside resize can leave a pixel over; the ops promise exact sizes.
          if (img.width() != op.width || img.height() != op.height)
            img = img.embed(0, 0, op.width, op.height,
                            vips::VImage::option()->set("extend", VIPS_EXTEND_COPY));
          break;
        case K::kSharpen:
          img = img.sharpen(vips::VImage::option()->set("sigma", op.sigma));
          break;
        case K::kBlur:
          img = img.gaussblur(op.sigma);
          break;
        case K::kRotate:
          img = img.rot(op.degrees == 90    ? VIPS_ANGLE_D90
                        : op.degrees == 180 ? VIPS_ANGLE_D180
                                            : VIPS_ANGLE_D270);
          break;
        case K::kGrayscale:
          img = img.colourspace(VIPS_INTERPRETATION_B_W);
          break;
      }
    }
    // Sharpen works in LabS and gives 16-bit output; formats here want 8-bit.
    if (img.format() != VIPS_FORMAT_UCHAR) img = img.cast(VIPS_FORMAT_UCHAR);
    void* buf = nullptr;
    size_t len = 0;
    vips::VOption* opt = vips::VImage::option()->set("strip", true);
    const char* suffix = ".png";
    if (info.content_type == "image/jpeg") {
      suffix = ".jpg";
      opt->set("Q", 85);
    } else if (info.content_type == "image/webp") {
      suffix = ".webp";
      opt->set("Q", 80);
    }
    img.write_to_buffer(suffix, &buf, &len, opt);
    Encoded out;
    out.bytes.assign(static_cast<const char*>(buf), len);
    g_free(buf);
    out.info = {img.width(), img.height(), info.content_type};
    return out;
  } catch (const vips::VError& e) {
    vips_error_clear();
    return BadImage(std::string("the image does not decode: ") + e.what());
  }
}

}  // namespace millions::media
