#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "media/media.h"

namespace millions::media {
namespace {

using K = EditOp::Kind;

EditOp Crop(int x, int y, int w, int h) { return {K::kCrop, x, y, w, h}; }
EditOp Resize(int w, int h) { return {.kind = K::kResize, .width = w, .height = h}; }
EditOp Rotate(int degrees) { return {.kind = K::kRotate, .degrees = degrees}; }
EditOp Blur(double sigma) { return {.kind = K::kBlur, .sigma = sigma}; }
EditOp Sharpen(double sigma) { return {.kind = K::kSharpen, .sigma = sigma}; }
EditOp Gray() { return {.kind = K::kGrayscale}; }

const ImageInfo kInfo{64, 48, "image/png"};

TEST(ValidateOps, AcceptsGoodChains) {
  Limits limits;
  std::vector<std::vector<EditOp>> good = {
      {Crop(10, 10, 20, 20)},
      {Crop(0, 0, 64, 48)},
      {Rotate(90), Crop(0, 0, 48, 64)},  // the crop fits only after the turn
      {Resize(12000, 3000)},
      {Blur(20), Sharpen(0.5), Gray(), Rotate(180), Rotate(270)},
      std::vector<EditOp>(10, Gray()),
  };
  for (const auto& ops : good) {
    Status st = ValidateOps(kInfo, ops, limits);
    EXPECT_TRUE(st.ok()) << st.error().message;
  }
}

TEST(ValidateOps, RejectsBadOpsNamingTheIndex) {
  Limits limits;
  struct Case {
    std::vector<EditOp> ops;
    const char* index;  // the message names the failing op
  };
  std::vector<Case> bad = {
      {{Crop(60, 0, 10, 10)}, "op 0"},
      {{Crop(-1, 0, 10, 10)}, "op 0"},
      {{Crop(0, 0, 0, 10)}, "op 0"},
      {{Crop(2147483600, 0, 100, 10)}, "op 0"},  // x + width overflows int
      {{Rotate(45)}, "op 0"},
      {{Rotate(0)}, "op 0"},
      {{Rotate(360)}, "op 0"},
      {{Gray(), Blur(0)}, "op 1"},
      {{Sharpen(-1)}, "op 0"},
      {{Sharpen(20.5)}, "op 0"},
      {{Blur(std::numeric_limits<double>::quiet_NaN())}, "op 0"},
      {{Resize(0, 5)}, "op 0"},
      {{Resize(12001, 10)}, "op 0"},
      {{Resize(12000, 12000)}, "op 0"},            // each side fits, the pixel count does not
      {{Rotate(90), Crop(0, 0, 64, 10)}, "op 1"},  // fits the original, not the turned image
      {{Resize(10, 10), Crop(5, 5, 6, 5)}, "op 1"},
  };
  for (const auto& c : bad) {
    Status st = ValidateOps(kInfo, c.ops, limits);
    ASSERT_FALSE(st.ok()) << c.index;
    EXPECT_EQ(st.error().code, "bad_edit");
    EXPECT_EQ(st.error().status(), 400);
    EXPECT_NE(st.error().message.find(c.index), std::string::npos) << st.error().message;
  }
}

TEST(ValidateOps, RejectsTooManyOrNoOps) {
  Limits limits;
  for (size_t n : {0, 11, 1000}) {
    Status st = ValidateOps(kInfo, std::vector<EditOp>(n, Gray()), limits);
    ASSERT_FALSE(st.ok()) << n;
    EXPECT_EQ(st.error().code, "bad_edit");
  }
}

TEST(ValidateOps, ResizeFollowsTheLimits) {
  Limits small{.max_pixels = 100, .max_dimension = 20};
  EXPECT_TRUE(ValidateOps(kInfo, {Resize(10, 10)}, small).ok());
  EXPECT_FALSE(ValidateOps(kInfo, {Resize(21, 2)}, small).ok());
  EXPECT_FALSE(ValidateOps(kInfo, {Resize(11, 10)}, small).ok());
}

}  // namespace
}  // namespace millions::media
