// The libvips half of media (media.h), built as a module of its own (millions-media-vips.so)
// that media.cc loads with dlopen on first use: a process that never reads an image (a web node
// whose edits run on workers, the balancer, the edge) never maps libvips and the dozens of
// libraries it pulls in. It links nothing of ours: the types come from headers, and its only
// way out (libvips' log lines) is a callback media.cc gives it. Every libvips call is inside a
// try: VError (and anything else vips-cpp throws) becomes an Error here and never reaches a
// request path.
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vips/vips8>

#include "media/formats.h"
#include "media/vips_api.h"

// From <vips/vector.h>, which does not stand alone (it needs vips.h first, and include sorting
// would put it before).
extern "C" void vips_vector_set_enabled(gboolean enabled);

namespace millions::media {
namespace {

using vips::VImage;
using vips::VOption;

// libvips keeps one error buffer for the whole process; it is cleared after each failure so it
// cannot grow, and only its first line is kept because other threads may have appended to it.
Error FromVips(const vips::VError& e, const char* what) {
  std::string detail = e.what();
  vips_error_clear();
  detail = detail.substr(0, detail.find('\n'));
  if (detail.size() > 160) detail.resize(160);
  return BadImage(detail.empty() ? what : std::string(what) + " (" + detail + ")");
}

// The caller's bytes, wrapped without a copy (uploads can be tens of MB). Images loaded from the
// blob point into the bytes, so they must not outlive the call that lent them: nothing here
// keeps an image, and the operation cache, which would, is switched off in Start.
class BorrowedBlob {
 public:
  explicit BorrowedBlob(std::string_view bytes)
      : blob_(vips_blob_new(nullptr, bytes.data(), bytes.size())) {}
  ~BorrowedBlob() { vips_area_unref(VIPS_AREA(blob_)); }
  BorrowedBlob(const BorrowedBlob&) = delete;
  BorrowedBlob& operator=(const BorrowedBlob&) = delete;
  VipsBlob* get() const { return blob_; }

