// ValidateOps: pure arithmetic on sizes, kept apart from libvips so that the API can check an
// edit when it is requested, long before a worker decodes anything.
#include <cstdint>
#include <string>
#include <utility>

#include "media/media.h"

namespace millions::media {
namespace {

constexpr size_t kMaxOps = 10;
constexpr double kMaxSigma = 20;

Error BadEdit(size_t index, const std::string& msg) {
  return MakeError(Errc::kBadInput, "bad_edit", "op " + std::to_string(index) + ": " + msg);
}

std::string Size(int64_t w, int64_t h) { return std::to_string(w) + "x" + std::to_string(h); }

}  // namespace

Status ValidateOps(const ImageInfo& info, const std::vector<EditOp>& ops, const Limits& limits) {
  using K = EditOp::Kind;
  if (ops.empty() || ops.size() > kMaxOps)
    return MakeError(
        Errc::kBadInput, "bad_edit",
        "give 1.." + std::to_string(kMaxOps) + " ops, not " + std::to_string(ops.size()));
  // 64-bit so that sums of client-chosen ints cannot overflow.
  int64_t w = info.width, h = info.height;
  for (size_t i = 0; i < ops.size(); ++i) {
    const EditOp& op = ops[i];
    switch (op.kind) {
      case K::kCrop:
        if (op.x < 0 || op.y < 0 || op.width < 1 || op.height < 1 || int64_t{op.x} + op.width > w ||
            int64_t{op.y} + op.height > h)
          return BadEdit(i, "crop " + Size(op.width, op.height) + " at (" + std::to_string(op.x) +
                                ", " + std::to_string(op.y) + ") is not inside the " + Size(w, h) +
                                " image");
        w = op.width;
        h = op.height;
        break;
      case K::kResize:
        // Upscaling is allowed, so the output is held to the same limits as an upload.
        if (op.width < 1 || op.height < 1 || op.width > limits.max_dimension ||
            op.height > limits.max_dimension || int64_t{op.width} * op.height > limits.max_pixels)
          return BadEdit(i, "resize to " + Size(op.width, op.height) + " is outside 1.." +
                                std::to_string(limits.max_dimension) + " a side or above " +
                                std::to_string(limits.max_pixels) + " pixels");
        w = op.width;
        h = op.height;
        break;
      case K::kSharpen:
      case K::kBlur:
        // Written so that NaN fails too.
        if (!(op.sigma > 0 && op.sigma <= kMaxSigma)) return BadEdit(i, "sigma must be in (0, 20]");
        break;
      case K::kRotate:
        if (op.degrees != 90 && op.degrees != 180 && op.degrees != 270)
          return BadEdit(i, "degrees must be 90, 180 or 270, not " + std::to_string(op.degrees));
        if (op.degrees != 180) std::swap(w, h);
        break;
      case K::kGrayscale:
        break;
      default:
        return BadEdit(i, "unknown op kind");
    }
  }
  return Ok();
}

}  // namespace millions::media