 private:
  VipsBlob* blob_;
};

// Loading reads the header only; pixels are decoded when something asks for them. The loader is
// the declared type's, never one sniffed from the bytes. Sequential access decodes top to bottom
// in a small window of rows; random access (needed to turn an image) decodes the whole image.
VImage Load(const BorrowedBlob& blob, Format format, VipsAccess access) {
  // fail_on: a truncated or corrupt file is an error, not a half-grey picture.
  VOption* options = VImage::option()->set("access", access)->set("fail_on", VIPS_FAIL_ON_ERROR);
  switch (format) {
    case Format::kJpeg:
      return VImage::jpegload_buffer(blob.get(), options);
    case Format::kPng:
      return VImage::pngload_buffer(blob.get(), options);
    case Format::kWebp:
      break;
  }
  return VImage::webpload_buffer(blob.get(), options);
}

// EXIF orientation, 1 (as stored) when absent or nonsense.
int Orientation(const VImage& img) {
  if (img.get_typeof(VIPS_META_ORIENTATION) != G_TYPE_INT) return 1;
  int o = img.get_int(VIPS_META_ORIENTATION);
  return o >= 1 && o <= 8 ? o : 1;
}

bool HasRotate(const std::vector<EditOp>& ops) {
  for (const EditOp& op : ops)
    if (op.kind == EditOp::Kind::kRotate) return true;
  return false;
}

// Saving strips the ICC profile, so colour pixels are moved into sRGB first: a Display P3 or
// CMYK photo would otherwise change colour. Without a profile, RGB is taken as sRGB already.
// Grey images are left alone: a grey profile is near enough to sRGB's curve.
VImage IntoSrgb(const VImage& img) {
  bool colour = img.bands() >= 3;
  bool cmyk = img.interpretation() == VIPS_INTERPRETATION_CMYK;
  if (!vips_icc_present() || !colour || (!cmyk && !img.get_typeof(VIPS_META_ICC_NAME))) return img;
  int depth = img.format() == VIPS_FORMAT_USHORT ? 16 : 8;
  try {
    return img.icc_transform("srgb", VImage::option()->set("embedded", true)->set("depth", depth));
  } catch (const vips::VError&) {
    // An unusable profile: keep the pixels as they are rather than refuse the photo.
    vips_error_clear();
    return img;
  }
}

// Mixes pixels (resize, blur) with the alpha premultiplied, so that the colour of transparent
// pixels does not bleed into their visible neighbours.
template <class Fn>
VImage MixWithAlpha(const VImage& img, Fn mix) {
  if (!img.has_alpha()) return mix(img);
  return mix(img.premultiply()).unpremultiply().cast(img.format());
}

VImage Resize(const VImage& img, int width, int height) {
  return MixWithAlpha(img, [&](const VImage& in) {
    VImage out =
        in.resize(static_cast<double>(width) / in.width(),
                  VImage::option()->set("vscale", static_cast<double>(height) / in.height()));
    // resize rounds each side; the op promises the exact size, so pin it.
    if (out.width() != width || out.height() != height)
      out = out.embed(0, 0, width, height, VImage::option()->set("extend", VIPS_EXTEND_COPY));
    return out;
  });
}

VImage Apply(const VImage& img, const EditOp& op) {
  using K = EditOp::Kind;
  switch (op.kind) {
    case K::kCrop:
      return img.extract_area(op.x, op.y, op.width, op.height);
    case K::kResize:
      return Resize(img, op.width, op.height);
    case K::kSharpen:
      // Sharpens lightness only and passes alpha through: no premultiplying needed.
      return img.sharpen(VImage::option()->set("sigma", op.sigma));
    case K::kBlur:
      return MixWithAlpha(img, [&](const VImage& in) { return in.gaussblur(op.sigma); });
    case K::kRotate:
      return img.rot(op.degrees == 90    ? VIPS_ANGLE_D90
                     : op.degrees == 180 ? VIPS_ANGLE_D180
                                         : VIPS_ANGLE_D270);
    case K::kGrayscale:
      // Keeps alpha (grey + alpha = 2 bands) and a 16-bit PNG's depth.
      return img.colourspace(img.format() == VIPS_FORMAT_USHORT ? VIPS_INTERPRETATION_GREY16
                                                                : VIPS_INTERPRETATION_B_W);
  }
  throw vips::VError("unknown edit op");  // ValidateOps refuses these first
}

// JPEG and WebP hold 8 bits a channel; PNG keeps a 16-bit source 16-bit.
VImage ForSaving(VImage img, Format format) {
  VipsInterpretation i = img.interpretation();
  bool png16 = format == Format::kPng && img.format() == VIPS_FORMAT_USHORT &&
               (i == VIPS_INTERPRETATION_RGB16 || i == VIPS_INTERPRETATION_GREY16);
  if (png16 || img.format() == VIPS_FORMAT_UCHAR) return img;
  if (img.format() == VIPS_FORMAT_USHORT) {
    img = img.cast(VIPS_FORMAT_UCHAR, VImage::option()->set("shift", true));
    return img.copy(VImage::option()->set(
        "interpretation", img.bands() >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W));
  }
  return img.cast(VIPS_FORMAT_UCHAR);
}

// Nothing of the source's metadata (EXIF with camera and GPS, XMP, ICC, comments) is served.
// The savers' strip option should be enough, but 8.14's webpsave ignores it: it writes an attached
// ICC profile, so every field is dropped from the image first. (It still writes a small EXIF block
// of its own: resolution, size, orientation 1; nothing from the upload.)
VImage WithoutMetadata(const VImage& img) {
  VImage out = img.copy();  // a new header: img may be shared
  gchar** fields = vips_image_get_fields(out.get_image());
  for (gchar** f = fields; *f != nullptr; ++f) vips_image_remove(out.get_image(), *f);
  g_strfreev(fields);
  return out;
}

std::string Encode(const VImage& img, Format format) {
  VOption* options = VImage::option()->set("strip", true);
  const char* suffix = ".png";
  if (format == Format::kJpeg) {
    suffix = ".jpg";
    options->set("Q", 85)->set("optimize_coding", true);
  } else if (format == Format::kWebp) {
    suffix = ".webp";
    options->set("Q", 80);
  }
  void* buf = nullptr;
  size_t len = 0;
  WithoutMetadata(img).write_to_buffer(suffix, &buf, &len, options);
  std::unique_ptr<void, decltype(&g_free)> owned(buf, &g_free);
  return std::string(static_cast<const char*>(buf), len);
}

// libvips warns on stderr, once per failed tile of a corrupt upload. Raw lines there would break
// the one-JSON-object-a-line log, and they are routine, so they become debug lines.
// The line goes to the caller's log (media.cc: log::Debug, with the request's ids).
void (*debug_log)(const char* message) = nullptr;

void ForwardVipsLog(const gchar* /*domain*/, GLogLevelFlags /*level*/, const gchar* message,
                    gpointer /*data*/) {
  if (debug_log) debug_log(message ? message : "");
}

std::string Start(void (*debug)(const char* message)) {
  static std::once_flag once;
  static std::string failed;
  std::call_once(once, [debug] {
    debug_log = debug;
    if (VIPS_INIT("millions") != 0) {
      failed = std::string("libvips failed to start: ") + vips_error_buffer();
      vips_error_clear();
      return;
    }
    // Cached operations would hold images that point into request bytes (see BorrowedBlob) and
    // hold memory nobody asked for: every edit is different anyway.
    vips_cache_set_max(0);
    // One thread per pipeline: concurrency comes from the workers, each bounded in memory.
    vips_concurrency_set(1);
    // liborc compiles SIMD code at run time and crashed (SEGV in orc_code_allocate_codemem) when
    // several workers compiled at once, seen under ASan in media_test's ManyThreadsAtOnce.
    // The plain C paths are slower for blur and resize but safe to run on many threads.
    vips_vector_set_enabled(FALSE);
    // Loaders are named explicitly, but refuse the risky ones (ImageMagick etc.) regardless.
    vips_block_untrusted_set(TRUE);
    g_log_set_handler("VIPS",
                      static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE |
                                                  G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG),
                      &ForwardVipsLog, nullptr);
  });
  return failed;
}

// media.cc has validated the ops and checked the type and the magic bytes.
Result<Encoded> VipsApplyOps(std::string_view bytes, const ImageInfo& info,
                             const std::vector<EditOp>& ops, const Limits& limits) {
  std::optional<Format> format = FormatOf(info.content_type);
  if (!format) return Unsupported();
  try {
    BorrowedBlob blob(bytes);
    VImage img = Load(blob, *format, VIPS_ACCESS_SEQUENTIAL);
    // Turning an image reads its rows out of order, which a sequential load refuses.
    if (Orientation(img) != 1 || HasRotate(ops)) img = Load(blob, *format, VIPS_ACCESS_RANDOM);
    // Probe checked these bytes once; checking again is cheap and keeps a bomb that was stored
    // some other way from being decoded.
    if (std::optional<Error> e = SizeError(img.width(), img.height(), limits)) return *std::move(e);
    img = IntoSrgb(img.autorot());
    if (img.width() != info.width || img.height() != info.height)
      return MakeError(Errc::kInternal, "media_mismatch",
                       "the stored image is " + std::to_string(img.width()) + "x" +
                           std::to_string(img.height()) + ", not " + std::to_string(info.width) +
                           "x" + std::to_string(info.height));
    for (const EditOp& op : ops) img = Apply(img, op);
    // Encoding runs the whole pipeline: this is where the pixels are decoded and may fail.
    Encoded out;
    out.bytes = Encode(ForSaving(img, *format), *format);
    out.info = ImageInfo{img.width(), img.height(), info.content_type};
    return out;
  } catch (const vips::VError& e) {
    return FromVips(e, "the image does not decode");
  } catch (const std::exception& e) {
    return MakeError(Errc::kInternal, "media_error", e.what());
  }
}

}  // namespace
}  // namespace millions::media

extern "C" __attribute__((visibility("default"))) const millions::media::internal::VipsApi*
millions_media_vips_api() {
  static const millions::media::internal::VipsApi api{
      millions::media::internal::kVipsAbi, &millions::media::Start, &millions::media::VipsApplyOps};
  return &api;
}
